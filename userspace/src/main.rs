//! The `dirsync` binary: parses the command line and hands over to the
//! library (`dirsync::sync`, `dirsync::watch`).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser};

mod cli;
mod output;
mod progress;

use cli::{Cli, Command, SyncArgs, SHORT_USAGE};
use dirsync::report::Reporter;
use dirsync::sync::Syncer;
use dirsync::ExitStatus;
use output::{HumanReporter, JsonReporter};
use progress::ProgressLine;

fn exit(s: ExitStatus) -> ExitCode {
    ExitCode::from(s as u8)
}

fn main() -> ExitCode {
    if std::env::args_os().len() <= 1 {
        eprintln!("{SHORT_USAGE}\nTry 'dirsync --help' for more information.");
        return exit(ExitStatus::Usage);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit(ExitStatus::Ok)
                }
                _ => exit(ExitStatus::Usage),
            };
        }
    };
    match cli.command {
        Some(Command::Completions { shell }) => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "dirsync", &mut std::io::stdout());
            exit(ExitStatus::Ok)
        }
        Some(Command::Man) => {
            let man = clap_mangen::Man::new(Cli::command());
            let mut out = Vec::new();
            if let Err(e) = man.render(&mut out) {
                eprintln!("dirsync: cannot render the man page: {e}");
                return exit(ExitStatus::Fatal);
            }
            let _ = std::io::stdout().write_all(&out);
            exit(ExitStatus::Ok)
        }
        Some(Command::Watch { src, dst, args }) => run_watch(&src, &dst, &args),
        None => match (cli.src, cli.dst) {
            (Some(src), Some(dst)) => run_once(&src, &dst, &cli.args),
            _ => {
                eprintln!("{SHORT_USAGE}\nTry 'dirsync --help' for more information.");
                exit(ExitStatus::Usage)
            }
        },
    }
}

/// The reporter the arguments ask for, and the progress line if one will be
/// drawn.
fn reporter(args: &SyncArgs) -> (Arc<dyn Reporter>, Option<Arc<ProgressLine>>) {
    if args.json {
        return (Arc::new(JsonReporter), None);
    }
    let line =
        (!args.no_progress && !args.verbose && !args.quiet && std::io::stderr().is_terminal())
            .then(|| Arc::new(ProgressLine::default()));
    (
        Arc::new(HumanReporter::new(args.verbosity(), line.clone())),
        line,
    )
}

fn run_once(src: &Path, dst: &Path, args: &SyncArgs) -> ExitCode {
    let (rep, line) = reporter(args);
    let syncer = match Syncer::new(src, dst, args.options(), rep) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dirsync: {e}");
            if args.json {
                println!(
                    "{}",
                    output::json_summary(&Default::default(), ExitStatus::Fatal as i32)
                );
            }
            return exit(ExitStatus::Fatal);
        }
    };
    if args.verbose {
        eprintln!("Backend: {}", syncer.backend_description());
    }
    let result = match &line {
        Some(l) => progress::with_progress(l, syncer.progress(), Duration::from_secs(1), || {
            syncer.sync_all()
        }),
        None => syncer.sync_all(),
    };
    let (status, summary) = match result {
        Ok(s) if s.errors > 0 => (ExitStatus::Partial, s),
        Ok(s) => (ExitStatus::Ok, s),
        Err(e) => {
            eprintln!("dirsync: {e}");
            (ExitStatus::Fatal, Default::default())
        }
    };
    if args.json {
        println!("{}", output::json_summary(&summary, status as i32));
    } else if args.verbose {
        println!("{summary}");
    }
    if status == ExitStatus::Partial && !args.json {
        eprintln!(
            "dirsync: {} entries could not be synced (see above); everything else was",
            summary.errors
        );
    }
    exit(status)
}

fn run_watch(src: &Path, dst: &Path, args: &SyncArgs) -> ExitCode {
    // No progress line: a watcher runs for ever.
    let rep: Arc<dyn Reporter> = if args.json {
        Arc::new(JsonReporter)
    } else {
        Arc::new(HumanReporter::new(args.verbosity(), None))
    };
    match dirsync::watch::run(src, dst, args.options(), rep) {
        Ok(status) => exit(status),
        Err(e) => {
            eprintln!("dirsync: {e}");
            exit(ExitStatus::Fatal)
        }
    }
}

//! The `dirsync` binary: parses the command line, hands over to the
//! library (`dirsync::sync`, `dirsync::watch`) and prints what it reports.
//! `main` → [`run`] → `Result<ExitCode>`: an error that stops the run is
//! printed once, here, with its context.

mod cli;
mod daemon_cmd;
mod output;
mod progress;
mod twoway_cmd;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};

use cli::{Cli, Command, SyncArgs, SHORT_USAGE};
use dirsync::report::{Reporter, Summary};
use dirsync::sync::Syncer;
use dirsync::ExitStatus;
use output::{HumanReporter, JsonReporter};
use progress::ProgressLine;

fn exit(s: ExitStatus) -> ExitCode {
    ExitCode::from(s as u8)
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dirsync: {e:#}");
            exit(ExitStatus::Fatal)
        }
    }
}

/// Raises the soft limit of open files to the hard limit: the parallel
/// walk keeps a few descriptors per directory in flight.
fn raise_nofile_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        // Best effort: the defaults work for all but very wide trees.
        let _ = setrlimit(Resource::Nofile, lim);
    }
}

fn usage_hint() -> ExitCode {
    eprintln!("{SHORT_USAGE}\nTry 'dirsync --help' for more information.");
    exit(ExitStatus::Usage)
}

fn run() -> anyhow::Result<ExitCode> {
    if std::env::args_os().len() <= 1 {
        return Ok(usage_hint());
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return Ok(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit(ExitStatus::Ok)
                }
                _ => exit(ExitStatus::Usage),
            });
        }
    };
    raise_nofile_limit();
    if cli.server {
        return Ok(run_server(&cli));
    }
    if cli.root.is_some() || cli.read_only || cli.write_only {
        eprintln!("dirsync: --root, --read-only and --write-only go with --server");
        return Ok(usage_hint());
    }
    match cli.command {
        Some(Command::Completions { shell }) => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "dirsync", &mut std::io::stdout());
            Ok(exit(ExitStatus::Ok))
        }
        Some(Command::Man) => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .context("cannot render the man page")?;
            std::io::stdout()
                .write_all(&out)
                .context("cannot write the man page")?;
            Ok(exit(ExitStatus::Ok))
        }
        Some(Command::Watch {
            src,
            dst,
            args,
            two_way,
        }) if two_way.two_way => twoway_cmd::watch(&src, &dst, &args, &two_way),
        Some(Command::Watch { src, dst, args, .. }) => run_watch(&src, &dst, &args),
        Some(Command::Daemon(a)) => Ok(daemon_cmd::daemon(&a)),
        Some(Command::Status(a)) => Ok(daemon_cmd::status(&a)),
        Some(Command::Pause(a)) => Ok(daemon_cmd::act(&a, dirsync::daemon::api::Action::Pause)),
        Some(Command::Resume(a)) => Ok(daemon_cmd::act(&a, dirsync::daemon::api::Action::Resume)),
        Some(Command::SyncNow(a)) => Ok(daemon_cmd::act(&a, dirsync::daemon::api::Action::SyncNow)),
        None => match (cli.src, cli.dst) {
            (Some(src), Some(dst)) if cli.two_way.two_way => {
                twoway_cmd::run(&src, &dst, &cli.args, &cli.two_way)
            }
            (Some(src), Some(dst)) => run_once(&src, &dst, &cli.args),
            _ => Ok(usage_hint()),
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

/// Prints the closing summary the arguments ask for.
fn print_summary(args: &SyncArgs, summary: &Summary, status: ExitStatus) {
    if args.json {
        println!("{}", output::json_summary(summary, status as i32));
    } else if args.verbose {
        println!("{summary}");
    }
}

/// `dirsync --server [--root DIR] [--read-only | --write-only]`: the
/// remote side, on stdin/stdout. Errors go to the client in the protocol
/// when it can carry them, and to stderr (which ssh shows the user)
/// otherwise. Run as an ssh forced command, what the client asked for
/// (`SSH_ORIGINAL_COMMAND`) must be a dirsync server too: anything else
/// is refused, not run.
fn run_server(cli: &Cli) -> ExitCode {
    use dirsync::remote::confine::{self, Access, Confine};
    use std::os::fd::AsFd;
    use std::os::unix::ffi::OsStrExt;
    let fail = |e: &dyn std::error::Error| {
        eprintln!("dirsync --server: {}", dirsync::error::chain(e));
        exit(ExitStatus::Fatal)
    };
    if let Some(asked) = std::env::var_os("SSH_ORIGINAL_COMMAND") {
        if let Err(e) = confine::check_original_command(asked.as_bytes()) {
            return fail(&e);
        }
    }
    let access = match (cli.read_only, cli.write_only) {
        (true, _) => Access::ReadOnly,
        (_, true) => Access::WriteOnly,
        _ => Access::ReadWrite,
    };
    let confine = match &cli.root {
        Some(dir) => match Confine::beneath(dir, access) {
            Ok(c) => c,
            Err(e) => return fail(&e),
        },
        None => Confine::unconfined(access),
    };
    // The descriptors themselves: std's stdout is line-buffered, and the
    // frames have their own buffers.
    let fds = (
        std::io::stdin().as_fd().try_clone_to_owned(),
        std::io::stdout().as_fd().try_clone_to_owned(),
    );
    let (r, w) = match fds {
        (Ok(r), Ok(w)) => (std::fs::File::from(r), std::fs::File::from(w)),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("dirsync --server: cannot use stdin/stdout: {e}");
            return exit(ExitStatus::Fatal);
        }
    };
    match dirsync::remote::server::serve_in(r, w, &confine) {
        Ok(()) => exit(ExitStatus::Ok),
        Err(e) => fail(&e),
    }
}

/// The exit status of a finished run, after printing its summary.
fn finish(args: &SyncArgs, summary: &Summary) -> ExitCode {
    let status = if summary.errors > 0 {
        ExitStatus::Partial
    } else {
        ExitStatus::Ok
    };
    print_summary(args, summary, status);
    if status == ExitStatus::Partial && !args.json {
        eprintln!(
            "dirsync: {} entries could not be synced (see above); everything else was",
            summary.errors
        );
    }
    exit(status)
}

/// A one-shot sync with a remote side (`host:PATH` as SRC or DST).
fn run_remote(src: &Path, dst: &Path, args: &SyncArgs) -> anyhow::Result<Option<ExitCode>> {
    use dirsync::remote::{client, spec};
    let (rs, rd) = (spec::parse(src.as_os_str()), spec::parse(dst.as_os_str()));
    let (rep, _) = reporter(args);
    let result = match (rs, rd) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            eprintln!("dirsync: SRC and DST cannot both be remote");
            return Ok(Some(exit(ExitStatus::Usage)));
        }
        (None, Some(d)) => client::push(src, &d, &args.connect(), args.options(), rep),
        (Some(s), None) => client::pull(&s, dst, &args.connect(), args.options(), rep),
    };
    match result {
        Ok(summary) => Ok(Some(finish(args, &summary))),
        Err(e) => {
            print_summary(args, &Summary::default(), ExitStatus::Fatal);
            Err(e.into())
        }
    }
}

fn run_once(src: &Path, dst: &Path, args: &SyncArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = run_remote(src, dst, args)? {
        return Ok(code);
    }
    let (rep, line) = reporter(args);
    let syncer = match Syncer::new(src, dst, args.options(), rep) {
        Ok(s) => s,
        Err(e) => {
            if args.json {
                print_summary(args, &Summary::default(), ExitStatus::Fatal);
            }
            return Err(e.into());
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
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            print_summary(args, &Summary::default(), ExitStatus::Fatal);
            return Err(e).with_context(|| {
                format!("sync of {} to {} stopped", src.display(), dst.display())
            });
        }
    };
    Ok(finish(args, &summary))
}

fn run_watch(src: &Path, dst: &Path, args: &SyncArgs) -> anyhow::Result<ExitCode> {
    // No progress line: a watcher runs for ever.
    let rep: Arc<dyn Reporter> = if args.json {
        Arc::new(JsonReporter)
    } else {
        Arc::new(HumanReporter::new(args.verbosity(), None))
    };
    if let Some(spec) = dirsync::remote::spec::parse(src.as_os_str()) {
        return run_pull_watch(&spec, dst, args, rep);
    }
    if let Some(spec) = dirsync::remote::spec::parse(dst.as_os_str()) {
        let status = dirsync::remote::watch::run(src, &spec, &args.connect(), args.options(), rep)
            .with_context(|| format!("watching {}", src.display()))?;
        return Ok(exit(status));
    }
    let status = dirsync::watch::run(src, dst, args.options(), rep)
        .with_context(|| format!("watching {}", src.display()))?;
    Ok(exit(status))
}

/// `dirsync watch host:SRC DST`: the server watches SRC, this side
/// applies to DST (`remote::pull_watch`). A server that cannot watch is
/// refused before anything changes (exit 1).
fn run_pull_watch(
    spec: &dirsync::remote::spec::Spec,
    dst: &Path,
    args: &SyncArgs,
    rep: Arc<dyn Reporter>,
) -> anyhow::Result<ExitCode> {
    use dirsync::remote::{pull_watch, RemoteError};
    if dirsync::remote::spec::parse(dst.as_os_str()).is_some() {
        eprintln!("dirsync: SRC and DST cannot both be remote");
        return Ok(exit(ExitStatus::Usage));
    }
    match pull_watch::run(spec, dst, &args.connect(), args.options(), rep) {
        Ok(status) => Ok(exit(status)),
        Err(e @ RemoteError::NoWatch { .. }) => {
            eprintln!("dirsync: {e}");
            Ok(exit(ExitStatus::Usage))
        }
        Err(e) => Err(e).with_context(|| format!("watching {}", spec.label().display())),
    }
}

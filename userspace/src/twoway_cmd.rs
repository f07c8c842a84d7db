//! `dirsync --two-way A B`: builds the [`dirsync::twoway::TwoWaySpec`]
//! from the command line, runs the library's engine, prints the summary.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{ConflictArg, SyncArgs, TwoWayArgs};
use dirsync::report::Summary;
use dirsync::twoway::{Policy, TwoWaySpec};
use dirsync::ExitStatus;

/// Runs a one-shot two-way sync of `a` and `b`.
pub fn run(a: &Path, b: &Path, args: &SyncArgs, tw: &TwoWayArgs) -> anyhow::Result<ExitCode> {
    let remote = |p: &Path| dirsync::remote::spec::parse(p.as_os_str()).is_some();
    if remote(a) || remote(b) {
        eprintln!("dirsync: --two-way with a remote side (host:PATH) is not supported yet");
        return Ok(crate::exit(ExitStatus::Usage));
    }
    let opts = args.options();
    if let Some(msg) = unsupported(&opts) {
        eprintln!("dirsync: {msg}");
        return Ok(crate::exit(ExitStatus::Usage));
    }
    let spec = spec_of(a, b, tw);
    let (rep, _) = crate::reporter(args);
    match dirsync::twoway::run(&spec, &opts, &*rep) {
        Ok(summary) => Ok(crate::finish(args, &summary)),
        Err(e) => {
            crate::print_summary(args, &Summary::default(), ExitStatus::Fatal);
            Err(anyhow::Error::new(e).context(format!(
                "two-way sync of {} and {} stopped",
                a.display(),
                b.display()
            )))
        }
    }
}

/// Why `opts` cannot be used with `--two-way`, if they cannot.
fn unsupported(opts: &dirsync::sync::Options) -> Option<&'static str> {
    if opts.hard_links || opts.acls || opts.xattrs || opts.owner || opts.group || opts.sparse {
        return Some(
            "-H, -A, -X, -o, -g and -S (and -a) are not supported with --two-way yet \
             (mode bits and mtimes are synced)",
        );
    }
    if opts.no_delete || opts.size_only || opts.no_recursive || opts.max_size.is_some() {
        return Some(
            "--no-delete, --size-only, --no-recursive and --max-size do not apply to --two-way",
        );
    }
    None
}

/// The library's spec from the command line.
fn spec_of(a: &Path, b: &Path, tw: &TwoWayArgs) -> TwoWaySpec {
    TwoWaySpec {
        a: a.to_path_buf(),
        b: b.to_path_buf(),
        state: tw.state.clone(),
        policy: match tw.conflict {
            ConflictArg::KeepBoth => Policy::KeepBoth,
            ConflictArg::Newer => Policy::Newer,
            ConflictArg::A => Policy::A,
            ConflictArg::B => Policy::B,
        },
        delete_loser: tw.conflict_delete_loser,
        max_delete: tw.max_delete,
        force: tw.force,
    }
}

/// `dirsync watch --two-way A B`: a two-way run, then one pass per batch
/// of changes on either side, until SIGINT/SIGTERM (exit 0).
pub fn watch(a: &Path, b: &Path, args: &SyncArgs, tw: &TwoWayArgs) -> anyhow::Result<ExitCode> {
    let remote = |p: &Path| dirsync::remote::spec::parse(p.as_os_str()).is_some();
    if remote(a) || remote(b) {
        eprintln!("dirsync: watch --two-way with a remote side (host:PATH) is not supported yet");
        return Ok(crate::exit(ExitStatus::Usage));
    }
    let opts = args.options();
    if let Some(msg) = unsupported(&opts) {
        eprintln!("dirsync: {msg}");
        return Ok(crate::exit(ExitStatus::Usage));
    }
    if opts.dry_run {
        eprintln!(
            "dirsync: watch --two-way does not take -n (a dry run of a watch would report the \
             same changes for ever): use `dirsync --two-way -n A B`"
        );
        return Ok(crate::exit(ExitStatus::Usage));
    }
    // No progress line: a watcher runs for ever.
    let rep: std::sync::Arc<dyn dirsync::report::Reporter> = if args.json {
        std::sync::Arc::new(crate::output::JsonReporter)
    } else {
        std::sync::Arc::new(crate::output::HumanReporter::new(args.verbosity(), None))
    };
    let (status, summary) = dirsync::twoway::watch::run(spec_of(a, b, tw), opts, rep)
        .map_err(anyhow::Error::new)
        .with_context(|| format!("watching {} and {}", a.display(), b.display()))?;
    crate::print_summary(args, &summary, status);
    Ok(crate::exit(status))
}

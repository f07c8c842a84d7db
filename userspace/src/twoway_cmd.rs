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
    let remote = |p: &Path| dirsync::remote::spec::parse(p.as_os_str());
    let (rem_a, rem_b) = (remote(a), remote(b));
    if rem_a.is_some() && rem_b.is_some() {
        eprintln!("dirsync: --two-way: only one of A and B may be remote (host:PATH)");
        return Ok(crate::exit(ExitStatus::Usage));
    }
    let Ok(opts) = two_way_options(args, rem_a.is_some() || rem_b.is_some(), false) else {
        return Ok(crate::exit(ExitStatus::Usage));
    };
    let spec = spec_of(a, b, tw);
    let (rep, _) = crate::reporter(args);
    let result = match (rem_a, rem_b) {
        (None, None) => dirsync::twoway::run(&spec, &opts, &*rep),
        (ra, rb) => match remote_run(&spec, ra, rb, args, &opts, &*rep) {
            Ok(r) => r,
            Err(e) => {
                crate::print_summary(args, &Summary::default(), ExitStatus::Fatal);
                return Err(anyhow::Error::new(e).context(format!(
                    "two-way sync of {} and {} stopped",
                    a.display(),
                    b.display()
                )));
            }
        },
    };
    match result {
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

/// A two-way run with one side (`ra` or `rb`) on another machine: the
/// local side is opened first (a missing root changes nothing there),
/// then the agent is reached. The outer error is the connection's.
fn remote_run(
    spec: &TwoWaySpec,
    ra: Option<dirsync::remote::spec::Spec>,
    rb: Option<dirsync::remote::spec::Spec>,
    args: &SyncArgs,
    opts: &dirsync::sync::Options,
    rep: &dyn dirsync::report::Reporter,
) -> Result<Result<Summary, dirsync::twoway::Error>, dirsync::remote::RemoteError> {
    use dirsync::remote::twoway_side::connect;
    use dirsync::twoway::{open_local, run_with};
    let c = args.connect();
    Ok(match (ra, rb) {
        (Some(r), _) => {
            let lb = match open_local(&spec.b, "root B", "b", opts) {
                Ok(l) => l,
                Err(e) => return Ok(Err(e)),
            };
            let ra = connect(&r, &c, opts)?;
            let out = run_with(spec, opts, rep, &ra, &lb);
            broken(&ra, &r)?;
            out
        }
        (None, Some(r)) => {
            let la = match open_local(&spec.a, "root A", "a", opts) {
                Ok(l) => l,
                Err(e) => return Ok(Err(e)),
            };
            let rb = connect(&r, &c, opts)?;
            let out = run_with(spec, opts, rep, &la, &rb);
            broken(&rb, &r)?;
            out
        }
        (None, None) => dirsync::twoway::run(spec, opts, rep),
    })
}

/// A session the agent broke (a stream longer than announced, a bad
/// path, the link lost) ends the run as fatal: what completed before is
/// kept and recorded, the rest is left for the next run.
fn broken(
    side: &dirsync::remote::twoway_side::RemoteSide,
    r: &dirsync::remote::spec::Spec,
) -> Result<(), dirsync::remote::RemoteError> {
    match side.broken() {
        Some(message) => Err(dirsync::remote::RemoteError::Protocol {
            host: r.host.clone(),
            message,
        }),
        None => Ok(()),
    }
}

/// Why `opts` cannot be used with `--two-way`, if they cannot.
fn unsupported(opts: &dirsync::sync::Options) -> Option<&'static str> {
    if opts.no_delete || opts.size_only || opts.no_recursive || opts.max_size.is_some() {
        return Some(
            "--no-delete, --size-only, --no-recursive and --max-size do not apply to --two-way",
        );
    }
    None
}

/// The options of a two-way run (`remote`: a side is `host:PATH`;
/// `watch`: `watch --two-way`), or `Err` once what cannot be used was
/// said. In two-way mode `-a` is `-p -t -o -g -X` (owner, group and
/// `user.*` attributes compared per path through the archive's digest);
/// hard links, ACLs and holes are not synced both ways.
fn two_way_options(
    args: &SyncArgs,
    remote: bool,
    watch: bool,
) -> Result<dirsync::sync::Options, ()> {
    let mut opts = args.options();
    let say = |msg: &str| eprintln!("dirsync: {msg}");
    if args.hard_links || args.acls || args.sparse {
        say("-H, -A and -S are not supported with --two-way (-a there means -p -t -o -g -X)");
        return Err(());
    }
    (opts.hard_links, opts.acls, opts.sparse) = (false, false, false);
    let attrs = opts.xattrs || opts.owner || opts.group;
    if attrs && remote {
        say(
            "-a, -X, -o and -g are not supported with --two-way when a side is remote \
             (mode bits and mtimes are synced)",
        );
        return Err(());
    }
    if attrs && watch {
        say(
            "-a, -X, -o and -g are not supported with watch --two-way yet (use the one-shot \
             dirsync --two-way for them; mode bits and mtimes are synced)",
        );
        return Err(());
    }
    match unsupported(&opts) {
        Some(msg) => {
            say(msg);
            Err(())
        }
        None => Ok(opts),
    }
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
    let Ok(opts) = two_way_options(args, false, true) else {
        return Ok(crate::exit(ExitStatus::Usage));
    };
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

//! `dirsync --two-way A B`: builds the [`dirsync::twoway::TwoWaySpec`]
//! from the command line, runs the library's engine, prints the summary.

use std::path::Path;
use std::process::ExitCode;

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
    if opts.hard_links || opts.acls || opts.xattrs || opts.owner || opts.group || opts.sparse {
        eprintln!(
            "dirsync: -H, -A, -X, -o, -g and -S (and -a) are not supported with --two-way yet \
             (mode bits and mtimes are synced)"
        );
        return Ok(crate::exit(ExitStatus::Usage));
    }
    if opts.no_delete || opts.size_only || opts.no_recursive || opts.max_size.is_some() {
        eprintln!(
            "dirsync: --no-delete, --size-only, --no-recursive and --max-size do not apply to \
             --two-way"
        );
        return Ok(crate::exit(ExitStatus::Usage));
    }
    let spec = TwoWaySpec {
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
    };
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

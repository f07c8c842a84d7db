//! A whole two-way run ([`run`]): lock and read the archive, scan both
//! trees (in parallel), check the guards, replay renames, reconcile every
//! path, apply (deletions children first, then the rest parents first)
//! and record each completed path.
//!
//! Guards, checked before anything changes (exit 3 with nothing changed):
//! a missing root; a root that is empty, or on another device, while the
//! archive knows entries there (`--force` overrides); more deletions than
//! `--max-delete` percent of the archived entries.

use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::apply::{CopyOpts, Side};
use super::archive::{Archive, Records};
use super::error::Error;
use super::reconcile::{self, Action, Planned, State};
use super::renames;
use super::replica::{self, Local, Replica};
use super::scan::{self, under, Tree};
use super::spec::TwoWaySpec;
use crate::exclude::Excludes;
use crate::report::{Reporter, Summary};
use crate::stat::{self, StatBackend};

use crate::sync::Options;
use crate::sys;

mod exec;

/// `${XDG_STATE_HOME:-~/.local/state}/dirsync/twoway-HASH.db`, HASH
/// derived from both roots (absolute, hosts included as written).
pub fn default_state_path(a: &Path, b: &Path) -> Result<PathBuf, Error> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local/state"),
            None => {
                return Err(Error::Guard {
                    message: "neither XDG_STATE_HOME nor HOME is set: give --state FILE".into(),
                })
            }
        },
    };
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut h = blake3::Hasher::new();
    h.update(abs(a).as_os_str().as_bytes());
    h.update(&[0]);
    h.update(abs(b).as_os_str().as_bytes());
    let hex = h.finalize().to_hex();
    Ok(base
        .join("dirsync")
        .join(format!("twoway-{}.db", &hex[..16])))
}

fn open_root(p: &Path, which: &'static str) -> Result<std::os::fd::OwnedFd, Error> {
    sys::open_root(p).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => crate::Error::invalid(which, p, "does not exist").into(),
        Some(libc::ENOTDIR) => crate::Error::invalid(which, p, "is not a directory").into(),
        _ => Error::at("cannot open", p, e),
    })
}

fn dev_text(d: (u32, u32)) -> Vec<u8> {
    format!("{}:{}", d.0, d.1).into_bytes()
}

/// Drops every path at or below one of `skipped` from `map`.
fn drop_under<V>(map: &mut std::collections::BTreeMap<Vec<u8>, V>, skipped: &[Vec<u8>]) {
    if skipped.is_empty() {
        return;
    }
    map.retain(|k, _| !skipped.iter().any(|s| under(k, s)));
}

/// The guards on a root: empty or on another device while the archive
/// knows entries.
fn check_root(
    which: &str,
    shown: &Path,
    tree: &Tree,
    dev: (u32, u32),
    recorded: Option<Vec<u8>>,
    archived: usize,
    force: bool,
) -> Result<(), Error> {
    if force || archived == 0 {
        return Ok(());
    }
    let shown = crate::report::human(shown.as_os_str().as_bytes());
    if tree.entries.is_empty() && tree.skipped.is_empty() {
        return Err(Error::Guard {
            message: format!(
                "{which} {shown} is empty but had {archived} entries at the last sync (an \
                 unmounted disk?): nothing changed; --force to sync anyway"
            ),
        });
    }
    if let Some(r) = recorded {
        if r != dev_text(dev) {
            return Err(Error::Guard {
                message: format!(
                    "{which} {shown} is on another device than at the last sync ({} now, {} \
                     then: a mount changed?): nothing changed; --force to sync anyway",
                    String::from_utf8_lossy(&dev_text(dev)),
                    String::from_utf8_lossy(&r)
                ),
            });
        }
    }
    Ok(())
}

/// The decisions for every path of the union.
fn plan(
    records: &Records,
    a: &Tree,
    b: &Tree,
    ra: &dyn Replica,
    rb: &dyn Replica,
    policy: reconcile::Policy,
) -> Vec<Planned> {
    let mut out = Vec::with_capacity(a.entries.len().max(b.entries.len()));
    // A merge of the three sorted key sequences (no set of the union).
    let mut ir = records.iter().peekable();
    let mut ia = a.entries.iter().peekable();
    let mut ib = b.entries.iter().peekable();
    loop {
        let next = [
            ir.peek().map(|x| x.0),
            ia.peek().map(|x| x.0),
            ib.peek().map(|x| x.0),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(p) = next else { break };
        let rec = ir.next_if(|x| x.0 == p).map(|x| x.1);
        let sa = ia.next_if(|x| x.0 == p).map(|x| x.1);
        let sb = ib.next_if(|x| x.0 == p).map(|x| x.1);
        let mut same = || match (sa, sb) {
            (Some(x), Some(y)) => replica::same_content(ra, rb, p, x, y),
            _ => false,
        };
        let action = reconcile::reconcile(
            rec.map(|r| &r.state),
            rec.map_or(0, |r| r.ino_b),
            sa,
            sb,
            policy,
            &mut same,
        );
        // Unchanged entries are on both sides: their parents too, so the
        // directory fix-up needs no word of them.
        if action == Action::Nothing {
            continue;
        }
        out.push(Planned {
            path: p.clone(),
            a: sa.map(|s| s.kind),
            b: sb.map(|s| s.kind),
            action,
        });
    }
    reconcile::keep_surviving_dirs(&mut out);
    out
}

/// Runs a two-way sync of `spec.a` and `spec.b` once. Conflicts are not
/// errors (events and `Summary::conflicts`); per-entry failures are
/// `Summary::errors` (exit 2); a guard or a fatal problem is `Err` with
/// nothing changed (exit 3).
pub fn run(spec: &TwoWaySpec, opts: &Options, rep: &dyn Reporter) -> Result<Summary, Error> {
    run_scoped(spec, opts, rep, None)
}

/// [`run`] restricted to `scope` (paths relative to the roots, e.g. what
/// changed since the last pass of `watch --two-way`), see
/// [`super::scope`]; `None` (or a scope that widens to the root) is the
/// whole tree. A scoped pass checks the empty-root guard (not the
/// device one); one that would delete anything is run as a whole run
/// instead (what is gone from the scope may have moved out of it).
pub fn run_scoped(
    spec: &TwoWaySpec,
    opts: &Options,
    rep: &dyn Reporter,
    scope: Option<&[Vec<u8>]>,
) -> Result<Summary, Error> {
    let ra = open_local(&spec.a, "root A", "a", opts)?;
    let rb = open_local(&spec.b, "root B", "b", opts)?;
    run_sides(spec, opts, rep, &ra, &rb, scope)
}

/// The local root `p` as a side (`which`: "root A" or "root B" in
/// errors; `label`: its name in conflict copies).
pub fn open_local(
    p: &Path,
    which: &'static str,
    label: &str,
    opts: &Options,
) -> Result<Local, Error> {
    let copy = CopyOpts {
        fsync: opts.fsync,
        no_reflink: opts.no_reflink,
    };
    Ok(Local {
        side: Side::new(open_root(p, which)?, p.to_path_buf(), label.into()),
        copy,
        sel: super::attrs::AttrSel::of(opts),
    })
}

/// [`run`] with both sides given (either may be on another machine,
/// `remote::twoway_side`); `spec.a` and `spec.b` name them (the default
/// archive's name derives from them).
pub fn run_with(
    spec: &TwoWaySpec,
    opts: &Options,
    rep: &dyn Reporter,
    ra: &dyn Replica,
    rb: &dyn Replica,
) -> Result<Summary, Error> {
    run_sides(spec, opts, rep, ra, rb, None)
}

/// [`run_with`], restricted to `scope` when both sides are local (a
/// scope is ignored otherwise: the whole tree).
fn run_sides(
    spec: &TwoWaySpec,
    opts: &Options,
    rep: &dyn Reporter,
    ra: &dyn Replica,
    rb: &dyn Replica,
    scope: Option<&[Vec<u8>]>,
) -> Result<Summary, Error> {
    let backend: Box<dyn StatBackend> =
        stat::select(opts.stat_backend, &stat::sysfs_dir()).map_err(crate::Error::from)?;
    let ida = ra
        .root_id()
        .map_err(|e| Error::at("cannot stat", &spec.a, e))?;
    let idb = rb
        .root_id()
        .map_err(|e| Error::at("cannot stat", &spec.b, e))?;
    if ra.local().is_some() && rb.local().is_some() && ida == idb {
        return Err(
            crate::Error::invalid("roots", &spec.b, "A and B are the same directory").into(),
        );
    }
    let (ida, idb) = (Id { dev: ida.0 }, Id { dev: idb.0 });
    if let (Some(ca), Some(cb)) = (ra.canonical(), rb.canonical()) {
        if ca.starts_with(&cb) || cb.starts_with(&ca) {
            return Err(
                crate::Error::invalid("roots", &spec.b, "one root is inside the other").into(),
            );
        }
    }
    let ex = Excludes::new(&opts.excludes).map_err(crate::Error::from)?;
    let state = match &spec.state {
        Some(s) => s.clone(),
        None => default_state_path(&spec.a, &spec.b)?,
    };
    // The archive changes during the run: inside a root it would be synced
    // (and compared) as a file of the tree.
    let state_dir = state
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // (Its nearest existing directory: the rest would be created.)
    let existing = state_dir
        .ancestors()
        .find_map(|d| std::fs::canonicalize(d).ok());
    if let Some(sd) = existing {
        for root in [&spec.a, &spec.b] {
            if std::fs::canonicalize(root).is_ok_and(|r| sd.starts_with(&r)) {
                return Err(Error::Guard {
                    message: format!(
                        "the state file {} is inside the root {}: give --state a path outside both",
                        crate::report::human(state.as_os_str().as_bytes()),
                        crate::report::human(root.as_os_str().as_bytes())
                    ),
                });
            }
        }
    }
    let mut archive = Archive::open(&state, opts.dry_run)?;
    // A scoped pass (both sides local) reads the archive's records of
    // its scope only.
    let locals = ra.local().zip(rb.local());
    let prepared = scope
        .zip(locals)
        .and_then(|(s, (la, lb))| super::scope::prepare(la.root.as_fd(), lb.root.as_fd(), s));
    let mut records = match &prepared {
        Some(paths) => archive.load_scope(paths)?,
        None => archive.load()?,
    };
    let archived = match &prepared {
        Some(_) => archive.count()?,
        None => records.len(),
    };
    let scoped = prepared.as_ref().zip(locals).and_then(|(paths, (la, lb))| {
        let scan = |fd, shown| super::scope::scan_scope(fd, shown, &*backend, &ex, rep, paths);
        Some((
            scan(la.root.as_fd(), &spec.a)?,
            scan(lb.root.as_fd(), &spec.b)?,
        ))
    });
    // New in the scope but archived elsewhere: moved in from outside it
    // (a rename whose own events come later): a whole run replays it.
    let moved_in = |t: &Tree, on_b: bool| -> Result<bool, Error> {
        for (k, s) in &t.entries {
            if !records.contains_key(k) && archive.has_inode(s.ino, on_b)? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let scoped = match scoped {
        Some((ta, tb)) if moved_in(&ta, false)? || moved_in(&tb, true)? => None,
        s => s,
    };
    let full = scoped.is_none();
    if full && prepared.is_some() {
        // The tree changed under the scoped scan: a whole run after all.
        records = archive.load()?;
    }
    let scan_err = |p: &Path, e| Error::at("cannot scan", p, e);
    let (mut ta, mut tb) = match (scoped, locals) {
        (Some(t), _) => t,
        (None, Some((la, lb))) => std::thread::scope(|s| {
            let b = &*backend;
            let (fa, fb, exr) = (la.root.as_fd(), lb.root.as_fd(), &ex);
            let h = s.spawn(move || scan::scan(fb, &spec.b, b, exr, rep));
            let ta = scan::scan(fa, &spec.a, b, exr, rep);
            (ta, h.join().unwrap_or_default())
        }),
        (None, None) => {
            ra.begin_scan().map_err(|e| scan_err(&spec.a, e))?;
            rb.begin_scan().map_err(|e| scan_err(&spec.b, e))?;
            (
                ra.scan(&*backend, &ex, rep)
                    .map_err(|e| scan_err(&spec.a, e))?,
                rb.scan(&*backend, &ex, rep)
                    .map_err(|e| scan_err(&spec.b, e))?,
            )
        }
    };
    ra.add_attrs(&mut ta, rep);
    rb.add_attrs(&mut tb, rep);
    if let (false, Some((la, lb))) = (full || spec.force || archived == 0, locals) {
        for (which, fd, shown) in [("root A", &la.root, &spec.a), ("root B", &lb.root, &spec.b)] {
            if super::scope::is_empty(fd.as_fd()) {
                check_root(
                    which,
                    shown,
                    &Tree::default(),
                    (0, 0),
                    None,
                    archived,
                    false,
                )?;
            }
        }
    }
    if full {
        check_root(
            "root A",
            &spec.a,
            &ta,
            ida.dev,
            archive.meta("dev_a")?,
            archived,
            spec.force,
        )?;
        check_root(
            "root B",
            &spec.b,
            &tb,
            idb.dev,
            archive.meta("dev_b")?,
            archived,
            spec.force,
        )?;
    }
    let skipped: Vec<Vec<u8>> = ta.skipped.iter().chain(&tb.skipped).cloned().collect();
    drop_under(&mut records, &skipped);
    drop_under(&mut ta.entries, &skipped);
    drop_under(&mut tb.entries, &skipped);
    let moves = renames::detect(&mut records, &mut ta, &mut tb);
    let planned = plan(&records, &ta, &tb, ra, rb, spec.policy);
    let deletions = planned
        .iter()
        .filter(|p| matches!(p.action, Action::Delete(_)))
        .count();
    if !full && deletions > 0 {
        // Gone from a scoped pass may be moved out of its scope (a rename
        // whose own events come later): only a whole run tells, and
        // replays it as a rename. Nothing was changed yet.
        drop(archive);
        return run_scoped(spec, opts, rep, None);
    }
    if spec.max_delete < 100
        && archived > 0
        && deletions * 100 > usize::from(spec.max_delete) * archived
    {
        return Err(Error::Guard {
            message: format!(
                "{deletions} of {archived} entries would be deleted, more than --max-delete {}%: \
                 nothing changed (--max-delete 100 turns this guard off)",
                spec.max_delete
            ),
        });
    }
    let mut x = exec::Exec {
        ra,
        rb,
        ta: &ta,
        tb: &tb,
        records: &records,
        archive: &mut archive,
        rep,
        sum: Summary::default(),
        dry: opts.dry_run,
        copy: CopyOpts {
            fsync: opts.fsync,
            no_reflink: opts.no_reflink,
        },
        delete_loser: spec.delete_loser,
        stamp: super::conflict_name::stamp(now_secs()),
    };
    if !opts.dry_run {
        for (side, t) in [(ra, &ta), (rb, &tb)] {
            for l in &t.leftovers {
                let _ = side.remove_leftover(l);
            }
        }
    }
    for m in &moves {
        x.rename(m)?;
    }
    for p in planned.iter().rev() {
        if let Action::Delete(on) = p.action {
            x.delete(on, &p.path)?;
        }
    }
    for p in &planned {
        x.act(p)?;
    }
    if !opts.dry_run {
        // Written only when they change: an unchanged run writes nothing.
        for (k, dev) in [("dev_a", ida.dev), ("dev_b", idb.dev)] {
            if x.archive.meta(k)?.as_deref() != Some(&dev_text(dev)[..]) {
                x.archive.set_meta(k, &dev_text(dev))?;
            }
        }
    }
    x.archive.commit()?;
    Ok(x.sum)
}

/// A root's device, as the guards compare it.
struct Id {
    dev: (u32, u32),
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The archived state of a path present on both sides: A's state with B's
/// inode beside it.
pub fn record_of(a: &State, ino_b: u64) -> super::archive::Record {
    super::archive::Record {
        state: a.clone(),
        ino_b,
    }
}

//! `-H`: the names of one SRC inode become names of one DST inode.
//!
//! Only SRC files with `nlink > 1` are remembered (`fidstate::LinkMap`: (inode,
//! device) to the first name met, relative to the roots), so memory is
//! bounded by the linked files. The first name is synced as usual; every
//! later name is left out of the walk and queued on its operation
//! ([`defer`]); once the walk is done ([`finish`]) each queued name is
//! made a link to the first one in DST (`linkat` to a temporary name,
//! renamed over what DST has), unless both already are one file. So a
//! resync keeps the groups, relinks a name that became a separate copy,
//! and a name whose SRC file got a new inode (re-copied first) is linked
//! again. A link broken in SRC (`nlink == 1` there, more in DST) is
//! copied again ([`super::decide`]), which breaks it in DST. The map
//! lives as long as the syncer: in watch mode `ln a b` in SRC makes `b`
//! a `linkat` of DST's `a` (the kernel reports `a`'s new link count
//! first, `IN_ATTRIB`, which registers `a`).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::fidstate::{key, Queued};
use super::node::Run;
use super::replica::{Attrs, Linked, Replica};
use crate::report::{inc, Event};
use crate::stat::{Kind, Meta};
use crate::sys;

/// With `-H`: whether SRC's `rel` (metadata `s`) is left to [`finish`]:
/// a later name of an inode met before, or (not `strong`: DST has nothing
/// there in a directory that existed, so another name of the inode may
/// have its DST file already) a name whose first name may still come.
pub fn defer(op: &Run, rel: &Path, (s, d): (Option<&Meta>, Option<&Meta>), strong: bool) -> bool {
    let Some(s) = s else { return false };
    if !op.sh.opts.hard_links || s.kind != Kind::File || s.ids.nlink < 2 {
        return false;
    }
    let first = match op.sh.fid.links.claim(s, rel, strong, op.links.generation) {
        Ok(None) => return false,
        Ok(Some(first)) => Some(first),
        Err(()) => None,
    };
    op.links.push(Queued {
        rel: rel.to_path_buf(),
        first,
        src: *s,
        dst: d.filter(|d| d.kind == Kind::File).map(key),
    });
    true
}

/// With `-H`: the first name `rel` of a linked SRC file keeps its DST
/// file `d` (attributes fixed at most): later names already linked to it
/// need no system call in [`finish`].
pub fn settled(op: &Run, rel: &Path, s: &Meta, d: &Meta) {
    if op.sh.opts.hard_links && s.ids.nlink > 1 && d.kind == Kind::File {
        let g = op.links.generation;
        op.sh.fid.links.settled(s, rel, key(d), g);
    }
}

/// The components of a path the walk made (relative, no `..`, no NUL).
fn comps(rel: &Path) -> Vec<CString> {
    use std::os::unix::ffi::OsStrExt;
    rel.iter()
        .filter_map(|c| CString::new(c.as_bytes()).ok())
        .collect()
}

/// Opens the SRC parent of `rel` and stats its entry.
fn src_stat(op: &Run, src_root: BorrowedFd<'_>, rel: &Path) -> Option<(OwnedFd, Meta)> {
    let c = comps(rel);
    let (last, parents) = c.split_last()?;
    let mut fd = sys::open_dir_at(src_root, c".").ok()?;
    for p in parents {
        fd = sys::open_dir_at(fd.as_fd(), p).ok()?;
    }
    let m = op.sh.backend.stat_at(fd.as_fd(), last).ok()??;
    Some((fd, m))
}

/// Another SRC name of `s`'s inode than `rel`, found by a walk of SRC
/// comparing the inode numbers `getdents` gives (no stat but for a
/// match): how an operation on one path (watch mode: `ln a b`, where `a`
/// had one name until now) finds the file `b` must share.
fn find_other_name(op: &Run, src_root: BorrowedFd<'_>, rel: &Path, s: &Meta) -> Option<PathBuf> {
    use std::mem::MaybeUninit;
    let mut stack = vec![(sys::open_dir_at(src_root, c".").ok()?, PathBuf::new())];
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 32 * 1024];
    while let Some((fd, dir_rel)) = stack.pop() {
        let mut dir = rustix::fs::RawDir::new(fd.as_fd(), &mut buf);
        let mut subdirs = Vec::new();
        while let Some(Ok(e)) = dir.next() {
            let name = e.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let here = sys::join(&dir_rel, name);
            if e.file_type() == rustix::fs::FileType::Directory {
                subdirs.push((name.to_owned(), here));
            } else if e.ino() == s.ino && here != rel {
                let m = op.sh.backend.stat_at(fd.as_fd(), name).ok()??;
                if m.ino == s.ino && m.dev == s.dev && !op.sh.excluded(&here, false) {
                    return Some(here);
                }
            }
        }
        for (name, here) in subdirs {
            if let Ok(sub) = sys::open_dir_at(fd.as_fd(), &name) {
                stack.push((sub, here));
            }
        }
    }
    None
}

/// Links every name queued on `op` (see the module docs); `search`: an
/// operation on one path, which looks for the other names of an inode
/// it has not met. Returns the names to sync again as ordinary files.
pub fn finish(
    op: &Run,
    src_root: BorrowedFd<'_>,
    dst: Option<&dyn Replica>,
    search: bool,
) -> Vec<PathBuf> {
    let generation = op.links.generation;
    let queued = op.links.take();
    let mut again = Vec::new();
    let mut parents = BTreeSet::new();
    for q in queued {
        if op.sh.fid.links.already_linked(&q, generation) {
            continue;
        }
        // Both names met in this walk under one key are one SRC inode;
        // a first name from an earlier operation is checked again.
        let fresh = op.sh.fid.links.met_in(&q, generation);
        let rel = q.rel;
        let s = match fresh {
            true => q.src,
            false => match src_stat(op, src_root, &rel) {
                Some((_, s)) => s,
                None => continue,
            },
        };
        let first = q.first.or_else(|| op.sh.fid.links.first(&s)).or_else(|| {
            let other = find_other_name(op, src_root, &rel, &s).filter(|_| search)?;
            op.sh.fid.links.set(&s, &other);
            Some(other)
        });
        let Some(first) = first else {
            // No name of the inode had its DST file: this one is copied.
            op.sh.fid.links.set(&s, &rel);
            again.push(rel);
            continue;
        };
        if again.contains(&first) {
            // Its first name is copied below: linked by that sync.
            again.push(rel);
            continue;
        }
        let same = fresh
            || src_stat(op, src_root, &first)
                .is_some_and(|(_, f)| f.ino == s.ino && f.dev == s.dev);
        if !same {
            op.sh.fid.links.set(&s, &rel);
            again.push(rel);
            continue;
        }
        if op.aborted() {
            continue;
        }
        match link_one(op, dst, &rel, &first) {
            Ok(Some(dir)) => {
                parents.insert(dir);
            }
            Ok(None) => {}
            Err(NoTarget) => {
                op.sh.fid.links.set(&s, &rel);
                again.push(rel);
            }
        }
    }
    if let Some(dst) = dst {
        for dir in parents {
            restore_dir_mtime(op, src_root, dst, &dir);
        }
    }
    again
}

/// DST lacks the first name of a link: the later name is copied instead.
struct NoTarget;

/// Makes DST's `rel` a link to DST's `first` (or, dry or without a DST,
/// reports it). Returns the directory whose mtime the link changed.
fn link_one(
    op: &Run,
    dst: Option<&dyn Replica>,
    rel: &Path,
    first: &Path,
) -> Result<Option<PathBuf>, NoTarget> {
    let (p, t) = (op.dst_path(rel), op.dst_path(first));
    let report = || {
        op.event(Event::HardLinked {
            path: &p,
            target: &t,
        })
    };
    let Some(dst) = dst.filter(|_| !op.sh.opts.dry_run) else {
        inc(&op.counters.links, 1);
        report();
        return Ok(None);
    };
    match dst.hard_link(&comps(first), &comps(rel)) {
        Ok(Linked::Already) => Ok(None),
        Ok(Linked::Made { deleted }) => {
            inc(&op.counters.links, 1);
            inc(&op.counters.deleted, deleted);
            report();
            Ok(Some(
                rel.parent().map(Path::to_path_buf).unwrap_or_default(),
            ))
        }
        Ok(Linked::NoTarget) => Err(NoTarget),
        Err(e) => {
            op.fail("cannot hard link", p.clone(), e);
            Ok(None)
        }
    }
}

/// A link made in a DST directory changed its mtime: SRC's again.
fn restore_dir_mtime(op: &Run, src_root: BorrowedFd<'_>, dst: &dyn Replica, rel: &Path) {
    let mut s = sys::open_dir_at(src_root, c".");
    let mut d = dst.root();
    for c in comps(rel) {
        s = s.and_then(|fd| sys::open_dir_at(fd.as_fd(), &c));
        d = d.and_then(|h| h.open_dir(&c));
    }
    let (Ok(s), Ok(d)) = (s, d) else { return };
    let Ok(m) = op.sh.backend.stat_fd(s.as_fd()) else {
        return;
    };
    let attrs = Attrs {
        perm: None,
        mtime: Some((m.mtime, m.mtime_nsec)),
    };
    if let Err(e) = d.set_attrs(None, &attrs) {
        op.fail("cannot set directory attributes", op.dst_path(rel), e);
    }
}

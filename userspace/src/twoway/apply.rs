//! Carrying out one decision on one side: every operation goes through
//! directory descriptors opened one component at a time with
//! `O_NOFOLLOW` (no write through a symlink, in or out of the tree),
//! content goes to a temporary (`copy::TMP_PREFIX`) that is renamed into
//! place only when complete, and the entry about to be replaced or
//! removed is re-checked first: if it changed since the scan (size,
//! mtime, inode, type, target), it is not touched (the Syncthing#3742
//! case): the incoming version is kept under a conflict name instead.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::Rc;

use super::conflict_name::conflict_name;
use super::reconcile::{State, Type};
use super::scan::{cname, split, state_of};
use crate::copy;
use crate::stat::{StatBackend, Statx};
use crate::sys;

/// Open directories kept per side (cleared beyond this).
const DIR_CACHE: usize = 512;

/// One side of the pair: its open root and how it is shown.
pub struct Side {
    /// The root, open.
    pub root: OwnedFd,
    /// The root as the user named it (for events).
    pub shown: PathBuf,
    /// The side's name in conflict copies (`a`, `b`, or a host).
    pub label: String,
    dirs: RefCell<HashMap<Vec<u8>, Rc<OwnedFd>>>,
}

/// What happened to an install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Installed {
    /// In place; the new entry's inode.
    Done(u64),
    /// The source changed since the scan: nothing installed (the next
    /// run sees the change).
    SourceChanged,
    /// The target changed since the scan: left alone, the incoming
    /// version kept under this name (same directory) instead.
    TargetChanged(Vec<u8>),
}

fn einval(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Whether an entry now (`cur`) is still what the scan saw (`seen`):
/// type, and for files size, mtime and inode, for symlinks the target.
pub fn unchanged(cur: Option<&State>, seen: Option<&State>) -> bool {
    match (cur, seen) {
        (None, None) => true,
        (Some(c), Some(s)) => {
            c.kind == s.kind
                && match c.kind {
                    Type::Dir => true,
                    Type::Symlink => c.target == s.target && c.ino == s.ino,
                    Type::File => c.size == s.size && c.mtime == s.mtime && c.ino == s.ino,
                }
        }
        _ => false,
    }
}

impl Side {
    /// A side rooted at `root`.
    pub fn new(root: OwnedFd, shown: PathBuf, label: String) -> Side {
        Side {
            root,
            shown,
            label,
            dirs: RefCell::new(HashMap::new()),
        }
    }

    /// The user-visible path of `rel`.
    pub fn shown(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            return self.shown.clone();
        }
        self.shown.join(OsStr::from_bytes(rel))
    }

    /// The directory `rel` (relative to the root), opened one component
    /// at a time without following symlinks.
    pub fn dir(&self, rel: &[u8]) -> io::Result<Rc<OwnedFd>> {
        if let Some(d) = self.dirs.borrow().get(rel) {
            return Ok(d.clone());
        }
        let fd = if rel.is_empty() {
            sys::open_dir_at(self.root.as_fd(), c".")?
        } else {
            let (parent, name) = split(rel);
            let p = self.dir(parent)?;
            sys::open_dir_at(p.as_fd(), &cname(name))?
        };
        let fd = Rc::new(fd);
        let mut dirs = self.dirs.borrow_mut();
        if dirs.len() >= DIR_CACHE {
            dirs.clear();
        }
        dirs.insert(rel.to_vec(), fd.clone());
        Ok(fd)
    }

    /// Forgets the open directories (after a directory was removed or
    /// renamed).
    pub fn forget_dirs(&self) {
        self.dirs.borrow_mut().clear();
    }

    /// The state of `name` in `dir` now (`None`: absent; a special file is
    /// an error).
    pub fn stat_in(&self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<State>> {
        let Some(m) = Statx.stat_at(dir, name)? else {
            return Ok(None);
        };
        let target = if m.kind == crate::stat::Kind::Symlink {
            sys::readlink_at(dir, name)?
        } else {
            Vec::new()
        };
        state_of(&m, target)
            .map(Some)
            .ok_or_else(|| einval("a special file is in the way"))
    }

    /// The state of `rel` now.
    pub fn stat(&self, rel: &[u8]) -> io::Result<Option<State>> {
        let (parent, name) = split(rel);
        match self.dir(parent) {
            Ok(d) => self.stat_in(d.as_fd(), &cname(name)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A conflict name for `name` in `dir` that is free on this side and
    /// in `also` (the other side's directory, when it exists).
    pub fn free_conflict_name(
        &self,
        dir: BorrowedFd<'_>,
        also: Option<BorrowedFd<'_>>,
        name: &[u8],
        stamp: &str,
        label: &str,
    ) -> CString {
        for n in 0..1000 {
            let c = cname(&conflict_name(name, stamp, label, n));
            let taken = |d: BorrowedFd<'_>| !matches!(Statx.stat_at(d, &c), Ok(None));
            if !taken(dir) && !also.is_some_and(taken) {
                return c;
            }
        }
        cname(&conflict_name(name, stamp, label, std::process::id()))
    }

    /// Renames `from` to `to` (both in the directory `rel_dir`) without
    /// replacing anything.
    pub fn rename_noreplace(&self, rel_dir: &[u8], from: &CStr, to: &CStr) -> io::Result<()> {
        let d = self.dir(rel_dir)?;
        rustix::fs::renameat_with(
            d.as_fd(),
            from,
            d.as_fd(),
            to,
            rustix::fs::RenameFlags::NOREPLACE,
        )?;
        Ok(())
    }
}

/// Knobs of the copy.
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyOpts {
    /// fsync the temporary before renaming it.
    pub fsync: bool,
    /// read/write only (`--no-reflink`).
    pub no_reflink: bool,
}

/// Puts the complete temporary `tmp` of `dir` at `name`, if `name` is
/// still `expect`; otherwise under a conflict name labelled `label`.
pub(crate) fn install(
    to: &Side,
    dir: BorrowedFd<'_>,
    tmp: &CStr,
    name: &[u8],
    expect: Option<&State>,
    stamp: &str,
    label: &str,
) -> io::Result<Installed> {
    let ino = Statx
        .stat_at(dir, tmp)?
        .ok_or_else(|| einval("temporary vanished"))?
        .ino;
    let c = cname(name);
    let cur = to.stat_in(dir, &c)?;
    if !unchanged(cur.as_ref(), expect) {
        let alt = to.free_conflict_name(dir, None, name, stamp, label);
        sys::rename_at(dir, tmp, dir, &alt)?;
        return Ok(Installed::TargetChanged(alt.into_bytes()));
    }
    if cur.as_ref().is_some_and(|s| s.kind == Type::Dir) {
        if let Err(e) = sys::rmdir_at(dir, &c) {
            let _ = sys::unlink_at(dir, tmp);
            return Err(e);
        }
        to.forget_dirs();
    }
    if let Err(e) = sys::rename_at(dir, tmp, dir, &c) {
        let _ = sys::unlink_at(dir, tmp);
        return Err(e);
    }
    Ok(Installed::Done(ino))
}

/// Makes the directory `name` of `dir` as `src` (its mode), if `name`
/// is still `expect`: an existing directory only gets the mode, another
/// type is replaced. `SourceChanged` when `name` changed since the scan.
pub(crate) fn make_dir(
    to: &Side,
    dir: BorrowedFd<'_>,
    name: &CStr,
    src: &State,
    expect: Option<&State>,
) -> io::Result<Installed> {
    let cur = to.stat_in(dir, name)?;
    if !unchanged(cur.as_ref(), expect) {
        return Ok(Installed::SourceChanged);
    }
    match cur {
        Some(s) if s.kind == Type::Dir => {
            if s.perm != src.perm {
                sys::chmod_at_nofollow(dir, name, src.perm)?;
            }
            return Ok(Installed::Done(s.ino));
        }
        Some(_) => sys::unlink_at(dir, name)?,
        None => {}
    }
    sys::mkdir_at(dir, name, 0o700)?;
    sys::chmod_at_nofollow(dir, name, src.perm)?;
    let ino = Statx
        .stat_at(dir, name)?
        .ok_or_else(|| einval("new directory vanished"))?
        .ino;
    Ok(Installed::Done(ino))
}

/// Gives the complete temporary `tfd` `src`'s mode and mtime (and
/// fsyncs it with `--fsync`), before it gets its name.
pub(crate) fn finish_temp(tfd: BorrowedFd<'_>, src: &State, o: CopyOpts) -> io::Result<()> {
    sys::chmod_fd(tfd, src.perm)?;
    let (s, ns) = (
        src.mtime.div_euclid(1_000_000_000),
        src.mtime.rem_euclid(1_000_000_000),
    );
    sys::set_mtime_fd(tfd, s, ns as u32)?;
    if o.fsync {
        sys::fsync(tfd)?;
    }
    Ok(())
}

/// Copies the entry `src_path` of `from` (as scanned: `src`) to
/// `dst_path` on `to`, where the scan saw `expect`. Directories are
/// created (or their mode set); files and symlinks go through a
/// temporary. Returns what happened.
#[allow(clippy::too_many_arguments)]
pub fn copy_entry(
    from: &Side,
    to: &Side,
    src_path: &[u8],
    src: &State,
    dst_path: &[u8],
    expect: Option<&State>,
    stamp: &str,
    o: CopyOpts,
) -> io::Result<Installed> {
    let (sparent, sname) = split(src_path);
    let (dparent, dname) = split(dst_path);
    let sdir = from.dir(sparent)?;
    let ddir = to.dir(dparent)?;
    let dc = cname(dname);
    match src.kind {
        Type::Dir => make_dir(to, ddir.as_fd(), &dc, src, expect),
        Type::Symlink => {
            let now = from.stat_in(sdir.as_fd(), &cname(sname))?;
            if !unchanged(now.as_ref(), Some(src)) {
                return Ok(Installed::SourceChanged);
            }
            let tmp = copy::temp_name();
            sys::symlink_at(&src.target, ddir.as_fd(), &tmp)?;
            install(to, ddir.as_fd(), &tmp, dname, expect, stamp, &from.label)
        }
        Type::File => {
            let fd = sys::open_listed_file_at(sdir.as_fd(), &cname(sname))?;
            let seen = |fd: BorrowedFd<'_>| -> io::Result<bool> {
                let m = Statx.stat_fd(fd)?;
                Ok(state_of(&m, Vec::new()).is_some_and(|s| unchanged(Some(&s), Some(src))))
            };
            if !seen(fd.as_fd())? {
                return Ok(Installed::SourceChanged);
            }
            let (tmp, tfd) = copy::create_temp(ddir.as_fd())?;
            let done = (|| -> io::Result<bool> {
                let n = if o.no_reflink {
                    copy::copy_data_rw(fd.as_fd(), tfd.as_fd(), src.size)?
                } else {
                    copy::copy_data(fd.as_fd(), tfd.as_fd(), src.size)?
                };
                if n != src.size || !seen(fd.as_fd())? {
                    return Ok(false);
                }
                finish_temp(tfd.as_fd(), src, o)?;
                Ok(true)
            })();
            drop(tfd);
            match done {
                Ok(true) => install(to, ddir.as_fd(), &tmp, dname, expect, stamp, &from.label),
                Ok(false) => {
                    let _ = sys::unlink_at(ddir.as_fd(), &tmp);
                    Ok(Installed::SourceChanged)
                }
                Err(e) => {
                    let _ = sys::unlink_at(ddir.as_fd(), &tmp);
                    Err(e)
                }
            }
        }
    }
}

/// Removes `path` on `side` if it is still what the scan saw; a directory
/// only when empty. `Ok(false)`: left alone (changed, or not empty).
pub fn remove_entry(side: &Side, path: &[u8], seen: &State) -> io::Result<bool> {
    let (parent, name) = split(path);
    let d = side.dir(parent)?;
    let c = cname(name);
    let cur = side.stat_in(d.as_fd(), &c)?;
    if cur.is_none() {
        return Ok(true);
    }
    if !unchanged(cur.as_ref(), Some(seen)) {
        return Ok(false);
    }
    if seen.kind == Type::Dir {
        match sys::rmdir_at(d.as_fd(), &c) {
            Ok(()) => {
                side.forget_dirs();
                Ok(true)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(false),
            Err(e) => Err(e),
        }
    } else {
        sys::unlink_at(d.as_fd(), &c)?;
        Ok(true)
    }
}

/// Gives `path` on `side` the mode (and, for files, the mtime) of `to`,
/// if it is still what the scan saw (`Ok(false)` otherwise).
pub fn set_attrs(
    side: &Side,
    path: &[u8],
    seen: &State,
    to: &State,
    mtime: bool,
) -> io::Result<bool> {
    let (parent, name) = split(path);
    let d = side.dir(parent)?;
    let c = cname(name);
    let cur = side.stat_in(d.as_fd(), &c)?;
    if !unchanged(cur.as_ref(), Some(seen)) {
        return Ok(false);
    }
    if seen.kind != Type::Symlink && seen.perm != to.perm {
        sys::chmod_at_nofollow(d.as_fd(), &c, to.perm)?;
    }
    if mtime && seen.kind == Type::File {
        let (s, ns) = (
            to.mtime.div_euclid(1_000_000_000),
            to.mtime.rem_euclid(1_000_000_000),
        );
        sys::set_mtime_at(d.as_fd(), &c, s, ns as u32)?;
    }
    Ok(true)
}

/// Removes a temporary left by an interrupted run.
pub fn remove_leftover(side: &Side, path: &[u8]) -> io::Result<()> {
    let (parent, name) = split(path);
    let d = side.dir(parent)?;
    let c = cname(name);
    match Statx.stat_at(d.as_fd(), &c)? {
        Some(m) if m.kind == crate::stat::Kind::Dir => Ok(()),
        Some(_) => sys::unlink_at(d.as_fd(), &c),
        None => Ok(()),
    }
}

//! Root validation: SRC must be a directory; DST a directory or missing
//! (created, unless a dry run); neither the same as nor inside the other,
//! however spelled (symlinks, `..`): checked by device and inode while
//! climbing `..` from each side.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::report::{Event, Reporter};
use crate::stat::{self, StatBackend};
use crate::sys;
use crate::{Error, Result};

/// The two validated roots.
pub struct Roots {
    /// SRC, open.
    pub src: OwnedFd,
    /// DST, open (`None`: a dry run and DST does not exist).
    pub dst: Option<OwnedFd>,
    /// DST was created now.
    pub dst_created: bool,
}

/// (dev major, dev minor, ino) of a descriptor.
fn ident(fd: BorrowedFd<'_>) -> io::Result<(u32, u32, u64)> {
    let m = stat::Statx.stat_fd(fd)?;
    Ok((m.dev.0, m.dev.1, m.ino))
}

/// Whether the directory `target` is `start` or one of its ancestors,
/// following `..` from `start` up to `/` (catches nesting through
/// symlinks or different spellings of the same path).
fn has_ancestor(start: &Path, target: (u32, u32, u64)) -> io::Result<bool> {
    let mut fd = sys::open_root(start)?;
    loop {
        let me = ident(fd.as_fd())?;
        if me == target {
            return Ok(true);
        }
        let parent = sys::open_parent(fd.as_fd())?;
        if ident(parent.as_fd())? == me {
            return Ok(false);
        }
        fd = parent;
    }
}

/// Whether DST exists (a directory); an error when it is something else.
fn dst_exists(dst: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(dst) {
        Ok(_) => match std::fs::metadata(dst) {
            Ok(m) if m.is_dir() => Ok(true),
            Ok(_) => Err(Error::invalid(
                "destination",
                dst,
                "exists and is not a directory",
            )),
            Err(e) => Err(Error::at("cannot access destination", dst, e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::at("cannot access destination", dst, e)),
    }
}

/// The nearest existing directory of DST: itself, or its parent.
fn dst_anchor(dst: &Path, exists: bool) -> Result<PathBuf> {
    if exists {
        return Ok(dst.to_path_buf());
    }
    let parent = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::invalid(
            "destination",
            dst,
            "its parent directory does not exist",
        ));
    }
    Ok(parent)
}

/// SRC: exists, a directory; opened.
pub fn open_src(src: &Path) -> Result<OwnedFd> {
    let sm = std::fs::metadata(src).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::invalid("source directory", src, "does not exist"),
        _ => Error::at("cannot access source directory", src, e),
    })?;
    if !sm.is_dir() {
        return Err(Error::invalid("source", src, "is not a directory"));
    }
    sys::open_root(src).map_err(|e| Error::at("cannot open", src, e))
}

/// Refuses SRC and DST that are the same or nested.
fn check_nesting(src: &Path, src_id: (u32, u32, u64), dst: &Path, exists: bool) -> Result<()> {
    if exists {
        let dfd = sys::open_root(dst).map_err(|e| Error::at("cannot open", dst, e))?;
        let did = ident(dfd.as_fd()).map_err(|e| Error::at("cannot stat", dst, e))?;
        if did == src_id {
            let why = "source and destination are the same directory";
            return Err(Error::invalid("refusing to sync", dst, why));
        }
        if has_ancestor(src, did).map_err(|e| Error::at("cannot check", src, e))? {
            let why = "the source is inside the destination";
            return Err(Error::invalid("refusing to sync", src, why));
        }
    }
    let anchor = dst_anchor(dst, exists)?;
    if has_ancestor(&anchor, src_id).map_err(|e| Error::at("cannot check", dst, e))? {
        let why = "the destination is inside the source";
        return Err(Error::invalid("refusing to sync", dst, why));
    }
    Ok(())
}

/// Validates SRC and DST, and opens them. `prepare` runs after the checks
/// and before DST is created (it may still refuse).
pub fn open(
    src: &Path,
    dst: &Path,
    dry_run: bool,
    reporter: &dyn Reporter,
    prepare: impl FnOnce() -> Result<()>,
) -> Result<Roots> {
    let src_fd = open_src(src)?;
    let src_id = ident(src_fd.as_fd()).map_err(|e| Error::at("cannot stat", src, e))?;
    let exists = dst_exists(dst)?;
    check_nesting(src, src_id, dst, exists)?;
    prepare()?;
    let open_dst = || sys::open_root(dst).map_err(|e| Error::at("cannot open", dst, e));
    let dst_fd = if exists {
        Some(open_dst()?)
    } else if dry_run {
        reporter.event(&Event::CreatedDir { path: dst });
        None
    } else {
        match std::fs::create_dir(dst) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::at("cannot create destination", dst, e)),
        }
        reporter.event(&Event::CreatedDir { path: dst });
        Some(open_dst()?)
    };
    Ok(Roots {
        src: src_fd,
        dst: dst_fd,
        dst_created: !exists,
    })
}

//! Removing an entry of DST and, for a directory, everything below it:
//! the one recursive delete of the local replica, dirfd-relative and
//! without following any symlink.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys::{self, DirEntry};

/// Removes `name` in `dir` and, if it is a directory, everything below it,
/// without following any symlink (iterative: any depth). Returns how many
/// entries were removed. When not root, directories are made writable
/// first (they belong to us).
pub fn remove_tree(dir: BorrowedFd<'_>, name: &CStr, is_root: bool) -> io::Result<u64> {
    match sys::unlink_at(dir, name) {
        Ok(()) => return Ok(1),
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            // Linux unlink() of a directory gives EISDIR; be lenient.
        }
        Err(e) => return Err(e),
    }
    struct Level {
        fd: OwnedFd,
        entries: Vec<DirEntry>,
        name: CString,
    }
    let open_level = |parent: BorrowedFd<'_>, name: &CStr| -> io::Result<Level> {
        let fd = sys::open_dir_at(parent, name)?;
        if !is_root {
            // We are about to delete it; make sure we may.
            let _ = sys::chmod_fd(fd.as_fd(), 0o700);
        }
        let entries = sys::read_dir(fd.as_fd())?;
        Ok(Level {
            fd,
            entries,
            name: name.to_owned(),
        })
    };
    let mut count = 0u64;
    let mut stack = vec![open_level(dir, name)?];
    while let Some(top) = stack.last_mut() {
        if let Some(ent) = top.entries.pop() {
            let fd = top.fd.as_fd();
            if ent.d_type != libc::DT_DIR {
                match sys::unlink_at(fd, &ent.name) {
                    Ok(()) => {
                        count += 1;
                        continue;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {}
                    Err(e) => return Err(e),
                }
            }
            let lvl = open_level(fd, &ent.name)?;
            stack.push(lvl);
        } else {
            let done = stack.pop().expect("non-empty");
            let parent = stack.last().map(|l| l.fd.as_fd()).unwrap_or(dir);
            drop(done.fd);
            sys::rmdir_at(parent, &done.name)?;
            count += 1;
        }
    }
    Ok(count)
}

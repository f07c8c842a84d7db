//! The `dirsync_stat(2)` backend: the only code that knows `struct
//! dirsync_info` (generated from the uapi header, [`crate::uapi`]) and the
//! one system call `rustix` cannot make for us.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::meta::{Kind, Meta, StatBackend};
use crate::uapi;

/// The `dirsync_stat(2)` system call, verified present by
/// [`super::discover`].
#[derive(Debug)]
pub struct DirsyncSyscall {
    nr: libc::c_long,
    abi: u32,
}

impl DirsyncSyscall {
    /// The backend calling system call `nr`, which speaks ABI `abi`.
    ///
    /// # Safety
    ///
    /// The running kernel must implement `dirsync_stat(int dfd, const char
    /// *path, struct dirsync_info *info, unsigned int flags)` under `nr`
    /// with the layout of [`uapi::dirsync_info`] (what
    /// [`super::discover`] verifies); any other system call under that
    /// number would be called with these arguments.
    pub unsafe fn new(nr: u32, abi: u32) -> Self {
        DirsyncSyscall {
            nr: libc::c_long::from(nr),
            abi,
        }
    }

    /// The verified syscall number.
    pub fn nr(&self) -> i64 {
        self.nr
    }

    fn call(&self, dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> io::Result<uapi::dirsync_info> {
        let mut info = uapi::dirsync_info::default();
        // SAFETY: `new`'s contract: the kernel implements dirsync_stat with
        // our ABI under `self.nr`. `dir` is a descriptor borrowed for the
        // call, `name` is NUL-terminated and outlives it, and `info` is a
        // valid, writable dirsync_info.
        let r = unsafe {
            libc::syscall(
                self.nr,
                libc::c_long::from(dir.as_raw_fd()),
                name.as_ptr(),
                &mut info as *mut uapi::dirsync_info,
                flags as libc::c_uint,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(info)
    }
}

fn meta_from_info(info: &uapi::dirsync_info) -> Meta {
    Meta {
        kind: Kind::from_mode(info.mode),
        perm: info.mode & 0o7777,
        size: info.size,
        mtime: info.mtime,
        mtime_nsec: info.mtime_nsec,
        ino: info.ino,
        dev: (info.dev_major, info.dev_minor),
    }
}

impl StatBackend for DirsyncSyscall {
    fn stat_at(&self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Meta>> {
        let info = self.call(dir, name, libc::AT_SYMLINK_NOFOLLOW)?;
        if info.exists == 0 {
            return Ok(None);
        }
        Ok(Some(meta_from_info(&info)))
    }
    fn stat_fd(&self, fd: BorrowedFd<'_>) -> io::Result<Meta> {
        let info = self.call(fd, c"", libc::AT_EMPTY_PATH)?;
        if info.exists == 0 {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(meta_from_info(&info))
    }
    fn describe(&self) -> String {
        format!("dirsync_stat (syscall {}, ABI {})", self.nr, self.abi)
    }
}

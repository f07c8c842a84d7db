//! The `dirsync_stat(2)` backend: the only code that knows `struct
//! dirsync_info` (generated from the uapi header, [`crate::uapi`]) and the
//! one system call `rustix` cannot make for us.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::meta::{Kind, Meta, StatBackend};
use super::statx::Statx;
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

/// The `DIRSYNC_INFO_*` fields the engine compares: all of the basic ones.
const NEEDED: u32 = uapi::DIRSYNC_INFO_BASIC;

/// The answer as a [`Meta`], or `None` when the file system left out a
/// field the engine compares (`info.mask`, like statx's `stx_mask`); the
/// caller then asks statx, so both backends give the same answer.
pub(super) fn meta_from_info(info: &uapi::dirsync_info) -> Option<Meta> {
    if info.mask & NEEDED != NEEDED {
        return None;
    }
    Some(Meta {
        kind: Kind::from_mode(info.mode),
        perm: info.mode & 0o7777,
        size: info.size,
        mtime: info.mtime,
        mtime_nsec: info.mtime_nsec,
        ino: info.ino,
        dev: (info.dev_major, info.dev_minor),
        ids: Default::default(),
    })
}

impl StatBackend for DirsyncSyscall {
    fn stat_at(&self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Meta>> {
        let info = self.call(dir, name, libc::AT_SYMLINK_NOFOLLOW)?;
        if info.exists == 0 {
            return Ok(None);
        }
        match meta_from_info(&info) {
            Some(meta) => Ok(Some(meta)),
            None => Statx.stat_at(dir, name),
        }
    }
    fn stat_fd(&self, fd: BorrowedFd<'_>) -> io::Result<Meta> {
        // AT_EMPTY_PATH alone with an empty path: the kernel describes the
        // descriptor itself without a path walk.
        let info = self.call(fd, c"", libc::AT_EMPTY_PATH)?;
        if info.exists == 0 {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        match meta_from_info(&info) {
            Some(meta) => Ok(meta),
            None => Statx.stat_fd(fd),
        }
    }
    fn describe(&self) -> String {
        format!("dirsync_stat (syscall {}, ABI {})", self.nr, self.abi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(mask: u32) -> uapi::dirsync_info {
        uapi::dirsync_info {
            exists: 1,
            mode: libc::S_IFREG | 0o640,
            size: 12,
            mtime: 1 << 33,
            mtime_nsec: 7,
            mask,
            ino: 42,
            dev_major: 8,
            dev_minor: 1,
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_answer_becomes_meta() {
        let m = meta_from_info(&info(NEEDED)).expect("all basic fields");
        assert_eq!(m.kind, Kind::File);
        assert_eq!(m.perm, 0o640);
        assert_eq!((m.size, m.mtime, m.mtime_nsec), (12, 1 << 33, 7));
        assert_eq!((m.ino, m.dev), (42, (8, 1)));
        // Bits this program does not know (a newer kernel) are ignored.
        assert!(meta_from_info(&info(NEEDED | 0x8000_0000)).is_some());
    }

    #[test]
    fn a_field_left_out_is_asked_of_statx() {
        for bit in [
            uapi::DIRSYNC_INFO_TYPE,
            uapi::DIRSYNC_INFO_MODE,
            uapi::DIRSYNC_INFO_SIZE,
            uapi::DIRSYNC_INFO_MTIME,
            uapi::DIRSYNC_INFO_INO,
            uapi::DIRSYNC_INFO_DEV,
        ] {
            assert!(meta_from_info(&info(NEEDED & !bit)).is_none(), "{bit:#x}");
        }
    }
}

//! The `dirsync_stat(2)` backend: the only code that knows `struct
//! dirsync_info` (generated from the uapi header, [`crate::uapi`]) and the
//! one system call `rustix` cannot make for us.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::meta::{Ids, Kind, Meta, StatBackend};
use super::statx::Statx;
use crate::uapi;

/// The `dirsync_stat(2)` system call, verified present by
/// [`super::discover`].
#[derive(Debug)]
pub struct DirsyncSyscall {
    nr: libc::c_long,
    abi: u32,
    /// The `DIRSYNC_INFO_*` bits an answer must have to be used.
    need: u32,
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
            need: NEEDED,
        }
    }

    /// The same call, for an engine that compares owner, group or link
    /// count: an answer without them (an older kernel, see
    /// [`DirsyncSyscall::gives_ids`]) is asked of statx.
    pub fn needing_ids(self) -> Self {
        DirsyncSyscall {
            need: NEEDED | IDS,
            ..self
        }
    }

    /// Whether the running kernel fills owner, group and link count
    /// (`DIRSYNC_INFO_UID`, `_GID`, `_NLINK`, added to the ABI after its
    /// first version): asked of `/`, decided by the answer's mask.
    pub fn gives_ids(&self) -> io::Result<bool> {
        let info = self.call(rustix::fs::CWD, c"/", libc::AT_SYMLINK_NOFOLLOW)?;
        Ok(info.exists == 1 && info.mask & IDS == IDS)
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

/// The `DIRSYNC_INFO_*` fields the engine always compares: all of the
/// basic ones.
pub(super) const NEEDED: u32 = uapi::DIRSYNC_INFO_BASIC;

/// Owner, group and link count: the fields `-o`, `-g` and `-H` compare.
pub(super) const IDS: u32 =
    uapi::DIRSYNC_INFO_UID | uapi::DIRSYNC_INFO_GID | uapi::DIRSYNC_INFO_NLINK;

/// The answer as a [`Meta`], or `None` when it lacks a field of `need`
/// (`info.mask`, like statx's `stx_mask`: a file system that left it out,
/// or a kernel older than the field); the caller then asks statx, so both
/// backends give the same answer. Owner, group and link count are filled
/// when their bits are set, else zero as from a kernel without them
/// ([`Meta::ids`]); the allocated blocks are statx's alone.
pub(super) fn meta_from_info(info: &uapi::dirsync_info, need: u32) -> Option<Meta> {
    if info.mask & need != need {
        return None;
    }
    let field = |bit: u32, value: u32| if info.mask & bit != 0 { value } else { 0 };
    Some(Meta {
        kind: Kind::from_mode(info.mode),
        perm: info.mode & 0o7777,
        size: info.size,
        mtime: info.mtime,
        mtime_nsec: info.mtime_nsec,
        ino: info.ino,
        dev: (info.dev_major, info.dev_minor),
        ids: Ids {
            uid: field(uapi::DIRSYNC_INFO_UID, info.uid),
            gid: field(uapi::DIRSYNC_INFO_GID, info.gid),
            nlink: field(uapi::DIRSYNC_INFO_NLINK, info.nlink),
            blocks: 0,
        },
    })
}

impl StatBackend for DirsyncSyscall {
    fn stat_at(&self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Meta>> {
        let info = self.call(dir, name, libc::AT_SYMLINK_NOFOLLOW)?;
        if info.exists == 0 {
            return Ok(None);
        }
        match meta_from_info(&info, self.need) {
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
        match meta_from_info(&info, self.need) {
            Some(meta) => Ok(meta),
            None => Statx.stat_fd(fd),
        }
    }
    fn describe(&self) -> String {
        let ids = if self.need & IDS != 0 {
            ", with owner, group, links"
        } else {
            ""
        };
        format!("dirsync_stat (syscall {}, ABI {}{ids})", self.nr, self.abi)
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
        let m = meta_from_info(&info(NEEDED), NEEDED).expect("all basic fields");
        assert_eq!(m.kind, Kind::File);
        assert_eq!(m.perm, 0o640);
        assert_eq!((m.size, m.mtime, m.mtime_nsec), (12, 1 << 33, 7));
        assert_eq!((m.ino, m.dev), (42, (8, 1)));
        // Bits this program does not know (a newer kernel) are ignored.
        assert!(meta_from_info(&info(NEEDED | 0x8000_0000), NEEDED).is_some());
    }

    fn with_ids(mask: u32) -> uapi::dirsync_info {
        uapi::dirsync_info {
            uid: 1234,
            gid: 5678,
            nlink: 3,
            ..info(mask)
        }
    }

    #[test]
    fn owner_group_and_links_come_from_their_bits() {
        let m = meta_from_info(&with_ids(NEEDED | IDS), NEEDED | IDS).expect("complete");
        assert_eq!((m.ids.uid, m.ids.gid, m.ids.nlink), (1234, 5678, 3));
        // A field whose bit is clear is not trusted, whatever it holds.
        let m = meta_from_info(&with_ids(NEEDED | uapi::DIRSYNC_INFO_GID), NEEDED).unwrap();
        assert_eq!((m.ids.uid, m.ids.gid, m.ids.nlink), (0, 5678, 0));
    }

    #[test]
    fn an_answer_without_ids_is_asked_of_statx_when_they_are_needed() {
        // A kernel of the first ABI: basic fields only.
        assert!(meta_from_info(&info(NEEDED), NEEDED | IDS).is_none());
        for bit in [
            uapi::DIRSYNC_INFO_UID,
            uapi::DIRSYNC_INFO_GID,
            uapi::DIRSYNC_INFO_NLINK,
        ] {
            let partial = with_ids(NEEDED | (IDS & !bit));
            assert!(meta_from_info(&partial, NEEDED | IDS).is_none(), "{bit:#x}");
            assert!(meta_from_info(&partial, NEEDED).is_some(), "{bit:#x}");
        }
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
            assert!(
                meta_from_info(&info(NEEDED & !bit), NEEDED).is_none(),
                "{bit:#x}"
            );
        }
    }
}

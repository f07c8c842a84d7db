//! The `statx(2)` backend.

use std::ffi::CStr;
use std::io;
use std::os::fd::BorrowedFd;

use rustix::fs::{AtFlags, StatxFlags};

use super::meta::{Ids, Kind, Meta, StatBackend};
use crate::sys;

/// `statx(2)`.
#[derive(Debug, Default)]
pub struct Statx;

const MASK: StatxFlags = StatxFlags::TYPE
    .union(StatxFlags::MODE)
    .union(StatxFlags::SIZE)
    .union(StatxFlags::MTIME)
    .union(StatxFlags::INO)
    .union(StatxFlags::UID)
    .union(StatxFlags::GID)
    .union(StatxFlags::NLINK)
    .union(StatxFlags::BLOCKS);

fn statx(dir: BorrowedFd<'_>, name: &CStr, flags: AtFlags) -> io::Result<Meta> {
    let stx = sys::statx(dir, name, flags, MASK)?;
    let mode = u32::from(stx.stx_mode);
    Ok(Meta {
        kind: Kind::from_mode(mode),
        perm: mode & 0o7777,
        size: stx.stx_size,
        mtime: stx.stx_mtime.tv_sec,
        mtime_nsec: stx.stx_mtime.tv_nsec,
        ino: stx.stx_ino,
        dev: (stx.stx_dev_major, stx.stx_dev_minor),
        ids: Ids {
            uid: stx.stx_uid,
            gid: stx.stx_gid,
            nlink: stx.stx_nlink,
            blocks: stx.stx_blocks,
        },
    })
}

impl StatBackend for Statx {
    fn stat_at(&self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Meta>> {
        let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_SYNC_AS_STAT;
        match statx(dir, name, flags) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn stat_fd(&self, fd: BorrowedFd<'_>) -> io::Result<Meta> {
        statx(fd, c"", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)
    }
    fn describe(&self) -> String {
        "statx".to_string()
    }
}

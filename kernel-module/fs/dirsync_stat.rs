// SPDX-License-Identifier: GPL-2.0

//! `dirsync_stat(2)`: the metadata a directory synchronizer compares, in one
//! kernel transition.
//!
//! The system call entry point is the C shim in `fs/dirsync_syscall.c`, which
//! calls [`dirsync_stat_rust`]. The ABI is described in
//! `include/uapi/linux/dirsync.h`.
//!
//! The user string is copied once into a [`Filename`] and resolved by one
//! path walk ([`Filename::lookup`], i.e. `filename_lookup_missing()`) that
//! tells a missing last component (the answer `exists == 0`) from a missing
//! directory in the prefix (-ENOENT); no directory lock is taken
//! exclusively. The attributes are read with `vfs_getattr()`, retrying the
//! walk once with `LOOKUP_REVAL` on -ESTALE as `vfs_statx()` does. With
//! `AT_EMPTY_PATH` and a NULL or empty path the file descriptor itself is
//! described, without a walk.
// dirsync-series: begin readdir
//!
//! The crate also holds `dirsync_readdir(2)` (`fs/dirsync_readdir.rs`),
//! which describes each entry as this call does.
// dirsync-series: end readdir

use core::mem::{offset_of, size_of};
use kernel::{
    error::{
        code::{EINVAL, ESTALE},
        Result,
    },
    ffi::{c_char, c_int, c_long, c_uint},
    fs::{self, at, lookup, statx, Filename, Kstat, Lookup, RawFile, S_IFMT},
    uaccess::{UserPtr, UserSlice},
    uapi,
};
// dirsync-series: begin readdir

/// `dirsync_readdir(2)`, which describes each entry as `dirsync_stat(2)` does.
#[path = "dirsync_readdir.rs"]
pub mod readdir;
// dirsync-series: end readdir

/// The `AT_*` flags `dirsync_stat(2)` accepts.
const VALID_AT_FLAGS: u32 =
    at::SYMLINK_NOFOLLOW | at::EMPTY_PATH | at::NO_AUTOMOUNT | at::STATX_SYNC_TYPE;

/// The answer, field by field; [`DirsyncInfo::to_words`] lays it out as the
/// uapi `struct dirsync_info`.
#[derive(Default)]
struct DirsyncInfo {
    exists: u32,
    mode: u32,
    size: u64,
    mtime: i64,
    mtime_nsec: u32,
    mask: u32,
    ino: u64,
    dev_major: u32,
    dev_minor: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
}

/// The uapi struct, as bindgen generated it from
/// `include/uapi/linux/dirsync.h`.
type UapiInfo = uapi::dirsync_info;

/// `struct dirsync_info` as ten native 64-bit words: 80 bytes, the same on
/// every architecture, copied out with one `copy_to_user()`.
type InfoWords = [u64; 10];

// Where the fields live in the words; [`DirsyncInfo::to_words`] relies on
// it, and the words cover the struct exactly.
const _: () = {
    assert!(size_of::<UapiInfo>() == size_of::<InfoWords>());
    assert!(offset_of!(UapiInfo, exists) == 0 && offset_of!(UapiInfo, mode) == 4);
    assert!(offset_of!(UapiInfo, size) == 8);
    assert!(offset_of!(UapiInfo, mtime) == 16);
    assert!(offset_of!(UapiInfo, mtime_nsec) == 24 && offset_of!(UapiInfo, mask) == 28);
    assert!(offset_of!(UapiInfo, ino) == 32);
    assert!(offset_of!(UapiInfo, dev_major) == 40 && offset_of!(UapiInfo, dev_minor) == 44);
    assert!(offset_of!(UapiInfo, uid) == 48 && offset_of!(UapiInfo, gid) == 52);
    assert!(offset_of!(UapiInfo, nlink) == 56 && offset_of!(UapiInfo, __spare0) == 60);
    assert!(offset_of!(UapiInfo, __spare) == 64);
};

/// The 64-bit word holding the `u32` at `first` and the next `u32`, as
/// memory holds them.
fn pair(first: u32, second: u32) -> u64 {
    if cfg!(target_endian = "little") {
        u64::from(first) | u64::from(second) << 32
    } else {
        u64::from(first) << 32 | u64::from(second)
    }
}

impl DirsyncInfo {
    /// The answer for an existing object: the fields the file system
    /// provided (`stat.result_mask()`), and their `DIRSYNC_INFO_*` bits.
    fn from_kstat(stat: &Kstat) -> Self {
        let got = stat.result_mask();
        let (dev_major, dev_minor) = stat.dev();
        let mut info = DirsyncInfo {
            exists: 1,
            mode: stat.mode() & S_IFMT,
            ino: stat.ino(),
            dev_major,
            dev_minor,
            // The type, inode and device numbers are always valid.
            mask: uapi::DIRSYNC_INFO_TYPE | uapi::DIRSYNC_INFO_INO | uapi::DIRSYNC_INFO_DEV,
            ..Self::default()
        };
        if got & statx::MODE != 0 {
            info.mask |= uapi::DIRSYNC_INFO_MODE;
            info.mode = stat.mode();
        }
        if got & statx::SIZE != 0 {
            info.mask |= uapi::DIRSYNC_INFO_SIZE;
            // CAST: what cp_statx() does for stx_size.
            info.size = stat.size() as u64;
        }
        if got & statx::MTIME != 0 {
            info.mask |= uapi::DIRSYNC_INFO_MTIME;
            let (sec, nsec) = stat.mtime();
            info.mtime = sec;
            info.mtime_nsec = nsec;
        }
        if got & statx::UID != 0 {
            info.mask |= uapi::DIRSYNC_INFO_UID;
            info.uid = stat.uid();
        }
        if got & statx::GID != 0 {
            info.mask |= uapi::DIRSYNC_INFO_GID;
            info.gid = stat.gid();
        }
        if got & statx::NLINK != 0 {
            info.mask |= uapi::DIRSYNC_INFO_NLINK;
            info.nlink = stat.nlink();
        }
        info
    }

    /// The uapi struct: every field at its offset, the spare ones zero.
    fn to_words(&self) -> InfoWords {
        [
            pair(self.exists, self.mode),
            self.size,
            // CAST: the bits of the `__s64`, as userspace reads them.
            self.mtime as u64,
            pair(self.mtime_nsec, self.mask),
            self.ino,
            pair(self.dev_major, self.dev_minor),
            pair(self.uid, self.gid),
            pair(self.nlink, 0),
            0,
            0,
        ]
    }
}

/// Checks the `AT_*` flags as `statx()` does.
fn check_flags(at_flags: u32) -> Result {
    if at_flags & !VALID_AT_FLAGS != 0 || at_flags & at::STATX_SYNC_TYPE == at::STATX_SYNC_TYPE {
        return Err(EINVAL);
    }
    Ok(())
}

/// Translates `AT_*` flags into `LOOKUP_*` flags. Automounts are never
/// triggered, as by `vfs_fstatat()` (`AT_NO_AUTOMOUNT` is implied).
fn lookup_flags(at_flags: u32) -> u32 {
    let mut flags = 0;
    if at_flags & at::SYMLINK_NOFOLLOW == 0 {
        flags |= lookup::FOLLOW;
    }
    if at_flags & at::EMPTY_PATH != 0 {
        flags |= lookup::EMPTY;
    }
    flags
}

/// The answer for `path`: its attributes, or `exists == 0` if its last
/// component is missing.
fn stat(dfd: c_int, path: UserPtr, at_flags: u32) -> Result<DirsyncInfo> {
    check_flags(at_flags)?;
    let query_flags = at_flags & at::STATX_SYNC_TYPE;
    // As statx(): with AT_EMPTY_PATH as the only lookup flag, a NULL or
    // empty path describes the descriptor itself (O_PATH ones too) with
    // no copy and no walk. With AT_SYMLINK_NOFOLLOW too, an empty path
    // takes the walk (LOOKUP_EMPTY) to the same answer and NULL is -EFAULT.
    if at_flags & !(at::NO_AUTOMOUNT | at::STATX_SYNC_TYPE) == at::EMPTY_PATH
        && fs::is_empty_path(dfd, path)
    {
        let file = RawFile::fget_raw(dfd)?;
        return Ok(DirsyncInfo::from_kstat(
            &file.getattr(statx::BASIC_STATS, query_flags)?,
        ));
    }
    let mut flags = lookup_flags(at_flags);
    let name = Filename::from_user(path, flags & lookup::EMPTY)?;
    loop {
        let found = match name.lookup(dfd, flags)? {
            Lookup::Found(found) => found,
            // Every byte zero, `exists` and `mask` included.
            Lookup::LastMissing => return Ok(DirsyncInfo::default()),
        };
        match found.getattr(statx::BASIC_STATS, query_flags) {
            Ok(kstat) => return Ok(DirsyncInfo::from_kstat(&kstat)),
            Err(e) if e == ESTALE && flags & lookup::REVAL == 0 => flags |= lookup::REVAL,
            Err(e) => return Err(e),
        }
    }
}

/// The system call, with errors as [`kernel::error::Error`].
fn dirsync_stat(dfd: c_int, path: UserPtr, info: UserPtr, at_flags: u32) -> Result {
    let answer = stat(dfd, path, at_flags)?;
    UserSlice::new(info, size_of::<InfoWords>())
        .writer()
        .write(&answer.to_words())
}

/// Implementation of `dirsync_stat(2)`, called by the C entry point
/// `sys_dirsync_stat()` in `fs/dirsync_syscall.c`.
///
/// Returns 0 or a negative errno.
#[no_mangle]
pub extern "C" fn dirsync_stat_rust(
    dfd: c_int,
    path: *const c_char,
    info: *mut uapi::dirsync_info,
    flags: c_uint,
) -> c_long {
    match dirsync_stat(dfd, path as UserPtr, info as UserPtr, flags) {
        Ok(()) => 0,
        // CAST: an errno is in [-MAX_ERRNO, -1], which fits any `c_long`.
        Err(e) => e.to_errno() as c_long,
    }
}

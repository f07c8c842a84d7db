// SPDX-License-Identifier: GPL-2.0

//! `dirsync_readdir(2)`: the entries of a directory and their metadata, in
//! one call.
//!
//! The system call entry point is the C shim in `fs/dirsync_syscall.c`,
//! which calls [`dirsync_readdir_rust`]. The ABI is described in
//! `include/uapi/linux/dirsync.h`.
//!
//! One call builds at most [`CHUNK`] bytes of records, in one kernel
//! buffer, whatever the size of the user's: the work and the memory of a
//! call are bounded.  It reads the directory at the file's position
//! ([`PosDir`], as `getdents64()`), and for each entry, before accepting
//! it, proves the record's place in the user's buffer writable by zeroing
//! it there, as `filldir64()` writes its record before accepting an entry:
//! an entry that does not fit or whose place faults stops the iteration
//! before it, so the position stays on it for the next call, on every
//! file system (the position of a libfs directory is an ordinal, and no
//! seek back could find an entry again once others were unlinked).  Then,
//! with no directory lock held, it looks each name up and reads its
//! attributes ([`PosDir::lookup`], `vfs_getattr()`) and copies the records
//! out, to the places proven writable.  That copy can only fault if
//! another thread unmaps or write-protects the buffer meanwhile; the call
//! then fails with -EFAULT and the entries it had accepted are not
//! listed again on this open file (the directory must be reopened or
//! rewound): the caller broke its own buffer.
//!
//! Nothing accepted is dropped: a lookup that fails for a reason of the
//! entry (-ENOENT, -EACCES) is reported in its record; any other failure
//! (-ENOMEM, -EIO, -EINTR for a fatal signal, ...) ends the lookups, and
//! the records from that one on carry its errno and no metadata.

use super::{DirsyncInfo, InfoWords};
use core::mem::{offset_of, size_of};
use kernel::{
    alloc::{flags::GFP_KERNEL, KVVec},
    error::{
        code::{EACCES, EFAULT, EINTR, EINVAL, ENAMETOOLONG, ENOENT, ENOMEM, ESTALE},
        Error, Result,
    },
    ffi::{c_long, c_uint, c_void},
    fs::{
        at,
        dir::{cond_resched, fatal_signal_pending, signal_pending, PosDir},
        statx, Kstat,
    },
    uaccess::{UserPtr, UserSlice},
    uapi,
};

/// The record header, as bindgen generated it from
/// `include/uapi/linux/dirsync.h`.
type Dirent = uapi::dirsync_dirent;

/// The size of the record header; the name follows it.
const HEADER: usize = size_of::<Dirent>();

/// The most bytes of records one call builds and returns.
const CHUNK: usize = 64 * 1024;

/// The longest name a record carries (`DIRSYNC_READDIR_NAME_MAX`); a
/// longer one is reported without its name, with -ENAMETOOLONG.
const NAME_LIMIT: usize = uapi::DIRSYNC_READDIR_NAME_MAX as usize;

/// The largest record, that of a name of [`NAME_LIMIT`] bytes.
const RECORD_MAX: usize = record_len(NAME_LIMIT);

/// What proves a record's place in the user's buffer writable.
static ZEROS: [u8; RECORD_MAX] = [0; RECORD_MAX];

/// Where the header fields live; the code below writes them at these
/// offsets, and the name at [`HEADER`].
const RECLEN: usize = 0;
const D_TYPE: usize = 2;
const NAMELEN: usize = 4;
const ERROR: usize = 8;
const INFO: usize = 16;

const _: () = {
    assert!(HEADER == 96 && HEADER % 8 == 0);
    assert!(offset_of!(Dirent, reclen) == RECLEN);
    assert!(offset_of!(Dirent, d_type) == D_TYPE);
    assert!(offset_of!(Dirent, namelen) == NAMELEN);
    assert!(offset_of!(Dirent, error) == ERROR);
    assert!(offset_of!(Dirent, info) == INFO);
    assert!(INFO + size_of::<InfoWords>() == HEADER);
    assert!(offset_of!(Dirent, name) == HEADER);
    // The largest record fits the minimum, which fits a call's chunk, and
    // its length fits `reclen`.
    assert!(RECORD_MAX == uapi::DIRSYNC_READDIR_BUF_MIN as usize);
    assert!(RECORD_MAX <= CHUNK && CHUNK <= u16::MAX as usize + 1);
    assert!(RECORD_MAX <= u16::MAX as usize);
};

/// The `AT_*` flags `dirsync_readdir(2)` accepts.
const VALID_AT_FLAGS: u32 = at::SYMLINK_NOFOLLOW | at::NO_AUTOMOUNT | at::STATX_SYNC_TYPE;

/// The length of the record of a name of `namelen` bytes: header, name,
/// NUL, padded to a multiple of 8.
const fn record_len(namelen: usize) -> usize {
    (HEADER + namelen + 1 + 7) & !7
}

/// Lays out the record of `name` in `rec` (exactly its length, all zero):
/// the header fields and the name; the metadata stays zero.
fn put_record(rec: &mut [u8], name: &[u8], d_type: u8, error: i32) {
    // CAST: at most `RECORD_MAX` and `NAME_LIMIT`, which fit (asserted).
    let (reclen, namelen) = (rec.len() as u16, name.len() as u16);
    rec[RECLEN..RECLEN + 2].copy_from_slice(&reclen.to_ne_bytes());
    rec[D_TYPE] = d_type;
    rec[NAMELEN..NAMELEN + 2].copy_from_slice(&namelen.to_ne_bytes());
    rec[ERROR..ERROR + 4].copy_from_slice(&error.to_ne_bytes());
    rec[HEADER..HEADER + name.len()].copy_from_slice(name);
}

/// The attributes of the entry `name` of `dir`, as `fstatat(fd, name,
/// AT_SYMLINK_NOFOLLOW)` reads them: lookup and `getattr` again with
/// `LOOKUP_REVAL` after -ESTALE, as `vfs_statx()` does.
fn describe_one(dir: &PosDir, name: &[u8], query_flags: u32) -> Result<Kstat> {
    let mut reval = false;
    loop {
        match dir
            .lookup(name, reval)
            .and_then(|path| path.getattr(statx::BASIC_STATS, query_flags))
        {
            Err(e) if e == ESTALE && !reval => reval = true,
            result => return result,
        }
    }
}

/// Looks up every record's name in `records` and writes its metadata, or
/// its error.
fn describe(dir: &PosDir, records: &mut [u8], query_flags: u32) {
    // The error that ended the lookups, once one did.
    let mut ended: Option<Error> = None;
    let mut rest = records;
    while rest.len() >= HEADER {
        let reclen = usize::from(u16::from_ne_bytes([rest[RECLEN], rest[RECLEN + 1]]));
        let namelen = usize::from(u16::from_ne_bytes([rest[NAMELEN], rest[NAMELEN + 1]]));
        let (rec, next) = core::mem::take(&mut rest).split_at_mut(reclen);
        rest = next;
        let (head, tail) = rec.split_at_mut(HEADER);
        if head[ERROR..ERROR + 4] != [0u8; 4] {
            // A name too long to carry: nothing to look up.
            continue;
        }
        if ended.is_none() {
            cond_resched();
            if fatal_signal_pending() {
                ended = Some(EINTR);
            }
        }
        let result = match ended {
            Some(e) => Err(e),
            None => describe_one(dir, &tail[..namelen], query_flags),
        };
        match result {
            Ok(stat) => {
                let words = DirsyncInfo::from_kstat(&stat).to_words();
                for (dst, word) in head[INFO..].chunks_exact_mut(8).zip(words) {
                    dst.copy_from_slice(&word.to_ne_bytes());
                }
            }
            Err(e) => {
                if e != ENOENT && e != EACCES {
                    // Not about this entry: no more lookups in this call.
                    ended = Some(e);
                }
                // A positive errno, the metadata left zero.
                let errno = -e.to_errno();
                head[ERROR..ERROR + 4].copy_from_slice(&errno.to_ne_bytes());
            }
        }
    }
}

/// The system call, with errors as [`kernel::error::Error`]: the number of
/// bytes written.
fn readdir(fd: c_uint, buf: UserPtr, size: usize, flags: u32) -> Result<usize> {
    // As statx(): one synchronisation type at most.
    if flags & !VALID_AT_FLAGS != 0 || flags & at::STATX_SYNC_TYPE == at::STATX_SYNC_TYPE {
        return Err(EINVAL);
    }
    if size < uapi::DIRSYNC_READDIR_BUF_MIN as usize {
        return Err(EINVAL);
    }
    let room = size.min(CHUNK);
    let query_flags = flags & at::STATX_SYNC_TYPE;
    let mut dir = PosDir::fdget(fd)?;
    // The only allocation of the call. Not zeroed as a whole: each record
    // is, as it is added (a chunk is often mostly unused).
    let mut chunk = KVVec::with_capacity(room, GFP_KERNEL)?;
    let mut used = 0;
    // Why the iteration stopped before an entry when no record was added.
    let mut refused: Option<Error> = None;
    let listed = dir.iterate(|name: &[u8], d_type: u32| {
        if name == b"." || name == b".." {
            return true;
        }
        if used > 0 && signal_pending() {
            // Return what is there, so that the signal is handled.
            return false;
        }
        cond_resched();
        let (shown, error) = if name.len() > NAME_LIMIT {
            (&[][..], -ENAMETOOLONG.to_errno())
        } else {
            (name, 0)
        };
        let len = record_len(shown.len());
        if used + len > room {
            return false;
        }
        // The record's place can be written: the entry can be delivered.
        let place = UserSlice::new(buf.wrapping_add(used), len);
        if place.writer().write_slice(&ZEROS[..len]).is_err() {
            refused = Some(EFAULT);
            return false;
        }
        // Within the capacity: this does not allocate, and cannot fail.
        if chunk.extend_with(len, 0, GFP_KERNEL).is_err() {
            refused = Some(ENOMEM);
            return false;
        }
        // CAST: `DT_*` values are below 16; anything else is DT_UNKNOWN.
        let d_type = u8::try_from(d_type).unwrap_or(0);
        put_record(&mut chunk[used..used + len], shown, d_type, error);
        used += len;
        true
    });
    if used == 0 {
        // Nothing new: the end of the directory, a fault, or an error.
        return match (listed, refused) {
            (Err(e), _) | (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => Ok(0),
        };
    }
    // An error of the iteration after some entries is for the next call.
    // The directory's lock is not held any more.
    describe(&dir, &mut chunk[..used], query_flags);
    UserSlice::new(buf, used).writer().write_slice(&chunk[..used])?;
    Ok(used)
}

/// Implementation of `dirsync_readdir(2)`, called by the C entry point
/// `sys_dirsync_readdir()` in `fs/dirsync_syscall.c`.
///
/// Returns the number of bytes written, 0 at the end of the directory, or
/// a negative errno.
#[no_mangle]
pub extern "C" fn dirsync_readdir_rust(
    fd: c_uint,
    buf: *mut c_void,
    size: usize,
    flags: c_uint,
) -> c_long {
    match readdir(fd, buf as UserPtr, size, flags) {
        // CAST: at most `CHUNK` bytes, which fits any `c_long`.
        Ok(n) => n as c_long,
        // CAST: an errno is in [-MAX_ERRNO, -1], which fits any `c_long`.
        Err(e) => e.to_errno() as c_long,
    }
}

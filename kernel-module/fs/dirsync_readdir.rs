// SPDX-License-Identifier: GPL-2.0

//! `dirsync_readdir(2)`: the entries of a directory and their metadata, in
//! one call.
//!
//! The system call entry point is the C shim in `fs/dirsync_syscall.c`,
//! which calls [`dirsync_readdir_rust`]. The ABI is described in
//! `include/uapi/linux/dirsync.h`.
//!
//! The call works in chunks of at most [`CHUNK`] bytes of records, so that
//! the kernel memory it uses does not grow with the user's buffer. For each
//! chunk, it reads the directory at the file's position ([`PosFile`], as
//! `getdents64()`) and lays out one record per entry that fits, name and
//! zeroed metadata; once the directory's lock is dropped it looks each name
//! up and reads its attributes ([`PosFile::lookup`], `vfs_getattr()`), and
//! copies the chunk out. An entry that does not fit stops the iteration
//! before it, so the position stays on it for the next call; should the
//! copy fault, the position goes back to the chunk's start.

use super::{DirsyncInfo, InfoWords};
use core::mem::{offset_of, size_of};
use kernel::{
    alloc::{flags::GFP_KERNEL, KVVec},
    error::{code::EINVAL, Result},
    ffi::{c_long, c_uint, c_void},
    fs::{at, dir::PosFile, statx},
    uaccess::{UserPtr, UserSlice},
    uapi,
};

/// The record header, as bindgen generated it from
/// `include/uapi/linux/dirsync.h`.
type Dirent = uapi::dirsync_dirent;

/// The size of the record header; the name follows it.
const HEADER: usize = size_of::<Dirent>();

/// The most bytes of records the call builds in kernel memory at a time.
const CHUNK: usize = 64 * 1024;

/// At most this many bytes of the user's buffer are used, as `read(2)`
/// does (`MAX_RW_COUNT`): the byte count returned fits any `long`.
const MAX_SIZE: usize = (i32::MAX as usize) & !4095;

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
    // The largest record (a name of NAME_MAX bytes) fits the minimum.
    assert!(record_len(255) == uapi::DIRSYNC_READDIR_BUF_MIN as usize);
    assert!(uapi::DIRSYNC_READDIR_BUF_MIN as usize <= CHUNK);
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
fn put_record(rec: &mut [u8], name: &[u8], d_type: u8, reclen: u16, namelen: u16) {
    rec[RECLEN..RECLEN + 2].copy_from_slice(&reclen.to_ne_bytes());
    rec[D_TYPE] = d_type;
    rec[NAMELEN..NAMELEN + 2].copy_from_slice(&namelen.to_ne_bytes());
    rec[HEADER..HEADER + name.len()].copy_from_slice(name);
}

/// Looks up every record's name in `records` and writes its metadata, or
/// its error.
fn describe(dir: &PosFile, records: &mut [u8], query_flags: u32) {
    let mut rest = records;
    while rest.len() >= HEADER {
        let reclen = usize::from(u16::from_ne_bytes([rest[RECLEN], rest[RECLEN + 1]]));
        let namelen = usize::from(u16::from_ne_bytes([rest[NAMELEN], rest[NAMELEN + 1]]));
        let (rec, next) = core::mem::take(&mut rest).split_at_mut(reclen);
        rest = next;
        let (head, tail) = rec.split_at_mut(HEADER);
        let name = &tail[..namelen];
        match dir
            .lookup(name)
            .and_then(|path| path.getattr(statx::BASIC_STATS, query_flags))
        {
            Ok(stat) => {
                let words = DirsyncInfo::from_kstat(&stat).to_words();
                for (dst, word) in head[INFO..].chunks_exact_mut(8).zip(words) {
                    dst.copy_from_slice(&word.to_ne_bytes());
                }
            }
            Err(e) => {
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
    let size = size.min(MAX_SIZE);
    let query_flags = flags & at::STATX_SYNC_TYPE;
    let mut dir = PosFile::fdget_pos(fd)?;
    let mut out = UserSlice::new(buf, size).writer();
    let mut written = 0;
    loop {
        let room = out.len().min(CHUNK);
        let start = dir.pos();
        // Not zeroed as a whole: each record is, as it is added (a chunk is
        // often mostly unused, and this runs once per chunk).
        let mut chunk = KVVec::with_capacity(room, GFP_KERNEL)?;
        let mut used = 0;
        // Whether an entry did not fit: the directory has not ended.
        let mut stopped = false;
        let listed = dir.iterate(&mut |name: &[u8], d_type: u32| {
            if name == b"." || name == b".." {
                return true;
            }
            let len = record_len(name.len());
            let (Ok(reclen), Ok(namelen), Ok(d_type)) = (
                u16::try_from(len),
                u16::try_from(name.len()),
                u8::try_from(d_type),
            ) else {
                stopped = true;
                return false;
            };
            // Within the capacity: this does not allocate, and cannot fail.
            if used + len > room || chunk.extend_with(len, 0, GFP_KERNEL).is_err() {
                stopped = true;
                return false;
            }
            put_record(&mut chunk[used..used + len], name, d_type, reclen, namelen);
            used += len;
            true
        });
        if used == 0 {
            // Nothing new: the end of the directory, an entry that does
            // not fit the rest of the buffer, or an error.
            return match listed {
                Err(e) if written == 0 => Err(e),
                _ if stopped && written == 0 => Err(EINVAL),
                _ => Ok(written),
            };
        }
        // The lock of the directory is not held any more.
        describe(&dir, &mut chunk[..used], query_flags);
        if let Err(e) = out.write_slice(&chunk[..used]) {
            // Nothing of this chunk was reported: list it again next time.
            dir.seek(start)?;
            return if written == 0 { Err(e) } else { Ok(written) };
        }
        written += used;
        if listed.is_err() || !stopped || room < CHUNK {
            // An error after some entries (reported by the next call), the
            // end of the directory, or the user's buffer is full.
            return Ok(written);
        }
    }
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
        // CAST: at most `MAX_SIZE` bytes, which fits any `c_long`.
        Ok(n) => n as c_long,
        // CAST: an errno is in [-MAX_ERRNO, -1], which fits any `c_long`.
        Err(e) => e.to_errno() as c_long,
    }
}

//! The batch listing backend: `dirsync_readdir(2)` gives a directory's
//! names and their metadata in one call per buffer ([`Batch`]). The only
//! code that knows `struct dirsync_dirent` (generated from the uapi header,
//! [`crate::uapi`]): the raw system call ([`DirsyncReaddir`]) and a parser
//! ([`parse`]) that checks every record against the length the kernel
//! returned before reading it, so a malformed buffer is an error, never a
//! panic or a read out of bounds.

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::meta::{Entry, Meta, StatBackend};
use super::syscall::{meta_from_info, IDS, NEEDED};
use crate::uapi::{self, dirsync_dirent as Dirent, dirsync_info as Info};

/// Bytes asked for per call: about 500 entries with short names.
const BUF_SIZE: usize = 64 * 1024;
const _: () = assert!(BUF_SIZE >= uapi::DIRSYNC_READDIR_BUF_MIN as usize);

/// The fixed part of a record (the name follows).
const HDR: usize = size_of::<Dirent>();
/// The longest name a record carries (`DIRSYNC_READDIR_NAME_MAX`).
const NAME_MAX: usize = uapi::DIRSYNC_READDIR_NAME_MAX as usize;

/// The `dirsync_readdir(2)` system call, verified present by
/// [`super::discover_readdir`].
#[derive(Debug)]
pub struct DirsyncReaddir {
    nr: libc::c_long,
    /// The `DIRSYNC_INFO_*` bits a record must have to be used.
    need: u32,
}

impl DirsyncReaddir {
    /// The call under system call number `nr`.
    ///
    /// # Safety
    ///
    /// The running kernel must implement `dirsync_readdir(unsigned int fd,
    /// void *buf, size_t size, unsigned int flags)` under `nr`, writing at
    /// most `size` bytes to `buf` (what [`super::discover_readdir`]
    /// verifies through sysfs); any other system call under that number
    /// would be called with these arguments.
    pub unsafe fn new(nr: u32) -> Self {
        DirsyncReaddir {
            nr: libc::c_long::from(nr),
            need: NEEDED,
        }
    }

    /// The same call, for an engine that compares owner, group or link
    /// count: a record without them is asked of the fallback.
    pub fn needing_ids(self) -> Self {
        DirsyncReaddir {
            need: NEEDED | IDS,
            ..self
        }
    }

    /// The verified syscall number.
    pub fn nr(&self) -> i64 {
        self.nr
    }

    /// Every entry of `dir` from its current position to its end, a record
    /// lacking a field the engine compares asked of `fallback`.
    pub fn list(&self, fallback: &dyn StatBackend, dir: BorrowedFd<'_>) -> io::Result<Vec<Entry>> {
        thread_local! {
            /// The record buffer of this thread, allocated once.
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            buf.resize(BUF_SIZE, 0);
            let mut out = Vec::new();
            loop {
                let n = self.call(dir, buf)?;
                if n == 0 {
                    return Ok(out);
                }
                for rec in parse(&buf[..n])? {
                    out.push(entry(fallback, dir, &rec, self.need));
                }
            }
        })
    }

    /// Fills `buf` with the next records of `dir`; returns how many bytes
    /// (0 at the end of the directory).
    fn call(&self, dir: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `new`'s contract: the kernel implements
            // dirsync_readdir under `self.nr` and writes at most `size`
            // bytes to `buf`; `buf` is a valid, writable slice of exactly
            // `buf.len()` bytes for the whole call, and `dir` a descriptor
            // borrowed for the call.
            let r = unsafe {
                libc::syscall(
                    self.nr,
                    libc::c_long::from(dir.as_raw_fd()),
                    buf.as_mut_ptr(),
                    buf.len(),
                    libc::AT_SYMLINK_NOFOLLOW as libc::c_uint,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            let n = usize::try_from(r).unwrap_or(usize::MAX);
            if n > buf.len() {
                let why = format!(
                    "dirsync_readdir returned {r} for a {} byte buffer",
                    buf.len()
                );
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
            return Ok(n);
        }
    }
}

/// What the kernel said about one entry.
#[derive(Clone, Copy, Debug)]
pub enum Described {
    /// Its metadata.
    Info(Info),
    /// A positive errno: it could not be described.
    Errno(i32),
}

/// One validated record of a buffer.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// The name: 1 to `DIRSYNC_READDIR_NAME_MAX` bytes, no `/`, no NUL,
    /// not `.` or `..`.
    pub name: &'a [u8],
    /// `DT_*`.
    pub d_type: u8,
    /// Its metadata or errno.
    pub described: Described,
}

/// Why a buffer was refused: the offset of the bad record and the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// Offset of the record in the buffer.
    pub offset: usize,
    /// What is wrong with it.
    pub why: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dirsync_readdir returned a malformed record at byte {}: {}",
            self.offset, self.why
        )
    }
}

impl std::error::Error for Malformed {}

impl From<Malformed> for io::Error {
    fn from(m: Malformed) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, m)
    }
}

/// `N` bytes of `b` from `off` (the caller checked the bounds).
fn bytes<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}
fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes(bytes(b, off))
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(bytes(b, off))
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(bytes(b, off))
}

/// The `struct dirsync_info` of a record header `h` (at least `HDR` bytes).
fn info_at(h: &[u8]) -> Info {
    let base = offset_of!(Dirent, info);
    let u32f = |off| u32_at(h, base + off);
    let u64f = |off| u64_at(h, base + off);
    Info {
        exists: u32f(offset_of!(Info, exists)),
        mode: u32f(offset_of!(Info, mode)),
        size: u64f(offset_of!(Info, size)),
        mtime: u64f(offset_of!(Info, mtime)) as i64,
        mtime_nsec: u32f(offset_of!(Info, mtime_nsec)),
        mask: u32f(offset_of!(Info, mask)),
        ino: u64f(offset_of!(Info, ino)),
        dev_major: u32f(offset_of!(Info, dev_major)),
        dev_minor: u32f(offset_of!(Info, dev_minor)),
        uid: u32f(offset_of!(Info, uid)),
        gid: u32f(offset_of!(Info, gid)),
        nlink: u32f(offset_of!(Info, nlink)),
        ..Default::default()
    }
}

/// Validates the record at the start of `rest` (what is left of the
/// returned bytes); returns it and its length.
fn record(rest: &[u8]) -> Result<(Record<'_>, usize), &'static str> {
    if rest.len() < HDR {
        return Err("truncated header");
    }
    let reclen = usize::from(u16_at(rest, offset_of!(Dirent, reclen)));
    if reclen == 0 {
        return Err("reclen 0");
    }
    if reclen % 8 != 0 {
        return Err("reclen not a multiple of 8");
    }
    if reclen > rest.len() {
        return Err("reclen beyond the returned length");
    }
    let namelen = usize::from(u16_at(rest, offset_of!(Dirent, namelen)));
    if namelen == 0 && u32_at(rest, offset_of!(Dirent, error)) == libc::ENAMETOOLONG as u32 {
        return Err("a name longer than DIRSYNC_READDIR_NAME_MAX bytes");
    }
    if namelen == 0 || namelen > NAME_MAX {
        return Err("name length not in 1..=DIRSYNC_READDIR_NAME_MAX");
    }
    if HDR + namelen + 1 > reclen {
        return Err("name beyond reclen");
    }
    let name = &rest[HDR..HDR + namelen];
    if rest[HDR + namelen] != 0 {
        return Err("name not NUL-terminated");
    }
    if name.iter().any(|&b| b == 0 || b == b'/') {
        return Err("NUL or '/' in a name");
    }
    if name == b"." || name == b".." {
        return Err("'.' or '..' reported");
    }
    let error = u32_at(rest, offset_of!(Dirent, error)) as i32;
    let described = match error {
        0 => Described::Info(info_at(rest)),
        1..=4095 => Described::Errno(error),
        _ => return Err("error is not 0 or a positive errno"),
    };
    let d_type = rest[offset_of!(Dirent, d_type)];
    Ok((
        Record {
            name,
            d_type,
            described,
        },
        reclen,
    ))
}

/// The records of `buf`, the bytes one call returned; the first malformed
/// record refuses the whole buffer.
pub fn parse(buf: &[u8]) -> Result<Vec<Record<'_>>, Malformed> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        let (rec, len) = record(&buf[offset..]).map_err(|why| Malformed { offset, why })?;
        out.push(rec);
        offset += len;
    }
    Ok(out)
}

/// Lists with `dirsync_readdir`; stats single paths with `stat`.
pub struct Batch {
    readdir: DirsyncReaddir,
    stat: Box<dyn StatBackend>,
}

impl Batch {
    /// `readdir` for listings, `stat` for everything else (and for an
    /// entry whose record lacks a field the engine compares).
    pub fn new(readdir: DirsyncReaddir, stat: Box<dyn StatBackend>) -> Batch {
        Batch { readdir, stat }
    }
}

/// The entry of the record `rec` of `dir`: per-entry errors as
/// [`StatBackend::stat_at`] gives them (`ENOENT`: vanished, `Ok(None)`;
/// `EACCES`); any other errno means the kernel stopped describing entries
/// there (a signal, `ENOMEM`, `EIO`...), and a record lacking a field of
/// `need` (the fields the engine compares): both asked of `fallback`.
fn entry(fallback: &dyn StatBackend, dir: BorrowedFd<'_>, rec: &Record<'_>, need: u32) -> Entry {
    let name = CString::new(rec.name).expect("parse refused NUL bytes");
    let meta = match rec.described {
        Described::Errno(libc::ENOENT) => Ok(None),
        Described::Errno(libc::EACCES) => Err(io::Error::from_raw_os_error(libc::EACCES)),
        Described::Errno(_) => fallback.stat_at(dir, &name),
        Described::Info(info) if info.exists == 0 => Ok(None),
        Described::Info(info) => match meta_from_info(&info, need) {
            Some(m) => Ok(Some(m)),
            None => fallback.stat_at(dir, &name),
        },
    };
    Entry {
        name,
        d_type: rec.d_type,
        meta,
    }
}

impl StatBackend for Batch {
    fn stat_at(&self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Meta>> {
        self.stat.stat_at(dir, name)
    }
    fn stat_fd(&self, fd: BorrowedFd<'_>) -> io::Result<Meta> {
        self.stat.stat_fd(fd)
    }
    fn list(&self, dir: BorrowedFd<'_>) -> io::Result<Vec<Entry>> {
        self.readdir.list(self.stat.as_ref(), dir)
    }
    fn describe(&self) -> String {
        format!(
            "dirsync_readdir (syscall {}) + {}",
            self.readdir.nr,
            self.stat.describe()
        )
    }
}

#[cfg(test)]
#[path = "readdir_tests.rs"]
mod tests;

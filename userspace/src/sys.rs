//! Thin, safe wrappers over the dirfd-relative system calls the engine uses.
//!
//! Every name passed here is ONE path component (no `/`): the engine never
//! resolves multi-component paths inside SRC or DST, so a symlink planted in
//! a tree can never redirect an operation (`O_NOFOLLOW` on the last and only
//! component, `AT_SYMLINK_NOFOLLOW` where the call has it).

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Converts a result of a libc call returning -1 on error.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A path as a C string; fails on interior NUL bytes.
pub fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Opens a whole path as a directory (used only for the two roots the user
/// named; following symlinks there is what the user asked for).
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: `c` is a valid NUL-terminated string; open has no other
    // memory-safety preconditions.
    let fd = cvt(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the directory `name` inside `dir`, refusing to follow a symlink.
pub fn open_dir_at(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; `dir` is a descriptor we own or
    // borrow for the duration of the call.
    let fd = cvt(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the regular file `name` inside `dir` for reading, no symlinks.
pub fn open_file_at(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: as in `open_dir_at`.
    let fd = cvt(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK,
        )
    })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Creates `name` in `dir` exclusively for writing (never follows or
/// reuses an existing entry).
pub fn create_excl_at(dir: RawFd, name: &CStr, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: as in `open_dir_at`.
    let fd = cvt(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mkdirat`.
pub fn mkdir_at(dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: NUL-terminated name, plain syscall.
    cvt(unsafe { libc::mkdirat(dir, name.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// `mknodat` (FIFOs, sockets, device nodes).
pub fn mknod_at(dir: RawFd, name: &CStr, mode: u32, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: NUL-terminated name, plain syscall.
    cvt(unsafe { libc::mknodat(dir, name.as_ptr(), mode as libc::mode_t, dev) }).map(drop)
}

/// The device number (major, minor) of the device node `name` in `dir`
/// (0, 0 for anything else), not following symlinks.
pub fn rdev_at(dir: RawFd, name: &CStr) -> io::Result<(u32, u32)> {
    // SAFETY: statx is plain old data; all-zero is valid.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated name and a valid out-pointer.
    cvt(unsafe {
        libc::statx(
            dir,
            name.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_TYPE,
            &mut stx,
        )
    })?;
    Ok((stx.stx_rdev_major, stx.stx_rdev_minor))
}

/// `unlinkat` of a non-directory.
pub fn unlink_at(dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated name, plain syscall.
    cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), 0) }).map(drop)
}

/// `unlinkat(AT_REMOVEDIR)`.
pub fn rmdir_at(dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated name, plain syscall.
    cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
}

/// `renameat` inside or between directories of the same tree.
pub fn rename_at(olddir: RawFd, old: &CStr, newdir: RawFd, new: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated names, plain syscall.
    cvt(unsafe { libc::renameat(olddir, old.as_ptr(), newdir, new.as_ptr()) }).map(drop)
}

/// `symlinkat(target, dir, name)`.
pub fn symlink_at(target: &[u8], dir: RawFd, name: &CStr) -> io::Result<()> {
    let t = CString::new(target)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "link target contains NUL"))?;
    // SAFETY: NUL-terminated strings, plain syscall.
    cvt(unsafe { libc::symlinkat(t.as_ptr(), dir, name.as_ptr()) }).map(drop)
}

/// `readlinkat`: the target bytes of the symlink `name` in `dir`.
pub fn readlink_at(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
        let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        let len = buf.len() * 2;
        buf.resize(len, 0);
    }
}

/// A `timespec` for `utimensat`/`futimens`.
fn ts(sec: i64, nsec: u32) -> libc::timespec {
    libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as _,
    }
}

/// Sets the mtime of an open file (atime untouched: `UTIME_OMIT`).
pub fn set_mtime_fd(fd: RawFd, sec: i64, nsec: u32) -> io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        ts(sec, nsec),
    ];
    // SAFETY: `times` is an array of two valid timespecs.
    cvt(unsafe { libc::futimens(fd, times.as_ptr()) }).map(drop)
}

/// Sets the mtime of `name` in `dir` without following a symlink.
pub fn set_mtime_at(dir: RawFd, name: &CStr, sec: i64, nsec: u32) -> io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        ts(sec, nsec),
    ];
    // SAFETY: NUL-terminated name; `times` is two valid timespecs.
    cvt(unsafe {
        libc::utimensat(
            dir,
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// `fchmod`.
pub fn chmod_fd(fd: RawFd, mode: u32) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor.
    cvt(unsafe { libc::fchmod(fd, mode as libc::mode_t) }).map(drop)
}

/// Changes the mode of `name` in `dir` without following a symlink:
/// `fchmodat2(AT_SYMLINK_NOFOLLOW)` (Linux 6.6+, refuses symlinks). On
/// older kernels: `fchmodat` after checking that the entry is not a
/// symlink (never opening it: it may be a device node).
pub fn chmod_at_nofollow(dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
    const SYS_FCHMODAT2: libc::c_long = 452;
    // SAFETY: fchmodat2(dirfd, path, mode, flags): NUL-terminated path, no
    // other pointers. 452 is fchmodat2 on every architecture with the
    // unified syscall table, x86-64 included.
    let r = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            dir,
            name.as_ptr(),
            mode as libc::c_uint,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ENOSYS) {
        return Err(e);
    }
    // SAFETY: zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated name and a valid out-pointer.
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    // SAFETY: NUL-terminated name, plain syscall.
    cvt(unsafe { libc::fchmodat(dir, name.as_ptr(), mode as libc::mode_t, 0) }).map(drop)
}

/// `fsync`.
pub fn fsync(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor.
    cvt(unsafe { libc::fsync(fd) }).map(drop)
}

/// Effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

/// File type reported by `getdents64` (`DT_*`), `DT_UNKNOWN` when the file
/// system does not fill it.
pub type DType = u8;

/// One directory entry: its name (no `.`/`..`) and `d_type`.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// The name, NUL-terminated for the syscalls.
    pub name: CString,
    /// `DT_*`.
    pub d_type: DType,
}

impl DirEntry {
    /// The name as an `OsStr`.
    pub fn os_name(&self) -> &OsStr {
        OsStr::from_bytes(self.name.as_bytes())
    }
}

/// Reads all entries of an open directory with `getdents64` (one syscall
/// per 32 KiB of entries, no `opendir` allocation per directory).
pub fn read_dir(fd: RawFd) -> io::Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: getdents64 writes at most `buf.len()` bytes into `buf`.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd,
                buf.as_mut_ptr(),
                buf.len() as libc::c_uint,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(out);
        }
        let n = n as usize;
        let mut off = 0;
        while off + 19 <= n {
            // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen;
            // u8 d_type; char d_name[]; }
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 || off + reclen > n {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "malformed getdents64 record",
                ));
            }
            let d_type = buf[off + 18];
            let name_bytes = &buf[off + 19..off + reclen];
            let len = name_bytes
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(name_bytes.len());
            let name = &name_bytes[..len];
            if name != b"." && name != b".." {
                // The kernel never puts NUL inside a name.
                if let Ok(c) = CString::new(name) {
                    out.push(DirEntry { name: c, d_type });
                }
            }
            off += reclen;
        }
    }
}

/// Joins a relative path and a component name (for messages and events).
pub fn join(rel: &Path, name: &CStr) -> std::path::PathBuf {
    let n = OsStr::from_bytes(name.to_bytes());
    if rel.as_os_str().is_empty() {
        std::path::PathBuf::from(n)
    } else {
        rel.join(n)
    }
}

/// Opens the parent (`..`) of the open directory `dir` (root validation
/// climbs to `/` this way).
pub fn open_parent(dir: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: "..\0" is NUL-terminated; plain syscall.
    let fd = cvt(unsafe {
        libc::openat(
            dir,
            c"..".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

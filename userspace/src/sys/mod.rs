//! The one system call layer: safe, typed wrappers (through `rustix`, with
//! `OwnedFd`/`BorrowedFd`) over the dirfd-relative calls the engine uses;
//! [`notify`] has the watcher's (inotify, signalfd, eventfd, ppoll).
//! Written by hand, because `rustix` lacks them: `fchmodat2` (in
//! [`chmod_at_nofollow`]), `signalfd` ([`notify::SignalFd`]) and
//! `dirsync_stat` itself (in [`crate::stat`]).
//!
//! Every name passed here is ONE path component (no `/`): the engine never
//! resolves multi-component paths inside SRC or DST, so a symlink planted in
//! a tree can never redirect an operation (`O_NOFOLLOW` on the last and only
//! component, `AT_SYMLINK_NOFOLLOW` where the call has it).

pub mod notify;

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, UTIME_OMIT};

/// A path as a C string; fails on interior NUL bytes.
pub fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// Opens a whole path as a directory (used only for the two roots the user
/// named; following symlinks there is what the user asked for).
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        rustix::fs::CWD,
        path,
        DIR_FLAGS,
        Mode::empty(),
    )?)
}

/// Opens the directory `name` inside `dir`, refusing to follow a symlink.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        DIR_FLAGS | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// Opens the parent (`..`) of the open directory `dir` (root validation
/// climbs to `/` this way).
pub fn open_parent(dir: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(dir, c"..", DIR_FLAGS, Mode::empty())?)
}

/// Opens `name` in `dir` for reading a SRC file that the walk listed as
/// a regular file, in one system call: `O_NOFOLLOW | O_NONBLOCK |
/// O_NOCTTY` (no symlink followed, no FIFO waited on, no terminal
/// taken); the copy's own check afterwards (inode, type, size, mtime)
/// sees a name replaced meanwhile. Unlike [`open_file_at`] it could open
/// (never read) a device swapped in by someone who can write SRC: SRC is
/// the caller's own tree and this open is on every copied file's path,
/// where pinning first costs three more system calls and a `/proc`
/// lookup per file (16% of a remote first copy of 20,000 small files).
/// Whatever a peer or DST's other writers chose goes through
/// [`open_file_at`].
pub fn open_listed_file_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    Ok(rustix::fs::openat(
        dir,
        name,
        flags | OFlags::NONBLOCK,
        Mode::empty(),
    )?)
}

/// Opens the regular file `name` inside `dir` for reading, and nothing
/// else: the entry is pinned first (`O_PATH | O_NOFOLLOW`, which opens no
/// FIFO, device or socket) and `fstat`ed; a symlink fails with `ELOOP`
/// (as `O_NOFOLLOW` does), any other type than a regular file with
/// `EINVAL`, without ever being opened (opening a FIFO blocks, opening a
/// tape or a terminal has effects). The regular file is then opened
/// through `/proc/self/fd/N`: that very inode, whatever has the name by
/// now. Without `/proc` it is reopened by name with `O_NONBLOCK` (a FIFO
/// swapped in meanwhile does not block the open), refused unless it is
/// still the same inode, and `O_NONBLOCK` is cleared: only this fallback
/// could open (not read) a device swapped in between the two opens.
pub fn open_file_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let (pinned, st) = pin_at(dir, name)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Symlink => return Err(io::Error::from_raw_os_error(libc::ELOOP)),
        _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    match rustix::fs::open(proc_fd_path(pinned.as_fd()).as_str(), flags, Mode::empty()) {
        Err(rustix::io::Errno::NOENT) if !proc_fd_works() => {}
        r => return Ok(r?),
    }
    let flags = flags | OFlags::NOFOLLOW;
    let fd = rustix::fs::openat(dir, name, flags | OFlags::NONBLOCK, Mode::empty())?;
    same_inode(fd.as_fd(), &st)?;
    rustix::fs::fcntl_setfl(&fd, rustix::fs::fcntl_getfl(&fd)? - OFlags::NONBLOCK)?;
    Ok(fd)
}

/// Creates `name` in `dir` exclusively for writing (never follows or
/// reuses an existing entry).
pub fn create_excl_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<OwnedFd> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
    Ok(rustix::fs::openat(
        dir,
        name,
        flags | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?)
}

/// Opens an unnamed temporary file (`O_TMPFILE`) in `dir`: it gets a name
/// only through [`link_tmpfile`], once complete.
pub fn open_tmpfile(dir: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(
        dir,
        c".",
        flags,
        Mode::from_raw_mode(0o600),
    )?)
}

/// Gives the `O_TMPFILE` file `fd` the name `name` in `dir` (fails with
/// `EEXIST` if the name exists): `linkat(AT_EMPTY_PATH)`, or through
/// `/proc/self/fd` where that needs a capability we lack.
pub fn link_tmpfile(fd: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    match rustix::fs::linkat(fd, c"", dir, name, AtFlags::EMPTY_PATH) {
        Ok(()) => return Ok(()),
        Err(e) if e != rustix::io::Errno::NOENT && e != rustix::io::Errno::PERM => {
            return Err(e.into())
        }
        Err(_) => {}
    }
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(rustix::fs::linkat(
        rustix::fs::CWD,
        proc_path.as_str(),
        dir,
        name,
        AtFlags::SYMLINK_FOLLOW,
    )?)
}

/// `linkat` of `old` in `olddir` to `new` in `newdir`, not following a
/// symlink at `old`.
pub fn link_at(
    olddir: BorrowedFd<'_>,
    old: &CStr,
    newdir: BorrowedFd<'_>,
    new: &CStr,
) -> io::Result<()> {
    Ok(rustix::fs::linkat(
        olddir,
        old,
        newdir,
        new,
        AtFlags::empty(),
    )?)
}

/// `mkdirat`.
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode))?)
}

/// `mknodat` of a FIFO, socket or device node (`S_IFMT` bits in `mode`).
pub fn mknod_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32, dev: (u32, u32)) -> io::Result<()> {
    let dev = rustix::fs::makedev(dev.0, dev.1);
    Ok(rustix::fs::mknodat(
        dir,
        name,
        FileType::from_raw_mode(mode),
        Mode::from_raw_mode(mode & 0o7777),
        dev,
    )?)
}

/// `statx` of `name` in `dir` (`flags`: `AT_*`), asking for `mask`.
pub fn statx(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: AtFlags,
    mask: rustix::fs::StatxFlags,
) -> io::Result<rustix::fs::Statx> {
    Ok(rustix::fs::statx(dir, name, flags, mask)?)
}

/// The device number (major, minor) of the device node `name` in `dir`
/// (0, 0 for anything else), not following symlinks.
pub fn rdev_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<(u32, u32)> {
    let stx = statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
        rustix::fs::StatxFlags::TYPE,
    )?;
    Ok((stx.stx_rdev_major, stx.stx_rdev_minor))
}

/// `unlinkat` of a non-directory.
pub fn unlink_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?)
}

/// `unlinkat(AT_REMOVEDIR)`.
pub fn rmdir_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// `renameat` inside or between directories of the same tree.
pub fn rename_at(
    olddir: BorrowedFd<'_>,
    old: &CStr,
    newdir: BorrowedFd<'_>,
    new: &CStr,
) -> io::Result<()> {
    Ok(rustix::fs::renameat(olddir, old, newdir, new)?)
}

/// `symlinkat(target, dir, name)`.
pub fn symlink_at(target: &[u8], dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let t = CString::new(target)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "link target contains NUL"))?;
    Ok(rustix::fs::symlinkat(t.as_c_str(), dir, name)?)
}

/// `readlinkat`: the target bytes of the symlink `name` in `dir`.
pub fn readlink_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    Ok(rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes())
}

/// Timestamps that set the mtime and leave the atime alone.
fn mtime_only(sec: i64, nsec: u32) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: sec,
            tv_nsec: nsec.into(),
        },
    }
}

/// Sets the mtime of an open file (atime untouched: `UTIME_OMIT`).
pub fn set_mtime_fd(fd: BorrowedFd<'_>, sec: i64, nsec: u32) -> io::Result<()> {
    Ok(rustix::fs::futimens(fd, &mtime_only(sec, nsec))?)
}

/// Sets the mtime of `name` in `dir` without following a symlink.
pub fn set_mtime_at(dir: BorrowedFd<'_>, name: &CStr, sec: i64, nsec: u32) -> io::Result<()> {
    let times = mtime_only(sec, nsec);
    Ok(rustix::fs::utimensat(
        dir,
        name,
        &times,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// `fchmod`.
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))?)
}

/// Changes the mode of `name` in `dir` without following a symlink:
/// `fchmodat2(AT_SYMLINK_NOFOLLOW)` (Linux 6.6+, refuses symlinks; rustix
/// does not have it); on older kernels [`chmod_at_nofollow_fallback`].
pub fn chmod_at_nofollow(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    const SYS_FCHMODAT2: libc::c_long = 452;
    // SAFETY: fchmodat2(int dirfd, const char *path, mode_t mode, int
    // flags) reads only `path`, a NUL-terminated string that outlives the
    // call; `dir` is a descriptor borrowed for the call. 452 is fchmodat2
    // on every architecture with the unified syscall table, x86-64
    // included.
    let r = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            dir.as_raw_fd(),
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
    chmod_at_nofollow_fallback(dir, name, mode)
}

/// [`chmod_at_nofollow`] without `fchmodat2` (kernels before 6.6; public
/// so that tests can race it on any kernel). Checking the name and then
/// calling a `chmod` that resolves the name again would let whoever can
/// write in `dir` swap in a symlink between the two. So the entry is
/// pinned first: an `O_PATH | O_NOFOLLOW` descriptor (never opened for
/// I/O: it may be a device or a FIFO) whose type is checked with `fstat`
/// (a symlink: `EOPNOTSUPP`, as `fchmodat2` says), then
/// `chmod("/proc/self/fd/N")` changes that very inode (`fchmod` refuses
/// `O_PATH` descriptors). Without `/proc`, a regular file or directory is
/// reopened for reading (`O_NOFOLLOW | O_NONBLOCK`), checked to be the
/// same inode and `fchmod`ed; anything else is refused (`EOPNOTSUPP`).
pub fn chmod_at_nofollow_fallback(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    let (fd, st) = pin_at(dir, name)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind == FileType::Symlink {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    let mode = Mode::from_raw_mode(mode);
    match rustix::fs::chmod(proc_fd_path(fd.as_fd()).as_str(), mode) {
        Err(rustix::io::Errno::NOENT) if !proc_fd_works() => {}
        r => return Ok(r?),
    }
    if kind != FileType::RegularFile && kind != FileType::Directory {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
    let real = rustix::fs::openat(dir, name, flags | OFlags::CLOEXEC, Mode::empty())?;
    same_inode(real.as_fd(), &st)?;
    Ok(rustix::fs::fchmod(real, mode)?)
}

/// An `O_PATH | O_NOFOLLOW` descriptor of `name` in `dir` (whatever its
/// type: nothing is opened for I/O) and its `fstat`.
fn pin_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<(OwnedFd, rustix::fs::Stat)> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    Ok((fd, st))
}

/// `/proc/self/fd/N`: opening or `chmod`ing it reaches the inode `fd`
/// refers to, not whatever has its name now.
fn proc_fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Whether `/proc/self/fd` is there (`/proc` mounted): an `ENOENT` through
/// it then means the path, not `/proc`, is missing.
fn proc_fd_works() -> bool {
    rustix::fs::access("/proc/self/fd", rustix::fs::Access::EXISTS).is_ok()
}

/// Fails (`EAGAIN`: changed meanwhile) unless `fd` is the inode `st`
/// describes.
fn same_inode(fd: BorrowedFd<'_>, st: &rustix::fs::Stat) -> io::Result<()> {
    let now = rustix::fs::fstat(fd)?;
    if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
        return Err(io::Error::from_raw_os_error(libc::EAGAIN));
    }
    Ok(())
}

/// `fsync`.
pub fn fsync(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::fsync(fd)?)
}

/// `copy_file_range` at the current offsets of both files.
pub fn copy_file_range(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    Ok(rustix::fs::copy_file_range(src, None, dst, None, len)?)
}

/// `read`, retried on `EINTR`.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// `write`, retried on `EINTR`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    loop {
        match rustix::io::write(fd, buf) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// Effective uid.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The effective group id.
pub fn egid() -> u32 {
    rustix::process::getegid().as_raw()
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

/// The `DT_*` value of a file type.
fn d_type(t: FileType) -> DType {
    match t {
        FileType::RegularFile => libc::DT_REG,
        FileType::Directory => libc::DT_DIR,
        FileType::Symlink => libc::DT_LNK,
        FileType::Fifo => libc::DT_FIFO,
        FileType::Socket => libc::DT_SOCK,
        FileType::CharacterDevice => libc::DT_CHR,
        FileType::BlockDevice => libc::DT_BLK,
        _ => libc::DT_UNKNOWN,
    }
}

/// Reads all entries of an open directory with `getdents64` (one syscall
/// per 32 KiB of entries, no `opendir` allocation per directory).
pub fn read_dir(fd: BorrowedFd<'_>) -> io::Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 32 * 1024];
    let mut dir = rustix::fs::RawDir::new(fd, &mut buf);
    while let Some(e) = dir.next() {
        let e = e?;
        let name = e.file_name();
        if name != c"." && name != c".." {
            out.push(DirEntry {
                name: name.to_owned(),
                d_type: d_type(e.file_type()),
            });
        }
    }
    Ok(out)
}

/// Joins a relative path and a component name (for messages and events).
pub fn join(rel: &Path, name: &CStr) -> PathBuf {
    let n = OsStr::from_bytes(name.to_bytes());
    if rel.as_os_str().is_empty() {
        PathBuf::from(n)
    } else {
        rel.join(n)
    }
}

/// Returns the heap's free pages to the kernel (glibc's `malloc_trim`; a
/// no-op elsewhere). A full sync's transient tables (the walk of a whole
/// tree) are freed in the copy threads' arenas, which glibc otherwise
/// keeps resident for the life of a long-running watcher.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no pointer arguments (0 = keep no padding);
    // it only releases free memory from glibc's own arenas, taking each
    // arena's lock, so it is safe beside other threads that allocate.
    unsafe {
        libc::malloc_trim(0);
    }
}

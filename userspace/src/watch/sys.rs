//! Thin, checked wrappers around the system calls the watcher needs beyond
//! the `inotify` crate: signalfd, eventfd, ppoll, dirfd-relative directory
//! opening and listing, and `inotify_add_watch` on an open directory.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A signalfd for SIGINT and SIGTERM, which are blocked in the calling
/// thread (and so in every thread it spawns afterwards).
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Blocks SIGINT/SIGTERM and opens a non-blocking signalfd for them.
    pub fn new() -> io::Result<Self> {
        // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise
        // it; pthread_sigmask and signalfd only read it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            let fd = cvt(libc::signalfd(
                -1,
                &set,
                libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
            ))?;
            Ok(SignalFd {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// Reads pending signals; returns the last one's number, if any.
    pub fn read(&self) -> Option<i32> {
        let mut last = None;
        loop {
            // SAFETY: signalfd_siginfo is plain data; all-zero is valid.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            // SAFETY: reads into a live buffer of exactly the size of
            // signalfd_siginfo, as signalfd requires.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                )
            };
            if n != std::mem::size_of::<libc::signalfd_siginfo>() as isize {
                return last;
            }
            last = Some(info.ssi_signo as i32);
        }
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// An eventfd used by the copy workers to wake the event loop.
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A non-blocking eventfd.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain system call; the returned descriptor is owned here.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: fd is a fresh descriptor nobody else owns.
        Ok(EventFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Wakes the poller.
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64, as eventfd requires. A
        // failure (counter overflow) still leaves the fd readable.
        unsafe {
            libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    /// Resets the counter.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64, as eventfd requires.
        unsafe {
            libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8);
        }
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Waits until one of `fds` is readable or `timeout` passes (`None`: no
/// timeout). Returns which were readable. EINTR counts as a timeout.
pub fn wait_readable(fds: &[RawFd], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let tsp = match &ts {
        Some(t) => t as *const libc::timespec,
        None => std::ptr::null(),
    };
    // SAFETY: pfds is a live array of pfds.len() pollfd; tsp is null or
    // points to a live timespec; a null sigmask keeps the current mask.
    let r = unsafe {
        libc::ppoll(
            pfds.as_mut_ptr(),
            pfds.len() as libc::nfds_t,
            tsp,
            std::ptr::null(),
        )
    };
    if r == -1 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(pfds
        .iter()
        .map(|p| p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0)
        .collect())
}

pub use crate::sys::open_root;

/// Opens `root/rel` as a directory without following a symlink in any
/// component (`rel` may be longer than PATH_MAX: it is opened component by
/// component then). `rel` "" opens a new descriptor for the root itself.
pub fn open_dir_at(root: RawFd, rel: &Path) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let bytes = rel.as_os_str().as_bytes();
    let open1 = |dir: RawFd, name: &[u8]| -> io::Result<OwnedFd> {
        let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: c is a NUL-terminated string alive for the call; the
        // returned descriptor is owned by the OwnedFd.
        let fd = cvt(unsafe { libc::openat(dir, c.as_ptr(), flags) })?;
        // SAFETY: fd is fresh and owned only here.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    if bytes.is_empty() {
        return open1(root, b".");
    }
    let mut cur: Option<OwnedFd> = None;
    for comp in bytes.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
        let dir = cur.as_ref().map_or(root, |f| f.as_raw_fd());
        // openat with O_NOFOLLOW only guards the last component, so every
        // component is opened on its own.
        cur = Some(open1(dir, comp)?);
    }
    cur.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The names of the subdirectories of an open directory (not following
/// symlinks). `dir` is consumed.
pub fn subdirs(dir: OwnedFd) -> io::Result<Vec<OsString>> {
    let fd = dir.as_raw_fd();
    let mut out = Vec::new();
    for e in crate::sys::read_dir(fd)? {
        let is_dir = match e.d_type {
            libc::DT_DIR => true,
            libc::DT_UNKNOWN => {
                // SAFETY: `st` is plain data that fstatat fills; the name is
                // NUL-terminated and `fd` is open for the whole call.
                unsafe {
                    let mut st: libc::stat64 = std::mem::zeroed();
                    libc::fstatat64(fd, e.name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) == 0
                        && st.st_mode & libc::S_IFMT == libc::S_IFDIR
                }
            }
            _ => false,
        };
        if is_dir {
            out.push(OsString::from_vec(e.name.into_bytes()));
        }
    }
    Ok(out)
}

/// Adds an inotify watch on an open directory, through `/proc/self/fd`
/// when available (no path length limit, no race with a rename of an
/// ancestor), else through `fallback` (the full path).
pub fn add_watch(ifd: RawFd, dir: &OwnedFd, fallback: &Path, mask: u32) -> io::Result<i32> {
    let proc_path = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let c = CString::new(proc_path).expect("no NUL");
    // SAFETY: c is NUL-terminated and alive for the call.
    match cvt(unsafe { libc::inotify_add_watch(ifd, c.as_ptr(), mask) }) {
        Ok(wd) => Ok(wd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let c = CString::new(fallback.as_os_str().as_bytes())
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: as above.
            cvt(unsafe { libc::inotify_add_watch(ifd, c.as_ptr(), mask | libc::IN_DONT_FOLLOW) })
        }
        Err(e) => Err(e),
    }
}

/// Removes an inotify watch; errors (already gone) are ignored.
pub fn rm_watch(ifd: RawFd, wd: i32) {
    // SAFETY: plain system call on integers.
    unsafe {
        libc::inotify_rm_watch(ifd, wd);
    }
}

/// Whether `path` (following symlinks) is the file open as `fd`.
pub fn same_file(fd: &OwnedFd, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    // SAFETY: stat is plain data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills `st` from a live descriptor.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    m.dev() == st.st_dev && m.ino() == st.st_ino
}

/// The current value of a sysctl under /proc/sys/fs/inotify.
pub fn inotify_limit(name: &str) -> Option<u64> {
    std::fs::read_to_string(Path::new("/proc/sys/fs/inotify").join(name))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

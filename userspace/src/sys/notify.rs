//! The watcher's system calls: inotify watches on open directories, a
//! signalfd for SIGINT/SIGTERM (by hand: rustix has no signalfd), an
//! eventfd, `ppoll`, and opening a multi-component path without following
//! symlinks.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use rustix::event::{EventfdFlags, PollFd, PollFlags};
use rustix::fs::inotify::WatchFlags;

/// A signalfd for SIGINT and SIGTERM, which are blocked in the calling
/// thread (and so in every thread it spawns afterwards).
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Blocks SIGINT/SIGTERM and opens a non-blocking signalfd for them.
    pub fn new() -> io::Result<Self> {
        Self::for_signals(&[libc::SIGINT, libc::SIGTERM])
    }

    /// Blocks `signals` and opens a non-blocking signalfd for them.
    pub fn for_signals(signals: &[i32]) -> io::Result<Self> {
        // SAFETY: sigset_t is plain data, for which all-zero is a valid
        // (empty) value.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a live sigset_t; sigemptyset/sigaddset only
        // write into it (an invalid signal number makes sigaddset return
        // -1 and leaves it as it was).
        unsafe {
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
        }
        // SAFETY: `set` is initialised; a null old-set pointer is allowed.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        // SAFETY: -1 asks for a new descriptor; `set` is initialised and
        // only read.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by signalfd and nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SignalFd { fd })
    }

    /// Reads pending signals; returns the last one's number, if any.
    pub fn read(&self) -> Option<i32> {
        let mut last = None;
        loop {
            let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(n) if n == buf.len() => {}
                _ => return last,
            }
            // ssi_signo is the first field (u32) of signalfd_siginfo.
            let signo = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
            last = Some(signo as i32);
        }
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An eventfd used by the copy workers to wake the event loop.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A non-blocking eventfd.
    pub fn new() -> io::Result<Self> {
        let flags = EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK;
        Ok(EventFd {
            fd: rustix::event::eventfd(0, flags)?,
        })
    }

    /// Wakes the poller. A failure (counter overflow) still leaves the fd
    /// readable.
    pub fn notify(&self) {
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }

    /// Whether it has been notified (and not drained since); the counter
    /// is left as it is.
    pub fn is_raised(&self) -> bool {
        wait_readable(&[self.fd.as_fd()], Some(Duration::ZERO)).is_ok_and(|r| r[0])
    }

    /// Resets the counter.
    pub fn drain(&self) {
        let mut v = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut v);
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Waits until one of `fds` is readable or `timeout` passes (`None`: no
/// timeout). Returns which were readable. EINTR counts as a timeout.
pub fn wait_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    let ts = timeout.map(|t| rustix::time::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: t.subsec_nanos().into(),
    });
    match rustix::event::poll(&mut pfds, ts.as_ref()) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => return Ok(vec![false; fds.len()]),
        Err(e) => return Err(e.into()),
    }
    let ready = PollFlags::IN | PollFlags::ERR | PollFlags::HUP;
    Ok(pfds.iter().map(|p| p.revents().intersects(ready)).collect())
}

/// Opens `root/rel` as a directory without following a symlink in any
/// component (`rel` may be longer than PATH_MAX: it is opened component by
/// component). `rel` "" opens a new descriptor for the root itself.
pub fn open_dir_path(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let open1 = |dir: BorrowedFd<'_>, name: &[u8]| -> io::Result<OwnedFd> {
        let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        super::open_dir_at(dir, &c)
    };
    let bytes = rel.as_os_str().as_bytes();
    if bytes.is_empty() {
        return open1(root, b".");
    }
    let mut cur: Option<OwnedFd> = None;
    for comp in bytes.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
        let dir = cur.as_ref().map_or(root, |f| f.as_fd());
        // O_NOFOLLOW only guards the last component: one at a time.
        cur = Some(open1(dir, comp)?);
    }
    cur.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Adds an inotify watch on an open directory, through `/proc/self/fd`
/// when available (no path length limit, no race with a rename of an
/// ancestor), else through `fallback` (the full path).
pub fn add_watch(
    inotify: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    fallback: &Path,
    mask: u32,
) -> io::Result<i32> {
    let flags = WatchFlags::from_bits_retain(mask);
    let proc_path = format!("/proc/self/fd/{}", dir.as_raw_fd());
    match rustix::fs::inotify::add_watch(inotify, proc_path.as_str(), flags) {
        Ok(wd) => Ok(wd),
        Err(rustix::io::Errno::NOENT) => Ok(rustix::fs::inotify::add_watch(
            inotify,
            fallback,
            flags | WatchFlags::DONT_FOLLOW,
        )?),
        Err(e) => Err(e.into()),
    }
}

/// Removes an inotify watch; errors (already gone) are ignored.
pub fn rm_watch(inotify: BorrowedFd<'_>, wd: i32) {
    let _ = rustix::fs::inotify::remove_watch(inotify, wd);
}

/// Whether `path` (following symlinks) is the file open as `fd`.
pub fn same_file(fd: BorrowedFd<'_>, path: &Path) -> bool {
    match (rustix::fs::stat(path), rustix::fs::fstat(fd)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

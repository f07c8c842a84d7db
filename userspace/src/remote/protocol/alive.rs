//! Whether the peer is still there: `--timeout` (rsync's meaning: no
//! data received for that long ends the run) and keepalives.
//!
//! The timeout is applied where bytes are read, at the bottom of the
//! stream ([`Timed`]): a read that gets nothing for that long fails with
//! [`FrameError::TimedOut`](super::frame::FrameError::TimedOut); so does
//! a write that cannot put a byte out for that long (a peer that stopped
//! reading; the written descriptor is made non-blocking for it). Reads
//! happen only when a side wants the peer's next bytes, so a side busy
//! with its own work (the engine scanning a huge SRC, the agent fsyncing
//! a big file) does not time out itself.
//!
//! Its peer might, though: a side busy with such work sends nothing. So
//! when both sides have [`FEATURE_KEEPALIVE`], each sends a keepalive
//! frame ([`KEEPALIVE`]) whenever it has sent nothing for a third of the
//! shorter of the two timeouts, from a thread of its own that the work
//! does not block ([`super::frame::FrameWriter::keepalive`]). The frame
//! carries the sender's timeout in seconds, so that each side knows how
//! often the other needs them; the frame reader takes it in and never
//! passes it up. Without the bit no keepalive is sent (an older peer
//! would not know the frame) and the timeout still applies: a long
//! silent phase of an honest older peer may then be cut.
//!
//! The server's timeout is its own (`DIRSYNC_TIMEOUT`, 120 s by default)
//! until the client's first keepalive says the client's; a silent client
//! does not keep a server process for ever either.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use super::messages::{FEATURE_KEEPALIVE, KEEPALIVE};

/// The default `--timeout` of one-shot remote runs and of the server.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The timeouts of one side of a link (shared by its reader, its
/// keepalive thread and whoever sets it up).
#[derive(Debug, Default)]
pub struct Alive {
    /// Our read timeout in milliseconds; 0: none.
    own_ms: AtomicU64,
    /// The peer's, as its last keepalive said; 0: none or not known.
    peer_ms: AtomicU64,
    /// Take the peer's timeout as ours (the server follows the client's
    /// `--timeout`).
    adopt: bool,
}

impl Alive {
    /// A side whose reads time out after `timeout` (`None`: never);
    /// `adopt`: the peer's timeout, once known, replaces it.
    pub fn new(timeout: Option<Duration>, adopt: bool) -> Arc<Alive> {
        let a = Alive {
            adopt,
            ..Alive::default()
        };
        a.set(timeout);
        Arc::new(a)
    }

    /// Sets our read timeout (`None` or zero: none).
    pub fn set(&self, timeout: Option<Duration>) {
        let ms = timeout.map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        self.own_ms.store(ms, Ordering::Relaxed);
    }

    /// Our read timeout.
    pub fn timeout(&self) -> Option<Duration> {
        match self.own_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// What our keepalives say: our timeout in whole seconds (0: none).
    pub fn own_secs(&self) -> u32 {
        let s = self.own_ms.load(Ordering::Relaxed).div_ceil(1000);
        u32::try_from(s).unwrap_or(u32::MAX)
    }

    /// The peer's keepalive said its timeout is `secs` (0: none).
    pub fn heard(&self, secs: u32) {
        let ms = u64::from(secs) * 1000;
        self.peer_ms.store(ms, Ordering::Relaxed);
        if self.adopt && ms > 0 {
            self.own_ms.store(ms, Ordering::Relaxed);
        }
    }

    /// How long we may send nothing: a third of the shorter timeout of
    /// the two sides (`None`: neither has one).
    pub fn interval(&self) -> Option<Duration> {
        let own = self.own_ms.load(Ordering::Relaxed);
        let peer = self.peer_ms.load(Ordering::Relaxed);
        let shortest = [own, peer].into_iter().filter(|&t| t > 0).min()?;
        Some(Duration::from_millis((shortest / 3).max(1)))
    }
}

/// The error of a read that got nothing for `t`.
pub fn timed_out(t: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no data for {} s (--timeout)", t.as_secs().max(1)),
    )
}

/// The error of a write that could not put a byte out for `t`.
fn stalled(t: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("could not send for {} s (--timeout)", t.as_secs().max(1)),
    )
}

/// A byte stream whose reads fail with [`timed_out`] when nothing comes
/// for the [`Alive`]'s timeout, and whose writes fail when nothing can
/// be written for as long.
pub struct Timed<S> {
    inner: S,
    alive: Arc<Alive>,
}

impl<S: AsFd> Timed<S> {
    /// `inner` to read from, timed by `alive`.
    pub fn new(inner: S, alive: Arc<Alive>) -> Self {
        Timed { inner, alive }
    }

    /// `inner` to write to, timed by `alive`: its descriptor is made
    /// non-blocking (a blocking write to a peer that stopped reading
    /// would wait for ever), so it must be ours alone (a pipe to the
    /// transport, the server's stdout).
    pub fn writer(inner: S, alive: Arc<Alive>) -> io::Result<Self> {
        use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
        let fd = inner.as_fd();
        fcntl_setfl(fd, fcntl_getfl(fd)? | OFlags::NONBLOCK)?;
        Ok(Timed { inner, alive })
    }

    /// Waits until the descriptor is ready for `flags`; false: the
    /// timeout passed first (`None`: waits for ever).
    fn ready(&self, flags: rustix::event::PollFlags) -> io::Result<bool> {
        use rustix::event::{poll, PollFd, PollFlags};
        let deadline = self.alive.timeout().map(|t| Instant::now() + t);
        loop {
            let ts = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    Some(rustix::time::Timespec {
                        tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                        tv_nsec: left.subsec_nanos().into(),
                    })
                }
                None => None,
            };
            let mut p = [PollFd::new(&self.inner, flags)];
            match poll(&mut p, ts.as_ref()) {
                // EINTR: waits again until the deadline.
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            if p[0]
                .revents()
                .intersects(flags | PollFlags::ERR | PollFlags::HUP)
            {
                return Ok(true);
            }
        }
    }
}

impl<R: Read + AsFd> Read for Timed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.ready(rustix::event::PollFlags::IN)? {
                return Err(timed_out(self.alive.timeout().unwrap_or_default()));
            }
            match self.inner.read(buf) {
                // Non-blocking (stdin and stdout one socket): wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
        }
    }
}

impl<W: Write + AsFd> Write for Timed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.inner.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.ready(rustix::event::PollFlags::OUT)? {
                        return Err(stalled(self.alive.timeout().unwrap_or_default()));
                    }
                }
                r => return r,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_pipe_times_out_and_a_live_one_does_not() {
        let (r, mut w) = std::io::pipe().unwrap();
        let alive = Alive::new(Some(Duration::from_millis(300)), false);
        let mut t = Timed::new(r, alive.clone());
        std::io::Write::write_all(&mut w, b"x").unwrap();
        let mut b = [0u8; 4];
        assert_eq!(t.read(&mut b).unwrap(), 1);
        let start = Instant::now();
        let e = t.read(&mut b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
        // Without a timeout, a writer closing ends the read.
        alive.set(None);
        drop(w);
        assert_eq!(t.read(&mut b).unwrap(), 0);
    }

    #[test]
    fn a_write_nobody_reads_times_out() {
        let (r, w) = std::io::pipe().unwrap();
        let alive = Alive::new(Some(Duration::from_millis(300)), false);
        let mut t = Timed::writer(w, alive).unwrap();
        let start = Instant::now();
        let chunk = vec![7u8; 1 << 16];
        let e = loop {
            if let Err(e) = t.write_all(&chunk) {
                break e;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "never stalled");
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(3));
        drop(r);
    }

    #[test]
    fn the_interval_is_a_third_of_the_shorter_timeout() {
        let a = Alive::new(Some(Duration::from_secs(9)), false);
        assert_eq!(a.interval(), Some(Duration::from_secs(3)));
        a.heard(3);
        assert_eq!(a.interval(), Some(Duration::from_secs(1)));
        assert_eq!(a.own_secs(), 9);
        let s = Alive::new(Some(DEFAULT_TIMEOUT), true);
        s.heard(0);
        assert_eq!(s.timeout(), Some(DEFAULT_TIMEOUT));
        s.heard(6);
        assert_eq!(s.timeout(), Some(Duration::from_secs(6)));
        let none = Alive::new(None, false);
        assert_eq!(none.interval(), None);
        none.heard(30);
        assert_eq!(none.interval(), Some(Duration::from_secs(10)));
    }
}

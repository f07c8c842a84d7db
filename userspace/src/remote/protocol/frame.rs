//! Length-prefixed binary frames over any byte stream.
//!
//! A frame is `len: u32 LE` then `len` bytes: one type byte and the
//! message's payload ([`super::messages`]). `len` is at least 1 and at most
//! [`MAX_FRAME`]: a longer (or empty) frame is a protocol error before any
//! byte of it is read or any memory is reserved for it, so a broken or
//! hostile peer cannot make the reader allocate more than one frame.
//!
//! The streams are boxed trait objects so that layers can be inserted
//! under the frames after the handshake (compression, a rate limit):
//! [`FrameReader::map`] and [`FrameWriter::map`] wrap the inner stream.
//!
//! Keepalive frames ([`super::alive`]), once both sides have the feature,
//! are handled here: the reader takes them in, the writer sends them from
//! a thread of its own when nothing else went out for a while.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::alive::{Alive, KEEPALIVE};

/// The largest frame (type byte + payload): 1 MiB of data plus headers.
pub const MAX_FRAME: u32 = (1 << 20) + 4096;

/// A readable byte stream.
pub type BoxRead = Box<dyn Read + Send>;
/// A writable byte stream.
pub type BoxWrite = Box<dyn Write + Send>;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed.
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    /// Nothing came for the `--timeout` (see [`super::alive`]).
    #[error("{0}")]
    TimedOut(io::Error),
    /// A keepalive frame that is not one.
    #[error("a malformed keepalive")]
    BadKeepalive,
    /// The peer closed the stream between two frames.
    #[error("the connection was closed")]
    Closed,
    /// A length outside 1..=MAX_FRAME.
    #[error("bad frame length {0} (limit {MAX_FRAME})")]
    BadLength(u32),
    /// The stream ended inside a frame.
    #[error("the connection was closed in the middle of a frame")]
    Truncated,
}

/// Reads frames; the buffer is reused (one frame at a time in memory).
pub struct FrameReader {
    inner: BufReader<BoxRead>,
    buf: Vec<u8>,
    /// Set once both sides have keepalives: they are taken in here.
    alive: Option<Arc<Alive>>,
}

/// A read error: a timeout is told apart.
fn io_err(e: io::Error) -> FrameError {
    if e.kind() == io::ErrorKind::TimedOut {
        FrameError::TimedOut(e)
    } else {
        FrameError::Io(e)
    }
}

impl FrameReader {
    /// Frames from `inner`.
    pub fn new(inner: BoxRead) -> Self {
        FrameReader {
            inner: BufReader::with_capacity(256 << 10, inner),
            buf: Vec::new(),
            alive: None,
        }
    }

    /// From now on keepalive frames are taken in (the peer's timeout goes
    /// to `alive`) and not returned; before, they are an unknown kind.
    pub fn accept_keepalives(&mut self, alive: Arc<Alive>) {
        self.alive = Some(alive);
    }

    /// Inserts a layer under the frames (e.g. decompression). Bytes
    /// already buffered stay first in line.
    pub fn map(self, f: impl FnOnce(BoxRead) -> BoxRead) -> Self {
        let buffered = self.inner.buffer().to_vec();
        let rest = self.inner.into_inner();
        let chained: BoxRead = Box::new(io::Cursor::new(buffered).chain(rest));
        let mut r = FrameReader::new(f(chained));
        r.alive = self.alive;
        r
    }

    /// Whether bytes of the next frame are already here (a reader that
    /// would block otherwise flushes its writer first).
    pub fn has_buffered(&self) -> bool {
        !self.inner.buffer().is_empty()
    }

    /// Whether a whole frame is already here: reading it will not wait
    /// for the peer (a reader that would wait flushes its writer first).
    /// Keepalives do not count: reading would skip them and wait.
    pub fn has_frame(&self) -> bool {
        let mut b = self.inner.buffer();
        while b.len() >= 4 {
            let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
            if b.len() - 4 < len {
                return false;
            }
            if self.alive.is_none() || len == 0 || b[4] != KEEPALIVE {
                return true;
            }
            b = &b[4 + len..];
        }
        false
    }

    /// The next frame: its type byte and payload.
    pub fn read(&mut self) -> Result<(u8, &[u8]), FrameError> {
        loop {
            self.read_one()?;
            match &self.alive {
                Some(alive) if self.buf[0] == KEEPALIVE => {
                    let secs = <[u8; 4]>::try_from(&self.buf[1..])
                        .map_err(|_| FrameError::BadKeepalive)?;
                    alive.heard(u32::from_le_bytes(secs));
                }
                _ => return Ok((self.buf[0], &self.buf[1..])),
            }
        }
    }

    /// Reads the next frame into `buf`.
    fn read_one(&mut self) -> Result<(), FrameError> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.inner.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Err(FrameError::Closed),
                Ok(0) => return Err(FrameError::Truncated),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        let len = u32::from_le_bytes(len);
        if len == 0 || len > MAX_FRAME {
            return Err(FrameError::BadLength(len));
        }
        self.buf.resize(len as usize, 0);
        self.inner.read_exact(&mut self.buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                FrameError::Truncated
            } else {
                io_err(e)
            }
        })
    }
}

/// Writes frames, buffered; [`FrameWriter::flush`] sends them. The
/// stream is shared with the keepalive thread ([`FrameWriter::keepalive`]),
/// which writes whole frames between ours.
pub struct FrameWriter {
    inner: Arc<Mutex<Out>>,
}

/// The buffered stream and when we last wrote to it.
struct Out {
    inner: BufWriter<BoxWrite>,
    last: Instant,
}

fn lock(m: &Mutex<Out>) -> MutexGuard<'_, Out> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FrameWriter {
    /// Frames to `inner`.
    pub fn new(inner: BoxWrite) -> Self {
        FrameWriter {
            inner: Arc::new(Mutex::new(Out {
                inner: BufWriter::with_capacity(256 << 10, inner),
                last: Instant::now(),
            })),
        }
    }

    /// Inserts a layer under the frames (e.g. compression); what is
    /// buffered is flushed first. Only before [`FrameWriter::keepalive`].
    pub fn map(self, f: impl FnOnce(BoxWrite) -> BoxWrite) -> io::Result<Self> {
        let out = Arc::try_unwrap(self.inner)
            .map_err(|_| io::Error::other("a layer under frames already shared"))?
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        let inner = out.inner.into_inner().map_err(|e| e.into_error())?;
        Ok(FrameWriter::new(f(inner)))
    }

    /// Sends a keepalive now, then from a thread of its own whenever
    /// nothing was written for `alive`'s interval (see [`super::alive`]),
    /// until this writer is dropped or the stream fails. Only when both
    /// sides have `FEATURE_KEEPALIVE`.
    pub fn keepalive(&self, alive: Arc<Alive>) -> io::Result<()> {
        let send = |o: &mut Out, alive: &Alive| {
            o.frame(KEEPALIVE, &alive.own_secs().to_le_bytes())?;
            o.flush()
        };
        send(&mut lock(&self.inner), &alive)?;
        let weak = Arc::downgrade(&self.inner);
        std::thread::spawn(move || loop {
            let every = alive.interval();
            let tick = every.map_or(std::time::Duration::from_secs(1), |i| {
                (i / 4).clamp(
                    std::time::Duration::from_millis(10),
                    std::time::Duration::from_secs(1),
                )
            });
            std::thread::sleep(tick);
            // The writer is gone: so is the link.
            let Some(out) = weak.upgrade() else { return };
            let Some(every) = every else { continue };
            let mut o = lock(&out);
            if o.last.elapsed() >= every && send(&mut o, &alive).is_err() {
                return;
            }
        });
        Ok(())
    }

    /// Queues one frame of type `kind` (a payload too long for a frame is
    /// a bug of the caller: an error, nothing written).
    pub fn write(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        lock(&self.inner).frame(kind, payload)
    }

    /// Sends what is queued.
    pub fn flush(&mut self) -> io::Result<()> {
        lock(&self.inner).flush()
    }

    /// A second writer on the same stream, for another thread: frames
    /// of the two go out whole, one after the other (as keepalives do).
    pub fn share(&self) -> FrameWriter {
        FrameWriter {
            inner: self.inner.clone(),
        }
    }
}

impl Out {
    fn frame(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        self.last = Instant::now();
        let len = payload.len() + 1;
        if len > MAX_FRAME as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "message too long for a frame",
            ));
        }
        // Whole frames only on the wire between two flushes: a frame
        // that does not fit what is left of the buffer sends the buffer
        // first (a larger one then goes out whole). A peer that has a
        // frame's beginning and waits for its rest would otherwise wait
        // for our next flush while we wait for its answer.
        let spare = self.inner.capacity() - self.inner.buffer().len();
        if 4 + len > spare {
            self.inner.flush()?;
        }
        self.inner.write_all(&(len as u32).to_le_bytes())?;
        self.inner.write_all(&[kind])?;
        self.inner.write_all(payload)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.last = Instant::now();
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn reader(bytes: Vec<u8>) -> FrameReader {
        FrameReader::new(Box::new(io::Cursor::new(bytes)))
    }

    /// The bytes a [`shared_writer`] has passed on, readable by the test.
    type Written = Arc<Mutex<Vec<u8>>>;

    /// A stream that appends what is written to a [`Written`].
    struct Shared(Written);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A frame writer over a [`Shared`] stream, and the bytes that have
    /// reached that stream so far (what the peer would have received).
    fn shared_writer() -> (Written, FrameWriter) {
        let out = Written::default();
        let w = FrameWriter::new(Box::new(Shared(out.clone())));
        (out, w)
    }

    #[test]
    fn frames_round_trip_and_bad_lengths_are_refused() {
        let (out, mut w) = shared_writer();
        w.write(7, b"hello").unwrap();
        w.write(9, b"").unwrap();
        w.flush().unwrap();
        let bytes = out.lock().unwrap().clone();
        let mut r = reader(bytes.clone());
        assert_eq!(r.read().unwrap(), (7, &b"hello"[..]));
        assert_eq!(r.read().unwrap(), (9, &b""[..]));
        assert!(matches!(r.read(), Err(FrameError::Closed)));
        let mut r = reader(bytes[..7].to_vec());
        assert!(matches!(r.read(), Err(FrameError::Truncated)));
        let mut r = reader(u32::MAX.to_le_bytes().to_vec());
        assert!(matches!(r.read(), Err(FrameError::BadLength(u32::MAX))));
        let mut r = reader(vec![0, 0, 0, 0]);
        assert!(matches!(r.read(), Err(FrameError::BadLength(0))));
    }

    #[test]
    fn only_whole_frames_leave_before_a_flush() {
        let (out, mut w) = shared_writer();
        for (i, size) in [100_000, 200_000, 7, 300_000, 60_000, 250_000, 1 << 20]
            .iter()
            .enumerate()
        {
            w.write(i as u8 + 1, &vec![i as u8; *size]).unwrap();
            // What reached the stream parses as whole frames.
            let bytes = out.lock().unwrap().clone();
            let r = reader(bytes.clone());
            assert!(!r.has_frame() || bytes.len() >= 4);
            let mut r = reader(bytes);
            loop {
                match r.read() {
                    Ok(_) => {}
                    Err(FrameError::Closed) => break,
                    Err(e) => panic!("a partial frame went out after frame {i}: {e}"),
                }
            }
        }
        let mut r = reader(vec![5, 0, 0, 0, 1, 2]);
        assert!(!r.has_frame());
        r = reader(vec![2, 0, 0, 0, 1, 2, 9]);
        let _ = std::io::BufRead::fill_buf(&mut r.inner);
        assert!(r.has_frame());
    }

    #[test]
    fn keepalives_are_taken_in_and_sent_when_idle() {
        use std::time::Duration;
        let (out, mut w) = shared_writer();
        let alive = Alive::new(Some(Duration::from_millis(600)), false);
        w.keepalive(alive.clone()).unwrap();
        w.write(7, b"x").unwrap();
        w.flush().unwrap();
        // Idle: keepalives every 200 ms; busy writing: none.
        std::thread::sleep(Duration::from_millis(1000));
        let idle = out.lock().unwrap().len();
        assert!((3 * 9..=8 * 9).contains(&(idle - 6)), "{idle} bytes");
        for _ in 0..20 {
            w.write(7, b"x").unwrap();
            w.flush().unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        // (One keepalive may have gone out just before the first write.)
        let busy = out.lock().unwrap().len() - idle;
        assert!(busy == 20 * 6 || busy == 20 * 6 + 9, "{busy} bytes");
        drop(w);
        // The reader takes them in only once told to; what it says
        // reaches the peer's side.
        let bytes = out.lock().unwrap().clone();
        let mut r = reader(bytes.clone());
        assert_eq!(r.read().unwrap().0, KEEPALIVE);
        let peer = Alive::new(None, true);
        let mut r = reader(bytes);
        r.accept_keepalives(peer.clone());
        let mut n = 0;
        while let Ok((k, p)) = r.read() {
            assert_eq!((k, p), (7, &b"x"[..]));
            n += 1;
        }
        assert_eq!(n, 21);
        assert_eq!(peer.timeout(), Some(Duration::from_secs(1)));
        // A frame of keepalives then nothing whole: not a frame to read.
        let mut ka = vec![5, 0, 0, 0, KEEPALIVE, 2, 0, 0, 0, 9, 0];
        let mut r = reader(ka.clone());
        r.accept_keepalives(Alive::new(None, false));
        let _ = std::io::BufRead::fill_buf(&mut r.inner);
        assert!(!r.has_frame());
        ka.truncate(9);
        ka.extend([2, 0, 0, 0, KEEPALIVE, 1]);
        let mut r = reader(ka);
        r.accept_keepalives(Alive::new(None, false));
        assert!(matches!(r.read(), Err(FrameError::BadKeepalive)));
    }
}

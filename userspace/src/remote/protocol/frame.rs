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

use std::io::{self, BufReader, BufWriter, Read, Write};

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
    #[error("connection error")]
    Io(#[from] io::Error),
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
}

impl FrameReader {
    /// Frames from `inner`.
    pub fn new(inner: BoxRead) -> Self {
        FrameReader {
            inner: BufReader::with_capacity(256 << 10, inner),
            buf: Vec::new(),
        }
    }

    /// Inserts a layer under the frames (e.g. decompression). Bytes
    /// already buffered stay first in line.
    pub fn map(self, f: impl FnOnce(BoxRead) -> BoxRead) -> Self {
        let buffered = self.inner.buffer().to_vec();
        let rest = self.inner.into_inner();
        let chained: BoxRead = Box::new(io::Cursor::new(buffered).chain(rest));
        FrameReader::new(f(chained))
    }

    /// Whether bytes of the next frame are already here (a reader that
    /// would block otherwise flushes its writer first).
    pub fn has_buffered(&self) -> bool {
        !self.inner.buffer().is_empty()
    }

    /// Whether a whole frame is already here: reading it will not wait
    /// for the peer (a reader that would wait flushes its writer first).
    pub fn has_frame(&self) -> bool {
        let b = self.inner.buffer();
        b.len() >= 4 && b.len() - 4 >= u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    /// The next frame: its type byte and payload.
    pub fn read(&mut self) -> Result<(u8, &[u8]), FrameError> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.inner.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Err(FrameError::Closed),
                Ok(0) => return Err(FrameError::Truncated),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
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
                FrameError::Io(e)
            }
        })?;
        Ok((self.buf[0], &self.buf[1..]))
    }
}

/// Writes frames, buffered; [`FrameWriter::flush`] sends them.
pub struct FrameWriter {
    inner: BufWriter<BoxWrite>,
}

impl FrameWriter {
    /// Frames to `inner`.
    pub fn new(inner: BoxWrite) -> Self {
        FrameWriter {
            inner: BufWriter::with_capacity(256 << 10, inner),
        }
    }

    /// Inserts a layer under the frames (e.g. compression); what is
    /// buffered is flushed first.
    pub fn map(self, f: impl FnOnce(BoxWrite) -> BoxWrite) -> io::Result<Self> {
        let inner = self.inner.into_inner().map_err(|e| e.into_error())?;
        Ok(FrameWriter::new(f(inner)))
    }

    /// Queues one frame of type `kind` (a payload too long for a frame is
    /// a bug of the caller: an error, nothing written).
    pub fn write(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
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

    /// Sends what is queued.
    pub fn flush(&mut self) -> io::Result<()> {
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
}

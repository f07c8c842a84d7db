//! zstd compression of a byte stream (`-z`), for a pipelined protocol:
//! [`Writer::flush`] ends the current zstd block, so that the peer's
//! [`Reader`] can decode everything written before the flush without
//! waiting for more input (at the cost of a few bytes per flush).

use std::io::{self, BufReader, Read, Write};

/// The compression level of `-z` (zstd's default: fast, good ratio).
pub const DEFAULT_LEVEL: i32 = 3;

/// The largest zstd window either side uses, as a power of two: 8 MiB.
/// The decoder refuses a stream whose frame asks for more (a hostile peer
/// would otherwise make it reserve up to 128 MiB, or 2 GiB with the long
/// mode); the encoder's levels up to 19 stay within it (level 3: 2 MiB).
pub const WINDOW_LOG_MAX: u32 = 23;

/// The highest level [`Writer::new`] uses: zstd's "ultra" levels above it
/// want windows beyond [`WINDOW_LOG_MAX`] and, even with the window
/// capped, hundreds of MiB of match tables (level 22: about 680 MiB).
pub const MAX_LEVEL: i32 = 19;

/// Compresses what is written to it into `W`.
pub struct Writer<W: Write> {
    enc: zstd::stream::write::Encoder<'static, W>,
}

impl<W: Write> Writer<W> {
    /// A compressor writing one zstd frame to `inner` at `level` (at most
    /// [`MAX_LEVEL`]), with a window of at most [`WINDOW_LOG_MAX`] (what
    /// the peer's [`Reader`] accepts).
    pub fn new(inner: W, level: i32) -> io::Result<Self> {
        let level = level.min(MAX_LEVEL);
        let mut enc = zstd::stream::write::Encoder::new(inner, level)?;
        if level == MAX_LEVEL {
            enc.window_log(WINDOW_LOG_MAX)?;
        }
        Ok(Writer { enc })
    }

    /// Ends the zstd frame and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        self.enc.finish()
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        self.enc.get_ref()
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.enc.write(buf)
    }

    /// Ends the current block, writes it to the inner writer and flushes
    /// that: the peer can decode everything written so far.
    fn flush(&mut self) -> io::Result<()> {
        self.enc.flush()
    }
}

/// Decompresses what [`Writer`] wrote, as it arrives.
pub struct Reader<R: Read> {
    dec: zstd::stream::read::Decoder<'static, BufReader<R>>,
}

impl<R: Read> Reader<R> {
    /// A decompressor reading from `inner`; a frame asking for a window
    /// larger than [`WINDOW_LOG_MAX`] is an error, before its memory is
    /// reserved.
    pub fn new(inner: R) -> io::Result<Self> {
        let mut dec = zstd::stream::read::Decoder::new(inner)?;
        dec.window_log_max(WINDOW_LOG_MAX)?;
        Ok(Reader { dec })
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        self.dec.get_ref().get_ref()
    }
}

impl<R: Read> Read for Reader<R> {
    /// Returns decoded bytes as soon as there are some: it reads from
    /// the inner reader only when it has nothing to return. The inner
    /// stream ending without the frame's end (the peer exited or was
    /// killed after a flush) is the end of the stream: the layer above
    /// (frames) judges whether it ended at a boundary.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.dec.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    use super::*;

    /// An in-memory pipe whose reading end says `WouldBlock` when empty,
    /// so a reader that wants bytes not yet written fails the test.
    #[derive(Clone, Default)]
    struct Pipe(Rc<RefCell<VecDeque<u8>>>);

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut q = self.0.borrow_mut();
            if q.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(q.len());
            for (d, s) in buf.iter_mut().zip(q.drain(..n)) {
                *d = s;
            }
            Ok(n)
        }
    }

    fn message(i: usize) -> Vec<u8> {
        format!("message {i}: ")
            .repeat(1 + i * 37 % 500)
            .into_bytes()
    }

    #[test]
    fn each_flush_makes_everything_written_decodable() {
        let pipe = Pipe::default();
        let mut w = Writer::new(pipe.clone(), DEFAULT_LEVEL).unwrap();
        let mut r = Reader::new(pipe.clone()).unwrap();
        for i in 0..200 {
            let msg = message(i);
            w.write_all(&msg).unwrap();
            if i % 3 == 0 {
                w.write_all(&msg).unwrap();
            }
            w.flush().unwrap();
            let mut got = vec![0; msg.len()];
            r.read_exact(&mut got).unwrap();
            assert_eq!(got, msg, "message {i}");
            if i % 3 == 0 {
                r.read_exact(&mut got).unwrap();
                assert_eq!(got, msg, "message {i} again");
            }
            // Nothing more was sent: the reader wants more input.
            let mut one = [0u8; 1];
            let e = r.read(&mut one).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        }
        w.finish().unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap_err();
        assert!(rest.is_empty());
    }

    #[test]
    fn a_finished_stream_ends_and_compresses() {
        let data: Vec<u8> = (0..1_000_000u32)
            .flat_map(|i| (i / 64).to_le_bytes())
            .collect();
        let mut w = Writer::new(Vec::new(), DEFAULT_LEVEL).unwrap();
        for chunk in data.chunks(10_007) {
            w.write_all(chunk).unwrap();
            w.flush().unwrap();
        }
        let packed = w.finish().unwrap();
        assert!(packed.len() < data.len() / 10, "{} bytes", packed.len());
        let mut out = Vec::new();
        Reader::new(&packed[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert!(out == data);
        // Cut after a flush, without the frame's end: all of it, then
        // the end of the stream.
        let mut w = Writer::new(Vec::new(), DEFAULT_LEVEL).unwrap();
        w.write_all(&data[..5000]).unwrap();
        w.flush().unwrap();
        let cut = w.get_ref().clone();
        let mut out = Vec::new();
        Reader::new(&cut[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert!(out == data[..5000]);
        let mut corrupt = packed.clone();
        corrupt[packed.len() / 2] ^= 0xff;
        let mut out = Vec::new();
        let r = Reader::new(&corrupt[..]).unwrap().read_to_end(&mut out);
        assert!(
            r.is_err() || out != data,
            "a corrupt stream decoded as the original"
        );
    }

    #[test]
    fn a_window_beyond_the_cap_is_refused() {
        let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        for (log, ok) in [
            (WINDOW_LOG_MAX, true),
            (WINDOW_LOG_MAX + 1, false),
            (27, false),
        ] {
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
            enc.window_log(log).unwrap();
            enc.write_all(&data).unwrap();
            let packed = enc.finish().unwrap();
            let mut out = Vec::new();
            let r = Reader::new(&packed[..]).unwrap().read_to_end(&mut out);
            assert_eq!(r.is_ok(), ok, "window log {log}: {r:?}");
            if ok {
                assert!(out == data);
            }
        }
        // Every level's stream decodes within the cap.
        for level in [1, DEFAULT_LEVEL, 19, 22] {
            let mut w = Writer::new(Vec::new(), level).unwrap();
            w.write_all(&data).unwrap();
            let packed = w.finish().unwrap();
            let mut out = Vec::new();
            Reader::new(&packed[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == data, "level {level}");
        }
    }
}

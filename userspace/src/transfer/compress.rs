//! zstd compression of a byte stream (`-z`), for a pipelined protocol:
//! [`Writer::flush`] ends the current zstd block, so that the peer's
//! [`Reader`] can decode everything written before the flush without
//! waiting for more input (at the cost of a few bytes per flush).

use std::io::{self, BufReader, Read, Write};

/// The compression level of `-z` (zstd's default: fast, good ratio).
pub const DEFAULT_LEVEL: i32 = 3;

/// Compresses what is written to it into `W`.
pub struct Writer<W: Write> {
    enc: zstd::stream::write::Encoder<'static, W>,
}

impl<W: Write> Writer<W> {
    /// A compressor writing one zstd frame to `inner`.
    pub fn new(inner: W, level: i32) -> io::Result<Self> {
        Ok(Writer {
            enc: zstd::stream::write::Encoder::new(inner, level)?,
        })
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
    /// A decompressor reading from `inner`.
    pub fn new(inner: R) -> io::Result<Self> {
        Ok(Reader {
            dec: zstd::stream::read::Decoder::new(inner)?,
        })
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
}

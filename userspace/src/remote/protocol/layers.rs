//! The layers inserted under the frames after the handshake
//! ([`super::frame::FrameWriter::map`]): zstd compression when both sides
//! agreed on [`FEATURE_ZSTD`] (`-z`), and the `--bwlimit` token bucket
//! under it (it limits the bytes on the wire).
//!
//! Where each direction switches: the server's hello is sent plain and
//! the client's too; the client compresses from its setup on, the server
//! from its ready (it learns the rate limit from the setup).

use std::io::{self, Read, Write};

use super::frame::{BoxRead, BoxWrite, FrameReader, FrameWriter};
use super::messages::FEATURE_ZSTD;
use crate::transfer::bwlimit::RateLimited;
use crate::transfer::compress;

/// A stream whose layer could not be made: every call fails with why.
struct Failed(io::ErrorKind, String);

impl Failed {
    fn err(&self) -> io::Error {
        io::Error::new(self.0, self.1.clone())
    }
}

impl Read for Failed {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self.err())
    }
}

impl Write for Failed {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(self.err())
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(self.err())
    }
}

fn failed(e: &io::Error) -> Failed {
    Failed(e.kind(), format!("cannot set up compression: {e}"))
}

/// The reading side: decompression when `features` has [`FEATURE_ZSTD`].
pub fn reader(r: FrameReader, features: u64) -> FrameReader {
    if features & FEATURE_ZSTD == 0 {
        return r;
    }
    r.map(|inner| -> BoxRead {
        match compress::Reader::new(inner) {
            Ok(z) => Box::new(z),
            Err(e) => Box::new(failed(&e)),
        }
    })
}

/// The writing side: `bwlimit` bytes per second (0: no limit), then
/// compression above it when `features` has [`FEATURE_ZSTD`].
pub fn writer(w: FrameWriter, features: u64, bwlimit: u64) -> io::Result<FrameWriter> {
    let mut w = w;
    if bwlimit > 0 {
        w = w.map(|inner| -> BoxWrite { Box::new(RateLimited::new(inner, bwlimit)) })?;
    }
    if features & FEATURE_ZSTD != 0 {
        w = w.map(|inner| -> BoxWrite {
            match compress::Writer::new(inner, compress::DEFAULT_LEVEL) {
                Ok(z) => Box::new(z),
                Err(e) => Box::new(failed(&e)),
            }
        })?;
    }
    Ok(w)
}

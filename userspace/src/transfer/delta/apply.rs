//! The receiver's side: a new file from the old one and the sender's ops.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use super::{DeltaError, Op, Signature};

/// Bytes read from the old file at a time for a run of copied blocks.
const COPY_CHUNK: usize = 1024 * 1024;

/// Writes the new file to `out` from `old` (the file the signature was
/// made of, read with `pread`) and the ops, in order; checks the
/// sender's [`Op::End`].
pub struct Applier<'a, W: Write> {
    sig: &'a Signature,
    old: Option<&'a File>,
    out: W,
    hasher: blake3::Hasher,
    written: u64,
    buf: Vec<u8>,
    ended: bool,
}

impl<'a, W: Write> Applier<'a, W> {
    /// An applier for ops made against `sig`, the signature of `old`
    /// (`None`: no old file, only literals are acceptable).
    pub fn new(sig: &'a Signature, old: Option<&'a File>, out: W) -> Self {
        Applier {
            sig,
            old,
            out,
            hasher: blake3::Hasher::new(),
            written: 0,
            buf: Vec::new(),
            ended: false,
        }
    }

    /// Bytes of the new file written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether [`Op::End`] came and matched.
    pub fn is_done(&self) -> bool {
        self.ended
    }

    /// Applies one op. [`Op::End`] checks the length and hash of what
    /// was written: [`DeltaError::Mismatch`] when they differ.
    pub fn apply(&mut self, op: Op<'_>) -> Result<(), DeltaError> {
        if self.ended {
            return Err(DeltaError::BadOp("op after the end"));
        }
        match op {
            Op::Copy { start, count } => self.copy(start, count),
            Op::Literal(data) => {
                if data.is_empty() {
                    return Err(DeltaError::BadOp("empty literal"));
                }
                self.write(data)
            }
            Op::End { len, hash } => {
                if len != self.written || hash != *self.hasher.finalize().as_bytes() {
                    return Err(DeltaError::Mismatch);
                }
                self.out.flush()?;
                self.ended = true;
                Ok(())
            }
        }
    }

    /// The output, once [`Op::End`] has been applied.
    pub fn finish(self) -> Result<W, DeltaError> {
        if !self.ended {
            return Err(DeltaError::BadOp("the delta has no end"));
        }
        Ok(self.out)
    }

    fn copy(&mut self, start: u32, count: u32) -> Result<(), DeltaError> {
        let nblocks = self.sig.blocks().len() as u64;
        if count == 0 || start as u64 + count as u64 > nblocks {
            return Err(DeltaError::BadOp("block out of range"));
        }
        let Some(old) = self.old else {
            return Err(DeltaError::BadOp("copy without an old file"));
        };
        let (first, _) = self.sig.block_range(start);
        let (last_off, last_len) = self.sig.block_range(start + count - 1);
        let (mut off, end) = (first, last_off + last_len as u64);
        let mut buf = std::mem::take(&mut self.buf);
        while off < end {
            let n = ((end - off) as usize).min(COPY_CHUNK);
            buf.resize(n, 0);
            // A shorter old file (changed since its signature) is an
            // error here, or a hash mismatch at the end.
            old.read_exact_at(&mut buf, off)?;
            self.write(&buf)?;
            off += n as u64;
        }
        self.buf = buf;
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), DeltaError> {
        self.out.write_all(data)?;
        self.hasher.update(data);
        self.written += data.len() as u64;
        Ok(())
    }
}

//! The receiver's side: a new file from the old one and the sender's ops.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use super::{DeltaError, Op, Signature};

/// Bytes read from the old file at a time for a run of copied blocks.
const COPY_CHUNK: usize = 1024 * 1024;

/// Writes the new file from `old` (the file the signature was made of,
/// read with `pread`) and the ops, in order, to the writer given with
/// each op; checks the sender's [`Op::End`].
pub struct Applier {
    block_len: u32,
    old_len: u64,
    nblocks: u64,
    old: Option<File>,
    hasher: blake3::Hasher,
    written: u64,
    buf: Vec<u8>,
    ended: bool,
}

impl Applier {
    /// An applier for ops made against `sig`, the signature of `old`
    /// (`None`: no old file, only literals are acceptable).
    pub fn new(sig: &Signature, old: Option<File>) -> Self {
        Applier {
            block_len: sig.block_len(),
            old_len: sig.file_len(),
            nblocks: sig.blocks().len() as u64,
            old,
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

    /// Applies one op, writing to `out` (the same for every op).
    /// [`Op::End`] checks the length and hash of what was written:
    /// [`DeltaError::Mismatch`] when they differ.
    pub fn apply<W: Write + ?Sized>(&mut self, op: Op<'_>, out: &mut W) -> Result<(), DeltaError> {
        if self.ended {
            return Err(DeltaError::BadOp("op after the end"));
        }
        match op {
            Op::Copy { start, count } => self.copy(start, count, out),
            Op::Literal(data) => {
                if data.is_empty() {
                    return Err(DeltaError::BadOp("empty literal"));
                }
                self.write(data, out)
            }
            Op::End { len, hash } => {
                if len != self.written || hash != *self.hasher.finalize().as_bytes() {
                    return Err(DeltaError::Mismatch);
                }
                out.flush()?;
                self.ended = true;
                Ok(())
            }
        }
    }

    fn copy<W: Write + ?Sized>(
        &mut self,
        start: u32,
        count: u32,
        out: &mut W,
    ) -> Result<(), DeltaError> {
        if count == 0 || start as u64 + count as u64 > self.nblocks {
            return Err(DeltaError::BadOp("block out of range"));
        }
        let Some(old) = self.old.take() else {
            return Err(DeltaError::BadOp("copy without an old file"));
        };
        let bl = self.block_len as u64;
        let off = start as u64 * bl;
        let end = ((start as u64 + count as u64) * bl).min(self.old_len);
        let r = self.copy_range(&old, off, end, out);
        self.old = Some(old);
        r
    }

    fn copy_range<W: Write + ?Sized>(
        &mut self,
        old: &File,
        mut off: u64,
        end: u64,
        out: &mut W,
    ) -> Result<(), DeltaError> {
        let mut buf = std::mem::take(&mut self.buf);
        while off < end {
            let n = ((end - off) as usize).min(COPY_CHUNK);
            buf.resize(n, 0);
            // A shorter old file (changed since its signature) is an
            // error here, or a hash mismatch at the end.
            let r = old
                .read_exact_at(&mut buf, off)
                .map_err(DeltaError::from)
                .and_then(|()| self.write(&buf, out));
            if r.is_err() {
                self.buf = buf;
                return r;
            }
            off += n as u64;
        }
        self.buf = buf;
        Ok(())
    }

    fn write<W: Write + ?Sized>(&mut self, data: &[u8], out: &mut W) -> Result<(), DeltaError> {
        out.write_all(data)?;
        self.hasher.update(data);
        self.written += data.len() as u64;
        Ok(())
    }
}

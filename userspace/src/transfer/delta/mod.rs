//! rsync-style delta transfer.
//!
//! 1. The receiver computes the [`Signature`] of its old copy: the file is
//!    cut into blocks of [`block_len_for`]`(size)` bytes (the last one may
//!    be shorter); each block gets a weak checksum ([`Rolling`], rsync's
//!    Adler-32 variant, which slides by one byte in O(1)) and a strong
//!    hash (BLAKE3, first [`STRONG_LEN`] bytes).
//! 2. The sender runs [`generate`] over its new file: a window of one
//!    block slides over it; where the weak checksum and then the strong
//!    hash of the window match a block of the signature it emits
//!    [`Op::Copy`], else the byte joins an [`Op::Literal`] (at most
//!    [`MAX_LITERAL`] bytes each). The last op is [`Op::End`] with the
//!    length and the BLAKE3 hash of the whole new file. Memory: the
//!    signature's index plus one window and one pending literal.
//! 3. The receiver feeds the ops to an [`Applier`], which copies old
//!    blocks with `pread` and writes into a temporary; [`Op::End`] checks
//!    the hash: a mismatch (old file changed meanwhile, a weak+strong
//!    collision) is [`DeltaError::Mismatch`], and the caller sends the
//!    whole file instead.
//!
//! [`wire`] is the compact byte form of signatures and ops, with a strict
//! decoder (bounded lengths, errors on any garbage, never a panic).

mod apply;
mod generate;
pub mod wire;

#[cfg(test)]
mod tests;

use std::io::{self, Read};

pub use apply::Applier;
pub use generate::generate;

/// The smallest block length (small files).
pub const MIN_BLOCK: u32 = 2 * 1024;
/// The largest block length (files of 16 GiB and more).
pub const MAX_BLOCK: u32 = 128 * 1024;
/// The most blocks a signature may have (with [`MAX_BLOCK`]: 2 TiB).
pub const MAX_BLOCKS: u64 = 1 << 24;
/// The longest [`Op::Literal`].
pub const MAX_LITERAL: usize = 64 * 1024;
/// Bytes of BLAKE3 kept as the strong hash of a block.
pub const STRONG_LEN: usize = 16;

/// Why a delta could not be made or applied.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// Reading the source or the old file, or writing the output, failed.
    #[error("delta transfer: I/O error")]
    Io(#[from] io::Error),
    /// An op does not fit the signature (block out of range, op after
    /// the end, no end).
    #[error("delta transfer: bad op: {0}")]
    BadOp(&'static str),
    /// The assembled file is not the sender's file: send it whole.
    #[error("delta transfer: the assembled file does not match the sender's hash")]
    Mismatch,
    /// A signature cannot be made with these parameters.
    #[error("delta transfer: {0}")]
    Invalid(&'static str),
}

/// The block length used for a file of `size` bytes: about its square
/// root (rsync's choice: the signature and the matching cost grow like
/// sqrt(size)), a multiple of 8, within [`MIN_BLOCK`]..=[`MAX_BLOCK`].
pub fn block_len_for(size: u64) -> u32 {
    let root = (size as f64).sqrt() as u64;
    let rounded = (root + 7) & !7;
    rounded.clamp(MIN_BLOCK as u64, MAX_BLOCK as u64) as u32
}

/// The weak checksum of a window (rsync's: two 16-bit sums), which moves
/// by one byte in O(1) with [`Rolling::roll`].
#[derive(Clone, Copy, Debug)]
pub struct Rolling {
    a: u32,
    b: u32,
    len: u32,
}

impl Rolling {
    /// The checksum of `data`.
    pub fn new(data: &[u8]) -> Self {
        let len = data.len() as u32;
        let (mut a, mut b) = (0u32, 0u32);
        for (i, &x) in data.iter().enumerate() {
            a = a.wrapping_add(x as u32);
            b = b.wrapping_add((len - i as u32).wrapping_mul(x as u32));
        }
        Rolling { a, b, len }
    }

    /// The window loses `out` (its first byte) and gains `inc` at its end.
    pub fn roll(&mut self, out: u8, inc: u8) {
        self.a = self.a.wrapping_sub(out as u32).wrapping_add(inc as u32);
        self.b = self
            .b
            .wrapping_sub(self.len.wrapping_mul(out as u32))
            .wrapping_add(self.a);
    }

    /// The 32-bit checksum.
    pub fn digest(&self) -> u32 {
        (self.a & 0xffff) | (self.b << 16)
    }
}

/// The strong hash of a block.
pub fn strong(data: &[u8]) -> [u8; STRONG_LEN] {
    let h = blake3::hash(data);
    let mut out = [0; STRONG_LEN];
    out.copy_from_slice(&h.as_bytes()[..STRONG_LEN]);
    out
}

/// The checksums of one block of the old file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSum {
    /// [`Rolling::digest`] of the block.
    pub weak: u32,
    /// [`strong`] of the block.
    pub strong: [u8; STRONG_LEN],
}

/// The receiver's description of its old file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    block_len: u32,
    file_len: u64,
    blocks: Vec<BlockSum>,
}

impl Signature {
    /// The signature of what `old` reads to its end, cut in blocks of
    /// `block_len` (usually [`block_len_for`] of its size).
    pub fn compute<R: Read>(mut old: R, block_len: u32) -> Result<Self, DeltaError> {
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&block_len) {
            return Err(DeltaError::Invalid("block length out of range"));
        }
        let mut buf = vec![0; block_len as usize];
        let mut blocks = Vec::new();
        let mut file_len = 0u64;
        loop {
            let n = read_full(&mut old, &mut buf)?;
            if n == 0 {
                break;
            }
            if blocks.len() as u64 >= MAX_BLOCKS {
                return Err(DeltaError::Invalid("file too large for a signature"));
            }
            let block = &buf[..n];
            blocks.push(BlockSum {
                weak: Rolling::new(block).digest(),
                strong: strong(block),
            });
            file_len += n as u64;
            if n < buf.len() {
                break;
            }
        }
        Ok(Signature {
            block_len,
            file_len,
            blocks,
        })
    }

    /// A signature from its parts; `blocks` must be as many as
    /// `file_len` needs.
    pub fn from_parts(
        block_len: u32,
        file_len: u64,
        blocks: Vec<BlockSum>,
    ) -> Result<Self, DeltaError> {
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&block_len) {
            return Err(DeltaError::Invalid("block length out of range"));
        }
        let want = file_len.div_ceil(block_len as u64);
        if want > MAX_BLOCKS || blocks.len() as u64 != want {
            return Err(DeltaError::Invalid(
                "block count does not match the file length",
            ));
        }
        Ok(Signature {
            block_len,
            file_len,
            blocks,
        })
    }

    /// The block length.
    pub fn block_len(&self) -> u32 {
        self.block_len
    }

    /// The length of the old file.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The blocks' checksums.
    pub fn blocks(&self) -> &[BlockSum] {
        &self.blocks
    }

    /// Offset and length of block `i` in the old file.
    pub fn block_range(&self, i: u32) -> (u64, usize) {
        let off = i as u64 * self.block_len as u64;
        let len = (self.file_len - off).min(self.block_len as u64) as usize;
        (off, len)
    }
}

/// One instruction of a delta, from the sender to the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// Copy old blocks `start..start + count`.
    Copy {
        /// The first block.
        start: u32,
        /// How many consecutive blocks (at least 1).
        count: u32,
    },
    /// These bytes (1..=[`MAX_LITERAL`]).
    Literal(&'a [u8]),
    /// The end: the new file has `len` bytes and this BLAKE3 hash.
    End {
        /// Length of the new file.
        len: u64,
        /// BLAKE3 of the new file.
        hash: [u8; 32],
    },
}

/// Reads until `buf` is full or the end; returns how much was read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

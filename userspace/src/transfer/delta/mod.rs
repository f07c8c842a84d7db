//! rsync-style delta transfer.
//!
//! 1. The receiver computes the [`Signature`] of its old copy: the file is
//!    cut into blocks of [`block_len_for`]`(size)` bytes (the last one may
//!    be shorter); each block gets a weak checksum ([`Rolling`], rsync's
//!    Adler-32 variant, which slides by one byte in O(1)) and a strong
//!    hash (the first [`strong_len_for`] bytes of its BLAKE3: as rsync
//!    does, only as many as keep a false match of weak and strong sums
//!    unlikely for a file of that size, since the whole-file hash of step
//!    3 catches one anyway).
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
//! The block length ([`block_len_for`]) and the strong hash length
//! ([`strong_len_for`]) trade the signature's size against the literal
//! data around a change: for a 256 MiB file, blocks of 32 KiB and 5
//! bytes of strong hash give a 72 KiB signature (rsync: 16 KiB blocks,
//! 7 bytes each and 4 more per matched block, 176 KiB).
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
/// The largest block length (files of 4 GiB and more).
pub const MAX_BLOCK: u32 = 128 * 1024;
/// The most blocks a signature may have (with [`MAX_BLOCK`]: 2 TiB).
pub const MAX_BLOCKS: u64 = 1 << 24;
/// The longest [`Op::Literal`].
pub const MAX_LITERAL: usize = 64 * 1024;
/// The most bytes of BLAKE3 kept as the strong hash of a block.
pub const MAX_STRONG: usize = 16;
/// The fewest.
pub const MIN_STRONG: usize = 2;
/// Margin, in bits, of [`strong_len_for`]: a file of any size compared
/// with a wholly different one has a chance of about 2^-24 of a false
/// block match (which costs a resend of the file, never a wrong file).
const STRONG_BIAS: u32 = 24;

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

/// The block length used for a file of `size` bytes: twice its square
/// root (rsync takes the square root: the signature and the matching
/// cost grow like sqrt(size); with the short strong sums of
/// [`strong_len_for`], a block costs about 9 bytes of signature, and the
/// signature plus the literal blocks at the edges of one change are
/// smallest at about sqrt(9 * size)), a multiple of 8, within
/// [`MIN_BLOCK`]..=[`MAX_BLOCK`].
pub fn block_len_for(size: u64) -> u32 {
    let root = 2 * (size as f64).sqrt() as u64;
    let rounded = (root + 7) & !7;
    rounded.clamp(MIN_BLOCK as u64, MAX_BLOCK as u64) as u32
}

/// The bytes of strong hash per block for comparing a file of `len`
/// bytes (the larger of the old and the new) in blocks of `block_len`:
/// rsync's rule (generator.c, `sum_sizes_sqroot`) with a larger margin.
/// The sender compares about `len` windows with `len / block_len`
/// blocks; with a 32-bit weak sum, a false match of both sums is
/// expected about once in 2^[`STRONG_BIAS`] files when the weak and
/// strong sums have together `STRONG_BIAS + log2(len) + log2(blocks)`
/// bits. The window after a match is compared with the next block by
/// the strong hash alone (up to `blocks` times), so that has at least
/// `STRONG_BIAS + log2(blocks)` bits. Within
/// [`MIN_STRONG`]..=[`MAX_STRONG`].
pub fn strong_len_for(len: u64, block_len: u32) -> usize {
    let log2_ceil = |x: u64| 64 - x.max(1).saturating_sub(1).leading_zeros();
    let blocks = len.div_ceil(block_len.max(1) as u64);
    let rolling = (STRONG_BIAS + log2_ceil(len) + log2_ceil(blocks)).saturating_sub(32);
    let next = STRONG_BIAS + log2_ceil(blocks);
    (rolling.max(next).div_ceil(8) as usize).clamp(MIN_STRONG, MAX_STRONG)
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
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: `sums_avx2` is safe code compiled for AVX2; the
            // only condition of calling it is a CPU that has AVX2, which
            // was just checked.
            let (a, b) = unsafe { sums_avx2(data) };
            return Rolling {
                a,
                b,
                len: data.len() as u32,
            };
        }
        let (a, b) = sums(data);
        Rolling {
            a,
            b,
            len: data.len() as u32,
        }
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

/// [`Rolling::new`]'s two sums of `data`. b is the sum of the prefix
/// sums a_1..a_len: a chunk of n bytes after a prefix sum of `a` adds
/// n * a + sum((n - j) * x_j). Fixed chunks of 64 (no overflow:
/// 64 * 255 * 64 < 2^32) vectorize; with AVX2 ([`sums_avx2`]) this is
/// about 3 times as fast as with the baseline SSE2, which has no 32-bit
/// multiplication.
#[inline(always)]
fn sums(data: &[u8]) -> (u32, u32) {
    const N: usize = 64;
    let (mut a, mut b) = (0u32, 0u32);
    let mut add = |chunk: &[u8]| {
        let n = chunk.len() as u32;
        let (mut s, mut w) = (0u32, 0u32);
        for (j, &x) in chunk.iter().enumerate() {
            s += x as u32;
            w += (n - j as u32) * x as u32;
        }
        b = b.wrapping_add(a.wrapping_mul(n)).wrapping_add(w);
        a = a.wrapping_add(s);
    };
    let mut chunks = data.chunks_exact(N);
    for c in &mut chunks {
        let c: &[u8; N] = c.try_into().expect("chunks_exact");
        add(c);
    }
    add(chunks.remainder());
    (a, b)
}

/// [`sums`] compiled for AVX2 (chosen at run time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sums_avx2(data: &[u8]) -> (u32, u32) {
    sums(data)
}

/// The strong hash of a block: the first `len` bytes of its BLAKE3
/// (`len` <= [`MAX_STRONG`]), the rest zero.
pub fn strong(data: &[u8], len: usize) -> [u8; MAX_STRONG] {
    let h = blake3::hash(data);
    let mut out = [0; MAX_STRONG];
    out[..len].copy_from_slice(&h.as_bytes()[..len]);
    out
}

/// The checksums of one block of the old file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSum {
    /// [`Rolling::digest`] of the block.
    pub weak: u32,
    /// [`strong`] of the block, with the signature's strong length.
    pub strong: [u8; MAX_STRONG],
}

/// The receiver's description of its old file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    block_len: u32,
    file_len: u64,
    strong_len: usize,
    blocks: Vec<BlockSum>,
}

/// Bytes read from the old file at a time for its signature (whole
/// blocks).
const SIG_READ: usize = 1 << 20;

impl Signature {
    /// The signature of what `old` reads to its end, cut in blocks of
    /// `block_len` (usually [`block_len_for`] of its size), with
    /// `strong_len` bytes of strong hash per block (usually
    /// [`strong_len_for`]).
    pub fn compute<R: Read>(
        mut old: R,
        block_len: u32,
        strong_len: usize,
    ) -> Result<Self, DeltaError> {
        check(block_len, strong_len)?;
        let bl = block_len as usize;
        let mut buf = vec![0; bl * (SIG_READ / bl).max(1)];
        let mut blocks = Vec::new();
        let mut file_len = 0u64;
        loop {
            let n = read_full(&mut old, &mut buf)?;
            for block in buf[..n].chunks(bl) {
                if blocks.len() as u64 >= MAX_BLOCKS {
                    return Err(DeltaError::Invalid("file too large for a signature"));
                }
                blocks.push(BlockSum {
                    weak: Rolling::new(block).digest(),
                    strong: strong(block, strong_len),
                });
            }
            file_len += n as u64;
            if n < buf.len() {
                break;
            }
        }
        Ok(Signature {
            block_len,
            file_len,
            strong_len,
            blocks,
        })
    }

    /// A signature from its parts; `blocks` must be as many as
    /// `file_len` needs, their strong hashes zero after `strong_len`.
    pub fn from_parts(
        block_len: u32,
        file_len: u64,
        strong_len: usize,
        blocks: Vec<BlockSum>,
    ) -> Result<Self, DeltaError> {
        check(block_len, strong_len)?;
        if blocks
            .iter()
            .any(|b| b.strong[strong_len..] != [0; MAX_STRONG][strong_len..])
        {
            return Err(DeltaError::Invalid("strong hash longer than its length"));
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
            strong_len,
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

    /// Bytes of strong hash per block.
    pub fn strong_len(&self) -> usize {
        self.strong_len
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

/// Whether a block length and a strong hash length can make a
/// signature.
fn check(block_len: u32, strong_len: usize) -> Result<(), DeltaError> {
    if !(MIN_BLOCK..=MAX_BLOCK).contains(&block_len) {
        return Err(DeltaError::Invalid("block length out of range"));
    }
    if !(MIN_STRONG..=MAX_STRONG).contains(&strong_len) {
        return Err(DeltaError::Invalid("strong hash length out of range"));
    }
    Ok(())
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

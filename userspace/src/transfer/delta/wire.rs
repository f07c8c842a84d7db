//! The byte form of [`Signature`]s and [`Op`]s. Integers are LEB128
//! varints (at most 10 bytes, no overflow), fixed-size fields
//! little-endian. The decoders check every length against the input and
//! the limits before using it: garbage is a [`WireError`], never a panic
//! or a large allocation.
//!
//! ```text
//! signature: 'S' 2 | block_len | file_len | strong_len:u8 |
//!            weak:u32le strong:[strong_len] ...
//!            (as many blocks as file_len / block_len rounded up)
//! op:        1 | start | count            copy blocks start..start+count
//!            2 | len | bytes[len]          literal, 1..=MAX_LITERAL bytes
//!            3 | len | hash[32]            end: file length, BLAKE3
//! ```

use super::{
    BlockSum, Op, Signature, MAX_BLOCK, MAX_BLOCKS, MAX_LITERAL, MAX_STRONG, MIN_BLOCK, MIN_STRONG,
};

/// First byte of an encoded signature.
const SIG_MAGIC: u8 = b'S';
/// Version of the signature encoding (2: strong hashes of a given
/// length).
const SIG_VERSION: u8 = 2;
const OP_COPY: u8 = 1;
const OP_LITERAL: u8 = 2;
const OP_END: u8 = 3;
/// The longest encoded op.
pub const MAX_OP_BYTES: usize = 1 + 10 + MAX_LITERAL;

/// Why bytes do not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ends inside an item: more bytes are needed.
    #[error("delta wire: truncated input")]
    Truncated,
    /// The input is not a valid encoding.
    #[error("delta wire: {0}")]
    Invalid(&'static str),
}

/// Appends `v` as a varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint at the start of `buf`, and its length.
pub fn get_varint(buf: &[u8]) -> Result<(u64, usize), WireError> {
    let mut v = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        let bits = (b & 0x7f) as u64;
        if i == 9 && bits > 1 {
            return Err(WireError::Invalid("varint overflows 64 bits"));
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    if buf.len() >= 10 {
        Err(WireError::Invalid("varint longer than 10 bytes"))
    } else {
        Err(WireError::Truncated)
    }
}

/// A cursor over input bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Result<u64, WireError> {
        let (v, n) = get_varint(&self.buf[self.pos..])?;
        self.pos += n;
        Ok(v)
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() - self.pos < n {
            return Err(WireError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }
}

impl Signature {
    /// Appends the byte form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let sl = self.strong_len;
        out.reserve(24 + self.blocks.len() * (4 + sl));
        out.extend_from_slice(&[SIG_MAGIC, SIG_VERSION]);
        put_varint(out, self.block_len as u64);
        put_varint(out, self.file_len);
        out.push(sl as u8);
        for b in &self.blocks {
            out.extend_from_slice(&b.weak.to_le_bytes());
            out.extend_from_slice(&b.strong[..sl]);
        }
    }

    /// Decodes exactly `buf` (trailing bytes are an error).
    pub fn decode(buf: &[u8]) -> Result<Signature, WireError> {
        let mut c = Cursor { buf, pos: 0 };
        if c.u8()? != SIG_MAGIC || c.u8()? != SIG_VERSION {
            return Err(WireError::Invalid("not a signature (magic or version)"));
        }
        let block_len = c.varint()?;
        if !(MIN_BLOCK as u64..=MAX_BLOCK as u64).contains(&block_len) {
            return Err(WireError::Invalid("block length out of range"));
        }
        let file_len = c.varint()?;
        let count = file_len.div_ceil(block_len);
        if count > MAX_BLOCKS {
            return Err(WireError::Invalid("too many blocks"));
        }
        let sl = c.u8()? as usize;
        if !(MIN_STRONG..=MAX_STRONG).contains(&sl) {
            return Err(WireError::Invalid("strong hash length out of range"));
        }
        let block_bytes = 4 + sl as u64;
        let rest = buf.len() - c.pos;
        if (rest as u64) < count * block_bytes {
            return Err(WireError::Truncated);
        }
        if rest as u64 > count * block_bytes {
            return Err(WireError::Invalid("trailing bytes after the signature"));
        }
        let blocks = c.buf[c.pos..]
            .chunks_exact(4 + sl)
            .map(|b| {
                let mut strong = [0; MAX_STRONG];
                strong[..sl].copy_from_slice(&b[4..]);
                BlockSum {
                    weak: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                    strong,
                }
            })
            .collect();
        Signature::from_parts(block_len as u32, file_len, sl, blocks)
            .map_err(|_| WireError::Invalid("inconsistent signature"))
    }
}

impl Op<'_> {
    /// Appends the byte form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Op::Copy { start, count } => {
                out.push(OP_COPY);
                put_varint(out, start as u64);
                put_varint(out, count as u64);
            }
            Op::Literal(data) => {
                out.push(OP_LITERAL);
                put_varint(out, data.len() as u64);
                out.extend_from_slice(data);
            }
            Op::End { len, hash } => {
                out.push(OP_END);
                put_varint(out, len);
                out.extend_from_slice(&hash);
            }
        }
    }

    /// Decodes one op at the start of `buf`; returns it and its length.
    /// [`WireError::Truncated`] when `buf` ends inside it.
    pub fn decode(buf: &[u8]) -> Result<(Op<'_>, usize), WireError> {
        let mut c = Cursor { buf, pos: 0 };
        let op = match c.u8()? {
            OP_COPY => {
                let start = c.varint()?;
                let count = c.varint()?;
                if count == 0 || start.saturating_add(count) > MAX_BLOCKS {
                    return Err(WireError::Invalid("copy out of range"));
                }
                Op::Copy {
                    start: start as u32,
                    count: count as u32,
                }
            }
            OP_LITERAL => {
                let len = c.varint()?;
                if len == 0 || len > MAX_LITERAL as u64 {
                    return Err(WireError::Invalid("literal length out of range"));
                }
                Op::Literal(c.bytes(len as usize)?)
            }
            OP_END => {
                let len = c.varint()?;
                let mut hash = [0; 32];
                hash.copy_from_slice(c.bytes(32)?);
                Op::End { len, hash }
            }
            _ => return Err(WireError::Invalid("unknown op")),
        };
        Ok((op, c.pos))
    }
}

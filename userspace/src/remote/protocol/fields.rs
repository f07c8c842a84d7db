//! The byte encoding of message fields: little-endian integers, byte
//! strings with a `u32` length, and a strict decoder ([`Dec`]) that checks
//! every length against what is left of the frame (never allocates more
//! than the frame holds) and every name against the one-component rule.

use std::ffi::CString;

use crate::stat::{Kind, Meta};
use crate::sync::{Attrs, Over};

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The payload ended before a field.
    #[error("truncated message")]
    Truncated,
    /// Bytes left after the last field.
    #[error("trailing bytes after a message")]
    Trailing,
    /// An unknown message type.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// A name that is not one path component.
    #[error("bad name in a message: {0}")]
    BadName(&'static str),
    /// A field with a value out of its range.
    #[error("bad value in a message: {0}")]
    BadValue(&'static str),
}

/// An encoder.
#[derive(Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
        self
    }
    /// A relative path as its components (count, then each name).
    pub fn path(&mut self, p: &[CString]) -> &mut Self {
        self.u32(p.len() as u32);
        for c in p {
            self.bytes(c.as_bytes());
        }
        self
    }
    pub fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(b) => self.u8(1).bytes(b),
            None => self.u8(0),
        }
    }
    pub fn meta(&mut self, m: &Meta) -> &mut Self {
        let (k, fmt) = match m.kind {
            Kind::File => (0, 0),
            Kind::Dir => (1, 0),
            Kind::Symlink => (2, 0),
            Kind::Special(f) => (3, f),
        };
        self.u8(k).u32(fmt).u32(m.perm).u64(m.size).i64(m.mtime);
        self.u32(m.mtime_nsec).u64(m.ino).u32(m.dev.0).u32(m.dev.1)
    }
    pub fn attrs(&mut self, a: &Attrs) -> &mut Self {
        let flags = u8::from(a.perm.is_some()) | (u8::from(a.mtime.is_some()) << 1);
        let (s, ns) = a.mtime.unwrap_or((0, 0));
        self.u8(flags).u32(a.perm.unwrap_or(0)).i64(s).u32(ns)
    }
    pub fn over(&mut self, o: Over) -> &mut Self {
        self.u8(u8::from(o == Over::Tree))
    }
}

/// A strict decoder over one payload.
pub struct Dec<'a> {
    b: &'a [u8],
}

impl<'a> Dec<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Dec { b }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.b.len() {
            return Err(ProtoError::Truncated);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.take(1)?[0])
    }
    pub fn bool(&mut self) -> Result<bool, ProtoError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ProtoError::BadValue("boolean")),
        }
    }
    pub fn u32(&mut self) -> Result<u32, ProtoError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    pub fn i32(&mut self) -> Result<i32, ProtoError> {
        Ok(i32::from_le_bytes(self.arr()?))
    }
    pub fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    pub fn i64(&mut self) -> Result<i64, ProtoError> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    /// A byte string; its length is checked against what is left first.
    pub fn bytes(&mut self) -> Result<Vec<u8>, ProtoError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    pub fn opt_bytes(&mut self) -> Result<Option<Vec<u8>>, ProtoError> {
        Ok(if self.bool()? {
            Some(self.bytes()?)
        } else {
            None
        })
    }
    /// One path component: not empty, not `.` or `..`, no `/`, no NUL,
    /// at most 255 bytes.
    pub fn name(&mut self) -> Result<CString, ProtoError> {
        check_name(self.bytes()?)
    }
    pub fn opt_name(&mut self) -> Result<Option<CString>, ProtoError> {
        Ok(if self.bool()? {
            Some(self.name()?)
        } else {
            None
        })
    }
    /// A relative path as [`Enc::path`] writes it: each component a
    /// [`Dec::name`] (so no `..`, no `/`); the count is bounded by the
    /// frame.
    pub fn path(&mut self) -> Result<Vec<CString>, ProtoError> {
        let n = self.count(5)?;
        (0..n).map(|_| self.name()).collect()
    }
    /// A count of items that each take at least `min` bytes (so a
    /// hostile count cannot reserve more than the frame holds).
    pub fn count(&mut self, min: usize) -> Result<usize, ProtoError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.b.len() {
            return Err(ProtoError::Truncated);
        }
        Ok(n)
    }
    pub fn meta(&mut self) -> Result<Meta, ProtoError> {
        let k = self.u8()?;
        let fmt = self.u32()?;
        let kind = match k {
            0 if fmt == 0 => Kind::File,
            1 if fmt == 0 => Kind::Dir,
            2 if fmt == 0 => Kind::Symlink,
            3 if matches!(
                fmt,
                libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK
            ) =>
            {
                Kind::Special(fmt)
            }
            _ => return Err(ProtoError::BadValue("file type")),
        };
        let perm = self.u32()?;
        if perm > 0o7777 {
            return Err(ProtoError::BadValue("permission bits"));
        }
        Ok(Meta {
            kind,
            perm,
            size: self.u64()?,
            mtime: self.i64()?,
            mtime_nsec: self.nsec()?,
            ino: self.u64()?,
            dev: (self.u32()?, self.u32()?),
            // Not on the wire yet: only -H -o -g need them, refused remotely.
            ids: Default::default(),
        })
    }
    fn nsec(&mut self) -> Result<u32, ProtoError> {
        let n = self.u32()?;
        if n >= 1_000_000_000 {
            return Err(ProtoError::BadValue("nanoseconds"));
        }
        Ok(n)
    }
    pub fn attrs(&mut self) -> Result<Attrs, ProtoError> {
        let flags = self.u8()?;
        if flags > 3 {
            return Err(ProtoError::BadValue("attribute flags"));
        }
        let perm = self.u32()?;
        let (s, ns) = (self.i64()?, self.nsec()?);
        if perm > 0o7777 {
            return Err(ProtoError::BadValue("permission bits"));
        }
        // One encoding per value: an absent field is all zeros.
        if (flags & 1 == 0 && perm != 0) || (flags & 2 == 0 && (s, ns) != (0, 0)) {
            return Err(ProtoError::BadValue("attribute left out but not zero"));
        }
        Ok(Attrs {
            perm: (flags & 1 != 0).then_some(perm),
            mtime: (flags & 2 != 0).then_some((s, ns)),
        })
    }
    pub fn over(&mut self) -> Result<Over, ProtoError> {
        Ok(if self.bool()? {
            Over::Tree
        } else {
            Over::Entry
        })
    }
    /// Checks that every byte was used.
    pub fn end(&self) -> Result<(), ProtoError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::Trailing)
        }
    }
}

/// Validates one path component received from the peer.
pub fn check_name(b: Vec<u8>) -> Result<CString, ProtoError> {
    if b.is_empty() {
        return Err(ProtoError::BadName("empty"));
    }
    if b == b"." || b == b".." {
        return Err(ProtoError::BadName("'.' or '..'"));
    }
    if b.contains(&b'/') {
        return Err(ProtoError::BadName("contains '/'"));
    }
    if b.len() > 255 {
        return Err(ProtoError::BadName("longer than 255 bytes"));
    }
    CString::new(b).map_err(|_| ProtoError::BadName("contains a NUL byte"))
}

//! The agent's change stream (protocol only, for a future `watch
//! --two-way A host:B`): the engine asks an agent to watch its tree
//! ([`Msg::WatchChanges`]) and the agent answers, for as long as the link
//! lasts, with batches of the relative paths that changed
//! ([`Msg::Changes`]). Types 81 and 82 (of `protocol::watch`'s 80-89).
//!
//! Bounded on both ends: a batch holds at most [`MAX_CHANGE_PATHS`]
//! paths and [`MAX_CHANGE_BYTES`] of encoded paths ([`ChangeBatch`]
//! keeps to both and deduplicates); what does not fit is not queued but
//! marked: `overflow` says that changes were dropped and the engine must
//! rescan the whole tree (as an inotify queue overflow does). Each path
//! is decoded as components that are each one checked name (no `/`, no
//! `..`, no NUL, not empty), so nothing in a batch can name a place
//! outside the tree; the count is checked against the frame before
//! anything is reserved.

use std::collections::HashSet;
use std::ffi::CString;

use super::fields::{Dec, Enc, ProtoError};
use super::messages::Msg;

/// The type byte of [`Msg::WatchChanges`].
pub const WATCH_CHANGES: u8 = 81;
/// The type byte of [`Msg::Changes`].
pub const CHANGES: u8 = 82;
/// The most paths one batch carries.
pub const MAX_CHANGE_PATHS: usize = 4096;
/// The most bytes the encoded paths of one batch take (well within a
/// frame).
pub const MAX_CHANGE_BYTES: usize = 512 << 10;

/// What a path costs encoded: its count and each name with its length.
fn encoded_len(p: &[CString]) -> usize {
    4 + p.iter().map(|c| 4 + c.as_bytes().len()).sum::<usize>()
}

/// Encodes messages 81 and 82; `None`: not one of them.
pub fn encode(m: &Msg, e: &mut Enc) -> Option<u8> {
    Some(match m {
        Msg::WatchChanges { req } => {
            e.u32(*req);
            WATCH_CHANGES
        }
        Msg::Changes {
            req,
            paths,
            overflow,
        } => {
            e.u32(*req).bool(*overflow).u32(paths.len() as u32);
            for p in paths {
                e.path(p);
            }
            CHANGES
        }
        _ => return None,
    })
}

/// Decodes messages 81 and 82, within the bounds of the module docs.
pub fn decode(kind: u8, d: &mut Dec<'_>) -> Result<Msg, ProtoError> {
    match kind {
        WATCH_CHANGES => Ok(Msg::WatchChanges { req: d.u32()? }),
        CHANGES => {
            let (req, overflow) = (d.u32()?, d.bool()?);
            let n = d.count(4)?;
            if n > MAX_CHANGE_PATHS {
                return Err(ProtoError::BadValue("a batch of too many changes"));
            }
            let mut paths = Vec::with_capacity(n);
            let mut bytes = 0usize;
            for _ in 0..n {
                let p = d.path()?;
                bytes += encoded_len(&p);
                if p.is_empty() || bytes > MAX_CHANGE_BYTES {
                    return Err(ProtoError::BadValue("a change batch path"));
                }
                paths.push(p);
            }
            Ok(Msg::Changes {
                req,
                paths,
                overflow,
            })
        }
        k => Err(ProtoError::UnknownType(k)),
    }
}

/// The changes gathered for the next batch (the sending side): distinct
/// paths within the bounds, and whether any had to be dropped.
#[derive(Debug, Default)]
pub struct ChangeBatch {
    paths: Vec<Vec<CString>>,
    seen: HashSet<Vec<CString>>,
    bytes: usize,
    overflow: bool,
}

impl ChangeBatch {
    /// Adds the relative path `p` (its components); once full, it is
    /// dropped and the batch says so (`overflow`). An empty path (the
    /// root itself) is kept as an overflow too: everything is rescanned.
    pub fn push(&mut self, p: Vec<CString>) {
        if self.overflow || self.seen.contains(&p) {
            return;
        }
        let cost = encoded_len(&p);
        if p.is_empty()
            || self.paths.len() >= MAX_CHANGE_PATHS
            || self.bytes + cost > MAX_CHANGE_BYTES
        {
            // Past the bounds only "everything" is exact: the paths
            // kept so far are no longer needed either.
            self.overflow = true;
            self.paths.clear();
            self.seen.clear();
            self.bytes = 0;
            return;
        }
        self.bytes += cost;
        self.seen.insert(p.clone());
        self.paths.push(p);
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && !self.overflow
    }

    /// The batch as the reply to request `req`; the builder starts over.
    pub fn take(&mut self, req: u32) -> Msg {
        let b = std::mem::take(self);
        Msg::Changes {
            req,
            paths: b.paths,
            overflow: b.overflow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::protocol::frame::MAX_FRAME;

    fn path(s: &str) -> Vec<CString> {
        s.split('/').map(|c| CString::new(c).unwrap()).collect()
    }

    #[test]
    fn requests_and_batches_round_trip() {
        for m in [
            Msg::WatchChanges { req: 7 },
            Msg::Changes {
                req: 7,
                paths: vec![path("a"), path("d/e/f")],
                overflow: false,
            },
            Msg::Changes {
                req: 9,
                paths: Vec::new(),
                overflow: true,
            },
        ] {
            let (k, p) = m.encode();
            assert_eq!(Msg::decode(k, &p).unwrap(), m);
        }
    }

    #[test]
    fn a_full_batch_fits_a_frame_and_one_more_path_is_an_overflow() {
        let mut b = ChangeBatch::default();
        for i in 0..MAX_CHANGE_PATHS {
            b.push(path(&format!("dir/{i:0100}")));
            b.push(path(&format!("dir/{i:0100}"))); // a duplicate is free
        }
        let (k, p) = b.take(1).encode();
        assert!(p.len() < MAX_FRAME as usize);
        let Msg::Changes {
            paths, overflow, ..
        } = Msg::decode(k, &p).unwrap()
        else {
            panic!("not a batch")
        };
        assert_eq!((paths.len(), overflow), (MAX_CHANGE_PATHS, false));
        // One more path than the bound: nothing but the marker.
        for i in 0..=MAX_CHANGE_PATHS {
            b.push(path(&format!("{i}")));
        }
        let marker = Msg::Changes {
            req: 2,
            paths: Vec::new(),
            overflow: true,
        };
        assert_eq!(b.take(2), marker);
        assert!(b.is_empty());
        // More bytes than the bound (long names, fewer paths): the same.
        for i in 0..MAX_CHANGE_PATHS / 2 {
            b.push(path(&format!("{i:0250}/{i:0250}")));
        }
        assert_eq!(b.take(2), marker);
        // The root itself: everything.
        b.push(Vec::new());
        assert_eq!(b.take(2), marker);
    }

    /// A batch as a hostile agent could write it: `n` paths, each of the
    /// raw components `comps`.
    fn raw(n: u32, comps: &[&[u8]]) -> Vec<u8> {
        let mut e = Enc::default();
        e.u32(1).bool(false).u32(n);
        for _ in 0..n {
            e.u32(comps.len() as u32);
            for c in comps {
                e.bytes(c);
            }
        }
        e.0
    }

    #[test]
    fn hostile_batches_are_refused() {
        // Too many paths, though each is small.
        let p = raw(MAX_CHANGE_PATHS as u32 + 1, &[b"a"]);
        assert!(Msg::decode(CHANGES, &p).is_err());
        // A count the frame cannot hold: refused before any allocation.
        let mut e = Enc::default();
        e.u32(1).bool(false).u32(u32::MAX);
        assert!(Msg::decode(CHANGES, &e.0).is_err());
        // Paths that leave the tree, or name nothing.
        for comps in [&[&b".."[..]][..], &[b"a/b"], &[b"/etc"], &[b""], &[]] {
            assert!(Msg::decode(CHANGES, &raw(1, comps)).is_err(), "{comps:?}");
        }
        // More than the byte bound in a frame's worth of long names.
        let long = vec![b'n'; 255];
        let comps: Vec<&[u8]> = vec![&long[..]; 16];
        let n = (MAX_CHANGE_BYTES / (16 * 259)) as u32 + 1;
        assert!(Msg::decode(CHANGES, &raw(n, &comps)).is_err());
        // Within the bounds: taken.
        assert!(Msg::decode(CHANGES, &raw(3, &[b"a", b"b"])).is_ok());
    }
}

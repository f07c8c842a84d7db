//! The messages of a two-way run with a remote side (`dirsync --two-way A
//! host:B`, feature bit [`FEATURE_TWOWAY`], types 70-79, reply tags
//! 10-14). The engine (and its archive) stays on the client; the agent
//! keeps no state between requests beyond the one file stream in flight.
//! They travel as `Msg::TwoWay` (type byte and fields, checked when the
//! frame is decoded), read and written by [`parse`] and [`to_msg`].
//!
//! One request at a time, each answered before the next is sent:
//! * after its `Ready`, the agent sends [`TwMsg::Root`] (its root's
//!   device and inode);
//! * [`TwMsg::Scan`]: the agent scans its tree and answers with batches of
//!   [`TwMsg::Entries`] and [`TwMsg::Skipped`], then [`TwMsg::Root`];
//! * [`TwMsg::Read`]: the content of a file as scanned: [`TwMsg::Chunk`]s
//!   of at most [`CHUNK`] bytes, never more than the scanned size in
//!   all, then [`TwMsg::End`] (whether the file was still as scanned);
//! * [`TwMsg::Put`]: an entry to install (a file's content follows as
//!   chunks and an end), only if the target is still what the engine
//!   scanned there (`expect`), else under a conflict name;
//! * [`TwMsg::Op`]: the other changes, each with the state the engine
//!   scanned, re-checked by the agent just before it acts.
//!
//! Every path is relative, each component checked to be one name
//! (`Dec::path`): no `..`, no `/`, no NUL.

use super::fields::{Dec, Enc, ProtoError};
use super::messages::Msg;
use crate::twoway::apply::Installed;
use crate::twoway::reconcile::{State, Type};

pub use super::messages::FEATURE_TWOWAY;
/// The most content bytes in one [`TwMsg::Chunk`].
pub const CHUNK: usize = 256 << 10;
/// The longest path or symlink target accepted.
pub const PATH_MAX: usize = 4096;
/// The most entries (and skipped or leftover paths) a scan may list.
pub const MAX_SCAN_ENTRIES: usize = 2 << 20;
/// The most bytes a scan may take in the engine's memory (each entry
/// counted as its path, its target and [`ENTRY_COST`]).
pub const MAX_SCAN_BYTES: usize = 384 << 20;
/// What an entry costs beyond its path and target (its state, the map's
/// node).
pub const ENTRY_COST: usize = 128;

/// A change the engine asks of the agent (each re-checked against the
/// state the engine scanned, `seen`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Remove `path` (a directory only when empty).
    Remove {
        /// The entry.
        path: Vec<u8>,
        /// As scanned.
        seen: State,
    },
    /// Give `path` the mode (and with `mtime` the mtime) of `to`.
    SetAttrs {
        /// The entry.
        path: Vec<u8>,
        /// As scanned.
        seen: State,
        /// The wanted state.
        to: State,
        /// Set the mtime too.
        mtime: bool,
    },
    /// Rename `from` to `to`, replacing nothing.
    Rename {
        /// The entry.
        from: Vec<u8>,
        /// Its new path.
        to: Vec<u8>,
        /// As scanned.
        seen: State,
    },
    /// Remove a temporary of an interrupted run.
    RemoveLeftover {
        /// The temporary.
        path: Vec<u8>,
    },
    /// The state of `path` now.
    Stat {
        /// The entry.
        path: Vec<u8>,
    },
}

/// An answer of the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwReply {
    /// Done (true) or left alone because it changed (false). Tag 10.
    Bool(bool),
    /// A state (`None`: absent). Tag 11.
    State(Option<State>),
    /// How a [`TwMsg::Put`] ended. Tag 12.
    Installed(Installed),
    /// The request failed with this errno. Tag 13.
    Errno(i32),
    /// Refused by the agent's rules (text for the user). Tag 14.
    Refused(Vec<u8>),
}

/// The two-way messages (one `Msg::TwoWay` each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwMsg {
    /// Scan the tree (70).
    Scan,
    /// Entries of the scan (71).
    Entries(Vec<(Vec<u8>, State)>),
    /// The root's device and inode (72): after `Ready`, and as the end
    /// of a scan.
    Root {
        /// The root's device (major, minor).
        dev: (u32, u32),
        /// The root's inode.
        ino: u64,
    },
    /// Paths of the scan to leave alone, temporaries of an interrupted
    /// run (78).
    Skipped {
        /// Unreadable, undescribable or special entries.
        skipped: Vec<Vec<u8>>,
        /// Temporaries left by an interrupted run.
        leftovers: Vec<Vec<u8>>,
    },
    /// A change (73).
    Op(Op),
    /// Send the content of `path`, as scanned (`seen`) (74).
    Read {
        /// The file.
        path: Vec<u8>,
        /// As scanned.
        seen: State,
    },
    /// Content bytes (75).
    Chunk(Vec<u8>),
    /// The end of a content stream (76): `ok`: complete and the source
    /// unchanged while read.
    End {
        /// Complete and unchanged.
        ok: bool,
    },
    /// Install `src` at `path` if it is still `expect` there (77); a
    /// file's content follows.
    Put {
        /// Where.
        path: Vec<u8>,
        /// What (type, size, mtime, mode, target).
        src: State,
        /// What the engine scanned at `path`.
        expect: Option<State>,
        /// The time stamp of conflict names.
        stamp: Vec<u8>,
        /// The label of conflict names (the source side).
        label: Vec<u8>,
    },
    /// An answer (79).
    Reply(TwReply),
}

/// A relative path as components.
fn enc_rel(e: &mut Enc, p: &[u8]) {
    let parts: Vec<std::ffi::CString> = p
        .split(|&c| c == b'/')
        .map(|c| std::ffi::CString::new(c).unwrap_or_default())
        .collect();
    e.path(&parts);
}

/// A relative path of at least one component, at most [`PATH_MAX`] bytes.
fn dec_rel(d: &mut Dec<'_>) -> Result<Vec<u8>, ProtoError> {
    let parts = d.path()?;
    if parts.is_empty() {
        return Err(ProtoError::BadName("empty path"));
    }
    let p = parts
        .iter()
        .map(|c| c.as_bytes())
        .collect::<Vec<_>>()
        .join(&b'/');
    if p.len() > PATH_MAX {
        return Err(ProtoError::BadName("path longer than PATH_MAX"));
    }
    Ok(p)
}

fn enc_state(e: &mut Enc, s: &State) {
    let k = match s.kind {
        Type::File => 0,
        Type::Dir => 1,
        Type::Symlink => 2,
    };
    e.u8(k).u64(s.size).i64(s.mtime).u32(s.perm).u64(s.ino);
    e.bytes(&s.target);
}

fn dec_state(d: &mut Dec<'_>) -> Result<State, ProtoError> {
    let kind = match d.u8()? {
        0 => Type::File,
        1 => Type::Dir,
        2 => Type::Symlink,
        _ => return Err(ProtoError::BadValue("entry type")),
    };
    let (size, mtime, perm, ino) = (d.u64()?, d.i64()?, d.u32()?, d.u64()?);
    let target = d.bytes()?;
    if perm & !0o7777 != 0 {
        return Err(ProtoError::BadValue("permission bits"));
    }
    if target.len() > PATH_MAX || target.contains(&0) {
        return Err(ProtoError::BadValue("symlink target"));
    }
    if (kind == Type::Symlink) == target.is_empty() {
        return Err(ProtoError::BadValue("symlink target"));
    }
    if kind != Type::File && size != 0 {
        return Err(ProtoError::BadValue("size of a non-file"));
    }
    Ok(State {
        kind,
        size,
        mtime,
        perm,
        ino,
        target,
        attrs: 0,
        ctime: 0,
    })
}

fn enc_opt_state(e: &mut Enc, s: Option<&State>) {
    match s {
        Some(s) => {
            e.u8(1);
            enc_state(e, s);
        }
        None => {
            e.u8(0);
        }
    }
}

fn dec_opt_state(d: &mut Dec<'_>) -> Result<Option<State>, ProtoError> {
    Ok(if d.bool()? { Some(dec_state(d)?) } else { None })
}

fn enc_paths(e: &mut Enc, ps: &[Vec<u8>]) {
    e.u32(ps.len() as u32);
    for p in ps {
        enc_rel(e, p);
    }
}

fn dec_paths(d: &mut Dec<'_>) -> Result<Vec<Vec<u8>>, ProtoError> {
    let n = d.count(4)?;
    (0..n).map(|_| dec_rel(d)).collect()
}

/// `m` as a frame's message.
pub fn to_msg(m: &TwMsg) -> Msg {
    let mut e = Enc::default();
    let kind = encode(m, &mut e);
    Msg::TwoWay { kind, payload: e.0 }
}

/// The two-way message a frame's `Msg::TwoWay` carries (`None`: another
/// message).
pub fn of_msg(m: &Msg) -> Option<Result<TwMsg, ProtoError>> {
    match m {
        Msg::TwoWay { kind, payload } => Some(parse(*kind, payload)),
        _ => None,
    }
}

/// Decodes the fields of a message of type 70-79.
pub fn parse(kind: u8, payload: &[u8]) -> Result<TwMsg, ProtoError> {
    let mut d = Dec::new(payload);
    let m = decode(kind, &mut d)?;
    d.end()?;
    Ok(m)
}

fn encode(m: &TwMsg, e: &mut Enc) -> u8 {
    match m {
        TwMsg::Scan => 70,
        TwMsg::Entries(es) => {
            e.u32(es.len() as u32);
            for (p, s) in es {
                enc_rel(e, p);
                enc_state(e, s);
            }
            71
        }
        TwMsg::Root { dev, ino } => {
            e.u32(dev.0).u32(dev.1).u64(*ino);
            72
        }
        TwMsg::Skipped { skipped, leftovers } => {
            enc_paths(e, skipped);
            enc_paths(e, leftovers);
            78
        }
        TwMsg::Op(op) => {
            match op {
                Op::Remove { path, seen } => {
                    e.u8(0);
                    enc_rel(e, path);
                    enc_state(e, seen);
                }
                Op::SetAttrs {
                    path,
                    seen,
                    to,
                    mtime,
                } => {
                    e.u8(1);
                    enc_rel(e, path);
                    enc_state(e, seen);
                    enc_state(e, to);
                    e.bool(*mtime);
                }
                Op::Rename { from, to, seen } => {
                    e.u8(2);
                    enc_rel(e, from);
                    enc_rel(e, to);
                    enc_state(e, seen);
                }
                Op::RemoveLeftover { path } => {
                    e.u8(3);
                    enc_rel(e, path);
                }
                Op::Stat { path } => {
                    e.u8(4);
                    enc_rel(e, path);
                }
            }
            73
        }
        TwMsg::Read { path, seen } => {
            enc_rel(e, path);
            enc_state(e, seen);
            74
        }
        TwMsg::Chunk(b) => {
            e.bytes(b);
            75
        }
        TwMsg::End { ok } => {
            e.bool(*ok);
            76
        }
        TwMsg::Put {
            path,
            src,
            expect,
            stamp,
            label,
        } => {
            enc_rel(e, path);
            enc_state(e, src);
            enc_opt_state(e, expect.as_ref());
            e.bytes(stamp).bytes(label);
            77
        }
        TwMsg::Reply(r) => {
            match r {
                TwReply::Bool(b) => e.u8(10).bool(*b),
                TwReply::State(s) => {
                    e.u8(11);
                    enc_opt_state(e, s.as_ref());
                    e
                }
                TwReply::Installed(i) => match i {
                    Installed::Done(ino) => e.u8(12).u8(0).u64(*ino),
                    Installed::SourceChanged => e.u8(12).u8(1),
                    Installed::TargetChanged(n) => e.u8(12).u8(2).bytes(n),
                },
                TwReply::Errno(n) => e.u8(13).i32(*n),
                TwReply::Refused(t) => e.u8(14).bytes(t),
            };
            79
        }
    }
}

/// A label or stamp of a conflict name: one name's worth of bytes, no
/// `/` or NUL.
fn short_text(d: &mut Dec<'_>) -> Result<Vec<u8>, ProtoError> {
    let t = d.bytes()?;
    if t.len() > 64 || t.contains(&b'/') || t.contains(&0) {
        return Err(ProtoError::BadValue("conflict label"));
    }
    Ok(t)
}

fn decode(kind: u8, d: &mut Dec<'_>) -> Result<TwMsg, ProtoError> {
    let m = match kind {
        70 => TwMsg::Scan,
        71 => {
            let n = d.count(8)?;
            let mut es = Vec::with_capacity(n);
            for _ in 0..n {
                es.push((dec_rel(d)?, dec_state(d)?));
            }
            TwMsg::Entries(es)
        }
        72 => TwMsg::Root {
            dev: (d.u32()?, d.u32()?),
            ino: d.u64()?,
        },
        78 => TwMsg::Skipped {
            skipped: dec_paths(d)?,
            leftovers: dec_paths(d)?,
        },
        73 => TwMsg::Op(match d.u8()? {
            0 => Op::Remove {
                path: dec_rel(d)?,
                seen: dec_state(d)?,
            },
            1 => Op::SetAttrs {
                path: dec_rel(d)?,
                seen: dec_state(d)?,
                to: dec_state(d)?,
                mtime: d.bool()?,
            },
            2 => Op::Rename {
                from: dec_rel(d)?,
                to: dec_rel(d)?,
                seen: dec_state(d)?,
            },
            3 => Op::RemoveLeftover { path: dec_rel(d)? },
            4 => Op::Stat { path: dec_rel(d)? },
            _ => return Err(ProtoError::BadValue("two-way operation")),
        }),
        74 => TwMsg::Read {
            path: dec_rel(d)?,
            seen: dec_state(d)?,
        },
        75 => {
            let b = d.bytes()?;
            if b.len() > CHUNK {
                return Err(ProtoError::BadValue("chunk larger than 256 KiB"));
            }
            TwMsg::Chunk(b)
        }
        76 => TwMsg::End { ok: d.bool()? },
        77 => TwMsg::Put {
            path: dec_rel(d)?,
            src: dec_state(d)?,
            expect: dec_opt_state(d)?,
            stamp: short_text(d)?,
            label: short_text(d)?,
        },
        79 => TwMsg::Reply(match d.u8()? {
            10 => TwReply::Bool(d.bool()?),
            11 => TwReply::State(dec_opt_state(d)?),
            12 => TwReply::Installed(match d.u8()? {
                0 => Installed::Done(d.u64()?),
                1 => Installed::SourceChanged,
                2 => {
                    let n = d.bytes()?;
                    super::fields::check_name(n.clone())?;
                    Installed::TargetChanged(n)
                }
                _ => return Err(ProtoError::BadValue("install result")),
            }),
            13 => TwReply::Errno(d.i32()?),
            14 => TwReply::Refused(d.bytes()?),
            _ => return Err(ProtoError::BadValue("reply tag")),
        }),
        k => return Err(ProtoError::UnknownType(k)),
    };
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(m: TwMsg) -> Result<TwMsg, ProtoError> {
        let (k, p) = to_msg(&m).encode();
        of_msg(&Msg::decode(k, &p)?).expect("a two-way message")
    }

    fn file() -> State {
        State {
            kind: Type::File,
            size: 3,
            mtime: -5,
            perm: 0o644,
            ino: 9,
            target: Vec::new(),
            attrs: 0,
            ctime: 0,
        }
    }

    #[test]
    fn messages_round_trip_and_bad_paths_are_refused() {
        let ms = [
            TwMsg::Scan,
            TwMsg::Entries(vec![(b"a/b\n".to_vec(), file())]),
            TwMsg::Skipped {
                skipped: vec![b"x".to_vec()],
                leftovers: vec![],
            },
            TwMsg::Root {
                dev: (8, 1),
                ino: 2,
            },
            TwMsg::Op(Op::Rename {
                from: b"a".to_vec(),
                to: b"b/c".to_vec(),
                seen: file(),
            }),
            TwMsg::Put {
                path: b"f".to_vec(),
                src: file(),
                expect: None,
                stamp: b"20261208-000000".to_vec(),
                label: b"a".to_vec(),
            },
            TwMsg::Reply(TwReply::Installed(Installed::TargetChanged(b"n".to_vec()))),
        ];
        for m in ms {
            assert_eq!(round(m.clone()), Ok(m));
        }
        for bad in [&b"../x"[..], b"a/../b", b"a//b", b"/etc", b""] {
            let m = TwMsg::Entries(vec![(bad.to_vec(), file())]);
            assert!(round(m).is_err(), "{bad:?}");
        }
        let mut s = file();
        s.kind = Type::Symlink;
        assert!(round(TwMsg::Entries(vec![(b"l".to_vec(), s)])).is_err());
        assert!(round(TwMsg::Chunk(vec![0; CHUNK + 1])).is_err());
    }
}

//! The encoding of what [`FEATURE_FIDELITY`] adds (`-H -A -X -o -g -S`):
//! owner, group, link count and the "has extended attributes" bit of
//! listings (message 68, the listing of message 40 with them), the
//! replies that carry attributes, links and ids, and the messages 60-67.
//! Every field is bounded and checked before use, like the others:
//! attribute names (a namespace the receiver may sync, at most
//! [`MAX_XATTR_NAME`] bytes) and values (at most [`MAX_XATTR_VALUE`]),
//! at most [`MAX_XATTRS`] attributes per entry, ACL values well formed
//! with at most [`MAX_ACL_ENTRIES`] entries, ids other than `-1`, link
//! counts of at least one, user and group names of 1 to
//! [`MAX_ID_NAME`] bytes without NUL.
//!
//! [`FEATURE_FIDELITY`]: super::messages::FEATURE_FIDELITY

use std::ffi::CString;

use super::fields::{Dec, Enc, ProtoError};
use super::messages::{Answer, Entry, Msg, Xattrs};
use crate::attrs::xattr::{ACL_ACCESS, ACL_DEFAULT};
use crate::stat::Meta;
use crate::sync::replica::Linked;

/// Longest attribute name (`XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME: usize = 255;
/// Largest attribute value (`XATTR_SIZE_MAX`).
pub const MAX_XATTR_VALUE: usize = 64 << 10;
/// Most attributes of one entry.
pub const MAX_XATTRS: usize = 1024;
/// Most entries of one POSIX ACL.
pub const MAX_ACL_ENTRIES: usize = 1024;
/// Longest user or group name.
pub const MAX_ID_NAME: usize = 256;

/// Whether a listing part needs message 68 (something only it carries).
pub fn needs_full(entries: &[Entry]) -> bool {
    entries
        .iter()
        .any(|e| e.xattrs || matches!(&e.meta, Ok(Some(m)) if m.ids.nlink > 0))
}

/// Metadata with owner, group and link count.
fn enc_meta_ids(e: &mut Enc, m: &Meta) {
    e.meta(m).u32(m.ids.uid).u32(m.ids.gid).u32(m.ids.nlink);
}

/// An id of a message: anything but `-1` (which `chown` reads as "leave
/// it").
fn id(d: &mut Dec<'_>) -> Result<u32, ProtoError> {
    match d.u32()? {
        u32::MAX => Err(ProtoError::BadValue("owner or group id -1")),
        v => Ok(v),
    }
}

fn dec_meta_ids(d: &mut Dec<'_>) -> Result<Meta, ProtoError> {
    let mut m = d.meta()?;
    m.ids.uid = id(d)?;
    m.ids.gid = id(d)?;
    m.ids.nlink = d.u32()?;
    if m.ids.nlink == 0 {
        return Err(ProtoError::BadValue("link count 0"));
    }
    Ok(m)
}

/// Message 68: a listing part with ids and attribute bits.
pub fn enc_entries(e: &mut Enc, req: u32, entries: &[Entry]) -> u8 {
    e.u32(req).u32(entries.len() as u32);
    for x in entries {
        e.bytes(x.name.as_bytes()).u8(x.d_type);
        match &x.meta {
            Ok(Some(m)) if m.ids.nlink > 0 => e.u8(3),
            Ok(Some(m)) => e.u8(1).meta(m),
            Ok(None) => e.u8(0),
            Err(errno) => e.u8(2).i32(*errno),
        };
        if let Ok(Some(m)) = &x.meta {
            if m.ids.nlink > 0 {
                enc_meta_ids(e, m);
            }
        }
        e.opt_bytes(x.link.as_deref()).u32(x.rdev.0).u32(x.rdev.1);
        e.bool(x.xattrs);
    }
    68
}

fn dec_entries(d: &mut Dec<'_>) -> Result<Msg, ProtoError> {
    let req = d.u32()?;
    let n = d.count(17)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let name = d.name()?;
        let d_type = d.u8()?;
        let meta = match d.u8()? {
            0 => Ok(None),
            1 => Ok(Some(d.meta()?)),
            2 => Err(d.i32()?),
            3 => Ok(Some(dec_meta_ids(d)?)),
            _ => return Err(ProtoError::BadValue("stat result")),
        };
        entries.push(Entry {
            name,
            d_type,
            meta,
            link: d.opt_bytes()?,
            rdev: (d.u32()?, d.u32()?),
            xattrs: d.bool()?,
        });
    }
    // One encoding per value: a part message 40 can carry is sent as 40.
    if !needs_full(&entries) {
        return Err(ProtoError::BadValue(
            "listing part without ids or attributes",
        ));
    }
    Ok(Msg::Entries { req, entries })
}

/// The reply tags of what this feature adds; `None`: not one of them.
pub fn enc_answer(e: &mut Enc, a: &Answer) -> Option<()> {
    match a {
        Answer::Meta(Some(m)) if m.ids.nlink > 0 => {
            e.u8(6);
            enc_meta_ids(e, m);
        }
        Answer::Xattrs(x) => {
            e.u8(7);
            enc_xattrs(e, x);
        }
        Answer::Linked(l) => {
            let (k, n) = match l {
                Linked::Already => (0, 0),
                Linked::Made { deleted } => (1, *deleted),
                Linked::NoTarget => (2, 0),
            };
            e.u8(8).u8(k).u64(n);
        }
        Answer::Id(v) => {
            e.u8(9).u32(*v);
        }
        _ => return None,
    }
    Some(())
}

/// Decodes a reply of tag 6 to 9.
pub fn dec_answer(tag: u8, d: &mut Dec<'_>) -> Result<Answer, ProtoError> {
    Ok(match tag {
        6 => Answer::Meta(Some(dec_meta_ids(d)?)),
        7 => Answer::Xattrs(dec_xattrs(d)?),
        8 => {
            let (k, n) = (d.u8()?, d.u64()?);
            match (k, n) {
                (0, 0) => Answer::Linked(Linked::Already),
                (1, n) => Answer::Linked(Linked::Made { deleted: n }),
                (2, 0) => Answer::Linked(Linked::NoTarget),
                _ => return Err(ProtoError::BadValue("link result")),
            }
        }
        9 => Answer::Id(id(d)?),
        _ => return Err(ProtoError::BadValue("reply")),
    })
}

fn enc_xattrs(e: &mut Enc, x: &Xattrs) {
    e.u32(x.len() as u32);
    for (n, v) in x {
        e.bytes(n.as_bytes()).bytes(v);
    }
}

/// An attribute name: 1 to [`MAX_XATTR_NAME`] bytes, no NUL, in a
/// namespace dirsync syncs (`user.`, `trusted.`, `security.`, the two
/// ACL names).
pub fn check_xattr_name(b: Vec<u8>) -> Result<CString, ProtoError> {
    if b.len() > MAX_XATTR_NAME {
        return Err(ProtoError::BadValue("extended attribute name too long"));
    }
    let ok = [&b"user."[..], b"trusted.", b"security."]
        .iter()
        .any(|p| b.len() > p.len() && b.starts_with(p))
        || b == ACL_ACCESS
        || b == ACL_DEFAULT;
    if !ok {
        return Err(ProtoError::BadValue("extended attribute namespace"));
    }
    CString::new(b).map_err(|_| ProtoError::BadValue("extended attribute name with NUL"))
}

/// A POSIX ACL value (`posix_acl_xattr_header` + entries): version 2,
/// whole entries, at most [`MAX_ACL_ENTRIES`], known tags and
/// permissions.
pub fn check_acl(v: &[u8]) -> Result<(), ProtoError> {
    let bad = || ProtoError::BadValue("ACL value");
    if v.len() < 4 || (v.len() - 4) % 8 != 0 || v[..4] != 2u32.to_le_bytes() {
        return Err(bad());
    }
    let n = (v.len() - 4) / 8;
    if n > MAX_ACL_ENTRIES {
        return Err(ProtoError::BadValue("ACL with too many entries"));
    }
    for e in v[4..].chunks_exact(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let perm = u16::from_le_bytes([e[2], e[3]]);
        if !matches!(tag, 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20) || perm > 7 {
            return Err(bad());
        }
    }
    Ok(())
}

fn dec_xattr(d: &mut Dec<'_>) -> Result<(CString, Vec<u8>), ProtoError> {
    let name = check_xattr_name(d.bytes()?)?;
    let value = d.bytes()?;
    if value.len() > MAX_XATTR_VALUE {
        return Err(ProtoError::BadValue("extended attribute value too large"));
    }
    if name.as_bytes() == ACL_ACCESS || name.as_bytes() == ACL_DEFAULT {
        check_acl(&value)?;
    }
    Ok((name, value))
}

fn dec_xattrs(d: &mut Dec<'_>) -> Result<Xattrs, ProtoError> {
    let n = d.count(8)?;
    if n > MAX_XATTRS {
        return Err(ProtoError::BadValue("too many extended attributes"));
    }
    let x: Xattrs = (0..n).map(|_| dec_xattr(d)).collect::<Result<_, _>>()?;
    // Sorted by name, each once: one encoding per set.
    if x.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(ProtoError::BadValue("extended attributes not sorted"));
    }
    Ok(x)
}

fn opt_id(e: &mut Enc, v: Option<u32>) {
    match v {
        Some(v) => e.u8(1).u32(v),
        None => e.u8(0),
    };
}

fn dec_opt_id(d: &mut Dec<'_>) -> Result<Option<u32>, ProtoError> {
    Ok(if d.bool()? { Some(id(d)?) } else { None })
}

/// A path of at least one component, each a name.
fn dec_path(d: &mut Dec<'_>) -> Result<Vec<CString>, ProtoError> {
    let p = d.path()?;
    if p.is_empty() {
        return Err(ProtoError::BadValue("empty path"));
    }
    Ok(p)
}

/// Encodes messages 60 to 67; `None`: not one of them.
pub fn encode(m: &Msg, e: &mut Enc) -> Option<u8> {
    let opt_name = |e: &mut Enc, n: &Option<CString>| {
        e.opt_bytes(n.as_ref().map(|n| n.as_bytes()));
    };
    Some(match m {
        Msg::Chown { id, name, uid, gid } => {
            e.u32(*id);
            opt_name(e, name);
            opt_id(e, *uid);
            opt_id(e, *gid);
            60
        }
        Msg::GetXattrs { req, id, name } => {
            e.u32(*req).u32(*id);
            opt_name(e, name);
            61
        }
        Msg::SetXattrs {
            id,
            name,
            set,
            remove,
        } => {
            e.u32(*id);
            opt_name(e, name);
            enc_xattrs(e, set);
            e.u32(remove.len() as u32);
            for r in remove {
                e.bytes(r.as_bytes());
            }
            62
        }
        Msg::FileOwner { fid, uid, gid } => {
            e.u32(*fid);
            opt_id(e, *uid);
            opt_id(e, *gid);
            63
        }
        Msg::FileXattrs { fid, want } => {
            e.u32(*fid);
            enc_xattrs(e, want);
            64
        }
        Msg::Hole { fid, len } => {
            e.u32(*fid).u64(*len);
            65
        }
        Msg::HardLink { req, target, at } => {
            e.u32(*req);
            e.path(target);
            e.path(at);
            66
        }
        Msg::MapId {
            req,
            group,
            id,
            name,
        } => {
            e.u32(*req).bool(*group).u32(*id).bytes(name);
            67
        }
        _ => return None,
    })
}

/// Decodes messages 60 to 68.
pub fn decode(kind: u8, d: &mut Dec<'_>) -> Result<Msg, ProtoError> {
    Ok(match kind {
        60 => Msg::Chown {
            id: d.u32()?,
            name: d.opt_name()?,
            uid: dec_opt_id(d)?,
            gid: dec_opt_id(d)?,
        },
        61 => Msg::GetXattrs {
            req: d.u32()?,
            id: d.u32()?,
            name: d.opt_name()?,
        },
        62 => {
            let (id, name, set) = (d.u32()?, d.opt_name()?, dec_xattrs(d)?);
            let n = d.count(5)?;
            if n > MAX_XATTRS {
                return Err(ProtoError::BadValue("too many extended attributes"));
            }
            let remove = (0..n)
                .map(|_| check_xattr_name(d.bytes()?))
                .collect::<Result<_, _>>()?;
            Msg::SetXattrs {
                id,
                name,
                set,
                remove,
            }
        }
        63 => Msg::FileOwner {
            fid: d.u32()?,
            uid: dec_opt_id(d)?,
            gid: dec_opt_id(d)?,
        },
        64 => Msg::FileXattrs {
            fid: d.u32()?,
            want: dec_xattrs(d)?,
        },
        65 => Msg::Hole {
            fid: d.u32()?,
            len: d.u64()?,
        },
        66 => Msg::HardLink {
            req: d.u32()?,
            target: dec_path(d)?,
            at: dec_path(d)?,
        },
        67 => {
            let (req, group, id) = (d.u32()?, d.bool()?, id(d)?);
            let name = d.bytes()?;
            if name.is_empty() || name.len() > MAX_ID_NAME || name.contains(&0) {
                return Err(ProtoError::BadValue("user or group name"));
            }
            Msg::MapId {
                req,
                group,
                id,
                name,
            }
        }
        68 => dec_entries(d)?,
        k => return Err(ProtoError::UnknownType(k)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stat::{Ids, Kind};

    fn round_trip(m: &Msg) -> Result<Msg, ProtoError> {
        let (k, p) = m.encode();
        Msg::decode(k, &p)
    }

    fn acl(n: usize) -> Vec<u8> {
        let mut v = 2u32.to_le_bytes().to_vec();
        for _ in 0..n {
            v.extend_from_slice(&[0x01, 0, 6, 0, 0xff, 0xff, 0xff, 0xff]);
        }
        v
    }

    #[test]
    fn fidelity_messages_round_trip() {
        let meta = Meta {
            kind: Kind::File,
            perm: 0o4755,
            size: 3,
            mtime: 5,
            mtime_nsec: 6,
            ino: 7,
            dev: (8, 9),
            ids: Ids {
                uid: 1000,
                gid: 100,
                nlink: 2,
                blocks: 0,
            },
        };
        let entry = Entry {
            name: c"a".to_owned(),
            d_type: 8,
            meta: Ok(Some(meta)),
            link: None,
            rdev: (0, 0),
            xattrs: true,
        };
        let x: Xattrs = vec![
            (c"system.posix_acl_access".to_owned(), acl(3)),
            (c"user.a".to_owned(), b"v".to_vec()),
        ];
        for m in [
            Msg::Entries {
                req: 1,
                entries: vec![entry],
            },
            Msg::Reply {
                req: 2,
                result: Ok(Answer::Meta(Some(meta))),
            },
            Msg::Reply {
                req: 2,
                result: Ok(Answer::Xattrs(x.clone())),
            },
            Msg::Reply {
                req: 3,
                result: Ok(Answer::Linked(Linked::Made { deleted: 4 })),
            },
            Msg::Reply {
                req: 3,
                result: Ok(Answer::Id(12)),
            },
            Msg::Chown {
                id: 1,
                name: None,
                uid: Some(3),
                gid: None,
            },
            Msg::SetXattrs {
                id: 1,
                name: Some(c"f".to_owned()),
                set: x.clone(),
                remove: vec![c"user.b".to_owned()],
            },
            Msg::FileXattrs { fid: 1, want: x },
            Msg::Hole {
                fid: 1,
                len: 1 << 30,
            },
            Msg::HardLink {
                req: 1,
                target: vec![c"d".to_owned(), c"a".to_owned()],
                at: vec![c"b".to_owned()],
            },
            Msg::MapId {
                req: 1,
                group: true,
                id: 5,
                name: b"staff".to_vec(),
            },
        ] {
            assert_eq!(round_trip(&m).unwrap(), m);
        }
    }

    #[test]
    fn hostile_fidelity_fields_are_refused() {
        let set = |name: &[u8], value: Vec<u8>| Msg::SetXattrs {
            id: 1,
            name: None,
            set: vec![(CString::new(name).unwrap(), value)],
            remove: vec![],
        };
        let bad = |m: &Msg| round_trip(m).unwrap_err();
        bad(&set(b"user.a", vec![0; MAX_XATTR_VALUE + 1]));
        bad(&set(&[b'u'; 300], vec![]));
        bad(&set(b"system.other", vec![]));
        bad(&set(b"user.", vec![]));
        bad(&set(ACL_ACCESS, acl(MAX_ACL_ENTRIES + 1)));
        bad(&set(ACL_ACCESS, vec![1, 0, 0, 0]));
        assert!(round_trip(&set(ACL_ACCESS, acl(MAX_ACL_ENTRIES))).is_ok());
        bad(&Msg::Chown {
            id: 1,
            name: None,
            uid: Some(u32::MAX),
            gid: None,
        });
        bad(&Msg::HardLink {
            req: 1,
            target: vec![],
            at: vec![c"b".to_owned()],
        });
        bad(&Msg::MapId {
            req: 1,
            group: false,
            id: 1,
            name: vec![b'x'; MAX_ID_NAME + 1],
        });
        // A path component "..": the decoder's name rule.
        let (k, mut p) = Msg::HardLink {
            req: 1,
            target: vec![c"xy".to_owned()],
            at: vec![c"b".to_owned()],
        }
        .encode();
        let at = p.len() - 1 - 4 - 4 - 2;
        p[at..at + 2].copy_from_slice(b"..");
        assert_eq!(
            Msg::decode(k, &p).unwrap_err(),
            ProtoError::BadName("'.' or '..'")
        );
    }
}

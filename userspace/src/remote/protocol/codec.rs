//! The encoding of [`Msg`]: a type byte and the fields in order
//! ([`super::fields`]); decoding is strict (see [`super::messages`]).

use std::ffi::CString;

use super::fidelity;
use super::fields::{Dec, Enc};
use super::messages::*;

fn enc_entry(e: &mut Enc, x: &Entry) {
    e.bytes(x.name.as_bytes()).u8(x.d_type);
    match &x.meta {
        Ok(Some(m)) => e.u8(1).meta(m),
        Ok(None) => e.u8(0),
        Err(errno) => e.u8(2).i32(*errno),
    };
    e.opt_bytes(x.link.as_deref()).u32(x.rdev.0).u32(x.rdev.1);
}

fn dec_entry(d: &mut Dec<'_>) -> Result<Entry, ProtoError> {
    let name = d.name()?;
    let d_type = d.u8()?;
    let meta = match d.u8()? {
        0 => Ok(None),
        1 => Ok(Some(d.meta()?)),
        2 => Err(d.i32()?),
        _ => return Err(ProtoError::BadValue("stat result")),
    };
    Ok(Entry {
        name,
        d_type,
        meta,
        link: d.opt_bytes()?,
        rdev: (d.u32()?, d.u32()?),
        xattrs: false,
    })
}

fn opt_name(e: &mut Enc, n: &Option<CString>) {
    e.opt_bytes(n.as_ref().map(|n| n.as_bytes()));
}

impl Msg {
    /// The type byte and payload.
    pub fn encode(&self) -> (u8, Vec<u8>) {
        let mut e = Enc::default();
        let kind = self.encode_fields(&mut e);
        (kind, e.0)
    }

    fn encode_fields(&self, e: &mut Enc) -> u8 {
        match self {
            Msg::Hello(h) => {
                e.0.extend_from_slice(MAGIC);
                e.u32(h.protocol).u64(h.features).bytes(&h.version);
                1
            }
            Msg::Setup(s) => {
                e.u8(s.role as u8).bytes(&s.path).u32(s.flags).u8(s.backend);
                e.u32(s.jobs).u32(s.excludes.len() as u32);
                for x in &s.excludes {
                    e.bytes(x);
                }
                e.bytes(&s.label).bool(s.dst_exists).u64(s.bwlimit);
                e.u64(s.max_size);
                2
            }
            Msg::Ready { created, exists } => {
                e.bool(*created).bool(*exists);
                3
            }
            Msg::Refuse(t) => {
                e.bytes(t);
                4
            }
            other => self.encode_ops(other, e),
        }
    }

    fn encode_ops(&self, m: &Msg, e: &mut Enc) -> u8 {
        match m {
            Msg::Open { id, parent, name } => {
                e.u32(*id).u32(*parent);
                opt_name(e, name);
                10
            }
            Msg::Close { id } => {
                e.u32(*id);
                11
            }
            Msg::List { req, id } => {
                e.u32(*req).u32(*id);
                12
            }
            Msg::Stat { req, id, name } => {
                e.u32(*req).u32(*id);
                opt_name(e, name);
                13
            }
            Msg::CreateDir { id, name } => {
                e.u32(*id).bytes(name.as_bytes());
                14
            }
            Msg::Remove { id, name } => {
                e.u32(*id).bytes(name.as_bytes());
                15
            }
            Msg::SetAttrs { id, name, attrs } => {
                e.u32(*id);
                opt_name(e, name);
                e.attrs(attrs);
                16
            }
            Msg::Symlink {
                id,
                name,
                target,
                attrs,
                over,
            } => {
                e.u32(*id).bytes(name.as_bytes()).bytes(target);
                e.attrs(attrs).over(*over);
                17
            }
            Msg::Special {
                id,
                name,
                fmt,
                rdev,
                attrs,
                over,
            } => {
                e.u32(*id).bytes(name.as_bytes()).u32(*fmt);
                e.u32(rdev.0).u32(rdev.1).attrs(attrs).over(*over);
                18
            }
            other => self.encode_files(other, e),
        }
    }

    fn encode_files(&self, m: &Msg, e: &mut Enc) -> u8 {
        match m {
            Msg::FileBegin {
                fid,
                id,
                name,
                size,
                compare,
                fresh,
                plan,
            } => {
                e.u32(*fid).u32(*id).bytes(name.as_bytes());
                // One byte of flags: `compare` (bit 0, all earlier builds
                // knew) and `fresh` (bit 1, FEATURE_FRESH).
                let flags = u8::from(*compare) | u8::from(*fresh) << 1;
                e.u64(*size).u8(flags).u32(*plan);
                19
            }
            Msg::Delta { fid, ops } => {
                e.u32(*fid).bytes(ops);
                26
            }
            Msg::DeltaEnd { req, fid } => {
                e.u32(*req).u32(*fid);
                27
            }
            Msg::Data { fid, bytes } => {
                e.u32(*fid).bytes(bytes);
                20
            }
            Msg::Commit {
                fid,
                attrs,
                fsync,
                over,
            } => {
                e.u32(*fid).attrs(attrs).bool(*fsync).over(*over);
                21
            }
            Msg::Abort { fid } => {
                e.u32(*fid);
                22
            }
            Msg::CompareEnd { req, fid } => {
                e.u32(*req).u32(*fid);
                23
            }
            Msg::Rename { req, from, to } => {
                e.u32(*req);
                e.path(from);
                e.path(to);
                24
            }
            Msg::Barrier { req } => {
                e.u32(*req);
                25
            }
            other => self.encode_replies(other, e),
        }
    }

    fn encode_replies(&self, m: &Msg, e: &mut Enc) -> u8 {
        match m {
            Msg::Entries { req, entries } if fidelity::needs_full(entries) => {
                fidelity::enc_entries(e, *req, entries)
            }
            Msg::Entries { req, entries } => {
                e.u32(*req).u32(entries.len() as u32);
                for x in entries {
                    enc_entry(e, x);
                }
                40
            }
            Msg::Reply { req, result } => {
                e.u32(*req);
                if let Some(()) = result
                    .as_ref()
                    .ok()
                    .and_then(|a| fidelity::enc_answer(e, a))
                {
                    return 41;
                }
                match result {
                    Ok(Answer::Unit) => e.u8(0),
                    Ok(Answer::Bool(b)) => e.u8(1).bool(*b),
                    Ok(Answer::Meta(None)) => e.u8(2),
                    Ok(Answer::Meta(Some(m))) => e.u8(3).meta(m),
                    Ok(Answer::Plan(sig)) => e.u8(5).opt_bytes(sig.as_deref()),
                    Err(errno) => e.u8(4).i32(*errno),
                    Ok(_) => unreachable!("encoded by fidelity::enc_answer"),
                };
                41
            }
            Msg::Note {
                op,
                path,
                errno,
                count,
                silent,
            } => {
                e.u8(*op as u8).bytes(path).i32(*errno).u64(*count);
                e.bool(*silent);
                42
            }
            Msg::Event(w) => {
                e.u8(w.kind).bytes(&w.a).bytes(&w.b).bytes(&w.text);
                e.u64(w.count);
                43
            }
            Msg::Done { counters, fatal } => {
                e.u32(counters.len() as u32);
                for (n, c) in counters {
                    e.bytes(n).u64(*c);
                }
                e.opt_bytes(fatal.as_deref());
                44
            }
            Msg::Bye => 45,
            Msg::TwoWay { kind, payload } => {
                e.0.extend_from_slice(payload);
                *kind
            }
            other => fidelity::encode(other, e)
                .or_else(|| super::watch::encode(other, e))
                .expect("every message kind is encoded"),
        }
    }

    /// Decodes a frame's type byte and payload.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Msg, ProtoError> {
        let mut d = Dec::new(payload);
        let m = match kind {
            1..=4 => decode_setup(kind, &mut d)?,
            10..=18 => decode_ops(kind, &mut d)?,
            19..=27 => decode_files(kind, &mut d)?,
            40..=45 => decode_replies(kind, &mut d)?,
            60..=68 => fidelity::decode(kind, &mut d)?,
            70..=79 => {
                super::twoway::parse(kind, payload)?;
                return Ok(Msg::TwoWay {
                    kind,
                    payload: payload.to_vec(),
                });
            }
            80..=89 => super::watch::decode(kind, &mut d)?,
            k => return Err(ProtoError::UnknownType(k)),
        };
        d.end()?;
        Ok(m)
    }
}

fn decode_setup(kind: u8, d: &mut Dec<'_>) -> Result<Msg, ProtoError> {
    Ok(match kind {
        1 => {
            let magic = [d.u8()?, d.u8()?, d.u8()?, d.u8()?];
            if &magic != MAGIC {
                return Err(ProtoError::BadValue("not a dirsync hello"));
            }
            Msg::Hello(Hello {
                protocol: d.u32()?,
                features: d.u64()?,
                version: d.bytes()?,
            })
        }
        2 => {
            let role = match d.u8()? {
                0 => Role::Agent,
                1 => Role::Engine,
                2 => Role::TwoWay,
                _ => return Err(ProtoError::BadValue("role")),
            };
            let (path, flags, backend, jobs) = (d.bytes()?, d.u32()?, d.u8()?, d.u32()?);
            let n = d.count(4)?;
            let excludes = (0..n).map(|_| d.bytes()).collect::<Result<_, _>>()?;
            Msg::Setup(Setup {
                role,
                path,
                flags,
                backend,
                jobs,
                excludes,
                label: d.bytes()?,
                dst_exists: d.bool()?,
                bwlimit: d.u64()?,
                max_size: d.u64()?,
            })
        }
        3 => Msg::Ready {
            created: d.bool()?,
            exists: d.bool()?,
        },
        _ => Msg::Refuse(d.bytes()?),
    })
}

fn decode_ops(kind: u8, d: &mut Dec<'_>) -> Result<Msg, ProtoError> {
    Ok(match kind {
        10 => Msg::Open {
            id: d.u32()?,
            parent: d.u32()?,
            name: d.opt_name()?,
        },
        11 => Msg::Close { id: d.u32()? },
        12 => Msg::List {
            req: d.u32()?,
            id: d.u32()?,
        },
        13 => Msg::Stat {
            req: d.u32()?,
            id: d.u32()?,
            name: d.opt_name()?,
        },
        14 => Msg::CreateDir {
            id: d.u32()?,
            name: d.name()?,
        },
        15 => Msg::Remove {
            id: d.u32()?,
            name: d.name()?,
        },
        16 => Msg::SetAttrs {
            id: d.u32()?,
            name: d.opt_name()?,
            attrs: d.attrs()?,
        },
        17 => Msg::Symlink {
            id: d.u32()?,
            name: d.name()?,
            target: non_empty_target(d.bytes()?)?,
            attrs: d.attrs()?,
            over: d.over()?,
        },
        _ => Msg::Special {
            id: d.u32()?,
            name: d.name()?,
            fmt: special_fmt(d.u32()?)?,
            rdev: (d.u32()?, d.u32()?),
            attrs: d.attrs()?,
            over: d.over()?,
        },
    })
}

/// The `S_IFMT` bits of a special file: a FIFO, socket, character or
/// block device, nothing else (a regular file, directory or symlink has
/// a message of its own; any other value is not a file type).
fn special_fmt(fmt: u32) -> Result<u32, ProtoError> {
    match fmt {
        libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK => Ok(fmt),
        _ => Err(ProtoError::BadValue("special file type")),
    }
}

/// A symlink target: not empty, no NUL.
fn non_empty_target(t: Vec<u8>) -> Result<Vec<u8>, ProtoError> {
    if t.is_empty() || t.contains(&0) || t.len() > 4095 {
        return Err(ProtoError::BadValue("symlink target"));
    }
    Ok(t)
}

fn decode_files(kind: u8, d: &mut Dec<'_>) -> Result<Msg, ProtoError> {
    Ok(match kind {
        19 => {
            let (fid, id, name, size) = (d.u32()?, d.u32()?, d.name()?, d.u64()?);
            let flags = d.u8()?;
            if flags > 3 {
                return Err(ProtoError::BadValue("file flags"));
            }
            Msg::FileBegin {
                fid,
                id,
                name,
                size,
                compare: flags & 1 != 0,
                fresh: flags & 2 != 0,
                plan: d.u32()?,
            }
        }
        20 => Msg::Data {
            fid: d.u32()?,
            bytes: d.bytes()?,
        },
        21 => Msg::Commit {
            fid: d.u32()?,
            attrs: d.attrs()?,
            fsync: d.bool()?,
            over: d.over()?,
        },
        22 => Msg::Abort { fid: d.u32()? },
        23 => Msg::CompareEnd {
            req: d.u32()?,
            fid: d.u32()?,
        },
        24 => Msg::Rename {
            req: d.u32()?,
            from: d.path()?,
            to: d.path()?,
        },
        25 => Msg::Barrier { req: d.u32()? },
        26 => Msg::Delta {
            fid: d.u32()?,
            ops: d.bytes()?,
        },
        _ => Msg::DeltaEnd {
            req: d.u32()?,
            fid: d.u32()?,
        },
    })
}

fn decode_replies(kind: u8, d: &mut Dec<'_>) -> Result<Msg, ProtoError> {
    Ok(match kind {
        40 => {
            let req = d.u32()?;
            let n = d.count(16)?;
            let entries = (0..n).map(|_| dec_entry(d)).collect::<Result<_, _>>()?;
            Msg::Entries { req, entries }
        }
        41 => {
            let req = d.u32()?;
            let result = match d.u8()? {
                0 => Ok(Answer::Unit),
                1 => Ok(Answer::Bool(d.bool()?)),
                2 => Ok(Answer::Meta(None)),
                3 => Ok(Answer::Meta(Some(d.meta()?))),
                4 => Err(d.i32()?),
                5 => Ok(Answer::Plan(d.opt_bytes()?)),
                t @ 6..=9 => Ok(fidelity::dec_answer(t, d)?),
                _ => return Err(ProtoError::BadValue("reply")),
            };
            Msg::Reply { req, result }
        }
        42 => Msg::Note {
            op: NoteOp::from_u8(d.u8()?)?,
            path: d.bytes()?,
            errno: d.i32()?,
            count: d.u64()?,
            silent: d.bool()?,
        },
        43 => Msg::Event(WireEvent {
            kind: d.u8()?,
            a: d.bytes()?,
            b: d.bytes()?,
            text: d.bytes()?,
            count: d.u64()?,
        }),
        44 => {
            let n = d.count(12)?;
            let counters = (0..n)
                .map(|_| Ok((d.bytes()?, d.u64()?)))
                .collect::<Result<_, ProtoError>>()?;
            Msg::Done {
                counters,
                fatal: d.opt_bytes()?,
            }
        }
        _ => Msg::Bye,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{Attrs, Over};

    fn special(fmt: u32, perm: u32) -> Msg {
        Msg::Special {
            id: 1,
            name: c"x".to_owned(),
            fmt,
            rdev: (1, 3),
            attrs: Attrs {
                perm: Some(perm),
                mtime: None,
            },
            over: Over::Entry,
        }
    }

    fn round_trip(m: &Msg) -> Result<Msg, ProtoError> {
        let (k, p) = m.encode();
        Msg::decode(k, &p)
    }

    #[test]
    fn only_special_file_types_and_permission_bits_decode() {
        for fmt in [libc::S_IFIFO, libc::S_IFSOCK, libc::S_IFCHR, libc::S_IFBLK] {
            let m = special(fmt, 0o7777);
            assert_eq!(round_trip(&m).unwrap(), m);
        }
        for fmt in [
            0,
            libc::S_IFREG,
            libc::S_IFDIR,
            libc::S_IFLNK,
            libc::S_IFMT,
            1,
        ] {
            let e = round_trip(&special(fmt, 0o644)).unwrap_err();
            assert_eq!(e, ProtoError::BadValue("special file type"), "{fmt:o}");
        }
        let e = round_trip(&special(libc::S_IFIFO, 0o10000)).unwrap_err();
        assert_eq!(e, ProtoError::BadValue("permission bits"));
    }
}

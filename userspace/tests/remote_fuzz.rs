//! Property test of the protocol decoder: every valid message survives
//! encode → decode unchanged, and many random and mutated frames (bit
//! flips, truncations, extensions, hostile lengths and names) never make
//! the frame reader or the message decoder panic or allocate more than a
//! frame: each gives a message or a clean error. Prints how many inputs
//! ran.

use std::ffi::CString;
use std::io::Cursor;

use dirsync::remote::protocol::frame::{FrameError, FrameReader, MAX_FRAME};
use dirsync::remote::protocol::messages::*;
use dirsync::stat::{Kind, Meta};
use dirsync::sync::{Attrs, Over};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max as u64 + 1) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn name(&mut self) -> CString {
        loop {
            let mut b = self.bytes(20);
            b.retain(|&c| c != 0 && c != b'/');
            if !b.is_empty() && b != b"." && b != b".." {
                return CString::new(b).unwrap();
            }
        }
    }
}

fn meta(r: &mut Rng) -> Meta {
    let kind = match r.below(4) {
        0 => Kind::File,
        1 => Kind::Dir,
        2 => Kind::Symlink,
        _ => Kind::Special(libc::S_IFIFO),
    };
    Meta {
        kind,
        perm: r.below(0o10000) as u32,
        size: r.next(),
        mtime: r.next() as i64,
        mtime_nsec: r.below(1_000_000_000) as u32,
        ino: r.next(),
        dev: (r.next() as u32, r.next() as u32),
        ids: Default::default(),
    }
}

fn attrs(r: &mut Rng) -> Attrs {
    Attrs {
        perm: (r.below(2) == 0).then(|| r.below(0o10000) as u32),
        mtime: (r.below(2) == 0).then(|| (r.next() as i64, r.below(1_000_000_000) as u32)),
    }
}

/// One valid message of every kind, with random fields.
fn samples(r: &mut Rng) -> Vec<Msg> {
    let over = if r.below(2) == 0 {
        Over::Entry
    } else {
        Over::Tree
    };
    let entry = |r: &mut Rng| Entry {
        name: r.name(),
        d_type: r.next() as u8,
        meta: match r.below(3) {
            0 => Ok(None),
            1 => Ok(Some(meta(r))),
            _ => Err(r.next() as i32),
        },
        link: (r.below(2) == 0).then(|| r.bytes(30)),
        rdev: (r.next() as u32, r.next() as u32),
        xattrs: false,
    };
    let mut target = r.bytes(30);
    target.retain(|&c| c != 0);
    target.push(b'x');
    vec![
        Msg::Hello(Hello {
            protocol: r.next() as u32,
            version: r.bytes(10),
            features: r.next(),
        }),
        Msg::Setup(Setup {
            role: if r.below(2) == 0 {
                Role::Agent
            } else {
                Role::Engine
            },
            path: r.bytes(40),
            flags: r.next() as u32,
            backend: r.next() as u8,
            jobs: r.next() as u32,
            excludes: (0..r.below(4)).map(|_| r.bytes(10)).collect(),
            label: r.bytes(20),
            dst_exists: r.below(2) == 0,
            bwlimit: r.next(),
            max_size: r.next(),
        }),
        Msg::Ready {
            created: r.below(2) == 0,
            exists: true,
        },
        Msg::Refuse(r.bytes(50)),
        Msg::Open {
            id: r.next() as u32,
            parent: r.next() as u32,
            name: Some(r.name()),
        },
        Msg::Close { id: 3 },
        Msg::List { req: 1, id: 2 },
        Msg::Stat {
            req: 1,
            id: 2,
            name: None,
        },
        Msg::CreateDir {
            id: 1,
            name: r.name(),
        },
        Msg::Remove {
            id: 1,
            name: r.name(),
        },
        Msg::SetAttrs {
            id: 1,
            name: Some(r.name()),
            attrs: attrs(r),
        },
        Msg::Symlink {
            id: 1,
            name: r.name(),
            target,
            attrs: attrs(r),
            over,
        },
        Msg::Special {
            id: 1,
            name: r.name(),
            fmt: libc::S_IFCHR,
            rdev: (1, 3),
            attrs: attrs(r),
            over,
        },
        Msg::FileBegin {
            fid: 9,
            id: 1,
            name: r.name(),
            size: r.next(),
            compare: r.below(2) == 0,
            fresh: r.below(2) == 0,
            plan: r.next() as u32,
        },
        Msg::Reply {
            req: 8,
            result: Ok(Answer::Plan(Some(r.bytes(40)))),
        },
        Msg::Delta {
            fid: 9,
            ops: r.bytes(200),
        },
        Msg::DeltaEnd { req: 3, fid: 9 },
        Msg::Data {
            fid: 9,
            bytes: r.bytes(200),
        },
        Msg::Commit {
            fid: 9,
            attrs: attrs(r),
            fsync: true,
            over,
        },
        Msg::Abort { fid: 9 },
        Msg::CompareEnd { req: 4, fid: 9 },
        Msg::Rename {
            req: 5,
            from: vec![r.name(), r.name()],
            to: vec![r.name()],
        },
        Msg::Barrier { req: 6 },
        Msg::Entries {
            req: 7,
            entries: (0..r.below(5)).map(|_| entry(r)).collect(),
        },
        Msg::Reply {
            req: 7,
            result: Ok(Answer::Meta(Some(meta(r)))),
        },
        Msg::Reply {
            req: 7,
            result: Err(13),
        },
        Msg::Note {
            op: NoteOp::Copy,
            path: r.bytes(30),
            errno: 28,
            count: 5,
            silent: false,
        },
        Msg::Event(WireEvent {
            kind: 3,
            a: r.bytes(20),
            b: r.bytes(20),
            text: r.bytes(20),
            count: r.next(),
        }),
        Msg::Done {
            counters: vec![(b"copied".to_vec(), r.next())],
            fatal: None,
        },
        Msg::Bye,
        // -H -A -X -o -g -S (FEATURE_FIDELITY).
        Msg::Entries {
            req: 5,
            entries: vec![Entry {
                meta: Ok(Some(with_ids(meta(r), r))),
                xattrs: true,
                ..entry(r)
            }],
        },
        Msg::Reply {
            req: 7,
            result: Ok(Answer::Meta(Some(with_ids(meta(r), r)))),
        },
        Msg::Reply {
            req: 7,
            result: Ok(Answer::Xattrs(vec![
                (CString::new("system.posix_acl_access").unwrap(), acl(r)),
                (CString::new("user.a").unwrap(), r.bytes(40)),
            ])),
        },
        Msg::Reply {
            req: 7,
            result: Ok(Answer::Linked(dirsync::sync::replica::Linked::Made {
                deleted: r.next(),
            })),
        },
        Msg::Reply {
            req: 7,
            result: Ok(Answer::Id(r.below(1 << 31) as u32)),
        },
        Msg::Chown {
            id: 1,
            name: Some(r.name()),
            uid: Some(r.below(1 << 31) as u32),
            gid: None,
        },
        Msg::GetXattrs {
            req: 3,
            id: 1,
            name: None,
        },
        Msg::SetXattrs {
            id: 1,
            name: Some(r.name()),
            set: vec![(CString::new("user.k").unwrap(), r.bytes(30))],
            remove: vec![CString::new("security.capability").unwrap()],
        },
        Msg::FileOwner {
            fid: 2,
            uid: None,
            gid: Some(r.below(1 << 31) as u32),
        },
        Msg::FileXattrs {
            fid: 2,
            want: vec![(CString::new("trusted.t").unwrap(), r.bytes(10))],
        },
        Msg::Hole {
            fid: 2,
            len: r.next(),
        },
        Msg::HardLink {
            req: 4,
            target: vec![r.name(), r.name()],
            at: vec![r.name()],
        },
        Msg::MapId {
            req: 4,
            group: true,
            id: r.below(1 << 31) as u32,
            name: b"staff".to_vec(),
        },
    ]
}

/// `m` with owner, group and a link count.
fn with_ids(mut m: Meta, r: &mut Rng) -> Meta {
    m.ids.uid = r.below(1 << 31) as u32;
    m.ids.gid = r.below(1 << 31) as u32;
    m.ids.nlink = 1 + r.below(100) as u32;
    m
}

/// A valid ACL value of a few entries.
fn acl(r: &mut Rng) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for _ in 0..1 + r.below(4) {
        v.extend_from_slice(&[0x02, 0, r.below(8) as u8, 0]);
        v.extend_from_slice(&(r.below(1 << 31) as u32).to_le_bytes());
    }
    v
}

/// Decodes; a decoded message must encode back to the same bytes.
fn check(kind: u8, payload: &[u8]) -> bool {
    match Msg::decode(kind, payload) {
        Ok(m) => {
            let (k, p) = m.encode();
            assert_eq!(
                (k, &p[..]),
                (kind, payload),
                "re-encoding differs for {m:?}"
            );
            true
        }
        Err(_) => false,
    }
}

fn mutate(r: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..=r.below(4) {
        match r.below(7) {
            0 if !b.is_empty() => {
                let i = r.below(b.len() as u64) as usize;
                b[i] ^= 1 << r.below(8);
            }
            1 => b.truncate(r.below(b.len() as u64 + 1) as usize),
            2 => b.extend(r.bytes(8)),
            3 if b.len() >= 4 => {
                // A hostile length where a length field may be.
                let i = r.below(b.len() as u64 - 3) as usize;
                let v = [u32::MAX, MAX_FRAME, 0x8000_0000, 1 << 20][r.below(4) as usize];
                b[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            4 if !b.is_empty() => {
                // Hostile name bytes.
                let i = r.below(b.len() as u64) as usize;
                b[i] = [b'/', b'.', 0][r.below(3) as usize];
            }
            5 if !b.is_empty() => {
                let i = r.below(b.len() as u64) as usize;
                b.insert(i, r.next() as u8);
            }
            _ => {}
        }
    }
    b
}

#[test]
fn valid_messages_round_trip() {
    let mut r = Rng(0x1234_5678_9abc_def1);
    for _ in 0..200 {
        for m in samples(&mut r) {
            let (k, p) = m.encode();
            assert_eq!(Msg::decode(k, &p).as_ref(), Ok(&m));
        }
    }
}

#[test]
fn hostile_names_are_refused() {
    for bad in [&b".."[..], b".", b"a/b", b"/", b"", b"a\0b"] {
        let m = Msg::CreateDir {
            id: 1,
            name: CString::new(b"x".to_vec()).unwrap(),
        };
        let (k, mut p) = m.encode();
        p.truncate(4);
        p.extend_from_slice(&(bad.len() as u32).to_le_bytes());
        p.extend_from_slice(bad);
        let e = Msg::decode(k, &p).unwrap_err();
        assert!(matches!(e, ProtoError::BadName(_)), "{bad:?}: {e:?}");
    }
}

#[test]
fn random_and_mutated_frames_never_panic() {
    let mut r = Rng(0xdead_beef_cafe_f00d);
    let (mut inputs, mut decoded) = (0u64, 0u64);
    // Messages: random payloads of every type byte, and mutations of
    // valid ones.
    for round in 0..100_000 {
        let kind = r.next() as u8;
        let p = r.bytes(64);
        decoded += u64::from(check(kind, &p));
        inputs += 1;
        for m in samples(&mut r) {
            if round % 2 != 0 {
                continue;
            }
            let (k, p) = m.encode();
            let k = if r.below(20) == 0 { r.next() as u8 } else { k };
            decoded += u64::from(check(k, &mutate(&mut r, p)));
            inputs += 1;
        }
    }
    // Streams: frames and garbage through the frame reader.
    for _ in 0..50_000 {
        let mut stream = Vec::new();
        for m in samples(&mut r).into_iter().take(r.below(6) as usize) {
            let (k, p) = m.encode();
            stream.extend_from_slice(&(p.len() as u32 + 1).to_le_bytes());
            stream.push(k);
            stream.extend_from_slice(&p);
        }
        let stream = mutate(&mut r, stream);
        let mut fr = FrameReader::new(Box::new(Cursor::new(stream)));
        loop {
            inputs += 1;
            match fr.read() {
                Ok((k, p)) => {
                    assert!(p.len() < MAX_FRAME as usize);
                    decoded += u64::from(check(k, p));
                }
                Err(FrameError::Closed | FrameError::Truncated | FrameError::BadLength(_)) => break,
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
    println!(
        "fuzz: {inputs} inputs, {decoded} decoded as valid messages, the rest refused cleanly"
    );
    assert!(inputs > 1_000_000, "{inputs}");
    assert!(
        decoded > 10_000 && decoded < inputs,
        "{decoded} of {inputs}"
    );
}

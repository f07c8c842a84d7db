//! The record parser on synthetic buffers, and the mapping of records to
//! entries.

use super::*;
use crate::stat::{Kind, Statx};
use std::os::fd::AsFd;

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

fn info(ino: u64) -> Info {
    Info {
        exists: 1,
        mode: libc::S_IFREG | 0o644,
        size: 5,
        mtime: -3,
        mtime_nsec: 999_999_999,
        mask: uapi::DIRSYNC_INFO_BASIC,
        ino,
        dev_major: 8,
        dev_minor: 3,
        ..Default::default()
    }
}

/// One record as the ABI describes it (`error` 0: `info` filled).
fn rec(name: &[u8], d_type: u8, error: i32, inf: Info) -> Vec<u8> {
    let reclen = (HDR + name.len() + 1 + 7) & !7;
    let mut b = vec![0u8; reclen];
    put(
        &mut b,
        offset_of!(Dirent, reclen),
        &(reclen as u16).to_ne_bytes(),
    );
    b[offset_of!(Dirent, d_type)] = d_type;
    let namelen = name.len() as u16;
    put(&mut b, offset_of!(Dirent, namelen), &namelen.to_ne_bytes());
    put(&mut b, offset_of!(Dirent, error), &error.to_ne_bytes());
    let i = offset_of!(Dirent, info);
    put(
        &mut b,
        i + offset_of!(Info, exists),
        &inf.exists.to_ne_bytes(),
    );
    put(&mut b, i + offset_of!(Info, mode), &inf.mode.to_ne_bytes());
    put(&mut b, i + offset_of!(Info, size), &inf.size.to_ne_bytes());
    put(
        &mut b,
        i + offset_of!(Info, mtime),
        &inf.mtime.to_ne_bytes(),
    );
    let nsec = inf.mtime_nsec.to_ne_bytes();
    put(&mut b, i + offset_of!(Info, mtime_nsec), &nsec);
    put(&mut b, i + offset_of!(Info, mask), &inf.mask.to_ne_bytes());
    put(&mut b, i + offset_of!(Info, ino), &inf.ino.to_ne_bytes());
    let major = inf.dev_major.to_ne_bytes();
    put(&mut b, i + offset_of!(Info, dev_major), &major);
    let minor = inf.dev_minor.to_ne_bytes();
    put(&mut b, i + offset_of!(Info, dev_minor), &minor);
    put(&mut b, i + offset_of!(Info, uid), &inf.uid.to_ne_bytes());
    put(&mut b, i + offset_of!(Info, gid), &inf.gid.to_ne_bytes());
    put(
        &mut b,
        i + offset_of!(Info, nlink),
        &inf.nlink.to_ne_bytes(),
    );
    put(&mut b, HDR, name);
    b
}

fn good_pair() -> Vec<u8> {
    let mut b = rec(b"file", libc::DT_REG, 0, info(42));
    b.extend(rec(
        b"gone\xff",
        libc::DT_UNKNOWN,
        libc::ENOENT,
        Info::default(),
    ));
    b
}

fn why(buf: &[u8]) -> Malformed {
    parse(buf).expect_err("must be refused")
}

#[test]
fn header_is_the_uapi_size() {
    assert_eq!(HDR, 96);
    assert_eq!(NAME_MAX, 4095);
    assert_eq!(HDR + NAME_MAX + 1, uapi::DIRSYNC_READDIR_BUF_MIN as usize);
}

#[test]
fn good_records_parse_field_by_field() {
    let b = good_pair();
    assert_eq!(b.len(), 104 + 104);
    let recs = parse(&b).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!((recs[0].name, recs[0].d_type), (&b"file"[..], libc::DT_REG));
    let Described::Info(i) = recs[0].described else {
        panic!("{:?}", recs[0])
    };
    assert_eq!((i.exists, i.mode, i.size), (1, libc::S_IFREG | 0o644, 5));
    assert_eq!((i.mtime, i.mtime_nsec, i.mask), (-3, 999_999_999, 0x3f));
    assert_eq!((i.ino, i.dev_major, i.dev_minor), (42, 8, 3));
    assert_eq!(recs[1].name, b"gone\xff");
    assert!(matches!(recs[1].described, Described::Errno(libc::ENOENT)));
    assert!(parse(&[]).unwrap().is_empty());
    // A name of NAME_MAX bytes fills the minimum buffer exactly.
    let long = vec![b'x'; NAME_MAX];
    let b = rec(&long, libc::DT_DIR, 0, info(1));
    assert_eq!(b.len(), uapi::DIRSYNC_READDIR_BUF_MIN as usize);
    assert_eq!(parse(&b).unwrap()[0].name.len(), NAME_MAX);
}

#[test]
fn truncated_buffers_are_refused_at_every_length() {
    let b = good_pair();
    let first = rec(b"file", libc::DT_REG, 0, info(42)).len();
    for cut in 1..b.len() {
        if cut == first {
            assert_eq!(parse(&b[..cut]).unwrap().len(), 1);
            continue;
        }
        let m = why(&b[..cut]);
        let offset = if cut < first { 0 } else { first };
        assert_eq!(m.offset, offset, "cut {cut}");
        let left = cut - offset;
        let want = if left < HDR {
            "truncated header"
        } else {
            "reclen beyond the returned length"
        };
        assert_eq!(m.why, want, "cut {cut}");
    }
}

#[test]
fn bad_reclen_is_refused() {
    let good = rec(b"a", libc::DT_REG, 0, info(1));
    let off = offset_of!(Dirent, reclen);
    for (reclen, want) in [
        (0u16, "reclen 0"),
        (100, "reclen not a multiple of 8"),
        (101, "reclen not a multiple of 8"),
        (96, "name beyond reclen"),
        (8, "name beyond reclen"),
        (112, "reclen beyond the returned length"),
        (u16::MAX, "reclen not a multiple of 8"),
        (0xfff8, "reclen beyond the returned length"),
    ] {
        let mut b = good.clone();
        put(&mut b, off, &reclen.to_ne_bytes());
        assert_eq!(why(&b).why, want, "reclen {reclen}");
    }
}

#[test]
fn bad_names_are_refused() {
    let off = offset_of!(Dirent, namelen);
    let mut b = rec(b"abc", libc::DT_REG, 0, info(1));
    put(&mut b, off, &8u16.to_ne_bytes());
    assert_eq!(why(&b).why, "name beyond reclen");
    put(&mut b, off, &0u16.to_ne_bytes());
    assert_eq!(
        why(&b).why,
        "name length not in 1..=DIRSYNC_READDIR_NAME_MAX"
    );
    put(&mut b, off, &4096u16.to_ne_bytes());
    assert_eq!(
        why(&b).why,
        "name length not in 1..=DIRSYNC_READDIR_NAME_MAX"
    );
    // The kernel's record of a name too long to carry: refused by name.
    put(&mut b, off, &0u16.to_ne_bytes());
    put(
        &mut b,
        offset_of!(Dirent, error),
        &(libc::ENAMETOOLONG as u32).to_ne_bytes(),
    );
    assert_eq!(
        why(&b).why,
        "a name longer than DIRSYNC_READDIR_NAME_MAX bytes"
    );
    // namelen shorter than the bytes: the NUL is not where it says.
    put(&mut b, off, &2u16.to_ne_bytes());
    assert_eq!(why(&b).why, "name not NUL-terminated");
    for name in [&b"a/b"[..], b"/", b"a\0b", b"\0"] {
        let b = rec(name, libc::DT_REG, 0, info(1));
        assert_eq!(why(&b).why, "NUL or '/' in a name", "{name:?}");
    }
    for name in [&b"."[..], b".."] {
        let b = rec(name, libc::DT_DIR, 0, info(1));
        assert_eq!(why(&b).why, "'.' or '..' reported", "{name:?}");
    }
    // "..." and ".x" are ordinary names.
    let mut b = rec(b"...", libc::DT_REG, 0, info(1));
    b.extend(rec(b".x", libc::DT_REG, 0, info(2)));
    assert_eq!(parse(&b).unwrap().len(), 2);
}

#[test]
fn bad_errors_are_refused() {
    for e in [-1, -libc::ENOENT, 4096, i32::MAX, i32::MIN] {
        let b = rec(b"a", libc::DT_REG, e, Info::default());
        assert_eq!(why(&b).why, "error is not 0 or a positive errno", "{e}");
    }
    let b = rec(b"a", libc::DT_REG, libc::EACCES, Info::default());
    assert!(matches!(
        parse(&b).unwrap()[0].described,
        Described::Errno(libc::EACCES)
    ));
}

#[test]
fn a_bad_second_record_names_its_offset() {
    let mut b = rec(b"a", libc::DT_REG, 0, info(1));
    let first = b.len();
    let mut bad = rec(b"b", libc::DT_REG, 0, info(2));
    put(&mut bad, offset_of!(Dirent, reclen), &0u16.to_ne_bytes());
    b.extend(bad);
    assert_eq!(
        why(&b),
        Malformed {
            offset: first,
            why: "reclen 0"
        }
    );
    let e = io::Error::from(why(&b));
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e
        .to_string()
        .contains("malformed record at byte 104: reclen 0"));
}

/// A small deterministic generator (xorshift).
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn garbage_never_panics() {
    let good = good_pair();
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    // Every byte of a good buffer changed to a few values.
    for i in 0..good.len() {
        for v in [0u8, 1, 7, 8, 0x2f, 0x60, 0xff] {
            let mut b = good.clone();
            b[i] = v;
            let _ = parse(&b);
        }
    }
    // Random buffers, and random lengths with a plausible first reclen.
    for _ in 0..2000 {
        let len = (next(&mut s) % 600) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| next(&mut s) as u8).collect();
        if len >= 2 && next(&mut s) % 2 == 0 {
            let r = ((next(&mut s) % 80) * 8) as u16;
            put(&mut b, 0, &r.to_ne_bytes());
        }
        if let Ok(recs) = parse(&b) {
            for r in recs {
                assert!(!r.name.is_empty() && !r.name.contains(&b'/'));
            }
        }
    }
}

#[test]
fn records_become_entries_as_stat_at_would() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("f"), b"hello").unwrap();
    let dir = crate::sys::open_root(d.path()).unwrap();
    let fd = dir.as_fd();
    let mk = |name: &'static [u8], described| Record {
        name,
        d_type: libc::DT_REG,
        described,
    };
    let e = entry(&Statx, fd, &mk(b"x", Described::Info(info(42))), NEEDED);
    let m = e.meta.unwrap().unwrap();
    assert_eq!((e.name.as_bytes(), e.d_type), (&b"x"[..], libc::DT_REG));
    assert_eq!((m.kind, m.perm, m.size, m.ino), (Kind::File, 0o644, 5, 42));
    assert_eq!((m.mtime, m.mtime_nsec, m.dev), (-3, 999_999_999, (8, 3)));
    // Vanished: as stat_at, not an error.
    let e = entry(
        &Statx,
        fd,
        &mk(b"x", Described::Errno(libc::ENOENT)),
        NEEDED,
    );
    assert!(e.meta.unwrap().is_none());
    let gone = Info {
        exists: 0,
        ..Default::default()
    };
    assert!(entry(&Statx, fd, &mk(b"x", Described::Info(gone)), NEEDED)
        .meta
        .unwrap()
        .is_none());
    // EACCES is that entry's error.
    let e = entry(
        &Statx,
        fd,
        &mk(b"x", Described::Errno(libc::EACCES)),
        NEEDED,
    );
    assert_eq!(e.meta.unwrap_err().raw_os_error(), Some(libc::EACCES));
    // Any other errno: the kernel stopped describing there, the entry
    // comes from the fallback.
    for errno in [libc::EINTR, libc::ENOMEM, libc::EIO, libc::ESTALE] {
        let e = entry(&Statx, fd, &mk(b"f", Described::Errno(errno)), NEEDED);
        assert_eq!(e.meta.unwrap(), Statx.stat_at(fd, c"f").unwrap());
    }
    // A record without the mtime: the entry comes from the fallback.
    let partial = Info {
        mask: uapi::DIRSYNC_INFO_BASIC & !uapi::DIRSYNC_INFO_MTIME,
        ..info(42)
    };
    let e = entry(&Statx, fd, &mk(b"f", Described::Info(partial)), NEEDED);
    let m = e.meta.unwrap().unwrap();
    assert_eq!(Some(m), Statx.stat_at(fd, c"f").unwrap());
    assert_eq!(m.size, 5);
}

#[test]
fn owner_group_and_links_are_read_and_required_when_needed() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("f"), b"hello").unwrap();
    std::fs::hard_link(d.path().join("f"), d.path().join("g")).unwrap();
    let dir = crate::sys::open_root(d.path()).unwrap();
    let fd = dir.as_fd();
    let mk = |described| Record {
        name: b"f",
        d_type: libc::DT_REG,
        described,
    };
    // A record with the bits: its fields, through the parser too.
    let full = Info {
        mask: NEEDED | IDS,
        uid: 1234,
        gid: 5678,
        nlink: 3,
        ..info(42)
    };
    let b = rec(b"f", libc::DT_REG, 0, full);
    let parsed = parse(&b).unwrap();
    let e = entry(&Statx, fd, &parsed[0], NEEDED | IDS);
    let m = e.meta.unwrap().unwrap();
    assert_eq!(
        (m.ino, m.ids.uid, m.ids.gid, m.ids.nlink),
        (42, 1234, 5678, 3)
    );
    // A kernel of the first ABI (basic fields only): the engine needing
    // them gets the entry from the fallback, with its real link count.
    let e = entry(&Statx, fd, &mk(Described::Info(info(42))), NEEDED | IDS);
    let m = e.meta.unwrap().unwrap();
    assert_eq!(Some(m), Statx.stat_at(fd, c"f").unwrap());
    assert_eq!(m.ids.nlink, 2);
    // One that does not need them takes the record as it is.
    let e = entry(&Statx, fd, &mk(Described::Info(info(42))), NEEDED);
    assert_eq!(e.meta.unwrap().unwrap().ids.nlink, 0);
}

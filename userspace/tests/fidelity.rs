//! `-a` and its parts (-H -A -X -o -g -S, reflinks): an exact replica on
//! tmpfs and on a loop-mounted btrfs, as root and (owner) as uid 65534.

mod common;
use common::exact::*;
use common::*;

use std::os::unix::fs::{chown, MetadataExt};
use std::path::{Path, PathBuf};

fn meta(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap()
}

fn ino(p: &Path) -> u64 {
    meta(p).ino()
}

fn write(p: &Path, data: &str) {
    std::fs::write(p, data).unwrap();
}

/// A SRC with every attribute `-a` replicates; `sparse` has `sparse_len`
/// bytes with three 4 KiB extents.
fn build(src: &Path, sparse_len: u64) {
    for d in ["d1", "d2", "acl"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    write(&src.join("d1/a"), "one\n");
    std::fs::hard_link(src.join("d1/a"), src.join("d2/b")).unwrap();
    std::fs::hard_link(src.join("d1/a"), src.join("top")).unwrap();
    write(&src.join("d1/x"), "two\n");
    set_xattr(&src.join("d1/x"), "user.color", b"blue");
    write(&src.join("acl/f"), "three\n");
    set_xattr(
        &src.join("acl/f"),
        "system.posix_acl_access",
        &acl_for_user(65534, 6),
    );
    set_xattr(
        &src.join("acl"),
        "system.posix_acl_default",
        &acl_for_user(65534, 5),
    );
    write(&src.join("owned"), "four\n");
    chown(src.join("owned"), Some(65534), Some(65534)).unwrap();
    write(&src.join("grouped"), "five\n");
    chown(src.join("grouped"), None, Some(65534)).unwrap();
    write(&src.join("capped"), "#!/bin/sh\n");
    std::fs::set_permissions(
        src.join("capped"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    set_xattr(&src.join("capped"), "security.capability", &CAP_NET_RAW);
    write_sparse(&src.join("sparse"), sparse_len);
}

/// Replaces `p` by a copy of itself (same content, mode, mtime and owner;
/// a new inode): a link broken in place.
fn break_link(p: &Path) {
    let m = meta(p);
    let tmp = p.with_extension("new");
    std::fs::copy(p, &tmp).unwrap();
    chown(&tmp, Some(m.uid()), Some(m.gid())).unwrap();
    let mt = filetime_of(&m);
    set_mtime(&tmp, mt);
    std::fs::rename(&tmp, p).unwrap();
}

fn filetime_of(m: &std::fs::Metadata) -> (i64, i64) {
    (m.mtime(), m.mtime_nsec())
}

fn set_mtime(p: &Path, (s, ns): (i64, i64)) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(s as u64, ns as u32);
    f.set_modified(t).unwrap();
}

#[test]
fn archive_is_an_exact_replica_and_a_resync_fixes_each_attribute_in_place() {
    assert!(is_root(), "the fidelity tests run as root (CI does)");
    let t = tmpfs_dir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    build(&src, 4 << 20);
    sync_ok(&src, &dst, &["-a"]);
    assert_exact(&src, &dst);
    assert_eq!(ino(&dst.join("d1/a")), ino(&dst.join("d2/b")));
    assert_eq!(
        actions(&json_summary(&sync_ok(&src, &dst, &["-a", "--json"]))),
        0
    );

    // Attributes only: fixed without a copy (same DST inodes).
    let inodes = |d: &Path| ["owned", "d1/x", "d1/a", "acl/f", "capped"].map(|f| ino(&d.join(f)));
    let before = inodes(&dst);
    chown(src.join("owned"), Some(1), Some(1)).unwrap();
    set_xattr(&src.join("d1/x"), "user.color", b"red");
    set_xattr(&src.join("d1/a"), "user.new", b"1");
    set_xattr(
        &src.join("acl/f"),
        "system.posix_acl_access",
        &acl_for_user(1, 4),
    );
    set_xattr(
        &src.join("acl"),
        "system.posix_acl_default",
        &acl_for_user(1, 7),
    );
    chown(dst.join("capped"), Some(1), None).unwrap(); // the kernel drops the capability
    let s = json_summary(&sync_ok(&src, &dst, &["-a", "--json"]));
    assert_eq!(counter(&s, "copied"), 0, "{s}");
    assert_eq!(inodes(&dst), before);
    assert_exact(&src, &dst);

    // Links added and broken, a new hole at the end.
    std::fs::hard_link(src.join("d1/x"), src.join("d2/x-link")).unwrap();
    break_link(&src.join("d2/b"));
    let f = std::fs::File::options()
        .write(true)
        .open(src.join("sparse"))
        .unwrap();
    f.set_len(8 << 20).unwrap();
    let x = ino(&dst.join("d1/x"));
    let out = sync_ok(&src, &dst, &["-a", "-v"]);
    assert!(out.contains("Hard linked:"), "{out}");
    assert_eq!(
        ino(&dst.join("d2/x-link")),
        x,
        "a new link is a linkat, not a copy"
    );
    assert_ne!(ino(&dst.join("d2/b")), ino(&dst.join("d1/a")));
    assert_exact(&src, &dst);
    assert_eq!(
        actions(&json_summary(&sync_ok(&src, &dst, &["-a", "--json"]))),
        0
    );
    // A dry run reports the links a first copy makes, none on a replica.
    let fresh = t.path().join("fresh");
    let s = json_summary(&sync_ok(&src, &fresh, &["-a", "-n", "--json"]));
    assert_eq!(counter(&s, "links"), 2, "{s}"); // top => d1/a, d2/x-link => d1/x
    let s = json_summary(&sync_ok(&src, &dst, &["-a", "-n", "--json"]));
    assert_eq!(actions(&s), 0, "{s}");
}

/// Each option alone replicates its attribute and leaves the others.
#[test]
fn each_option_alone() {
    let t = tmpfs_dir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    build(&src, 4 << 20);
    let fresh = |flag: &str| -> PathBuf {
        let d = t.path().join(format!("dst{flag}"));
        sync_ok(&src, &d, &[flag]);
        d
    };
    let d = fresh("-H");
    assert_eq!(ino(&d.join("d1/a")), ino(&d.join("top")));
    assert!(xattrs_of(&d.join("d1/x")).unwrap().is_empty());
    let d = fresh("-X");
    assert_eq!(
        xattrs_of(&d.join("d1/x"))
            .unwrap()
            .get(&b"user.color"[..])
            .unwrap(),
        b"blue"
    );
    assert!(xattrs_of(&d.join("capped"))
        .unwrap()
        .contains_key(&b"security.capability"[..]));
    assert!(
        xattrs_of(&d.join("acl")).unwrap().is_empty(),
        "-X alone leaves ACLs"
    );
    assert_ne!(ino(&d.join("d1/a")), ino(&d.join("top")));
    let d = fresh("-A");
    let acl = xattrs_of(&d.join("acl")).unwrap();
    assert!(
        acl.contains_key(&b"system.posix_acl_default"[..]),
        "{acl:?}"
    );
    assert!(xattrs_of(&d.join("acl/f"))
        .unwrap()
        .contains_key(&b"system.posix_acl_access"[..]));
    assert!(
        xattrs_of(&d.join("d1/x")).unwrap().is_empty(),
        "-A alone leaves user.*"
    );
    let d = fresh("-o");
    assert_eq!(
        (meta(&d.join("owned")).uid(), meta(&d.join("owned")).gid()),
        (65534, 0)
    );
    let d = fresh("-g");
    assert_eq!(
        (
            meta(&d.join("grouped")).uid(),
            meta(&d.join("grouped")).gid()
        ),
        (0, 65534)
    );
    assert_eq!(meta(&d.join("owned")).uid(), 0);
    let d = fresh("-S");
    let (s, c) = (meta(&src.join("sparse")), meta(&d.join("sparse")));
    assert_eq!(c.len(), s.len());
    assert!(
        c.blocks() <= s.blocks() + 3 * 8,
        "{} vs {}",
        c.blocks(),
        s.blocks()
    );
    let d = fresh("--numeric-ids");
    assert_eq!(
        meta(&d.join("owned")).uid(),
        0,
        "--numeric-ids alone changes nothing"
    );
    let d = t.path().join("dst-numeric");
    sync_ok(&src, &d, &["-a", "--numeric-ids"]);
    assert_exact(&src, &d);
}

/// As uid 65534, `-o -g` cannot give files to root: one warning, the rest
/// synced, exit 2; without `-o -g` the same run exits 0.
#[test]
fn non_root_owner_is_one_warning_and_exit_2() {
    use std::os::unix::fs::PermissionsExt;
    let t = tmpfs_dir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    for f in ["r1", "r2", "r3"] {
        write(&src.join(f), f);
    }
    write(&src.join("mine"), "mine");
    chown(src.join("mine"), Some(65534), Some(65534)).unwrap();
    std::fs::create_dir(&dst).unwrap();
    chown(&dst, Some(65534), Some(65534)).unwrap();
    for d in [t.path(), &src] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = |extra: &[&str]| {
        let mut v: Vec<&std::ffi::OsStr> = extra.iter().map(std::ffi::OsStr::new).collect();
        v.push(src.as_os_str());
        v.push(dst.as_os_str());
        run_as(Some(65534), None, &v)
    };
    let out = run(&["-o", "-g"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert!(err.contains("cannot set owner or group"), "{err}");
    for f in ["r1", "r2", "r3", "mine"] {
        assert_eq!(
            std::fs::read(dst.join(f)).unwrap(),
            std::fs::read(src.join(f)).unwrap()
        );
    }
    assert_eq!(meta(&dst.join("mine")).uid(), 65534);
    let out = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The exact comparator sees each kind of difference.
#[test]
fn exact_comparator_sees_every_attribute() {
    let t = tmpfs_dir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    build(&src, 4 << 20);
    type Mutation = (&'static str, fn(&Path), &'static str);
    let cases: [Mutation; 6] = [
        (
            "chown",
            |d| chown(d.join("owned"), Some(1), None).unwrap(),
            "owner",
        ),
        (
            "setfattr",
            |d| set_xattr(&d.join("d1/x"), "user.color", b"green"),
            "xattrs",
        ),
        (
            "setfacl",
            |d| {
                set_xattr(
                    &d.join("acl/f"),
                    "system.posix_acl_access",
                    &acl_for_user(2, 4),
                )
            },
            "xattrs",
        ),
        (
            "break a link",
            |d| break_link(&d.join("d2/b")),
            "hard links",
        ),
        (
            "fill the holes",
            |d| {
                let m = meta(&d.join("sparse"));
                let data = std::fs::read(d.join("sparse")).unwrap();
                std::fs::write(d.join("sparse"), data).unwrap();
                set_mtime(&d.join("sparse"), filetime_of(&m));
            },
            "allocation",
        ),
        (
            "drop the capability",
            |d| remove_xattr(&d.join("capped"), "security.capability"),
            "xattrs",
        ),
    ];
    for (what, mutate, want) in cases {
        let _ = std::fs::remove_dir_all(&dst);
        sync_ok(&src, &dst, &["-a"]);
        assert!(exact_diff(&src, &dst).unwrap().is_empty());
        mutate(&dst);
        let d = exact_diff(&src, &dst).unwrap();
        assert!(d.iter().any(|l| l.contains(want)), "{what}: {d:?}");
    }
}

//! `-a` and its parts (-H -A -X -o -g -S, reflinks): an exact replica on
//! tmpfs and on a loop-mounted btrfs, as root and (owner) as uid 65534.

mod common;
use common::exact::{assert_exact, exact_diff, xattrs_of};
use common::*;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A v2 `security.capability` value: cap_net_raw, effective.
const CAP: &str = "0x0100000200200000000000000000000000000000";

fn sh(script: &str) {
    let out = Command::new("bash")
        .arg("-ec")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// A directory on tmpfs.
fn shm() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dirsync-fid-")
        .tempdir_in("/dev/shm")
        .unwrap()
}

fn meta(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap()
}

/// A SRC with every attribute `-a` replicates; the sparse file has
/// `sparse_len` bytes with three 4 KiB extents.
fn build(src: &Path, sparse_len: u64) {
    sh(&format!(
        "cd {s}; mkdir -p d1 d2 acl; echo one >d1/a; ln d1/a d2/b; ln d1/a top
         echo two >d1/x; setfattr -n user.color -v blue d1/x
         echo three >acl/f; setfacl -m u:nobody:rw acl/f; setfacl -d -m u:nobody:rx acl
         echo four >owned; chown 65534:65534 owned
         echo five >grouped; chgrp 65534 grouped
         printf '#!/bin/sh\\n' >capped; chmod 755 capped
         setfattr -n security.capability -v {CAP} capped
         truncate -s {sparse_len} sparse
         for off in 0 $(({sparse_len} / 2)) $(({sparse_len} - 4096)); do
           dd if=/dev/urandom of=sparse bs=4096 count=1 seek=$((off / 4096)) conv=notrunc status=none
         done",
        s = q(src)
    ));
}

fn ino(p: &Path) -> u64 {
    meta(p).ino()
}

#[test]
fn archive_is_an_exact_replica_and_a_resync_fixes_each_attribute_in_place() {
    assert!(is_root(), "the fidelity tests run as root (CI does)");
    let t = shm();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    build(&src, 64 << 20);
    sync_ok(&src, &dst, &["-a"]);
    assert_exact(&src, &dst);
    assert_eq!(ino(&dst.join("d1/a")), ino(&dst.join("d2/b")));
    assert_eq!(
        actions(&json_summary(&sync_ok(&src, &dst, &["-a", "--json"]))),
        0
    );

    // Attributes only: fixed without a copy (same DST inode).
    let owned = ino(&dst.join("owned"));
    sh(&format!(
        "cd {s}; chown 1:1 owned; setfattr -n user.color -v red d1/x
         setfattr -n user.new -v 1 d1/a; setfacl -m u:daemon:r acl/f; setfacl -d -m u:daemon:r acl
         setfattr -x security.capability capped; setfattr -n security.capability -v {CAP} capped",
        s = q(&src)
    ));
    let s = json_summary(&sync_ok(&src, &dst, &["-a", "--json"]));
    assert_eq!(counter(&s, "copied"), 0, "{s}");
    assert_eq!(ino(&dst.join("owned")), owned);
    assert_exact(&src, &dst);

    // Links added and broken, a new hole at the end.
    sh(&format!(
        "cd {s}; ln d1/x d2/x-link; cp -p d2/b d2/b.new; mv d2/b.new d2/b
         truncate -s $((128 << 20)) sparse",
        s = q(&src)
    ));
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
}

/// Each option alone replicates its attribute and leaves the others.
#[test]
fn each_option_alone() {
    let t = shm();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    build(&src, 64 << 20);
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
    let t = shm();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    sh(&format!(
        "chmod 755 {t}; cd {s}; for f in r1 r2 r3; do echo $f >$f; done
         echo mine >mine; chown 65534:65534 mine; chmod 755 {s}
         mkdir {d}; chown 65534:65534 {d}",
        t = q(t.path()),
        s = q(&src),
        d = q(&dst)
    ));
    let args = |extra: &[&str]| -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = extra.iter().map(Into::into).collect();
        v.push(src.clone().into());
        v.push(dst.clone().into());
        v
    };
    let a = args(&["-o", "-g"]);
    let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
    let out = run_as(Some(65534), None, &refs);
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
    let a = args(&[]);
    let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
    let out = run_as(Some(65534), None, &refs);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A btrfs image made and loop-mounted for one test, unmounted on drop.
struct Btrfs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl Btrfs {
    fn new() -> Btrfs {
        let dir = tempfile::Builder::new()
            .prefix("dirsync-btrfs-")
            .tempdir()
            .unwrap();
        let (img, mnt) = (dir.path().join("img"), dir.path().join("mnt"));
        sh(&format!(
            "truncate -s 512M {i}; mkfs.btrfs -q {i}; mkdir {m}; mount -o loop {i} {m}",
            i = q(&img),
            m = q(&mnt)
        ));
        Btrfs { _dir: dir, mnt }
    }
}

impl Drop for Btrfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
    }
}

fn shared_extents(p: &Path) -> bool {
    let out = Command::new("filefrag").arg("-v").arg(p).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).contains("shared")
}

#[test]
fn btrfs_exact_replica_reflinks_and_a_sparse_gib() {
    let fs = Btrfs::new();
    let (src, dst, dst2) = (fs.mnt.join("src"), fs.mnt.join("dst"), fs.mnt.join("dst2"));
    std::fs::create_dir(&src).unwrap();
    build(&src, 1 << 30);
    sh(&format!("head -c 3M /dev/urandom >{}", q(&src.join("big"))));
    let out = sync_ok(&src, &dst, &["-a", "-v"]);
    assert!(out.contains("Cloned:"), "-v shows the clone: {out}");
    assert!(shared_extents(&dst.join("big")));
    assert_exact(&src, &dst);
    assert!(meta(&dst.join("sparse")).blocks() <= meta(&src.join("sparse")).blocks() + 3 * 8);

    let out = sync_ok(&src, &dst2, &["-a", "-v", "--no-reflink"]);
    assert!(!out.contains("Cloned:"), "{out}");
    assert!(!shared_extents(&dst2.join("big")));
    let (s, d) = (meta(&src.join("sparse")), meta(&dst2.join("sparse")));
    assert!(
        d.blocks() <= s.blocks() + 3 * 8,
        "sparse copy: {} vs {}",
        d.blocks(),
        s.blocks()
    );
    assert_exact(&src, &dst2);
    assert_eq!(
        actions(&json_summary(&sync_ok(&src, &dst2, &["-a", "--json"]))),
        0
    );
}

/// The exact comparator sees each kind of difference.
#[test]
fn exact_comparator_sees_every_attribute() {
    let t = shm();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    build(&src, 64 << 20);
    let cases: [(&str, &str); 6] = [
        ("chown 1 owned", "owner"),
        ("setfattr -n user.color -v green d1/x", "xattrs"),
        ("setfacl -m u:daemon:r acl/f", "xattrs"),
        ("cp -p d2/b d2/b.n; mv d2/b.n d2/b", "hard links"),
        (
            "cp -p --sparse=never sparse s.n; mv s.n sparse",
            "allocation",
        ),
        ("setfattr -x security.capability capped", "xattrs"),
    ];
    for (mutate, want) in cases {
        let _ = std::fs::remove_dir_all(&dst);
        sync_ok(&src, &dst, &["-a"]);
        assert!(exact_diff(&src, &dst).unwrap().is_empty());
        sh(&format!("cd {}; {mutate}", q(&dst)));
        let d = exact_diff(&src, &dst).unwrap();
        assert!(d.iter().any(|l| l.contains(want)), "{mutate}: {d:?}");
    }
}

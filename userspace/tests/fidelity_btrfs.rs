//! `-a` on a loop-mounted btrfs that the test makes: reflinked copies
//! (shared extents, `Cloned:` in `-v`), `--no-reflink`, a sparse GiB,
//! ACLs and attributes on a file system that stores them. Host only: the
//! test VM has neither btrfs nor loop devices nor mkfs.btrfs
//! (qemu/stage-userspace.sh leaves this executable out).

mod common;
use common::exact::*;
use common::*;

use std::os::unix::fs::{chown, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn meta(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap()
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
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
        std::fs::File::create(&img)
            .unwrap()
            .set_len(512 << 20)
            .unwrap();
        run_ok(Command::new("mkfs.btrfs").arg("-q").arg(&img));
        std::fs::create_dir(&mnt).unwrap();
        run_ok(
            Command::new("mount")
                .arg("-o")
                .arg("loop")
                .arg(&img)
                .arg(&mnt),
        );
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
    build(&src);
    let mut rng = Rng(7);
    let big: Vec<u8> = (0..3 << 20).map(|_| rng.next() as u8).collect();
    std::fs::write(src.join("big"), big).unwrap();
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

/// Hard links across directories, ACLs with a default ACL, `user.*` and
/// `security.capability`, owners, a sparse GiB with three extents.
fn build(src: &Path) {
    for d in ["d1", "d2", "acl"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    std::fs::write(src.join("d1/a"), "one").unwrap();
    std::fs::hard_link(src.join("d1/a"), src.join("d2/b")).unwrap();
    std::fs::write(src.join("acl/f"), "acl").unwrap();
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
    set_xattr(&src.join("d1/a"), "user.k", b"v");
    std::fs::write(src.join("capped"), "#!/bin/sh").unwrap();
    set_xattr(&src.join("capped"), "security.capability", &CAP_NET_RAW);
    chown(src.join("d2"), Some(65534), Some(65534)).unwrap();
    write_sparse(&src.join("sparse"), 1 << 30);
}

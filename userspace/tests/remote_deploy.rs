//! `--deploy` through a real sshd: the remote cache directory must be
//! private to the user. A cache that is a symlink (to another user's
//! directory), group-writable, or owned by someone else is refused with a
//! clear message (exit 3) before anything is uploaded into it or run from
//! it, even an agent there with the right name and content; a missing one
//! is created mode 0700, and the upload leaves no temporary behind.

mod common;
use common::sshd::Sshd;
use common::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

/// Someone else (nobody).
const OTHER: u32 = 65534;

/// The name the deploy script gives this binary in the cache.
fn agent_name() -> String {
    let o = std::process::Command::new("sha256sum")
        .arg(bin())
        .output()
        .unwrap();
    let hash = String::from_utf8(o.stdout).unwrap();
    format!("agent-{}-{}", env!("CARGO_PKG_VERSION"), &hash[..16])
}

/// `dirsync --deploy src 127.0.0.1:dst` with `XDG_CACHE_HOME=cache`.
fn deploy(sshd: &Sshd, cache: &Path, src: &Path, dst: &Path) -> Output {
    let rsh = format!(
        "{} -o SetEnv=XDG_CACHE_HOME={}",
        sshd.rsh(),
        cache.display()
    );
    let mut c = cmd([
        "-e",
        &rsh,
        "--remote-path",
        "/nonexistent/dirsync",
        "--deploy",
    ]);
    c.arg(src).arg(sshd::remote(dst)).output().unwrap()
}

fn listing_of(dir: &Path) -> Vec<(PathBuf, u64, u32)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let m = e.as_ref().unwrap().metadata().unwrap();
            (e.unwrap().path(), m.ino(), m.mode())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_cache_directory_that_is_not_private_is_refused() {
    if !is_root() {
        // Making directories owned by someone else needs root (CI runs
        // the tests as root); say so instead of passing quietly.
        panic!("this test needs root (chown to another user)");
    }
    let sshd = Sshd::shared();
    let t = tempdir();
    let src = t.path().join("src");
    build_sample_tree(&src);
    let name = agent_name();
    // Each cache holds a working agent (this very binary) under the
    // right name: run from there, it would sync.
    let plant = |dir: &Path| {
        std::fs::copy(bin(), dir.join(&name)).unwrap();
        std::fs::set_permissions(dir.join(&name), PermissionsExt::from_mode(0o755)).unwrap();
    };
    let chown = |p: &Path, uid: u32| std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
    let mut cases: Vec<(&str, PathBuf, PathBuf)> = Vec::new();
    // A symlink to another user's directory.
    {
        let cache = t.path().join("c-symlink");
        std::fs::create_dir(&cache).unwrap();
        let theirs = t.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        plant(&theirs);
        chown(&theirs, OTHER);
        std::os::unix::fs::symlink(&theirs, cache.join("dirsync")).unwrap();
        cases.push(("symlink", cache, theirs));
    }
    // Ours, but group-writable.
    {
        let cache = t.path().join("c-group");
        let d = cache.join("dirsync");
        std::fs::create_dir_all(&d).unwrap();
        plant(&d);
        std::fs::set_permissions(&d, PermissionsExt::from_mode(0o770)).unwrap();
        cases.push(("group-writable", cache, d));
    }
    // Writable by others (sticky or not).
    {
        let cache = t.path().join("c-other");
        let d = cache.join("dirsync");
        std::fs::create_dir_all(&d).unwrap();
        plant(&d);
        std::fs::set_permissions(&d, PermissionsExt::from_mode(0o1777)).unwrap();
        cases.push(("world-writable", cache, d));
    }
    // Owned by someone else, mode 0755.
    {
        let cache = t.path().join("c-owner");
        let d = cache.join("dirsync");
        std::fs::create_dir_all(&d).unwrap();
        plant(&d);
        chown(&d, OTHER);
        std::fs::set_permissions(&d, PermissionsExt::from_mode(0o755)).unwrap();
        cases.push(("other owner", cache, d));
    }
    for (what, cache, dir) in cases {
        let before = listing_of(&dir);
        let dst = t.path().join(format!("dst-{}", what.replace(' ', "-")));
        let o = deploy(sshd, &cache, &src, &dst);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{what}: {err}");
        assert!(
            err.contains("refusing the agent cache") && err.contains("127.0.0.1"),
            "{what}: {err}"
        );
        assert!(!dst.exists(), "{what}: an agent ran from the cache");
        assert_eq!(listing_of(&dir), before, "{what}: the cache changed");
    }
}

/// The normal case: a missing cache is created private (0700), the agent
/// is uploaded once with no temporary left behind, then reused.
#[test]
fn a_missing_cache_is_created_private_and_reused() {
    let sshd = Sshd::shared();
    let t = tempdir();
    let src = t.path().join("src");
    build_sample_tree(&src);
    let cache = t.path().join("cache");
    let o = deploy(sshd, &cache, &src, &t.path().join("dst1"));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_trees_equal(&src, &t.path().join("dst1"));
    let d = cache.join("dirsync");
    let m = std::fs::symlink_metadata(&d).unwrap();
    assert!(m.is_dir());
    assert_eq!(m.mode() & 0o7777, 0o700);
    let names: Vec<_> = listing_of(&d).into_iter().map(|e| e.0).collect();
    assert_eq!(names, vec![d.join(agent_name())], "a temporary was left");
    let ino = std::fs::metadata(d.join(agent_name())).unwrap().ino();
    let o = deploy(sshd, &cache, &src, &t.path().join("dst2"));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_trees_equal(&src, &t.path().join("dst2"));
    assert_eq!(std::fs::metadata(d.join(agent_name())).unwrap().ino(), ino);
}

//! `dirsync --two-way -o -g -X` (and `-a`): an owner, group or `user.*`
//! attribute change on one side reaches the other without its content
//! being copied (same inode on the receiving side), different attribute
//! changes on both sides are one metadata conflict won by the newer
//! change and never a conflict copy, and `-a` with a remote side or
//! `-H/-A/-S` is refused (exit 1, nothing written).

mod common;
mod twoway_util;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::exact::{remove_xattr, set_xattr, xattrs_of};
use twoway_util::{conflicts, ino, put, Pair};

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

fn user_attrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    xattrs_of(p)
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.starts_with(b"user."))
        .collect()
}

/// A synced pair with `f` (content "data") and the directory `d`, run with
/// `flags`.
fn synced(flags: &[&str]) -> Pair {
    let p = Pair::new();
    put(&p.a, "f", b"data");
    put(&p.a, "d/g", b"in d");
    let s = json(&p, flags);
    assert_eq!(s["errors"], 0, "{s}");
    p
}

fn json(p: &Pair, flags: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(flags);
    let out = p.run_code(&args, 0);
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

#[test]
fn owner_and_group_change_propagates_without_content() {
    if !common::is_root() {
        eprintln!("needs root for chown: not run");
        return;
    }
    let p = synced(&["-o", "-g"]);
    let before = ino(&p.b, "f");
    chown(&p.a.join("f"), 1234, 5678);
    chown(&p.b.join("d"), 4321, 8765);
    let s = json(&p, &["-o", "-g"]);
    assert_eq!(owner(&p.b.join("f")), (1234, 5678));
    assert_eq!(owner(&p.a.join("d")), (4321, 8765));
    // Attributes only: no content copied, the same inode on B.
    assert_eq!(s["copied"], 0, "{s}");
    assert_eq!(s["attrs"], 2, "{s}");
    assert_eq!(s["conflicts"], 0, "{s}");
    assert_eq!(ino(&p.b, "f"), before);
    // A second run changes nothing.
    let s = json(&p, &["-o", "-g"]);
    assert_eq!(s["attrs"], 0, "{s}");
    assert_eq!(s["copied"], 0, "{s}");
    // Without -o -g, owners are not compared: nothing to do either.
    chown(&p.a.join("f"), 1, 1);
    let s = json(&p, &[]);
    assert_eq!(s["attrs"], 0, "{s}");
    assert_eq!(owner(&p.b.join("f")), (1234, 5678));
}

#[test]
fn user_xattr_change_propagates_without_content() {
    let p = synced(&["-X"]);
    let before = ino(&p.a, "f");
    set_xattr(&p.b.join("f"), "user.tag", b"blue");
    set_xattr(&p.b.join("d"), "user.dir", b"x");
    let s = json(&p, &["-X"]);
    assert_eq!(
        user_attrs(&p.a.join("f")),
        [(b"user.tag".to_vec(), b"blue".to_vec())]
    );
    assert_eq!(
        user_attrs(&p.a.join("d")),
        [(b"user.dir".to_vec(), b"x".to_vec())]
    );
    assert_eq!(s["copied"], 0, "{s}");
    assert_eq!(s["attrs"], 2, "{s}");
    assert_eq!(ino(&p.a, "f"), before);
    // A removal propagates too.
    remove_xattr(&p.a.join("f"), "user.tag");
    let s = json(&p, &["-X"]);
    assert_eq!(s["attrs"], 1, "{s}");
    assert!(user_attrs(&p.b.join("f")).is_empty());
    let s = json(&p, &["-X"]);
    assert_eq!(s["attrs"], 0, "{s}");
    // A new file carries its attributes.
    put(&p.b, "new", b"n");
    set_xattr(&p.b.join("new"), "user.k", b"v");
    let s = json(&p, &["-X"]);
    assert_eq!(s["copied"], 1, "{s}");
    assert_eq!(
        user_attrs(&p.a.join("new")),
        [(b"user.k".to_vec(), b"v".to_vec())]
    );
    let s = json(&p, &["-X"]);
    assert_eq!(s["attrs"], 0, "{s}");
}

#[test]
fn different_attribute_changes_are_one_metadata_conflict_newer_wins() {
    let p = synced(&["-a"]);
    set_xattr(&p.a.join("f"), "user.tag", b"from a");
    // B's change is the newer one (its ctime is later).
    std::thread::sleep(std::time::Duration::from_millis(20));
    set_xattr(&p.b.join("f"), "user.tag", b"from b");
    let (ia, ib) = (ino(&p.a, "f"), ino(&p.b, "f"));
    let out = p.run_code(&["--json", "-a"], 0);
    let s: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(s["conflicts"], 1, "{s}");
    assert_eq!(s["copied"], 0, "{s}");
    assert!(
        out.lines().any(|l| l.contains("\"action\":\"conflict\"")),
        "{out}"
    );
    for root in [&p.a, &p.b] {
        assert_eq!(
            user_attrs(&root.join("f")),
            [(b"user.tag".to_vec(), b"from b".to_vec())]
        );
        assert_eq!(std::fs::read(root.join("f")).unwrap(), b"data");
        // No conflict copy for an attribute conflict.
        assert!(conflicts(root, "").is_empty(), "{:?}", conflicts(root, ""));
    }
    assert_eq!((ino(&p.a, "f"), ino(&p.b, "f")), (ia, ib));
    let s = json(&p, &["-a"]);
    assert_eq!(s["conflicts"], 0, "{s}");
    assert_eq!(s["attrs"], 0, "{s}");
}

#[test]
fn refused_flags_are_usage_errors() {
    let p = Pair::new();
    put(&p.a, "f", b"x");
    for flags in [&["-H"][..], &["-A"], &["-S"]] {
        let o = p.run(flags);
        assert_eq!(o.status.code(), Some(1), "{flags:?}");
    }
    assert!(!p.b.join("f").exists());
    assert!(!p.state.exists());
    // A remote side with -a, -X, -o or -g (refused before connecting).
    for flags in [&["-a"][..], &["-X"], &["-o"], &["-g"]] {
        let o = common::run(
            [
                &["--two-way"][..],
                flags,
                &[p.a.to_str().unwrap(), "127.0.0.1:/nonexistent"],
            ]
            .concat(),
        );
        assert_eq!(o.status.code(), Some(1), "{flags:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("remote"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

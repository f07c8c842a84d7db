//! Two-way sync on real trees, both sides local: one scenario per case of
//! the reconciler (issue 18, point 2), renames, the re-check before a
//! replace, `--json`, `-n` and the lock.

mod common;
mod twoway_util;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use twoway_util::*;

fn read(p: &std::path::Path, rel: &str) -> Vec<u8> {
    std::fs::read(p.join(rel)).unwrap()
}

/// A pair synced once with `f.txt` and `d/g` on both sides.
fn synced() -> Pair {
    let p = Pair::new();
    put(&p.a, "f.txt", b"base");
    put(&p.a, "d/g", b"gee");
    mtime(&p.a, "f.txt", 1_000_000);
    p.converge();
    p
}

#[test]
fn unchanged_run_changes_nothing_and_first_run_is_a_union() {
    let p = Pair::new();
    put(&p.a, "only_a", b"1");
    put(&p.b, "only_b/x", b"2");
    put(&p.a, "same", b"s");
    put(&p.b, "same", b"s");
    let s = p.sync();
    assert_eq!(s["copied"], 2);
    assert_eq!(s["conflicts"], 0);
    let snap = p.converge();
    assert!(
        snap.contains_key("only_a") && snap.contains_key("only_b/x") && snap.contains_key("same")
    );
}

#[test]
fn a_change_on_one_side_propagates_either_way() {
    let p = synced();
    put(&p.a, "f.txt", b"from a, longer");
    put(&p.b, "d/g", b"from b");
    put(&p.b, "d/new", b"new on b");
    let s = p.sync();
    assert_eq!(s["copied"], 3, "{s}");
    assert_eq!(read(&p.b, "f.txt"), b"from a, longer");
    assert_eq!(read(&p.a, "d/g"), b"from b");
    assert_eq!(read(&p.a, "d/new"), b"new on b");
    p.converge();
}

#[test]
fn identical_changes_are_only_recorded_and_the_newer_mtime_wins() {
    let p = synced();
    put(&p.a, "f.txt", b"same edit");
    put(&p.b, "f.txt", b"same edit");
    mtime(&p.a, "f.txt", 2_000_000);
    mtime(&p.b, "f.txt", 2_000_500);
    let s = p.sync();
    assert_eq!(
        (s["copied"].as_u64(), s["conflicts"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    let ma = std::fs::metadata(p.a.join("f.txt")).unwrap().mtime();
    let mb = std::fs::metadata(p.b.join("f.txt")).unwrap().mtime();
    assert_eq!((ma, mb), (2_000_500, 2_000_500));
    assert!(conflicts(&p.a, "").is_empty());
    p.converge();
}

#[test]
fn different_changes_keep_both_versions_on_both_sides() {
    let p = synced();
    put(&p.a, "f.txt", b"edit on a");
    put(&p.b, "f.txt", b"edit on b (newer)");
    mtime(&p.a, "f.txt", 3_000_000);
    mtime(&p.b, "f.txt", 3_000_100);
    let out = p.run_code(&["--json"], 0);
    let ev: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let c: Vec<_> = ev.iter().filter(|e| e["action"] == "conflict").collect();
    assert_eq!(c.len(), 1, "{out}");
    assert_eq!(ev.last().unwrap()["conflicts"], 1);
    assert_eq!(ev.last().unwrap()["exit"], 0);
    assert_eq!(read(&p.a, "f.txt"), b"edit on b (newer)");
    let names = conflicts(&p.a, "");
    assert_eq!(names.len(), 1);
    let n = &names[0];
    // A's label: `a`, or its host when A is remote (`twoway_remote_a`).
    let la = label_a();
    assert!(
        n.starts_with("f.sync-conflict-") && n.ends_with(&format!("-{la}.txt")),
        "{n}"
    );
    assert_eq!(
        n.len(),
        format!("f.sync-conflict-20261207-101500-{la}.txt").len(),
        "{n}"
    );
    assert_eq!(read(&p.a, n), b"edit on a");
    assert_eq!(c[0]["copy"].as_str().unwrap(), shown_a(&p.a.join(n)));
    p.converge();
}

#[test]
fn conflict_policies() {
    for (policy, winner, loser_kept) in [
        (["--conflict", "a", ""], &b"edit on a"[..], true),
        (["--conflict", "b", ""], &b"edit on b"[..], true),
        (["--conflict", "newer", ""], &b"edit on a"[..], true),
        (
            ["--conflict", "b", "--conflict-delete-loser"],
            &b"edit on b"[..],
            false,
        ),
    ] {
        let p = synced();
        put(&p.a, "f.txt", b"edit on a");
        put(&p.b, "f.txt", b"edit on b");
        mtime(&p.b, "f.txt", 3_000_000);
        mtime(&p.a, "f.txt", 3_000_100);
        let args: Vec<&str> = policy.iter().copied().filter(|s| !s.is_empty()).collect();
        p.run_code(&args, 0);
        assert_eq!(read(&p.a, "f.txt"), winner, "{policy:?}");
        assert_eq!(read(&p.b, "f.txt"), winner, "{policy:?}");
        assert_eq!(
            conflicts(&p.b, "").len(),
            usize::from(loser_kept),
            "{policy:?}"
        );
        p.converge();
    }
}

#[test]
fn modification_beats_deletion_and_double_deletion_is_forgotten() {
    let p = synced();
    put(&p.a, "f.txt", b"modified on a");
    std::fs::remove_file(p.b.join("f.txt")).unwrap();
    std::fs::remove_file(p.a.join("d/g")).unwrap();
    std::fs::remove_file(p.b.join("d/g")).unwrap();
    let s = p.sync();
    assert_eq!(s["deleted"], 0, "{s}");
    assert_eq!(read(&p.b, "f.txt"), b"modified on a");
    assert!(!p.a.join("d/g").exists() && !p.b.join("d/g").exists());
    // Now a plain deletion propagates.
    std::fs::remove_file(p.b.join("f.txt")).unwrap();
    let s = p.sync();
    assert_eq!(s["deleted"], 1, "{s}");
    assert!(!p.a.join("f.txt").exists());
    p.converge();
}

#[test]
fn type_changes() {
    // One side: a file became a directory on A.
    let p = synced();
    std::fs::remove_file(p.a.join("f.txt")).unwrap();
    put(&p.a, "f.txt/inside", b"i");
    p.sync();
    assert_eq!(read(&p.b, "f.txt/inside"), b"i");
    p.converge();
    // Both: a directory on A, a modified file on B: the directory keeps
    // the name, the file becomes a conflict copy on both sides.
    let p = synced();
    std::fs::remove_file(p.a.join("f.txt")).unwrap();
    put(&p.a, "f.txt/x", b"x");
    put(&p.b, "f.txt", b"b's edit");
    let s = p.sync();
    assert_eq!(s["conflicts"], 1, "{s}");
    assert_eq!(read(&p.b, "f.txt/x"), b"x");
    let names = conflicts(&p.a, "");
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(read(&p.a, &names[0]), b"b's edit");
    p.converge();
}

#[test]
fn deleted_directory_keeps_what_changed_below_it_on_the_other_side() {
    let p = Pair::new();
    put(&p.a, "d/keep/changed", b"old");
    put(&p.a, "d/keep/same", b"s");
    put(&p.a, "d/other", b"o");
    put(&p.a, "root_file", b"r");
    p.converge();
    std::fs::remove_dir_all(p.a.join("d")).unwrap();
    put(&p.b, "d/keep/changed", b"new content");
    put(&p.b, "d/keep/added", b"added");
    p.sync();
    let snap = p.converge();
    let keys: Vec<_> = snap.keys().cloned().collect();
    assert_eq!(
        keys,
        ["d", "d/keep", "d/keep/added", "d/keep/changed", "root_file"]
    );
    assert_eq!(read(&p.a, "d/keep/changed"), b"new content");
}

#[test]
fn mode_changes_propagate_and_different_ones_are_a_metadata_conflict() {
    let p = synced();
    std::fs::set_permissions(p.a.join("f.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(p.b.join("d"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let ino_b = ino(&p.b, "f.txt");
    let s = p.sync();
    assert_eq!(
        (s["attrs"].as_u64(), s["copied"].as_u64()),
        (Some(2), Some(0)),
        "{s}"
    );
    assert_eq!(
        std::fs::metadata(p.b.join("f.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(p.a.join("d"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o700
    );
    assert_eq!(
        ino(&p.b, "f.txt"),
        ino_b,
        "a mode change copied the content"
    );
    std::fs::set_permissions(p.a.join("f.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::set_permissions(p.b.join("f.txt"), std::fs::Permissions::from_mode(0o604)).unwrap();
    let s = p.sync();
    assert_eq!(
        (s["conflicts"].as_u64(), s["copied"].as_u64()),
        (Some(1), Some(0)),
        "{s}"
    );
    assert!(
        conflicts(&p.a, "").is_empty(),
        "content duplicated for a mode conflict"
    );
    p.converge();
}

#[test]
fn renames_are_replayed_as_renames() {
    let p = Pair::new();
    for i in 0..100 {
        put(
            &p.a,
            &format!("tree/sub/f{i}"),
            format!("content {i}").as_bytes(),
        );
    }
    put(&p.a, "file", b"a file");
    p.converge();
    let (tree_ino, file_ino) = (ino(&p.b, "tree"), ino(&p.b, "file"));
    std::fs::rename(p.a.join("tree"), p.a.join("moved")).unwrap();
    std::fs::rename(p.a.join("file"), p.a.join("moved/file2")).unwrap();
    let s = p.sync();
    assert_eq!(
        (
            s["renamed"].as_u64(),
            s["copied"].as_u64(),
            s["deleted"].as_u64()
        ),
        (Some(2), Some(0), Some(0)),
        "{s}"
    );
    assert_eq!(ino(&p.b, "moved"), tree_ino);
    assert_eq!(ino(&p.b, "moved/file2"), file_ino);
    p.converge();
    // B renames back.
    std::fs::rename(p.b.join("moved"), p.b.join("back")).unwrap();
    let s = p.sync();
    assert_eq!(
        (s["renamed"].as_u64(), s["copied"].as_u64()),
        (Some(1), Some(0)),
        "{s}"
    );
    assert!(p.a.join("back/sub/f99").exists());
    p.converge();
}

#[test]
fn a_rename_on_one_side_and_an_edit_on_the_other_keep_both_contents() {
    let p = synced();
    std::fs::rename(p.a.join("f.txt"), p.a.join("renamed.txt")).unwrap();
    put(&p.b, "f.txt", b"edited on b");
    p.sync();
    let snap = p.converge();
    assert_eq!(snap["renamed.txt"], Node::File(b"base".to_vec(), 0o644));
    assert_eq!(snap["f.txt"], Node::File(b"edited on b".to_vec(), 0o644));
}

#[test]
fn dry_run_writes_nothing_not_even_the_state_file() {
    let p = Pair::new();
    put(&p.a, "x", b"1");
    put(&p.b, "y", b"2");
    let out = p.run_code(&["-n", "-v"], 0);
    assert!(out.contains("Copied:"), "{out}");
    assert!(!p.state.parent().unwrap().exists());
    assert!(!p.b.join("x").exists() && !p.a.join("y").exists());
    p.converge();
    put(&p.a, "x", b"changed");
    std::fs::remove_file(p.b.join("y")).unwrap();
    let before = std::fs::read(&p.state).unwrap();
    p.run_code(&["-n"], 0);
    assert_eq!(read(&p.b, "x"), b"1");
    assert!(p.a.join("y").exists());
    assert_eq!(std::fs::read(&p.state).unwrap(), before);
}

#[test]
fn a_second_run_on_the_pair_waits_for_nobody_exit_3() {
    use std::os::fd::AsRawFd;
    let p = synced();
    let f = std::fs::File::open(&p.state).unwrap();
    // SAFETY: flock takes a descriptor (ours, open for the call) and
    // flags; it touches no memory.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(r, 0);
    put(&p.a, "new", b"n");
    let o = p.run(&[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("locked"));
    assert!(!p.b.join("new").exists());
    drop(f);
    p.converge();
}

/// A file written on B after the scan is re-checked before A's version
/// replaces it: it is kept, A's version goes beside it (syncthing#3742).
#[test]
fn a_file_changed_after_the_scan_is_never_overwritten() {
    use dirsync::report::{Event, Reporter};
    struct Meddle(std::path::PathBuf);
    impl Reporter for Meddle {
        fn event(&self, e: &Event<'_>) {
            if let Event::Copied { dst, .. } = e {
                if *dst == self.0.as_path() {
                    std::fs::write(dst, b"written during the run").unwrap();
                }
            }
        }
    }
    let p = synced();
    put(&p.a, "f.txt", b"a's change");
    let spec = dirsync::twoway::TwoWaySpec {
        a: p.a.clone(),
        b: p.b.clone(),
        state: Some(p.state.clone()),
        max_delete: 50,
        ..Default::default()
    };
    let rep = Meddle(p.b.join("f.txt"));
    let s = dirsync::twoway::run(&spec, &dirsync::sync::Options::default(), &rep).unwrap();
    assert_eq!(s.conflicts, 1);
    assert_eq!(read(&p.b, "f.txt"), b"written during the run");
    let names = conflicts(&p.b, "");
    assert_eq!(names.len(), 1);
    assert_eq!(read(&p.b, &names[0]), b"a's change");
    let snap = p.converge();
    assert_eq!(
        snap["f.txt"],
        Node::File(b"written during the run".to_vec(), 0o644)
    );
}

/// A symlink on one side where the other has a directory is never
/// followed: the directory keeps the name (a type conflict), the symlink
/// becomes a conflict copy, and the directory it points to (outside both
/// trees) is left exactly as it was.
#[test]
fn a_symlink_to_outside_the_tree_is_never_written_through() {
    let p = Pair::new();
    let outside = p.t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    put(&outside, "precious", b"keep me");
    put(&p.a, "d/file", b"from a");
    put(&p.a, "other", b"o");
    std::os::unix::fs::symlink(&outside, p.b.join("d")).unwrap();
    let s = p.sync();
    assert_eq!(s["conflicts"], 1, "{s}");
    assert_eq!(snapshot(&outside).len(), 1);
    assert_eq!(read(&outside, "precious"), b"keep me");
    assert!(std::fs::symlink_metadata(p.b.join("d")).unwrap().is_dir());
    assert_eq!(read(&p.b, "d/file"), b"from a");
    let names = conflicts(&p.b, "");
    assert_eq!(names.len(), 1);
    assert!(std::fs::symlink_metadata(p.b.join(&names[0]))
        .unwrap()
        .file_type()
        .is_symlink());
    p.converge();
    assert_eq!(snapshot(&outside).len(), 1);
}

/// Without -v a conflict is still shown (stderr), and it is not an error.
#[test]
fn conflicts_are_shown_without_verbose_and_exit_0() {
    let p = synced();
    put(&p.a, "f.txt", b"one");
    put(&p.b, "f.txt", b"other");
    let o = p.run(&[]);
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("Conflict: ") && err.contains(".sync-conflict-"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    let o = p.run(&["-q"]);
    assert!(o.stderr.is_empty() && o.status.success());
}

//! The guards of two-way sync (issue 18, point 4): a lost archive, an
//! emptied root, an unmounted root, too many deletions, a missing root.
//! Each stops with exit 3 and nothing changed, or (lost archive) syncs
//! the union without deleting anything.

mod common;
mod twoway_util;

use std::process::Command;
use twoway_util::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Ten files on both sides, synced.
fn ten() -> Pair {
    let p = Pair::new();
    for i in 0..10 {
        put(&p.a, &format!("d/f{i}"), format!("{i}").as_bytes());
    }
    p.converge();
    p
}

#[test]
fn a_lost_archive_means_union_and_conflicts_never_deletions() {
    let p = ten();
    std::fs::remove_file(&p.state).unwrap();
    std::fs::remove_file(p.a.join("d/f0")).unwrap();
    put(&p.b, "d/f1", b"changed on b");
    put(&p.a, "d/new", b"n");
    let s = p.sync();
    assert_eq!(s["deleted"], 0, "{s}");
    assert_eq!(s["conflicts"], 1, "{s}");
    let snap = p.converge();
    assert!(
        snap.contains_key("d/f0"),
        "a deletion propagated without an archive"
    );
    assert!(snap.contains_key("d/new"));
    let c = conflicts(&p.a, "d");
    assert_eq!(c.len(), 1);
    let both = [
        std::fs::read(p.a.join("d/f1")).unwrap(),
        std::fs::read(p.a.join("d").join(&c[0])).unwrap(),
    ];
    assert!(both.contains(&b"1".to_vec()) && both.contains(&b"changed on b".to_vec()));
}

#[test]
fn an_emptied_root_stops_the_run_until_force() {
    let p = ten();
    std::fs::remove_dir_all(p.a.join("d")).unwrap();
    let before = snapshot(&p.b);
    let o = p.run(&[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("is empty"), "{}", stderr(&o));
    assert_eq!(snapshot(&p.b), before, "B changed");
    p.run_code(&["--force", "--max-delete", "100"], 0);
    assert!(snapshot(&p.b).is_empty());
}

#[test]
fn an_unmounted_root_stops_the_run() {
    if !common::is_root() {
        panic!("this test mounts a tmpfs: run it as root (as CI does)");
    }
    let p = Pair::new();
    let mnt = p.b.clone();
    let mount = |args: &[&str]| {
        let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
        assert!(st.success(), "{args:?}");
    };
    mount(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=8m",
        "tmpfs",
        mnt.to_str().unwrap(),
    ]);
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let guard = Umount(mnt.clone());
    for i in 0..5 {
        put(&p.a, &format!("f{i}"), b"data");
    }
    p.converge();
    mount(&["umount", mnt.to_str().unwrap()]);
    std::mem::forget(guard);
    let a_before = snapshot(&p.a);
    // The empty mount point: empty root.
    let o = p.run(&[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(snapshot(&p.a), a_before);
    // Something in the mount point, on another device than the archive's.
    put(&p.b, "stray", b"s");
    let o = p.run(&[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("another device"), "{}", stderr(&o));
    assert_eq!(snapshot(&p.a), a_before);
    assert_eq!(snapshot(&p.b).len(), 1);
}

#[test]
fn too_many_deletions_stop_the_run() {
    let p = ten();
    for i in 0..6 {
        std::fs::remove_file(p.a.join(format!("d/f{i}"))).unwrap();
    }
    let before = snapshot(&p.b);
    let o = p.run(&["--max-delete", "50"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("--max-delete"), "{}", stderr(&o));
    assert_eq!(snapshot(&p.b), before);
    // 6 of 11 archived entries is 54%: a limit of 60 lets it through.
    let s = p.run_code(&["--max-delete", "60", "--json"], 0);
    assert!(s.contains("\"deleted\":6"), "{s}");
    p.converge();
}

#[test]
fn a_missing_root_is_exit_3() {
    let p = Pair::new();
    std::fs::remove_dir(&p.b).unwrap();
    let o = p.run(&[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(!p.b.exists());
    assert!(!p.state.exists());
}

//! Bad SRC/DST pairs are refused with a clear error, exit 3, and nothing
//! is touched.

mod common;
use common::*;

use std::path::Path;

fn refuse(src: &Path, dst: &Path, needle: &str) {
    let root = src.parent().unwrap().to_path_buf();
    let before = snapshot(&root);
    let o = cmd::<[&str; 0], &str>([])
        .arg(src)
        .arg(dst)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{} {}: {err}",
        src.display(),
        dst.display()
    );
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    assert!(err.starts_with("dirsync: "), "{err}");
    assert_eq!(o.stdout, b"");
    assert_eq!(before, snapshot(&root), "something was touched");
}

#[test]
fn missing_source() {
    let t = tempdir();
    let src = t.path().join("nope");
    let dst = t.path().join("dst");
    refuse(&src, &dst, "does not exist");
    assert!(!dst.exists());
}

#[test]
fn source_is_not_a_directory() {
    let t = tempdir();
    let src = t.path().join("file");
    std::fs::write(&src, b"x").unwrap();
    refuse(&src, &t.path().join("dst"), "is not a directory");
    // Nor a symlink to a file.
    std::os::unix::fs::symlink("file", t.path().join("link")).unwrap();
    refuse(
        &t.path().join("link"),
        &t.path().join("dst"),
        "is not a directory",
    );
}

#[test]
fn destination_is_a_file() {
    let t = tempdir();
    let src = t.path().join("src");
    build_sample_tree(&src);
    let dst = t.path().join("dst");
    std::fs::write(&dst, b"x").unwrap();
    refuse(&src, &dst, "is not a directory");
}

#[test]
fn destination_parent_missing() {
    let t = tempdir();
    let src = t.path().join("src");
    build_sample_tree(&src);
    refuse(
        &src,
        &t.path().join("no/such/dst"),
        "parent directory does not exist",
    );
}

#[test]
fn same_directory_in_every_spelling() {
    let t = tempdir();
    let src = t.path().join("src");
    build_sample_tree(&src);
    refuse(&src, &src, "same directory");
    refuse(&src, &t.path().join("src/."), "same directory");
    refuse(&src, &t.path().join("src/sub/.."), "same directory");
    std::os::unix::fs::symlink("src", t.path().join("alias")).unwrap();
    refuse(&src, &t.path().join("alias"), "same directory");
    refuse(&t.path().join("alias"), &src, "same directory");
}

#[test]
fn destination_inside_source() {
    let t = tempdir();
    let src = t.path().join("src");
    build_sample_tree(&src);
    refuse(&src, &src.join("sub"), "destination is inside the source");
    refuse(
        &src,
        &src.join("sub/not-yet"),
        "destination is inside the source",
    );
    refuse(
        &src,
        &src.join("new-dir"),
        "destination is inside the source",
    );
    // Through a symlink that leads back into SRC.
    std::os::unix::fs::symlink(src.join("sub"), t.path().join("back")).unwrap();
    refuse(
        &src,
        &t.path().join("back/x"),
        "destination is inside the source",
    );
}

#[test]
fn source_inside_destination() {
    let t = tempdir();
    let outer = t.path().join("outer");
    build_sample_tree(&outer);
    refuse(
        &outer.join("sub"),
        &outer,
        "source is inside the destination",
    );
    std::os::unix::fs::symlink(outer.join("sub"), t.path().join("inner")).unwrap();
    refuse(
        &t.path().join("inner"),
        &outer,
        "source is inside the destination",
    );
}

#[test]
fn dry_run_with_missing_destination_creates_nothing() {
    let t = tempdir();
    let src = t.path().join("src");
    build_sample_tree(&src);
    let dst = t.path().join("dst");
    let o = cmd(["-n", "-v"]).arg(&src).arg(&dst).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("Created directory: {}\n", dst.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Copied: {0}/sub/deeper/b -> {1}/sub/deeper/b",
            src.display(),
            dst.display()
        )),
        "{out}"
    );
    assert!(!dst.exists());
}

//! The tree comparator itself notices every kind of difference (the other
//! tests rely on it).

mod common;
use common::*;

#[test]
fn comparator_sees_every_difference() {
    let t = tempdir();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    build_sample_tree(&a);
    build_sample_tree(&b);
    // Same construction, different mtimes on the fresh entries: align them
    // by copying (the comparator must agree once dirsync made them equal).
    sync_ok(&a, &b, &[]);
    assert!(tree_diff(&a, &b).unwrap().is_empty());

    type Mutation = (&'static str, fn(&Dir), &'static str);
    let mutations: [Mutation; 9] = [
        (
            "content",
            |d| {
                let st = d.stat(b"small.txt").unwrap();
                d.write(b"small.txt", b"HELLO\n");
                d.set_mtime(b"small.txt", st.st_mtime, st.st_mtime_nsec);
            },
            "content differs",
        ),
        (
            "size",
            |d| {
                let st = d.stat(b"small.txt").unwrap();
                d.write(b"small.txt", b"hello!\n");
                d.set_mtime(b"small.txt", st.st_mtime, st.st_mtime_nsec);
            },
            "size",
        ),
        (
            "mtime ns",
            |d| {
                let st = d.stat(b"empty").unwrap();
                d.set_mtime(
                    b"empty",
                    st.st_mtime,
                    (st.st_mtime_nsec + 1) % 1_000_000_000,
                );
            },
            "mtime",
        ),
        ("mode", |d| d.chmod(b"private", 0o640), "mode"),
        (
            "link target",
            |d| {
                d.unlink(b"link-rel");
                d.symlink(b"link-rel", b"small.tx");
            },
            "target differs",
        ),
        (
            "type",
            |d| {
                d.unlink(b"empty");
                d.mkdir(b"empty", 0o755);
            },
            "type",
        ),
        ("missing", |d| d.unlink(b"-leading-dash"), "only in"),
        ("extra byte name", |d| d.write(b"\xfe", b""), "only in"),
        ("dir mtime", |d| d.set_mtime(b"sub", 1, 1), "mtime"),
    ];
    for (what, mutate, needle) in mutations {
        mutate(&Dir::open(&b));
        let d = tree_diff(&a, &b).unwrap();
        assert!(
            d.iter().any(|l| l.contains(needle)),
            "{what}: not detected: {d:?}"
        );
        // (Same size and mtime: only --checksum sees the content change.)
        sync_ok(&a, &b, &["--checksum"]);
        assert!(
            tree_diff(&a, &b).unwrap().is_empty(),
            "{what}: dirsync did not repair it"
        );
    }
}

/// A tree that cannot be read whole is an error, not a difference and
/// not a panic.
#[test]
fn comparator_reports_unreadable_trees_as_errors() {
    let t = tempdir();
    let a = t.path().join("a");
    build_sample_tree(&a);
    let err = tree_diff(&a, &t.path().join("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

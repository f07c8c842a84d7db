//! The one-shot mirror on a varied tree: exactness and idempotence.

mod common;
use common::*;

#[test]
fn sample_tree_is_replicated_exactly() {
    let t = tempdir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    build_sample_tree(&src);
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
}

#[test]
fn second_run_does_nothing_and_touches_nothing() {
    let t = tempdir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    build_sample_tree(&src);
    sync_ok(&src, &dst, &[]);
    let before = snapshot(&dst);
    let out = sync_ok(&src, &dst, &["--json"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "expected only the summary, got:\n{out}");
    assert!(lines[0].starts_with("{\"action\":\"summary\",\"copied\":0,\"bytes\":0,\"dirs_created\":0,\"links\":0,\"deleted\":0,\"attrs\":0,"), "{out}");
    let after = snapshot(&dst);
    assert_eq!(
        before, after,
        "a second run changed DST (mtimes, inodes or content)"
    );
    assert_trees_equal(&src, &dst);
}

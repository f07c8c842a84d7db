//! The one-shot mirror on a varied tree: exactness and idempotence.

mod common;
use common::*;

#[test]
fn sample_tree_is_replicated_exactly() {
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
}

#[test]
fn second_run_does_nothing_and_touches_nothing() {
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    sync_ok(&src, &dst, &[]);
    let before = snapshot(&dst);
    let out = sync_ok(&src, &dst, &["--json"]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "expected only the summary, got:\n{out}");
    let summary = json_summary(&out);
    assert_eq!(actions(&summary), 0, "{out}");
    assert_eq!(counter(&summary, "bytes"), 0, "{out}");
    assert_eq!(summary["exit"], 0, "{out}");
    let after = snapshot(&dst);
    assert_eq!(
        before, after,
        "a second run changed DST (mtimes, inodes or content)"
    );
    assert_trees_equal(&src, &dst);
}

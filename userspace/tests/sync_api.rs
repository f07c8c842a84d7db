//! The library contract the watcher uses: `Syncer::sync_path`,
//! `sync_attrs`, `rename`.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dirsync::report::NullReporter;
use dirsync::sync::Syncer;

fn syncer(src: &Path, dst: &Path) -> Syncer {
    Syncer::new(src, dst, options(), Arc::new(NullReporter)).expect("valid pair")
}

/// A sample SRC synced once into DST, and the `Syncer` that did it.
fn synced_sample(t: &tempfile::TempDir) -> (PathBuf, PathBuf, Syncer) {
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    build_sample_tree(&src);
    let s = syncer(&src, &dst);
    s.sync_all().unwrap();
    assert_trees_equal(&src, &dst);
    (src, dst, s)
}

#[test]
fn sync_path_converges_one_entry_and_its_parent() {
    let t = tempdir();
    let (src, dst, s) = synced_sample(&t);

    // New file deep down, then sync only that path.
    std::fs::write(src.join("sub/deeper/new"), b"new").unwrap();
    let sum = s.sync_path(Path::new("sub/deeper/new")).unwrap();
    assert_eq!(sum.copied, 1);
    assert_trees_equal(&src, &dst);

    // Removal.
    std::fs::remove_file(src.join("sub/a")).unwrap();
    let sum = s.sync_path(Path::new("sub/a")).unwrap();
    assert_eq!(sum.deleted, 1);
    assert_trees_equal(&src, &dst);

    // A whole new directory tree, with missing parents in DST.
    std::fs::create_dir_all(src.join("n1/n2/n3")).unwrap();
    std::fs::write(src.join("n1/n2/n3/f"), b"f").unwrap();
    let sum = s.sync_path(Path::new("n1/n2/n3/f")).unwrap();
    assert_eq!((sum.copied, sum.dirs_created), (1, 3));
    // n1 and n2 were created on the way; their mtimes are fixed as well,
    // but only the entry itself is synced: siblings are not.
    assert_trees_equal(&src, &dst);

    // Type change: file -> directory.
    std::fs::remove_file(src.join("small.txt")).unwrap();
    std::fs::create_dir(src.join("small.txt")).unwrap();
    std::fs::write(src.join("small.txt/inner"), b"i").unwrap();
    s.sync_path(Path::new("small.txt")).unwrap();
    assert_trees_equal(&src, &dst);

    // Parent gone in SRC: DST's tree goes.
    std::fs::remove_dir_all(src.join("n1")).unwrap();
    let sum = s.sync_path(Path::new("n1/n2/n3/f")).unwrap();
    assert_eq!(sum.deleted, 4);
    assert_trees_equal(&src, &dst);

    // Bad paths are refused.
    assert!(s.sync_path(Path::new("../x")).is_err());
    assert!(s.sync_path(Path::new("/etc")).is_err());
}

#[test]
fn sync_attrs_and_rename() {
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    let s = syncer(&src, &dst);
    s.sync_all().unwrap();

    let d = Dir::open(&src);
    d.chmod(b"private", 0o640);
    d.set_mtime(b"private", 12345, 6789);
    let sum = s.sync_attrs(Path::new("private")).unwrap();
    assert_eq!((sum.attrs, sum.copied), (1, 0));
    assert_trees_equal(&src, &dst);

    // Directory attributes.
    let sub = d.sub(b"sub");
    sub.chmod(b"deeper", 0o700);
    let sum = s.sync_attrs(Path::new("sub/deeper")).unwrap();
    assert_eq!(sum.attrs, 1);
    assert_trees_equal(&src, &dst);

    // Content changed too: falls back to a copy.
    std::fs::write(src.join("sub/a"), b"longer content").unwrap();
    let sum = s.sync_attrs(Path::new("sub/a")).unwrap();
    assert_eq!(sum.copied, 1);
    assert_trees_equal(&src, &dst);

    // Rename a directory: DST inode is kept (no copy).
    let ino_before = Dir::open(&dst).stat(b"sub").unwrap().st_ino;
    std::fs::rename(src.join("sub"), src.join("moved")).unwrap();
    let sum = s.rename(Path::new("sub"), Path::new("moved")).unwrap();
    assert_eq!((sum.renamed, sum.copied), (1, 0));
    assert_eq!(Dir::open(&dst).stat(b"moved").unwrap().st_ino, ino_before);
    assert_trees_equal(&src, &dst);

    // Rename whose source is missing in DST: converges by copying.
    std::fs::write(src.join("fresh"), b"fresh").unwrap();
    std::fs::rename(src.join("fresh"), src.join("fresh2")).unwrap();
    let sum = s.rename(Path::new("fresh"), Path::new("fresh2")).unwrap();
    assert_eq!((sum.renamed, sum.copied), (0, 1));
    assert_trees_equal(&src, &dst);
}

/// One `Syncer` serves many full syncs (the watcher's overflow rescans):
/// each lists SRC's and DST's roots from their start.
#[test]
fn repeated_sync_all_on_one_syncer_sees_top_level_changes() {
    let t = tempdir();
    let (src, dst, s) = synced_sample(&t);
    for round in 0..3u8 {
        let name = format!("top-{round}");
        std::fs::write(src.join(&name), [round; 3]).unwrap();
        let sum = s.sync_all().unwrap();
        assert_eq!(sum.copied, 1, "round {round}");
        assert_trees_equal(&src, &dst);
        std::fs::remove_file(src.join(&name)).unwrap();
        let sum = s.sync_path(Path::new("")).unwrap();
        assert_eq!(sum.deleted, 1, "round {round}");
        assert_trees_equal(&src, &dst);
    }
}

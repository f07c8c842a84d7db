//! A source file that changes while it is being copied is never installed
//! half-copied: the copy is retried, then reported (exit 2).
//!
//! One test in its own binary, with dirsync on one thread: the modifying
//! thread then has a core of its own and really runs during the copy.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn no_temp_files(root: &Path) {
    for k in snapshot(root).keys() {
        let name = k.rsplit(|&b| b == b'/').next().unwrap();
        assert!(
            !name.starts_with(b".dirsync-tmp."),
            "temporary file left behind"
        );
    }
}

fn run1(src: &Path, dst: &Path) -> std::process::Output {
    cmd::<[&str; 0], &str>([])
        .arg(src)
        .arg(dst)
        .arg("-j1")
        .output()
        .unwrap()
}

/// Keeps modifying `path` (appending) until `stop`.
fn keep_appending(path: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        while !stop.load(Ordering::Relaxed) {
            f.write_all(b"+").unwrap();
        }
    })
}

/// How many runs may find the writer descheduled for the whole copy (on a
/// loaded machine the writing thread can miss all four attempts; such a
/// run must then have installed a consistent copy).
const TRIES: usize = 5;

/// Runs dirsync while the thread started by `start_writer` keeps changing
/// SRC, up to [`TRIES`] times, until a run reports the change (exit 2);
/// returns that run. A run that exits 0 found the writer descheduled for
/// the whole copy: `after_clean_run` checks what it installed.
fn sync_while_changing(
    src: &Path,
    dst: &Path,
    start_writer: impl Fn(Arc<AtomicBool>) -> std::thread::JoinHandle<()>,
    after_clean_run: impl Fn(),
) -> std::process::Output {
    for _ in 0..TRIES {
        let stop = Arc::new(AtomicBool::new(false));
        let h = start_writer(stop.clone());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let run = run1(src, dst);
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
        if run.status.code() == Some(2) {
            return run;
        }
        assert_eq!(run.status.code(), Some(0));
        after_clean_run();
    }
    panic!("SRC never changed during a copy in {TRIES} runs");
}

fn keeps_changing() {
    let (_t, src, dst) = pair();
    std::fs::write(src.join("busy"), vec![b'b'; 32 * 1024 * 1024]).unwrap();
    std::fs::write(src.join("calm"), b"calm").unwrap();
    let o = sync_while_changing(
        &src,
        &dst,
        |stop| keep_appending(src.join("busy"), stop),
        || {
            // What was installed is a whole snapshot (the original bytes,
            // then some appended ones).
            let got = std::fs::read(dst.join("busy")).unwrap();
            let now = std::fs::read(src.join("busy")).unwrap();
            assert!(now.starts_with(&got) && got.len() >= 32 * 1024 * 1024);
            std::fs::remove_file(dst.join("busy")).unwrap();
        },
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("kept changing during the copy (4 attempts)"),
        "{err}"
    );
    assert!(!dst.join("busy").exists(), "a half-copied file appeared");
    assert_eq!(std::fs::read(dst.join("calm")).unwrap(), b"calm");
    no_temp_files(&dst);
    // Once it is quiet, the next run copies it.
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
}

fn mtime_keeps_changing() {
    let (_t, src, dst) = pair();
    std::fs::write(src.join("touched"), vec![b't'; 32 * 1024 * 1024]).unwrap();
    let o = sync_while_changing(
        &src,
        &dst,
        |stop| {
            let srcdir = src.clone();
            // Same size all along; only the mtime moves.
            std::thread::spawn(move || {
                let d = Dir::open(&srcdir);
                let mut i = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    d.set_mtime(b"touched", 1_000_000 + i, 0);
                }
            })
        },
        || {
            let _ = std::fs::remove_file(dst.join("touched"));
        },
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("kept changing"), "{err}");
    assert!(!dst.join("touched").exists());
    no_temp_files(&dst);
}

#[test]
fn a_source_that_changes_during_the_copy_is_retried_then_reported() {
    keeps_changing();
    mtime_keeps_changing();
}

/// With `defer_changing` (the watcher's setting) a file that keeps
/// changing is not an error: it is left uncopied and handed back by
/// `take_unsettled` for a later try.
#[test]
fn a_changing_file_is_handed_back_when_deferred() {
    use dirsync::report::NullReporter;
    use dirsync::sync::{Options, Syncer};
    let (_t, src, dst) = pair();
    std::fs::write(src.join("busy"), vec![b'b'; 32 * 1024 * 1024]).unwrap();
    let opts = Options {
        defer_changing: true,
        jobs: 1,
        ..options()
    };
    let s = Syncer::new(&src, &dst, opts, Arc::new(NullReporter)).unwrap();
    s.sync_all().unwrap();
    let mut deferred = false;
    for _ in 0..TRIES {
        let before = std::fs::metadata(src.join("busy")).unwrap().len();
        let stop = Arc::new(AtomicBool::new(false));
        let h = keep_appending(src.join("busy"), stop.clone());
        // The writer has started (the file grew), however slow the machine
        // (TCG): else the copy would find nothing changed and copy nothing.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::fs::metadata(src.join("busy")).unwrap().len() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer never wrote"
            );
            std::thread::yield_now();
        }
        let sum = s.sync_path(Path::new("busy")).unwrap();
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
        assert_eq!(sum.errors, 0, "a changing file counted as an error");
        let back = s.take_unsettled();
        if back == vec![PathBuf::from("busy")] {
            deferred = true;
            // Reported once: the list is emptied by the call.
            assert!(s.take_unsettled().is_empty());
            break;
        }
        // The writer missed the copy: it was copied whole, nothing deferred.
        assert!(back.is_empty(), "{back:?}");
        assert_eq!(sum.copied, 1);
    }
    assert!(deferred, "the file never changed during a copy");
    no_temp_files(&dst);
    // Once quiet, it is copied.
    let sum = s.sync_path(Path::new("busy")).unwrap();
    assert_eq!((sum.copied, sum.errors), (1, 0));
    assert!(s.take_unsettled().is_empty());
    assert_trees_equal(&src, &dst);
}

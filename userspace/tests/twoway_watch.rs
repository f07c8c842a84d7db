//! `dirsync watch --two-way A B` (both local): edits on either side
//! reach the other; dirsync's own writes are not echoed back; concurrent
//! edits on both sides are conflicts with both contents kept; renames
//! both ways are renames; deletions propagate; an inotify overflow
//! rescans; SIGTERM ends cleanly; a `kill -9` then a one-shot run
//! converges with nothing lost. Host only (qemu/stage-userspace.sh).

mod common;
mod twoway_util;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use twoway_util::*;

const DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(5);

/// The overflow test lowers a global inotify limit for a moment: the
/// other tests of this binary do not start their watch meanwhile.
static SYSCTL: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Polls `cond` until it holds, at most [`DEADLINE`].
fn wait_for(what: &str, w: &Watch, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}\nstdout:\n{}\nstderr:\n{}",
            w.lines().join("\n"),
            w.stderr.lock().unwrap().join("\n")
        );
        std::thread::sleep(POLL);
    }
}

fn read(p: &Path) -> Option<Vec<u8>> {
    std::fs::read(p).ok()
}

/// A running `dirsync watch --two-way --json --state STATE A B`.
struct Watch {
    p: Pair,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(r: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            l.lock().unwrap().push(line);
        }
    });
    lines
}

impl Watch {
    /// Starts the watch on `p` and waits until a probe file written to A
    /// before the start is on B (the start-up run is done).
    fn start(p: Pair, extra: &[&str]) -> Watch {
        let _shared = SYSCTL.read().unwrap_or_else(|e| e.into_inner());
        Self::start_now(p, extra)
    }

    fn start_now(p: Pair, extra: &[&str]) -> Watch {
        put(&p.a, ".probe", b"probe");
        let mut child = Command::new(common::bin())
            .args(["watch", "--two-way", "--json", "--state"])
            .arg(&p.state)
            .args(extra)
            .arg(&p.a)
            .arg(&p.b)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run dirsync");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let w = Watch {
            p,
            child,
            stdout,
            stderr,
        };
        wait_for("the start-up run", &w, || {
            read(&w.p.b.join(".probe")).is_some()
        });
        // Both roots are watched (their watches are reported before the
        // start-up runs).
        wait_for("both watches", &w, || {
            w.lines()
                .iter()
                .filter(|l| l.contains("\"watching\""))
                .count()
                >= 2
        });
        w
    }

    fn lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The JSON lines of what the engine did (not the inotify events and
    /// watches the watcher reports).
    fn actions(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                !matches!(
                    v["action"].as_str(),
                    Some("event" | "watching" | "rescan" | "summary")
                )
            })
            .collect()
    }

    /// Sends `sig` and waits for the exit; returns the code.
    fn stop(&mut self, sig: i32) -> Option<i32> {
        // SAFETY: kill(2) on our own child's pid, which has not been
        // reaped (we wait for it below), so it cannot be another process.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(start.elapsed() < DEADLINE, "the watch did not exit");
            std::thread::sleep(POLL);
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: as in `stop`: our unreaped child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGSTOP, and waits until every thread is stopped (the signal is
    /// asynchronous): from then on, events queue in the kernel.
    fn pause(&self) {
        self.signal(libc::SIGSTOP);
        let task = format!("/proc/{}/task", self.child.id());
        wait_for("the watcher to stop", self, || {
            std::fs::read_dir(&task).unwrap().all(|t| {
                let stat = std::fs::read_to_string(t.unwrap().path().join("stat"));
                // The state follows the command name's closing parenthesis.
                stat.is_ok_and(|s| {
                    s.rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('T'))
                })
            })
        });
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether A and B hold the same entries now (false while an entry
/// vanishes under the walk: a copy's temporary being renamed).
fn same(a: &Path, b: &Path) -> bool {
    let quiet = |p: &Path| {
        let p = p.to_path_buf();
        std::thread::spawn(move || snapshot(&p)).join().ok()
    };
    matches!((quiet(a), quiet(b)), (Some(x), Some(y)) if x == y)
}

/// No `.dirsync-tmp` anywhere below `root`.
fn no_temporaries(root: &Path) {
    for k in snapshot(root).keys() {
        assert!(!k.contains(".dirsync-tmp"), "temporary left: {k}");
    }
}

#[test]
fn edits_deletions_and_new_directories_go_both_ways_and_sigterm_ends_cleanly() {
    let p = Pair::new();
    put(&p.a, "f", b"one");
    // Enough entries that the deletions below stay under --max-delete.
    for i in 0..10 {
        put(&p.a, &format!("keep/k{i}"), b"k");
    }
    let mut w = Watch::start(p, &[]);
    let (a, b) = (w.p.a.clone(), w.p.b.clone());
    wait_for("the start-up run", &w, || same(&a, &b));
    // B → A: a new file, then a new directory with a file.
    put(&b, "g", b"from b");
    wait_for("b/g on A", &w, || {
        read(&a.join("g")).as_deref() == Some(b"from b")
    });
    put(&b, "d/e/h", b"deep on b");
    wait_for("b/d/e/h on A", &w, || {
        read(&a.join("d/e/h")).as_deref() == Some(b"deep on b")
    });
    // A → B: a modification.
    put(&a, "f", b"one, edited on a");
    wait_for("a/f's edit on B", &w, || {
        read(&b.join("f")).as_deref() == Some(b"one, edited on a")
    });
    // Deletions: a file on A, a directory tree on B.
    std::fs::remove_file(a.join("g")).unwrap();
    wait_for("g gone from B", &w, || !b.join("g").exists());
    std::fs::remove_dir_all(b.join("d")).unwrap();
    wait_for("d gone from A", &w, || !a.join("d").exists());
    assert_eq!(snapshot(&a), snapshot(&b));
    assert_eq!(w.stop(libc::SIGTERM), Some(0));
    no_temporaries(&a);
    no_temporaries(&b);
    let last = w.lines().last().cloned().unwrap_or_default();
    assert!(last.contains("\"action\":\"summary\""), "{last}");
    // The archive is consistent: a one-shot run has nothing to do.
    let s = w.p.sync();
    for k in ["copied", "deleted", "renamed", "dirs_created", "conflicts"] {
        assert_eq!(s[k], 0, "one-shot run after the watch did {k}: {s}");
    }
}

#[test]
fn what_dirsync_writes_is_not_echoed_back_but_a_user_edit_right_after_is_seen() {
    let p = Pair::new();
    let w = Watch::start(p, &[]);
    let (a, b) = (w.p.a.clone(), w.p.b.clone());
    let before = w.actions().len();
    put(&a, "x", b"written on a");
    wait_for("x on B", &w, || {
        read(&b.join("x")).as_deref() == Some(b"written on a")
    });
    let (ma, mb) = (
        std::fs::metadata(a.join("x")).unwrap(),
        std::fs::metadata(b.join("x")).unwrap(),
    );
    // A change on B after that: B's loop has handled the events of
    // dirsync's write to B/x by the time it handles this one.
    put(&b, "sentinel", b"s");
    wait_for("sentinel on A", &w, || a.join("sentinel").exists());
    // And one on A, after the events of dirsync's write to A/sentinel.
    put(&a, "sentinel2", b"s2");
    wait_for("sentinel2 on B", &w, || b.join("sentinel2").exists());
    let acts: Vec<_> = w.actions()[before..].to_vec();
    assert_eq!(acts.len(), 3, "exactly three copies, no echo: {acts:#?}");
    for v in &acts {
        assert_eq!(v["action"], "copied", "{v}");
    }
    let (na, nb) = (
        std::fs::metadata(a.join("x")).unwrap(),
        std::fs::metadata(b.join("x")).unwrap(),
    );
    assert_eq!(
        (ma.ino(), ma.mtime_nsec(), ma.mtime()),
        (na.ino(), na.mtime_nsec(), na.mtime())
    );
    assert_eq!(
        (mb.ino(), mb.mtime_nsec(), mb.mtime()),
        (nb.ino(), nb.mtime_nsec(), nb.mtime())
    );
    // A user edit landing right after dirsync's write is a change.
    put(&a, "y", b"first, from a");
    wait_for("y on B", &w, || {
        read(&b.join("y")).as_deref() == Some(b"first, from a")
    });
    put(&b, "y", b"second, the user on b right after");
    wait_for("b's edit of y on A", &w, || {
        read(&a.join("y")).as_deref() == Some(b"second, the user on b right after")
    });
    assert!(conflicts(&a, "").is_empty(), "{:?}", conflicts(&a, ""));
}

#[test]
fn concurrent_edits_on_both_sides_are_a_conflict_with_both_contents_kept() {
    let p = Pair::new();
    put(&p.a, "k.txt", b"base");
    let w = Watch::start(p, &[]);
    let (a, b) = (w.p.a.clone(), w.p.b.clone());
    wait_for("k.txt on B", &w, || b.join("k.txt").exists());
    // Stopped, the watcher's events queue in the kernel: both edits are
    // in its next batch.
    w.pause();
    put(&a, "k.txt", b"a's edit");
    put(&b, "k.txt", b"b's edit, the newer one");
    mtime(&a, "k.txt", 1_000_000);
    mtime(&b, "k.txt", 2_000_000);
    w.signal(libc::SIGCONT);
    wait_for("a conflict copy on both sides", &w, || {
        conflicts(&a, "").len() == 1 && conflicts(&b, "").len() == 1
    });
    wait_for("A and B equal", &w, || same(&a, &b));
    let copy = &conflicts(&a, "")[0];
    let mut contents = vec![
        read(&a.join("k.txt")).unwrap(),
        read(&a.join(copy)).unwrap(),
    ];
    contents.sort();
    assert_eq!(
        contents,
        vec![b"a's edit".to_vec(), b"b's edit, the newer one".to_vec()]
    );
    assert_eq!(read(&a.join("k.txt")).unwrap(), b"b's edit, the newer one");
    assert!(w.actions().iter().any(|v| v["action"] == "conflict"));
}

#[test]
fn renames_of_files_and_directories_in_both_directions_are_renames() {
    let p = Pair::new();
    put(&p.a, "file", b"a file");
    for i in 0..20 {
        put(&p.a, &format!("dir/sub/f{i}"), format!("f{i}").as_bytes());
    }
    let w = Watch::start(p, &[]);
    let (a, b) = (w.p.a.clone(), w.p.b.clone());
    wait_for("the tree on B", &w, || same(&a, &b));
    let (ib_file, ib_dir, ib_child) = (ino(&b, "file"), ino(&b, "dir"), ino(&b, "dir/sub/f3"));
    let start = w.actions().len();
    // A → B.
    std::fs::rename(a.join("file"), a.join("file2")).unwrap();
    std::fs::rename(a.join("dir"), a.join("dir2")).unwrap();
    wait_for("both renames on B", &w, || {
        b.join("file2").exists() && b.join("dir2/sub/f19").exists() && !b.join("dir").exists()
    });
    assert_eq!(
        ino(&b, "file2"),
        ib_file,
        "B's file was copied, not renamed"
    );
    assert_eq!(
        ino(&b, "dir2"),
        ib_dir,
        "B's directory was copied, not renamed"
    );
    assert_eq!(ino(&b, "dir2/sub/f3"), ib_child);
    let (ia_file, ia_dir, ia_child) = (ino(&a, "file2"), ino(&a, "dir2"), ino(&a, "dir2/sub/f3"));
    // B → A, across directories (into ones both sides have: a rename
    // into a directory created in the same batch is a copy, as in a
    // one-shot run).
    std::fs::rename(b.join("file2"), b.join("dir2/file3")).unwrap();
    std::fs::rename(b.join("dir2/sub"), b.join("sub3")).unwrap();
    wait_for("both renames on A", &w, || {
        a.join("dir2/file3").exists() && a.join("sub3/f19").exists() && !a.join("dir2/sub").exists()
    });
    assert_eq!(
        ino(&a, "dir2/file3"),
        ia_file,
        "A's file was copied, not renamed: {:#?}",
        w.actions()
    );
    assert_eq!(ino(&a, "sub3/f3"), ia_child, "A's directory was copied");
    assert_eq!(ino(&a, "dir2"), ia_dir);
    wait_for("A and B equal", &w, || same(&a, &b));
    let acts = w.actions()[start..].to_vec();
    let renamed = acts.iter().filter(|v| v["action"] == "renamed").count();
    assert_eq!(renamed, 4, "{acts:#?}");
    assert!(
        !acts.iter().any(|v| v["action"] == "copied"
            && v["dst"]
                .as_str()
                .is_some_and(|d| d.contains("sub") || d.contains("file"))),
        "{acts:#?}"
    );
}

#[test]
fn an_inotify_overflow_rescans_and_loses_nothing() {
    let p = Pair::new();
    // Watched directories (events in a new one would be few: it is
    // listed once its watch exists).
    put(&p.a, "many/.keep", b"");
    put(&p.b, "other/.keep", b"");
    // The limit applies to instances created while it is set: the
    // watcher's, created at its start.
    let limit = "/proc/sys/fs/inotify/max_queued_events";
    let w = {
        let _excl = SYSCTL.write().unwrap_or_else(|e| e.into_inner());
        let old = std::fs::read_to_string(limit).unwrap();
        std::fs::write(limit, "16").unwrap();
        let w = std::panic::catch_unwind(|| Watch::start_now(p, &[]));
        std::fs::write(limit, old.trim()).unwrap();
        w
    };
    let w = w.unwrap_or_else(|e| std::panic::resume_unwind(e));
    let (a, b) = (w.p.a.clone(), w.p.b.clone());
    w.pause();
    for i in 0..100 {
        put(&a, &format!("many/m{i}"), format!("a{i}").as_bytes());
        put(&b, &format!("other/o{i}"), format!("b{i}").as_bytes());
    }
    w.signal(libc::SIGCONT);
    wait_for("every file on both sides", &w, || {
        (0..100).all(|i| {
            read(&b.join(format!("many/m{i}"))) == Some(format!("a{i}").into_bytes())
                && read(&a.join(format!("other/o{i}"))) == Some(format!("b{i}").into_bytes())
        })
    });
    assert!(
        w.lines().iter().any(|l| l.contains("overflow")),
        "no overflow was reported:\n{}",
        w.lines().join("\n")
    );
    wait_for("A and B equal", &w, || same(&a, &b));
}

#[test]
fn kill_9_during_a_watch_then_a_one_shot_run_converges_with_nothing_lost() {
    let p = Pair::new();
    let mut w = Watch::start(p, &[]);
    let (a, b) = (w.p.a.clone(), w.p.b.clone());
    let big =
        |tag: usize| -> Vec<u8> { (0..256 * 1024).map(|i| (i * 7 + tag * 13) as u8).collect() };
    // Written aside and renamed in (as editors and tar do): what the
    // watch copies is each file's final content.
    let stage = w.p.t.path().join("stage");
    for i in 0..40 {
        put(&stage, &format!("a{i}"), &big(i));
        put(&stage, &format!("b{i}"), &big(100 + i));
    }
    std::fs::create_dir(a.join("a")).unwrap();
    std::fs::create_dir(b.join("b")).unwrap();
    for i in 0..40 {
        std::fs::rename(stage.join(format!("a{i}")), a.join(format!("a/f{i}"))).unwrap();
        std::fs::rename(stage.join(format!("b{i}")), b.join(format!("b/f{i}"))).unwrap();
    }
    // Killed once some of it has been copied.
    wait_for("some copies", &w, || {
        b.join("a").exists() || a.join("b").exists()
    });
    assert_eq!(w.stop(libc::SIGKILL), None);
    let s = w.p.sync();
    assert_eq!(s["conflicts"], 0, "{s}");
    assert_eq!(snapshot(&a), snapshot(&b));
    for i in 0..40 {
        assert_eq!(read(&b.join(format!("a/f{i}"))).unwrap(), big(i));
        assert_eq!(read(&a.join(format!("b/f{i}"))).unwrap(), big(100 + i));
    }
    no_temporaries(&a);
    no_temporaries(&b);
    assert!(conflicts(&a, "").is_empty());
}

#[test]
fn a_dry_watch_and_a_remote_side_are_refused_with_exit_1() {
    let p = Pair::new();
    for extra in [&["-n"][..], &[][..]] {
        let mut c = common::cmd(["watch", "--two-way", "--state"]);
        c.arg(&p.state).args(extra).arg(&p.a);
        if extra.is_empty() {
            c.arg("host:/tmp/b");
        } else {
            c.arg(&p.b);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {o:?}");
    }
    assert!(!p.state.exists(), "a refused watch wrote its archive");
}

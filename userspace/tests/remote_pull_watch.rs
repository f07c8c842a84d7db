//! `dirsync watch host:SRC DST` through a real sshd (`common::sshd`): the
//! server watches SRC with its own inotify, this side applies to DST.
//! Judged by DST on disk, exit codes, the server's process (found by the
//! SRC directory it holds open) and peak RSS; hostile servers from
//! `examples/hostile_peer/watch.rs`.

mod common;
use common::exact::{assert_exact, set_xattr};
use common::sshd::{self, Sshd};
use common::*;

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `dirsync watch`, its stdout and stderr collected.
struct Watch {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    /// Bytes of stdout so far (kept whole only when `keep`).
    bytes: Arc<AtomicU64>,
    /// Set when stdout and stderr reached their end (the child and any
    /// process that inherited them closed them).
    ended: [Arc<AtomicBool>; 2],
}

type Collected = (Arc<Mutex<String>>, Arc<AtomicU64>, Arc<AtomicBool>);

fn collect(mut r: impl Read + Send + 'static, keep: bool) -> Collected {
    let (s, n, e) = (
        Arc::new(Mutex::new(String::new())),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (s2, n2, e2) = (s.clone(), n.clone(), e.clone());
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(k) = r.read(&mut buf) {
            if k == 0 {
                break;
            }
            n2.fetch_add(k as u64, Ordering::Relaxed);
            if keep {
                s2.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..k]));
            }
        }
        e2.store(true, Ordering::Release);
    });
    (s, n, e)
}

impl Watch {
    fn start(args: &[&std::ffi::OsStr], keep: bool) -> Watch {
        let mut child = cmd(["watch"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (out, bytes, out_end) = collect(child.stdout.take().unwrap(), keep);
        let (err, _, err_end) = collect(child.stderr.take().unwrap(), true);
        Watch {
            child,
            out,
            err,
            bytes,
            ended: [out_end, err_end],
        }
    }

    /// `watch --json [extra] -e SSHD 127.0.0.1:SRC DST`.
    fn pull(sshd: &Sshd, src: &Path, dst: &Path, extra: &[&str]) -> Watch {
        let mut a: Vec<std::ffi::OsString> = vec!["--json".into()];
        a.extend(extra.iter().map(Into::into));
        a.extend(sshd.args().into_iter().map(Into::into));
        a.push(sshd::remote(src).into());
        a.push(dst.into());
        let a: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
        Watch::start(&a, true)
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill on our own child, not reaped yet.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Its exit code within `within` (killed and a panic otherwise).
    fn exit_within(&mut self, within: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // What it wrote before it exited is read to the end (the
                // readers may lag behind the exit under load).
                let ended = || self.ended.iter().all(|e| e.load(Ordering::Acquire));
                wait_until(Duration::from_secs(10), ended);
                return s.code();
            }
            if start.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "dirsync watch did not exit within {within:?}: {}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `ok` every 20 ms for at most `within`.
fn wait_until(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ok()
}

/// Waits until DST equals SRC (with `w` still running).
#[track_caller]
fn converges(w: &mut Watch, src: &Path, dst: &Path, what: &str) {
    let ok = wait_until(
        Duration::from_secs(20),
        || matches!(tree_diff(src, dst), Ok(d) if d.is_empty()),
    );
    assert!(w.running(), "{what}: the watcher exited: {}", w.stderr());
    assert!(
        ok,
        "{what}: DST did not converge: {:?}",
        tree_diff(src, dst)
    );
}

/// The `dirsync --server` processes that hold the directory `dir` open
/// (the watching server holds its SRC).
fn servers_holding(dir: &Path) -> Vec<i32> {
    let dir = std::fs::canonicalize(dir).unwrap();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if !cmdline.split(|&b| b == 0).any(|a| a == b"--server") {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|f| std::fs::read_link(f.path()).is_ok_and(|l| l == dir))
        {
            out.push(pid);
        }
    }
    out
}

/// Whether `pid` is gone (or a zombie: it has exited).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.rfind(')').is_some_and(|i| s[i + 2..].starts_with('Z')),
    }
}

/// The one server watching `src` (waits for it to appear).
fn the_server(src: &Path) -> i32 {
    let mut found = Vec::new();
    wait_until(Duration::from_secs(20), || {
        found = servers_holding(src);
        found.len() == 1
    });
    assert_eq!(found.len(), 1, "one server expected: {found:?}");
    found[0]
}

#[test]
fn creates_modifies_deletes_and_renames_replicate_then_sigterm_stops_both_ends() {
    let sshd = Sshd::shared();
    let (_t, src, dst) = pair();
    std::fs::write(src.join("old"), b"old").unwrap();
    std::fs::create_dir(src.join("d")).unwrap();
    std::fs::write(src.join("d/in"), b"in").unwrap();
    let mut w = Watch::pull(sshd, &src, &dst, &[]);
    converges(&mut w, &src, &dst, "initial");
    let server = the_server(&src);
    std::fs::write(src.join("new"), b"new file").unwrap();
    converges(&mut w, &src, &dst, "create");
    std::fs::write(src.join("old"), b"changed content").unwrap();
    converges(&mut w, &src, &dst, "modify");
    std::fs::create_dir_all(src.join("e/f")).unwrap();
    std::fs::write(src.join("e/f/deep"), b"deep").unwrap();
    converges(&mut w, &src, &dst, "mkdir -p and a file");
    std::fs::rename(src.join("new"), src.join("renamed")).unwrap();
    converges(&mut w, &src, &dst, "rename a file");
    std::fs::rename(src.join("d"), src.join("d2")).unwrap();
    converges(&mut w, &src, &dst, "rename a directory");
    std::fs::remove_file(src.join("old")).unwrap();
    std::fs::remove_dir_all(src.join("e")).unwrap();
    converges(&mut w, &src, &dst, "delete");
    std::os::unix::fs::symlink("renamed", src.join("link")).unwrap();
    converges(&mut w, &src, &dst, "symlink");
    // The events, as a local watch reports them, with SRC as host:SRC.
    let shown = format!("127.0.0.1:{}", src.display());
    let lines = json_lines(&w.stdout());
    let has = |action: &str, key: &str, rel: &str| {
        lines
            .iter()
            .any(|l| l["action"] == action && l[key].as_str() == Some(&format!("{shown}/{rel}")))
    };
    assert!(has("copied", "src", "new"), "{}", w.stdout());
    // What was deleted is shown in DST, as a local watch shows it.
    let deleted = format!("{}/old", dst.display());
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "deleted" && l["path"].as_str() == Some(&deleted)),
        "{}",
        w.stdout()
    );
    assert!(
        lines.iter().any(|l| l["action"] == "watching"),
        "{}",
        w.stdout()
    );
    w.signal(libc::SIGTERM);
    assert_eq!(
        w.exit_within(Duration::from_secs(20)),
        Some(0),
        "{}",
        w.stderr()
    );
    assert!(
        wait_until(Duration::from_secs(10), || gone(server)),
        "the server {server} is still running after the client stopped"
    );
    assert_trees_equal(&src, &dst);
}

#[test]
fn sigint_ends_the_remote_engine_too() {
    let sshd = Sshd::shared();
    let (_t, src, dst) = pair();
    std::fs::write(src.join("a"), b"a").unwrap();
    let mut w = Watch::pull(sshd, &src, &dst, &[]);
    converges(&mut w, &src, &dst, "initial");
    let server = the_server(&src);
    w.signal(libc::SIGINT);
    assert_eq!(
        w.exit_within(Duration::from_secs(20)),
        Some(0),
        "{}",
        w.stderr()
    );
    assert!(wait_until(Duration::from_secs(10), || gone(server)));
    assert!(servers_holding(&src).is_empty());
}

#[test]
fn a_client_killed_outright_leaves_no_server() {
    let sshd = Sshd::shared();
    let (_t, src, dst) = pair();
    std::fs::write(src.join("a"), b"a").unwrap();
    let mut w = Watch::pull(sshd, &src, &dst, &[]);
    converges(&mut w, &src, &dst, "initial");
    let server = the_server(&src);
    // No stop is sent: the server sees its link go down (ssh ends when
    // its stdin, our pipe, closes).
    w.signal(libc::SIGKILL);
    let _ = w.exit_within(Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(15), || gone(server)),
        "the server {server} outlived its client"
    );
}

#[test]
fn an_idle_watch_outlives_its_timeout_both_ways() {
    let sshd = Sshd::shared();
    let (_t, src, dst) = pair();
    std::fs::write(src.join("a"), b"a").unwrap();
    // 4 s, not less: under load the ssh session alone can take seconds
    // before the first byte (no keepalive before the hellos).
    let mut w = Watch::pull(sshd, &src, &dst, &["--timeout", "4"]);
    converges(&mut w, &src, &dst, "initial");
    let server = the_server(&src);
    // Two and a half timeouts with nothing to say: the keepalives of both
    // sides keep the link (each side times out reads after 4 s).
    std::thread::sleep(Duration::from_secs(10));
    assert!(w.running(), "the watch ended while idle: {}", w.stderr());
    assert!(!gone(server), "the server ended while idle");
    std::fs::write(src.join("b"), b"after the quiet spell").unwrap();
    converges(&mut w, &src, &dst, "a change after 10 s idle");
}

#[test]
fn a_large_file_appended_while_watched_ends_equal() {
    let sshd = Sshd::shared();
    let (_t, src, dst) = pair();
    let mut w = Watch::pull(sshd, &src, &dst, &[]);
    converges(&mut w, &src, &dst, "initial");
    let mut rng = Rng(7);
    let mut f = std::fs::File::create(src.join("big")).unwrap();
    for _ in 0..48 {
        use std::io::Write;
        f.write_all(&rng.bytes(1 << 20)).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    drop(f);
    converges(&mut w, &src, &dst, "48 MiB appended");
    assert_eq!(
        std::fs::read(dst.join("big")).unwrap(),
        std::fs::read(src.join("big")).unwrap()
    );
}

#[test]
fn attributes_follow_with_a() {
    let sshd = Sshd::shared();
    let (_t, src, dst) = pair();
    std::fs::write(src.join("f"), b"content").unwrap();
    let mut w = Watch::pull(sshd, &src, &dst, &["-a"]);
    converges(&mut w, &src, &dst, "initial");
    let f = src.join("f");
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    set_xattr(&f, "user.note", b"watched");
    if is_root() {
        std::os::unix::fs::lchown(&f, Some(4321), Some(4322)).unwrap();
    }
    let exact = || common::exact::exact_diff(&src, &dst).is_ok_and(|d| d.is_empty());
    assert!(
        wait_until(Duration::from_secs(20), exact),
        "attributes not replicated: {:?}",
        common::exact::exact_diff(&src, &dst)
    );
    assert_exact(&src, &dst);
    if is_root() {
        let m = std::fs::metadata(dst.join("f")).unwrap();
        assert_eq!((m.uid(), m.gid()), (4321, 4322));
    }
}

#[test]
fn a_killed_server_ends_the_client_with_exit_3_and_no_partial_file() {
    let sshd = Sshd::shared();
    let (_t, src, dst) = pair();
    let mut w = Watch::pull(sshd, &src, &dst, &["--bwlimit", "1M"]);
    converges(&mut w, &src, &dst, "initial");
    let server = the_server(&src);
    // 16 MiB at 1 MiB/s: the server is killed in the middle of it.
    let data = Rng(3).bytes(16 << 20);
    std::fs::write(src.join("big"), &data).unwrap();
    assert!(wait_until(Duration::from_secs(10), || w
        .stdout()
        .contains("\"action\":\"watching\"")));
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: kill on the server process found by the SRC it holds open.
    unsafe { libc::kill(server, libc::SIGKILL) };
    assert_eq!(
        w.exit_within(Duration::from_secs(30)),
        Some(3),
        "{}",
        w.stderr()
    );
    assert!(w.stderr().contains("127.0.0.1"), "{}", w.stderr());
    // Never a partial file under the final name.
    match std::fs::read(dst.join("big")) {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        Ok(got) => assert!(got == data, "a partial file under the final name"),
    }
}

/// `watch` against the test sshd through a key forced to `BIN --server
/// --root ROOT MODE`, pulling ROOT's `/src`.
fn forced(sshd: &Sshd, name: &str, root: &Path, mode: &str, dst: &Path) -> Watch {
    let forced = format!(
        "{} --server --root {} {mode}",
        bin().display(),
        root.display()
    );
    let rsh = sshd.forced_rsh(name, &forced);
    let args: Vec<std::ffi::OsString> = vec![
        "--json".into(),
        "-e".into(),
        rsh.into(),
        "127.0.0.1:/src".into(),
        dst.into(),
    ];
    let a: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_os_str()).collect();
    Watch::start(&a, true)
}

#[test]
fn a_write_only_server_refuses_a_read_only_one_serves() {
    let sshd = Sshd::shared();
    let t = tempdir();
    let (root, src) = (t.path().join("root"), t.path().join("root/src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"f").unwrap();
    let dst = t.path().join("dst");
    let mut w = forced(sshd, "wo", &root, "--write-only", &dst);
    let code = w.exit_within(Duration::from_secs(20));
    assert_eq!(code, Some(3), "{}", w.stderr());
    assert!(!dst.exists(), "a refused watch created DST");
    let mut w = forced(sshd, "ro", &root, "--read-only", &dst);
    converges(&mut w, &src, &dst, "initial (read-only server)");
    std::fs::create_dir(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/g"), b"g").unwrap();
    converges(&mut w, &src, &dst, "create under a confined SRC");
    // The confined server watches through a descriptor: shown as named.
    let out = w.stdout();
    assert!(out.contains("127.0.0.1:/src/sub"), "{out}");
    assert!(!out.contains("/proc/self/fd"), "{out}");
    w.signal(libc::SIGTERM);
    assert_eq!(
        w.exit_within(Duration::from_secs(20)),
        Some(0),
        "{}",
        w.stderr()
    );
}

/// `watch -e 'hostile_peer SCENARIO' 127.0.0.1:/src DST`.
fn hostile(scenario: &str, dst: &Path, keep: bool) -> Watch {
    let args: Vec<std::ffi::OsString> = vec![
        "-v".into(),
        "-e".into(),
        hostile_rsh(scenario).into(),
        "--timeout".into(),
        "30".into(),
        "127.0.0.1:/src".into(),
        dst.into(),
    ];
    let a: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_os_str()).collect();
    Watch::start(&a, keep)
}

#[test]
fn an_older_server_is_refused_before_anything_changes() {
    let t = tempdir();
    let dst = t.path().join("dst");
    let mut w = hostile("watch-old-server", &dst, true);
    assert_eq!(
        w.exit_within(Duration::from_secs(20)),
        Some(1),
        "{}",
        w.stderr()
    );
    assert!(w.stderr().contains("cannot watch"), "{}", w.stderr());
    assert!(
        !dst.exists(),
        "DST was created for a server that cannot watch"
    );
}

/// Peak RSS (`VmHWM`) of `pid` in MiB.
fn hwm_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    kib as f64 / 1024.0
}

#[test]
fn an_endless_stream_of_events_stays_small_and_a_stop_still_ends_it() {
    let t = tempdir();
    let dst = t.path().join("dst");
    let mut w = hostile("watch-endless-events", &dst, false);
    // At least 128 MiB of events printed (twice the RSS bound).
    assert!(
        wait_until(Duration::from_secs(60), || w.bytes.load(Ordering::Relaxed)
            > 128 << 20),
        "the flood did not reach the output: {} bytes; {}",
        w.bytes.load(Ordering::Relaxed),
        w.stderr()
    );
    let rss = hwm_mib(w.child.id());
    assert!(w.running(), "{}", w.stderr());
    assert!(rss < 64.0, "peak RSS {rss:.1} MiB during the flood");
    // The server ignores the stop: its transport is killed after the
    // grace (a second signal would do it at once).
    let start = Instant::now();
    w.signal(libc::SIGTERM);
    let code = w.exit_within(Duration::from_secs(30));
    assert_eq!(code, Some(3), "{}", w.stderr());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let start = Instant::now();
    let mut w = hostile("watch-endless-events", &dst, false);
    assert!(wait_until(Duration::from_secs(20), || w
        .bytes
        .load(Ordering::Relaxed)
        > 1 << 20));
    w.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    w.signal(libc::SIGTERM);
    assert_eq!(
        w.exit_within(Duration::from_secs(10)),
        Some(3),
        "{}",
        w.stderr()
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn an_oversized_event_is_refused() {
    let t = tempdir();
    let dst = t.path().join("dst");
    let mut w = hostile("watch-oversized-event", &dst, true);
    assert_eq!(
        w.exit_within(Duration::from_secs(20)),
        Some(3),
        "{}",
        w.stderr()
    );
    assert!(w.stderr().contains("oversized event"), "{}", w.stderr());
    assert!(w.stdout().len() < 4096, "the event was printed");
}

#[test]
fn a_remote_src_and_a_remote_dst_are_a_usage_error() {
    let out = cmd(["watch", "127.0.0.1:/a", "127.0.0.1:/b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot both be remote"));
}

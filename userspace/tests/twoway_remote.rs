//! Two-way sync with B on a remote host reached through a real sshd
//! (`common::sshd`; the binary's name makes `Pair::run` write B as
//! `127.0.0.1:B`): every scenario and guard of the local suites again,
//! then what only a remote side has (the agent's re-check, hostile
//! agents, an agent without the feature).
// The local suites bring their own `mod common` and `mod twoway_util`;
// the tests below use them too.
#![allow(clippy::duplicate_mod)]

#[path = "twoway_scenarios.rs"]
mod scenarios;

#[path = "twoway_guards.rs"]
mod guards;

mod common;
mod twoway_util;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::sshd::{self, Sshd};
use twoway_util::*;

/// What a measured run did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stderr: String,
    secs: f64,
    /// Peak RSS of the process alone (`VmHWM`), in MiB.
    rss_mib: f64,
}

/// Runs `c`, killed after `limit`, sampling its `VmHWM` every 5 ms.
fn measured(mut c: Command, limit: Duration) -> Run {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = c.spawn().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let (code, hwm) = wait_measured(&mut child, start, limit);
    Run {
        code,
        secs: start.elapsed().as_secs_f64(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
        rss_mib: hwm as f64 / 1024.0,
    }
}

fn wait_measured(child: &mut Child, start: Instant, limit: Duration) -> (Option<i32>, u64) {
    let pid = child.id();
    let (mut killed, mut hwm) = (false, 0);
    loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let kib = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            hwm = hwm.max(kib.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), hwm);
        }
        if !killed && start.elapsed() > limit {
            child.kill().unwrap();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `dirsync --two-way --state S --timeout 10 -e HOSTILE A 127.0.0.1:/x`,
/// the hostile peer playing `scenario`.
fn against(p: &Pair, scenario: &str) -> Run {
    let mut c = Command::new(common::bin());
    c.args(["--two-way", "--timeout", "10", "--state"])
        .arg(&p.state)
        .arg("-e")
        .arg(common::hostile_rsh(scenario))
        .arg(&p.a)
        .arg("127.0.0.1:/x");
    measured(c, Duration::from_secs(90))
}

/// A pair whose A holds one file (the hostile runs must leave it alone).
fn with_one_file() -> Pair {
    let p = Pair::new();
    put(&p.a, "keep", b"mine");
    p
}

#[test]
fn an_agent_without_the_two_way_feature_is_refused_before_anything() {
    let p = with_one_file();
    let before = snapshot(&p.a);
    let r = against(&p, "tw-no-feature");
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stderr.contains("cannot serve a two-way run"), "{r:?}");
    assert_eq!(snapshot(&p.a), before);
    assert!(!p.state.exists(), "the state file was created");
}

#[test]
fn scan_paths_out_of_the_tree_or_too_long_stop_the_run() {
    for sc in ["tw-scan-dotdot", "tw-scan-absolute", "tw-scan-oversized"] {
        let p = with_one_file();
        let before = snapshot(&p.a);
        let r = against(&p, sc);
        assert_eq!(r.code, Some(3), "{sc}: {r:?}");
        assert!(r.secs < 30.0, "{sc}: {r:?}");
        assert_eq!(snapshot(&p.a), before, "{sc}");
        assert!(!p.t.path().join("escape").exists(), "{sc}");
        assert!(!Path::new("/tmp/escape").exists(), "{sc}");
    }
}

#[test]
fn an_endless_scan_stops_at_its_bound() {
    let p = with_one_file();
    let before = snapshot(&p.a);
    let r = against(&p, "tw-scan-endless");
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stderr.contains("larger than"), "{r:?}");
    // MAX_SCAN_BYTES (384 MiB of accounted entries) and the frames in
    // flight: never the whole endless stream.
    assert!(r.rss_mib < 700.0, "{r:?}");
    assert!(r.secs < 80.0, "{r:?}");
    assert_eq!(snapshot(&p.a), before);
}

#[test]
fn content_longer_than_announced_or_endless_is_never_installed() {
    for sc in ["tw-read-longer", "tw-read-endless"] {
        let p = Pair::new();
        let r = against(&p, sc);
        assert_eq!(r.code, Some(3), "{sc}: {r:?}");
        assert!(r.stderr.contains("longer than"), "{sc}: {r:?}");
        assert!(r.secs < 30.0, "{sc}: {r:?}");
        assert!(r.rss_mib < 200.0, "{sc}: {r:?}");
        // No file, no temporary: A is as empty as it was.
        assert!(snapshot(&p.a).is_empty(), "{sc}: {:?}", snapshot(&p.a));
    }
}

#[test]
fn a_silent_agent_times_out() {
    let p = with_one_file();
    let before = snapshot(&p.a);
    let mut c = Command::new(common::bin());
    c.args(["--two-way", "--timeout", "2", "--state"])
        .arg(&p.state)
        .arg("-e")
        .arg(common::hostile_rsh("silent-after-ready"))
        .arg(&p.a)
        .arg("127.0.0.1:/x");
    let r = measured(c, Duration::from_secs(60));
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.secs < 20.0, "{r:?}");
    assert_eq!(snapshot(&p.a), before);
}

/// The remote B of `p` as the library's remote side (the test sshd).
fn remote_b(p: &Pair) -> dirsync::remote::twoway_side::RemoteSide {
    let spec = dirsync::remote::spec::parse(sshd::remote(&p.b).as_os_str()).unwrap();
    let c = dirsync::remote::client::Connect {
        rsh: Sshd::shared().rsh(),
        remote_path: Some(common::bin().into_os_string()),
        deploy: false,
        compress: false,
        bwlimit: None,
        timeout: Some(Duration::from_secs(30)),
    };
    let opts = dirsync::sync::Options::default();
    dirsync::remote::twoway_side::connect(&spec, &c, &opts).unwrap()
}

/// Writes `content` to a path when the engine announces the event `on`
/// for it: after the scan, before the agent acts.
struct Meddle {
    at: std::path::PathBuf,
    path: std::path::PathBuf,
    content: &'static [u8],
    deleted: bool,
}

impl dirsync::report::Reporter for Meddle {
    fn event(&self, e: &dirsync::report::Event<'_>) {
        use dirsync::report::Event;
        let hit = match e {
            Event::Copied { dst, .. } => !self.deleted && *dst == self.at.as_path(),
            Event::Deleted { path } => self.deleted && *path == self.at.as_path(),
            _ => false,
        };
        if hit {
            std::fs::write(&self.path, self.content).unwrap();
        }
    }
}

fn run_remote(p: &Pair, rep: &Meddle) -> dirsync::report::Summary {
    let spec = dirsync::twoway::TwoWaySpec {
        a: p.a.clone(),
        b: sshd::remote(&p.b),
        state: Some(p.state.clone()),
        max_delete: 100,
        ..Default::default()
    };
    let opts = dirsync::sync::Options::default();
    let la = dirsync::twoway::open_local(&p.a, "root A", "a", &opts).unwrap();
    let rb = remote_b(p);
    let s = dirsync::twoway::run_with(&spec, &opts, rep, &la, &rb).unwrap();
    assert_eq!(rb.broken(), None);
    s
}

fn synced() -> Pair {
    let p = Pair::new();
    put(&p.a, "f.txt", b"base");
    mtime(&p.a, "f.txt", 1_000_000);
    p.converge();
    p
}

/// The agent re-checks B's file just before replacing it: written on B
/// after the scan, it is kept and A's version goes beside it.
#[test]
fn the_agent_rechecks_before_replacing_a_remote_file() {
    let p = synced();
    put(&p.a, "f.txt", b"a's change");
    let rep = Meddle {
        at: sshd::remote(&p.b).join("f.txt"),
        path: p.b.join("f.txt"),
        content: b"written on b during the run",
        deleted: false,
    };
    let s = run_remote(&p, &rep);
    assert_eq!(s.conflicts, 1, "{s:?}");
    assert_eq!(
        std::fs::read(p.b.join("f.txt")).unwrap(),
        b"written on b during the run"
    );
    let names = conflicts(&p.b, "");
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(std::fs::read(p.b.join(&names[0])).unwrap(), b"a's change");
    let snap = p.converge();
    assert_eq!(
        snap["f.txt"],
        Node::File(b"written on b during the run".to_vec(), 0o644)
    );
}

/// A deletion on A is not carried out on B when B's file changed after
/// the scan: it is kept, and the next run brings it back to A.
#[test]
fn the_agent_rechecks_before_deleting_a_remote_file() {
    let p = Pair::new();
    put(&p.a, "f.txt", b"base");
    put(&p.a, "other", b"keeps the root from being empty");
    p.converge();
    std::fs::remove_file(p.a.join("f.txt")).unwrap();
    let rep = Meddle {
        at: sshd::remote(&p.b).join("f.txt"),
        path: p.b.join("f.txt"),
        content: b"edited on b during the run",
        deleted: true,
    };
    let s = run_remote(&p, &rep);
    assert_eq!(s.deleted, 0, "{s:?}");
    assert_eq!(
        std::fs::read(p.b.join("f.txt")).unwrap(),
        b"edited on b during the run"
    );
    let snap = p.converge();
    assert_eq!(
        snap["f.txt"],
        Node::File(b"edited on b during the run".to_vec(), 0o644)
    );
}

/// `--write-only` (a forced command): the agent takes A's files but
/// sends none of B's; nothing of B is lost, the run says so (exit 2).
#[test]
fn a_write_only_server_sends_no_content() {
    let p = Pair::new();
    put(&p.a, "from_a", b"a");
    put(&p.b, "from_b", b"b");
    let forced = format!(
        "exec {} --server --root {} --write-only",
        common::bin().display(),
        p.t.path().display()
    );
    let rsh = Sshd::shared().forced_rsh("twoway_wo", &forced);
    let mut c = common::cmd(["--two-way", "--state"]);
    c.arg(&p.state)
        .args(["-e", &rsh, "--remote-path"])
        .arg(common::bin())
        .arg(&p.a)
        .arg("127.0.0.1:/b");
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--write-only"), "{err}");
    assert_eq!(std::fs::read(p.b.join("from_a")).unwrap(), b"a");
    assert!(!p.a.join("from_b").exists());
    assert_eq!(std::fs::read(p.b.join("from_b")).unwrap(), b"b");
}

/// `--read-only` refuses the role: exit 3, nothing changed on either
/// side.
#[test]
fn a_read_only_server_refuses_a_two_way_run() {
    let p = Pair::new();
    put(&p.a, "from_a", b"a");
    put(&p.b, "from_b", b"b");
    let forced = format!(
        "exec {} --server --root {} --read-only",
        common::bin().display(),
        p.t.path().display()
    );
    let rsh = Sshd::shared().forced_rsh("twoway_ro", &forced);
    let mut c = common::cmd(["--two-way", "--state"]);
    c.arg(&p.state)
        .args(["-e", &rsh, "--remote-path"])
        .arg(common::bin())
        .arg(&p.a)
        .arg("127.0.0.1:/b");
    let o = c.output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!p.b.join("from_a").exists());
    assert!(!p.a.join("from_b").exists());
}

/// Without --state, the archive's name derives from both roots as
/// written, the host included: `127.0.0.1:B` and `localhost:B` are two
/// pairs.
#[test]
fn the_default_state_name_includes_the_host() {
    let p = Pair::new();
    put(&p.a, "f", b"x");
    let xdg = p.t.path().join("xdg");
    for host in ["127.0.0.1", "localhost"] {
        let mut c = common::cmd(["--two-way"]);
        c.env("XDG_STATE_HOME", &xdg)
            .args(Sshd::shared().args())
            .arg(&p.a)
            .arg(format!("{host}:{}", p.b.display()));
        let o = c.output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let dbs: Vec<_> = std::fs::read_dir(xdg.join("dirsync"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".db"))
        .collect();
    assert_eq!(dbs.len(), 2, "{dbs:?}");
}

/// Both sides remote: refused (exit 1).
#[test]
fn two_remote_sides_are_a_usage_error() {
    let o = common::run(["--two-way", "h1:/a", "h2:/b"]);
    assert_eq!(o.status.code(), Some(1));
}

//! `dirsync daemon` with three pairs (a local watch, a watch to a remote
//! destination over the test sshd, one scheduled `every 2s`): edits
//! replicate, `status --json` matches, pause/resume/sync-now through the
//! control socket, the socket's modes and its refusal of another uid,
//! SIGTERM; a destination unusable at start-up is a runtime error.

mod common;
mod daemon_common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::sshd::Sshd;
use daemon_common::{config_text, wait_for, Daemon};

const LONG: Duration = Duration::from_secs(30);

fn write(p: &Path, s: &str) {
    std::fs::write(p, s).unwrap();
}

fn has(p: &Path, s: &str) -> bool {
    std::fs::read_to_string(p).is_ok_and(|c| c == s)
}

#[test]
fn three_pairs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for s in ["src1", "src2", "src3"] {
        std::fs::create_dir(d.join(s)).unwrap();
        write(&d.join(s).join("first"), s);
    }
    let sshd = Sshd::shared();
    let text = config_text(
        d,
        &format!(
            r#"
[[pair]]
name = "local"
source = "{d}/src1"
destination = "{d}/dst1"

[[pair]]
name = "remote"
source = "{d}/src2"
destination = "127.0.0.1:{d}/dst2"
rsh = "{rsh}"
remote_path = "{bin}"

[[pair]]
name = "sched"
source = "{d}/src3"
destination = "{d}/dst3"
schedule = "every 2s"
"#,
            d = d.display(),
            rsh = sshd.rsh(),
            bin = daemon_common::bin().display()
        ),
    );
    write(&Daemon::config(d), &text);
    let dm = Daemon::start(d);
    dm.wait_state("local", "watching", LONG);
    dm.wait_state("remote", "watching", LONG);
    dm.wait_state("sched", "scheduled", LONG);
    for i in 1..=3 {
        let f = d.join(format!("dst{i}/first"));
        assert!(wait_for(LONG, || has(&f, &format!("src{i}"))), "dst{i}");
    }

    // Edits replicate.
    write(&d.join("src1/a"), "A");
    write(&d.join("src2/b"), "B");
    write(&d.join("src3/c"), "C");
    assert!(
        wait_for(LONG, || has(&d.join("dst1/a"), "A")),
        "{}",
        dm.log()
    );
    assert!(
        wait_for(LONG, || has(&d.join("dst2/b"), "B")),
        "{}",
        dm.log()
    );
    // Every 2 s: within a few periods.
    assert!(wait_for(Duration::from_secs(10), || has(
        &d.join("dst3/c"),
        "C"
    )));

    // status --json: the pinned fields, with values that match.
    let s = dm.status().unwrap();
    let pairs = s["pairs"].as_array().unwrap();
    let names: Vec<&str> = pairs.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["local", "remote", "sched"]);
    for p in pairs {
        for k in [
            "name",
            "mode",
            "state",
            "error",
            "last_sync",
            "last_success",
            "lag_ms",
            "queue",
            "conflicts",
            "bytes",
            "files",
        ] {
            assert!(p.get(k).is_some(), "{k} missing in {p}");
        }
        assert_eq!(p["mode"], "mirror");
        assert!(p["error"].is_null(), "{p}");
        let ls = p["last_success"].as_str().unwrap();
        // RFC 3339: 2026-12-07T22:39:58.123Z
        assert_eq!(ls.len(), 24, "{ls}");
        assert!(ls.as_bytes()[10] == b'T' && ls.ends_with('Z'), "{ls}");
        assert!(p["files"].as_u64().unwrap() >= 2, "{p}");
        assert!(p["bytes"].as_u64().unwrap() >= 5, "{p}");
    }

    // Pause: nothing replicates; resume: the rescan catches up.
    let o = dm.ctl(&["pause", "local"]);
    assert!(o.status.success(), "{o:?}");
    dm.wait_state("local", "paused", LONG);
    write(&d.join("src1/while-paused"), "P");
    assert!(
        !wait_for(Duration::from_millis(1500), || d
            .join("dst1/while-paused")
            .exists()),
        "a paused pair replicated"
    );
    let o = dm.ctl(&["resume", "local"]);
    assert!(o.status.success(), "{o:?}");
    assert!(wait_for(LONG, || has(&d.join("dst1/while-paused"), "P")));
    dm.wait_state("local", "watching", LONG);

    // sync-now: done when the command returns, with the sync's code (on
    // the paused pair: no scheduled run can do it instead).
    assert!(dm.ctl(&["pause", "sched"]).status.success());
    dm.wait_state("sched", "paused", LONG);
    let big = vec![7u8; 64 << 20];
    std::fs::write(d.join("src3/now"), &big).unwrap();
    let o = dm.ctl(&["sync-now", "sched"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let got = std::fs::read(d.join("dst3/now")).unwrap_or_default();
    assert!(
        got == big,
        "sync-now returned before the sync ({} bytes)",
        got.len()
    );
    assert_eq!(dm.state_of("sched"), "paused");
    assert!(dm.ctl(&["resume", "sched"]).status.success());
    let o = dm.ctl(&["sync-now", "local"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = dm.ctl(&["sync-now", "nosuch"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("no pair named"));

    // The socket: 0600 in a 0700 directory.
    let sock = dm.socket();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sock), 0o600);
    assert_eq!(mode(sock.parent().unwrap()), 0o700);

    // Another uid is refused by SO_PEERCRED even when the modes let it
    // connect.
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        sock.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(daemon_common::bin())
        .args(["status", "--json", "--control"])
        .arg(&sock)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert!(o.stdout.is_empty(), "another uid got an answer: {o:?}");
    let o = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(daemon_common::bin())
        .args(["pause", "local", "--control"])
        .arg(&sock)
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(dm.state_of("local"), "watching");

    // SIGTERM: exit 0 within 5 s, the socket removed.
    let (code, took) = dm.stop();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(!sock.exists());
}

#[test]
fn unusable_destination_is_a_runtime_error() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir(d.join("src")).unwrap();
    write(&d.join("src/f"), "x");
    // DST's parent does not exist yet.
    let text = config_text(
        d,
        &format!(
            "[[pair]]\nname = \"p\"\nsource = \"{d}/src\"\ndestination = \"{d}/later/dst\"\n",
            d = d.display()
        ),
    );
    write(&Daemon::config(d), &text);
    let o = Command::new(daemon_common::bin())
        .args(["daemon", "--check", "--config"])
        .arg(Daemon::config(d))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let dm = Daemon::start(d);
    dm.wait_state("p", "error", LONG);
    let p = dm.pair("p").unwrap();
    assert!(p["error"].as_str().unwrap().contains("later"), "{p}");
    assert_eq!(dm.ctl(&["sync-now", "p"]).status.code(), Some(3));
    // Retried: once the parent exists, the pair recovers by itself.
    std::fs::create_dir(d.join("later")).unwrap();
    dm.wait_state("p", "watching", LONG);
    assert!(wait_for(LONG, || has(&d.join("later/dst/f"), "x")));
    assert_eq!(dm.stop().0, Some(0));
}

#[test]
fn second_daemon_refused_stale_socket_replaced() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(&Daemon::config(d), &config_text(d, ""));
    let a = Daemon::start(d);
    assert!(wait_for(LONG, || a.status().is_some()));
    // A second one on the same socket refuses to start.
    let o = Command::new(daemon_common::bin())
        .args(["daemon", "--config"])
        .arg(Daemon::config(d))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("another dirsync daemon"));
    assert!(a.status().is_some(), "the first one must keep its socket");
    // kill -9 leaves a stale socket: the next daemon replaces it.
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    assert!(a.socket().exists());
    let b = Daemon::start(d);
    assert!(wait_for(LONG, || b.status().is_some()), "{}", b.log());
    assert_eq!(b.stop().0, Some(0));
}

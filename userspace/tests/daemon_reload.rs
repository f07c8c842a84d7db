//! SIGHUP applies only the difference (one pair untouched: same inotify
//! watch in the daemon's one inotify instance, no rescan; one changed: restarted; one removed: stopped,
//! its destination left; one added), a bad file keeps the old config,
//! and systemd's notify protocol as a datagram socket the test binds
//! sees it all (READY, WATCHDOG, RELOADING + MONOTONIC_USEC, STATUS,
//! STOPPING). Also `daemon --check` from the command line, and the unit
//! files through `systemd-analyze verify`.

mod daemon_common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use daemon_common::{config_text, inotify_fds, wait_for, watch_of, Daemon, NotifySocket};

const LONG: Duration = Duration::from_secs(30);

fn write(p: &Path, s: &str) {
    std::fs::write(p, s).unwrap();
}

fn has(p: &Path, s: &str) -> bool {
    std::fs::read_to_string(p).is_ok_and(|c| c == s)
}

fn pair(d: &Path, name: &str, extra: &str) -> String {
    format!(
        "[[pair]]\nname = \"{name}\"\nsource = \"{d}/{name}-src\"\ndestination = \"{d}/{name}-dst\"\n{extra}\n",
        d = d.display()
    )
}

fn pings_in(got: &[String]) -> usize {
    got.iter().filter(|m| *m == "WATCHDOG=1").count()
}

#[test]
fn reload_applies_the_difference() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for n in ["keep", "change", "remove", "add"] {
        std::fs::create_dir(d.join(format!("{n}-src"))).unwrap();
        write(&d.join(format!("{n}-src/f")), n);
    }
    let old = [
        pair(d, "keep", ""),
        pair(d, "change", ""),
        pair(d, "remove", ""),
    ]
    .concat();
    write(&Daemon::config(d), &config_text(d, &old));
    let mut notify = NotifySocket::bind(d);
    let ns = notify.path.display().to_string();
    let dm = Daemon::start_env(d, &[("NOTIFY_SOCKET", &ns), ("WATCHDOG_USEC", "400000")]);
    assert!(
        notify.wait(LONG, |m| m.contains("READY=1")),
        "{:?}\n{}",
        notify.got,
        dm.log()
    );
    let ready = notify
        .got
        .iter()
        .find(|m| m.contains("READY=1"))
        .unwrap()
        .clone();
    assert!(ready.contains("STATUS=3 pairs"), "{ready}");
    // The watchdog at half WATCHDOG_USEC: several pings in a second.
    assert!(
        notify.wait_all(Duration::from_secs(5), |got| pings_in(got) >= 3),
        "{:?}",
        notify.got
    );
    for n in ["keep", "change", "remove"] {
        dm.wait_state(n, "watching", LONG);
        assert!(wait_for(LONG, || has(&d.join(format!("{n}-dst/f")), n)));
    }
    // One inotify instance for every pair.
    assert_eq!(
        inotify_fds(dm.pid()).len(),
        1,
        "{:?}",
        inotify_fds(dm.pid())
    );
    let keep_w = watch_of(dm.pid(), &d.join("keep-src")).expect("keep's watch");
    let change_w = watch_of(dm.pid(), &d.join("change-src")).expect("change's watch");
    assert_eq!(keep_w.0, change_w.0);
    // A stray file in a destination survives only where nothing rescans.
    write(&d.join("keep-dst/stray"), "s");
    write(&d.join("change-dst/stray"), "s");

    let new = [
        pair(d, "keep", ""),
        pair(d, "change", "exclude = [\"*.tmp\"]"),
        pair(d, "add", ""),
    ]
    .concat();
    write(&Daemon::config(d), &config_text(d, &new));
    notify.got.clear();
    dm.signal(libc::SIGHUP);
    assert!(
        notify.wait(LONG, |m| m.contains("RELOADING=1")),
        "{:?}",
        notify.got
    );
    let reloading = notify
        .got
        .iter()
        .find(|m| m.contains("RELOADING=1"))
        .unwrap()
        .clone();
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .expect("MONOTONIC_USEC")
        .parse()
        .unwrap();
    assert!(usec > 0);
    assert!(
        notify.wait(LONG, |m| m.contains("READY=1")),
        "{:?}",
        notify.got
    );

    // Added: runs. Changed: restarted (its rescan removed the stray).
    dm.wait_state("add", "watching", LONG);
    assert!(wait_for(LONG, || has(&d.join("add-dst/f"), "add")));
    assert!(
        wait_for(LONG, || !d.join("change-dst/stray").exists()),
        "{}",
        dm.log()
    );
    dm.wait_state("change", "watching", LONG);
    let names: Vec<String> = dm.status().unwrap()["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["keep", "change", "add"]);
    // Untouched: the same watch (descriptor and watch descriptor) on its
    // source, and no rescan (the stray is still there).
    assert_eq!(watch_of(dm.pid(), &d.join("keep-src")), Some(keep_w));
    assert_eq!(inotify_fds(dm.pid()).len(), 1);
    assert!(
        d.join("keep-dst/stray").exists(),
        "the untouched pair was rescanned"
    );
    // Changed: its old watch was removed and a new one added (the kernel
    // hands out watch descriptors cyclically: a new one differs).
    let new_change_w = watch_of(dm.pid(), &d.join("change-src")).expect("change's new watch");
    assert_eq!(new_change_w.0, keep_w.0);
    assert_ne!(new_change_w.1, change_w.1);
    write(&d.join("keep-src/g"), "G");
    assert!(wait_for(LONG, || has(&d.join("keep-dst/g"), "G")));
    // Removed: stopped, destination left as it is.
    assert!(watch_of(dm.pid(), &d.join("remove-src")).is_none());
    write(&d.join("remove-src/late"), "L");
    assert!(!wait_for(Duration::from_millis(1000), || d
        .join("remove-dst/late")
        .exists()));
    assert!(has(&d.join("remove-dst/f"), "remove"));

    // A bad file: refused, said in STATUS=, the old config keeps running.
    write(
        &Daemon::config(d),
        &config_text(d, &format!("{new}[[pair]]\nname = \"keep\"\n")),
    );
    notify.got.clear();
    dm.signal(libc::SIGHUP);
    assert!(
        notify.wait(LONG, |m| m.contains("READY=1")
            && m.contains("reload refused")),
        "{:?}",
        notify.got
    );
    let st = notify
        .got
        .iter()
        .find(|m| m.contains("reload refused"))
        .unwrap();
    assert!(st.contains("daemon.toml:"), "{st}");
    assert_eq!(dm.status().unwrap()["pairs"].as_array().unwrap().len(), 3);
    write(&d.join("keep-src/h"), "H");
    assert!(wait_for(LONG, || has(&d.join("keep-dst/h"), "H")));
    assert_eq!(watch_of(dm.pid(), &d.join("keep-src")), Some(keep_w));

    notify.got.clear();
    let (code, took) = dm.stop();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5));
    assert!(
        notify.wait(Duration::from_secs(2), |m| m.contains("STOPPING=1")),
        "{:?}",
        notify.got
    );
}

#[test]
fn journald_prefixes_and_json_logs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir(d.join("p-src")).unwrap();
    write(&Daemon::config(d), &config_text(d, &pair(d, "p", "")));
    let dm = Daemon::start_env(d, &[("JOURNAL_STREAM", "8:1234")]);
    dm.wait_state("p", "watching", LONG);
    assert_eq!(dm.stop().0, Some(0));
    let log = std::fs::read_to_string(d.join("daemon.log")).unwrap();
    assert!(!log.is_empty());
    for l in log.lines() {
        let ok = ["<3>", "<4>", "<6>", "<7>"]
            .iter()
            .any(|p| l.starts_with(p));
        assert!(ok, "no priority prefix: {l}");
    }
    assert!(log.contains("<6>info: ready"), "{log}");

    let mut c = Command::new(daemon_common::bin());
    let out = std::fs::File::create(d.join("json.log")).unwrap();
    c.args(["daemon", "--log-format", "json", "--config"])
        .arg(Daemon::config(d))
        .stderr(out);
    let mut child = c.spawn().unwrap();
    let sock = d.join("run/control.sock");
    assert!(wait_for(LONG, || std::fs::read_to_string(
        d.join("json.log")
    )
    .is_ok_and(|s| s.contains("ready"))));
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(!sock.exists());
    let log = std::fs::read_to_string(d.join("json.log")).unwrap();
    for l in log.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert!(
            v["level"].is_string() && v["message"].is_string() && v["time"].is_string(),
            "{l}"
        );
    }
}

#[test]
fn check_from_the_command_line() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir(d.join("a-src")).unwrap();
    std::fs::create_dir(d.join("b-src")).unwrap();
    let f = Daemon::config(d);
    let cases: &[(String, Option<usize>)] = &[
        (pair(d, "a", ""), None),
        (format!("{}{}", pair(d, "a", ""), pair(d, "a", "")), Some(7)),
        (
            pair(d, "a", "schedule = \"every 2s\"\nwatch = true"),
            Some(6),
        ),
        (pair(d, "a", "colour = \"red\""), Some(5)),
        (pair(d, "missing", ""), Some(3)),
        (
            format!("[daemon]\nhttp = \"192.0.2.1:80\"\n{}", pair(d, "a", "")),
            Some(2),
        ),
    ];
    for (text, line) in cases {
        write(&f, text);
        let o = Command::new(daemon_common::bin())
            .args(["daemon", "--check", "--config"])
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        match line {
            None => assert_eq!(o.status.code(), Some(0), "{text}: {err}"),
            Some(l) => {
                assert_eq!(o.status.code(), Some(1), "{text}");
                let want = format!("{}:{l}: ", f.display());
                assert!(err.starts_with(&want), "{text}\nwant {want}\ngot {err}");
            }
        }
    }
}

#[test]
fn unit_files_verify() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist");
    let t = tempfile::tempdir().unwrap();
    let rt = t.path().join("rt");
    std::fs::create_dir(&rt).unwrap();
    for (unit, user) in [("dirsync.service", false), ("user/dirsync.service", true)] {
        let text = std::fs::read_to_string(root.join(unit)).unwrap();
        assert!(text.contains("Type=notify") && text.contains("NotifyAccess=main"));
        // verify checks that ExecStart= exists: the binary under test.
        let text = text.replace(
            "/usr/local/bin/dirsync",
            &daemon_common::bin().display().to_string(),
        );
        let dir = t.path().join(if user { "u" } else { "s" });
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("dirsync.service");
        write(&p, &text);
        let mut c = Command::new("systemd-analyze");
        if user {
            c.arg("--user").env("XDG_RUNTIME_DIR", &rt);
        }
        let o = c.arg("verify").arg(&p).output().expect("systemd-analyze");
        assert!(o.status.success(), "{unit}: {o:?}");
        // Warnings (an unknown key, a bad value) are not failures for it:
        // none may be printed.
        assert!(
            o.stderr.is_empty(),
            "{unit}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

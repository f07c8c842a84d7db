//! Failures: `kill -9` of the daemon in the middle of a copy, then a
//! restart (converges, nothing partial under a final name, counters
//! kept); a remote pair whose sshd is stopped then started again
//! (retried with back-off, `on_error` run exactly once for the error and
//! once for the recovery).

mod common;
mod daemon_common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::sshd::Sshd;
use daemon_common::{config_text, wait_for, Daemon};

const LONG: Duration = Duration::from_secs(60);

fn write(p: &Path, s: &str) {
    std::fs::write(p, s).unwrap();
}

fn has(p: &Path, s: &str) -> bool {
    std::fs::read_to_string(p).is_ok_and(|c| c == s)
}

/// The `files` counter saved for the pair `name` in the state database.
fn saved_files(db: &Path, name: &str) -> Option<i64> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()?;
    c.query_row("SELECT files FROM pairs WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .ok()
}

fn files_of(dm: &Daemon, name: &str) -> u64 {
    dm.pair(name).and_then(|p| p["files"].as_u64()).unwrap_or(0)
}

#[test]
fn kill_9_mid_copy_then_restart_converges() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let src = d.join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..20 {
        write(&src.join(format!("small{i}")), &format!("{i}"));
    }
    let text = config_text(
        d,
        &format!(
            "[[pair]]\nname = \"p\"\nsource = \"{s}\"\ndestination = \"{d}/dst\"\n",
            s = src.display(),
            d = d.display()
        ),
    );
    write(&Daemon::config(d), &text);
    let dm = Daemon::start(d);
    dm.wait_state("p", "watching", LONG);
    assert!(wait_for(LONG, || files_of(&dm, "p") >= 20));
    // The state database has the counters (saved every 2 s), and the old
    // JSON file is no longer written.
    let state = d.join("state/daemon.sqlite");
    assert!(wait_for(LONG, || saved_files(&state, "p") == Some(20)));
    assert!(!d.join("state/daemon-state.json").exists());

    // A big file, written in one go; the daemon dies while copying it.
    let big = vec![0x5au8; 256 << 20];
    let mut f = std::fs::File::create(src.join("big")).unwrap();
    f.write_all(&big).unwrap();
    drop(f);
    // Its copy has started when DST's directory changed (an O_TMPFILE is
    // linked only when complete, so watch the daemon's write progress).
    let pid = dm.pid();
    let wrote = || {
        std::fs::read_to_string(format!("/proc/{pid}/io"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("wchar: ")
                        .map(|v| v.trim().parse::<u64>().unwrap_or(0))
                })
            })
            .unwrap_or(0)
    };
    let base = wrote();
    assert!(wait_for(LONG, || wrote() > base + (16 << 20)));
    let mut dm = dm;
    dm.child.kill().unwrap();
    dm.child.wait().unwrap();
    // Nothing partial under the final name.
    let complete_before_restart = match std::fs::metadata(d.join("dst/big")) {
        Ok(m) => {
            assert_eq!(
                m.len(),
                big.len() as u64,
                "a partial file under the final name"
            );
            true
        }
        Err(_) => false,
    };
    drop(dm);

    let dm = Daemon::start(d);
    assert!(wait_for(LONG, || std::fs::metadata(d.join("dst/big"))
        .is_ok_and(|m| m.len() == big.len() as u64)));
    assert_eq!(std::fs::read(d.join("dst/big")).unwrap(), big);
    for i in 0..20 {
        assert!(has(&d.join(format!("dst/small{i}")), &format!("{i}")));
    }
    // Counters kept across the restart: the 20 earlier files, and big
    // when the restarted daemon copied it (on a loaded machine the first
    // one may have finished it just before the kill, and before saving
    // its counters).
    let expected = if complete_before_restart { 20 } else { 21 };
    assert!(
        wait_for(LONG, || files_of(&dm, "p") >= expected),
        "{:?}",
        dm.pair("p")
    );
    // No stray temporary left in DST.
    let names: Vec<_> = std::fs::read_dir(d.join("dst"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 21, "{names:?}");
    assert_eq!(dm.stop().0, Some(0));
}

fn hook_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn sshd_down_then_up_runs_on_error_once_each_way() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir(d.join("src")).unwrap();
    write(&d.join("src/f"), "1");
    let hook = d.join("hook.sh");
    let lines = d.join("hook.lines");
    common::write_script(
        &hook,
        format!(
            "#!/bin/sh\necho \"$DIRSYNC_PAIR $DIRSYNC_EVENT $1\" >> '{}'\n",
            lines.display()
        ),
    );
    let mut sshd = Sshd::start();
    let text = format!(
        "[daemon]\ncontrol = \"{d}/run/control.sock\"\nstate = \"{d}/state\"\non_error = [\"{h}\", \"arg\"]\n\
         [[pair]]\nname = \"r\"\nsource = \"{d}/src\"\ndestination = \"127.0.0.1:{d}/dst\"\n\
         schedule = \"every 1s\"\nrsh = \"{rsh}\"\nremote_path = \"{bin}\"\ntimeout = 10\n",
        d = d.display(),
        h = hook.display(),
        rsh = sshd.rsh(),
        bin = daemon_common::bin().display()
    );
    write(&Daemon::config(d), &text);
    let dm = Daemon::start(d);
    assert!(
        wait_for(LONG, || has(&d.join("dst/f"), "1")),
        "{}",
        dm.log()
    );
    dm.wait_state("r", "scheduled", LONG);

    sshd.pause();
    dm.wait_state("r", "error", LONG);
    let errors = |dm: &Daemon| dm.pair("r").and_then(|p| p["errors"].as_u64()).unwrap_or(0);
    let e0 = errors(&dm);
    // Retried (with back-off): more failed runs, still one hook line.
    assert!(
        wait_for(LONG, || errors(&dm) >= e0 + 2),
        "{:?}",
        dm.pair("r")
    );
    assert!(wait_for(LONG, || hook_lines(&lines).len() == 1));
    assert_eq!(hook_lines(&lines), ["r error arg"]);

    write(&d.join("src/f"), "2");
    sshd.resume();
    dm.wait_state("r", "scheduled", LONG);
    assert!(wait_for(LONG, || has(&d.join("dst/f"), "2")));
    assert!(wait_for(LONG, || hook_lines(&lines).len() == 2));
    // A few more successful runs: no more hook calls.
    let last = dm.pair("r").unwrap()["last_sync"].clone();
    assert!(wait_for(LONG, || dm.pair("r").unwrap()["last_sync"] != last));
    assert!(!wait_for(Duration::from_millis(1500), || hook_lines(
        &lines
    )
    .len()
        > 2));
    assert_eq!(hook_lines(&lines), ["r error arg", "r recovered arg"]);
    assert_eq!(dm.stop().0, Some(0));
}

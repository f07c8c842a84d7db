//! Stopping and overflowing: SIGTERM while a large file is being copied
//! (exit 0 within 5 s, `STOPPING=1` sent, nothing partial under a final
//! name, no temporary file left), and an overflow of one pair's share of
//! the daemon's one inotify instance (that pair rescanned, the other not).

mod daemon_common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use daemon_common::{config_text, wait_for, Daemon, NotifySocket};

const LONG: Duration = Duration::from_secs(30);

fn pair(d: &Path, name: &str) -> String {
    format!(
        "[[pair]]\nname = \"{name}\"\nsource = \"{d}/{name}-src\"\ndestination = \"{d}/{name}-dst\"\n",
        d = d.display()
    )
}

/// Whether `pid` holds a file open under `dir` (an `O_TMPFILE` shows as
/// `dir/#N (deleted)`, a named temporary file as its name).
fn writing_under(pid: u32, dir: &Path) -> bool {
    let prefix = format!("{}/", dir.display());
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    rd.flatten().any(|e| {
        std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with(&prefix))
    })
}

#[test]
fn sigterm_mid_copy_exits_0_and_leaves_nothing_partial() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (src, dst) = (d.join("big-src"), d.join("big-dst"));
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&dst).unwrap();
    // 768 MiB of non-zero bytes (no hole to skip): long enough to copy
    // that the signal lands in the middle.
    let size: u64 = 768 << 20;
    {
        let mut f = std::fs::File::create(src.join("big")).unwrap();
        let block = vec![0x5au8; 1 << 20];
        for _ in 0..(size >> 20) {
            f.write_all(&block).unwrap();
        }
    }
    std::fs::write(Daemon::config(d), config_text(d, &pair(d, "big"))).unwrap();
    let mut notify = NotifySocket::bind(d);
    let ns = notify.path.display().to_string();
    let dm = Daemon::start_env(d, &[("NOTIFY_SOCKET", &ns)]);
    // Wait until the copy is under way: the daemon holds a file open in DST.
    let caught = wait_for_fast(LONG, || writing_under(dm.pid(), &dst));
    assert!(caught, "the copy was never seen in flight\n{}", dm.log());
    let start = Instant::now();
    dm.signal(libc::SIGTERM);
    assert!(
        notify.wait(Duration::from_secs(5), |m| m.contains("STOPPING=1")),
        "{:?}",
        notify.got
    );
    let pid = dm.pid();
    let (code, took) = dm.stop();
    let took = took.max(start.elapsed());
    assert_eq!(code, Some(0), "exit code");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || !writing_under(pid, &dst));
    // Finished or rolled back: the final name holds the whole file or
    // nothing, and nothing else is in DST.
    let names: Vec<_> = std::fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.is_empty() || names == ["big"],
        "DST holds {names:?} after the stop"
    );
    if !names.is_empty() {
        let m = std::fs::metadata(dst.join("big")).unwrap();
        assert_eq!(m.len(), size, "a partial file under its final name");
    }
}

/// Polls every millisecond (the copy may take well under a second).
fn wait_for_fast(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

#[test]
fn one_pairs_overflow_rescans_that_pair_only() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for n in ["busy", "calm"] {
        std::fs::create_dir(d.join(format!("{n}-src"))).unwrap();
        std::fs::write(d.join(format!("{n}-src/f")), n).unwrap();
    }
    let text = [pair(d, "busy"), pair(d, "calm")].concat();
    std::fs::write(Daemon::config(d), config_text(d, &text)).unwrap();
    // Each pair's inbox holds 4 events: a burst overflows it.
    let dm = Daemon::start_env(d, &[("DIRSYNC_PAIR_EVENTS", "4")]);
    for n in ["busy", "calm"] {
        dm.wait_state(n, "watching", LONG);
        assert!(wait_for(LONG, || d.join(format!("{n}-dst/f")).exists()));
    }
    // A stray file in DST goes only with a full rescan of its pair.
    for n in ["busy", "calm"] {
        std::fs::write(d.join(format!("{n}-dst/stray")), "s").unwrap();
    }
    let busy = d.join("busy-src");
    // Bursts of 500 new files (at most 20) until the overflow's rescan
    // removes the stray.
    let mut round = 0;
    let mut rescanned = false;
    while round < 20 && !rescanned {
        for i in 0..500 {
            std::fs::write(busy.join(format!("b{round}-{i}")), "x").unwrap();
        }
        round += 1;
        rescanned = wait_for(Duration::from_millis(500), || {
            !d.join("busy-dst/stray").exists()
        });
    }
    assert!(rescanned, "busy was not rescanned\n{}", dm.log());
    // Every file of the bursts arrived (nothing lost by the overflow).
    let want = round * 500 + 1;
    assert!(
        wait_for(LONG, || std::fs::read_dir(d.join("busy-dst"))
            .map(|r| r.count())
            .unwrap_or(0)
            == want),
        "busy-dst incomplete"
    );
    // The calm pair was not rescanned, and still follows its source.
    assert!(d.join("calm-dst/stray").exists(), "calm was rescanned too");
    std::fs::write(d.join("calm-src/g"), "G").unwrap();
    assert!(wait_for(LONG, || std::fs::read_to_string(
        d.join("calm-dst/g")
    )
    .is_ok_and(|c| c == "G")));
    assert!(d.join("calm-dst/stray").exists(), "calm was rescanned too");
    let (code, _) = dm.stop();
    assert_eq!(code, Some(0));
}

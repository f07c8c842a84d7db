//! `dirsync watch SRC host:DST` through a real sshd whose link is cut
//! during churn: sshd stops listening and the ssh client of the watcher
//! is killed, for 5 s; then sshd comes back. The watcher says so, keeps
//! running, reconnects, resyncs, and DST converges.

mod common;
use common::sshd::Sshd;
use common::*;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The pids of the `ssh` processes whose parent is `pid`.
fn ssh_children(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 2..]
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if comm == "ssh" && ppid == Some(pid) {
            out.push(stat[..open].trim().parse().unwrap());
        }
    }
    out
}

fn churn(src: &Path, stop: &AtomicBool) -> u64 {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let f = src.join(format!("f{}", i % 40));
        std::fs::write(&f, format!("content {i}\n").repeat((i % 7) as usize + 1)).unwrap();
        if i % 7 == 0 {
            let d = src.join(format!("d{}", i % 5));
            let _ = std::fs::create_dir(&d);
            std::fs::write(d.join(format!("in{i}")), b"x").unwrap();
        }
        if i % 11 == 0 {
            let _ = std::fs::rename(&f, src.join(format!("g{}", i % 13)));
        }
        if i % 17 == 0 {
            let _ = std::fs::remove_file(src.join(format!("g{}", (i / 17) % 13)));
        }
        if i % 29 == 0 {
            let _ = std::fs::remove_dir_all(src.join(format!("d{}", (i / 29) % 5)));
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(3));
    }
    i
}

fn wait_converged(src: &Path, dst: &Path, child: &mut Child, within: Duration) {
    let start = Instant::now();
    loop {
        if matches!(tree_diff(src, dst), Ok(d) if d.is_empty()) {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "the watcher exited");
        assert!(
            start.elapsed() < within,
            "DST did not converge: {:?}",
            tree_diff(src, dst)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn link_cut_during_churn_then_restored_converges() {
    let mut sshd = Sshd::start();
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    let mut child = cmd(["watch", "--json"])
        .args(sshd.args())
        .arg(&src)
        .arg(sshd::remote(&dst))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let o = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            o.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    wait_converged(&src, &dst, &mut child, Duration::from_secs(20));
    let stop = Arc::new(AtomicBool::new(false));
    let (s, st) = (src.clone(), stop.clone());
    let churner = std::thread::spawn(move || churn(&s, &st));
    std::thread::sleep(Duration::from_secs(1));
    // Cut: no new connections, and the one in use killed.
    sshd.pause();
    let killed = ssh_children(child.id());
    assert_eq!(killed.len(), 1, "one ssh child expected: {killed:?}");
    for pid in &killed {
        // SAFETY: kill on a process we identified as our watcher's ssh.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the watcher exited while the link was down"
    );
    sshd.resume();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let changes = churner.join().unwrap();
    assert!(changes > 100, "{changes}");
    wait_converged(&src, &dst, &mut child, Duration::from_secs(40));
    let text = out.lock().unwrap().clone();
    // (Only the warning lines: the sample tree's non-UTF-8 names make
    // lines serde_json does not take.)
    let warnings: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.starts_with(r#"{"action":"warning""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let said = |needle: &str| {
        warnings
            .iter()
            .any(|w| w["message"].as_str().unwrap_or("").contains(needle))
    };
    assert!(said("connection lost"), "{warnings:#?}");
    assert!(said("cannot reconnect"), "{warnings:#?}");
    assert!(said("reconnected; full resync"), "{warnings:#?}");
    // It still follows changes, then stops cleanly on SIGTERM.
    std::fs::write(src.join("after"), b"after the cut").unwrap();
    wait_converged(&src, &dst, &mut child, Duration::from_secs(20));
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

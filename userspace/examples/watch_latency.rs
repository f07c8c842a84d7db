//! Probe for `scripts/bench-watch.sh`: measures how fast a running
//! replicator (`dirsync watch`, lsyncd, ...) makes DST follow SRC.
//!
//! ```text
//! watch_latency latency SRC DST N   # N single-file changes, one at a time
//! watch_latency churn   SRC DST N   # N new files at once, in 20 dirs
//! ```
//!
//! `latency`: writes `SRC/lat/fK` (K = i mod 16) with new content, closes
//! it, and measures the time until `DST/lat/fK` has that content (DST is
//! watched with inotify, checked on each of its events and every 2 ms).
//! Prints `latency n=N p50_us=.. p90_us=.. p99_us=.. max_us=.. lost=..`.
//!
//! `churn`: creates N files of 1 KiB under `SRC/churn/dNN/` as fast as it
//! can and measures the time until every one is in DST with its content.
//! Prints `churn n=N write_ms=.. total_ms=.. files_per_s=..`.
//!
//! Both expect `SRC/lat` (resp. `SRC/churn/d00..d19`) to exist and to be
//! replicated already.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inotify::{Inotify, WatchMask};

fn usage() -> ! {
    eprintln!("usage: watch_latency latency|churn SRC DST N");
    std::process::exit(2)
}

fn content(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("change {i} ").into_bytes();
    while v.len() < len {
        v.push(b'a' + (v.len() % 26) as u8);
    }
    v.push(b'\n');
    v
}

fn equal(p: &Path, want: &[u8]) -> bool {
    fs::read(p).map(|b| b == want).unwrap_or(false)
}

fn percentile(sorted: &[u128], q: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn latency(src: &Path, dst: &Path, n: usize) {
    let sdir = src.join("lat");
    let ddir = dst.join("lat");
    let mut ino = Inotify::init().expect("inotify");
    ino.watches()
        .add(
            &ddir,
            WatchMask::MOVED_TO | WatchMask::CLOSE_WRITE | WatchMask::CREATE | WatchMask::MODIFY,
        )
        .expect("watching DST/lat");
    let mut buf = vec![0u8; 64 * 1024];
    let mut lat = Vec::with_capacity(n);
    let mut lost = 0;
    for i in 0..n {
        let name = format!("f{}", i % 16);
        let want = content(i, 100);
        // Drain stale DST events.
        while ino
            .read_events(&mut buf)
            .map(|e| e.count() > 0)
            .unwrap_or(false)
        {}
        {
            let mut f = fs::File::create(sdir.join(&name)).expect("write SRC");
            f.write_all(&want).expect("write SRC");
        }
        let t0 = Instant::now();
        let dp = ddir.join(&name);
        let deadline = t0 + Duration::from_secs(5);
        loop {
            if equal(&dp, &want) {
                lat.push(t0.elapsed().as_micros());
                break;
            }
            if Instant::now() > deadline {
                lost += 1;
                break;
            }
            // Wait for a DST event, at most 2 ms.
            let mut pfd = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&ino),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd.
            unsafe { libc::poll(&mut pfd, 1, 2) };
            while ino
                .read_events(&mut buf)
                .map(|e| e.count() > 0)
                .unwrap_or(false)
            {}
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    lat.sort_unstable();
    println!(
        "latency n={} p50_us={} p90_us={} p99_us={} max_us={} lost={}",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0),
        lost
    );
}

fn churn(src: &Path, dst: &Path, n: usize) {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut files: Vec<(PathBuf, PathBuf, Vec<u8>)> = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let rel = format!("churn/d{:02}/c{stamp}-{i}", i % 20);
        let want = content(i, 1024);
        fs::write(src.join(&rel), &want).expect("write SRC");
        files.push((src.join(&rel), dst.join(&rel), want));
    }
    let write_ms = t0.elapsed().as_millis();
    let deadline = t0 + Duration::from_secs(300);
    let mut pending: Vec<usize> = (0..n).collect();
    while !pending.is_empty() {
        pending.retain(|&i| !equal(&files[i].1, &files[i].2));
        if pending.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let total = t0.elapsed();
    println!(
        "churn n={} write_ms={} total_ms={} files_per_s={:.0} lost={}",
        n,
        write_ms,
        total.as_millis(),
        (n - pending.len()) as f64 / total.as_secs_f64(),
        pending.len()
    );
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 5 {
        usage();
    }
    let n: usize = a[4].parse().unwrap_or_else(|_| usage());
    let (src, dst) = (Path::new(&a[2]), Path::new(&a[3]));
    match a[1].as_str() {
        "latency" => latency(src, dst, n),
        "churn" => churn(src, dst, n),
        _ => usage(),
    }
}

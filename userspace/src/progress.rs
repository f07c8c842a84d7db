//! A one-line progress display on stderr for long runs on a terminal.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dirsync::report::Progress;

/// The progress line: drawn by a ticker thread, cleared before any other
/// output line so the two never interleave.
#[derive(Debug, Default)]
pub struct ProgressLine {
    shown: AtomicBool,
    lock: Mutex<()>,
}

impl ProgressLine {
    /// Erases the line if it is shown.
    pub fn clear(&self) {
        let _g = self.lock.lock();
        if self.shown.swap(false, Ordering::SeqCst) {
            let _ = std::io::stderr().lock().write_all(b"\r\x1b[K");
        }
    }

    /// Draws `text` in place.
    pub fn draw(&self, text: &str) {
        let _g = self.lock.lock();
        let _ = write!(std::io::stderr().lock(), "\r\x1b[K{text}");
        self.shown.store(true, Ordering::SeqCst);
    }
}

/// Renders the counters as `scanned 12345 · copied 678 files, 1.2 GiB ·
/// 3.4s`.
pub fn render(p: &Progress, started: Instant) -> String {
    let scanned = p.scanned.load(Ordering::Relaxed);
    let copied = p.copied.load(Ordering::Relaxed);
    let bytes = p.bytes.load(Ordering::Relaxed);
    format!(
        "scanned {scanned} · copied {copied} files, {} · {:.1}s",
        human_bytes(bytes),
        started.elapsed().as_secs_f64()
    )
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Runs `f` while a ticker redraws the line every 200 ms, starting after
/// `delay` (short runs show nothing); the line is cleared at the end.
pub fn with_progress<T>(
    line: &ProgressLine,
    progress: &Progress,
    delay: Duration,
    f: impl FnOnce() -> T,
) -> T {
    let done = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if started.elapsed() >= delay && (started.elapsed().as_millis() / 50) % 4 == 0 {
                    line.draw(&render(progress, started));
                }
            }
            line.clear();
        });
        let r = f();
        done.store(true, Ordering::Relaxed);
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_humane() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}

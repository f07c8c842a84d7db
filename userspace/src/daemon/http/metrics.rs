//! `/metrics`: the Prometheus text exposition format, version 0.0.4.
//!
//! Per pair (label `pair="NAME"`): `dirsync_pair_last_success_timestamp_seconds`
//! (0 before the first success), `dirsync_pair_last_sync_timestamp_seconds`,
//! `dirsync_pair_lag_seconds`, `dirsync_pair_queue_depth`,
//! `dirsync_pair_files_copied_total`, `dirsync_pair_bytes_copied_total`,
//! `dirsync_pair_errors_total`, `dirsync_pair_conflicts_total`, and
//! `dirsync_pair_state{pair,state}` (1 for the pair's state, 0 for the
//! others); for the daemon `dirsync_inotify_watches` and
//! `dirsync_inotify_watches_max`.

use std::fmt::Write;

use super::time::unix_seconds;
use crate::daemon::api::{PairState, PairStatus, Watches};

/// The `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const STATES: [PairState; 6] = [
    PairState::Starting,
    PairState::Syncing,
    PairState::Watching,
    PairState::Scheduled,
    PairState::Paused,
    PairState::Error,
];

/// The metrics of every pair and of the daemon's watches.
pub fn render(pairs: &[PairStatus], watches: Watches) -> String {
    let mut out = String::new();
    type Get = fn(&PairStatus) -> f64;
    let per_pair: [(&str, &str, &str, Get); 8] = [
        (
            "dirsync_pair_last_success_timestamp_seconds",
            "gauge",
            "When the pair's last successful sync ended (Unix time; 0: never).",
            |p| p.last_success.map_or(0.0, unix_seconds),
        ),
        (
            "dirsync_pair_last_sync_timestamp_seconds",
            "gauge",
            "When the pair's last sync ended, successful or not (Unix time; 0: never).",
            |p| p.last_sync.map_or(0.0, unix_seconds),
        ),
        (
            "dirsync_pair_lag_seconds",
            "gauge",
            "How long the oldest change not yet replicated has waited.",
            |p| p.lag_ms as f64 / 1000.0,
        ),
        (
            "dirsync_pair_queue_depth",
            "gauge",
            "Changes waiting to be replicated.",
            |p| p.queue as f64,
        ),
        (
            "dirsync_pair_files_copied_total",
            "counter",
            "Files copied.",
            |p| p.files as f64,
        ),
        (
            "dirsync_pair_bytes_copied_total",
            "counter",
            "Bytes copied.",
            |p| p.bytes as f64,
        ),
        (
            "dirsync_pair_errors_total",
            "counter",
            "Runs that failed.",
            |p| p.errors as f64,
        ),
        (
            "dirsync_pair_conflicts_total",
            "counter",
            "Conflicts met (two-way pairs).",
            |p| p.conflicts as f64,
        ),
    ];
    for (name, kind, help, get) in per_pair {
        header(&mut out, name, kind, help);
        for p in pairs {
            let _ = writeln!(
                out,
                "{name}{{pair=\"{}\"}} {}",
                label(&p.name),
                value(get(p))
            );
        }
    }
    header(
        &mut out,
        "dirsync_pair_state",
        "gauge",
        "1 for the state the pair is in, 0 for the others.",
    );
    for p in pairs {
        for s in STATES {
            let _ = writeln!(
                out,
                "dirsync_pair_state{{pair=\"{}\",state=\"{}\"}} {}",
                label(&p.name),
                s.as_str(),
                u8::from(p.state == s)
            );
        }
    }
    header(
        &mut out,
        "dirsync_inotify_watches",
        "gauge",
        "inotify watches in use by the daemon.",
    );
    let _ = writeln!(out, "dirsync_inotify_watches {}", watches.used);
    header(
        &mut out,
        "dirsync_inotify_watches_max",
        "gauge",
        "The system's limit (/proc/sys/fs/inotify/max_user_watches).",
    );
    let _ = writeln!(out, "dirsync_inotify_watches_max {}", watches.max);
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped per the format: `\` `"` and newline.
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: integers without a fraction, others as Rust prints
/// them (a valid Go float).
fn value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_values() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(value(3.0), "3");
        assert_eq!(value(1.5), "1.5");
    }
}

//! Where the daemon's messages go: a [`Log`] the binary provides (it
//! prints: journald prefixes, JSON lines), filtered by `[daemon] log`;
//! and [`PairReporter`], which turns a pair's engine events into them.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::config::LogLevel;
use crate::report::{Event, Human, Reporter};

/// Receives the daemon's messages (implemented by the binary).
pub trait Log: Send + Sync {
    /// One message, about `pair` if any.
    fn log(&self, level: LogLevel, pair: Option<&str>, msg: &str);
}

/// A [`Log`] with the level in force (changed by a reload).
pub struct Logger {
    sink: Arc<dyn Log>,
    level: AtomicU8,
}

impl Logger {
    /// Messages up to `level` go to `sink`.
    pub fn new(sink: Arc<dyn Log>, level: LogLevel) -> Self {
        Logger {
            sink,
            level: AtomicU8::new(level as u8),
        }
    }

    /// Changes the level.
    pub fn set_level(&self, level: LogLevel) {
        self.level.store(level as u8, Ordering::Relaxed);
    }

    /// Logs `msg` when `level` is in force.
    pub fn log(&self, level: LogLevel, pair: Option<&str>, msg: &str) {
        if level as u8 <= self.level.load(Ordering::Relaxed) {
            self.sink.log(level, pair, msg);
        }
    }
}

fn shown(p: &Path) -> String {
    Human(p.as_os_str().as_bytes()).to_string()
}

/// Keeps the conflicts a pair meets (its state).
pub trait ConflictSink: Send + Sync {
    /// A conflict on `path`, the other version kept as `copy`.
    fn conflict(&self, path: &Path, copy: Option<&Path>);
}

/// A pair's engine events as log messages: errors and warnings always,
/// each change at `debug`; conflicts also go to `conflicts`.
pub struct PairReporter {
    /// The pair's name.
    pub pair: String,
    /// Where they go.
    pub log: Arc<Logger>,
    /// Where conflicts are kept.
    pub conflicts: Option<Arc<dyn ConflictSink>>,
}

impl Reporter for PairReporter {
    fn event(&self, event: &Event<'_>) {
        let pair = Some(self.pair.as_str());
        let (level, msg) = match event {
            Event::Error { path, message } => {
                (LogLevel::Error, format!("{}: {message}", shown(path)))
            }
            Event::Warning { path, message } => {
                (LogLevel::Warn, format!("{}: {message}", shown(path)))
            }
            Event::Copied { dst, .. } | Event::Cloned { dst, .. } => {
                (LogLevel::Debug, format!("copied {}", shown(dst)))
            }
            Event::Deleted { path } => (LogLevel::Debug, format!("deleted {}", shown(path))),
            Event::CreatedDir { path } => (
                LogLevel::Debug,
                format!("created directory {}", shown(path)),
            ),
            Event::Conflict {
                path,
                copy,
                message,
            } => {
                if let Some(c) = &self.conflicts {
                    c.conflict(path, *copy);
                }
                (
                    LogLevel::Warn,
                    format!("conflict: {}: {message}", shown(path)),
                )
            }
            Event::Renamed { from, to } => (
                LogLevel::Debug,
                format!("renamed {} -> {}", shown(from), shown(to)),
            ),
            _ => return,
        };
        self.log.log(level, pair, &msg);
    }
}

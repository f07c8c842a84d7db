//! Output of actions: human lines (`-v`), JSON lines (`--json`), or nothing.
//!
//! The sync engine and the watcher describe what they do as [`Event`]s; a
//! [`Reporter`] turns them into output ([`crate::output`] has the CLI's
//! reporters). Paths in events are the user-visible paths (the SRC or DST
//! root joined with the relative path), as bytes.

use std::path::Path;
use std::sync::Mutex;

/// Something worth telling the user.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A regular file was copied (`Copied: a -> b`).
    Copied {
        /// Source path.
        src: &'a Path,
        /// Destination path.
        dst: &'a Path,
    },
    /// A directory was created in DST (`Created directory: d`).
    CreatedDir {
        /// Destination path.
        path: &'a Path,
    },
    /// A symlink was created or replaced in DST (`Linked: l -> target`).
    Linked {
        /// Destination path.
        path: &'a Path,
        /// The link's target bytes.
        target: &'a [u8],
    },
    /// An entry was removed from DST (`Deleted: x`); a removed tree gives
    /// one event for its root.
    Deleted {
        /// Destination path.
        path: &'a Path,
    },
    /// Mode and/or mtime of an existing DST entry were fixed
    /// (`Updated attributes: x`).
    Attrs {
        /// Destination path.
        path: &'a Path,
    },
    /// An entry was renamed inside DST (`Renamed: a -> b`).
    Renamed {
        /// Old destination path.
        from: &'a Path,
        /// New destination path.
        to: &'a Path,
    },
    /// A special file was recreated in DST (`--specials`;
    /// `Created fifo: DST/x`).
    Special {
        /// Destination path.
        path: &'a Path,
        /// `fifo`, `socket`, `character device`, `block device`.
        kind: &'a str,
    },
    /// A special file (FIFO, socket, device) in SRC was skipped.
    Skipped {
        /// Source path.
        path: &'a Path,
        /// Why.
        message: &'a str,
    },
    /// A non-fatal problem with one entry that did not make the run fail.
    Warning {
        /// The entry.
        path: &'a Path,
        /// What went wrong.
        message: &'a str,
    },
    /// An entry could not be synced (counted in `Summary::errors`, exit 2).
    Error {
        /// The entry.
        path: &'a Path,
        /// What went wrong.
        message: &'a str,
    },
    /// `dirsync watch` added an inotify watch on a SRC directory
    /// (`Watching: dir`).
    Watching {
        /// Source directory.
        dir: &'a Path,
    },
    /// `dirsync watch` received a change (`Event: kind path`): `kind` is
    /// one of `create`, `modify`, `close_write`, `attrib`, `delete`,
    /// `moved_from`, `moved_to`, `delete_self`, `move_self`, or the signal
    /// that stops the watcher (`SIGINT`, `SIGTERM`; path = SRC).
    Notify {
        /// What happened.
        kind: &'a str,
        /// Source path.
        path: &'a Path,
    },
    /// `dirsync watch` rescans a subtree (`Rescan: reason path (#count)`):
    /// reason `overflow` after an inotify queue overflow (path = SRC,
    /// `count` = overflows so far), `unwatched` for a directory without a
    /// watch (the `fs.inotify.max_user_watches` limit), rescanned
    /// periodically.
    Rescan {
        /// Why.
        reason: &'a str,
        /// Source path of the subtree.
        path: &'a Path,
        /// Overflows so far (for `overflow`), else 0.
        count: u64,
    },
}

impl Event<'_> {
    /// Short machine name of the action (the `"action"` field of `--json`).
    pub fn action(&self) -> &'static str {
        match self {
            Event::Copied { .. } => "copied",
            Event::CreatedDir { .. } => "created_dir",
            Event::Linked { .. } => "linked",
            Event::Deleted { .. } => "deleted",
            Event::Attrs { .. } => "attrs",
            Event::Renamed { .. } => "renamed",
            Event::Special { .. } => "special",
            Event::Skipped { .. } => "skipped",
            Event::Warning { .. } => "warning",
            Event::Error { .. } => "error",
            Event::Watching { .. } => "watching",
            Event::Notify { .. } => "event",
            Event::Rescan { .. } => "rescan",
        }
    }
}

/// Receives events; shared between threads.
pub trait Reporter: Send + Sync {
    /// Handles one event.
    fn event(&self, event: &Event<'_>);
}

/// Discards everything.
#[derive(Debug, Default)]
pub struct NullReporter;

impl Reporter for NullReporter {
    fn event(&self, _event: &Event<'_>) {}
}

/// Records every event as a line in the `-v` format (for tests and
/// embedding).
#[derive(Debug, Default)]
pub struct CollectReporter {
    lines: Mutex<Vec<String>>,
}

impl CollectReporter {
    /// The lines recorded so far.
    pub fn lines(&self) -> Vec<String> {
        match self.lines.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl Reporter for CollectReporter {
    fn event(&self, event: &Event<'_>) {
        let line = crate::output::human_line(event);
        match self.lines.lock() {
            Ok(mut l) => l.push(line),
            Err(p) => p.into_inner().push(line),
        }
    }
}

//! Output of actions: human lines (`-v`), JSON lines (`--json`), or nothing.
//!
//! The sync engine and the watcher describe what they do as [`Event`]s; a
//! [`Reporter`] turns them into output. Add variants as needed.

use std::path::Path;

/// Something worth telling the user.
#[derive(Debug)]
pub enum Event<'a> {
    /// A regular file was copied (`Copied: a -> b`).
    Copied {
        /// Source path.
        src: &'a Path,
        /// Destination path.
        dst: &'a Path,
    },
    /// A non-fatal problem with one entry.
    Warning {
        /// The entry.
        path: &'a Path,
        /// What went wrong.
        message: &'a str,
    },
}

/// Receives events; shared between threads.
pub trait Reporter: Send + Sync {
    /// Handles one event.
    fn event(&self, event: &Event<'_>);
}

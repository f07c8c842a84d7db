//! Why a two-way run stopped ([`Error`]).

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a two-way run stopped as a whole (exit 3; nothing changed when a
/// guard stopped it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine's errors (roots, backends, patterns).
    #[error(transparent)]
    Sync(#[from] crate::Error),
    /// The archive could not be read or written.
    #[error("state file {}", crate::report::Human(path.as_os_str().as_bytes()))]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// Another run holds the pair's archive.
    #[error(
        "state file {} is locked: another two-way run on this pair is in progress",
        crate::report::Human(path.as_os_str().as_bytes())
    )]
    Locked {
        /// The archive.
        path: PathBuf,
    },
    /// A guard stopped the run before anything changed.
    #[error("{message}")]
    Guard {
        /// What and why (and how to override it, where one can).
        message: String,
    },
}

impl Error {
    /// A system call failed while doing `what` on `path`.
    pub fn at(what: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Sync(crate::Error::at(what, path, source))
    }
}

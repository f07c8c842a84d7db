//! Errors with context, and the documented process exit codes.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Process exit codes, documented in `--help` and the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything was synced.
    Ok = 0,
    /// Bad command line (includes running with no arguments).
    Usage = 1,
    /// Some entries could not be synced; all others were.
    Partial = 2,
    /// Nothing could be done or the run had to stop (bad SRC/DST, SRC
    /// removed while watching, ...).
    Fatal = 3,
}

/// An I/O failure together with what was being done and to which path.
#[derive(Debug)]
pub struct Error {
    /// What was being attempted, e.g. "copying".
    pub what: String,
    /// The path concerned, if any.
    pub path: Option<PathBuf>,
    /// The underlying error.
    pub source: io::Error,
}

impl Error {
    /// An error while doing `what` on `path`.
    pub fn at(what: impl Into<String>, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error {
            what: what.into(),
            path: Some(path.as_ref().to_path_buf()),
            source,
        }
    }

    /// An error with no particular path.
    pub fn new(what: impl Into<String>, source: io::Error) -> Self {
        Error {
            what: what.into(),
            path: None,
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{} {}: {}", self.what, p.display(), self.source),
            None => write!(f, "{}: {}", self.what, self.source),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors that stop a whole operation: out of space or quota.
pub fn is_out_of_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

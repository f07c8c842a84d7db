//! The library's errors (one enum, [`Error`]), and the documented process
//! exit codes.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::exclude::PatternError;
use crate::stat::SelectError;

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

/// Why an operation stopped as a whole (per-entry failures are events).
///
/// `Display` says what failed; the cause is the `source()` chain:
/// [`chain`] (or anyhow's `{:#}`) shows both, e.g. `cannot open /a: Permission denied (os error 13)`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed while doing `what` on `path`.
    #[error("{what} {}", crate::report::Human(path.as_os_str().as_bytes()))]
    Io {
        /// What was being attempted, e.g. "cannot open".
        what: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A system call failed while doing `what` (no particular path).
    #[error("{what}")]
    System {
        /// What was being attempted.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `path` cannot be used: e.g. "source directory X: does not exist".
    #[error("{what} {}: {why}", crate::report::Human(path.as_os_str().as_bytes()))]
    Invalid {
        /// The role of the path or what was refused.
        what: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// A `--exclude` pattern does not compile.
    #[error("bad --exclude pattern")]
    Exclude(#[from] PatternError),
    /// `--stat-backend syscall` on a kernel that cannot do it.
    #[error("--stat-backend syscall")]
    Backend(#[from] SelectError),
    /// A bug: a thread of the engine panicked.
    #[error("internal error (panic) in the sync engine")]
    Panicked,
}

impl Error {
    /// A system call failed while doing `what` on `path`.
    pub fn at(what: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            what,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A system call failed while doing `what`.
    pub fn new(what: &'static str, source: io::Error) -> Self {
        Error::System { what, source }
    }

    /// `path` cannot be used as `what`, because `why`.
    pub fn invalid(what: &'static str, path: impl AsRef<Path>, why: &'static str) -> Self {
        Error::Invalid {
            what,
            path: path.as_ref().to_path_buf(),
            why,
        }
    }
}

/// An error and its causes on one line, joined by `: `.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors that stop a whole operation: out of space or quota.
pub fn is_out_of_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

//! dirsync: make a destination directory an exact replica of a source
//! directory, once ([`sync`]) or continuously ([`watch`]).
//!
//! Metadata comes from the `dirsync_stat` system call when the running
//! kernel provides it (see [`stat`]) and from `statx` otherwise.

pub mod error;
pub mod report;
pub mod stat;
pub mod sync;
pub mod uapi;
pub mod watch;

pub use error::{Error, ExitStatus, Result};

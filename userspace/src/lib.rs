//! dirsync: make a destination directory an exact replica of a source
//! directory, once ([`sync`]) or continuously ([`watch`]).
//!
//! Metadata comes from the `dirsync_stat` system call when the running
//! kernel provides it (see [`stat`]) and from `statx` otherwise.
//!
//! Modules, by what they do:
//! * [`cli`]: the command line (clap), shared by `dirsync` and `dirsync watch`;
//! * [`sync`]: the engine (walk, compare, act, in parallel);
//! * [`stat`]: metadata backends (`dirsync_stat` syscall, `statx`) and discovery;
//! * [`copy`]: file content copy, content comparison, tree removal;
//! * [`exclude`]: gitignore-style `--exclude` patterns;
//! * [`sys`]: dirfd-relative system call wrappers;
//! * [`report`], [`output`], [`progress`]: events and how they are shown.

pub mod cli;
pub mod copy;
pub mod error;
pub mod exclude;
pub mod output;
pub mod progress;
pub mod report;
pub mod stat;
pub mod sync;
pub mod sys;
pub mod uapi;
pub mod watch;

pub use error::{Error, ExitStatus, Result};

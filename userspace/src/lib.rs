//! dirsync: make a destination directory an exact replica of a source
//! directory, once ([`sync`]) or continuously ([`watch`]).
//!
//! Metadata comes from the `dirsync_stat` system call when the running
//! kernel provides it (see [`stat`]) and from `statx` otherwise.
//!
//! Layers, each using only those above it in this list (no cycle):
//! * [`report`], [`error`]: events, counters and errors (the bottom), with
//!   [`units`] (sizes, rates) and [`utc`] (calendar time);
//! * [`sys`], [`uapi`]: dirfd-relative system calls, the kernel ABI;
//! * [`stat`]: metadata backends (`dirsync_stat` syscall, `statx`);
//! * [`copy`], [`exclude`]: file content copy and comparison,
//!   gitignore-style `--exclude` patterns;
//! * [`attrs`]: owner, extended attributes and ACLs, sparse and cloned
//!   content (the system call side of `-o -g -X -A -S`, reflinks);
//! * [`sync`]: the engine (walk, decide, install, in parallel), which
//!   reaches DST only through [`sync::Replica`];
//! * [`watch`]: `dirsync watch` on top of the engine;
//! * [`remote`]: remote replicas over ssh (an agent, the protocol);
//! * [`twoway`]: two-way sync (an archive, the reconciler, guards).
//! * [`daemon`]: `dirsync daemon`, many pairs as a service (two-way pairs through [`twoway`]).
//!
//! The command line and all printing live in the binary (`src/main.rs`,
//! `src/cli.rs`, `src/output.rs`, `src/progress.rs`).

pub mod attrs;
pub mod copy;
pub mod daemon;
pub mod error;
pub mod exclude;
pub mod remote;
pub mod report;
pub mod stat;
pub mod sync;
pub mod sys;
pub mod transfer;
pub mod twoway;
pub mod uapi;
pub mod units;
pub mod utc;
pub mod watch;

pub use error::{Error, ExitStatus, Result};

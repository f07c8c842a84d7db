//! The watcher's tunables ([`Config`]) and the inotify event mask.

use std::thread;
use std::time::Duration;

use super::queue::Delays;
use crate::exclude::Excludes;

/// Tunables of the watcher.
#[derive(Clone, Debug)]
pub struct Config {
    /// Coalescing and settle delays.
    pub delays: Delays,
    /// How long an `IN_MOVED_FROM` waits for its `IN_MOVED_TO` (the kernel
    /// queues both in one rename, but a reader on another CPU can see the
    /// first alone; 5 ms, then 50 ms, were too short for a slow guest
    /// (TCG with KASAN and lockdep), where a rename then became a copy).
    /// Only a move out of SRC waits this long; the events queued by the
    /// end of the window are read before a move expires.
    pub pair_window: Duration,
    /// Period of the rescans of directories that could not be watched.
    pub rescan_interval: Duration,
    /// Copy worker threads.
    pub workers: usize,
    /// Watch subdirectories (false: only SRC itself, `--no-recursive`).
    pub recursive: bool,
    /// `--exclude`: excluded directories are not watched (the engine leaves
    /// them alone, so their events would be work for nothing).
    pub excludes: Excludes,
}

impl Default for Config {
    fn default() -> Self {
        let cpus = thread::available_parallelism().map_or(2, |n| n.get());
        Config {
            delays: Delays::default(),
            pair_window: Duration::from_millis(150),
            rescan_interval: Duration::from_secs(1),
            workers: cpus.clamp(2, 4),
            recursive: true,
            excludes: Excludes::default(),
        }
    }
}

/// The events every directory is watched for.
pub const MASK: u32 = libc::IN_CREATE
    | libc::IN_CLOSE_WRITE
    | libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_ONLYDIR
    | libc::IN_EXCL_UNLINK;

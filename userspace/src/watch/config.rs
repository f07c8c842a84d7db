//! The watcher's tunables ([`Config`]) and the inotify event mask.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// Where the loop publishes its queue depth, lag and watch count
    /// (the daemon's status), if anywhere.
    pub stats: Option<Arc<LoopStats>>,
    /// Watch through this shared inotify instance (the daemon's pairs)
    /// instead of an instance of the watcher's own.
    pub shared: Option<Arc<super::shared::SharedInotify>>,
}

/// What a running watch loop shows: its queue depth, since when it has
/// had work waiting (its lag), and its inotify watches. Updated once per
/// loop round.
#[derive(Debug, Default)]
pub struct LoopStats {
    queue: AtomicU64,
    /// Milliseconds since the epoch when the queue last went from empty
    /// to not empty; 0 while empty.
    busy_since_ms: AtomicU64,
    watches: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        .max(1)
}

impl LoopStats {
    /// Records `queue` operations waiting or running and `watches`
    /// inotify watches.
    pub fn update(&self, queue: usize, watches: usize) {
        self.queue.store(queue as u64, Ordering::Relaxed);
        self.watches.store(watches as u64, Ordering::Relaxed);
        if queue == 0 {
            self.busy_since_ms.store(0, Ordering::Relaxed);
        } else {
            let _ = self.busy_since_ms.compare_exchange(
                0,
                now_ms(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Operations waiting or running.
    pub fn queue(&self) -> u64 {
        self.queue.load(Ordering::Relaxed)
    }

    /// How long work has been waiting, in milliseconds (0: caught up).
    pub fn lag_ms(&self) -> u64 {
        match self.busy_since_ms.load(Ordering::Relaxed) {
            0 => 0,
            t => now_ms().saturating_sub(t),
        }
    }

    /// The inotify watches in use.
    pub fn watches(&self) -> u64 {
        self.watches.load(Ordering::Relaxed)
    }

    /// Forgets everything (the loop stopped).
    pub fn clear(&self) {
        self.update(0, 0);
    }
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
            stats: None,
            shared: None,
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

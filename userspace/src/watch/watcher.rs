//! The watcher's state ([`Watcher`]) and the watches: every directory of
//! SRC watched top-down, the parent of SRC, and the periodic rescans of
//! directories that could not be watched.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::config::{Config, MASK};
use super::map::{join, NodeId, WatchMap};
use super::queue::{Queue, Urgency};
use super::source::Source;
use crate::report::{Event as Ev, Reporter};
use crate::stat::{Kind, StatBackend, Statx};
use crate::sys::{self, notify};

/// An `IN_MOVED_FROM` waiting for its `IN_MOVED_TO`.
pub struct PendingMove {
    pub from: PathBuf,
    pub node: Option<(NodeId, Option<i32>)>,
    pub deadline: Instant,
}

/// Everything the event loop keeps.
pub struct Watcher {
    pub src: PathBuf,
    pub root: OwnedFd,
    pub ino: Source,
    pub map: WatchMap,
    pub queue: Queue,
    pub moves: HashMap<u32, PendingMove>,
    pub reporter: Arc<dyn Reporter>,
    pub config: Config,
    pub retrying: bool,
    pub overflows: u64,
    pub rebuild: bool,
    pub rescan_after_drain: bool,
    pub fatal: Option<String>,
    pub next_rescan: Option<Instant>,
    /// Watch on the parent of SRC, for the deletion of SRC itself: while
    /// any process (this one included) holds SRC open, the kernel delays
    /// `IN_DELETE_SELF` until the last reference goes, but the parent's
    /// `IN_DELETE` comes at once.
    pub parent_wd: Option<(i32, std::ffi::OsString)>,
    /// `fs.inotify.max_queued_events` when the instance was created (the
    /// limit that applies to it).
    pub queue_limit: Option<u64>,
}

/// The names of the subdirectories of an open directory (not following
/// symlinks; `DT_UNKNOWN` entries are asked to statx).
fn subdirs(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    let mut out = Vec::new();
    for e in sys::read_dir(dir)? {
        let is_dir = match e.d_type {
            libc::DT_DIR => true,
            libc::DT_UNKNOWN => matches!(
                Statx.stat_at(dir, &e.name),
                Ok(Some(m)) if m.kind == Kind::Dir
            ),
            _ => false,
        };
        if is_dir {
            out.push(std::ffi::OsString::from_vec(e.name.into_bytes()));
        }
    }
    Ok(out)
}

/// The current value of a sysctl under /proc/sys/fs/inotify.
pub fn inotify_limit(name: &str) -> Option<u64> {
    std::fs::read_to_string(Path::new("/proc/sys/fs/inotify").join(name))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

impl Watcher {
    /// The state for watching `src` (open as `root`) with `ino`.
    pub fn new(
        src: &Path,
        root: OwnedFd,
        ino: Source,
        reporter: Arc<dyn Reporter>,
        config: Config,
    ) -> Watcher {
        Watcher {
            src: src.to_path_buf(),
            root,
            ino,
            map: WatchMap::new(),
            queue: Queue::new(config.delays),
            moves: HashMap::new(),
            reporter,
            config,
            retrying: false,
            overflows: 0,
            rebuild: false,
            rescan_after_drain: false,
            fatal: None,
            next_rescan: None,
            parent_wd: None,
            queue_limit: inotify_limit("max_queued_events"),
        }
    }

    pub(super) fn watch_parent(&mut self) {
        let Ok(canon) = std::fs::canonicalize(&self.src) else {
            return;
        };
        let (Some(parent), Some(name)) = (canon.parent(), canon.file_name()) else {
            return;
        };
        let Ok(dir) = sys::open_root(parent) else {
            return;
        };
        let mask = libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_ONLYDIR;
        if let Ok(wd) = self.ino.add_watch(dir.as_fd(), parent, mask) {
            self.parent_wd = Some((wd, name.to_os_string()));
        }
    }

    pub(super) fn full(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.src.clone()
        } else {
            self.src.join(rel)
        }
    }

    /// Watches `rel` and every directory below it (top-down: a directory
    /// is watched before it is listed, so a subdirectory created meanwhile
    /// is either listed or reported by the new watch). Errors other than
    /// a vanished entry are returned only for the root (`strict`).
    /// Whether the directory `rel` (not SRC itself) matches `--exclude`.
    pub(super) fn excluded_dir(&self, rel: &Path) -> bool {
        let ex = &self.config.excludes;
        match rel.file_name() {
            Some(name) if !ex.is_empty() => {
                ex.is_excluded(rel.as_os_str().as_bytes(), name.as_bytes(), true)
            }
            _ => false,
        }
    }

    pub(super) fn watch_tree(&mut self, rel: &Path, now: Instant, strict: bool) -> io::Result<()> {
        let mut stack = vec![rel.to_path_buf()];
        while let Some(r) = stack.pop() {
            if self.excluded_dir(&r) {
                continue;
            }
            let dir = match notify::open_dir_path(self.root.as_fd(), &r) {
                Ok(d) => d,
                Err(e) => {
                    if strict && r == rel {
                        return Err(e);
                    }
                    // Gone or no longer a directory: its events say so.
                    continue;
                }
            };
            let full = self.full(&r);
            match self.ino.add_watch(dir.as_fd(), &full, MASK) {
                Ok(wd) => {
                    let known = self.map.node_of_wd(wd).and_then(|n| self.map.path(n));
                    let Some((id, dropped)) = self.map.place(&r, Some(wd)) else {
                        continue;
                    };
                    self.map.mark(id);
                    for d in dropped {
                        if d != wd {
                            self.ino.rm_watch(d);
                        }
                    }
                    if known.as_deref() != Some(r.as_path()) {
                        self.reporter.event(&Ev::Watching { dir: &full });
                    }
                    if self.config.recursive {
                        match subdirs(dir.as_fd()) {
                            Ok(names) => {
                                for n in names {
                                    stack.push(join(&r, &n));
                                }
                            }
                            Err(e) => {
                                let msg = format!("cannot list directory: {e}");
                                self.reporter.event(&Ev::Warning {
                                    path: &full,
                                    message: &msg,
                                });
                            }
                        }
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    if let Some((id, dropped)) = self.map.place(&r, None) {
                        self.map.mark(id);
                        for d in dropped {
                            self.ino.rm_watch(d);
                        }
                    }
                    self.tell_enospc(&full);
                    if self.next_rescan.is_none() {
                        self.next_rescan = Some(now + self.config.rescan_interval);
                    }
                }
                Err(e) => {
                    if strict && r == rel {
                        return Err(e);
                    }
                    let msg = format!("cannot watch directory: {e}; rescanned periodically");
                    self.reporter.event(&Ev::Warning {
                        path: &full,
                        message: &msg,
                    });
                    if let Some((id, _)) = self.map.place(&r, None) {
                        self.map.mark(id);
                    }
                    if self.next_rescan.is_none() {
                        self.next_rescan = Some(now + self.config.rescan_interval);
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn tell_enospc(&mut self, full: &Path) {
        let limit =
            inotify_limit("max_user_watches").map_or_else(|| "?".to_string(), |v| v.to_string());
        let msg = format!(
            "cannot watch directory: inotify watch limit reached (ENOSPC, \
             fs.inotify.max_user_watches = {limit}); its subtree is rescanned every {} ms \
             instead; raise the limit with `sysctl fs.inotify.max_user_watches=N` \
             (/proc/sys/fs/inotify/max_user_watches)",
            self.config.rescan_interval.as_millis()
        );
        if self.retrying {
            return;
        }
        self.reporter.event(&Ev::Warning {
            path: full,
            message: &msg,
        });
    }

    /// Periodic pass over directories without a watch: retry the watch,
    /// and sync their subtree.
    pub(super) fn rescan_unwatched(&mut self, now: Instant) {
        let ids = self.map.unwatched();
        if ids.is_empty() {
            self.next_rescan = None;
            return;
        }
        let paths: Vec<PathBuf> = ids.iter().filter_map(|&id| self.map.path(id)).collect();
        // Retry quietly: the limit was already reported.
        self.retrying = true;
        for p in &paths {
            let _ = self.watch_tree(p, now, false);
        }
        self.retrying = false;
        for p in paths {
            let full = self.full(&p);
            self.reporter.event(&Ev::Rescan {
                reason: "unwatched",
                path: &full,
                count: 0,
            });
            self.queue.push_sync(&p, Urgency::Soon, now);
        }
        self.next_rescan = Some(now + self.config.rescan_interval);
    }
}

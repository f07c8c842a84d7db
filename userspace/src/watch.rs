//! `dirsync watch`: keeps DST a replica of SRC in real time with inotify.
//!
//! [`run`] watches every directory of SRC first and then queues the initial
//! full sync, so nothing that changes while the initial sync runs is lost.
//! One event-loop thread (this one) reads inotify events, keeps the
//! [watch map](map) current, turns events into operations of the
//! [queue] (coalesced, delayed a few ms, ordered around renames), and hands
//! due operations to a few copy workers that call the [`Syncer`].
//! It blocks in `ppoll` on the inotify descriptor, a signalfd (SIGINT,
//! SIGTERM) and an eventfd (worker completions), with a timeout only while
//! work is pending or a periodic rescan is needed: no CPU is used when idle.
//!
//! Events: `IN_CREATE` (a new directory is watched first and then scanned,
//! so what was created in it before its watch existed is not lost),
//! `IN_CLOSE_WRITE`, `IN_MODIFY` (a file still open is synced once quiet,
//! and at the latest [`Delays::max_settle`] after its first write),
//! `IN_ATTRIB` → `sync_attrs`, `IN_DELETE`, `IN_MOVED_FROM`/`IN_MOVED_TO`
//! paired by cookie into one `Syncer::rename` (an unpaired `MOVED_FROM` is a
//! move out of the tree: a deletion after a short pairing window; an
//! unpaired `MOVED_TO` a move in: a sync of the subtree), `IN_DELETE_SELF` /
//! `IN_MOVE_SELF` on SRC itself: an error and [`ExitStatus::Fatal`].
//!
//! Never losing an update: `IN_Q_OVERFLOW` rebuilds the watch map from a
//! walk of SRC and queues a full rescan after the events already queued
//! (counted and reported as a warning, then a rescan); `ENOSPC` from
//! `inotify_add_watch` names the `fs.inotify.max_user_watches` sysctl and
//! the directories left unwatched are rescanned (and their watch retried)
//! every [`Config::rescan_interval`].
//!
//! On SIGINT or SIGTERM the watcher stops taking new work, waits for the
//! operations in hand (the engine copies through temporary files renamed
//! into place, so none is left behind) and returns [`ExitStatus::Ok`].

pub mod map;
pub mod queue;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify};

use crate::exclude::Excludes;
use crate::report::{Event as Ev, Reporter};
use crate::stat::{Kind, StatBackend, Statx};
use crate::sync::{Options, Summary, Syncer};
use crate::sys::{self, notify};
use crate::{Error, ExitStatus, Result};

use map::{join, NodeId, WatchMap, ROOT};
pub use queue::Delays;
use queue::{Op, Queue, Urgency};

/// What the copy workers call; implemented by [`Syncer`] (and by test
/// doubles).
pub trait Engine: Send + Sync + 'static {
    /// Makes the whole of DST equal to SRC.
    fn sync_all(&self) -> Result<Summary>;
    /// Makes `DST/rel` equal to `SRC/rel`.
    fn sync_path(&self, rel: &Path) -> Result<Summary>;
    /// Re-applies mode and mtime.
    fn sync_attrs(&self, rel: &Path) -> Result<Summary>;
    /// Renames inside DST, then converges `to`.
    fn rename(&self, from: &Path, to: &Path) -> Result<Summary>;
}

impl Engine for Syncer {
    fn sync_all(&self) -> Result<Summary> {
        Syncer::sync_all(self)
    }
    fn sync_path(&self, rel: &Path) -> Result<Summary> {
        Syncer::sync_path(self, rel)
    }
    fn sync_attrs(&self, rel: &Path) -> Result<Summary> {
        Syncer::sync_attrs(self, rel)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<Summary> {
        Syncer::rename(self, from, to)
    }
}

/// Tunables of the watcher.
#[derive(Clone, Debug)]
pub struct Config {
    /// Coalescing and settle delays.
    pub delays: Delays,
    /// How long an `IN_MOVED_FROM` waits for its `IN_MOVED_TO`.
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
            pair_window: Duration::from_millis(5),
            rescan_interval: Duration::from_secs(1),
            workers: cpus.clamp(2, 4),
            recursive: true,
            excludes: Excludes::default(),
        }
    }
}

/// The events every directory is watched for.
const MASK: u32 = libc::IN_CREATE
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

/// `dirsync watch SRC DST`: an initial full sync, then DST follows SRC
/// until SIGINT/SIGTERM ([`ExitStatus::Ok`]) or until SRC itself is
/// deleted or moved ([`ExitStatus::Fatal`], with a message on stderr).
pub fn run(
    src: &Path,
    dst: &Path,
    options: Options,
    reporter: Arc<dyn Reporter>,
) -> Result<ExitStatus> {
    // Block SIGINT/SIGTERM before any thread exists so that every thread
    // inherits the mask and the signals are only seen through the signalfd.
    let signals = notify::SignalFd::new().map_err(|e| Error::new("creating a signalfd", e))?;
    let excludes = Excludes::new(&options.excludes)?;
    let config = Config {
        recursive: !options.no_recursive,
        excludes,
        ..Config::default()
    };
    let syncer = Syncer::new(src, dst, options, reporter.clone())?;
    run_with(src, Arc::new(syncer), reporter, Signals(signals), config)
}

/// The SIGINT/SIGTERM source of [`run_with`] (created by [`Signals::new`],
/// which blocks both signals in the calling thread: call it before
/// spawning threads).
pub struct Signals(notify::SignalFd);

impl Signals {
    /// Blocks SIGINT and SIGTERM and opens a signalfd for them.
    pub fn new() -> Result<Self> {
        Ok(Signals(
            notify::SignalFd::new().map_err(|e| Error::new("creating a signalfd", e))?,
        ))
    }
}

struct PendingMove {
    from: PathBuf,
    node: Option<(NodeId, Option<i32>)>,
    deadline: Instant,
}

struct Done {
    id: u64,
    op: Op,
    result: Result<Summary>,
}

struct Watcher {
    src: PathBuf,
    root: OwnedFd,
    inotify: Inotify,
    map: WatchMap,
    queue: Queue,
    moves: HashMap<u32, PendingMove>,
    reporter: Arc<dyn Reporter>,
    config: Config,
    retrying: bool,
    overflows: u64,
    rebuild: bool,
    rescan_after_drain: bool,
    fatal: Option<String>,
    next_rescan: Option<Instant>,
    /// Watch on the parent of SRC, for the deletion of SRC itself: while
    /// any process (this one included) holds SRC open, the kernel delays
    /// `IN_DELETE_SELF` until the last reference goes, but the parent's
    /// `IN_DELETE` comes at once.
    parent_wd: Option<(i32, std::ffi::OsString)>,
    /// `fs.inotify.max_queued_events` when the instance was created (the
    /// limit that applies to it).
    queue_limit: Option<u64>,
}

/// [`run`] with any [`Engine`] and explicit tunables.
pub fn run_with(
    src: &Path,
    engine: Arc<dyn Engine>,
    reporter: Arc<dyn Reporter>,
    signals: Signals,
    config: Config,
) -> Result<ExitStatus> {
    let signals = signals.0;
    let root = sys::open_root(src).map_err(|e| Error::at("opening", src, e))?;
    let inotify = Inotify::init().map_err(|e| {
        let what = if e.raw_os_error() == Some(libc::EMFILE) {
            "creating an inotify instance (the fs.inotify.max_user_instances limit?)"
        } else {
            "creating an inotify instance"
        };
        Error::new(what, e)
    })?;
    let mut w = Watcher {
        src: src.to_path_buf(),
        root,
        inotify,
        map: WatchMap::new(),
        queue: Queue::new(config.delays),
        moves: HashMap::new(),
        reporter,
        config: config.clone(),
        retrying: false,
        overflows: 0,
        rebuild: false,
        rescan_after_drain: false,
        fatal: None,
        next_rescan: None,
        parent_wd: None,
        queue_limit: inotify_limit("max_queued_events"),
    };
    w.watch_parent();

    // Watch everything first, then sync: a change made while the initial
    // sync runs is an event in the queue, not a loss.
    if let Err(e) = w.watch_tree(Path::new(""), Instant::now(), true) {
        return Err(Error::at("watching", src, e));
    }
    // SRC renamed or replaced before its watch existed gives no event:
    // check that the name still leads to the directory being watched.
    if !notify::same_file(w.root.as_fd(), src) {
        let msg = format!(
            "source directory {} was moved or replaced while starting; stopping",
            src.display()
        );
        w.reporter.event(&Ev::Error {
            path: src,
            message: &msg,
        });
        return Ok(ExitStatus::Fatal);
    }
    let start = Instant::now();
    w.queue.push_rescan_all(start);
    let mut initial: Option<u64> = None;

    // Copy workers.
    let (job_tx, job_rx) = mpsc::channel::<(u64, Op)>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let wake = Arc::new(notify::EventFd::new().map_err(|e| Error::new("creating an eventfd", e))?);
    let mut handles = Vec::new();
    for i in 0..config.workers.max(1) {
        let rx = Arc::clone(&job_rx);
        let tx = done_tx.clone();
        let engine = Arc::clone(&engine);
        let wake = Arc::clone(&wake);
        let h = thread::Builder::new()
            .name(format!("dirsync-copy-{i}"))
            .spawn(move || loop {
                let job = match rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok((id, op)) = job else { return };
                // A panic in the engine must not leave the operation
                // "running" for ever (shutdown waits for it).
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    execute(engine.as_ref(), &op)
                }))
                .unwrap_or(Err(Error::Panicked));
                if tx.send(Done { id, op, result }).is_err() {
                    return;
                }
                wake.notify();
            })
            .map_err(|e| Error::new("starting a copy worker", e))?;
        handles.push(h);
    }
    drop(done_tx);

    let mut buf = vec![0u8; 64 * 1024];
    let mut stop: Option<ExitStatus> = None;
    let result = loop {
        let now = Instant::now();
        if stop.is_none() {
            if let Some(msg) = w.fatal.take() {
                w.reporter.event(&Ev::Error {
                    path: &w.src,
                    message: &msg,
                });
                stop = Some(ExitStatus::Fatal);
                w.queue.clear_pending();
            }
        }
        if stop.is_none() {
            let free = config.workers.max(1).saturating_sub(w.queue.inflight());
            for (id, op) in w.queue.dispatch(now, free) {
                if initial.is_none() && op == Op::RescanAll {
                    initial = Some(id);
                }
                if job_tx.send((id, op)).is_err() {
                    break;
                }
            }
        } else if w.queue.inflight() == 0 {
            break Ok(stop.unwrap_or(ExitStatus::Ok));
        }

        // Sleep until an fd is readable or the next timer; no timer when
        // there is nothing to wait for (idle: zero wakeups).
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        if stop.is_none() {
            consider(w.queue.next_deadline(now));
            consider(w.moves.values().map(|m| m.deadline).min());
            consider(w.next_rescan);
            if w.rescan_after_drain {
                // Keep reading until the queue is empty, then rescan.
                consider(Some(now));
            }
        }
        let timeout = next.map(|t| t.saturating_duration_since(now));
        let ready = match notify::wait_readable(
            &[w.inotify.as_fd(), signals.as_fd(), wake.as_fd()],
            timeout,
        ) {
            Ok(r) => r,
            Err(e) => break Err(Error::new("waiting for events", e)),
        };

        if ready[1] {
            if let Some(sig) = signals.read() {
                if stop.is_none() {
                    let name = if sig == libc::SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    };
                    w.reporter.event(&Ev::Notify {
                        kind: name,
                        path: &w.src,
                    });
                    stop = Some(ExitStatus::Ok);
                    w.queue.clear_pending();
                }
            }
        }
        if ready[2] {
            wake.drain();
        }
        while let Ok(done) = done_rx.try_recv() {
            w.queue.complete(done.id);
            match done.result {
                // The engine re-applies the mode and mtime of the DST
                // directories it changes (parents included), so nothing
                // follows a finished operation.
                Ok(_) => {}
                Err(e) => {
                    let msg = crate::error::chain(&e);
                    if Some(done.id) == initial {
                        // The initial sync failed as a whole: stop.
                        w.fatal.get_or_insert(format!("initial sync failed: {msg}"));
                    } else {
                        let path = match &done.op {
                            Op::Sync(p) | Op::Attrs(p) | Op::Rename(_, p) => w.src.join(p),
                            Op::RescanAll => w.src.clone(),
                        };
                        w.reporter.event(&Ev::Warning {
                            path: &path,
                            message: &msg,
                        });
                    }
                }
            }
        }
        if stop.is_some() {
            continue;
        }
        if ready[0] || w.rescan_after_drain {
            if let Err(e) = w.read_events(&mut buf) {
                break Err(Error::new("reading inotify events", e));
            }
        }
        let now = Instant::now();
        w.expire_moves(now);
        if let Some(t) = w.next_rescan {
            if now >= t {
                w.rescan_unwatched(now);
            }
        }
    };

    drop(job_tx);
    for h in handles {
        let _ = h.join();
    }
    result
}

fn execute(engine: &dyn Engine, op: &Op) -> Result<Summary> {
    match op {
        Op::Sync(p) => engine.sync_path(p),
        Op::Attrs(p) => engine.sync_attrs(p),
        // The engine converges both names after the renameat.
        Op::Rename(from, to) => engine.rename(from, to),
        Op::RescanAll => engine.sync_all(),
    }
}

fn kind_name(mask: EventMask) -> &'static str {
    if mask.contains(EventMask::CREATE) {
        "create"
    } else if mask.contains(EventMask::CLOSE_WRITE) {
        "close_write"
    } else if mask.contains(EventMask::MODIFY) {
        "modify"
    } else if mask.contains(EventMask::ATTRIB) {
        "attrib"
    } else if mask.contains(EventMask::DELETE) {
        "delete"
    } else if mask.contains(EventMask::MOVED_FROM) {
        "moved_from"
    } else if mask.contains(EventMask::MOVED_TO) {
        "moved_to"
    } else if mask.contains(EventMask::DELETE_SELF) {
        "delete_self"
    } else if mask.contains(EventMask::MOVE_SELF) {
        "move_self"
    } else {
        "other"
    }
}

/// The names of the subdirectories of an open directory (not following
/// symlinks; `DT_UNKNOWN` entries are asked to statx).
fn subdirs(dir: std::os::fd::BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
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
fn inotify_limit(name: &str) -> Option<u64> {
    std::fs::read_to_string(Path::new("/proc/sys/fs/inotify").join(name))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

impl Watcher {
    fn watch_parent(&mut self) {
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
        if let Ok(wd) = notify::add_watch(self.inotify.as_fd(), dir.as_fd(), parent, mask) {
            self.parent_wd = Some((wd, name.to_os_string()));
        }
    }

    fn full(&self, rel: &Path) -> PathBuf {
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
    fn excluded_dir(&self, rel: &Path) -> bool {
        let ex = &self.config.excludes;
        match rel.file_name() {
            Some(name) if !ex.is_empty() => {
                ex.is_excluded(rel.as_os_str().as_bytes(), name.as_bytes(), true)
            }
            _ => false,
        }
    }

    fn watch_tree(&mut self, rel: &Path, now: Instant, strict: bool) -> io::Result<()> {
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
            match notify::add_watch(self.inotify.as_fd(), dir.as_fd(), &full, MASK) {
                Ok(wd) => {
                    let known = self.map.node_of_wd(wd).and_then(|n| self.map.path(n));
                    let Some((id, dropped)) = self.map.place(&r, Some(wd)) else {
                        continue;
                    };
                    self.map.mark(id);
                    for d in dropped {
                        if d != wd {
                            notify::rm_watch(self.inotify.as_fd(), d);
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
                            notify::rm_watch(self.inotify.as_fd(), d);
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

    fn tell_enospc(&mut self, full: &Path) {
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

    /// Reads and handles queued events until the queue is empty (or a
    /// bounded number of reads, to keep dispatching under a flood).
    fn read_events(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut drained = false;
        for _ in 0..16 {
            let events: Vec<(i32, EventMask, u32, Option<std::ffi::OsString>)> =
                match self.inotify.read_events(buf) {
                    Ok(evs) => evs
                        .map(|e| {
                            (
                                e.wd.get_watch_descriptor_id(),
                                e.mask,
                                e.cookie,
                                e.name.map(|n| n.to_os_string()),
                            )
                        })
                        .collect(),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        drained = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
            let now = Instant::now();
            for (wd, mask, cookie, name) in events {
                self.handle(wd, mask, cookie, name.as_deref(), now);
            }
            if self.rebuild {
                self.rebuild = false;
                self.rebuild_map(Instant::now());
                self.rescan_after_drain = true;
            }
        }
        if drained && self.rescan_after_drain {
            // Every event generated before the map was rebuilt has been
            // read: a full rescan queued now runs after all of them.
            self.rescan_after_drain = false;
            let path = self.src.clone();
            self.reporter.event(&Ev::Rescan {
                reason: "overflow",
                path: &path,
                count: self.overflows,
            });
            self.queue.push_rescan_all(Instant::now());
        }
        Ok(())
    }

    fn rebuild_map(&mut self, now: Instant) {
        self.map.begin_mark();
        if let Err(e) = self.watch_tree(Path::new(""), now, true) {
            self.fatal = Some(format!(
                "source directory {} is gone ({e}); stopping",
                self.src.display()
            ));
            return;
        }
        for wd in self.map.sweep() {
            notify::rm_watch(self.inotify.as_fd(), wd);
        }
        // Pending moves refer to the old map.
        let moves: Vec<PendingMove> = self.moves.drain().map(|(_, m)| m).collect();
        for m in moves {
            self.queue.push_sync(&m.from, Urgency::Soon, now);
        }
    }

    /// SRC itself was deleted or moved: the run ends with an error.
    fn source_gone(&mut self, mask: EventMask, deleted: bool) {
        let what = if deleted {
            "was deleted"
        } else {
            "was moved or renamed"
        };
        self.reporter.event(&Ev::Notify {
            kind: kind_name(mask),
            path: &self.src,
        });
        self.fatal.get_or_insert(format!(
            "source directory {} {what}; stopping",
            self.src.display()
        ));
    }

    fn handle(
        &mut self,
        wd: i32,
        mask: EventMask,
        cookie: u32,
        name: Option<&OsStr>,
        now: Instant,
    ) {
        if mask.contains(EventMask::Q_OVERFLOW) {
            self.overflows += 1;
            let limit = self
                .queue_limit
                .map_or_else(|| "?".to_string(), |v| v.to_string());
            let msg = format!(
                "inotify event queue overflow #{} (fs.inotify.max_queued_events = {limit}): \
                 rescanning {}",
                self.overflows,
                self.src.display()
            );
            self.reporter.event(&Ev::Warning {
                path: &self.src,
                message: &msg,
            });
            self.rebuild = true;
            return;
        }
        if let Some((pwd, pname)) = &self.parent_wd {
            if *pwd == wd {
                if name == Some(pname.as_os_str()) && mask.contains(EventMask::ISDIR) {
                    self.source_gone(mask, mask.contains(EventMask::DELETE));
                }
                return;
            }
        }
        let root_wd = self.map.wd(ROOT);
        if mask.contains(EventMask::IGNORED) {
            if Some(wd) == root_wd && self.fatal.is_none() {
                self.fatal = Some(format!(
                    "source directory {} is no longer watched (deleted or unmounted); stopping",
                    self.src.display()
                ));
            }
            for w in self.map.forget_wd(wd) {
                notify::rm_watch(self.inotify.as_fd(), w);
            }
            return;
        }
        let Some(node) = self.map.node_of_wd(wd) else {
            // A watch already dropped (moved out, deleted).
            return;
        };
        let Some(dir_rel) = self.map.path(node) else {
            return;
        };
        let Some(name) = name else {
            // An event on the watched directory itself; its parent reports
            // the same change by name, except for SRC.
            if node == ROOT {
                if mask.intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
                    self.source_gone(mask, mask.contains(EventMask::DELETE_SELF));
                } else if mask.contains(EventMask::ATTRIB) {
                    self.reporter.event(&Ev::Notify {
                        kind: "attrib",
                        path: &self.src,
                    });
                    self.queue.push_attrs(Path::new(""), now);
                }
            }
            return;
        };
        let rel = join(&dir_rel, name);
        let is_dir = mask.contains(EventMask::ISDIR);
        {
            let full = self.src.join(&rel);
            self.reporter.event(&Ev::Notify {
                kind: kind_name(mask),
                path: &full,
            });
        }
        if mask.contains(EventMask::CREATE) {
            if is_dir {
                if self.config.recursive {
                    let _ = self.watch_tree(&rel, now, false);
                }
                self.queue.push_sync(&rel, Urgency::Soon, now);
            } else {
                self.queue.push_sync(&rel, Urgency::Settle, now);
            }
        } else if mask.contains(EventMask::CLOSE_WRITE) {
            self.queue.push_sync(&rel, Urgency::Soon, now);
        } else if mask.contains(EventMask::MODIFY) {
            self.queue.push_sync(&rel, Urgency::Settle, now);
        } else if mask.contains(EventMask::ATTRIB) {
            self.queue.push_attrs(&rel, now);
        } else if mask.contains(EventMask::DELETE) {
            if is_dir {
                if let Some(id) = self.map.lookup(&rel) {
                    for w in self.map.remove(id) {
                        notify::rm_watch(self.inotify.as_fd(), w);
                    }
                }
            }
            self.queue.push_sync(&rel, Urgency::Soon, now);
        } else if mask.contains(EventMask::MOVED_FROM) {
            let node = if is_dir {
                self.map.lookup(&rel).map(|id| (id, self.map.wd(id)))
            } else {
                None
            };
            self.moves.insert(
                cookie,
                PendingMove {
                    from: rel,
                    node,
                    deadline: now + self.config.pair_window,
                },
            );
        } else if mask.contains(EventMask::MOVED_TO) {
            match self.moves.remove(&cookie) {
                Some(m) => {
                    if is_dir && self.config.recursive {
                        match self.map.rename(&m.from, &rel) {
                            Some((_, dropped)) => {
                                for w in dropped {
                                    notify::rm_watch(self.inotify.as_fd(), w);
                                }
                            }
                            // Not in the map (lost events): watch it anew.
                            None => {
                                let _ = self.watch_tree(&rel, now, false);
                            }
                        }
                    }
                    self.queue.push_rename(&m.from, &rel, now);
                }
                None => {
                    // Moved in from outside SRC.
                    if is_dir && self.config.recursive {
                        let _ = self.watch_tree(&rel, now, false);
                    }
                    self.queue.push_sync(&rel, Urgency::Soon, now);
                }
            }
        }
    }

    /// Unpaired `IN_MOVED_FROM`s whose window is over: moved out of SRC.
    fn expire_moves(&mut self, now: Instant) {
        let due: Vec<u32> = self
            .moves
            .iter()
            .filter(|(_, m)| m.deadline <= now)
            .map(|(&c, _)| c)
            .collect();
        for c in due {
            let Some(m) = self.moves.remove(&c) else {
                continue;
            };
            if let Some((id, wd)) = m.node {
                let same = self.map.contains(id)
                    && self.map.wd(id) == wd
                    && self.map.path(id).as_deref() == Some(m.from.as_path());
                if same {
                    for w in self.map.remove(id) {
                        notify::rm_watch(self.inotify.as_fd(), w);
                    }
                }
            }
            self.queue.push_sync(&m.from, Urgency::Soon, now);
        }
    }

    /// Periodic pass over directories without a watch: retry the watch,
    /// and sync their subtree.
    fn rescan_unwatched(&mut self, now: Instant) {
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

//! A pair's runner: one thread per pair that runs it as its config says
//! (a watch loop, or runs on a schedule), takes commands (pause, resume,
//! sync-now, stop), retries failures with back-off and keeps its
//! [`Track`] current. The sync itself is the existing engine
//! ([`super::engines`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::config::{LogLevel, PairConfig, When};
use super::engines;
use super::track::{code, Counters, Track, Tracked};
use crate::sys::notify::{wait_readable, EventFd};
use crate::watch::shared::SharedInotify;
use crate::watch::Engine;

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts of a failing pair.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What a pair is told to do.
enum Cmd {
    Pause,
    Resume,
    SyncNow(mpsc::Sender<u8>),
    Stop,
}

/// What the runner and the front ends share.
struct Shared {
    track: Arc<Track>,
    cmds: Mutex<VecDeque<Cmd>>,
    /// Wakes the runner when it waits.
    wake: EventFd,
    /// Stops the current watch loop (a new one per loop).
    stop_watch: Mutex<Arc<EventFd>>,
    /// Cancels the current remote engine's reconnections.
    cancel: Mutex<Arc<AtomicBool>>,
    /// The engine of the running watch loop.
    engine: Mutex<Option<Arc<Tracked>>>,
    /// Its first run (scan) has started.
    started: AtomicBool,
    /// The daemon's shared inotify instance, if any.
    inotify: Option<Arc<SharedInotify>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running pair (see the module docs). Dropping it does not stop it:
/// [`Pair::stop`] does.
pub struct Pair {
    sh: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Pair {
    /// Starts running `cfg`.
    pub fn start(
        cfg: PairConfig,
        saved: Counters,
        log: Arc<super::log::Logger>,
        on_error: super::track::Hooks,
        state_dir: std::path::PathBuf,
        inotify: Option<Arc<SharedInotify>>,
    ) -> std::io::Result<Pair> {
        let track = Arc::new(Track::new(cfg, saved, log, on_error, state_dir));
        let sh = Arc::new(Shared {
            track,
            cmds: Mutex::new(VecDeque::new()),
            wake: EventFd::new()?,
            stop_watch: Mutex::new(Arc::new(EventFd::new()?)),
            cancel: Mutex::new(Arc::new(AtomicBool::new(false))),
            engine: Mutex::new(None),
            started: AtomicBool::new(false),
            inotify,
        });
        let s2 = sh.clone();
        let thread = std::thread::Builder::new()
            .name(format!(
                "pair-{}",
                sh.track.cfg.name.chars().take(10).collect::<String>()
            ))
            .spawn(move || {
                Runner {
                    sh: s2,
                    paused: false,
                }
                .run()
            })?;
        Ok(Pair {
            sh,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Its settings.
    pub fn config(&self) -> &PairConfig {
        &self.sh.track.cfg
    }

    /// Its state.
    pub fn track(&self) -> &Arc<Track> {
        &self.sh.track
    }

    /// Whether its first run has started.
    pub fn started(&self) -> bool {
        self.sh.started.load(Ordering::Relaxed)
    }

    fn send(&self, cmd: Cmd) {
        lock(&self.sh.cmds).push_back(cmd);
        self.sh.wake.notify();
    }

    /// Interrupts a running watch loop (it finishes its operations in
    /// hand, then the runner reads its commands).
    fn interrupt(&self) {
        lock(&self.sh.stop_watch).notify();
        lock(&self.sh.cancel).store(true, Ordering::Relaxed);
    }

    /// Pauses it.
    pub fn pause(&self) {
        self.send(Cmd::Pause);
        self.interrupt();
    }

    /// Resumes it (its source is rescanned).
    pub fn resume(&self) {
        self.send(Cmd::Resume);
    }

    /// Syncs it now; returns that sync's exit code.
    pub fn sync_now(&self) -> u8 {
        // A watched pair's live engine syncs at once, beside its loop.
        let live = lock(&self.sh.engine).clone();
        if let Some(e) = live {
            let r = e.sync_all().map_err(|e| crate::error::chain(&e));
            return code(&r);
        }
        let (tx, rx) = mpsc::channel();
        self.send(Cmd::SyncNow(tx));
        rx.recv().unwrap_or(3)
    }

    /// Tells it to stop (returns at once; [`Pair::join`] waits).
    pub fn stop(&self) {
        self.send(Cmd::Stop);
        self.interrupt();
    }

    /// Waits until it has stopped, at most until `deadline`; false when
    /// it is still running then (it is left to finish on its own).
    pub fn join(&self, deadline: std::time::Instant) -> bool {
        while lock(&self.thread)
            .as_ref()
            .is_some_and(|t| !t.is_finished())
        {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
        true
    }

    /// Its inotify descriptor's watches.
    pub fn watches(&self) -> u64 {
        self.sh.track.stats.watches()
    }
}

struct Runner {
    sh: Arc<Shared>,
    paused: bool,
}

/// How a watch loop ended.
enum Ended {
    /// Stopped by a command.
    Interrupted,
    /// Failed: retried after a back-off.
    Failed,
}

impl Runner {
    fn track(&self) -> &Arc<Track> {
        &self.sh.track
    }

    /// Handles the commands waiting; false on Stop.
    fn commands(&mut self, rescan: &mut bool) -> bool {
        loop {
            let Some(cmd) = lock(&self.sh.cmds).pop_front() else {
                return true;
            };
            match cmd {
                Cmd::Stop => return false,
                Cmd::Pause => {
                    self.paused = true;
                    self.track().set_paused(true);
                    self.track().log(LogLevel::Info, "paused");
                }
                Cmd::Resume => {
                    if self.paused {
                        self.paused = false;
                        self.track().set_paused(false);
                        self.track().log(LogLevel::Info, "resumed");
                        *rescan = true;
                    }
                }
                Cmd::SyncNow(tx) => {
                    let c = self.sync_once();
                    let _ = tx.send(c);
                }
            }
        }
    }

    /// Waits for a command or until `until` (`None`: no timeout).
    fn wait(&self, until: Option<SystemTime>) {
        if !lock(&self.sh.cmds).is_empty() {
            return;
        }
        let timeout = until.map(|t| {
            t.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        let _ = wait_readable(&[std::os::fd::AsFd::as_fd(&self.sh.wake)], timeout);
        self.sh.wake.drain();
    }

    /// One full sync, outside any watch loop.
    fn sync_once(&self) -> u8 {
        self.sh.started.store(true, Ordering::Relaxed);
        let t = self.track();
        t.begin();
        let r = engines::sync_once(t);
        t.end(&r);
        code(&r)
    }

    fn run(mut self) {
        let mut backoff = FIRST_BACKOFF;
        let mut next: Option<SystemTime> = Some(SystemTime::now());
        loop {
            // A fresh stop flag before the commands are read: a pause
            // sent after this point notifies the new flag.
            *lock(&self.sh.stop_watch) = match EventFd::new() {
                Ok(f) => Arc::new(f),
                Err(e) => {
                    self.track().fail(&format!("cannot create an eventfd: {e}"));
                    std::thread::sleep(backoff);
                    continue;
                }
            };
            *lock(&self.sh.cancel) = Arc::new(AtomicBool::new(false));
            let mut rescan = false;
            if !self.commands(&mut rescan) {
                return;
            }
            if rescan {
                next = Some(SystemTime::now());
                backoff = FIRST_BACKOFF;
            }
            if self.paused {
                self.sh.started.store(true, Ordering::Relaxed);
                self.wait(None);
                continue;
            }
            match self.track().cfg.when.clone() {
                When::Watch => {
                    if next.is_some_and(|t| SystemTime::now() < t) {
                        self.wait(next);
                        continue;
                    }
                    match self.watch() {
                        Ended::Interrupted => next = None,
                        Ended::Failed => {
                            next = Some(SystemTime::now() + backoff);
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                }
                When::Schedule(s) => {
                    let now = SystemTime::now();
                    if next.map_or(true, |t| now >= t) {
                        let c = self.sync_once();
                        next = Some(s.next_after(now));
                        if c == 3 {
                            let retry = SystemTime::now() + backoff;
                            next = next.map(|n| n.min(retry));
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        } else {
                            backoff = FIRST_BACKOFF;
                        }
                    }
                    self.wait(next);
                }
            }
        }
    }

    /// Runs the watch loop until a command or a failure.
    fn watch(&self) -> Ended {
        let t = self.track().clone();
        let stop = lock(&self.sh.stop_watch).clone();
        let cancel = lock(&self.sh.cancel).clone();
        self.sh.started.store(true, Ordering::Relaxed);
        let engine = match engines::watch_engine(&t, cancel) {
            Ok(e) => e,
            Err(why) => {
                t.fail(&why);
                return Ended::Failed;
            }
        };
        let tracked = Arc::new(Tracked {
            inner: engine,
            track: t.clone(),
        });
        *lock(&self.sh.engine) = Some(tracked.clone());
        let r = engines::watch_loop(&t, tracked, stop.clone(), self.sh.inotify.clone());
        *lock(&self.sh.engine) = None;
        t.stats.clear();
        match r {
            _ if stop.is_raised() => Ended::Interrupted,
            Ok(_) => {
                if !t.in_error() {
                    t.fail("the watch stopped (source moved or removed?)");
                }
                Ended::Failed
            }
            Err(why) => {
                t.fail(&why);
                Ended::Failed
            }
        }
    }
}

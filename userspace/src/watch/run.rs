//! The event loop: reads inotify events, signals and worker completions,
//! hands due operations to a few persistent copy workers (which call the
//! [`Engine`]), and retries files that were still changing when copied.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::engine::Engine;
use super::queue::Op;
use super::stop::Signals;
use super::watcher::Watcher;
use crate::report::{Event as Ev, Summary};
use crate::sys::notify::{self, EventFd};
use crate::{Error, ExitStatus, Result};

/// A file still changing is retried for this long before it is reported
/// (as a warning; its next change triggers a new attempt).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// The wait before the `n`th retry of a file still changing: 50 ms,
/// doubling, at most 2 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis(50u64 << n.min(6)).min(Duration::from_secs(2))
}

/// A finished operation.
struct Done {
    id: u64,
    op: Op,
    result: Result<Summary>,
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

/// The copy workers: threads started on demand (up to the configured
/// number, when operations are in flight beyond the idle ones) and kept,
/// fed through a channel. A watcher that has only ever had its initial
/// sync in flight has one thread (the daemon runs one watcher per pair).
struct Workers {
    jobs: Option<mpsc::Sender<(u64, Op)>>,
    job_rx: Arc<Mutex<mpsc::Receiver<(u64, Op)>>>,
    done_tx: mpsc::Sender<Done>,
    done: mpsc::Receiver<Done>,
    wake: Arc<EventFd>,
    engine: Arc<dyn Engine>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    fn start(engine: &Arc<dyn Engine>) -> Result<Workers> {
        let (job_tx, job_rx) = mpsc::channel::<(u64, Op)>();
        let (done_tx, done) = mpsc::channel::<Done>();
        let wake = Arc::new(EventFd::new().map_err(|e| Error::new("creating an eventfd", e))?);
        Ok(Workers {
            jobs: Some(job_tx),
            job_rx: Arc::new(Mutex::new(job_rx)),
            done_tx,
            done,
            wake,
            engine: engine.clone(),
            handles: Vec::new(),
        })
    }

    /// Starts threads until there are `n`. A thread that cannot start is
    /// an error only when there is none (the others take the work).
    fn ensure(&mut self, n: usize) -> Result<()> {
        while self.handles.len() < n {
            let i = self.handles.len();
            let (rx, tx) = (self.job_rx.clone(), self.done_tx.clone());
            let (engine, wake) = (self.engine.clone(), self.wake.clone());
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
                });
            match h {
                Ok(h) => self.handles.push(h),
                Err(_) if !self.handles.is_empty() => return Ok(()),
                Err(e) => return Err(Error::new("starting a copy worker", e)),
            }
        }
        Ok(())
    }

    /// Stops taking work and waits for the workers.
    fn finish(&mut self) {
        self.jobs = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// The loop's state (see the module docs).
pub struct EventLoop {
    w: Watcher,
    engine: Arc<dyn Engine>,
    workers: Workers,
    signals: Signals,
    stop: Option<ExitStatus>,
    /// The id of the initial full sync: its failure stops the watcher.
    initial: Option<u64>,
    /// Files still changing: when first seen so, and how many retries.
    unsettled: HashMap<PathBuf, (Instant, u32)>,
    buf: Vec<u8>,
}

impl EventLoop {
    /// Starts the copy workers; the initial full sync is queued.
    pub fn new(mut w: Watcher, engine: Arc<dyn Engine>, signals: Signals) -> Result<Self> {
        let mut workers = Workers::start(&engine)?;
        // One thread at once: a worker that cannot start is reported here.
        workers.ensure(1)?;
        w.queue.push_rescan_all(Instant::now());
        Ok(EventLoop {
            w,
            engine,
            workers,
            signals,
            stop: None,
            initial: None,
            unsettled: HashMap::new(),
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Runs until a signal or a fatal condition, then lets the operations
    /// in hand finish.
    pub fn run(mut self) -> Result<ExitStatus> {
        let result = loop {
            match self.step() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        self.workers.finish();
        result
    }

    /// One round: dispatch, sleep, handle what woke us up.
    fn step(&mut self) -> Result<Option<ExitStatus>> {
        let now = Instant::now();
        if self.stop.is_none() {
            if let Some(msg) = self.w.fatal.take() {
                self.report_error(&msg);
                self.stopping(ExitStatus::Fatal);
            }
        }
        match self.stop {
            None => self.dispatch(now),
            Some(s) if self.w.queue.inflight() == 0 => return Ok(Some(s)),
            Some(_) => {}
        }
        let ready = self.wait(now)?;
        if ready[1] {
            self.on_signal();
        }
        if ready[2] {
            self.workers.wake.drain();
        }
        self.collect_done();
        if let Some(stats) = &self.w.config.stats {
            stats.update(
                self.w.queue.pending() + self.w.queue.inflight(),
                self.w.map.len(),
            );
        }
        if self.stop.is_some() {
            return Ok(None);
        }
        if ready[0] || self.w.rescan_after_drain {
            self.read_inotify()?;
        }
        let now = Instant::now();
        if self.w.moves_due(now) {
            // An IN_MOVED_TO queued by now pairs with its IN_MOVED_FROM
            // however late this loop gets to it (a slow or busy machine):
            // what is queued is read before any move expires.
            self.read_inotify()?;
        }
        self.w.expire_moves(now);
        if self.w.next_rescan.is_some_and(|t| now >= t) {
            self.w.rescan_unwatched(now);
        }
        Ok(None)
    }

    /// Reads and handles what the inotify queue holds.
    fn read_inotify(&mut self) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.w.read_events(&mut buf);
        self.buf = buf;
        r.map_err(|e| Error::new("reading inotify events", e))
    }

    fn report_error(&self, msg: &str) {
        self.w.reporter.event(&Ev::Error {
            path: &self.w.src,
            message: msg,
        });
    }

    fn stopping(&mut self, status: ExitStatus) {
        self.stop = Some(status);
        self.w.queue.clear_pending();
    }

    /// Hands due operations to free workers.
    fn dispatch(&mut self, now: Instant) {
        let free = self
            .w
            .config
            .workers
            .max(1)
            .saturating_sub(self.w.queue.inflight());
        let ops = self.w.queue.dispatch(now, free);
        if ops.is_empty() {
            return;
        }
        // As many threads as operations in flight (at most `workers`).
        let want = self.w.queue.inflight().min(self.w.config.workers.max(1));
        let _ = self.workers.ensure(want);
        let Some(jobs) = &self.workers.jobs else {
            return;
        };
        for (id, op) in ops {
            if self.initial.is_none() && op == Op::RescanAll {
                self.initial = Some(id);
            }
            if jobs.send((id, op)).is_err() {
                break;
            }
        }
    }

    /// Sleeps until an fd is readable or the next timer; no timer when
    /// there is nothing to wait for (idle: zero wakeups).
    fn wait(&self, now: Instant) -> Result<Vec<bool>> {
        let w = &self.w;
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        if self.stop.is_none() {
            consider(w.queue.next_deadline(now));
            consider(w.moves.values().map(|m| m.deadline).min());
            consider(w.next_rescan);
            if w.rescan_after_drain {
                // Keep reading until the queue is empty, then rescan.
                consider(Some(now));
            }
        }
        let timeout = next.map(|t| t.saturating_duration_since(now));
        let fds = [
            w.ino.wake_fd(),
            self.signals.as_fd(),
            self.workers.wake.as_fd(),
        ];
        notify::wait_readable(&fds, timeout).map_err(|e| Error::new("waiting for events", e))
    }

    fn on_signal(&mut self) {
        let Some(kind) = self.signals.read() else {
            return;
        };
        if self.stop.is_none() {
            self.w.reporter.event(&Ev::Notify {
                kind,
                path: &self.w.src,
            });
            self.stopping(ExitStatus::Ok);
        }
    }

    /// Takes the finished operations: errors are reported; files that were
    /// still changing are retried.
    fn collect_done(&mut self) {
        let done: Vec<Done> = self.workers.done.try_iter().collect();
        if done.is_empty() {
            return;
        }
        let unsettled = self.engine.take_unsettled();
        // After a full sync, the memory of its walk goes back to the kernel.
        if done.iter().any(|d| d.op == Op::RescanAll) {
            crate::sys::trim_heap();
        }
        for d in done {
            self.w.queue.complete(d.id);
            match d.result {
                // The engine re-applies the mode and mtime of the DST
                // directories it changes (parents included), so nothing
                // follows a finished operation; a path it converged is
                // settled unless it just said otherwise.
                Ok(_) => {
                    if let Op::Sync(p) | Op::Attrs(p) | Op::Rename(_, p) = &d.op {
                        if !unsettled.contains(p) {
                            self.unsettled.remove(p);
                        }
                    }
                }
                Err(e) => self.failed(d.id, &d.op, &e),
            }
        }
        let now = Instant::now();
        for p in unsettled {
            self.retry_later(p, now);
        }
    }

    fn failed(&mut self, id: u64, op: &Op, e: &Error) {
        let msg = crate::error::chain(e);
        if Some(id) == self.initial {
            // The initial sync failed as a whole: stop.
            self.w
                .fatal
                .get_or_insert(format!("initial sync failed: {msg}"));
            return;
        }
        let path = match op {
            Op::Sync(p) | Op::Attrs(p) | Op::Rename(_, p) => self.w.src.join(p),
            Op::RescanAll => self.w.src.clone(),
        };
        self.w.reporter.event(&Ev::Warning {
            path: &path,
            message: &msg,
        });
    }

    /// `rel` kept changing during its copy: not an error while its writer
    /// may still be at work (tar sets the mtime after closing a file):
    /// copied again after a back-off (or on its next event); reported, as
    /// a warning, only once it has kept changing for [`GIVE_UP_AFTER`].
    fn retry_later(&mut self, rel: PathBuf, now: Instant) {
        let (first, tries) = self.unsettled.entry(rel.clone()).or_insert((now, 0));
        *tries += 1;
        if now.duration_since(*first) < GIVE_UP_AFTER {
            let after = backoff(*tries);
            self.w.queue.push_retry(&rel, after, now);
            return;
        }
        let msg = format!(
            "not copied: the file kept changing for {} s ({} tries); it is copied when it settles",
            now.duration_since(*first).as_secs(),
            *tries
        );
        self.unsettled.remove(&rel);
        let path = self.w.src.join(Path::new(&rel));
        self.w.reporter.event(&Ev::Warning {
            path: &path,
            message: &msg,
        });
    }
}

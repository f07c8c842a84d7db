//! `dirsync watch --two-way A B` (both local): the one-way watcher
//! ([`crate::watch::run_with`]) on each root, both feeding one two-way
//! engine ([`super::engine::run_scoped`]).
//!
//! Each root has its own watch loop (inotify, the watch map, coalescing,
//! rename pairing, `IN_Q_OVERFLOW` and unwatched-directory rescans, all
//! as for a mirror). What the loops would hand a [`crate::sync::Syncer`]
//! is a pass of the two-way engine here: `sync_path(p)` and
//! `sync_attrs(p)` a pass over `p`, `rename(from, to)` a pass over both
//! names (the archive's inodes make it a rename on the other side), and
//! `sync_all` (the start, an overflow) a whole two-way run. Passes are
//! serialized by one lock: each sees the archive as the previous one left
//! it.
//!
//! No echo: what a pass writes to a side is recorded in the archive with
//! that side's inode, size and mtime as written, so when that side's loop
//! reports it, the pass over it finds the archived state and does
//! nothing (no event, no write). A user's write that lands after
//! dirsync's changes the size, mtime or inode: it is a change, and
//! propagates (or is a conflict, when the other side changed too).
//!
//! SIGINT/SIGTERM stop both loops; the pass in hand finishes (copies go
//! through temporaries renamed into place, the archive is committed per
//! transaction), so nothing is left half-done.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::engine::run_scoped;
use super::spec::TwoWaySpec;
use crate::exclude::Excludes;
use crate::report::{Event as Ev, Reporter, Summary};
use crate::sync::Options;
use crate::sys::notify::{self, EventFd, SignalFd};
use crate::watch::{self, Config, Engine, Signals};
use crate::{Error, ExitStatus, Result};

/// The two-way engine both loops call.
struct Pair {
    spec: TwoWaySpec,
    opts: Options,
    rep: Unsettled,
    /// Serializes passes; holds what they did, for the closing summary.
    total: Mutex<Summary>,
}

/// The reporter of the passes: passes every event on, and keeps the
/// paths a pass left because they changed while it ran (the engine's
/// "changed during the run" warning), for the loops to try again
/// ([`Engine::take_unsettled`]) rather than wait for their next event.
struct Unsettled {
    inner: Arc<dyn Reporter>,
    roots: [std::path::PathBuf; 2],
    /// Relative paths; bounded by what the trees hold (and drained by
    /// every loop round that finishes an operation).
    paths: Mutex<Vec<std::path::PathBuf>>,
}

impl Reporter for Unsettled {
    fn event(&self, event: &Ev<'_>) {
        if let Ev::Warning { path, message } = event {
            if message.starts_with("changed during the run") {
                if let Some(rel) = self.roots.iter().find_map(|r| path.strip_prefix(r).ok()) {
                    let mut v = self.paths.lock().unwrap_or_else(|p| p.into_inner());
                    if !v.iter().any(|p| p == rel) {
                        v.push(rel.to_path_buf());
                    }
                }
            }
        }
        self.inner.event(event);
    }
}

impl Pair {
    fn pass(&self, scope: Option<&[Vec<u8>]>) -> Result<Summary> {
        let mut total = self.total.lock().unwrap_or_else(|p| p.into_inner());
        match run_scoped(&self.spec, &self.opts, &self.rep, scope) {
            Ok(s) => {
                total.add(&s);
                Ok(s)
            }
            Err(super::Error::Sync(e)) => Err(e),
            Err(e) => Err(Error::new(
                "two-way pass",
                std::io::Error::other(crate::error::chain(&e)),
            )),
        }
    }
}

/// One root's view of the pair: what its watch loop calls.
struct Half(Arc<Pair>);

fn bytes(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

impl Engine for Half {
    fn sync_all(&self) -> Result<Summary> {
        self.0.pass(None)
    }
    fn sync_path(&self, rel: &Path) -> Result<Summary> {
        self.0.pass(Some(&[bytes(rel)]))
    }
    fn sync_attrs(&self, rel: &Path) -> Result<Summary> {
        self.0.pass(Some(&[bytes(rel)]))
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<Summary> {
        self.0.pass(Some(&[bytes(from), bytes(to)]))
    }
    fn take_unsettled(&self) -> Vec<std::path::PathBuf> {
        // A retry through either loop is a pass over both sides.
        std::mem::take(&mut *self.0.rep.paths.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Watches `spec.a` and `spec.b` and keeps them in two-way sync until
/// SIGINT/SIGTERM ([`ExitStatus::Ok`]), or until a root is deleted or
/// moved or the start-up run fails ([`ExitStatus::Fatal`], reported as
/// an error event). Returns the status and what all passes did.
pub fn run(
    spec: TwoWaySpec,
    opts: Options,
    rep: Arc<dyn Reporter>,
) -> Result<(ExitStatus, Summary)> {
    // Blocked before any thread exists: every thread inherits the mask.
    let signals = SignalFd::new().map_err(|e| Error::new("creating a signalfd", e))?;
    for (root, which) in [(&spec.a, "root A"), (&spec.b, "root B")] {
        crate::sys::open_root(root).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Error::invalid(which, root, "does not exist"),
            Some(libc::ENOTDIR) => Error::invalid(which, root, "is not a directory"),
            _ => Error::at("cannot open", root, e),
        })?;
    }
    let excludes = Excludes::new(&opts.excludes)?;
    let stop = Arc::new(EventFd::new().map_err(|e| Error::new("creating an eventfd", e))?);
    let ended = Arc::new(EventFd::new().map_err(|e| Error::new("creating an eventfd", e))?);
    let pair = Arc::new(Pair {
        spec: spec.clone(),
        opts,
        rep: Unsettled {
            inner: rep.clone(),
            roots: [spec.a.clone(), spec.b.clone()],
            paths: Mutex::new(Vec::new()),
        },
        total: Mutex::new(Summary::default()),
    });
    let mut loops = Vec::new();
    for root in [spec.a.clone(), spec.b.clone()] {
        let config = Config {
            // Passes are serialized: more workers would only wait.
            workers: 1,
            excludes: excludes.clone(),
            ..Config::default()
        };
        let (engine, rep) = (Arc::new(Half(pair.clone())), rep.clone());
        let (stop, ended) = (stop.clone(), ended.clone());
        let h = std::thread::Builder::new()
            .name("dirsync-watch2".into())
            .spawn(move || {
                let r = watch::run_with(&root, engine, rep, Signals::stop_flag(stop), config);
                ended.notify();
                r
            })
            .map_err(|e| Error::new("starting a watch loop", e))?;
        loops.push(h);
    }
    // Until a signal, or until a loop ends by itself (a root gone, the
    // start-up run failed): then the other one is stopped too.
    loop {
        let ready = notify::wait_readable(&[signals.as_fd(), ended.as_fd()], None)
            .map_err(|e| Error::new("waiting for signals", e))?;
        if ready[0] {
            if let Some(sig) = signals.read() {
                let kind = if sig == libc::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                rep.event(&Ev::Notify {
                    kind,
                    path: &spec.a,
                });
                break;
            }
        }
        if ready[1] {
            break;
        }
    }
    stop.notify();
    let mut status = ExitStatus::Ok;
    let mut err = None;
    for h in loops {
        match h.join() {
            Ok(Ok(s)) if s as u8 > status as u8 => status = s,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => err = err.or(Some(e)),
            Err(_) => err = err.or(Some(Error::Panicked)),
        }
    }
    if let Some(e) = err {
        return Err(e);
    }
    let total = *pair.total.lock().unwrap_or_else(|p| p.into_inner());
    Ok((status, total))
}

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
//! A file still being written when it is copied (its size or mtime moved
//! during the copy, four times in a row: `tar x` sets each mtime after
//! closing the file) is not an error here: the engine hands it back
//! ([`Engine::take_unsettled`]) and it is copied again after a back-off
//! ([`backoff`]) or on its next event; only one that keeps changing for
//! [`GIVE_UP_AFTER`] is reported, as a warning.
//!
//! Parts: [`config`], [`engine`] (what the workers call), `watcher` (state
//! and watches), `events` (inotify events to operations), [`queue`],
//! [`map`], `run` (the event loop and the copy workers).
//!
//! On SIGINT or SIGTERM the watcher stops taking new work, waits for the
//! operations in hand (the engine copies through temporary files renamed
//! into place, so none is left behind) and returns [`ExitStatus::Ok`].

pub mod config;
pub mod engine;
mod events;
pub mod map;
pub mod queue;
mod run;
pub mod shared;
mod source;
mod stop;
mod watcher;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use inotify::Inotify;

use crate::exclude::Excludes;
use crate::report::{Event as Ev, Reporter};
use crate::sync::{Options, Syncer};
use crate::sys::{self, notify};
use crate::{Error, ExitStatus, Result};

pub use self::config::{Config, LoopStats};
pub use self::engine::Engine;
pub use self::queue::Delays;
use self::run::EventLoop;
pub use self::run::{backoff, GIVE_UP_AFTER};
use self::source::Source;
pub use self::stop::Signals;
use self::stop::Stop;
use self::watcher::Watcher;

/// `dirsync watch SRC DST`: an initial full sync, then DST follows SRC
/// until SIGINT/SIGTERM ([`ExitStatus::Ok`]) or until SRC itself is
/// deleted or moved ([`ExitStatus::Fatal`], reported as an error event).
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
    let options = Options {
        defer_changing: true,
        ..options
    };
    let syncer = Syncer::new(src, dst, options, reporter.clone())?;
    run_with(
        src,
        Arc::new(syncer),
        reporter,
        Signals(Stop::Signals(signals)),
        config,
    )
}

/// [`run`] with any [`Engine`] and explicit tunables.
pub fn run_with(
    src: &Path,
    engine: Arc<dyn Engine>,
    reporter: Arc<dyn Reporter>,
    signals: Signals,
    config: Config,
) -> Result<ExitStatus> {
    let root = sys::open_root(src).map_err(|e| Error::at("opening", src, e))?;
    let ino = match &config.shared {
        Some(shared) => Source::Shared(
            shared
                .join()
                .map_err(|e| Error::new("joining the shared inotify instance", e))?,
        ),
        None => Source::Own(Inotify::init().map_err(|e| {
            let what = if e.raw_os_error() == Some(libc::EMFILE) {
                "creating an inotify instance (the fs.inotify.max_user_instances limit?)"
            } else {
                "creating an inotify instance"
            };
            Error::new(what, e)
        })?),
    };
    let mut w = Watcher::new(src, root, ino, reporter, config);
    w.watch_parent();
    // Watch everything first, then sync: a change made while the initial
    // sync runs is an event in the queue, not a loss.
    if let Err(e) = w.watch_tree(Path::new(""), Instant::now(), true) {
        return Err(Error::at("watching", src, e));
    }
    // SRC renamed or replaced before its watch existed gives no event:
    // check that the name still leads to the directory being watched.
    if !notify::same_file(std::os::fd::AsFd::as_fd(&w.root), src) {
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
    EventLoop::new(w, engine, signals)?.run()
}

//! `dirsync watch SRC host:DST`: the local watcher ([`crate::watch`])
//! with an engine whose DST is a remote agent, over one long-lived
//! connection.
//!
//! When the connection drops (the link's reader sees the end, or a send
//! fails), [`RemoteEngine`] says so (a warning event: stderr, or a JSON
//! line with `--json`), reconnects with a growing back-off (0.5 s doubling
//! to 10 s, for ever), then runs a full resync before anything else:
//! whatever changed while the link was down converges, and the watcher
//! never stops because of the link. An operation that was under way when
//! the link dropped is done again after the resync. A monitor thread
//! notices a drop even when no change is pending.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use super::client::{open, Connect, LinkAware, Session};
use super::link::{lock, Link};
use super::protocol::messages::{Role, FEATURE_KEEPALIVE};
use super::replica::RemoteReplica;
use super::spec::Spec;
use super::{setup, RemoteError};
use crate::report::{Event, Reporter, Summary};
use crate::sync::{Options, Replica, Syncer};
use crate::watch::{Config, Engine, Signals};
use crate::{ExitStatus, Result};

/// One connection and the syncer that uses it.
struct Live {
    syncer: Syncer,
    link: Arc<Link>,
    _session: super::transport::Transport,
}

/// Told when the link goes down for good (a reconnection failed) and
/// when it is back: the daemon's pair state.
pub trait LinkObserver: Send + Sync {
    /// A reconnection failed: `why`.
    fn down(&self, why: &str);
    /// Reconnected (and resynced).
    fn up(&self);
}

/// The watcher's engine for a remote DST (see the module docs).
pub struct RemoteEngine {
    src: PathBuf,
    spec: Spec,
    connect: Connect,
    options: Options,
    reporter: Arc<dyn Reporter>,
    live: Mutex<Option<Arc<Live>>>,
    /// Held while reconnecting (one reconnection at a time).
    reconnecting: Mutex<()>,
    stop: AtomicBool,
    /// Raised by the owner to stop reconnecting: operations then fail
    /// instead of waiting for the link (a cancellation point).
    cancel: Arc<AtomicBool>,
    observer: Option<Arc<dyn LinkObserver>>,
}

impl RemoteEngine {
    /// An engine for `src` → `spec`, not connected yet
    /// ([`RemoteEngine::connect_first`]). Raising `cancel` stops its
    /// reconnections; `observer` hears of the link's failures.
    pub fn new(
        src: &Path,
        spec: &Spec,
        connect: &Connect,
        options: Options,
        reporter: Arc<dyn Reporter>,
        cancel: Arc<AtomicBool>,
        observer: Option<Arc<dyn LinkObserver>>,
    ) -> Arc<RemoteEngine> {
        let options = Options {
            defer_changing: true,
            ..options
        };
        let engine = Arc::new(RemoteEngine {
            src: src.to_path_buf(),
            spec: spec.clone(),
            connect: connect.clone(),
            options,
            reporter,
            live: Mutex::new(None),
            reconnecting: Mutex::new(()),
            stop: AtomicBool::new(false),
            cancel,
            observer,
        });
        let weak = Arc::downgrade(&engine);
        std::thread::spawn(move || monitor(weak));
        engine
    }

    /// The first connection (an error when it fails: the caller decides
    /// whether to retry).
    pub fn connect_first(&self) -> std::result::Result<(), RemoteError> {
        let first = self.connect_once()?;
        *lock(&self.live) = Some(first);
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn connect_once(&self) -> std::result::Result<Arc<Live>, RemoteError> {
        let host = self.spec.host.as_str();
        let st = setup(Role::Agent, &self.spec.path, &self.options);
        let Session {
            transport,
            r,
            w,
            created,
            exists,
            features,
            alive,
        } = open(&self.spec, &self.connect, &st)?;
        // A timeout is a lost connection (reconnected as a drop is); but
        // a server without keepalives is silent whenever nothing changes:
        // no timeout then, or every quiet spell would be a full resync.
        if features & FEATURE_KEEPALIVE == 0 {
            alive.set(None);
        }
        let label = self.spec.label();
        if created {
            self.reporter.event(&Event::CreatedDir { path: &label });
        }
        let rep = Arc::new(LinkAware {
            inner: self.reporter.clone(),
            link: OnceLock::new(),
        });
        let link = Link::start(r, w, rep.clone(), &label, host);
        link.set_features(features);
        let _ = rep.link.set(Arc::downgrade(&link));
        let replica =
            exists.then(|| Box::new(RemoteReplica::new(link.clone())) as Box<dyn Replica>);
        let syncer = Syncer::with_replica(
            &self.src,
            &label,
            replica,
            created,
            self.options.clone(),
            rep,
        )?;
        Ok(Arc::new(Live {
            syncer,
            link,
            _session: transport,
        }))
    }

    fn warn(&self, message: &str) {
        let label = self.spec.label();
        self.reporter.event(&Event::Warning {
            path: &label,
            message,
        });
    }

    /// The live connection, reconnecting first when it is down; `None`
    /// once cancelled.
    fn current(&self) -> Option<Arc<Live>> {
        loop {
            if let Some(l) = lock(&self.live).clone() {
                if l.link.down().is_none() {
                    return Some(l);
                }
            }
            if self.cancelled() {
                return None;
            }
            self.recover();
        }
    }

    /// Reconnects (with back-off, for ever) and resyncs everything.
    fn recover(&self) {
        let _one = lock(&self.reconnecting);
        let old = lock(&self.live).clone();
        if let Some(l) = &old {
            match l.link.down() {
                None => return, // another thread reconnected meanwhile
                Some(why) => self.warn(&format!("connection lost ({why}); reconnecting")),
            }
        }
        *lock(&self.live) = None;
        drop(old);
        let mut delay = Duration::from_millis(500);
        let mut failed = false;
        while !self.cancelled() {
            match self.connect_once() {
                Ok(l) => {
                    self.warn("reconnected; full resync");
                    let _ = l.syncer.sync_all();
                    let _ = l.link.flush();
                    if l.link.down().is_none() {
                        *lock(&self.live) = Some(l);
                        if let (true, Some(o)) = (failed, &self.observer) {
                            o.up();
                        }
                        return;
                    }
                }
                Err(e) => {
                    let why = crate::error::chain(&e);
                    let msg = format!(
                        "cannot reconnect: {why}; again in {:.1} s",
                        delay.as_secs_f64()
                    );
                    self.warn(&msg);
                    if let (false, Some(o)) = (failed, &self.observer) {
                        o.down(&why);
                    }
                    failed = true;
                }
            }
            // Sleeps in small steps: a cancellation is seen at once.
            let until = std::time::Instant::now() + delay;
            while std::time::Instant::now() < until && !self.cancelled() {
                std::thread::sleep(Duration::from_millis(50));
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// Runs `f` on the live syncer; again (after reconnecting and the
    /// resync) when the link dropped meanwhile.
    fn with(&self, f: impl Fn(&Syncer) -> Result<Summary>) -> Result<Summary> {
        loop {
            let Some(l) = self.current() else {
                return Err(crate::Error::new(
                    "stopped while reconnecting",
                    std::io::Error::from(std::io::ErrorKind::Interrupted),
                ));
            };
            let r = f(&l.syncer);
            let _ = l.link.flush();
            if l.link.down().is_none() {
                return r;
            }
        }
    }
}

impl Engine for RemoteEngine {
    fn sync_all(&self) -> Result<Summary> {
        self.with(Syncer::sync_all)
    }
    fn sync_path(&self, rel: &Path) -> Result<Summary> {
        self.with(|s| s.sync_path(rel))
    }
    fn sync_attrs(&self, rel: &Path) -> Result<Summary> {
        self.with(|s| s.sync_attrs(rel))
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<Summary> {
        self.with(|s| s.rename(from, to))
    }
    fn take_unsettled(&self) -> Vec<PathBuf> {
        match lock(&self.live).clone() {
            Some(l) => l.syncer.take_unsettled(),
            None => Vec::new(),
        }
    }
}

/// Notices a dropped link while nothing else happens.
fn monitor(engine: Weak<RemoteEngine>) {
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let Some(e) = engine.upgrade() else { return };
        if e.stop.load(Ordering::Relaxed) || e.cancelled() {
            return;
        }
        let down = lock(&e.live)
            .as_ref()
            .is_some_and(|l| l.link.down().is_some());
        if down {
            e.recover();
        }
    }
}

/// `dirsync watch SRC host:DST` (see the module docs). The first
/// connection must succeed (an unreachable host is an error); after it,
/// the link may come and go.
pub fn run(
    src: &Path,
    spec: &Spec,
    connect: &Connect,
    options: Options,
    reporter: Arc<dyn Reporter>,
) -> std::result::Result<ExitStatus, RemoteError> {
    // Before any thread: every thread inherits the blocked signals.
    let signals = Signals::new()?;
    let excludes = crate::exclude::Excludes::new(&options.excludes).map_err(crate::Error::from)?;
    let config = Config {
        recursive: !options.no_recursive,
        excludes,
        ..Config::default()
    };
    let engine = RemoteEngine::new(
        src,
        spec,
        connect,
        options,
        reporter.clone(),
        Arc::new(AtomicBool::new(false)),
        None,
    );
    engine.connect_first()?;
    let status = crate::watch::run_with(src, engine.clone(), reporter, signals, config);
    engine.stop.store(true, Ordering::Relaxed);
    Ok(status?)
}

//! What runs a pair: the existing engines, chosen in this one place by
//! the pair's mode and destination (local or `host:PATH`): one full sync
//! ([`sync_once`]), or the watch loop ([`watch_engine`], [`watch_loop`]).

use std::ffi::OsString;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::api::Mode;
use super::config::{LogLevel, PairConfig};
use super::log::PairReporter;
use super::schedule::local_minute;
use super::track::{Track, Tracked};
use super::twoway_pair;
use crate::exclude::Excludes;
use crate::remote::client::{self, Connect};
use crate::remote::spec::{self, Spec};
use crate::remote::watch::RemoteEngine;
use crate::report::{Reporter, Summary};
use crate::sync::{Options, Syncer};
use crate::sys::notify::EventFd;
use crate::watch::{self, Engine, Signals};
use crate::ExitStatus;

/// The engine options of a pair.
pub fn options(cfg: &PairConfig, remote: bool) -> Options {
    // The protocol does not carry -a's attributes yet: a remote pair
    // syncs what it can (said once at start-up).
    let a = cfg.archive && !remote;
    Options {
        no_delete: cfg.no_delete,
        excludes: cfg.exclude.iter().map(OsString::from).collect(),
        hard_links: a,
        acls: a,
        xattrs: a,
        owner: a,
        group: a,
        sparse: a,
        ..Options::default()
    }
}

/// How to reach a pair's remote destination, with the rate in force now.
pub fn connect(cfg: &PairConfig) -> Connect {
    let rsh = cfg
        .rsh
        .clone()
        .or_else(|| std::env::var("DIRSYNC_RSH").ok())
        .unwrap_or_else(|| "ssh".into());
    Connect {
        rsh,
        remote_path: cfg.remote_path.as_ref().map(OsString::from),
        deploy: false,
        compress: cfg.compress,
        bwlimit: cfg.bwlimit.rate_at(local_minute(SystemTime::now())),
        timeout: (cfg.timeout > 0).then(|| Duration::from_secs(cfg.timeout)),
    }
}

fn remote(cfg: &PairConfig) -> Option<Spec> {
    spec::parse(std::ffi::OsStr::new(&cfg.destination))
}

fn reporter(t: &Arc<Track>) -> Arc<dyn Reporter> {
    Arc::new(PairReporter {
        pair: t.cfg.name.clone(),
        log: t.logger(),
        conflicts: Some(t.clone()),
    })
}

/// A two-way pair's options: its excludes, and with `archive` the
/// attributes two-way mode compares (owner, group, `user.*` attributes)
/// when both sides are local (said once otherwise, and for what two-way
/// mode does not sync: ACLs, hard links, holes).
fn two_way_options(t: &Track) -> Options {
    let local = remote(&t.cfg).is_none();
    let a = t.cfg.archive && local;
    if t.cfg.archive {
        t.log(
            LogLevel::Warn,
            if local {
                "archive: a two-way pair syncs content, mode, mtime, owner, group and user.* attributes (no ACLs, hard links or holes)"
            } else {
                "archive: a two-way pair with a remote destination syncs content, mode and mtime only"
            },
        );
    }
    Options {
        excludes: t.cfg.exclude.iter().map(OsString::from).collect(),
        owner: a,
        group: a,
        xattrs: a,
        ..Options::default()
    }
}

fn warn_archive(t: &Track, remote: bool) {
    if remote && t.cfg.archive {
        t.log(LogLevel::Warn, "archive: owners, ACLs, xattrs, hard links and holes are not carried to a remote destination yet");
    }
}

/// One full sync of the pair.
pub fn sync_once(t: &Arc<Track>) -> Result<Summary, String> {
    let cfg = &t.cfg;
    let rep = reporter(t);
    if cfg.mode == Mode::TwoWay {
        return twoway_pair::run_once(t, &two_way_options(t), rep.as_ref(), connect);
    }
    let chain = |e: &dyn std::error::Error| crate::error::chain(e);
    match remote(cfg) {
        Some(spec) => {
            warn_archive(t, true);
            client::push(&cfg.source, &spec, &connect(cfg), options(cfg, true), rep)
                .map_err(|e| chain(&e))
        }
        None => Syncer::new(
            &cfg.source,
            std::path::Path::new(&cfg.destination),
            options(cfg, false),
            rep,
        )
        .and_then(|s| s.sync_all())
        .map_err(|e| chain(&e)),
    }
}

/// The engine of a watched pair: a [`Syncer`] (local destination) or a
/// connected [`RemoteEngine`] whose reconnections `cancel` stops.
pub fn watch_engine(t: &Arc<Track>, cancel: Arc<AtomicBool>) -> Result<Arc<dyn Engine>, String> {
    let cfg = &t.cfg;
    let rep = reporter(t);
    if cfg.mode == Mode::TwoWay {
        return Ok(Arc::new(twoway_pair::TwoWayEngine {
            track: t.clone(),
            opts: two_way_options(t),
            rep,
            one: std::sync::Mutex::new(()),
            connect,
        }));
    }
    let chain = |e: &dyn std::error::Error| crate::error::chain(e);
    match remote(cfg) {
        Some(spec) => {
            warn_archive(t, true);
            let observer: Arc<dyn crate::remote::watch::LinkObserver> = t.clone();
            let e = RemoteEngine::new(
                &cfg.source,
                &spec,
                &connect(cfg),
                options(cfg, true),
                rep,
                cancel,
                Some(observer),
            );
            e.connect_first().map_err(|e| chain(&e))?;
            Ok(e)
        }
        None => {
            let o = Options {
                defer_changing: true,
                ..options(cfg, false)
            };
            let s = Syncer::new(&cfg.source, std::path::Path::new(&cfg.destination), o, rep)
                .map_err(|e| chain(&e))?;
            Ok(Arc::new(s))
        }
    }
}

/// Runs the watch loop on `engine` until `stop` is raised or it fails,
/// watching through `inotify` (the daemon's shared instance) if given.
pub fn watch_loop(
    t: &Arc<Track>,
    engine: Arc<Tracked>,
    stop: Arc<EventFd>,
    inotify: Option<Arc<crate::watch::shared::SharedInotify>>,
) -> Result<ExitStatus, String> {
    let cfg = &t.cfg;
    let o = options(cfg, false);
    let excludes = Excludes::new(&o.excludes).map_err(|e| crate::error::chain(&e))?;
    let config = watch::Config {
        excludes,
        workers: 2,
        stats: Some(t.stats.clone()),
        shared: inotify,
        ..watch::Config::default()
    };
    // A two-way pair's other side is not watched: a run every
    // OTHER_SIDE_EVERY catches its changes; after a failed run (a lost
    // link) it is retried sooner, with back-off (RETRY_FIRST doubling up
    // to OTHER_SIDE_EVERY).
    let done = Arc::new(EventFd::new().map_err(|e| format!("cannot create an eventfd: {e}"))?);
    let ticker = (cfg.mode == Mode::TwoWay).then(|| {
        let (engine, stop, done) = (engine.clone(), stop.clone(), done.clone());
        let mut retry: Option<std::time::Duration> = None;
        std::thread::spawn(move || loop {
            let fds = [
                std::os::fd::AsFd::as_fd(stop.as_ref()),
                std::os::fd::AsFd::as_fd(done.as_ref()),
            ];
            let every = retry.unwrap_or(twoway_pair::OTHER_SIDE_EVERY);
            match crate::sys::notify::wait_readable(&fds, Some(every)) {
                Ok(r) if !r.contains(&true) => {
                    retry = match (engine.sync_all(), retry) {
                        (Ok(_), _) => None,
                        (Err(_), None) => Some(twoway_pair::RETRY_FIRST),
                        (Err(_), Some(d)) => Some((d * 2).min(twoway_pair::OTHER_SIDE_EVERY)),
                    };
                }
                _ => return,
            }
        })
    });
    let r = watch::run_with(
        &cfg.source,
        engine,
        reporter(t),
        Signals::stop_flag(stop),
        config,
    )
    .map_err(|e| crate::error::chain(&e));
    if let Some(h) = ticker {
        done.notify();
        let _ = h.join();
    }
    r
}

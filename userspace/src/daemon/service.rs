//! The daemon's main loop: starts the pairs, the control socket (and the
//! HTTP front end when the binary has one), speaks systemd's notify
//! protocol, reloads on SIGHUP (only the difference), and stops on
//! SIGTERM/SIGINT within [`STOP_WITHIN`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::api::{Action, ActionError, Control, PairState, PairStatus, Watches};
use super::config::{self, Config, ConfigError, LogLevel};
use super::control::{self, ControlError, Server};
use super::log::{Log, Logger};
use super::pair::Pair;
use super::sdnotify::{monotonic_usec, Notifier};
use super::state;
use super::track::{HookSet, Hooks};
use crate::sys::notify::{wait_readable, SignalFd};
use crate::watch::shared::{SharedInotify, DEFAULT_INBOX};

/// How long SIGTERM may take (systemd's default stop timeout is longer).
pub const STOP_WITHIN: Duration = Duration::from_millis(4500);

/// A front end the daemon starts and stops (the HTTP side).
pub trait FrontEnd: Send {
    /// Stops serving.
    fn stop(self: Box<Self>);
}

/// Starts the HTTP front end on an address, with the token if any.
pub type StartHttp =
    fn(SocketAddr, Option<String>, Arc<dyn Control>) -> std::io::Result<Box<dyn FrontEnd>>;

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config file is refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The control socket cannot be used.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A system call failed.
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
}

/// The pairs and what the front ends see.
pub struct Daemon {
    pairs: Mutex<Vec<Arc<Pair>>>,
    stopping: AtomicBool,
    log: Arc<Logger>,
    hooks: Hooks,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Daemon {
    fn find(&self, name: &str) -> Option<Arc<Pair>> {
        lock(&self.pairs)
            .iter()
            .find(|p| p.config().name == name)
            .cloned()
    }

    fn summary(&self) -> String {
        let ps = self.pairs();
        let count = |s: PairState| ps.iter().filter(|p| p.state == s).count();
        let mut parts = vec![format!("{} pairs", ps.len())];
        for s in [
            PairState::Starting,
            PairState::Syncing,
            PairState::Watching,
            PairState::Scheduled,
            PairState::Paused,
            PairState::Error,
        ] {
            let n = count(s);
            if n > 0 {
                parts.push(format!("{n} {}", s.as_str()));
            }
        }
        parts.join(", ")
    }
}

impl Control for Daemon {
    fn pairs(&self) -> Vec<PairStatus> {
        let ps: Vec<Arc<Pair>> = lock(&self.pairs).clone();
        ps.iter().map(|p| p.track().status()).collect()
    }

    fn act(&self, name: &str, action: Action) -> Result<u8, ActionError> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err(ActionError::Stopping);
        }
        let p = self
            .find(name)
            .ok_or_else(|| ActionError::NoSuchPair(name.to_string()))?;
        Ok(match action {
            Action::Pause => {
                p.pause();
                0
            }
            Action::Resume => {
                p.resume();
                0
            }
            Action::SyncNow => p.sync_now(),
        })
    }

    fn watches(&self) -> Watches {
        let used = lock(&self.pairs).iter().map(|p| p.watches()).sum();
        let max = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        Watches { used, max }
    }
}

/// The main loop's state.
struct Service {
    file: PathBuf,
    cfg: Config,
    daemon: Arc<Daemon>,
    notifier: Notifier,
    control: Option<Server>,
    http: Option<Box<dyn FrontEnd>>,
    start_http: Option<StartHttp>,
    state_dir: PathBuf,
    /// The one inotify instance of every watched pair (`None` when it
    /// could not be created: each pair then has its own).
    inotify: Option<Arc<SharedInotify>>,
    /// Why the last reload was refused (shown in `STATUS=`).
    refused: Option<String>,
}

impl Service {
    fn log(&self, level: LogLevel, msg: &str) {
        self.daemon.log.log(level, None, msg);
    }

    fn start_pair(
        &self,
        cfg: config::PairConfig,
        saved: &mut std::collections::HashMap<String, super::track::Counters>,
    ) -> Option<Arc<Pair>> {
        let saved = saved.remove(&cfg.name).unwrap_or_default();
        match Pair::start(
            cfg.clone(),
            saved,
            self.daemon.log.clone(),
            self.daemon.hooks.clone(),
            self.state_dir.clone(),
            self.inotify.clone(),
        ) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                self.log(
                    LogLevel::Error,
                    &format!("pair {}: cannot start: {e}", cfg.name),
                );
                None
            }
        }
    }

    fn start_http(&mut self) {
        let (Some(addr), Some(start)) = (self.cfg.http, self.start_http) else {
            if self.cfg.http.is_some() {
                self.log(LogLevel::Warn, "http: this build has no HTTP front end");
            }
            return;
        };
        let control: Arc<dyn Control> = self.daemon.clone();
        match start(addr, self.cfg.token.clone(), control) {
            Ok(h) => self.http = Some(h),
            Err(e) => self.log(LogLevel::Error, &format!("http {addr}: {e}")),
        }
    }

    fn status_line(&self) -> String {
        let s = self.daemon.summary();
        match &self.refused {
            Some(why) => format!("{s}; reload refused: {why}"),
            None => s,
        }
    }

    fn save_state(&self) {
        let ps: Vec<Arc<Pair>> = lock(&self.daemon.pairs).clone();
        let counters: Vec<_> = ps
            .iter()
            .map(|p| (p.config().name.clone(), p.track().counters()))
            .collect();
        if let Err(e) = state::save(&self.state_dir, &counters) {
            self.log(
                LogLevel::Warn,
                &format!("cannot save the state in {}: {e}", self.state_dir.display()),
            );
        }
    }

    /// SIGHUP: applies the difference between the running config and the
    /// file's.
    fn reload(&mut self) {
        self.notifier
            .send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        let new = match config::load(&self.file) {
            Ok(c) => c,
            Err(e) => {
                self.log(
                    LogLevel::Error,
                    &format!("reload refused, the old configuration keeps running: {e}"),
                );
                self.refused = Some(e.to_string());
                self.notifier
                    .send(&format!("READY=1\nSTATUS={}", self.status_line()));
                return;
            }
        };
        self.refused = None;
        self.daemon.log.set_level(new.log);
        *lock(&self.daemon.hooks) = HookSet {
            on_error: new.on_error.clone(),
            on_conflict: new.on_conflict.clone(),
        };
        let old: Vec<Arc<Pair>> = lock(&self.daemon.pairs).clone();
        // Pairs whose settings changed or that are gone stop first (a
        // changed one must not write beside its successor).
        let gone: Vec<&Arc<Pair>> = old
            .iter()
            .filter(|p| !new.pairs.iter().any(|n| n == p.config()))
            .collect();
        for p in &gone {
            p.stop();
        }
        let deadline = Instant::now() + STOP_WITHIN;
        for p in &gone {
            p.join(deadline);
        }
        self.save_state();
        let mut saved = state::load(&self.state_dir);
        let mut next = Vec::new();
        let (mut kept, mut started) = (0, 0);
        for n in &new.pairs {
            match old.iter().find(|p| p.config() == n) {
                Some(p) => {
                    kept += 1;
                    next.push(p.clone());
                }
                None => {
                    started += 1;
                    if let Some(p) = self.start_pair(n.clone(), &mut saved) {
                        next.push(p);
                    }
                }
            }
        }
        *lock(&self.daemon.pairs) = next;
        self.log(
            LogLevel::Info,
            &format!(
                "reloaded: {kept} pairs untouched, {started} started, {} stopped",
                gone.len()
            ),
        );
        let old_cfg = std::mem::replace(&mut self.cfg, new);
        if old_cfg.control != self.cfg.control {
            self.restart_control();
        }
        if (old_cfg.http, &old_cfg.token) != (self.cfg.http, &self.cfg.token) {
            if let Some(h) = self.http.take() {
                h.stop();
            }
            self.start_http();
        }
        self.notifier
            .send(&format!("READY=1\nSTATUS={}", self.status_line()));
    }

    fn restart_control(&mut self) {
        let path = self
            .cfg
            .control
            .clone()
            .unwrap_or_else(control::default_path);
        if let Some(s) = self.control.take() {
            s.stop();
        }
        match control::bind(&path) {
            Ok(l) => self.control = Some(Server::start(l, &path, self.daemon.clone())),
            Err(e) => self.log(LogLevel::Error, &format!("control socket: {e}")),
        }
    }

    fn run(&mut self, signals: &SignalFd) -> Result<(), DaemonError> {
        let watchdog = watchdog_interval();
        let mut ready = false;
        let mut last_status = String::new();
        let mut next_tick = Instant::now();
        let mut next_dog = Instant::now();
        let mut next_save = Instant::now() + Duration::from_secs(2);
        loop {
            let now = Instant::now();
            if !ready && lock(&self.daemon.pairs).iter().all(|p| p.started()) {
                ready = true;
                last_status = self.status_line();
                self.notifier
                    .send(&format!("READY=1\nSTATUS={last_status}"));
                self.log(LogLevel::Info, &format!("ready: {last_status}"));
            }
            if now >= next_tick {
                next_tick = now + Duration::from_secs(1);
                let s = self.status_line();
                if ready && s != last_status {
                    self.notifier.send(&format!("STATUS={s}"));
                    last_status = s;
                }
            }
            if let Some(iv) = watchdog {
                if now >= next_dog {
                    self.notifier.send("WATCHDOG=1");
                    next_dog = now + iv;
                }
            }
            if now >= next_save {
                self.save_state();
                next_save = now + Duration::from_secs(2);
            }
            let mut until = next_tick.min(next_save);
            if watchdog.is_some() {
                until = until.min(next_dog);
            }
            let mut timeout = until.saturating_duration_since(Instant::now());
            if !ready {
                timeout = timeout.min(Duration::from_millis(5));
            }
            let fd = std::os::fd::AsFd::as_fd(signals);
            let r = wait_readable(&[fd], Some(timeout))
                .map_err(|e| DaemonError::Io("waiting for signals", e))?;
            if !r[0] {
                continue;
            }
            match signals.read() {
                Some(libc::SIGHUP) => self.reload(),
                Some(_) => return Ok(()),
                None => {}
            }
        }
    }

    fn shutdown(mut self) {
        self.daemon.stopping.store(true, Ordering::Relaxed);
        self.notifier.send("STOPPING=1");
        self.log(LogLevel::Info, "stopping");
        let deadline = Instant::now() + STOP_WITHIN;
        let pairs: Vec<Arc<Pair>> = lock(&self.daemon.pairs).clone();
        for p in &pairs {
            p.stop();
        }
        let mut late = 0;
        for p in &pairs {
            if !p.join(deadline) {
                late += 1;
            }
        }
        if late > 0 {
            self.log(LogLevel::Warn, &format!("{late} pairs were still syncing at exit (new files are unnamed until complete: nothing partial is left under a final name)"));
        }
        if let Some(h) = self.http.take() {
            h.stop();
        }
        if let Some(s) = self.control.take() {
            s.stop();
        }
        self.save_state();
    }
}

/// Half of `$WATCHDOG_USEC` when the watchdog is on for this process.
fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    {
        if pid != std::process::id() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// The bound of each pair's inbox of inotify events: `$DIRSYNC_PAIR_EVENTS`
/// (a tuning and test knob), else [`DEFAULT_INBOX`].
fn inbox_limit() -> usize {
    std::env::var("DIRSYNC_PAIR_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_INBOX)
}

/// The pairs' shared inotify instance (see [`crate::watch::shared`]).
fn shared_inotify(svc: &Service) -> Option<Arc<SharedInotify>> {
    match SharedInotify::new(inbox_limit()) {
        Ok(s) => Some(s),
        Err(e) => {
            svc.log(
                LogLevel::Warn,
                &format!("cannot create the shared inotify instance ({e}); each pair gets its own"),
            );
            None
        }
    }
}

/// `dirsync daemon --config FILE`: runs until SIGTERM/SIGINT.
pub fn run(
    file: &Path,
    sink: Arc<dyn Log>,
    start_http: Option<StartHttp>,
) -> Result<(), DaemonError> {
    // Before any thread: the signals are blocked in every thread.
    let signals = SignalFd::for_signals(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])
        .map_err(|e| DaemonError::Io("creating a signalfd", e))?;
    let notifier = Notifier::from_env();
    let cfg = config::load(file)?;
    let log = Arc::new(Logger::new(sink, cfg.log));
    let state_dir = cfg.state.clone().unwrap_or_else(state::default_dir);
    let path = cfg.control.clone().unwrap_or_else(control::default_path);
    let listener = control::bind(&path)?;
    let daemon = Arc::new(Daemon {
        pairs: Mutex::new(Vec::new()),
        stopping: AtomicBool::new(false),
        log,
        hooks: Arc::new(Mutex::new(HookSet {
            on_error: cfg.on_error.clone(),
            on_conflict: cfg.on_conflict.clone(),
        })),
    });
    let mut svc = Service {
        file: file.to_path_buf(),
        cfg,
        daemon: daemon.clone(),
        notifier,
        control: None,
        http: None,
        start_http,
        state_dir,
        inotify: None,
        refused: None,
    };
    svc.inotify = shared_inotify(&svc);
    svc.control = Some(Server::start(listener, &path, daemon.clone()));
    let mut saved = state::load(&svc.state_dir);
    let pairs: Vec<Arc<Pair>> = svc
        .cfg
        .pairs
        .clone()
        .into_iter()
        .filter_map(|c| svc.start_pair(c, &mut saved))
        .collect();
    *lock(&daemon.pairs) = pairs;
    svc.start_http();
    let r = svc.run(&signals);
    svc.shutdown();
    r
}

//! A pair's counters and state ([`Track`]), its error ⇄ recovered
//! transitions (each runs `on_error` once), and [`Tracked`], the engine
//! wrapper that counts every operation of a watched pair.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::api::{Conflict, PairState, PairStatus};
use super::config::{LogLevel, PairConfig};
use super::log::Logger;
use crate::report::Summary;
use crate::watch::{Engine, LoopStats};
use crate::Result;

/// The hooks' argv, shared by every pair (a reload changes them in
/// place).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookSet {
    /// `on_error`.
    pub on_error: Vec<String>,
    /// `on_conflict`.
    pub on_conflict: Vec<String>,
}

/// [`HookSet`], shared.
pub type Hooks = Arc<Mutex<HookSet>>;

/// The most recent conflicts kept per pair.
pub const RECENT_CONFLICTS: usize = 20;

/// What is kept about a pair (and saved across restarts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// When the last run ended.
    pub last_sync: Option<SystemTime>,
    /// When the last successful run ended.
    pub last_success: Option<SystemTime>,
    /// Bytes copied.
    pub bytes: u64,
    /// Files copied.
    pub files: u64,
    /// Runs that failed.
    pub errors: u64,
    /// Conflicts met.
    pub conflicts: u64,
}

#[derive(Debug)]
struct Inner {
    state: PairState,
    paused: bool,
    /// The error being shown (the pair is in the error state).
    error: Option<String>,
    /// A partial failure of the last run (not the error state).
    partial: Option<String>,
    running: u32,
    c: Counters,
    recent: std::collections::VecDeque<Conflict>,
}

/// A pair's live state, shared by its runner, its engine and the front
/// ends.
pub struct Track {
    /// The pair's settings.
    pub cfg: PairConfig,
    inner: Mutex<Inner>,
    /// The watch loop's queue, lag and watches.
    pub stats: Arc<LoopStats>,
    log: Arc<Logger>,
    hooks: Hooks,
    /// The daemon's state directory (two-way archives).
    pub state_dir: PathBuf,
}

/// The exit code of a run's result: 0, 2 (partial) or 3 (failed).
pub fn code(r: &std::result::Result<Summary, String>) -> u8 {
    match r {
        Ok(s) if s.errors == 0 => 0,
        Ok(_) => 2,
        Err(_) => 3,
    }
}

impl Track {
    /// A pair starting, with the counters a previous run left.
    pub fn new(
        cfg: PairConfig,
        saved: Counters,
        log: Arc<Logger>,
        on_error: Hooks,
        state_dir: PathBuf,
    ) -> Self {
        Track {
            cfg,
            inner: Mutex::new(Inner {
                state: PairState::Starting,
                paused: false,
                error: None,
                partial: None,
                running: 0,
                c: saved,
                recent: Default::default(),
            }),
            stats: Arc::new(LoopStats::default()),
            log,
            hooks: on_error,
            state_dir,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The logger.
    pub fn logger(&self) -> Arc<Logger> {
        self.log.clone()
    }

    /// Logs about this pair.
    pub fn log(&self, level: LogLevel, msg: &str) {
        self.log.log(level, Some(&self.cfg.name), msg);
    }

    /// The state when nothing runs.
    fn idle_state(&self, i: &Inner) -> PairState {
        if i.paused {
            PairState::Paused
        } else if i.error.is_some() {
            PairState::Error
        } else if i.state == PairState::Starting && i.c.last_sync.is_none() {
            PairState::Starting
        } else if matches!(self.cfg.when, super::config::When::Watch) {
            PairState::Watching
        } else {
            PairState::Scheduled
        }
    }

    /// Sets paused (or not) and the state that follows.
    pub fn set_paused(&self, paused: bool) {
        let mut i = self.lock();
        i.paused = paused;
        i.state = if i.running > 0 && !paused {
            PairState::Syncing
        } else {
            self.idle_state(&i)
        };
    }

    /// A run (or a watch operation) starts.
    pub fn begin(&self) {
        let mut i = self.lock();
        i.running += 1;
        if !i.paused && i.error.is_none() {
            i.state = PairState::Syncing;
        }
    }

    /// A run (or a watch operation) ended with `r`.
    pub fn end(&self, r: &std::result::Result<Summary, String>) {
        let now = SystemTime::now();
        let recovered = {
            let mut i = self.lock();
            i.running = i.running.saturating_sub(1);
            i.c.last_sync = Some(now);
            match r {
                Ok(s) => {
                    i.c.files = i.c.files.saturating_add(s.copied);
                    i.c.conflicts = i.c.conflicts.saturating_add(s.conflicts);
                    i.c.bytes = i.c.bytes.saturating_add(s.bytes);
                    if s.errors == 0 {
                        i.c.last_success = Some(now);
                        i.partial = None;
                    } else {
                        i.c.errors = i.c.errors.saturating_add(1);
                        i.partial = Some(format!("{} entries could not be synced", s.errors));
                    }
                }
                Err(_) => i.c.errors = i.c.errors.saturating_add(1),
            }
            let recovered = r.is_ok() && i.error.take().is_some();
            i.state = if i.running > 0 && !i.paused && r.is_ok() {
                PairState::Syncing
            } else {
                self.idle_state(&i)
            };
            recovered
        };
        if let Ok(s) = r {
            if s.conflicts > 0 {
                let msg = format!(
                    "{} conflicts (the other versions kept as conflict copies)",
                    s.conflicts
                );
                self.log(LogLevel::Warn, &msg);
                let argv = self
                    .hooks
                    .lock()
                    .map(|h| h.on_conflict.clone())
                    .unwrap_or_default();
                super::hooks::run(&argv, &self.cfg.name, "conflict", &msg, &self.log);
            }
        }
        match r {
            Err(e) => self.fail(e),
            Ok(_) if recovered => self.recovered(),
            Ok(_) => {}
        }
    }

    /// The pair enters (or stays in) the error state: `on_error` and an
    /// error message only on entering it.
    pub fn fail(&self, why: &str) {
        let entering = {
            let mut i = self.lock();
            let entering = i.error.is_none();
            i.error = Some(why.to_string());
            i.state = self.idle_state(&i);
            entering
        };
        if entering {
            self.log(LogLevel::Error, why);
            let argv = self
                .hooks
                .lock()
                .map(|h| h.on_error.clone())
                .unwrap_or_default();
            super::hooks::run(&argv, &self.cfg.name, "error", why, &self.log);
        } else {
            self.log(LogLevel::Debug, &format!("still failing: {why}"));
        }
    }

    /// Leaves the error state (if in it): `on_error` with `recovered`.
    pub fn ok(&self) {
        let left = {
            let mut i = self.lock();
            let left = i.error.take().is_some();
            i.state = self.idle_state(&i);
            left
        };
        if left {
            self.recovered();
        }
    }

    fn recovered(&self) {
        self.log(LogLevel::Info, "recovered");
        let argv = self
            .hooks
            .lock()
            .map(|h| h.on_error.clone())
            .unwrap_or_default();
        super::hooks::run(
            &argv,
            &self.cfg.name,
            "recovered",
            "the pair syncs again",
            &self.log,
        );
    }

    /// Whether it is in the error state.
    pub fn in_error(&self) -> bool {
        self.lock().error.is_some()
    }

    /// Its counters (to save them).
    pub fn counters(&self) -> Counters {
        self.lock().c.clone()
    }

    /// Its snapshot for the front ends.
    pub fn status(&self) -> PairStatus {
        let i = self.lock();
        let watched = matches!(self.cfg.when, super::config::When::Watch);
        let mut schedule = match &self.cfg.when {
            super::config::When::Watch => "watch".to_string(),
            super::config::When::Schedule(s) => s.describe(),
        };
        let bw = self.cfg.bwlimit.describe();
        if !bw.is_empty() {
            schedule = format!("{schedule}, {bw}");
        }
        PairStatus {
            name: self.cfg.name.clone(),
            mode: self.cfg.mode,
            state: i.state,
            error: i.error.clone().or_else(|| i.partial.clone()),
            last_sync: i.c.last_sync,
            last_success: i.c.last_success,
            lag_ms: if watched { self.stats.lag_ms() } else { 0 },
            queue: if watched {
                self.stats.queue()
            } else {
                u64::from(i.running)
            },
            conflicts: i.c.conflicts,
            recent_conflicts: i.recent.iter().cloned().collect(),
            bytes: i.c.bytes,
            files: i.c.files,
            errors: i.c.errors,
            schedule,
        }
    }
}

/// A watched pair's engine, counted: every operation goes through
/// [`Track::begin`] / [`Track::end`].
pub struct Tracked {
    /// The real engine.
    pub inner: Arc<dyn Engine>,
    /// The pair.
    pub track: Arc<Track>,
}

impl Tracked {
    fn run(&self, f: impl FnOnce(&dyn Engine) -> Result<Summary>) -> Result<Summary> {
        self.track.begin();
        let r = f(self.inner.as_ref());
        let shown = r
            .as_ref()
            .map(Clone::clone)
            .map_err(|e| crate::error::chain(e));
        self.track.end(&shown);
        r
    }
}

impl Engine for Tracked {
    fn sync_all(&self) -> Result<Summary> {
        self.run(|e| e.sync_all())
    }
    fn sync_path(&self, rel: &Path) -> Result<Summary> {
        self.run(|e| e.sync_path(rel))
    }
    fn sync_attrs(&self, rel: &Path) -> Result<Summary> {
        self.run(|e| e.sync_attrs(rel))
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<Summary> {
        self.run(|e| e.rename(from, to))
    }
    fn take_unsettled(&self) -> Vec<PathBuf> {
        self.inner.take_unsettled()
    }
}

impl super::log::ConflictSink for Track {
    fn conflict(&self, path: &Path, copy: Option<&Path>) {
        use std::os::unix::ffi::OsStrExt;
        let rel = path
            .strip_prefix(&self.cfg.source)
            .unwrap_or(path)
            .to_path_buf();
        let side = |root: &Path| {
            std::fs::symlink_metadata(root.join(&rel))
                .map_or((0, None), |m| (m.len(), m.modified().ok()))
        };
        let c = Conflict {
            path: rel.as_os_str().as_bytes().to_vec(),
            copy: copy.map_or_else(Vec::new, |c| c.as_os_str().as_bytes().to_vec()),
            sides: [
                side(&self.cfg.source),
                side(Path::new(&self.cfg.destination)),
            ],
            at: SystemTime::now(),
        };
        let mut i = self.lock();
        if i.recent.len() >= RECENT_CONFLICTS {
            i.recent.pop_front();
        }
        i.recent.push_back(c);
    }
}

impl crate::remote::watch::LinkObserver for Track {
    fn down(&self, why: &str) {
        self.fail(&format!("connection lost: {why}"));
    }
    fn up(&self) {
        self.ok();
    }
}

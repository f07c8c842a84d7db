//! What a running daemon shows about its pairs and the actions it
//! accepts: the one interface behind `dirsync status`, the control
//! socket, `GET /api/pairs`, `/metrics` and the status page.

use std::time::SystemTime;

/// Where a pair is in its life (`state` in `dirsync status --json` and
/// `GET /api/pairs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PairState {
    /// Its first scan has not finished.
    Starting,
    /// A sync is running.
    Syncing,
    /// Watched: idle, waiting for changes.
    Watching,
    /// Not watched: idle until its next scheduled run.
    Scheduled,
    /// Paused by `dirsync pause` (or the page): nothing runs.
    Paused,
    /// Its last run failed; retried with back-off.
    Error,
}

impl PairState {
    /// The name used in JSON and in the page.
    pub fn as_str(self) -> &'static str {
        match self {
            PairState::Starting => "starting",
            PairState::Syncing => "syncing",
            PairState::Watching => "watching",
            PairState::Scheduled => "scheduled",
            PairState::Paused => "paused",
            PairState::Error => "error",
        }
    }
}

/// The sync mode of a pair (`mode` in the config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// DST becomes a replica of SRC.
    #[default]
    Mirror,
    /// Both sides are edited; changes go both ways.
    TwoWay,
}

impl Mode {
    /// The name used in the config and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Mirror => "mirror",
            Mode::TwoWay => "two-way",
        }
    }
}

/// One conflict a pair met (two-way pairs), with both versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The path below the pair's roots (bytes, may be non-UTF-8).
    pub path: Vec<u8>,
    /// The name the losing version was kept under.
    pub copy: Vec<u8>,
    /// Size and mtime of the version on each side (source, destination).
    pub sides: [(u64, Option<SystemTime>); 2],
    /// When it was met.
    pub at: SystemTime,
}

/// A snapshot of one pair (the fields of `dirsync status --json`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairStatus {
    /// The pair's `name` (unique in the config).
    pub name: String,
    /// Its mode.
    pub mode: Mode,
    /// Its state.
    pub state: PairState,
    /// The last error, while in [`PairState::Error`] (or the last run's
    /// partial-failure summary).
    pub error: Option<String>,
    /// When its last run ended, successful or not.
    pub last_sync: Option<SystemTime>,
    /// When its last successful run ended.
    pub last_success: Option<SystemTime>,
    /// How long the oldest change not yet replicated has waited, in
    /// milliseconds (0 when caught up).
    pub lag_ms: u64,
    /// Changes waiting to be replicated.
    pub queue: u64,
    /// Conflicts met so far (two-way pairs).
    pub conflicts: u64,
    /// The latest conflicts, newest last (bounded).
    pub recent_conflicts: Vec<Conflict>,
    /// Bytes copied so far.
    pub bytes: u64,
    /// Files copied so far.
    pub files: u64,
    /// Runs that failed so far.
    pub errors: u64,
    /// A human description of when it runs: "watch", "every 15m",
    /// "daily 02:30", with the bandwidth limit in force if any.
    pub schedule: String,
}

/// What a client asks of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Stop running it (an in-flight file is finished or rolled back).
    Pause,
    /// Run it again; its source is rescanned.
    Resume,
    /// Sync it now; the answer comes when that sync ends.
    SyncNow,
}

/// Why an action was not done.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No pair has that name.
    #[error("no pair named '{0}'")]
    NoSuchPair(String),
    /// The daemon is stopping.
    #[error("the daemon is stopping")]
    Stopping,
}

/// The inotify watches the daemon uses and the system's limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watches {
    /// Watches in use by this daemon.
    pub used: u64,
    /// `/proc/sys/fs/inotify/max_user_watches`.
    pub max: u64,
}

/// The running daemon, as seen by its front ends (control socket, HTTP).
pub trait Control: Send + Sync {
    /// Every pair, in config order.
    fn pairs(&self) -> Vec<PairStatus>;
    /// Does `action` to the pair `name`. For [`Action::SyncNow`] it
    /// returns when that sync ends, with its exit code (0, 2 or 3).
    fn act(&self, name: &str, action: Action) -> Result<u8, ActionError>;
    /// The inotify watches in use.
    fn watches(&self) -> Watches;
}

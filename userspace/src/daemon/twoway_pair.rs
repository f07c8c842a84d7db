//! Two-way pairs: each run is one [`crate::twoway::run`] over the pair's
//! two roots (its archive in the daemon's state directory; a remote
//! destination, `host:PATH`, is reached through a fresh agent session per
//! run, [`crate::remote::twoway_side`]), and a watched
//! two-way pair is the watch loop on its source with an engine whose every
//! operation is such a run (serialized), plus a run every
//! [`OTHER_SIDE_EVERY`] for what changed on the destination's side (it is
//! not watched yet).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::config::PairConfig;
use super::track::Track;
use crate::remote::client::Connect;
use crate::report::{Reporter, Summary};
use crate::sync::Options;
use crate::twoway::{Policy, TwoWaySpec};
use crate::watch::Engine;
use crate::Result;

/// How often a watched two-way pair runs for its destination's changes.
pub const OTHER_SIDE_EVERY: Duration = Duration::from_secs(10);

/// The first wait of a watched two-way pair's periodic run after a failed
/// run (a lost link): it doubles up to [`OTHER_SIDE_EVERY`].
pub const RETRY_FIRST: Duration = Duration::from_secs(1);

/// The archive of a two-way pair.
fn archive(t: &Track) -> PathBuf {
    t.state_dir.join(format!("twoway-{}.sqlite", t.cfg.name))
}

/// How a pair's remote side is reached, with the rate in force at the
/// time of the call (`engines::connect`).
pub type ConnectFn = fn(&PairConfig) -> Connect;

/// One two-way run of the pair (`connect`: how to reach a remote
/// destination).
pub fn run_once(
    t: &Track,
    opts: &Options,
    rep: &dyn Reporter,
    connect: ConnectFn,
) -> std::result::Result<Summary, String> {
    let spec = TwoWaySpec {
        a: t.cfg.source.clone(),
        b: PathBuf::from(&t.cfg.destination),
        state: Some(archive(t)),
        policy: Policy::KeepBoth,
        delete_loser: false,
        max_delete: 50,
        force: false,
    };
    let chain = |e: &dyn std::error::Error| crate::error::chain(e);
    let Some(remote) = crate::remote::spec::parse(std::ffi::OsStr::new(&t.cfg.destination)) else {
        return crate::twoway::run(&spec, opts, rep).map_err(|e| chain(&e));
    };
    // The local side first: a missing source changes nothing anywhere.
    let la = crate::twoway::open_local(&spec.a, "root A", "a", opts).map_err(|e| chain(&e))?;
    let rb = crate::remote::twoway_side::connect(&remote, &connect(&t.cfg), opts)
        .map_err(|e| chain(&e))?;
    let out = crate::twoway::run_with(&spec, opts, rep, &la, &rb).map_err(|e| chain(&e));
    // A session the agent broke (or the link lost) is a failed run even
    // when the engine got to its end: what completed is recorded, the
    // rest is retried.
    match rb.broken() {
        Some(why) => Err(format!("{}: {why}", remote.host)),
        None => out,
    }
}

/// The watch loop's engine of a two-way pair: every operation is a full
/// two-way run, one at a time.
pub struct TwoWayEngine {
    /// The pair.
    pub track: Arc<Track>,
    /// Its options (excludes).
    pub opts: Options,
    /// Where its events go.
    pub rep: Arc<dyn Reporter>,
    /// Held during a run.
    pub one: Mutex<()>,
    /// How to reach a remote destination.
    pub connect: ConnectFn,
}

impl TwoWayEngine {
    fn run(&self) -> Result<Summary> {
        let _one = self.one.lock().unwrap_or_else(|e| e.into_inner());
        run_once(&self.track, &self.opts, self.rep.as_ref(), self.connect)
            .map_err(|m| crate::Error::new("two-way run", std::io::Error::other(m)))
    }
}

impl Engine for TwoWayEngine {
    fn sync_all(&self) -> Result<Summary> {
        self.run()
    }
    fn sync_path(&self, _: &Path) -> Result<Summary> {
        self.run()
    }
    fn sync_attrs(&self, _: &Path) -> Result<Summary> {
        self.run()
    }
    fn rename(&self, _: &Path, _: &Path) -> Result<Summary> {
        self.run()
    }
}

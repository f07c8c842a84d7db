//! Two-way pairs: each run is one [`crate::twoway::run`] over the pair's
//! two roots (its archive in the daemon's state directory), and a watched
//! two-way pair is the watch loop on its source with an engine whose every
//! operation is such a run (serialized), plus a run every
//! [`OTHER_SIDE_EVERY`] for what changed on the destination's side (it is
//! not watched yet).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::track::Track;
use crate::report::{Reporter, Summary};
use crate::sync::Options;
use crate::twoway::{Policy, TwoWaySpec};
use crate::watch::Engine;
use crate::Result;

/// How often a watched two-way pair runs for its destination's changes.
pub const OTHER_SIDE_EVERY: Duration = Duration::from_secs(10);

/// The archive of a two-way pair.
fn archive(t: &Track) -> PathBuf {
    t.state_dir.join(format!("twoway-{}.sqlite", t.cfg.name))
}

/// One two-way run of the pair.
pub fn run_once(
    t: &Track,
    opts: &Options,
    rep: &dyn Reporter,
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
    crate::twoway::run(&spec, opts, rep).map_err(|e| crate::error::chain(&e))
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
}

impl TwoWayEngine {
    fn run(&self) -> Result<Summary> {
        let _one = self.one.lock().unwrap_or_else(|e| e.into_inner());
        run_once(&self.track, &self.opts, self.rep.as_ref())
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

//! What the watcher's copy workers call: [`Engine`], implemented by the
//! [`Syncer`] (and by test doubles).

use std::path::{Path, PathBuf};

use crate::sync::{Summary, Syncer};
use crate::Result;

/// What the copy workers call; implemented by [`Syncer`] (and by test
/// doubles).
pub trait Engine: Send + Sync + 'static {
    /// Makes the whole of DST equal to SRC.
    fn sync_all(&self) -> Result<Summary>;
    /// Makes `DST/rel` equal to `SRC/rel`.
    fn sync_path(&self, rel: &Path) -> Result<Summary>;
    /// Re-applies mode and mtime.
    fn sync_attrs(&self, rel: &Path) -> Result<Summary>;
    /// Renames inside DST, then converges `to`.
    fn rename(&self, from: &Path, to: &Path) -> Result<Summary>;
    /// Paths (relative to SRC) of files left uncopied since the last
    /// call because they kept changing during their copy: the watcher
    /// tries them again when they settle.
    fn take_unsettled(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

impl Engine for Syncer {
    fn sync_all(&self) -> Result<Summary> {
        Syncer::sync_all(self)
    }
    fn sync_path(&self, rel: &Path) -> Result<Summary> {
        Syncer::sync_path(self, rel)
    }
    fn sync_attrs(&self, rel: &Path) -> Result<Summary> {
        Syncer::sync_attrs(self, rel)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<Summary> {
        Syncer::rename(self, from, to)
    }
    fn take_unsettled(&self) -> Vec<PathBuf> {
        Syncer::take_unsettled(self)
    }
}

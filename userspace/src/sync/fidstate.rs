//! What the fidelity options (`-H -o -g -X -A`) keep over the life of a
//! syncer ([`State`]); used by `fidelity` and `hardlink`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::attrs::owner::IdMap;
use crate::stat::Meta;

/// What the fidelity options keep over the life of a syncer.
pub struct State {
    /// SRC ids to DST ids.
    pub ids: IdMap,
    /// `-H`: the first name of each SRC inode with several names.
    pub links: LinkMap,
    /// The kinds of failure already warned about.
    pub warned: Mutex<Vec<&'static str>>,
}

impl State {
    /// With `--numeric-ids` when `numeric`.
    pub fn new(numeric: bool) -> State {
        State {
            ids: IdMap::new(numeric),
            links: LinkMap::default(),
            warned: Mutex::new(Vec::new()),
        }
    }
}

/// (inode, device) of a SRC file.
type Key = (u64, (u32, u32));

/// The first name of each SRC inode with several names.
#[derive(Default)]
pub struct LinkMap(Mutex<HashMap<Key, PathBuf>>);

impl LinkMap {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, PathBuf>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// The first name of `s`'s inode other than `rel`: `Ok(None)` when
    /// `rel` is (or, `strong`, becomes) the first, `Err(())` when nobody
    /// is yet and `rel` is not `strong`.
    pub fn claim(&self, s: &Meta, rel: &Path, strong: bool) -> Result<Option<PathBuf>, ()> {
        let mut m = self.lock();
        match m.get(&(s.ino, s.dev)) {
            Some(first) if first != rel => Ok(Some(first.clone())),
            Some(_) => Ok(None),
            None if strong => {
                m.insert((s.ino, s.dev), rel.to_path_buf());
                Ok(None)
            }
            None => Err(()),
        }
    }
    /// The first name of `s`'s inode, if any.
    pub fn first(&self, s: &Meta) -> Option<PathBuf> {
        self.lock().get(&(s.ino, s.dev)).cloned()
    }
    /// Makes `rel` the first name of `s`'s inode.
    pub fn set(&self, s: &Meta, rel: &Path) {
        self.lock().insert((s.ino, s.dev), rel.to_path_buf());
    }
    /// Forgets everything (a new full sync).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

//! The sync engine: makes DST an exact replica of SRC.
//!
//! CONTRACT used by `watch` (keep these signatures stable):
//! * `Syncer::new(src, dst, options, reporter)` validates SRC/DST (SRC must be
//!   a directory, not equal to nor nested with DST) and opens both roots.
//! * `sync_all()` makes the whole of DST equal to SRC.
//! * `sync_path(rel)` makes `DST/rel` equal to `SRC/rel` whatever it is now:
//!   copies a file, recreates a symlink, syncs a directory recursively, fixes
//!   mode/mtime, and removes `DST/rel` (file or tree) when `SRC/rel` is gone.
//!   Missing parent directories in DST are created. `rel` may be longer
//!   than PATH_MAX: every step is dirfd-relative.
//! * `sync_attrs(rel)` only re-applies mode and mtime (for IN_ATTRIB); it
//!   falls back to `sync_path` when the entry is not there or changed type.
//! * `rename(from, to)` renames `DST/from` to `DST/to` with `renameat`
//!   (no copy) and then `sync_path(to)` to converge; falls back to
//!   `sync_path(from)` + `sync_path(to)` if `DST/from` is missing.
//! * All of them return a [`Summary`] of what they did; per-entry failures are
//!   reported through the reporter and counted in `Summary::errors`, an `Err`
//!   is only returned for failures that stop the whole operation.

use std::path::Path;
use std::sync::Arc;

use crate::report::Reporter;
use crate::stat::BackendChoice;
use crate::Result;

/// What a run does and how it decides that two entries differ.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Print what would be done, change nothing.
    pub dry_run: bool,
    /// Keep DST entries that SRC lacks.
    pub no_delete: bool,
    /// Compare regular files by size only.
    pub size_only: bool,
    /// Only the top level of SRC (the report's phase 1).
    pub no_recursive: bool,
    /// Compare regular files by content hash.
    pub checksum: bool,
    /// gitignore-style patterns, matched against names relative to SRC.
    pub excludes: Vec<std::ffi::OsString>,
    /// fsync each copied file before renaming it into place.
    pub fsync: bool,
    /// Which metadata backend to use.
    pub stat_backend: BackendChoice,
}

/// Counts of what an operation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Regular files copied (new or changed).
    pub copied: u64,
    /// Bytes of file content copied.
    pub bytes: u64,
    /// Directories created.
    pub dirs_created: u64,
    /// Symlinks created or replaced.
    pub links: u64,
    /// Entries removed from DST (a removed tree counts once per entry).
    pub deleted: u64,
    /// Entries whose mode/mtime alone were fixed.
    pub attrs: u64,
    /// Entries renamed inside DST.
    pub renamed: u64,
    /// Special files skipped.
    pub skipped: u64,
    /// Entries that failed (reported, the rest went on).
    pub errors: u64,
}

/// A validated SRC/DST pair and the options to sync it with.
pub struct Syncer {
    _private: (),
}

impl Syncer {
    /// Validates `src` and `dst` and opens their roots (DST is created if
    /// missing, unless `dry_run`).
    pub fn new(
        _src: &Path,
        _dst: &Path,
        _options: Options,
        _reporter: Arc<dyn Reporter>,
    ) -> Result<Self> {
        todo!("sync engine")
    }

    /// Makes the whole of DST equal to SRC.
    pub fn sync_all(&self) -> Result<Summary> {
        todo!("sync engine")
    }

    /// Makes `DST/rel` equal to `SRC/rel` (see the module docs).
    pub fn sync_path(&self, _rel: &Path) -> Result<Summary> {
        todo!("sync engine")
    }

    /// Re-applies mode and mtime of `SRC/rel` to `DST/rel`.
    pub fn sync_attrs(&self, _rel: &Path) -> Result<Summary> {
        todo!("sync engine")
    }

    /// Renames `DST/from` to `DST/to` inside DST, then converges `to`.
    pub fn rename(&self, _from: &Path, _to: &Path) -> Result<Summary> {
        todo!("sync engine")
    }
}

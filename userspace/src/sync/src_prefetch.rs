//! SRC listed ahead, while something else keeps the run waiting (the ssh
//! session of a push connecting: [`crate::remote::client::push`]): the
//! same listings the walk makes ([`crate::stat::StatBackend::list`] of
//! every directory, depth first), kept by path relative to SRC until the
//! walk gets to that directory and takes its listing instead of making
//! it again.
//!
//! A listing is used only if its directory is still the one listed: same
//! device, inode and mtime (an entry created, removed or renamed in it
//! changes its mtime) by an `fstat` of the directory the walk opened;
//! otherwise the walk lists it itself. A file changed in place in the
//! moment between the prefetch and the walk is seen as it was listed, as
//! if it had changed just after the walk listed it (the walk is never a
//! snapshot). What the first walk did not take is dropped when it ends
//! ([`SrcPrefetch::clear`]): a later run lists everything again.
//!
//! Bounded: at most [`MAX_ENTRIES`] entries and [`MAX_BYTES`] bytes
//! (entries and their names) are kept, [`MAX_DEPTH`] levels deep (one
//! open directory per level); beyond that the walk lists what is left.
//! Only SRC is read (directories opened `O_NOFOLLOW` below the SRC root,
//! excluded ones skipped), before any byte from the peer.

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::options::Options;
use crate::exclude::Excludes;
use crate::stat::{Entry, Kind, StatBackend};
use crate::sys;

/// Most entries kept.
pub const MAX_ENTRIES: usize = 1 << 18;
/// Most bytes kept (an entry's size and its name's), 64 MiB.
pub const MAX_BYTES: usize = 64 << 20;
/// Deepest level listed (the SRC root is level 0).
pub const MAX_DEPTH: usize = 64;

/// One directory's listing and what it was when listed.
struct Listed {
    dev: (u32, u32),
    ino: u64,
    mtime: (i64, u32),
    entries: Vec<Entry>,
}

/// The listings made ahead, by path relative to SRC.
#[derive(Default)]
pub struct SrcPrefetch {
    dirs: Mutex<HashMap<PathBuf, Listed>>,
    /// Entries and bytes listed (what the bounds count).
    listed: (usize, usize),
}

/// The walk in progress: its budget and when to stop.
struct Scan<'a> {
    backend: &'a dyn StatBackend,
    excludes: &'a Excludes,
    stop: &'a dyn Fn() -> bool,
    out: HashMap<PathBuf, Listed>,
    entries: usize,
    bytes: usize,
    full: bool,
}

impl SrcPrefetch {
    /// Lists `src` and below as the walk of `options` would, until
    /// `stop` says so (asked before each directory), a bound is reached
    /// or everything is listed. Nothing on errors: the walk meets them
    /// and reports them.
    pub fn scan(src: &Path, options: &Options, stop: &dyn Fn() -> bool) -> SrcPrefetch {
        let Ok(excludes) = Excludes::new(&options.excludes) else {
            return SrcPrefetch::default();
        };
        let Ok(backend) = options.backend() else {
            return SrcPrefetch::default();
        };
        let Ok(root) = super::roots::open_src(src) else {
            return SrcPrefetch::default();
        };
        let mut s = Scan {
            backend: backend.as_ref(),
            excludes: &excludes,
            stop,
            out: HashMap::new(),
            entries: 0,
            bytes: 0,
            full: false,
        };
        s.dir(root.as_fd(), PathBuf::new(), 0);
        SrcPrefetch {
            listed: (s.entries, s.bytes),
            dirs: Mutex::new(s.out),
        }
    }

    /// Entries and bytes listed ahead (within [`MAX_ENTRIES`] and
    /// [`MAX_BYTES`]).
    pub fn listed(&self) -> (usize, usize) {
        self.listed
    }

    /// The listing of `rel` made ahead, if `dir` (the walk's open
    /// directory there) is still the directory listed; taken once.
    pub fn take(
        &self,
        rel: &Path,
        dir: BorrowedFd<'_>,
        backend: &dyn StatBackend,
    ) -> Option<Vec<Entry>> {
        let l = self.lock().remove(rel)?;
        let m = backend.stat_fd(dir).ok()?;
        let same = m.kind == Kind::Dir
            && m.dev == l.dev
            && m.ino == l.ino
            && (m.mtime, m.mtime_nsec) == l.mtime;
        same.then_some(l.entries)
    }

    /// Drops what was not taken.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Listed>> {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Scan<'_> {
    /// Lists `dir` (at `rel`, `depth` levels down), then its
    /// subdirectories.
    fn dir(&mut self, dir: BorrowedFd<'_>, rel: PathBuf, depth: usize) {
        if self.full || (self.stop)() {
            self.full = true;
            return;
        }
        let Ok(m) = self.backend.stat_fd(dir) else {
            return;
        };
        let Ok(entries) = self.backend.list(dir) else {
            return;
        };
        let bytes: usize = entries
            .iter()
            .map(|e| std::mem::size_of::<Entry>() + e.name.as_bytes().len() + 1)
            .sum();
        if self.entries + entries.len() > MAX_ENTRIES || self.bytes + bytes > MAX_BYTES {
            self.full = true;
            return;
        }
        self.entries += entries.len();
        self.bytes += bytes;
        let subdirs: Vec<_> = match depth < MAX_DEPTH {
            true => entries
                .iter()
                .filter(|e| is_dir(e))
                .map(|e| e.name.clone())
                .collect(),
            false => Vec::new(),
        };
        let listed = Listed {
            dev: m.dev,
            ino: m.ino,
            mtime: (m.mtime, m.mtime_nsec),
            entries,
        };
        self.out.insert(rel.clone(), listed);
        for name in subdirs {
            self.subdir(dir, &rel, &name, depth + 1);
            if self.full {
                return;
            }
        }
    }

    fn subdir(&mut self, parent: BorrowedFd<'_>, rel: &Path, name: &CStr, depth: usize) {
        let child = rel.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        if !self.excludes.is_empty() {
            let bytes = child.as_os_str().as_bytes();
            if self.excludes.is_excluded(bytes, name.to_bytes(), true) {
                return;
            }
        }
        if let Ok(fd) = sys::open_dir_at(parent, name) {
            self.dir(fd.as_fd(), child, depth);
        }
    }
}

/// Whether the walk descends into `e`.
fn is_dir(e: &Entry) -> bool {
    matches!(&e.meta, Ok(Some(m)) if m.kind == Kind::Dir)
}

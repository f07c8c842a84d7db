//! The state of a run: what all operations share ([`Shared`]), one
//! operation ([`Run`]: counters, abort flag), and a directory being synced
//! ([`DirNode`]: its SRC descriptor, its DST handle, and the attributes to
//! apply once every child is done).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::options::Options;
use super::replica::{Attrs, ReplicaDir};
use crate::error::is_out_of_space;
use crate::exclude::Excludes;
use crate::report::{inc, Counters, Event, Progress, Reporter, Summary};
use crate::stat::{Meta, StatBackend};
use crate::{Error, Result};

/// What every operation of a syncer shares.
pub struct Shared {
    pub src_root: PathBuf,
    pub dst_root: PathBuf,
    pub opts: Options,
    pub excludes: Excludes,
    pub backend: Arc<dyn StatBackend>,
    pub reporter: Arc<dyn Reporter>,
    /// Running as root: read-only DST directories need no chmod to write.
    pub is_root: bool,
    pub progress: Progress,
    /// Files left uncopied because they kept changing (`defer_changing`),
    /// relative to the roots.
    pub unsettled: Mutex<Vec<PathBuf>>,
    /// What `-H -o -g -X -A` keep.
    pub fid: super::fidstate::State,
    /// Applies owner, group and attributes to a finished directory
    /// (`fidelity::dir_attrs`); whether something changed.
    pub dir_attrs: DirAttrs,
    /// SRC's listings made ahead (taken by the first `sync_all`).
    pub src_prefetch: std::sync::OnceLock<super::src_prefetch::SrcPrefetch>,
}

/// See [`Shared::dir_attrs`].
pub type DirAttrs = fn(&DirNode, &dyn ReplicaDir) -> bool;

impl Shared {
    /// Whether `rel` (a directory when `is_dir`) matches `--exclude`.
    pub fn excluded(&self, rel: &Path, is_dir: bool) -> bool {
        use std::os::unix::ffi::OsStrExt;
        if self.excludes.is_empty() {
            return false;
        }
        let bytes = rel.as_os_str().as_bytes();
        let name = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
        self.excludes.is_excluded(bytes, name, is_dir)
    }
}

/// One operation (`sync_all`, `sync_path`, ...): its counters and abort
/// flag.
pub struct Run {
    pub sh: Arc<Shared>,
    pub counters: Counters,
    fatal: Mutex<Option<Error>>,
    aborted: AtomicBool,
    /// `-H`: later names of linked files, linked once the walk is done
    /// (name, first name), relative to the roots.
    pub links: super::fidstate::Pending,
}

fn rooted(root: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

impl Run {
    pub fn new(sh: Arc<Shared>) -> Arc<Run> {
        Arc::new(Run {
            sh,
            counters: Counters::default(),
            fatal: Mutex::new(None),
            aborted: AtomicBool::new(false),
            links: Default::default(),
        })
    }
    pub fn src_path(&self, rel: &Path) -> PathBuf {
        rooted(&self.sh.src_root, rel)
    }
    pub fn dst_path(&self, rel: &Path) -> PathBuf {
        rooted(&self.sh.dst_root, rel)
    }
    pub fn event(&self, e: Event<'_>) {
        self.sh.reporter.event(&e);
    }
    /// Reports a failed entry (counted), or stops the run when it is fatal.
    pub fn fail(&self, what: &'static str, path: PathBuf, e: io::Error) {
        if is_out_of_space(&e) {
            let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
            if f.is_none() {
                *f = Some(Error::at(what, &path, e));
            }
            self.aborted.store(true, Ordering::SeqCst);
            return;
        }
        inc(&self.counters.errors, 1);
        let msg = format!("{what}: {e}");
        self.event(Event::Error {
            path: &path,
            message: &msg,
        });
    }
    pub fn aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }
    /// The summary, or the error that stopped the operation.
    pub fn end(&self) -> Result<Summary> {
        let f = self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take();
        match f {
            Some(e) => Err(e),
            None => Ok(self.counters.summary()),
        }
    }
}

/// A directory being synced: its two sides and what to apply to the DST
/// side once all children are done (on drop).
pub struct DirNode {
    pub op: Arc<Run>,
    pub src: OwnedFd,
    /// `None` only in a dry run when the DST directory does not exist.
    pub dst: Option<Box<dyn ReplicaDir>>,
    pub rel: PathBuf,
    pub src_meta: Meta,
    /// The DST directory's metadata before we touched it (`None`: created).
    pub dst_meta: Option<Meta>,
    /// Set when an entry inside DST was created, replaced or removed.
    dirty: AtomicBool,
    /// Set when we had to make the DST directory writable (non-root).
    made_writable: AtomicBool,
    /// Skip finishing (the directory could not be listed).
    failed: AtomicBool,
    parent: Option<Arc<DirNode>>,
    /// `finish` ran.
    finished: bool,
}

impl DirNode {
    /// The node of a directory pair; `parent` is finished after it.
    pub fn new(
        op: &Arc<Run>,
        src: OwnedFd,
        dst: Option<Box<dyn ReplicaDir>>,
        rel: PathBuf,
        metas: (Meta, Option<Meta>),
        parent: Option<Arc<DirNode>>,
    ) -> DirNode {
        DirNode {
            op: op.clone(),
            src,
            dst,
            rel,
            src_meta: metas.0,
            dst_meta: metas.1,
            dirty: AtomicBool::new(false),
            made_writable: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            parent,
            finished: false,
        }
    }

    /// The path of the child `name`, relative to the roots.
    pub fn child(&self, name: &CStr) -> PathBuf {
        crate::sys::join(&self.rel, name)
    }

    /// Marks the directory as changed: its attributes are applied again.
    pub fn touch(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// The directory could not be listed: leave its attributes alone.
    pub fn set_failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// Before creating/removing entries inside DST: a non-root user cannot
    /// write into a read-only directory it owns; make it writable until the
    /// directory is finished (its final mode is applied then).
    pub fn prepare_write(&self) {
        self.touch();
        if self.op.sh.is_root || self.made_writable.load(Ordering::Relaxed) {
            return;
        }
        if let (Some(dst), Some(m)) = (&self.dst, self.dst_meta) {
            if m.perm & 0o300 != 0o300 && !self.made_writable.swap(true, Ordering::SeqCst) {
                let writable = Attrs {
                    perm: Some(m.perm | 0o700),
                    mtime: None,
                };
                let _ = dst.set_attrs(None, &writable);
            }
        }
    }

    /// Copies the SRC directory's current mode and mtime to the DST
    /// directory. Concurrent operations on entries of one directory (the
    /// watcher's, on siblings) each end here, and SRC may change meanwhile:
    /// a value read before another operation's write could land after it.
    /// So SRC is read again after the write, and the write repeated until
    /// SRC held still across it; the last writer thus leaves what SRC has.
    fn apply_src_attrs(&self, dst: &dyn ReplicaDir) -> Result<(), (&'static str, io::Error)> {
        let b = &self.op.sh.backend;
        let src_now = || {
            b.stat_fd(self.src.as_fd())
                .map_err(|e| ("cannot stat directory", e))
        };
        let mut s = src_now()?;
        for _ in 0..4 {
            let cur = dst.stat_self().map_err(|e| ("cannot stat directory", e))?;
            let attrs = Attrs::diff(&s, Some(&cur));
            if !attrs.is_empty() {
                dst.set_attrs(None, &attrs)
                    .map_err(|e| ("cannot set directory attributes", e))?;
            }
            let again = src_now()?;
            if again.perm == s.perm && again.same_mtime(&s) {
                break;
            }
            s = again;
        }
        Ok(())
    }

    fn differs_initially(&self) -> bool {
        match self.dst_meta {
            Some(d) => d.perm != self.src_meta.perm || !d.same_mtime(&self.src_meta),
            None => true,
        }
    }

    fn report_attrs(&self) {
        inc(&self.op.counters.attrs, 1);
        let p = self.op.dst_path(&self.rel);
        self.op.event(Event::Attrs { path: &p });
    }

    /// Applies mode and mtime of the SRC directory to the DST directory
    /// when they differ (after every child is done).
    fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let op = &self.op;
        if op.sh.opts.dry_run {
            if self.dst_meta.is_some() && self.differs_initially() {
                self.report_attrs();
            }
            return;
        }
        if op.aborted() || self.failed.load(Ordering::Relaxed) {
            return;
        }
        let Some(dst) = &self.dst else { return };
        let fid = (op.sh.dir_attrs)(self, dst.as_ref());
        let touched =
            self.dirty.load(Ordering::Relaxed) || self.made_writable.load(Ordering::Relaxed);
        if !touched && !self.differs_initially() {
            return;
        }
        if let Err((what, e)) = self.apply_src_attrs(dst.as_ref()) {
            op.fail(what, op.dst_path(&self.rel), e);
            return;
        }
        if self.dst_meta.is_some() && (fid || self.differs_initially()) {
            self.report_attrs();
        }
    }
}

impl Drop for DirNode {
    fn drop(&mut self) {
        self.finish();
        // Finish ancestors iteratively (no recursion however deep the tree).
        let mut next = self.parent.take();
        while let Some(p) = next {
            match Arc::try_unwrap(p) {
                Ok(mut node) => {
                    node.finish();
                    next = node.parent.take();
                }
                Err(_) => break,
            }
        }
    }
}

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
//!
//! # How it works
//!
//! A run is a set of tasks on the LIFO queue of a persistent `pool` of
//! threads (`-j`, default one per core) shared by every operation of the
//! syncer: "sync this directory" (`walk`: list both sides with every
//! entry's metadata through the one listing backend,
//! [`StatBackend::list`](crate::stat::StatBackend::list), and
//! [`ReplicaDir::scan`] for DST, [`decide`], act with `install`) and "copy/compare these files". Every directory being worked
//! on is a `DirNode` (`node`) holding its SRC descriptor and its DST
//! handle; children hold a reference to their parent, and when the last
//! reference goes away the directory's mode and mtime are applied:
//! directories get their attributes after all their children, in
//! parallel, with no second pass. `roots` validates SRC and DST.
//!
//! # The seam: DST is a [`Replica`]
//!
//! The engine changes and reads DST only through the [`Replica`] and
//! [`ReplicaDir`] traits ([replica]): list a directory, stat, create a
//! directory, remove, rename, set attributes, install a symlink or special
//! file, receive a file's content. [`local`] implements them for a local
//! directory. A replica on another machine implements the same two traits
//! and the planner (walk, decide, install) stays as it is.
//!
//! Files are never visible half-written: a new file is an unnamed
//! `O_TMPFILE` linked into place once complete, a replacement a named
//! temporary renamed over the old entry; both get mode and mtime first, and
//! a source that changed during the copy is copied again.
//!
//! Every name handed to a system call (or to the replica) is a single
//! component relative to an open directory opened with
//! `O_NOFOLLOW | O_DIRECTORY`; nothing in SRC or DST is ever resolved as a
//! path, so a symlink in either tree cannot
//! redirect a read, a write or a delete, and depth is unlimited.

mod decide;
mod fidelity;
mod fidstate;
mod hardlink;
mod install;
pub mod local;
mod node;
mod options;
mod pool;
mod remove;
pub mod replica;
mod roots;
pub mod src_prefetch;
mod walk;

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use self::decide::{decide, Action};
pub use self::options::Options;
pub use self::replica::{Attrs, Committed, IncomingFile, Over, Replica, ReplicaDir};
pub use crate::report::{Progress, Summary};

use self::local::LocalReplica;
use self::node::{DirNode, Run, Shared};
use self::pool::{Panicked, Pool};
use crate::exclude::Excludes;
use crate::report::{inc, Event, Reporter};
use crate::stat::{self, Kind, Meta};
use crate::sys;
use crate::{Error, Result};

/// A validated SRC/DST pair, the options to sync it with, and the threads
/// that do it.
pub struct Syncer {
    sh: Arc<Shared>,
    pool: Pool,
    /// DST was created by `new`: its first sync does not report fixing
    /// its attributes.
    fresh_dst: AtomicBool,
    src_fd: OwnedFd,
    dst: Option<Box<dyn Replica>>,
}

/// The two ends of a syncer: SRC (shown as, open), DST (shown as, the
/// replica, created now).
struct Ends<'a> {
    src: (&'a Path, OwnedFd),
    dst: (&'a Path, Option<Box<dyn Replica>>, bool),
}

/// Splits a relative path into components; rejects `..`, absolute paths
/// and NUL bytes.
fn components(rel: &Path) -> Result<Vec<CString>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(
                CString::new(n.as_bytes())
                    .map_err(|_| Error::invalid("bad path", rel, "contains a NUL byte"))?,
            ),
            Component::CurDir => {}
            _ => {
                let why = "must be relative to the synced directory, without '..'";
                return Err(Error::invalid("bad path", rel, why));
            }
        }
    }
    Ok(out)
}

impl Syncer {
    /// Validates `src` and `dst` and opens their roots (DST is created if
    /// missing, unless `dry_run`).
    pub fn new(
        src: &Path,
        dst: &Path,
        options: Options,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Self> {
        let mut prepared = None;
        let roots = roots::open(src, dst, options.dry_run, reporter.as_ref(), || {
            let excludes = Excludes::new(&options.excludes)?;
            prepared = Some((excludes, options.backend()?));
            Ok(())
        })?;
        let (excludes, backend) = prepared.expect("set by roots::open");
        let is_root = sys::euid() == 0;
        let mode = crate::attrs::content::CopyMode {
            sparse: options.sparse,
            reflink: !options.no_reflink,
        };
        let dst_replica = roots.dst.map(|fd| -> Box<dyn Replica> {
            Box::new(LocalReplica::new(fd, backend.clone(), is_root).with_copy_mode(mode))
        });
        let ends = Ends {
            src: (src, roots.src),
            dst: (dst, dst_replica, roots.dst_created),
        };
        Self::build(ends, excludes, backend, options, reporter)
    }

    /// A syncer whose DST is `dst` (a replica reached another way, e.g. an
    /// agent over ssh; `None`: a dry run and DST does not exist), shown to
    /// the user as `dst_label`; `dst_created`: DST was created for this
    /// run. SRC is validated as by [`Syncer::new`]; SRC/DST nesting cannot
    /// be checked across machines.
    pub fn with_replica(
        src: &Path,
        dst_label: &Path,
        dst: Option<Box<dyn Replica>>,
        dst_created: bool,
        options: Options,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Self> {
        let src_fd = roots::open_src(src)?;
        Self::with_open_src(src, src_fd, dst_label, dst, dst_created, options, reporter)
    }

    /// As [`Syncer::with_replica`], with SRC already open (`src_fd`, a
    /// directory: e.g. resolved beneath a confined server's tree), shown
    /// to the user as `src`.
    pub fn with_open_src(
        src: &Path,
        src_fd: OwnedFd,
        dst_label: &Path,
        dst: Option<Box<dyn Replica>>,
        dst_created: bool,
        options: Options,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Self> {
        let excludes = Excludes::new(&options.excludes)?;
        let backend = options.backend()?;
        let ends = Ends {
            src: (src, src_fd),
            dst: (dst_label, dst, dst_created),
        };
        Self::build(ends, excludes, backend, options, reporter)
    }

    fn build(
        ends: Ends<'_>,
        excludes: Excludes,
        backend: Arc<dyn stat::StatBackend>,
        options: Options,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Self> {
        let pool = Pool::new(options.threads()).map_err(|e| Error::new("starting threads", e))?;
        let mut fid = fidstate::State::new(options.numeric_ids);
        if let Some(r) = ends.dst.1.as_ref().and_then(|d| d.id_resolver()) {
            fid.ids.set_remote(r);
        }
        let sh = Shared {
            src_root: ends.src.0.to_path_buf(),
            dst_root: ends.dst.0.to_path_buf(),
            excludes,
            backend,
            reporter,
            is_root: sys::euid() == 0,
            progress: Progress::default(),
            unsettled: std::sync::Mutex::new(Vec::new()),
            fid,
            dir_attrs: fidelity::dir_attrs,
            src_prefetch: std::sync::OnceLock::new(),
            opts: options,
        };
        Ok(Syncer {
            sh: Arc::new(sh),
            pool,
            fresh_dst: AtomicBool::new(ends.dst.2),
            src_fd: ends.src.1,
            dst: ends.dst.1,
        })
    }

    /// One line for `-v`: the metadata backend in use, e.g.
    /// `dirsync_stat (syscall 463, ABI 1)` or `statx`.
    pub fn backend_description(&self) -> String {
        self.sh.backend.describe()
    }

    /// Live counters over the life of this syncer (for a progress bar).
    pub fn progress(&self) -> &Progress {
        &self.sh.progress
    }

    /// The files (relative to the roots) left uncopied since the last call
    /// because they kept changing during their copy; only with
    /// [`Options::defer_changing`] (otherwise they are errors).
    pub fn take_unsettled(&self) -> Vec<PathBuf> {
        let mut u = self.sh.unsettled.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *u)
    }

    /// Runs the tasks of `op` on the pool and returns its summary.
    fn run(&self, op: &Arc<Run>, task: pool::Task, whole: bool) -> Result<Summary> {
        if let Err(Panicked) = self.pool.run(vec![task]) {
            return Err(Error::Panicked);
        }
        let again = match self.sh.opts.hard_links {
            true => hardlink::finish(op, self.src_fd.as_fd(), self.dst.as_deref(), !whole),
            false => Vec::new(),
        };
        let mut summary = op.end()?;
        for rel in again {
            summary.add(&self.sync_path(&rel)?);
        }
        Ok(summary)
    }

    /// The node of the roots.
    fn root_node(&self, op: &Arc<Run>) -> Result<DirNode> {
        let (sr, dr) = (&self.sh.src_root, &self.sh.dst_root);
        // A new open of ".", not a dup: see `Replica::root`.
        let src = sys::open_dir_at(self.src_fd.as_fd(), c".")
            .map_err(|e| Error::at("cannot reopen", sr, e))?;
        let src_meta = (self.sh.backend)
            .stat_fd(src.as_fd())
            .map_err(|e| Error::at("cannot stat", sr, e))?;
        let (dst, dst_meta) = match &self.dst {
            Some(r) => {
                let d = r.root().map_err(|e| Error::at("cannot reopen", dr, e))?;
                let m = d.stat_self().map_err(|e| Error::at("cannot stat", dr, e))?;
                let fresh = self.fresh_dst.swap(false, Ordering::Relaxed);
                (Some(d), (!fresh).then_some(m))
            }
            None => (None, None),
        };
        let metas = (src_meta, dst_meta);
        Ok(DirNode::new(op, src, dst, PathBuf::new(), metas, None))
    }

    /// Makes the whole of DST equal to SRC.
    pub fn sync_all(&self) -> Result<Summary> {
        self.sh.fid.links.clear();
        let op = Run::new(self.sh.clone());
        let root = self.root_node(&op);
        let out = root.and_then(|root| self.run(&op, walk::contents_task(Arc::new(root)), true));
        // What the walk did not take is stale for the next one.
        if let Some(p) = self.sh.src_prefetch.get() {
            p.clear();
        }
        out
    }

    /// The next [`Syncer::sync_all`] takes SRC's listings from `p`
    /// (made ahead while the run waited, see [`src_prefetch`]) where
    /// their directories are unchanged; ignored if one was given before.
    pub fn with_src_prefetch(self, p: src_prefetch::SrcPrefetch) -> Self {
        let _ = self.sh.src_prefetch.set(p);
        self
    }

    /// Creates the DST directory `name` in `node` (removing what is there)
    /// on the way to a path of `sync_path`.
    fn make_dir_on_the_way(
        &self,
        op: &Run,
        node: &DirNode,
        name: &CString,
        d: Option<Meta>,
    ) -> Result<()> {
        let rel = node.child(name);
        let p = op.dst_path(&rel);
        let dst = node.dst.as_ref().expect("checked by the caller");
        if d.is_some() {
            node.prepare_write();
            let n = dst
                .remove(name)
                .map_err(|e| Error::at("cannot delete", &p, e))?;
            inc(&op.counters.deleted, n);
            op.event(Event::Deleted { path: &p });
        }
        node.prepare_write();
        dst.create_dir(name)
            .map_err(|e| Error::at("cannot create directory", &p, e))?;
        inc(&op.counters.dirs_created, 1);
        op.event(Event::CreatedDir { path: &p });
        Ok(())
    }

    /// Walks (creating in DST where missing) the directories leading to
    /// the last component of `comps`. Returns the parent node and the last
    /// name, or, when SRC lacks one of the parents, the deepest existing
    /// pair and the first missing name, so converging that entry removes
    /// what DST has there.
    fn walk_to_parent(&self, op: &Arc<Run>, comps: &[CString]) -> Result<(Arc<DirNode>, CString)> {
        let mut node = Arc::new(self.root_node(op)?);
        let (last, rest) = comps.split_last().expect("comps is not empty");
        for name in rest {
            let rel = node.child(name);
            let s = (self.sh.backend)
                .stat_at(node.src.as_fd(), name)
                .map_err(|e| Error::at("cannot stat", op.src_path(&rel), e))?;
            let Some(s) = s.filter(|m| m.kind == Kind::Dir) else {
                return Ok((node, name.clone()));
            };
            let Some(dst) = &node.dst else {
                return Ok((node, name.clone()));
            };
            let d = dst
                .stat(name)
                .map_err(|e| Error::at("cannot stat", op.dst_path(&rel), e))?;
            let dst_meta = match d {
                Some(m) if m.kind == Kind::Dir => Some(m),
                _ if self.sh.opts.dry_run => return Ok((node, name.clone())),
                other => {
                    self.make_dir_on_the_way(op, &node, name, other)?;
                    None
                }
            };
            let src = sys::open_dir_at(node.src.as_fd(), name)
                .map_err(|e| Error::at("cannot open directory", op.src_path(&rel), e))?;
            let dst = (node.dst.as_ref().expect("checked above"))
                .open_dir(name)
                .map_err(|e| Error::at("cannot open directory", op.dst_path(&rel), e))?;
            node = Arc::new(DirNode::new(
                op,
                src,
                Some(dst),
                rel,
                (s, dst_meta),
                Some(node),
            ));
        }
        Ok((node, last.clone()))
    }

    /// Whether `sync_path` leaves `comps` alone: an excluded path (or one
    /// below an excluded directory), or below the top with `--no-recursive`.
    fn left_alone(&self, comps: &[CString]) -> bool {
        if self.sh.opts.no_recursive && comps.len() > 1 {
            return true;
        }
        let mut prefix = PathBuf::new();
        for (i, c) in comps.iter().enumerate() {
            prefix.push(OsStr::from_bytes(c.as_bytes()));
            let is_last = i == comps.len() - 1;
            if !self.sh.excludes.is_empty()
                && self.sh.excluded(&prefix, true)
                && (!is_last || self.sh.excluded(&prefix, false))
            {
                return true;
            }
        }
        false
    }

    /// Makes `DST/rel` equal to `SRC/rel` (see the module docs).
    pub fn sync_path(&self, rel: &Path) -> Result<Summary> {
        let comps = components(rel)?;
        if comps.is_empty() {
            return self.sync_all();
        }
        if self.left_alone(&comps) {
            return Ok(Summary::default());
        }
        let op = Run::new(self.sh.clone());
        let (parent, name) = self.walk_to_parent(&op, &comps)?;
        self.run(&op, walk::entry_task(parent, name), false)
    }

    /// Re-applies mode and mtime of `SRC/rel` to `DST/rel`.
    pub fn sync_attrs(&self, rel: &Path) -> Result<Summary> {
        let comps = components(rel)?;
        let Some((name, parents)) = comps.split_last() else {
            let op = Run::new(self.sh.clone());
            let root = self.root_node(&op)?;
            root.touch();
            drop(root);
            return op.end();
        };
        // Open the parents without creating anything; anything unexpected
        // falls back to a full sync of the path.
        let Some(replica) = &self.dst else {
            return self.sync_path(rel);
        };
        let (src, dst) = match (self.src_fd.try_clone(), replica.root()) {
            (Ok(s), Ok(d)) => (s, d),
            (Err(e), _) => return Err(Error::at("cannot dup", &self.sh.src_root, e)),
            (_, Err(e)) => return Err(Error::at("cannot reopen", &self.sh.dst_root, e)),
        };
        let (mut src, mut dst) = (src, dst);
        for name in parents {
            match (sys::open_dir_at(src.as_fd(), name), dst.open_dir(name)) {
                (Ok(s), Ok(d)) => (src, dst) = (s, d),
                _ => return self.sync_path(rel),
            }
        }
        let (s, d) = match (self.sh.backend.stat_at(src.as_fd(), name), dst.stat(name)) {
            (Ok(Some(s)), Ok(Some(d))) => (s, d),
            _ => return self.sync_path(rel),
        };
        let changed_type = s.kind != d.kind || matches!(s.kind, Kind::Special(_));
        // -H: a new or removed name of a linked file (`ln`, `rm` report the
        // link count of the other names): the full sync relinks.
        let links = self.sh.opts.hard_links && (s.ids.nlink > 1 || d.ids.nlink > 1);
        if links {
            return self.sync_path(rel);
        }
        if changed_type || (s.kind == Kind::File && s.size != d.size) {
            return self.sync_path(rel);
        }
        let op = Run::new(self.sh.clone());
        let child = sys::join(
            &rel.parent().map(Path::to_path_buf).unwrap_or_default(),
            name,
        );
        install::fix_attrs(&op, Some(dst.as_ref()), src.as_fd(), name, &child, (s, d));
        op.end()
    }

    /// Renames `DST/from` to `DST/to` inside DST, then converges `to`.
    pub fn rename(&self, from: &Path, to: &Path) -> Result<Summary> {
        let (fc, tc) = (components(from)?, components(to)?);
        let mut total = Summary::default();
        let renamed = match &self.dst {
            Some(r) if !self.sh.opts.dry_run => r.rename(&fc, &tc).unwrap_or(false),
            _ => false,
        };
        if renamed {
            let (a, b) = (self.sh.dst_root.join(from), self.sh.dst_root.join(to));
            self.sh.reporter.event(&Event::Renamed { from: &a, to: &b });
            total.renamed += 1;
        }
        total.add(&self.sync_path(from)?);
        total.add(&self.sync_path(to)?);
        Ok(total)
    }
}

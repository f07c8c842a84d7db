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
//! A run is a set of jobs on a shared LIFO queue worked by one thread per
//! core: "sync this directory" (list both sides with `getdents64`, one
//! stat per entry relative to the directory descriptors, decide, act) and
//! "copy/compare this file". Every directory being worked on is a
//! `DirNode` holding its SRC and DST descriptors; children hold a
//! reference to their parent, and when the last reference goes away the
//! directory's mode and mtime are applied: directories get their attributes
//! after all their children, in parallel, with no second pass.
//!
//! Files are never visible half-written: a new file is an unnamed
//! `O_TMPFILE` linked into place once complete, a replacement a named
//! temporary renamed over the old entry; both get mode and mtime first, and
//! a source that changed during the copy is copied again.
//!
//! Every name handed to a system call is a single component relative to an
//! open directory opened with `O_NOFOLLOW | O_DIRECTORY`; nothing in SRC or
//! DST is ever resolved as a path, so a symlink in either tree cannot
//! redirect a read, a write or a delete, and depth is unlimited.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::copy;
use crate::exclude::Excludes;
use crate::report::{Event, Reporter};
use crate::stat::{self, BackendChoice, Kind, Meta, StatBackend};
use crate::sys;
use crate::{Error, Result};

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
    /// Recreate FIFOs, sockets and device nodes in DST (devices need root)
    /// instead of skipping them.
    pub specials: bool,
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
    /// Special files (FIFOs, sockets, devices) recreated (`--specials`).
    pub specials: u64,
    /// Entries that failed (reported, the rest went on).
    pub errors: u64,
}

impl Summary {
    /// Adds another summary's counts to this one.
    pub fn add(&mut self, o: &Summary) {
        self.copied += o.copied;
        self.bytes += o.bytes;
        self.dirs_created += o.dirs_created;
        self.links += o.links;
        self.deleted += o.deleted;
        self.attrs += o.attrs;
        self.renamed += o.renamed;
        self.skipped += o.skipped;
        self.specials += o.specials;
        self.errors += o.errors;
    }

    /// Number of changes made (or, in a dry run, that would be made).
    pub fn actions(&self) -> u64 {
        self.copied
            + self.dirs_created
            + self.links
            + self.deleted
            + self.attrs
            + self.renamed
            + self.specials
    }
}

/// Live counters of the whole life of a [`Syncer`] (for a progress bar).
#[derive(Debug, Default)]
pub struct Progress {
    /// Entries looked at in SRC.
    pub scanned: AtomicU64,
    /// Files copied.
    pub copied: AtomicU64,
    /// Bytes copied.
    pub bytes: AtomicU64,
}

#[derive(Default)]
struct Counters {
    copied: AtomicU64,
    bytes: AtomicU64,
    dirs_created: AtomicU64,
    links: AtomicU64,
    deleted: AtomicU64,
    attrs: AtomicU64,
    renamed: AtomicU64,
    skipped: AtomicU64,
    specials: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn summary(&self) -> Summary {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Summary {
            copied: g(&self.copied),
            bytes: g(&self.bytes),
            dirs_created: g(&self.dirs_created),
            links: g(&self.links),
            deleted: g(&self.deleted),
            attrs: g(&self.attrs),
            renamed: g(&self.renamed),
            skipped: g(&self.skipped),
            specials: g(&self.specials),
            errors: g(&self.errors),
        }
    }
}

fn inc(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

/// What every operation of a [`Syncer`] shares.
struct Shared {
    src_root: PathBuf,
    dst_root: PathBuf,
    opts: Options,
    excludes: Excludes,
    backend: Box<dyn StatBackend>,
    reporter: Arc<dyn Reporter>,
    is_root: bool,
    progress: Progress,
    threads: usize,
    /// Whether new files can be written as `O_TMPFILE` and linked into
    /// place: 0 not known yet, 1 yes, 2 no (named temporary + rename).
    tmpfile: std::sync::atomic::AtomicU8,
}

/// Errors that stop a whole operation (out of space).
fn is_fatal(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// One operation (`sync_all`, `sync_path`, ...): its counters and abort
/// flag.
struct Op {
    sh: Arc<Shared>,
    counters: Counters,
    fatal: Mutex<Option<Error>>,
    aborted: AtomicBool,
}

impl Op {
    fn src_path(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.sh.src_root.clone()
        } else {
            self.sh.src_root.join(rel)
        }
    }
    fn dst_path(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.sh.dst_root.clone()
        } else {
            self.sh.dst_root.join(rel)
        }
    }
    fn event(&self, e: Event<'_>) {
        self.sh.reporter.event(&e);
    }
    /// Reports a failed entry (counted), or stops the run when it is fatal.
    fn fail(&self, what: &str, path: PathBuf, e: io::Error) {
        if is_fatal(&e) {
            let mut f = match self.fatal.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
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
    fn aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }
}

/// A directory being synced: its two descriptors and what to apply to the
/// DST side once all children are done (on drop).
struct DirNode {
    op: Arc<Op>,
    src: OwnedFd,
    /// `None` only in a dry run when the DST directory does not exist.
    dst: Option<OwnedFd>,
    rel: PathBuf,
    src_meta: Meta,
    /// The DST directory's metadata before we touched it (`None`: created).
    dst_meta: Option<Meta>,
    /// Set when an entry inside DST was created, replaced or removed.
    dirty: AtomicBool,
    /// Set when we had to make the DST directory writable (non-root).
    made_writable: AtomicBool,
    /// Skip finishing (the directory could not be listed).
    failed: AtomicBool,
    parent: Option<Arc<DirNode>>,
    finished: bool,
}

impl DirNode {
    fn dst_fd(&self) -> Option<RawFd> {
        self.dst.as_ref().map(|f| f.as_raw_fd())
    }

    /// Before creating/removing entries inside DST: a non-root user cannot
    /// write into a read-only directory it owns; make it writable until the
    /// directory is finished (its final mode is applied then).
    fn prepare_write(&self) {
        self.dirty.store(true, Ordering::Relaxed);
        if self.op.sh.is_root || self.made_writable.load(Ordering::Relaxed) {
            return;
        }
        if let (Some(fd), Some(m)) = (self.dst_fd(), self.dst_meta) {
            if m.perm & 0o300 != 0o300 && !self.made_writable.swap(true, Ordering::SeqCst) {
                let _ = sys::chmod_fd(fd, m.perm | 0o700);
            }
        }
    }

    /// Copies the SRC directory's current mode and mtime to the DST
    /// directory. Concurrent operations on entries of one directory (the
    /// watcher's, on siblings) each end here, and SRC may change meanwhile:
    /// a value read before another operation's write could land after it.
    /// So SRC is read again after the write, and the write repeated until
    /// SRC held still across it; the last writer thus leaves what SRC has.
    fn apply_src_attrs(&self, fd: RawFd) -> Result<(), (&'static str, io::Error)> {
        let b = &self.op.sh.backend;
        let src_now = || {
            b.stat_fd(self.src.as_raw_fd())
                .map_err(|e| ("cannot stat directory", e))
        };
        let mut s = src_now()?;
        for _ in 0..4 {
            let cur = b.stat_fd(fd).map_err(|e| ("cannot stat directory", e))?;
            if cur.perm != s.perm {
                sys::chmod_fd(fd, s.perm).map_err(|e| ("cannot set directory attributes", e))?;
            }
            if !cur.same_mtime(&s) {
                sys::set_mtime_fd(fd, s.mtime, s.mtime_nsec)
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

    /// Applies mode and mtime of the SRC directory to the DST directory
    /// when they differ (after every child is done).
    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let op = &self.op;
        if op.sh.opts.dry_run || op.aborted() || self.failed.load(Ordering::Relaxed) {
            if op.sh.opts.dry_run {
                if let Some(d) = self.dst_meta {
                    if d.perm != self.src_meta.perm || !d.same_mtime(&self.src_meta) {
                        inc(&op.counters.attrs, 1);
                        let p = op.dst_path(&self.rel);
                        op.event(Event::Attrs { path: &p });
                    }
                }
            }
            return;
        }
        let Some(fd) = self.dst_fd() else { return };
        let touched =
            self.dirty.load(Ordering::Relaxed) || self.made_writable.load(Ordering::Relaxed);
        let initially_differs = match self.dst_meta {
            Some(d) => d.perm != self.src_meta.perm || !d.same_mtime(&self.src_meta),
            None => true,
        };
        if !touched && !initially_differs {
            return;
        }
        if let Err((what, e)) = self.apply_src_attrs(fd) {
            op.fail(what, op.dst_path(&self.rel), e);
            return;
        }
        if self.dst_meta.is_some() && initially_differs {
            inc(&op.counters.attrs, 1);
            let p = op.dst_path(&self.rel);
            op.event(Event::Attrs { path: &p });
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

/// One regular file to copy or compare.
struct FileWork {
    name: CString,
    src_meta: Meta,
    dst_meta: Option<Meta>,
    compare_first: bool,
}

/// A batch of small files is handed to the queue at this many files...
const BATCH_FILES: usize = 64;
/// ... or this many bytes; a file at least this big is a job of its own.
const BATCH_BYTES: u64 = 4 << 20;

/// Small files waiting to become a [`Job::Files`].
#[derive(Default)]
struct FileBatch {
    files: Vec<FileWork>,
    bytes: u64,
}

impl FileBatch {
    fn add(&mut self, q: &Queue, dir: &Arc<DirNode>, work: FileWork) {
        if work.src_meta.size >= BATCH_BYTES {
            q.push(Job::Files {
                dir: dir.clone(),
                files: vec![work],
            });
            return;
        }
        self.bytes += work.src_meta.size;
        self.files.push(work);
        if self.files.len() >= BATCH_FILES || self.bytes >= BATCH_BYTES {
            self.flush(q, dir);
        }
    }

    fn flush(&mut self, q: &Queue, dir: &Arc<DirNode>) {
        if !self.files.is_empty() {
            q.push(Job::Files {
                dir: dir.clone(),
                files: std::mem::take(&mut self.files),
            });
        }
        self.bytes = 0;
    }
}

enum Job {
    /// Sync the contents of an opened directory.
    Contents(Arc<DirNode>),
    /// Open the child directory `name` of `parent`, create it in DST when
    /// `dst_meta` is `None` (first removing what DST has there when
    /// `replace`), and sync its contents.
    Subdir {
        parent: Arc<DirNode>,
        name: CString,
        src_meta: Meta,
        dst_meta: Option<Meta>,
        replace: bool,
    },
    /// Copy (or first compare, with `--checksum`) regular files of one
    /// directory: small files go in batches (fewer queue operations), big
    /// ones alone (so that both cores share them).
    Files {
        dir: Arc<DirNode>,
        files: Vec<FileWork>,
    },
    /// Stat both sides of one entry and converge it (for `sync_path`).
    Entry { dir: Arc<DirNode>, name: CString },
}

struct Queue {
    state: Mutex<(Vec<Job>, usize)>,
    cv: Condvar,
}

impl Queue {
    fn push(&self, job: Job) {
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        st.0.push(job);
        drop(st);
        self.cv.notify_one();
    }
}

/// Runs `jobs` and everything they spawn on `threads` threads (the
/// calling one included).
fn execute(op: &Arc<Op>, jobs: Vec<Job>, threads: usize) {
    let q = Queue {
        state: Mutex::new((jobs, 0)),
        cv: Condvar::new(),
    };
    let threads = threads.max(1);
    let worker = || {
        let lock = || match q.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut st = lock();
        loop {
            if let Some(job) = st.0.pop() {
                st.1 += 1;
                drop(st);
                if !op.aborted() {
                    run_job(op, &q, job);
                } else {
                    drop(job);
                }
                st = lock();
                st.1 -= 1;
                if st.1 == 0 && st.0.is_empty() {
                    q.cv.notify_all();
                }
                continue;
            }
            if st.1 == 0 {
                q.cv.notify_all();
                break;
            }
            st = match q.cv.wait(st) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
    };
    if threads == 1 {
        worker();
        return;
    }
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(worker);
        }
        worker();
    });
}

fn run_job(op: &Arc<Op>, q: &Queue, job: Job) {
    match job {
        Job::Contents(node) => sync_contents(op, q, node),
        Job::Subdir {
            parent,
            name,
            src_meta,
            dst_meta,
            replace,
        } => {
            if let Some(node) = open_subdir(op, &parent, &name, src_meta, dst_meta, replace) {
                sync_contents(op, q, Arc::new(node));
            }
        }
        Job::Files { dir, files } => {
            for f in files {
                if op.aborted() {
                    return;
                }
                sync_file(op, &dir, &f.name, f.src_meta, f.dst_meta, f.compare_first);
            }
        }
        Job::Entry { dir, name } => {
            let rel = sys::join(&dir.rel, &name);
            let s = match op.sh.backend.stat_at(dir.src.as_raw_fd(), &name) {
                Ok(s) => s,
                Err(e) => {
                    op.fail("cannot stat", op.src_path(&rel), e);
                    return;
                }
            };
            let d = match dir.dst_fd() {
                Some(fd) => match op.sh.backend.stat_at(fd, &name) {
                    Ok(d) => d,
                    Err(e) => {
                        op.fail("cannot stat", op.dst_path(&rel), e);
                        return;
                    }
                },
                None => None,
            };
            let s = s.filter(|m| !excluded(op, &rel, m.kind == Kind::Dir));
            let d_excluded = d
                .map(|m| excluded(op, &rel, m.kind == Kind::Dir))
                .unwrap_or(false);
            if s.is_none() && d_excluded {
                return;
            }
            if op.sh.opts.no_recursive && !dir.rel.as_os_str().is_empty() {
                return;
            }
            let mut batch = FileBatch::default();
            converge(op, q, &mut batch, &dir, &name, &rel, s, d);
            batch.flush(q, &dir);
        }
    }
}

fn excluded(op: &Op, rel: &Path, is_dir: bool) -> bool {
    let ex = &op.sh.excludes;
    if ex.is_empty() {
        return false;
    }
    let bytes = rel.as_os_str().as_bytes();
    let name = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
    ex.is_excluded(bytes, name, is_dir)
}

/// Opens SRC/DST of a child directory and makes its node.
fn open_subdir(
    op: &Arc<Op>,
    parent: &Arc<DirNode>,
    name: &CStr,
    src_meta: Meta,
    dst_meta: Option<Meta>,
    replace: bool,
) -> Option<DirNode> {
    let rel = sys::join(&parent.rel, name);
    let src = match sys::open_dir_at(parent.src.as_raw_fd(), name) {
        Ok(fd) => fd,
        Err(e) => {
            op.fail("cannot open directory", op.src_path(&rel), e);
            return None;
        }
    };
    if dst_meta.is_none() {
        if replace && !remove_entry(op, parent, name, &rel) {
            return None;
        }
        if !op.sh.opts.dry_run {
            let fd = parent.dst_fd()?;
            parent.prepare_write();
            if let Err(e) = sys::mkdir_at(fd, name, 0o700) {
                op.fail("cannot create directory", op.dst_path(&rel), e);
                return None;
            }
        }
        inc(&op.counters.dirs_created, 1);
        let p = op.dst_path(&rel);
        op.event(Event::CreatedDir { path: &p });
    }
    let dst = match parent.dst_fd() {
        Some(pfd) if !(op.sh.opts.dry_run && dst_meta.is_none()) => {
            match sys::open_dir_at(pfd, name) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    op.fail("cannot open directory", op.dst_path(&rel), e);
                    return None;
                }
            }
        }
        _ => None,
    };
    Some(DirNode {
        op: op.clone(),
        src,
        dst,
        rel,
        src_meta,
        dst_meta,
        dirty: AtomicBool::new(false),
        made_writable: AtomicBool::new(false),
        failed: AtomicBool::new(false),
        parent: Some(parent.clone()),
        finished: false,
    })
}

/// Lists both sides of a directory and converges every entry.
fn sync_contents(op: &Arc<Op>, q: &Queue, node: Arc<DirNode>) {
    let mut src_entries = match sys::read_dir(node.src.as_raw_fd()) {
        Ok(v) => v,
        Err(e) => {
            node.failed.store(true, Ordering::Relaxed);
            op.fail("cannot read directory", op.src_path(&node.rel), e);
            return;
        }
    };
    let mut dst_entries = match node.dst_fd() {
        Some(fd) => match sys::read_dir(fd) {
            Ok(v) => v,
            Err(e) => {
                node.failed.store(true, Ordering::Relaxed);
                op.fail("cannot read directory", op.dst_path(&node.rel), e);
                return;
            }
        },
        None => Vec::new(),
    };
    src_entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    dst_entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    inc(&op.sh.progress.scanned, src_entries.len() as u64);
    let top_only = op.sh.opts.no_recursive;
    let mut batch = FileBatch::default();
    let (mut i, mut j) = (0, 0);
    while i < src_entries.len() || j < dst_entries.len() {
        if op.aborted() {
            return;
        }
        let (sname, dname) = (src_entries.get(i), dst_entries.get(j));
        let ord = match (sname, dname) {
            (Some(a), Some(b)) => a.name.cmp(&b.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let (name, in_src, in_dst, d_type) = match ord {
            std::cmp::Ordering::Less => {
                i += 1;
                (
                    &src_entries[i - 1].name,
                    true,
                    false,
                    src_entries[i - 1].d_type,
                )
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                (
                    &dst_entries[j - 1].name,
                    false,
                    true,
                    dst_entries[j - 1].d_type,
                )
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
                (
                    &src_entries[i - 1].name,
                    true,
                    true,
                    src_entries[i - 1].d_type,
                )
            }
        };
        let rel = sys::join(&node.rel, name);
        let s = if in_src {
            match op.sh.backend.stat_at(node.src.as_raw_fd(), name) {
                Ok(s) => s,
                Err(e) => {
                    // Unknown: leave DST's entry alone.
                    op.fail("cannot stat", op.src_path(&rel), e);
                    continue;
                }
            }
        } else {
            None
        };
        if let Some(m) = s {
            if excluded(op, &rel, m.kind == Kind::Dir) {
                continue;
            }
            if top_only && m.kind == Kind::Dir {
                continue;
            }
        }
        if !in_src {
            // Only in DST: deleted, without a stat when nothing needs its
            // type (getdents' d_type answers that otherwise).
            if op.sh.opts.no_delete {
                continue;
            }
            if top_only || !op.sh.excludes.is_empty() {
                let is_dir = match d_type {
                    libc::DT_DIR => true,
                    libc::DT_UNKNOWN => {
                        let fd = node.dst_fd().expect("listed, so open");
                        match op.sh.backend.stat_at(fd, name) {
                            Ok(Some(m)) => m.kind == Kind::Dir,
                            Ok(None) => continue,
                            Err(e) => {
                                op.fail("cannot stat", op.dst_path(&rel), e);
                                continue;
                            }
                        }
                    }
                    _ => false,
                };
                if excluded(op, &rel, is_dir) || (top_only && is_dir) {
                    continue;
                }
            }
            remove_entry(op, &node, name, &rel);
            continue;
        }
        let d = if in_dst {
            let fd = node.dst_fd().expect("listed, so open");
            match op.sh.backend.stat_at(fd, name) {
                Ok(d) => d,
                Err(e) => {
                    op.fail("cannot stat", op.dst_path(&rel), e);
                    continue;
                }
            }
        } else {
            None
        };
        converge(op, q, &mut batch, &node, name, &rel, s, d);
    }
    batch.flush(q, &node);
}

/// Makes DST's entry `name` in `dir` equal to SRC's (`s`, `d`: their
/// metadata, `None` when absent).
#[allow(clippy::too_many_arguments)]
fn converge(
    op: &Arc<Op>,
    q: &Queue,
    batch: &mut FileBatch,
    dir: &Arc<DirNode>,
    name: &CStr,
    rel: &Path,
    s: Option<Meta>,
    d: Option<Meta>,
) {
    let opts = &op.sh.opts;
    let s = match s {
        Some(m) if matches!(m.kind, Kind::Special(_)) && opts.specials => {
            sync_special(op, dir, name, rel, m, d);
            return;
        }
        Some(m) if matches!(m.kind, Kind::Special(_)) => {
            inc(&op.counters.skipped, 1);
            let msg = format!("{} not copied", m.kind.describe());
            let p = op.src_path(rel);
            op.event(Event::Skipped {
                path: &p,
                message: &msg,
            });
            None
        }
        other => other,
    };
    let Some(s) = s else {
        if d.is_some() && !opts.no_delete {
            remove_entry(op, dir, name, rel);
        }
        return;
    };
    match s.kind {
        Kind::File => {
            let work = |compare_first| FileWork {
                name: name.to_owned(),
                src_meta: s,
                dst_meta: d,
                compare_first,
            };
            match d {
                Some(dm) if dm.kind == Kind::File => {
                    if opts.checksum {
                        batch.add(q, dir, work(dm.size == s.size));
                    } else if dm.size == s.size && (opts.size_only || dm.same_mtime(&s)) {
                        fix_attrs(op, dir, name, rel, s, dm);
                    } else {
                        batch.add(q, dir, work(false));
                    }
                }
                _ => batch.add(q, dir, work(false)),
            }
        }
        Kind::Dir => {
            // Creating (or replacing) the DST directory waits until the SRC
            // one is open: an unreadable directory leaves DST untouched.
            let (dst_meta, replace) = match d {
                Some(dm) if dm.kind == Kind::Dir => (Some(dm), false),
                other => (None, other.is_some()),
            };
            q.push(Job::Subdir {
                parent: dir.clone(),
                name: name.to_owned(),
                src_meta: s,
                dst_meta,
                replace,
            });
        }
        Kind::Symlink => sync_symlink(op, dir, name, rel, s, d),
        Kind::Special(_) => unreachable!("handled above"),
    }
}

/// Removes DST's entry (file, link or tree). Returns false on failure.
fn remove_entry(op: &Op, dir: &DirNode, name: &CStr, rel: &Path) -> bool {
    let p = op.dst_path(rel);
    if op.sh.opts.dry_run {
        inc(&op.counters.deleted, 1);
        op.event(Event::Deleted { path: &p });
        return true;
    }
    let Some(fd) = dir.dst_fd() else { return false };
    dir.prepare_write();
    match copy::remove_tree(fd, name, op.sh.is_root) {
        Ok(n) => {
            inc(&op.counters.deleted, n);
            op.event(Event::Deleted { path: &p });
            true
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
        Err(e) => {
            op.fail("cannot delete", p, e);
            false
        }
    }
}

/// Applies mode and mtime of a SRC file/link to DST's same-type entry.
fn fix_attrs(op: &Op, dir: &DirNode, name: &CStr, rel: &Path, s: Meta, d: Meta) {
    let perm_differs = s.kind != Kind::Symlink && s.perm != d.perm;
    let mtime_differs = !s.same_mtime(&d);
    if !perm_differs && !mtime_differs {
        return;
    }
    let p = op.dst_path(rel);
    if !op.sh.opts.dry_run {
        let Some(fd) = dir.dst_fd() else { return };
        let mut res = Ok(());
        if perm_differs {
            res = sys::chmod_at_nofollow(fd, name, s.perm);
        }
        if res.is_ok() && mtime_differs {
            res = sys::set_mtime_at(fd, name, s.mtime, s.mtime_nsec);
        }
        if let Err(e) = res {
            op.fail("cannot set attributes", p, e);
            return;
        }
    }
    inc(&op.counters.attrs, 1);
    op.event(Event::Attrs { path: &p });
}

fn sync_symlink(op: &Op, dir: &DirNode, name: &CStr, rel: &Path, s: Meta, d: Option<Meta>) {
    let target = match sys::readlink_at(dir.src.as_raw_fd(), name) {
        Ok(t) => t,
        Err(e) => {
            op.fail("cannot read link", op.src_path(rel), e);
            return;
        }
    };
    if let (Some(dm), Some(fd)) = (d, dir.dst_fd()) {
        if dm.kind == Kind::Symlink {
            match sys::readlink_at(fd, name) {
                Ok(t) if t == target => {
                    fix_attrs(op, dir, name, rel, s, dm);
                    return;
                }
                _ => {}
            }
        }
    }
    let p = op.dst_path(rel);
    if !op.sh.opts.dry_run {
        let Some(fd) = dir.dst_fd() else { return };
        dir.prepare_write();
        let tmp = copy::temp_name();
        if let Err(e) = sys::symlink_at(&target, fd, &tmp) {
            op.fail("cannot create symlink", p, e);
            return;
        }
        let res = sys::set_mtime_at(fd, &tmp, s.mtime, s.mtime_nsec).and_then(|()| {
            if let Some(Meta {
                kind: Kind::Dir, ..
            }) = d
            {
                copy::remove_tree(fd, name, op.sh.is_root).map(|n| {
                    inc(&op.counters.deleted, n);
                })?;
            }
            sys::rename_at(fd, &tmp, fd, name)
        });
        if let Err(e) = res {
            let _ = sys::unlink_at(fd, &tmp);
            op.fail("cannot create symlink", p, e);
            return;
        }
    }
    inc(&op.counters.links, 1);
    op.event(Event::Linked {
        path: &p,
        target: &target,
    });
}

/// `--specials`: recreates a FIFO, socket or device node (same type, mode,
/// device number and mtime) under a temporary name, renamed into place.
fn sync_special(op: &Op, dir: &DirNode, name: &CStr, rel: &Path, s: Meta, d: Option<Meta>) {
    let sp = op.src_path(rel);
    // The device number is not part of the compared record: ask statx.
    let rdev = |fd: RawFd| -> io::Result<libc::dev_t> {
        let (major, minor) = sys::rdev_at(fd, name)?;
        Ok(libc::makedev(major, minor))
    };
    let want = match rdev(dir.src.as_raw_fd()) {
        Ok(r) => r,
        Err(e) => {
            op.fail("cannot stat", sp, e);
            return;
        }
    };
    let p = op.dst_path(rel);
    if let (Some(dm), Some(fd)) = (d, dir.dst_fd()) {
        if dm.kind == s.kind && rdev(fd).map(|r| r == want).unwrap_or(false) {
            fix_attrs(op, dir, name, rel, s, dm);
            return;
        }
    }
    if !op.sh.opts.dry_run {
        let Some(fd) = dir.dst_fd() else { return };
        dir.prepare_write();
        let tmp = copy::temp_name();
        let Kind::Special(fmt) = s.kind else { return };
        if let Err(e) = sys::mknod_at(fd, &tmp, fmt | (s.perm & 0o777), want) {
            op.fail("cannot create", p, e);
            return;
        }
        let res = sys::chmod_at_nofollow(fd, &tmp, s.perm)
            .and_then(|()| sys::set_mtime_at(fd, &tmp, s.mtime, s.mtime_nsec))
            .and_then(|()| {
                if let Some(Meta {
                    kind: Kind::Dir, ..
                }) = d
                {
                    let n = copy::remove_tree(fd, name, op.sh.is_root)?;
                    inc(&op.counters.deleted, n);
                }
                sys::rename_at(fd, &tmp, fd, name)
            });
        if let Err(e) = res {
            let _ = sys::unlink_at(fd, &tmp);
            op.fail("cannot create", p, e);
            return;
        }
    }
    inc(&op.counters.specials, 1);
    op.event(Event::Special {
        path: &p,
        kind: s.kind.describe(),
    });
}

/// How many times a file that changes while being copied is retried.
const COPY_RETRIES: u32 = 3;

fn sync_file(op: &Op, dir: &DirNode, name: &CStr, s: Meta, d: Option<Meta>, compare_first: bool) {
    let rel = sys::join(&dir.rel, name);
    if compare_first {
        if let (Some(dm), Some(dfd)) = (d, dir.dst_fd()) {
            let same = sys::open_file_at(dir.src.as_raw_fd(), name).and_then(|a| {
                let b = sys::open_file_at(dfd, name)?;
                copy::same_content(a.as_raw_fd(), b.as_raw_fd())
            });
            match same {
                Ok(true) => {
                    fix_attrs(op, dir, name, &rel, s, dm);
                    return;
                }
                Ok(false) => {}
                Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                    // An unreadable DST file is simply replaced; an
                    // unreadable SRC file fails below with a clear error.
                }
                Err(_) => {}
            }
        }
    }
    let (sp, dp) = (op.src_path(&rel), op.dst_path(&rel));
    if op.sh.opts.dry_run {
        inc(&op.counters.copied, 1);
        inc(&op.counters.bytes, s.size);
        op.event(Event::Copied { src: &sp, dst: &dp });
        return;
    }
    let Some(dfd) = dir.dst_fd() else { return };
    let sfd = dir.src.as_raw_fd();
    let mut attempt = 0;
    while attempt <= COPY_RETRIES {
        let src = match sys::open_file_at(sfd, name) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return, // vanished
            Err(e) => {
                op.fail("cannot open", sp, e);
                return;
            }
        };
        // The first attempt trusts the walk's stat (no second stat): had the
        // name been replaced or changed since, the check after the copy
        // (inode, type, size, mtime) sees it and the copy is retried.
        let before = if attempt == 0 {
            s
        } else {
            match op.sh.backend.stat_fd(src.as_raw_fd()) {
                Ok(m) => m,
                Err(e) => {
                    op.fail("cannot stat", sp, e);
                    return;
                }
            }
        };
        if before.kind != Kind::File {
            op.fail(
                "changed type during the sync",
                sp,
                io::Error::other("no longer a regular file"),
            );
            return;
        }
        dir.prepare_write();
        // A new file is written unnamed (O_TMPFILE) and linked into place
        // once complete; a file that replaces something goes through a
        // named temporary and renameat. Either way no partial file ever
        // has the final name.
        let unnamed = d.is_none() && op.sh.tmpfile.load(Ordering::Relaxed) != 2;
        let opened = if unnamed {
            match copy::open_tmpfile(dfd) {
                Ok(fd) => Ok((None, fd)),
                Err(e) if is_fatal(&e) => Err(e),
                Err(_) => {
                    op.sh.tmpfile.store(2, Ordering::Relaxed);
                    copy::create_temp(dfd).map(|(t, fd)| (Some(t), fd))
                }
            }
        } else {
            copy::create_temp(dfd).map(|(t, fd)| (Some(t), fd))
        };
        let (tmp, out) = match opened {
            Ok(t) => t,
            Err(e) => {
                op.fail(
                    "cannot create a temporary file in",
                    op.dst_path(&dir.rel),
                    e,
                );
                return;
            }
        };
        let discard = |tmp: &Option<CString>| {
            if let Some(t) = tmp {
                let _ = sys::unlink_at(dfd, t);
            }
        };
        let ofd = out.as_raw_fd();
        let res = copy::copy_data(src.as_raw_fd(), ofd, before.size).and_then(|n| {
            let after = op.sh.backend.stat_fd(src.as_raw_fd())?;
            Ok((n, after))
        });
        let (n, after) = match res {
            Ok(x) => x,
            Err(e) => {
                drop(out);
                discard(&tmp);
                op.fail("cannot copy", sp, e);
                return;
            }
        };
        if n != before.size
            || after.kind != Kind::File
            || after.ino != before.ino
            || after.dev != before.dev
            || after.size != before.size
            || !after.same_mtime(&before)
        {
            // The source changed while we copied it: try again.
            drop(out);
            discard(&tmp);
            attempt += 1;
            continue;
        }
        let res = sys::chmod_fd(ofd, after.perm)
            .and_then(|()| sys::set_mtime_fd(ofd, before.mtime, before.mtime_nsec))
            .and_then(|()| {
                if op.sh.opts.fsync {
                    sys::fsync(ofd)
                } else {
                    Ok(())
                }
            });
        let res = res.and_then(|()| match &tmp {
            Some(t) => {
                if let Some(Meta {
                    kind: Kind::Dir, ..
                }) = d
                {
                    let n = copy::remove_tree(dfd, name, op.sh.is_root)?;
                    inc(&op.counters.deleted, n);
                }
                sys::rename_at(dfd, t, dfd, name)
            }
            None => match copy::link_tmpfile(ofd, dfd, name) {
                Ok(()) => {
                    op.sh.tmpfile.store(1, Ordering::Relaxed);
                    Ok(())
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    // The name appeared meanwhile: replace it atomically.
                    let t = copy::temp_name();
                    copy::link_tmpfile(ofd, dfd, &t)?;
                    sys::rename_at(dfd, &t, dfd, name).inspect_err(|_| {
                        let _ = sys::unlink_at(dfd, &t);
                    })
                }
                Err(e) => Err(e),
            },
        });
        drop(out);
        if let Err(e) = res {
            discard(&tmp);
            if tmp.is_none() && !is_fatal(&e) && op.sh.tmpfile.load(Ordering::Relaxed) == 0 {
                // Unnamed files cannot be linked here (no /proc, no
                // capability): do it again with a named temporary.
                op.sh.tmpfile.store(2, Ordering::Relaxed);
                continue;
            }
            op.fail("cannot copy", sp, e);
            return;
        }
        inc(&op.counters.copied, 1);
        inc(&op.counters.bytes, n);
        inc(&op.sh.progress.copied, 1);
        inc(&op.sh.progress.bytes, n);
        op.event(Event::Copied { src: &sp, dst: &dp });
        return;
    }
    op.fail(
        "not copied",
        sp,
        io::Error::other(format!(
            "the file kept changing during the copy ({} attempts)",
            COPY_RETRIES + 1
        )),
    );
}

/// A validated SRC/DST pair and the options to sync it with.
pub struct Syncer {
    sh: Arc<Shared>,
    /// DST was created by `new`: its first sync does not report fixing
    /// its attributes.
    fresh_dst: AtomicBool,
    src_fd: Arc<OwnedFd>,
    dst_fd: Option<Arc<OwnedFd>>,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// (dev, ino) of a descriptor.
fn ident(fd: RawFd) -> io::Result<(u32, u32, u64)> {
    let m = stat::Statx.stat_fd(fd)?;
    Ok((m.dev.0, m.dev.1, m.ino))
}

/// Whether the directory `target` is `start` or one of its ancestors,
/// following `..` from `start` up to `/` (catches nesting through
/// symlinks or different spellings of the same path).
fn has_ancestor(start: &Path, target: (u32, u32, u64)) -> io::Result<bool> {
    let mut fd = sys::open_root(start)?;
    loop {
        let me = ident(fd.as_raw_fd())?;
        if me == target {
            return Ok(true);
        }
        let parent = {
            // SAFETY: "..\0" is NUL-terminated; fresh descriptor on success.
            let r = unsafe {
                libc::openat(
                    fd.as_raw_fd(),
                    c"..".as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fresh descriptor owned by nobody else.
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r) }
        };
        if ident(parent.as_raw_fd())? == me {
            return Ok(false);
        }
        fd = parent;
    }
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
        sys::raise_nofile_limit();
        let sm = std::fs::metadata(src).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                Error::at("source directory", src, invalid("does not exist"))
            }
            _ => Error::at("cannot access source directory", src, e),
        })?;
        if !sm.is_dir() {
            return Err(Error::at("source", src, invalid("is not a directory")));
        }
        let excludes = Excludes::new(&options.excludes)
            .map_err(|m| Error::new("bad --exclude pattern", invalid(m)))?;
        let src_fd = sys::open_root(src).map_err(|e| Error::at("cannot open", src, e))?;
        let src_id = ident(src_fd.as_raw_fd()).map_err(|e| Error::at("cannot stat", src, e))?;
        // DST may not exist yet: check its nearest existing ancestor.
        let dst_exists = match std::fs::symlink_metadata(dst) {
            Ok(_) => match std::fs::metadata(dst) {
                Ok(m) if m.is_dir() => true,
                Ok(_) => {
                    return Err(Error::at(
                        "destination",
                        dst,
                        invalid("exists and is not a directory"),
                    ))
                }
                Err(e) => return Err(Error::at("cannot access destination", dst, e)),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::at("cannot access destination", dst, e)),
        };
        let dst_anchor: PathBuf = if dst_exists {
            dst.to_path_buf()
        } else {
            let parent = match dst.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !parent.is_dir() {
                return Err(Error::at(
                    "destination",
                    dst,
                    invalid("its parent directory does not exist"),
                ));
            }
            parent
        };
        if dst_exists {
            let dfd = sys::open_root(dst).map_err(|e| Error::at("cannot open", dst, e))?;
            let did = ident(dfd.as_raw_fd()).map_err(|e| Error::at("cannot stat", dst, e))?;
            if did == src_id {
                return Err(Error::at(
                    "refusing to sync",
                    dst,
                    invalid("source and destination are the same directory"),
                ));
            }
            if has_ancestor(src, did).map_err(|e| Error::at("cannot check", src, e))? {
                return Err(Error::at(
                    "refusing to sync",
                    src,
                    invalid("the source is inside the destination"),
                ));
            }
        }
        if has_ancestor(&dst_anchor, src_id).map_err(|e| Error::at("cannot check", dst, e))? {
            return Err(Error::at(
                "refusing to sync",
                dst,
                invalid("the destination is inside the source"),
            ));
        }
        let backend = stat::select(options.stat_backend, &stat::sysfs_dir()).map_err(|m| {
            Error::new(
                "--stat-backend syscall",
                io::Error::new(io::ErrorKind::Unsupported, m),
            )
        })?;
        let dst_fd = if dst_exists {
            Some(sys::open_root(dst).map_err(|e| Error::at("cannot open", dst, e))?)
        } else if options.dry_run {
            reporter.event(&Event::CreatedDir { path: dst });
            None
        } else {
            match std::fs::create_dir(dst) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::at("cannot create destination", dst, e)),
            }
            reporter.event(&Event::CreatedDir { path: dst });
            Some(sys::open_root(dst).map_err(|e| Error::at("cannot open", dst, e))?)
        };
        let threads = std::env::var("DIRSYNC_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
            .clamp(1, 64);
        let sh = Shared {
            src_root: src.to_path_buf(),
            dst_root: dst.to_path_buf(),
            opts: options,
            excludes,
            backend,
            reporter,
            is_root: sys::euid() == 0,
            progress: Progress::default(),
            threads,
            tmpfile: std::sync::atomic::AtomicU8::new(0),
        };
        Ok(Syncer {
            sh: Arc::new(sh),
            fresh_dst: AtomicBool::new(!dst_exists),
            src_fd: Arc::new(src_fd),
            dst_fd: dst_fd.map(Arc::new),
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

    fn new_op(&self) -> Arc<Op> {
        Arc::new(Op {
            sh: self.sh.clone(),
            counters: Counters::default(),
            fatal: Mutex::new(None),
            aborted: AtomicBool::new(false),
        })
    }

    fn end_op(op: Arc<Op>) -> Result<Summary> {
        let f = match op.fatal.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        match f {
            Some(e) => Err(e),
            None => Ok(op.counters.summary()),
        }
    }

    fn dup(fd: &OwnedFd) -> io::Result<OwnedFd> {
        fd.try_clone()
    }

    /// Opens `.` of `fd` anew: the same directory with a read offset of its
    /// own. The root node lists its directories, and a `dup` would share
    /// the offset: a second listing would start at the end and see nothing.
    fn reopen(fd: &OwnedFd) -> io::Result<OwnedFd> {
        sys::open_dir_at(fd.as_raw_fd(), c".")
    }

    /// The node of the roots.
    fn root_node(&self, op: &Arc<Op>) -> Result<DirNode> {
        let src = Self::reopen(&self.src_fd)
            .map_err(|e| Error::at("cannot reopen", &self.sh.src_root, e))?;
        let src_meta = self
            .sh
            .backend
            .stat_fd(src.as_raw_fd())
            .map_err(|e| Error::at("cannot stat", &self.sh.src_root, e))?;
        let (dst, dst_meta) = match &self.dst_fd {
            Some(fd) => {
                let d = Self::reopen(fd)
                    .map_err(|e| Error::at("cannot reopen", &self.sh.dst_root, e))?;
                let m = self
                    .sh
                    .backend
                    .stat_fd(d.as_raw_fd())
                    .map_err(|e| Error::at("cannot stat", &self.sh.dst_root, e))?;
                let fresh = self.fresh_dst.swap(false, Ordering::Relaxed);
                (Some(d), if fresh { None } else { Some(m) })
            }
            None => (None, None),
        };
        Ok(DirNode {
            op: op.clone(),
            src,
            dst,
            rel: PathBuf::new(),
            src_meta,
            dst_meta,
            dirty: AtomicBool::new(false),
            made_writable: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            parent: None,
            finished: false,
        })
    }

    /// Makes the whole of DST equal to SRC.
    pub fn sync_all(&self) -> Result<Summary> {
        let op = self.new_op();
        let root = self.root_node(&op)?;
        execute(&op, vec![Job::Contents(Arc::new(root))], self.sh.threads);
        Self::end_op(op)
    }

    /// Splits a relative path into components; rejects `..`, absolute
    /// paths and NUL bytes.
    fn components(rel: &Path) -> Result<Vec<CString>> {
        let mut out = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(n) => out.push(
                    CString::new(n.as_bytes())
                        .map_err(|_| Error::at("bad path", rel, invalid("contains a NUL byte")))?,
                ),
                Component::CurDir => {}
                _ => {
                    return Err(Error::at(
                        "bad path",
                        rel,
                        invalid("must be relative to the synced directory, without '..'"),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// Walks (creating in DST where missing) the directories leading to
    /// the last component of `comps`. Returns the parent node and the last
    /// name, or `None` when SRC lacks one of the parents: then the deepest
    /// existing pair and the first missing name are returned instead, so
    /// converging that entry removes what DST has there.
    fn walk_to_parent(&self, op: &Arc<Op>, comps: &[CString]) -> Result<(Arc<DirNode>, CString)> {
        let mut node = Arc::new(self.root_node(op)?);
        let last = comps.len() - 1;
        for (i, name) in comps.iter().enumerate() {
            if i == last {
                return Ok((node, name.clone()));
            }
            let rel = sys::join(&node.rel, name);
            let s = self
                .sh
                .backend
                .stat_at(node.src.as_raw_fd(), name)
                .map_err(|e| Error::at("cannot stat", op.src_path(&rel), e))?;
            let s = match s {
                Some(m) if m.kind == Kind::Dir => m,
                _ => return Ok((node, name.clone())),
            };
            let dfd = match node.dst_fd() {
                Some(fd) => fd,
                None => return Ok((node, name.clone())),
            };
            let d = self
                .sh
                .backend
                .stat_at(dfd, name)
                .map_err(|e| Error::at("cannot stat", op.dst_path(&rel), e))?;
            let dst_meta = match d {
                Some(m) if m.kind == Kind::Dir => Some(m),
                _ if self.sh.opts.dry_run => return Ok((node, name.clone())),
                other => {
                    if other.is_some() {
                        node.prepare_write();
                        let n = copy::remove_tree(dfd, name, self.sh.is_root)
                            .map_err(|e| Error::at("cannot delete", op.dst_path(&rel), e))?;
                        inc(&op.counters.deleted, n);
                        let p = op.dst_path(&rel);
                        op.event(Event::Deleted { path: &p });
                    }
                    node.prepare_write();
                    sys::mkdir_at(dfd, name, 0o700)
                        .map_err(|e| Error::at("cannot create directory", op.dst_path(&rel), e))?;
                    inc(&op.counters.dirs_created, 1);
                    let p = op.dst_path(&rel);
                    op.event(Event::CreatedDir { path: &p });
                    None
                }
            };
            let src = sys::open_dir_at(node.src.as_raw_fd(), name)
                .map_err(|e| Error::at("cannot open directory", op.src_path(&rel), e))?;
            let dst = sys::open_dir_at(dfd, name)
                .map_err(|e| Error::at("cannot open directory", op.dst_path(&rel), e))?;
            node = Arc::new(DirNode {
                op: op.clone(),
                src,
                dst: Some(dst),
                rel,
                src_meta: s,
                dst_meta,
                dirty: AtomicBool::new(false),
                made_writable: AtomicBool::new(false),
                failed: AtomicBool::new(false),
                parent: Some(node),
                finished: false,
            });
        }
        unreachable!("comps is not empty")
    }

    /// Makes `DST/rel` equal to `SRC/rel` (see the module docs).
    pub fn sync_path(&self, rel: &Path) -> Result<Summary> {
        let comps = Self::components(rel)?;
        if comps.is_empty() {
            return self.sync_all();
        }
        let op = self.new_op();
        // An excluded path (or one below an excluded directory) is left alone.
        let mut prefix = PathBuf::new();
        for (i, c) in comps.iter().enumerate() {
            prefix.push(OsStr::from_bytes(c.as_bytes()));
            let is_last = i == comps.len() - 1;
            if !self.sh.excludes.is_empty()
                && excluded(&op, &prefix, true)
                && (!is_last || excluded(&op, &prefix, false))
            {
                return Ok(Summary::default());
            }
        }
        if self.sh.opts.no_recursive && comps.len() > 1 {
            return Ok(Summary::default());
        }
        let (parent, name) = self.walk_to_parent(&op, &comps)?;
        // One file or link: no helper threads to start (the watcher calls
        // this for every event); a directory gets all of them.
        let is_dir = matches!(
            self.sh.backend.stat_at(parent.src.as_raw_fd(), &name),
            Ok(Some(Meta {
                kind: Kind::Dir,
                ..
            }))
        );
        let threads = if is_dir { self.sh.threads } else { 1 };
        execute(&op, vec![Job::Entry { dir: parent, name }], threads);
        Self::end_op(op)
    }

    /// Re-applies mode and mtime of `SRC/rel` to `DST/rel`.
    pub fn sync_attrs(&self, rel: &Path) -> Result<Summary> {
        let comps = Self::components(rel)?;
        if comps.is_empty() {
            let op = self.new_op();
            let root = self.root_node(&op)?;
            root.dirty.store(true, Ordering::Relaxed);
            drop(root);
            return Self::end_op(op);
        }
        // Open the parents without creating anything; anything unexpected
        // falls back to a full sync of the path.
        let mut src =
            Self::dup(&self.src_fd).map_err(|e| Error::at("cannot dup", &self.sh.src_root, e))?;
        let mut dst = match &self.dst_fd {
            Some(fd) => Self::dup(fd).map_err(|e| Error::at("cannot dup", &self.sh.dst_root, e))?,
            None => return self.sync_path(rel),
        };
        let last = comps.len() - 1;
        for name in &comps[..last] {
            match (
                sys::open_dir_at(src.as_raw_fd(), name),
                sys::open_dir_at(dst.as_raw_fd(), name),
            ) {
                (Ok(s), Ok(d)) => {
                    src = s;
                    dst = d;
                }
                _ => return self.sync_path(rel),
            }
        }
        let name = &comps[last];
        let b = &self.sh.backend;
        let (s, d) = match (
            b.stat_at(src.as_raw_fd(), name),
            b.stat_at(dst.as_raw_fd(), name),
        ) {
            (Ok(Some(s)), Ok(Some(d))) => (s, d),
            _ => return self.sync_path(rel),
        };
        if s.kind != d.kind || matches!(s.kind, Kind::Special(_)) {
            return self.sync_path(rel);
        }
        if s.kind == Kind::File && s.size != d.size {
            return self.sync_path(rel);
        }
        let op = self.new_op();
        let node = DirNode {
            op: op.clone(),
            src,
            dst: Some(dst),
            rel: rel.parent().map(Path::to_path_buf).unwrap_or_default(),
            src_meta: s,
            dst_meta: None,
            dirty: AtomicBool::new(false),
            made_writable: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            parent: None,
            // Only used as a handle on the two directories here.
            finished: true,
        };
        if s.kind == Kind::Dir {
            let child_rel = sys::join(&node.rel, name);
            let dst_fd = node.dst_fd().expect("set above");
            let p = op.dst_path(&child_rel);
            if s.perm != d.perm || !s.same_mtime(&d) {
                let res = sys::open_dir_at(dst_fd, name).and_then(|fd| {
                    if s.perm != d.perm {
                        sys::chmod_fd(fd.as_raw_fd(), s.perm)?;
                    }
                    if !s.same_mtime(&d) {
                        sys::set_mtime_fd(fd.as_raw_fd(), s.mtime, s.mtime_nsec)?;
                    }
                    Ok(())
                });
                match res {
                    Ok(()) => {
                        inc(&op.counters.attrs, 1);
                        op.event(Event::Attrs { path: &p });
                    }
                    Err(e) => op.fail("cannot set attributes", p, e),
                }
            }
        } else {
            let child_rel = sys::join(&node.rel, name);
            fix_attrs(&op, &node, name, &child_rel, s, d);
        }
        drop(node);
        Self::end_op(op)
    }

    /// Renames `DST/from` to `DST/to` inside DST, then converges `to`.
    pub fn rename(&self, from: &Path, to: &Path) -> Result<Summary> {
        let fc = Self::components(from)?;
        let tc = Self::components(to)?;
        let mut total = Summary::default();
        let renamed = if fc.is_empty() || tc.is_empty() || self.sh.opts.dry_run {
            false
        } else {
            self.try_rename(&fc, &tc, from, to)?
        };
        if renamed {
            total.renamed += 1;
        }
        total.add(&self.sync_path(from)?);
        total.add(&self.sync_path(to)?);
        Ok(total)
    }

    /// The `renameat` part of [`Syncer::rename`]; `Ok(false)` when DST has
    /// nothing to rename or a parent of `to` is missing (the caller then
    /// converges both paths by copying).
    fn try_rename(&self, fc: &[CString], tc: &[CString], from: &Path, to: &Path) -> Result<bool> {
        let Some(root) = &self.dst_fd else {
            return Ok(false);
        };
        let open_parent = |comps: &[CString]| -> Option<OwnedFd> {
            let mut fd = Self::dup(root).ok()?;
            for name in &comps[..comps.len() - 1] {
                fd = sys::open_dir_at(fd.as_raw_fd(), name).ok()?;
            }
            Some(fd)
        };
        let (Some(fp), Some(tp)) = (open_parent(fc), open_parent(tc)) else {
            return Ok(false);
        };
        let (fname, tname) = (&fc[fc.len() - 1], &tc[tc.len() - 1]);
        match self.sh.backend.stat_at(fp.as_raw_fd(), fname) {
            Ok(Some(_)) => {}
            _ => return Ok(false),
        }
        // Whatever DST has at `to` is replaced by the renamed entry; a
        // non-empty directory there must go first.
        if let Ok(Some(m)) = self.sh.backend.stat_at(tp.as_raw_fd(), tname) {
            if m.kind == Kind::Dir {
                let _ = copy::remove_tree(tp.as_raw_fd(), tname, self.sh.is_root);
            }
        }
        match sys::rename_at(fp.as_raw_fd(), fname, tp.as_raw_fd(), tname) {
            Ok(()) => {
                let (a, b) = (self.sh.dst_root.join(from), self.sh.dst_root.join(to));
                self.sh.reporter.event(&Event::Renamed { from: &a, to: &b });
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }
}

//! The two-tree walk: list a directory on both sides with every entry's
//! metadata (one listing backend, [`crate::stat::StatBackend::list`]:
//! `dirsync_readdir`, or `getdents64` and a stat per entry), merge the
//! sorted listings, decide
//! ([`decide`]) and act ([`super::install`]); subdirectories and batches of
//! files become tasks of the [pool](super::pool).

use std::cmp::Ordering as Cmp;
use std::ffi::{CStr, CString};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::decide::{decide, Action};
use super::install::{self, FileWork};
use super::node::{DirNode, Run};
use super::pool::Spawner;
use crate::report::{inc, Event};
use crate::stat::{Entry, Kind, Meta};
use crate::sys;

/// A batch of small files is handed to the pool at this many files...
const BATCH_FILES: usize = 64;
/// ... or this many bytes; a file at least this big is a task of its own.
const BATCH_BYTES: u64 = 4 << 20;

/// Small files waiting to become a task.
#[derive(Default)]
pub struct FileBatch {
    files: Vec<FileWork>,
    bytes: u64,
}

impl FileBatch {
    fn add(&mut self, sp: &Spawner<'_>, dir: &Arc<DirNode>, work: FileWork) {
        if work.src_meta.size >= BATCH_BYTES {
            spawn_files(sp, dir, vec![work]);
            return;
        }
        self.bytes += work.src_meta.size;
        self.files.push(work);
        if self.files.len() >= BATCH_FILES || self.bytes >= BATCH_BYTES {
            self.flush(sp, dir);
        }
    }

    /// Copies what is waiting here, in the current task (one entry of
    /// `sync_path`: no other thread to wake for it).
    fn run_here(&mut self, dir: &DirNode) {
        for f in std::mem::take(&mut self.files) {
            if dir.op.aborted() {
                return;
            }
            install::sync_file(&dir.op, dir, &f);
        }
        self.bytes = 0;
    }

    /// Queues what is waiting.
    pub fn flush(&mut self, sp: &Spawner<'_>, dir: &Arc<DirNode>) {
        if !self.files.is_empty() {
            spawn_files(sp, dir, std::mem::take(&mut self.files));
        }
        self.bytes = 0;
    }
}

/// Queues the copy (or comparison, with `--checksum`) of regular files of
/// one directory: small files go in batches (fewer queue operations), big
/// ones alone (so that every thread shares them).
fn spawn_files(sp: &Spawner<'_>, dir: &Arc<DirNode>, files: Vec<FileWork>) {
    let dir = dir.clone();
    sp.spawn(move |_| {
        for f in &files {
            if dir.op.aborted() {
                return;
            }
            install::sync_file(&dir.op, &dir, f);
        }
    });
}

/// A task syncing the contents of `node`.
pub fn contents_task(node: Arc<DirNode>) -> super::pool::Task {
    Box::new(move |sp| {
        if !node.op.aborted() {
            sync_contents(sp, node)
        }
    })
}

/// Queues: open the child directory `name` of `parent` (create it in DST
/// when `dst_meta` is `None`, first removing what DST has there when
/// `replace`) and sync its contents. Creating waits until the SRC
/// directory is open: an unreadable directory leaves DST untouched.
fn spawn_subdir(
    sp: &Spawner<'_>,
    parent: &Arc<DirNode>,
    name: &CStr,
    metas: (Meta, Option<Meta>),
    replace: bool,
) {
    let (parent, name) = (parent.clone(), name.to_owned());
    sp.spawn(move |sp| {
        if parent.op.aborted() {
            return;
        }
        if let Some(node) = open_subdir(&parent, &name, metas, replace) {
            sync_contents(sp, Arc::new(node));
        }
    });
}

/// Opens SRC/DST of a child directory and makes its node.
fn open_subdir(
    parent: &Arc<DirNode>,
    name: &CStr,
    metas: (Meta, Option<Meta>),
    replace: bool,
) -> Option<DirNode> {
    let op = &parent.op;
    let rel = parent.child(name);
    let src = match sys::open_dir_at(parent.src.as_fd(), name) {
        Ok(fd) => fd,
        Err(e) => {
            op.fail("cannot open directory", op.src_path(&rel), e);
            return None;
        }
    };
    let dry = op.sh.opts.dry_run;
    if metas.1.is_none() {
        if replace && !install::remove_entry(op, parent, name, &rel) {
            return None;
        }
        if !dry {
            let pdst = parent.dst.as_ref()?;
            parent.prepare_write();
            if let Err(e) = pdst.create_dir(name) {
                op.fail("cannot create directory", op.dst_path(&rel), e);
                return None;
            }
        }
        inc(&op.counters.dirs_created, 1);
        let p = op.dst_path(&rel);
        op.event(Event::CreatedDir { path: &p });
    }
    let dst = match &parent.dst {
        Some(pdst) if !(dry && metas.1.is_none()) => match pdst.open_dir(name) {
            Ok(d) => Some(d),
            Err(e) => {
                op.fail("cannot open directory", op.dst_path(&rel), e);
                return None;
            }
        },
        _ => None,
    };
    Some(DirNode::new(op, src, dst, rel, metas, Some(parent.clone())))
}

/// One name of the merged listings: its entry on each side.
struct Merged {
    src: Option<Entry>,
    dst: Option<Entry>,
}

/// Walks two listings sorted by name in step.
fn merge(src: Vec<Entry>, dst: Vec<Entry>) -> impl Iterator<Item = Merged> {
    let (mut src, mut dst) = (src.into_iter().peekable(), dst.into_iter().peekable());
    std::iter::from_fn(move || {
        let ord = match (src.peek(), dst.peek()) {
            (Some(a), Some(b)) => a.name.cmp(&b.name),
            (Some(_), None) => Cmp::Less,
            (None, Some(_)) => Cmp::Greater,
            (None, None) => return None,
        };
        Some(Merged {
            src: if ord != Cmp::Greater {
                src.next()
            } else {
                None
            },
            dst: if ord != Cmp::Less { dst.next() } else { None },
        })
    })
}

/// Both listings of a node with every entry's metadata (the stat
/// backend's [`list`](crate::stat::StatBackend::list) for SRC, the
/// replica's [`scan`](super::ReplicaDir::scan) for DST), sorted; `None`
/// (reported) when one fails.
fn listings(node: &DirNode) -> Option<(Vec<Entry>, Vec<Entry>)> {
    let op = &node.op;
    let fail = |p, e| {
        node.set_failed();
        op.fail("cannot read directory", p, e);
    };
    let ahead = (op.sh.src_prefetch.get())
        .and_then(|p| p.take(&node.rel, node.src.as_fd(), op.sh.backend.as_ref()));
    let mut src = match ahead.map_or_else(|| op.sh.backend.list(node.src.as_fd()), Ok) {
        Ok(v) => v,
        Err(e) => {
            fail(op.src_path(&node.rel), e);
            return None;
        }
    };
    let mut dst = match &node.dst {
        Some(d) => match d.scan() {
            Ok(v) => v,
            Err(e) => {
                fail(op.dst_path(&node.rel), e);
                return None;
            }
        },
        None => Vec::new(),
    };
    src.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    dst.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Some((src, dst))
}

/// Lists both sides of a directory and converges every entry.
fn sync_contents(sp: &Spawner<'_>, node: Arc<DirNode>) {
    let op = node.op.clone();
    let Some((src_entries, dst_entries)) = listings(&node) else {
        return;
    };
    inc(&op.sh.progress.scanned, src_entries.len() as u64);
    let mut batch = FileBatch::default();
    for m in merge(src_entries, dst_entries) {
        if op.aborted() {
            return;
        }
        merged_entry(sp, &mut batch, &node, m);
    }
    batch.flush(sp, &node);
}

/// Stats `name` on the DST side; `Err(())` when that failed (reported).
fn stat_dst(node: &DirNode, name: &CStr, rel: &Path) -> Result<Option<Meta>, ()> {
    let Some(dst) = &node.dst else {
        return Ok(None);
    };
    dst.stat(name).map_err(|e| {
        node.op.fail("cannot stat", node.op.dst_path(rel), e);
    })
}

/// The metadata of a listed entry; `Err(())` when it could not be
/// described (reported as "cannot stat" at `path`).
fn listed_meta(op: &Run, e: Entry, path: PathBuf) -> Result<Option<Meta>, ()> {
    e.meta.map_err(|err| op.fail("cannot stat", path, err))
}

/// An entry only DST has: deleted, unless excluded (or a directory with
/// `--no-recursive`); its type from `d_type`, else from its metadata.
fn dst_only(node: &Arc<DirNode>, e: Entry) {
    let (op, rel) = (&node.op, node.child(&e.name));
    if op.sh.opts.no_delete {
        return;
    }
    let top_only = op.sh.opts.no_recursive;
    if top_only || !op.sh.excludes.is_empty() {
        let is_dir = match e.d_type {
            libc::DT_DIR => true,
            libc::DT_UNKNOWN => match &e.meta {
                Ok(Some(d)) => d.kind == Kind::Dir,
                Ok(None) => return,
                Err(_) => {
                    let _ = listed_meta(op, e, op.dst_path(&rel));
                    return;
                }
            },
            _ => false,
        };
        if op.sh.excluded(&rel, is_dir) || (top_only && is_dir) {
            return;
        }
    }
    install::remove_entry(op, node, &e.name, &rel);
}

/// One entry of [`sync_contents`].
fn merged_entry(sp: &Spawner<'_>, batch: &mut FileBatch, node: &Arc<DirNode>, m: Merged) {
    let op = &node.op;
    let Some(se) = m.src else {
        if let Some(de) = m.dst {
            dst_only(node, de);
        }
        return;
    };
    let name = se.name.clone();
    let rel = node.child(&name);
    // Unknown: leave DST's entry alone.
    let Ok(s) = listed_meta(op, se, op.src_path(&rel)) else {
        return;
    };
    let top_only = op.sh.opts.no_recursive;
    if let Some(s) = s {
        if op.sh.excluded(&rel, s.kind == Kind::Dir) || (top_only && s.kind == Kind::Dir) {
            return;
        }
    }
    let d = match m.dst {
        Some(de) => match listed_meta(op, de, op.dst_path(&rel)) {
            Ok(d) => d,
            Err(()) => return,
        },
        None => None,
    };
    converge(sp, batch, node, &name, s, d);
}

/// Makes DST's entry `name` in `dir` equal to SRC's (`s`, `d`: their
/// metadata, `None` when absent).
pub fn converge(
    sp: &Spawner<'_>,
    batch: &mut FileBatch,
    dir: &Arc<DirNode>,
    name: &CStr,
    s: Option<Meta>,
    d: Option<Meta>,
) {
    let op = &dir.op;
    let rel = dir.child(name);
    let strong = d.is_some() || dir.dst_meta.is_none();
    if super::hardlink::defer(op, &rel, (s.as_ref(), d.as_ref()), strong) {
        return;
    }
    match decide(s.as_ref(), d.as_ref(), &op.sh.opts) {
        Action::Nothing => {}
        Action::Remove => {
            install::remove_entry(op, dir, name, &rel);
        }
        Action::Skip { remove } => {
            inc(&op.counters.skipped, 1);
            let msg = match s {
                Some(m) if m.kind == Kind::File => "larger than --max-size, not copied".into(),
                m => format!(
                    "{} not copied",
                    m.map_or("special file", |m| m.kind.describe())
                ),
            };
            op.event(Event::Skipped {
                path: &op.src_path(&rel),
                message: &msg,
            });
            if remove {
                install::remove_entry(op, dir, name, &rel);
            }
        }
        Action::Special => install::sync_special(op, dir, name, &rel, s.expect("in SRC"), d),
        Action::Symlink => install::sync_symlink(op, dir, name, &rel, s.expect("in SRC"), d),
        Action::FixAttrs => {
            let (s, d) = (s.expect("in SRC"), d.expect("in DST"));
            super::hardlink::settled(op, &rel, &s, &d);
            install::fix_attrs(op, dir.dst.as_deref(), dir.src.as_fd(), name, &rel, (s, d));
        }
        Action::Copy { compare_first } => {
            let work = FileWork {
                name: name.to_owned(),
                src_meta: s.expect("in SRC"),
                dst_meta: d,
                compare_first,
            };
            batch.add(sp, dir, work);
        }
        Action::Dir { create, replace } => {
            let dst_meta = if create { None } else { d };
            if let (false, Some(dst)) = (create, &dir.dst) {
                dst.prefetch(name);
            }
            spawn_subdir(sp, dir, name, (s.expect("in SRC"), dst_meta), replace);
        }
    }
}

/// A task converging the one entry `name` of `dir` (for `sync_path`).
pub fn entry_task(dir: Arc<DirNode>, name: CString) -> super::pool::Task {
    Box::new(move |sp| {
        let op = dir.op.clone();
        let rel = dir.child(&name);
        let s = match op.sh.backend.stat_at(dir.src.as_fd(), &name) {
            Ok(s) => s,
            Err(e) => {
                op.fail("cannot stat", op.src_path(&rel), e);
                return;
            }
        };
        let Ok(d) = stat_dst(&dir, &name, &rel) else {
            return;
        };
        let s = s.filter(|m| !op.sh.excluded(&rel, m.kind == Kind::Dir));
        let d_excluded = d.is_some_and(|m| op.sh.excluded(&rel, m.kind == Kind::Dir));
        if s.is_none() && d_excluded {
            return;
        }
        if op.sh.opts.no_recursive && !dir.rel.as_os_str().is_empty() {
            return;
        }
        let mut batch = FileBatch::default();
        converge(sp, &mut batch, &dir, &name, s, d);
        batch.run_here(&dir);
    })
}

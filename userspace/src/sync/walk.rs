//! The two-tree walk: list a directory on both sides, merge the sorted
//! listings, stat each entry relative to the directory handles, decide
//! ([`decide`]) and act ([`super::install`]); subdirectories and batches of
//! files become tasks of the [pool](super::pool).

use std::cmp::Ordering as Cmp;
use std::ffi::{CStr, CString};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;

use super::decide::{decide, Action};
use super::install::{self, FileWork};
use super::node::DirNode;
use super::pool::Spawner;
use crate::report::{inc, Event};
use crate::stat::{Kind, Meta};
use crate::sys::{self, DirEntry};

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

/// One name of the merged listings.
struct Merged<'a> {
    name: &'a CString,
    in_src: bool,
    in_dst: bool,
    d_type: u8,
}

/// Walks two listings sorted by name in step.
fn merge<'a>(src: &'a [DirEntry], dst: &'a [DirEntry]) -> impl Iterator<Item = Merged<'a>> {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let ord = match (src.get(i), dst.get(j)) {
            (Some(a), Some(b)) => a.name.cmp(&b.name),
            (Some(_), None) => Cmp::Less,
            (None, Some(_)) => Cmp::Greater,
            (None, None) => return None,
        };
        let (e, in_src, in_dst) = match ord {
            Cmp::Less => (&src[i], true, false),
            Cmp::Greater => (&dst[j], false, true),
            Cmp::Equal => (&src[i], true, true),
        };
        i += usize::from(in_src);
        j += usize::from(in_dst);
        Some(Merged {
            name: &e.name,
            in_src,
            in_dst,
            d_type: e.d_type,
        })
    })
}

/// Both listings of a node, sorted; `None` (reported) when one fails.
fn listings(node: &DirNode) -> Option<(Vec<DirEntry>, Vec<DirEntry>)> {
    let op = &node.op;
    let fail = |p, e| {
        node.set_failed();
        op.fail("cannot read directory", p, e);
    };
    let mut src = match sys::read_dir(node.src.as_fd()) {
        Ok(v) => v,
        Err(e) => {
            fail(op.src_path(&node.rel), e);
            return None;
        }
    };
    let mut dst = match &node.dst {
        Some(d) => match d.list() {
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
    for m in merge(&src_entries, &dst_entries) {
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

/// One entry of [`sync_contents`].
fn merged_entry(sp: &Spawner<'_>, batch: &mut FileBatch, node: &Arc<DirNode>, m: Merged<'_>) {
    let (op, name) = (&node.op, m.name.as_c_str());
    let rel = node.child(name);
    let top_only = op.sh.opts.no_recursive;
    if !m.in_src {
        // Only in DST: deleted, without a stat when nothing needs its
        // type (getdents' d_type answers that otherwise).
        if op.sh.opts.no_delete {
            return;
        }
        if top_only || !op.sh.excludes.is_empty() {
            let is_dir = match m.d_type {
                libc::DT_DIR => true,
                libc::DT_UNKNOWN => match stat_dst(node, name, &rel) {
                    Ok(Some(d)) => d.kind == Kind::Dir,
                    _ => return,
                },
                _ => false,
            };
            if op.sh.excluded(&rel, is_dir) || (top_only && is_dir) {
                return;
            }
        }
        install::remove_entry(op, node, name, &rel);
        return;
    }
    let s = match op.sh.backend.stat_at(node.src.as_fd(), name) {
        Ok(s) => s,
        Err(e) => {
            // Unknown: leave DST's entry alone.
            op.fail("cannot stat", op.src_path(&rel), e);
            return;
        }
    };
    if let Some(s) = s {
        if op.sh.excluded(&rel, s.kind == Kind::Dir) || (top_only && s.kind == Kind::Dir) {
            return;
        }
    }
    let d = if m.in_dst {
        match stat_dst(node, name, &rel) {
            Ok(d) => d,
            Err(()) => return,
        }
    } else {
        None
    };
    converge(sp, batch, node, name, s, d);
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
            let kind = s.map_or("special file", |m| m.kind.describe());
            let msg = format!("{kind} not copied");
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

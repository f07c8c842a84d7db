//! One pass over a tree: every entry below the root (files, directories,
//! symlinks) with its state, through the engine's metadata backend (one
//! `dirsync_readdir` per directory where the kernel has it), descending
//! with dirfd-relative `O_NOFOLLOW` opens.
//!
//! What cannot be read is not "gone": a directory that cannot be listed,
//! an entry that cannot be described and a special file are put in
//! [`Tree::skipped`], and the engine leaves those paths (and what is
//! below them) alone on both sides. Temporaries of an interrupted run
//! (`copy::TMP_PREFIX`) are listed in [`Tree::leftovers`] for removal.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::reconcile::{State, Type};
use crate::exclude::Excludes;
use crate::report::{Event, Reporter};
use crate::stat::{Kind, Meta, StatBackend};
use crate::sys;

/// A scanned tree.
#[derive(Debug, Default)]
pub struct Tree {
    /// Every entry, by path bytes relative to the root.
    pub entries: BTreeMap<Vec<u8>, State>,
    /// Paths to leave alone (unreadable, undescribable, special).
    pub skipped: Vec<Vec<u8>>,
    /// Temporaries left by an interrupted run.
    pub leftovers: Vec<Vec<u8>>,
}

/// Joins a relative directory and a name with `/`.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    if !dir.is_empty() {
        p.extend_from_slice(dir);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The nanoseconds of a mtime.
pub fn mtime_ns(m: &Meta) -> i64 {
    m.mtime
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(m.mtime_nsec))
}

/// The state of an entry from its metadata (`target` for symlinks);
/// `None` for special files.
pub fn state_of(m: &Meta, target: Vec<u8>) -> Option<State> {
    let kind = match m.kind {
        Kind::File => Type::File,
        Kind::Dir => Type::Dir,
        Kind::Symlink => Type::Symlink,
        Kind::Special(_) => return None,
    };
    Some(State {
        kind,
        size: if kind == Type::File { m.size } else { 0 },
        mtime: mtime_ns(m),
        perm: if kind == Type::Symlink {
            0
        } else {
            m.perm & 0o7777
        },
        ino: m.ino,
        target,
        attrs: 0,
        ctime: 0,
    })
}

/// Scans the tree open at `root` (shown as `shown` in events).
pub fn scan(
    root: BorrowedFd<'_>,
    shown: &Path,
    backend: &dyn StatBackend,
    ex: &Excludes,
    rep: &dyn Reporter,
) -> Tree {
    match sys::open_dir_at(root, c".") {
        Ok(fd) => scan_below(vec![(Vec::new(), fd)], shown, backend, ex, rep),
        Err(e) => {
            let msg = format!("cannot list: {e}");
            rep.event(&Event::Error {
                path: shown,
                message: &msg,
            });
            Tree {
                skipped: vec![Vec::new()],
                ..Tree::default()
            }
        }
    }
}

/// Scans what is below each of the open directories of `stack` (their
/// paths relative to the root beside them; the directories themselves
/// are not entries of the result).
pub fn scan_below(
    mut stack: Vec<(Vec<u8>, OwnedFd)>,
    shown: &Path,
    backend: &dyn StatBackend,
    ex: &Excludes,
    rep: &dyn Reporter,
) -> Tree {
    let mut tree = Tree::default();
    // Collected, then sorted once: a BTreeMap built from sorted entries
    // is bulk-loaded (no per-insert search).
    let mut all: Vec<(Vec<u8>, State)> = Vec::new();
    let shown_of = |rel: &[u8]| shown.join(std::ffi::OsStr::from_bytes(rel));
    while let Some((rel, fd)) = stack.pop() {
        let list = match backend.list(fd.as_fd()) {
            Ok(l) => l,
            Err(e) => {
                let msg = format!("cannot list: {e}");
                rep.event(&Event::Error {
                    path: &shown_of(&rel),
                    message: &msg,
                });
                tree.skipped.push(rel);
                continue;
            }
        };
        for entry in list {
            let name = entry.name.as_bytes();
            let path = join(&rel, name);
            if name.starts_with(crate::copy::TMP_PREFIX.as_bytes()) {
                tree.leftovers.push(path);
                continue;
            }
            let meta = match entry.meta {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => {
                    let msg = format!("cannot stat: {e}");
                    rep.event(&Event::Error {
                        path: &shown_of(&path),
                        message: &msg,
                    });
                    tree.skipped.push(path);
                    continue;
                }
            };
            let is_dir = meta.kind == Kind::Dir;
            if ex.is_excluded(&path, name, is_dir) {
                continue;
            }
            let target = if meta.kind == Kind::Symlink {
                match sys::readlink_at(fd.as_fd(), &entry.name) {
                    Ok(t) => t,
                    Err(e) => {
                        let msg = format!("cannot read link: {e}");
                        rep.event(&Event::Error {
                            path: &shown_of(&path),
                            message: &msg,
                        });
                        tree.skipped.push(path);
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            let Some(state) = state_of(&meta, target) else {
                rep.event(&Event::Skipped {
                    path: &shown_of(&path),
                    message: "special files are not synced two-way",
                });
                tree.skipped.push(path);
                continue;
            };
            if is_dir {
                match sys::open_dir_at(fd.as_fd(), &entry.name) {
                    Ok(sub) => stack.push((path.clone(), sub)),
                    Err(e) => {
                        let msg = format!("cannot open: {e}");
                        rep.event(&Event::Error {
                            path: &shown_of(&path),
                            message: &msg,
                        });
                        tree.skipped.push(path);
                        continue;
                    }
                }
            }
            all.push((path, state));
        }
    }
    all.sort_unstable_by(|x, y| x.0.cmp(&y.0));
    tree.entries = all.into_iter().collect();
    tree
}

/// Whether `path` is `prefix` or below it.
pub fn under(path: &[u8], prefix: &[u8]) -> bool {
    prefix.is_empty()
        || (path.starts_with(prefix) && (path.len() == prefix.len() || path[prefix.len()] == b'/'))
}

/// A path's name as a C string (paths come from listings: no NUL).
pub fn cname(name: &[u8]) -> std::ffi::CString {
    std::ffi::CString::new(name).unwrap_or_else(|_| c"?".to_owned())
}

/// The directory part and the last component of a relative path.
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&c| c == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

/// Unused-name check helper: whether `name` exists in `dir`.
pub fn exists_at(dir: BorrowedFd<'_>, name: &CStr) -> bool {
    !matches!(crate::stat::Statx.stat_at(dir, name), Ok(None))
}

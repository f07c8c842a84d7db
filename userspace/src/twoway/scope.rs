//! A two-way pass restricted to some paths (what `watch --two-way` runs
//! per event batch, see [`super::engine::run_scoped`]): the same plan and
//! apply as a whole run, over the paths that changed.
//!
//! What is decided about a path is decided with everything below it, and
//! with its parents known to exist: each path is first widened to its
//! highest ancestor that is not a directory on both sides ([`prepare`]),
//! so a directory deleted or replaced on one side is reconciled as a
//! whole (its archived children and the other side's whole subtree), as
//! in a full run. The remaining ancestors, directories on both sides, are
//! scanned (and archived) for themselves only.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::scan::{self, cname, join, under, Tree};
use crate::exclude::Excludes;
use crate::report::Reporter;
use crate::stat::{Kind, StatBackend};
use crate::sys;

/// The components of a relative path (empty ones, `.` and `..` dropped:
/// paths come from the watcher, relative to a root).
fn components(p: &[u8]) -> Vec<&[u8]> {
    p.split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b"." && *c != b"..")
        .collect()
}

/// Sorted, without duplicates or paths below another of the list.
fn minimal(mut paths: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    paths.sort();
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(paths.len());
    for p in paths {
        if out.last().is_some_and(|q| under(&p, q)) {
            continue;
        }
        out.push(p);
    }
    out
}

/// The scope of a pass over `paths` on the roots open as `a` and `b`:
/// `None` when it is the whole tree (a path is the root itself, or one
/// was widened to it).
pub fn prepare(a: BorrowedFd<'_>, b: BorrowedFd<'_>, paths: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let comps = components(p);
        if comps.is_empty() {
            return None;
        }
        out.push(widen(a, b, &comps)?);
    }
    let out = minimal(out);
    (!out.is_empty()).then_some(out)
}

/// `comps` up to its first ancestor that is not a directory on `a` or on
/// `b` (itself when every ancestor is one on both); `None` when that is
/// the root.
fn widen(a: BorrowedFd<'_>, b: BorrowedFd<'_>, comps: &[&[u8]]) -> Option<Vec<u8>> {
    let mut da: Option<OwnedFd> = None;
    let mut db: Option<OwnedFd> = None;
    let mut path = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        path = join(&path, c);
        if i + 1 == comps.len() {
            break;
        }
        let name = CString::new(*c).ok()?;
        let na = sys::open_dir_at(da.as_ref().map_or(a, |d| d.as_fd()), &name);
        let nb = sys::open_dir_at(db.as_ref().map_or(b, |d| d.as_fd()), &name);
        match (na, nb) {
            (Ok(x), Ok(y)) => {
                da = Some(x);
                db = Some(y);
            }
            _ => return Some(path),
        }
    }
    Some(path)
}

/// Whether an archived path belongs to the scope: at or below one of
/// `paths`, or one of their ancestors.
pub fn in_scope(p: &[u8], paths: &[Vec<u8>]) -> bool {
    paths
        .iter()
        .any(|s| under(p, s) || (s.len() > p.len() && under(s, p)))
}

/// Scans the scope on one side: each ancestor of a path (by itself), the
/// path and everything below it. `None` when an ancestor is no longer a
/// directory (the tree changed since [`prepare`]: the caller runs a full
/// pass instead).
pub fn scan_scope(
    root: BorrowedFd<'_>,
    shown: &Path,
    backend: &dyn StatBackend,
    ex: &Excludes,
    rep: &dyn Reporter,
    paths: &[Vec<u8>],
) -> Option<Tree> {
    let mut tree = Tree::default();
    let mut stack: Vec<(Vec<u8>, OwnedFd)> = Vec::new();
    'paths: for p in paths {
        let comps = components(p);
        let mut dir: Option<OwnedFd> = None;
        let mut rel = Vec::new();
        let mut found = Vec::new();
        for (i, c) in comps.iter().enumerate() {
            let at = dir.as_ref().map_or(root, |d| d.as_fd());
            rel = join(&rel, c);
            let last = i + 1 == comps.len();
            if c.starts_with(crate::copy::TMP_PREFIX.as_bytes()) {
                continue 'paths;
            }
            let name = cname(c);
            let meta = match backend.stat_at(at, &name) {
                Ok(Some(m)) => m,
                Ok(None) if last => break,
                Ok(None) | Err(_) if !last => return None,
                Ok(None) => break,
                Err(_) => {
                    tree.skipped.push(rel.clone());
                    break;
                }
            };
            let is_dir = meta.kind == Kind::Dir;
            if !last && !is_dir {
                return None;
            }
            if ex.is_excluded(&rel, c, is_dir) {
                continue 'paths;
            }
            let target = if meta.kind == Kind::Symlink {
                match sys::readlink_at(at, &name) {
                    Ok(t) => t,
                    Err(_) => {
                        tree.skipped.push(rel.clone());
                        break;
                    }
                }
            } else {
                Vec::new()
            };
            let Some(state) = scan::state_of(&meta, target) else {
                tree.skipped.push(rel.clone());
                break;
            };
            found.push((rel.clone(), state));
            if is_dir {
                match sys::open_dir_at(at, &name) {
                    Ok(d) if last => stack.push((rel.clone(), d)),
                    Ok(d) => dir = Some(d),
                    Err(_) if last => {
                        found.pop();
                        tree.skipped.push(rel.clone());
                    }
                    Err(_) => return None,
                }
            }
        }
        tree.entries.extend(found);
    }
    let below = scan::scan_below(stack, shown, backend, ex, rep);
    tree.entries.extend(below.entries);
    tree.skipped.extend(below.skipped);
    tree.leftovers.extend(below.leftovers);
    Some(tree)
}

/// Whether the directory open as `root` has no entry at all.
pub fn is_empty(root: BorrowedFd<'_>) -> bool {
    // A descriptor of its own: reading moves the offset of the one read.
    sys::open_dir_at(root, c".")
        .and_then(|d| sys::read_dir(d.as_fd()))
        .is_ok_and(|l| l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_drops_paths_below_others() {
        let v = |s: &[&str]| s.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(
            minimal(v(&["a/b", "a", "ab", "c/d", "c/d/e", "a"])),
            v(&["a", "ab", "c/d"])
        );
    }

    #[test]
    fn ancestors_and_subtree_are_in_scope() {
        let s = vec![b"x/y".to_vec()];
        assert!(in_scope(b"x", &s));
        assert!(in_scope(b"x/y", &s));
        assert!(in_scope(b"x/y/z", &s));
        assert!(!in_scope(b"x/yz", &s));
        assert!(!in_scope(b"x/w", &s));
        assert!(!in_scope(b"w", &s));
    }
}

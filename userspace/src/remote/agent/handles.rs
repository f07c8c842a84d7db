//! The agent's table of directory handles, bounded by what a peer can
//! make it hold.
//!
//! A handle stores its directory's place in the tree as its name and its
//! parent's place ([`Place`], shared), never its whole path: a chain of
//! [`MAX_HANDLES`] nested opens of 255-byte names costs about 65,536 ×
//! 0.4 KiB = 26 MiB, not the sum of their path lengths. A path is built
//! only when needed (a note, an exclude check, a refusal) and capped at
//! [`PATH_CAP`] bytes.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::io;
use std::sync::Arc;

use super::policy::{Policy, Violation};
use crate::sync::local::{LocalDir, LocalReplica};

/// Most directory handles open at once (a peer asking for more breaks
/// the protocol): at most about 26 MiB with 255-byte names.
pub const MAX_HANDLES: usize = 1 << 16;
/// Most directories whose creation failed remembered at once (so that
/// opening them next fails quietly); the set is emptied when full
/// (at most an error reported twice): at most about 1 MiB.
pub const MAX_FAILED_CREATES: usize = 4096;
/// The longest path built from a place (64 KiB, sixteen times
/// `PATH_MAX`): longer ones are shown cut, and cannot be checked against
/// `--exclude` (a change there is refused when there are excludes).
pub const PATH_CAP: usize = 64 << 10;

/// Where a directory is: its name in its parent (`None`: the root).
pub struct Place {
    parent: Option<Arc<Place>>,
    name: CString,
}

impl Drop for Place {
    /// Drops the chain of parents in a loop: a deep chain must not
    /// recurse once per level.
    fn drop(&mut self) {
        let mut up = self.parent.take();
        while let Some(p) = up {
            match Arc::try_unwrap(p) {
                Ok(mut p) => up = p.parent.take(),
                Err(_) => break,
            }
        }
    }
}

/// The path (relative to the root) of `name` in the directory at `at`
/// (`name` `None`: the directory itself); `None` when longer than
/// [`PATH_CAP`].
pub fn path(at: Option<&Arc<Place>>, name: Option<&CStr>) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut len = 0;
    if let Some(n) = name {
        parts.push(n.to_bytes());
        len += n.to_bytes().len();
        if len > PATH_CAP {
            return None;
        }
    }
    let mut p = at;
    while let Some(place) = p {
        len += place.name.to_bytes().len() + 1;
        if len > PATH_CAP {
            return None;
        }
        parts.push(place.name.to_bytes());
        p = place.parent.as_ref();
    }
    let mut out = Vec::with_capacity(len);
    for (i, part) in parts.iter().rev().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    Some(out)
}

/// [`path`] for a message: a path too long is shown by its name alone
/// after `...`.
pub fn shown(at: Option<&Arc<Place>>, name: Option<&CStr>) -> Vec<u8> {
    path(at, name).unwrap_or_else(|| {
        let last = name
            .map(CStr::to_bytes)
            .or_else(|| at.map(|p| p.name.to_bytes()));
        [b".../".as_slice(), last.unwrap_or_default()].concat()
    })
}

/// An open directory, or one that could not be opened (`dir` `None`):
/// then the first operation on it reports the failure, unless `quiet`
/// (its creation failed, or its parent's opening: already reported), and
/// the others fail silently.
pub struct Handle {
    /// The directory.
    pub dir: Option<Arc<LocalDir>>,
    /// Where it is (`None`: the root).
    pub place: Option<Arc<Place>>,
    /// A failure to open it is not reported.
    pub quiet: bool,
    /// It is (or is below) a directory matching `--exclude`: nothing in
    /// it may change.
    pub excluded: bool,
}

impl Handle {
    /// The path of `name` in it (or of itself), for a message.
    pub fn shown(&self, name: Option<&CStr>) -> Vec<u8> {
        shown(self.place.as_ref(), name)
    }

    /// Whether `name` in it (a directory when `is_dir`; `None`: whether
    /// a directory or not, see [`Policy::excluded_any_type`]) may not
    /// change under `--exclude`. A path too long to check is refused.
    pub fn excluded(&self, p: &Policy, name: &CStr, is_dir: Option<bool>) -> bool {
        if self.excluded {
            return true;
        }
        if p.excludes.is_empty() {
            return false;
        }
        match path(self.place.as_ref(), Some(name)) {
            None => true,
            Some(rel) => match is_dir {
                Some(d) => p.excluded(&rel, d),
                None => p.excluded_any_type(&rel),
            },
        }
    }
}

/// The handles by number, and the directories whose creation failed.
#[derive(Default)]
pub struct Handles {
    map: HashMap<u32, Handle>,
    /// (handle, name) of directories whose creation failed (reported):
    /// opening them fails quietly. At most [`MAX_FAILED_CREATES`].
    failed_creates: HashSet<(u32, CString)>,
}

fn violation(what: &str) -> Violation {
    Violation(what.to_string())
}

impl Handles {
    /// Handle `id`.
    pub fn get(&self, id: u32) -> Result<&Handle, Violation> {
        self.map
            .get(&id)
            .ok_or_else(|| violation("unknown directory handle"))
    }

    /// Handle `id`, to change.
    pub fn get_mut(&mut self, id: u32) -> Result<&mut Handle, Violation> {
        self.map
            .get_mut(&id)
            .ok_or_else(|| violation("unknown directory handle"))
    }

    /// Forgets handle `id`.
    pub fn close(&mut self, id: u32) -> Result<Handle, Violation> {
        self.map
            .remove(&id)
            .ok_or_else(|| violation("closing an unknown handle"))
    }

    /// The creation of directory `name` in handle `id` failed (reported).
    pub fn create_failed(&mut self, id: u32, name: CString) {
        if self.failed_creates.len() >= MAX_FAILED_CREATES {
            self.failed_creates.clear();
        }
        self.failed_creates.insert((id, name));
    }

    /// Opens handle `id`: the root of `root` (`parent` 0, no name) or
    /// `name` in handle `parent`. A directory that cannot be opened is a
    /// handle without one (see [`Handle`]).
    pub fn open(
        &mut self,
        root: &LocalReplica,
        policy: &Policy,
        (id, parent, name): (u32, u32, Option<CString>),
    ) -> Result<(), Violation> {
        if self.map.contains_key(&id) || self.map.len() >= MAX_HANDLES {
            return Err(violation("reused handle or too many handles"));
        }
        let h = match (parent, name) {
            (0, None) => Handle {
                dir: root.root_dir().ok().map(Arc::new),
                place: None,
                quiet: false,
                excluded: false,
            },
            (p, Some(n)) => {
                let quiet = self.failed_creates.remove(&(p, n.clone()));
                let ph = self
                    .map
                    .get(&p)
                    .ok_or_else(|| violation("unknown parent handle"))?;
                let excluded = ph.excluded(policy, &n, Some(true));
                let (dir, quiet) = match &ph.dir {
                    Some(d) => (d.open_local(&n).ok().map(Arc::new), quiet),
                    None => (None, true),
                };
                let place = Some(Arc::new(Place {
                    parent: ph.place.clone(),
                    name: n,
                }));
                Handle {
                    dir,
                    place,
                    quiet,
                    excluded,
                }
            }
            _ => return Err(violation("bad open")),
        };
        self.map.insert(id, h);
        Ok(())
    }
}

/// The errno of `e`.
pub fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(names: &[&str]) -> Option<Arc<Place>> {
        let mut at = None;
        for n in names {
            at = Some(Arc::new(Place {
                parent: at,
                name: CString::new(*n).unwrap(),
            }));
        }
        at
    }

    #[test]
    fn paths_are_built_from_places_and_capped() {
        let at = chain(&["a", "b"]);
        assert_eq!(path(at.as_ref(), Some(c"c")).unwrap(), b"a/b/c");
        assert_eq!(path(at.as_ref(), None).unwrap(), b"a/b");
        assert_eq!(path(None, Some(c"c")).unwrap(), b"c");
        assert_eq!(path(None, None).unwrap(), b"");
        let long = "x".repeat(255);
        let names: Vec<&str> = (0..300).map(|_| long.as_str()).collect();
        let deep = chain(&names);
        assert!(path(deep.as_ref(), Some(c"c")).is_none());
        assert_eq!(shown(deep.as_ref(), Some(c"c")), b".../c");
        // Dropping a deep chain does not recurse per level.
        let names: Vec<&str> = (0..200_000).map(|_| "d").collect();
        drop(chain(&names));
    }
}

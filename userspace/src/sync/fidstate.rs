//! What the fidelity options (`-H -o -g -X -A`) keep over the life of a
//! syncer ([`State`]); used by `fidelity` and `hardlink`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::attrs::owner::IdMap;
use crate::stat::Meta;

/// What the fidelity options keep over the life of a syncer.
pub struct State {
    /// SRC ids to DST ids.
    pub ids: IdMap,
    /// `-H`: the first name of each SRC inode with several names.
    pub links: LinkMap,
    /// The kinds of failure already warned about.
    pub warned: Mutex<Vec<&'static str>>,
}

impl State {
    /// With `--numeric-ids` when `numeric`.
    pub fn new(numeric: bool) -> State {
        State {
            ids: IdMap::new(numeric),
            links: LinkMap::default(),
            warned: Mutex::new(Vec::new()),
        }
    }
}

/// (inode, device) of a file.
pub type Key = (u64, (u32, u32));

/// The key of `m`.
pub fn key(m: &Meta) -> Key {
    (m.ino, m.dev)
}

/// The first name of a SRC inode with several names.
#[derive(Clone, Debug)]
struct First {
    rel: PathBuf,
    /// The operation that registered it ([`Pending::generation`]).
    generation: u64,
    /// Its DST file, once known final in that operation (not copied).
    dst: Option<Key>,
}

/// One later name queued by the walk (see `hardlink`).
#[derive(Clone, Debug)]
pub struct Queued {
    /// The name, relative to the roots.
    pub rel: PathBuf,
    /// The first name of its inode when it was queued.
    pub first: Option<PathBuf>,
    /// Its SRC metadata.
    pub src: Meta,
    /// Its DST file, if any.
    pub dst: Option<Key>,
}

/// The later names one operation queued.
pub struct Pending {
    /// Unique per operation.
    pub generation: u64,
    /// The names.
    pub queue: Mutex<Vec<Queued>>,
}

impl Default for Pending {
    fn default() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Pending {
            generation: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            queue: Mutex::new(Vec::new()),
        }
    }
}

impl Pending {
    /// Queues `q`.
    pub fn push(&self, q: Queued) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(q);
    }
    /// Takes everything queued.
    pub fn take(&self) -> Vec<Queued> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The first name of each SRC inode with several names.
#[derive(Default)]
pub struct LinkMap(Mutex<HashMap<Key, First>>);

impl LinkMap {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, First>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// The first name of `s`'s inode other than `rel`: `Ok(None)` when
    /// `rel` is (or, `strong`, becomes) the first, `Err(())` when nobody
    /// is yet and `rel` is not `strong`. `generation`: the operation's.
    pub fn claim(
        &self,
        s: &Meta,
        rel: &Path,
        strong: bool,
        generation: u64,
    ) -> Result<Option<PathBuf>, ()> {
        let mut m = self.lock();
        match m.get_mut(&key(s)) {
            Some(f) if f.rel != rel => Ok(Some(f.rel.clone())),
            Some(f) => {
                if f.generation != generation {
                    *f = First {
                        rel: rel.to_path_buf(),
                        generation,
                        dst: None,
                    };
                }
                Ok(None)
            }
            None if strong => {
                let f = First {
                    rel: rel.to_path_buf(),
                    generation,
                    dst: None,
                };
                m.insert(key(s), f);
                Ok(None)
            }
            None => Err(()),
        }
    }
    /// The first name of `s`'s inode, if any.
    pub fn first(&self, s: &Meta) -> Option<PathBuf> {
        self.lock().get(&key(s)).map(|f| f.rel.clone())
    }
    /// Makes `rel` the first name of `s`'s inode (its DST file unknown).
    pub fn set(&self, s: &Meta, rel: &Path) {
        let f = First {
            rel: rel.to_path_buf(),
            generation: 0,
            dst: None,
        };
        self.lock().insert(key(s), f);
    }
    /// The first name `rel` of `s`'s inode keeps its DST file `dst` in the
    /// operation `generation`.
    pub fn settled(&self, s: &Meta, rel: &Path, dst: Key, generation: u64) {
        if let Some(f) = self.lock().get_mut(&key(s)) {
            if f.rel == rel && f.generation == generation {
                f.dst = Some(dst);
            }
        }
    }
    /// Whether `q` already is a name of its first name's DST file, known
    /// without a system call: the first was met in the same operation
    /// (`generation`) and kept its DST file, which is `q`'s.
    pub fn already_linked(&self, q: &Queued, generation: u64) -> bool {
        let m = self.lock();
        let Some(f) = m.get(&key(&q.src)) else {
            return false;
        };
        f.generation == generation
            && f.dst.is_some()
            && f.dst == q.dst
            && q.first.as_ref() == Some(&f.rel)
    }
    /// Whether `q`'s first name was met in the operation `generation`.
    pub fn met_in(&self, q: &Queued, generation: u64) -> bool {
        let m = self.lock();
        let Some(f) = m.get(&key(&q.src)) else {
            return false;
        };
        f.generation == generation && q.first.as_ref() == Some(&f.rel)
    }
    /// Forgets everything (a new full sync).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stat::{Ids, Kind};

    fn file(ino: u64) -> Meta {
        Meta {
            kind: Kind::File,
            perm: 0o644,
            size: 1,
            mtime: 0,
            mtime_nsec: 0,
            ino,
            dev: (0, 1),
            ids: Ids {
                nlink: 2,
                ..Ids::default()
            },
        }
    }

    #[test]
    fn first_names_later_names_and_links_known_in_place() {
        let m = LinkMap::default();
        let (s, a, b, c) = (file(7), Path::new("a"), Path::new("d/b"), Path::new("c"));
        // A name whose DST file may not exist claims nothing.
        assert_eq!(m.claim(&s, b, false, 1), Err(()));
        assert_eq!(m.claim(&s, a, true, 1), Ok(None));
        assert_eq!(m.claim(&s, a, true, 1), Ok(None));
        assert_eq!(m.claim(&s, b, false, 1), Ok(Some(a.to_path_buf())));
        assert_eq!(m.claim(&s, c, true, 1), Ok(Some(a.to_path_buf())));
        let q = |dst| Queued {
            rel: b.to_path_buf(),
            first: Some(a.to_path_buf()),
            src: s,
            dst,
        };
        assert!(m.met_in(&q(None), 1) && !m.met_in(&q(None), 2));
        // Known linked only once the first name kept its DST file, and
        // only for a later name on that very file.
        assert!(!m.already_linked(&q(Some((9, (0, 2)))), 1));
        m.settled(&s, a, (9, (0, 2)), 1);
        assert!(m.already_linked(&q(Some((9, (0, 2)))), 1));
        assert!(!m.already_linked(&q(Some((8, (0, 2)))), 1));
        assert!(!m.already_linked(&q(None), 1));
        assert!(!m.already_linked(&q(Some((9, (0, 2)))), 2));
        // Another operation re-registers the first name (its DST unknown).
        assert_eq!(m.claim(&s, a, true, 2), Ok(None));
        assert!(!m.already_linked(&q(Some((9, (0, 2)))), 2));
        m.clear();
        assert_eq!(m.first(&s), None);
    }
}

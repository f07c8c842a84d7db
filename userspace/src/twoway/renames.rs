//! Renames as renames: an entry gone from one path of side X and present
//! at a new path of X with the archived inode (and, for a file, the
//! archived size and mtime) was renamed; if the other side Y still has
//! the old path as archived and nothing at the new one, Y gets the same
//! rename (a whole directory: one rename). [`detect`] works on the scans
//! and the archive in memory (moving the paths, so that the reconciler
//! then sees both sides at the new path); [`Rename`]s are applied later,
//! after the guards.

use std::collections::{BTreeMap, HashMap};

use super::archive::Records;
use super::reconcile::{Side, State, Type};
use super::scan::{under, Tree};

/// A rename to replay on side `on`.
#[derive(Clone, Debug)]
pub struct Rename {
    /// The side to rename on.
    pub on: Side,
    /// Old path.
    pub from: Vec<u8>,
    /// New path.
    pub to: Vec<u8>,
    /// Y's entry at the old path, as scanned.
    pub seen: State,
    /// Archive paths moved (old, new), for the archive on disk.
    pub moved: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Moves every key at or below `from` to the same place below `to`.
pub fn move_prefix<V>(
    map: &mut BTreeMap<Vec<u8>, V>,
    from: &[u8],
    to: &[u8],
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let keys: Vec<Vec<u8>> = map
        .range(from.to_vec()..)
        .map(|(k, _)| k)
        .take_while(|k| k.starts_with(from))
        .filter(|k| under(k, from))
        .cloned()
        .collect();
    let mut moved = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(v) = map.remove(&k) {
            let mut n = to.to_vec();
            n.extend_from_slice(&k[from.len()..]);
            map.insert(n.clone(), v);
            moved.push((k, n));
        }
    }
    moved
}

fn parent(p: &[u8]) -> &[u8] {
    super::scan::split(p).0
}

/// Finds the renames made on either side, moves the paths in `y`'s scan
/// and the archive accordingly, and returns them.
pub fn detect(records: &mut Records, a: &mut Tree, b: &mut Tree) -> Vec<Rename> {
    let mut out = Vec::new();
    for x_side in [Side::A, Side::B] {
        let (x, y) = match x_side {
            Side::A => (&*a, &mut *b),
            Side::B => (&*b, &mut *a),
        };
        let new: Vec<(&Vec<u8>, &State)> = x
            .entries
            .iter()
            .filter(|(p, _)| !records.contains_key(*p))
            .collect();
        if new.is_empty() {
            continue;
        }
        let ino_x = |r: &super::archive::Record| match x_side {
            Side::A => r.state.ino,
            Side::B => r.ino_b,
        };
        let ino_y = |r: &super::archive::Record| match x_side {
            Side::A => r.ino_b,
            Side::B => r.state.ino,
        };
        let gone: HashMap<u64, Vec<u8>> = records
            .iter()
            .filter(|(p, r)| !x.entries.contains_key(*p) && r.state.kind != Type::Symlink)
            .map(|(p, r)| (ino_x(r), p.clone()))
            .collect();
        if gone.is_empty() {
            continue;
        }
        for (n, s) in new {
            let Some(o) = gone.get(&s.ino) else { continue };
            if records.contains_key(n) || under(n, o) || under(o, n) {
                continue;
            }
            let Some(rec) = records.get(o) else { continue };
            let st = &rec.state;
            if st.kind != s.kind
                || (s.kind == Type::File && (st.size != s.size || st.mtime != s.mtime))
            {
                continue;
            }
            let Some(yo) = y.entries.get(o) else { continue };
            let y_ok = yo.kind == st.kind
                && yo.ino == ino_y(rec)
                && (st.kind != Type::File || (yo.size == st.size && yo.mtime == st.mtime));
            let np = parent(n);
            let parent_ok = np.is_empty() || y.entries.get(np).is_some_and(|p| p.kind == Type::Dir);
            if !y_ok || y.entries.contains_key(n) || !parent_ok {
                continue;
            }
            let seen = yo.clone();
            let (o, n) = (o.clone(), n.clone());
            move_prefix(&mut y.entries, &o, &n);
            let moved = move_prefix(records, &o, &n);
            out.push(Rename {
                on: x_side.other(),
                from: o,
                to: n,
                seen,
                moved,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_prefix_moves_a_subtree_only() {
        let mut m: BTreeMap<Vec<u8>, u8> = BTreeMap::new();
        for k in ["d", "d/x", "d/y/z", "d.txt", "dd", "e"] {
            m.insert(k.as_bytes().to_vec(), 0);
        }
        let moved = move_prefix(&mut m, b"d", b"n/d2");
        assert_eq!(moved.len(), 3);
        let keys: Vec<_> = m
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        assert_eq!(keys, ["d.txt", "dd", "e", "n/d2", "n/d2/x", "n/d2/y/z"]);
    }
}

//! The watch map: inotify watch descriptors ↔ directories of SRC.
//!
//! Directories are kept as a tree of nodes in one table (a `Vec` indexed by
//! node id), each holding its parent, its own name (bytes), its watch
//! descriptor and its links to its first child and its siblings. The relative path of a watch is
//! rebuilt by walking up to the root, so renaming or moving a directory
//! inside the tree is O(1) (detach the node, attach it under the new parent
//! with the new name): the whole subtree's paths change at once, with no
//! watch re-added. Removal (deletion, moving out of the tree, `IN_IGNORED`)
//! is O(subtree). There is no fixed-size array and no path length limit.
//!
//! A node may have no watch descriptor: that directory could not be watched
//! (`ENOSPC` from `inotify_add_watch`, the `max_user_watches` limit), and the
//! watcher keeps its subtree in sync with periodic rescans instead.
//!
//! Memory: a node is 40 bytes plus its name's bytes; the two indexes
//! (`wd` → node and (parent, name) → node) are hash tables of bare `u32`
//! node ids that hash the key out of the node itself, so no key is stored
//! twice (no name copy in a parent's children map). The hash is std's
//! keyed SipHash: names come from the watched tree, and a tree built to
//! collide must not turn lookups quadratic.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, RandomState};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use hashbrown::HashTable;

/// Index of a node in the map.
pub type NodeId = usize;

/// The node of SRC itself (relative path "").
pub const ROOT: NodeId = 0;

/// No node (no parent, no child, no sibling).
const NIL: u32 = u32::MAX;
/// No watch descriptor (the kernel's are never negative).
const NO_WD: i32 = -1;

#[derive(Debug)]
struct Node {
    name: Box<[u8]>,
    parent: u32,
    wd: i32,
    first: u32,
    next: u32,
    prev: u32,
    mark: u32,
}

impl Node {
    fn new(mark: u32) -> Node {
        Node {
            name: Box::default(),
            parent: NIL,
            wd: NO_WD,
            first: NIL,
            next: NIL,
            prev: NIL,
            mark,
        }
    }
}

/// Watched (and unwatched) directories of SRC; see the module docs.
#[derive(Debug)]
pub struct WatchMap {
    nodes: Vec<Option<Node>>,
    free: Vec<u32>,
    /// Nodes with a watch, found by the hash of their `wd`.
    by_wd: HashTable<u32>,
    /// Nodes other than the root, found by the hash of (parent, name).
    by_name: HashTable<u32>,
    hasher: RandomState,
    unwatched: BTreeSet<NodeId>,
    mark: u32,
}

impl Default for WatchMap {
    fn default() -> Self {
        Self::new()
    }
}

/// Splits a relative byte path into its parent and last name
/// (`"a/b/c"` → `("a/b", "c")`, `"a"` → `("", "a")`).
pub fn split_parent(rel: &Path) -> Option<(&Path, &OsStr)> {
    let b = rel.as_os_str().as_bytes();
    if b.is_empty() {
        return None;
    }
    match b.iter().rposition(|&c| c == b'/') {
        Some(i) => Some((
            Path::new(OsStr::from_bytes(&b[..i])),
            OsStr::from_bytes(&b[i + 1..]),
        )),
        None => Some((Path::new(""), OsStr::from_bytes(b))),
    }
}

/// Joins a relative path and a name with exactly one `/` (`""` + `n` = `n`).
pub fn join(rel: &Path, name: &OsStr) -> PathBuf {
    let r = rel.as_os_str().as_bytes();
    if r.is_empty() {
        return PathBuf::from(name);
    }
    let mut v = Vec::with_capacity(r.len() + 1 + name.len());
    v.extend_from_slice(r);
    v.push(b'/');
    v.extend_from_slice(name.as_bytes());
    PathBuf::from(OsString::from_vec(v))
}

fn components(rel: &Path) -> impl Iterator<Item = &OsStr> {
    rel.as_os_str()
        .as_bytes()
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .map(OsStr::from_bytes)
}

fn live(nodes: &[Option<Node>], id: u32) -> &Node {
    match nodes.get(id as usize) {
        Some(Some(n)) => n,
        // The indexes only hold live nodes (removed before a slot is freed).
        _ => unreachable!("watch map index points at a free slot {id}"),
    }
}

fn name_hash(h: &RandomState, parent: u32, name: &[u8]) -> u64 {
    h.hash_one((parent, name))
}

impl WatchMap {
    /// A map holding only the (not yet watched) root.
    pub fn new() -> Self {
        let mut unwatched = BTreeSet::new();
        unwatched.insert(ROOT);
        WatchMap {
            nodes: vec![Some(Node::new(0))],
            free: Vec::new(),
            by_wd: HashTable::new(),
            by_name: HashTable::new(),
            hasher: RandomState::new(),
            unwatched,
            mark: 0,
        }
    }

    fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id).and_then(|n| n.as_ref())
    }

    fn node_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(id).and_then(|n| n.as_mut())
    }

    /// Number of directories in the map (watched or not).
    pub fn len(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// Whether the map holds only the root... never empty; for clippy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of inotify watches held.
    pub fn watch_count(&self) -> usize {
        self.by_wd.len()
    }

    /// Directories that have no watch (their subtrees need rescans).
    pub fn unwatched(&self) -> Vec<NodeId> {
        self.unwatched.iter().copied().collect()
    }

    /// The node watched by `wd`.
    pub fn node_of_wd(&self, wd: i32) -> Option<NodeId> {
        if wd < 0 {
            return None;
        }
        let nodes = &self.nodes;
        self.by_wd
            .find(self.hasher.hash_one(wd), |&i| live(nodes, i).wd == wd)
            .map(|&i| i as NodeId)
    }

    /// The watch descriptor of a node.
    pub fn wd(&self, id: NodeId) -> Option<i32> {
        self.node(id).map(|n| n.wd).filter(|&w| w >= 0)
    }

    /// Whether `id` is a live node.
    pub fn contains(&self, id: NodeId) -> bool {
        self.node(id).is_some()
    }

    /// The path of a node relative to SRC ("" for the root).
    pub fn path(&self, id: NodeId) -> Option<PathBuf> {
        let mut names: Vec<&[u8]> = Vec::new();
        let mut cur = self.node(id)?;
        while cur.parent != NIL {
            names.push(&cur.name);
            cur = self.node(cur.parent as usize)?;
        }
        let len = names.iter().map(|n| n.len() + 1).sum::<usize>();
        let mut v = Vec::with_capacity(len);
        for (i, n) in names.iter().rev().enumerate() {
            if i > 0 {
                v.push(b'/');
            }
            v.extend_from_slice(n);
        }
        Some(PathBuf::from(OsString::from_vec(v)))
    }

    /// The path of the directory watched by `wd`.
    pub fn path_of_wd(&self, wd: i32) -> Option<PathBuf> {
        self.path(self.node_of_wd(wd)?)
    }

    fn child(&self, parent: NodeId, name: &[u8]) -> Option<NodeId> {
        let p = u32::try_from(parent).ok()?;
        let nodes = &self.nodes;
        self.by_name
            .find(name_hash(&self.hasher, p, name), |&i| {
                let n = live(nodes, i);
                n.parent == p && *n.name == *name
            })
            .map(|&i| i as NodeId)
    }

    /// The node at `rel`.
    pub fn lookup(&self, rel: &Path) -> Option<NodeId> {
        let mut cur = ROOT;
        for c in components(rel) {
            cur = self.child(cur, c.as_bytes())?;
        }
        Some(cur)
    }

    /// Drops the `wd` index entry of `id` (if it has a watch).
    fn unindex_wd(&mut self, id: NodeId) {
        let Some(w) = self.wd(id) else { return };
        let h = self.hasher.hash_one(w);
        if let Ok(e) = self.by_wd.find_entry(h, |&i| i as NodeId == id) {
            e.remove();
        }
        if let Some(n) = self.node_mut(id) {
            n.wd = NO_WD;
        }
    }

    /// Sets (or clears) the watch descriptor of a node. If `wd` belonged to
    /// another node, that mapping is dropped (the caller moves nodes first
    /// when the kernel hands back an existing descriptor).
    pub fn set_wd(&mut self, id: NodeId, wd: Option<i32>) {
        if self.node(id).is_none() {
            return;
        }
        self.unindex_wd(id);
        match wd.filter(|&w| w >= 0) {
            Some(w) => {
                if let Some(prev) = self.node_of_wd(w) {
                    self.unindex_wd(prev);
                    self.unwatched.insert(prev);
                }
                if let Some(n) = self.node_mut(id) {
                    n.wd = w;
                }
                let nodes = &self.nodes;
                let hs = &self.hasher;
                self.by_wd.insert_unique(hs.hash_one(w), id as u32, |&i| {
                    hs.hash_one(live(nodes, i).wd)
                });
                self.unwatched.remove(&id);
            }
            None => {
                self.unwatched.insert(id);
            }
        }
    }

    /// A new slot, or `None` when node ids (`u32`) are exhausted.
    fn alloc(&mut self, node: Node) -> Option<NodeId> {
        match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = Some(node);
                Some(id as NodeId)
            }
            None => {
                if self.nodes.len() >= NIL as usize {
                    return None;
                }
                self.nodes.push(Some(node));
                Some(self.nodes.len() - 1)
            }
        }
    }

    /// Takes `id` out of its parent's children and out of the name index.
    fn detach(&mut self, id: NodeId) {
        let Some(n) = self.node(id) else { return };
        let (parent, prev, next) = (n.parent, n.prev, n.next);
        if parent == NIL {
            return;
        }
        let h = name_hash(&self.hasher, parent, &n.name);
        if let Ok(e) = self.by_name.find_entry(h, |&i| i as NodeId == id) {
            e.remove();
        }
        if prev != NIL {
            if let Some(p) = self.node_mut(prev as usize) {
                p.next = next;
            }
        } else if let Some(p) = self.node_mut(parent as usize) {
            p.first = next;
        }
        if next != NIL {
            if let Some(x) = self.node_mut(next as usize) {
                x.prev = prev;
            }
        }
        if let Some(n) = self.node_mut(id) {
            n.parent = NIL;
            n.prev = NIL;
            n.next = NIL;
        }
    }

    /// Attaches the (detached) node `id` under `parent` as `name`, removing
    /// (and returning the watch descriptors of) whatever subtree was there.
    fn attach(&mut self, id: NodeId, parent: NodeId, name: &OsStr) -> Vec<i32> {
        let mut dropped = Vec::new();
        if let Some(e) = self.child(parent, name.as_bytes()) {
            if e != id {
                dropped = self.remove(e);
            }
        }
        let first = match self.node(parent) {
            Some(p) => p.first,
            None => return dropped,
        };
        if let Some(n) = self.node_mut(id) {
            n.parent = parent as u32;
            n.name = name.as_bytes().into();
            n.prev = NIL;
            n.next = first;
        }
        if first != NIL {
            if let Some(f) = self.node_mut(first as usize) {
                f.prev = id as u32;
            }
        }
        if let Some(p) = self.node_mut(parent) {
            p.first = id as u32;
        }
        let nodes = &self.nodes;
        let hs = &self.hasher;
        self.by_name.insert_unique(
            name_hash(hs, parent as u32, name.as_bytes()),
            id as u32,
            |&i| {
                let n = live(nodes, i);
                name_hash(hs, n.parent, &n.name)
            },
        );
        dropped
    }

    fn is_under(&self, x: NodeId, ancestor: NodeId) -> bool {
        let mut p = Some(x);
        while let Some(y) = p {
            if y == ancestor {
                return true;
            }
            p = self
                .node(y)
                .map(|n| n.parent)
                .filter(|&q| q != NIL)
                .map(|q| q as usize);
        }
        false
    }

    /// Records the directory `rel` with watch `wd` (or unwatched with
    /// `None`). When the kernel handed back a descriptor that already
    /// belongs to another node (the same directory, found under a new name
    /// after lost events), that node and its subtree are moved to `rel`.
    /// Whatever was at `rel` before is dropped. Returns the node and the
    /// watch descriptors of dropped nodes (to be removed from the kernel),
    /// or `None` when the parent of `rel` is not in the map.
    pub fn place(&mut self, rel: &Path, wd: Option<i32>) -> Option<(NodeId, Vec<i32>)> {
        let Some((parent_rel, name)) = split_parent(rel) else {
            // The root itself.
            self.set_wd(ROOT, wd);
            return Some((ROOT, Vec::new()));
        };
        let parent = self.lookup(parent_rel)?;
        if let Some(w) = wd {
            if let Some(existing) = self.node_of_wd(w) {
                // Refuse to move the root, or a node under itself.
                if existing == ROOT || self.is_under(parent, existing) {
                    return None;
                }
                self.detach(existing);
                let dropped = self.attach(existing, parent, name);
                return Some((existing, dropped));
            }
        }
        let id = self.alloc(Node::new(self.mark))?;
        let dropped = self.attach(id, parent, name);
        self.set_wd(id, wd);
        Some((id, dropped))
    }

    /// Moves the directory at `from` to `to` (a rename inside SRC). Returns
    /// the moved node and the watch descriptors of the subtree that `to`
    /// replaced, or `None` when there is no node at `from` or no parent for
    /// `to`.
    pub fn rename(&mut self, from: &Path, to: &Path) -> Option<(NodeId, Vec<i32>)> {
        let id = self.lookup(from)?;
        if id == ROOT {
            return None;
        }
        let (to_parent, to_name) = split_parent(to)?;
        let parent = self.lookup(to_parent)?;
        if self.is_under(parent, id) {
            return None;
        }
        self.detach(id);
        let dropped = self.attach(id, parent, to_name);
        Some((id, dropped))
    }

    /// Removes a node and its subtree; returns their watch descriptors.
    pub fn remove(&mut self, id: NodeId) -> Vec<i32> {
        let mut wds = Vec::new();
        if id == ROOT || self.node(id).is_none() {
            return wds;
        }
        self.detach(id);
        let mut stack = vec![id];
        while let Some(x) = stack.pop() {
            // Children leave the name index while their slots are live.
            let mut c = self.node(x).map_or(NIL, |n| n.first);
            while c != NIL {
                let next = self.node(c as usize).map_or(NIL, |n| n.next);
                self.detach(c as usize);
                stack.push(c as usize);
                c = next;
            }
            if let Some(w) = self.wd(x) {
                self.unindex_wd(x);
                wds.push(w);
            }
            if self.nodes[x].take().is_some() {
                self.unwatched.remove(&x);
                self.free.push(x as u32);
            }
        }
        wds
    }

    /// The kernel dropped watch `wd` (`IN_IGNORED`): forget it, and its
    /// node with it. Returns the watch descriptors of the removed subtree
    /// other than `wd` itself (normally none: a deleted directory is empty).
    /// The root's node is kept, only marked unwatched.
    pub fn forget_wd(&mut self, wd: i32) -> Vec<i32> {
        let Some(id) = self.node_of_wd(wd) else {
            return Vec::new();
        };
        if id == ROOT {
            self.set_wd(ROOT, None);
            return Vec::new();
        }
        let mut wds = self.remove(id);
        wds.retain(|&w| w != wd);
        wds
    }

    /// Starts a mark-and-sweep pass (after a queue overflow the map is
    /// rebuilt from a walk of SRC; nodes not marked again are stale).
    pub fn begin_mark(&mut self) {
        self.mark = self.mark.wrapping_add(1);
        let m = self.mark;
        if let Some(r) = self.node_mut(ROOT) {
            r.mark = m;
        }
    }

    /// Marks a node as seen in the current pass.
    pub fn mark(&mut self, id: NodeId) {
        let m = self.mark;
        if let Some(n) = self.node_mut(id) {
            n.mark = m;
        }
    }

    /// Removes every node not marked since [`begin_mark`](Self::begin_mark);
    /// returns their watch descriptors.
    pub fn sweep(&mut self) -> Vec<i32> {
        let m = self.mark;
        let stale: Vec<NodeId> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n {
                Some(n) if i != ROOT && n.mark != m => Some(i),
                _ => None,
            })
            .collect();
        let mut wds = Vec::new();
        for id in stale {
            wds.extend(self.remove(id));
        }
        wds
    }
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;

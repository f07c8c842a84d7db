//! The watch map: inotify watch descriptors ↔ directories of SRC.
//!
//! Directories are kept as a tree of nodes, each holding its parent, its own
//! name (bytes) and its watch descriptor. The relative path of a watch is
//! rebuilt by walking up to the root, so renaming or moving a directory
//! inside the tree is O(1) (detach the node, attach it under the new parent
//! with the new name): the whole subtree's paths change at once, with no
//! watch re-added. Removal (deletion, moving out of the tree, `IN_IGNORED`)
//! is O(subtree). There is no fixed-size array and no path length limit.
//!
//! A node may have no watch descriptor: that directory could not be watched
//! (`ENOSPC` from `inotify_add_watch`, the `max_user_watches` limit), and the
//! watcher keeps its subtree in sync with periodic rescans instead.

use std::collections::{BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Index of a node in the map.
pub type NodeId = usize;

/// The node of SRC itself (relative path "").
pub const ROOT: NodeId = 0;

#[derive(Debug)]
struct Node {
    parent: Option<NodeId>,
    name: OsString,
    wd: Option<i32>,
    children: HashMap<OsString, NodeId>,
    mark: u32,
}

/// Watched (and unwatched) directories of SRC; see the module docs.
#[derive(Debug)]
pub struct WatchMap {
    nodes: Vec<Option<Node>>,
    free: Vec<NodeId>,
    by_wd: HashMap<i32, NodeId>,
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

impl WatchMap {
    /// A map holding only the (not yet watched) root.
    pub fn new() -> Self {
        let mut unwatched = BTreeSet::new();
        unwatched.insert(ROOT);
        WatchMap {
            nodes: vec![Some(Node {
                parent: None,
                name: OsString::new(),
                wd: None,
                children: HashMap::new(),
                mark: 0,
            })],
            free: Vec::new(),
            by_wd: HashMap::new(),
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
        self.by_wd.get(&wd).copied()
    }

    /// The watch descriptor of a node.
    pub fn wd(&self, id: NodeId) -> Option<i32> {
        self.node(id).and_then(|n| n.wd)
    }

    /// Whether `id` is a live node.
    pub fn contains(&self, id: NodeId) -> bool {
        self.node(id).is_some()
    }

    /// The path of a node relative to SRC ("" for the root).
    pub fn path(&self, id: NodeId) -> Option<PathBuf> {
        let mut names: Vec<&OsStr> = Vec::new();
        let mut cur = self.node(id)?;
        while let Some(p) = cur.parent {
            names.push(&cur.name);
            cur = self.node(p)?;
        }
        let len = names.iter().map(|n| n.len() + 1).sum::<usize>();
        let mut v = Vec::with_capacity(len);
        for (i, n) in names.iter().rev().enumerate() {
            if i > 0 {
                v.push(b'/');
            }
            v.extend_from_slice(n.as_bytes());
        }
        Some(PathBuf::from(OsString::from_vec(v)))
    }

    /// The path of the directory watched by `wd`.
    pub fn path_of_wd(&self, wd: i32) -> Option<PathBuf> {
        self.path(self.node_of_wd(wd)?)
    }

    /// The node at `rel`.
    pub fn lookup(&self, rel: &Path) -> Option<NodeId> {
        let mut cur = ROOT;
        for c in components(rel) {
            cur = *self.node(cur)?.children.get(c)?;
        }
        Some(cur)
    }

    /// Sets (or clears) the watch descriptor of a node. If `wd` belonged to
    /// another node, that mapping is dropped (the caller moves nodes first
    /// when the kernel hands back an existing descriptor).
    pub fn set_wd(&mut self, id: NodeId, wd: Option<i32>) {
        let old = match self.node_mut(id) {
            Some(n) => std::mem::replace(&mut n.wd, wd),
            None => return,
        };
        if let Some(o) = old {
            if self.by_wd.get(&o) == Some(&id) {
                self.by_wd.remove(&o);
            }
        }
        match wd {
            Some(w) => {
                if let Some(prev) = self.by_wd.insert(w, id) {
                    if prev != id {
                        if let Some(n) = self.node_mut(prev) {
                            n.wd = None;
                        }
                        self.unwatched.insert(prev);
                    }
                }
                self.unwatched.remove(&id);
            }
            None => {
                self.unwatched.insert(id);
            }
        }
    }

    fn alloc(&mut self, node: Node) -> NodeId {
        match self.free.pop() {
            Some(id) => {
                self.nodes[id] = Some(node);
                id
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        }
    }

    fn detach(&mut self, id: NodeId) {
        let (parent, name) = match self.node(id) {
            Some(n) => (n.parent, n.name.clone()),
            None => return,
        };
        if let Some(p) = parent {
            if let Some(pn) = self.node_mut(p) {
                if pn.children.get(&name) == Some(&id) {
                    pn.children.remove(&name);
                }
            }
        }
    }

    /// Attaches `id` under `parent` as `name`, removing (and returning the
    /// watch descriptors of) whatever subtree was there.
    fn attach(&mut self, id: NodeId, parent: NodeId, name: &OsStr) -> Vec<i32> {
        let mut dropped = Vec::new();
        let existing = self
            .node(parent)
            .and_then(|p| p.children.get(name).copied());
        if let Some(e) = existing {
            if e != id {
                dropped = self.remove(e);
            }
        }
        if let Some(n) = self.node_mut(id) {
            n.parent = Some(parent);
            n.name = name.to_os_string();
        }
        if let Some(p) = self.node_mut(parent) {
            p.children.insert(name.to_os_string(), id);
        }
        dropped
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
                if existing == ROOT {
                    return None;
                }
                // Refuse to move a node under itself.
                let mut p = Some(parent);
                while let Some(x) = p {
                    if x == existing {
                        return None;
                    }
                    p = self.node(x).and_then(|n| n.parent);
                }
                self.detach(existing);
                let dropped = self.attach(existing, parent, name);
                return Some((existing, dropped));
            }
        }
        let mark = self.mark;
        let id = self.alloc(Node {
            parent: None,
            name: OsString::new(),
            wd: None,
            children: HashMap::new(),
            mark,
        });
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
        let mut p = Some(parent);
        while let Some(x) = p {
            if x == id {
                return None;
            }
            p = self.node(x).and_then(|n| n.parent);
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
            if let Some(n) = self.nodes[x].take() {
                stack.extend(n.children.values().copied());
                if let Some(w) = n.wd {
                    if self.by_wd.get(&w) == Some(&x) {
                        self.by_wd.remove(&w);
                    }
                    wds.push(w);
                }
                self.unwatched.remove(&x);
                self.free.push(x);
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
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    #[test]
    fn paths_follow_renames_without_touching_descendants() {
        let mut m = WatchMap::new();
        m.place(p(""), Some(1)).unwrap();
        m.place(p("a"), Some(2)).unwrap();
        m.place(p("a/b"), Some(3)).unwrap();
        m.place(p("a/b/c"), Some(4)).unwrap();
        m.place(p("x"), Some(5)).unwrap();
        assert_eq!(m.path_of_wd(4).unwrap(), p("a/b/c"));
        let (id, dropped) = m.rename(p("a/b"), p("x/moved")).unwrap();
        assert!(dropped.is_empty());
        assert_eq!(m.wd(id), Some(3));
        assert_eq!(m.path_of_wd(3).unwrap(), p("x/moved"));
        assert_eq!(m.path_of_wd(4).unwrap(), p("x/moved/c"));
        assert_eq!(m.path_of_wd(2).unwrap(), p("a"));
        assert!(m.lookup(p("a/b")).is_none());
        assert_eq!(m.lookup(p("x/moved/c")), m.node_of_wd(4));
        assert_eq!(m.watch_count(), 5);
    }

    #[test]
    fn rename_over_existing_drops_the_replaced_subtree() {
        let mut m = WatchMap::new();
        m.place(p(""), Some(1)).unwrap();
        m.place(p("a"), Some(2)).unwrap();
        m.place(p("b"), Some(3)).unwrap();
        m.place(p("b/old"), Some(4)).unwrap();
        let (_, mut dropped) = m.rename(p("a"), p("b")).unwrap();
        dropped.sort();
        assert_eq!(dropped, vec![3, 4]);
        assert_eq!(m.path_of_wd(2).unwrap(), p("b"));
        assert!(m.node_of_wd(3).is_none());
        assert!(m.node_of_wd(4).is_none());
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn rename_into_own_subtree_is_refused() {
        let mut m = WatchMap::new();
        m.place(p(""), Some(1)).unwrap();
        m.place(p("a"), Some(2)).unwrap();
        m.place(p("a/b"), Some(3)).unwrap();
        assert!(m.rename(p("a"), p("a/b/a")).is_none());
        assert_eq!(m.path_of_wd(3).unwrap(), p("a/b"));
    }

    #[test]
    fn ignored_and_removal_clean_up() {
        let mut m = WatchMap::new();
        m.place(p(""), Some(1)).unwrap();
        m.place(p("d"), Some(2)).unwrap();
        m.place(p("d/e"), Some(3)).unwrap();
        assert!(m.forget_wd(3).is_empty());
        assert!(m.lookup(p("d/e")).is_none());
        assert_eq!(m.len(), 2);
        let id = m.lookup(p("d")).unwrap();
        assert_eq!(m.remove(id), vec![2]);
        assert_eq!(m.len(), 1);
        assert_eq!(m.watch_count(), 1);
        // Slots are reused: no growth under create/delete churn.
        for i in 0..1000 {
            let (id, _) = m.place(p("t"), Some(10 + i)).unwrap();
            m.forget_wd(10 + i);
            assert!(!m.contains(id));
        }
        assert!(m.nodes.len() <= 3, "node slots grew to {}", m.nodes.len());
        // Unknown watch descriptors (already removed) are ignored.
        assert!(m.forget_wd(999_999).is_empty());
        // The root is never removed, only marked unwatched.
        m.forget_wd(1);
        assert_eq!(m.unwatched(), vec![ROOT]);
        assert_eq!(m.path(ROOT).unwrap(), p(""));
    }

    #[test]
    fn existing_descriptor_moves_its_node() {
        // After lost events, re-adding a watch on a directory that moved
        // returns its old descriptor: the node moves, with its subtree.
        let mut m = WatchMap::new();
        m.place(p(""), Some(1)).unwrap();
        m.place(p("a"), Some(2)).unwrap();
        m.place(p("a/sub"), Some(3)).unwrap();
        let (id, _) = m.place(p("z"), Some(2)).unwrap();
        assert_eq!(m.node_of_wd(2), Some(id));
        assert_eq!(m.path_of_wd(3).unwrap(), p("z/sub"));
        assert!(m.lookup(p("a")).is_none());
    }

    #[test]
    fn mark_and_sweep_drops_unseen() {
        let mut m = WatchMap::new();
        m.place(p(""), Some(1)).unwrap();
        m.place(p("a"), Some(2)).unwrap();
        m.place(p("a/b"), Some(3)).unwrap();
        m.place(p("c"), Some(4)).unwrap();
        m.begin_mark();
        let a = m.lookup(p("a")).unwrap();
        m.mark(a);
        let (c, _) = m.place(p("c"), Some(4)).unwrap();
        m.mark(c);
        let mut gone = m.sweep();
        gone.sort();
        assert_eq!(gone, vec![3]);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn unwatched_nodes_are_tracked_and_follow_renames() {
        let mut m = WatchMap::new();
        m.place(p(""), Some(1)).unwrap();
        m.place(p("a"), Some(2)).unwrap();
        let (u, _) = m.place(p("a/full"), None).unwrap();
        assert_eq!(m.unwatched(), vec![u]);
        m.rename(p("a"), p("b")).unwrap();
        assert_eq!(m.path(u).unwrap(), p("b/full"));
        m.set_wd(u, Some(7));
        assert!(m.unwatched().is_empty());
        assert_eq!(m.path_of_wd(7).unwrap(), p("b/full"));
    }

    #[test]
    fn byte_names_and_long_paths() {
        let mut m = WatchMap::new();
        m.place(p(""), Some(1)).unwrap();
        let weird = OsStr::from_bytes(b"-n\xff\nx");
        let mut rel = PathBuf::new();
        for i in 0..800 {
            rel = join(&rel, weird);
            m.place(&rel, Some(2 + i)).unwrap();
        }
        let got = m.path_of_wd(801).unwrap();
        assert_eq!(got, rel);
        assert!(got.as_os_str().len() > 4096);
        assert_eq!(split_parent(&rel).unwrap().1, weird);
    }
}

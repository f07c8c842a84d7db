//! Unit tests of the watch map (a child module of `map`, so they may look
//! at its slots).

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

#[test]
fn siblings_survive_the_removal_of_one_and_subtrees_leave_no_index() {
    let mut m = WatchMap::new();
    m.place(p(""), Some(1)).unwrap();
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        m.place(p(n), Some(10 + i as i32)).unwrap();
        m.place(&join(p(n), OsStr::new("in")), Some(20 + i as i32))
            .unwrap();
    }
    // The middle sibling (a list's interior link), then the first one.
    let b = m.lookup(p("b")).unwrap();
    let mut gone = m.remove(b);
    gone.sort();
    assert_eq!(gone, vec![11, 21]);
    let c = m.lookup(p("c")).unwrap();
    assert_eq!(m.remove(c).len(), 2);
    assert_eq!(m.path_of_wd(20).unwrap(), p("a/in"));
    assert!(m.lookup(p("b/in")).is_none() && m.lookup(p("c/in")).is_none());
    assert!(m.node_of_wd(21).is_none() && m.node_of_wd(22).is_none());
    assert_eq!((m.len(), m.watch_count()), (3, 3));
    // Names freed by the removal can be placed again.
    let (nb, _) = m.place(p("b"), Some(30)).unwrap();
    let (nbi, _) = m.place(p("b/in"), Some(31)).unwrap();
    assert_eq!(m.lookup(p("b/in")), Some(nbi));
    assert_eq!(m.path(nbi).unwrap(), p("b/in"));
    let mut gone = m.remove(nb);
    gone.sort();
    assert_eq!(gone, vec![30, 31]);
    assert_eq!((m.len(), m.watch_count()), (3, 3));
}

#[test]
fn removing_a_parent_after_a_middle_child_drops_every_descendant() {
    let mut m = WatchMap::new();
    m.place(p(""), Some(1)).unwrap();
    m.place(p("top"), Some(2)).unwrap();
    for (i, n) in ["top/a", "top/b", "top/c"].iter().enumerate() {
        m.place(p(n), Some(10 + i as i32)).unwrap();
        m.place(&join(p(n), OsStr::new("in")), Some(20 + i as i32))
            .unwrap();
    }
    let b = m.lookup(p("top/b")).unwrap();
    assert_eq!(m.remove(b).len(), 2);
    let top = m.lookup(p("top")).unwrap();
    let mut gone = m.remove(top);
    gone.sort();
    assert_eq!(gone, vec![2, 10, 12, 20, 22]);
    assert_eq!((m.len(), m.watch_count()), (1, 1));
    assert!(m.nodes.iter().skip(1).all(|n| n.is_none()));
}

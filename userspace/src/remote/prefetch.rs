//! Listings asked for ahead, so that the link never idles while the
//! engine walks: when the walk decides to descend into a directory DST
//! already has ([`crate::sync::ReplicaDir::prefetch`]), its `Open` and
//! `List` go out at once, without waiting, and the handle and the reply
//! on its way are kept here until the walk opens that directory. A
//! listing asked for that way which has arrived is looked at too: its
//! subdirectories are asked for in turn (the walk goes depth first and
//! gets to them later; one that it removes instead costs one listing).
//! With a round trip of 40 ms, a tree of a few hundred directories is
//! then listed in about as many round trips as it is deep, not one per
//! directory.
//!
//! Bounded: at most [`WINDOW`] listings the walk asked for and
//! [`WINDOW`] guessed ones on their way and not taken (separate budgets:
//! guesses never hold up what the walk needs now). The others wait as
//! names, at most [`QUEUE`], newest first, as the walk's own stack of
//! tasks takes them; beyond that a hint is dropped and the directory is
//! listed when opened.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::{Arc, Mutex};

use super::link::{lock, Link, Pending};
use super::protocol::messages::Msg;

/// Most listings asked for ahead and not taken yet, of each kind (the
/// walk's hints, guesses).
pub const WINDOW: usize = 64;
/// Most hints waiting for room in the window.
pub const QUEUE: usize = 1 << 16;

/// A listing asked for: the handle opened for it and its reply.
struct Sent {
    id: u32,
    pending: Pending,
    /// Asked for because the walk said so (not guessed from a listing):
    /// its subdirectories are asked for once it arrives.
    hinted: bool,
    /// Its subdirectories were asked for.
    expanded: bool,
    /// When it was asked for (the later, the sooner the walk needs its
    /// subdirectories: it goes depth first, newest task first).
    seq: u64,
}

#[derive(Default)]
struct State {
    /// Asked for, by (parent handle, name).
    sent: HashMap<(u32, CString), Sent>,
    /// Hints waiting for room, newest last (the walk takes its newest
    /// tasks first), the walk's and guesses; an entry no longer in
    /// `queued` (or no longer a guess, on the second) is skipped.
    stacks: [Vec<(u32, CString)>; 2],
    /// The names of `stack` still wanted, by parent handle (and
    /// whether the walk hinted them).
    queued: HashMap<u32, HashMap<CString, bool>>,
    /// The next [`Sent::seq`].
    seq: u64,
}

/// The listings asked for ahead on one link.
pub struct Prefetch {
    link: Arc<Link>,
    state: Mutex<State>,
}

impl Prefetch {
    /// Nothing asked for yet.
    pub fn new(link: Arc<Link>) -> Self {
        Prefetch {
            link,
            state: Mutex::new(State::default()),
        }
    }

    /// The walk will open the subdirectory `name` of the handle `parent`
    /// and list it: ask for it now if the window has room, else later.
    pub fn hint(&self, parent: u32, name: &CStr) {
        let mut s = lock(&self.state);
        self.expand(&mut s);
        add(&mut s, (parent, name.to_owned()), true);
        self.refill(&mut s);
    }

    /// Queues the subdirectories of the walk's listings that arrived,
    /// the newest listing's last (they are asked for first).
    fn expand(&self, s: &mut State) {
        let mut found: Vec<_> = s.sent.values_mut().flat_map(subdirs).collect();
        found.sort_unstable();
        for (_, key) in found {
            add(s, key, false);
        }
    }

    /// Opens and asks for the listing of `key` (nothing on failure: the
    /// link is down, the walk sees it).
    fn send(&self, s: &mut State, key: (u32, CString), hinted: bool) {
        let id = self.link.new_id();
        let open = Msg::Open {
            id,
            parent: key.0,
            name: Some(key.1.clone()),
        };
        if self.link.send(&open, false).is_err() {
            return;
        }
        if let Ok(pending) = self.link.request(|req| Msg::List { req, id }) {
            s.seq += 1;
            let x = Sent {
                id,
                pending,
                hinted,
                expanded: false,
                seq: s.seq,
            };
            s.sent.insert(key, x);
        }
    }

    /// Asks for waiting hints while the window has room.
    fn refill(&self, s: &mut State) {
        for hinted in [true, false] {
            let k = usize::from(!hinted);
            while s.sent.values().filter(|x| x.hinted == hinted).count() < WINDOW {
                let Some(key) = s.stacks[k].pop() else { break };
                let q = s.queued.get_mut(&key.0);
                let wanted = q.and_then(|q| match q.get(&key.1) {
                    Some(&h) if h == hinted => q.remove(&key.1),
                    _ => None,
                });
                if s.queued.get(&key.0).is_some_and(HashMap::is_empty) {
                    s.queued.remove(&key.0);
                }
                if let Some(hinted) = wanted {
                    self.send(s, key, hinted);
                }
            }
        }
    }

    /// The handle opened for `name` of `parent` and its listing on its
    /// way, if it was asked for.
    pub fn take(&self, parent: u32, name: &CStr) -> Option<(u32, Pending)> {
        let mut s = lock(&self.state);
        let key = (parent, name.to_owned());
        let mut got = s.sent.remove(&key);
        if got.is_none() {
            if let Some(q) = s.queued.get_mut(&parent) {
                q.remove(name);
            }
        }
        self.expand(&mut s);
        if let Some(x) = &mut got {
            // The walk lists it now: its subdirectories come next.
            x.hinted = true;
            x.seq = u64::MAX;
            for (_, key) in subdirs(x) {
                add(&mut s, key, false);
            }
        }
        self.refill(&mut s);
        got.map(|x| (x.id, x.pending))
    }

    /// The handle `parent` is being closed: what was asked for below it
    /// and not taken is dropped (its handles closed, and what was asked
    /// for below those), and its waiting hints are forgotten. Called
    /// before its `Close` is sent, so no `Open` under it follows that.
    pub fn forget(&self, parent: u32) {
        let mut s = lock(&self.state);
        let mut parents = vec![parent];
        while let Some(p) = parents.pop() {
            s.queued.remove(&p);
            let keys: Vec<_> = s.sent.keys().filter(|k| k.0 == p).cloned().collect();
            for k in keys {
                if let Some(x) = s.sent.remove(&k) {
                    parents.push(x.id);
                    self.drop_sent(x);
                }
            }
        }
        self.refill(&mut s);
    }

    /// Drops everything asked for (a rename may have moved what those
    /// listings describe): the walk lists those directories again.
    pub fn reset(&self) {
        let mut s = lock(&self.state);
        for (_, x) in std::mem::take(&mut s.sent) {
            self.drop_sent(x);
        }
        s.stacks = Default::default();
        s.queued.clear();
    }

    fn drop_sent(&self, x: Sent) {
        self.link.abandon(x.pending);
        let _ = self.link.send(&Msg::Close { id: x.id }, false);
    }
}

/// Queues `key` (the walk's hint when `hinted`), unless it was asked
/// for already.
fn add(s: &mut State, key: (u32, CString), hinted: bool) {
    if let Some(x) = s.sent.get_mut(&key) {
        x.hinted |= hinted;
        return;
    }
    let k = usize::from(!hinted);
    if s.stacks[k].len() >= QUEUE {
        return;
    }
    let q = s.queued.entry(key.0).or_default();
    match q.get_mut(&key.1) {
        // Already waiting as what it is now.
        Some(h) if *h || !hinted => return,
        // A guess the walk now wants: on its stack (the old place is
        // skipped).
        Some(h) => *h = true,
        None => {
            q.insert(key.1.clone(), hinted);
        }
    }
    s.stacks[k].push(key);
}

/// The subdirectories of `x` (as keys under its handle) when its listing
/// arrived and they were not asked for yet; only for a listing the walk
/// asked for (a guessed one is not looked into: a tree the walk removes
/// costs one listing, not all of them).
fn subdirs(x: &mut Sent) -> Vec<(u64, (u32, CString))> {
    if x.expanded || !x.hinted {
        return Vec::new();
    }
    let Some(entries) = x.pending.arrived() else {
        return Vec::new();
    };
    x.expanded = true;
    entries
        .iter()
        .filter(|e| {
            e.d_type == libc::DT_DIR
                || matches!(&e.meta, Ok(Some(m)) if m.kind == crate::stat::Kind::Dir)
        })
        .map(|e| (x.seq, (x.id, e.name.clone())))
        .collect()
}

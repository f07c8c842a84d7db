//! Listings asked for ahead, so that the link never idles while the
//! engine walks: when the walk decides to descend into a directory DST
//! already has ([`crate::sync::ReplicaDir::prefetch`]), its `Open` and
//! `List` go out at once, without waiting, and the handle and the reply
//! on its way are kept here until the walk opens that directory. With a
//! round trip of 40 ms, a tree of a few hundred directories is then
//! listed in about as many round trips as it is deep, not one per
//! directory.
//!
//! Bounded: at most [`WINDOW`] listings asked for and not taken (the
//! others wait as names, at most [`QUEUE`], newest first, as the walk's
//! own stack of tasks takes them; beyond that a hint is dropped and the
//! directory is listed when opened).

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::sync::{Arc, Mutex};

use super::link::{lock, Link, Pending};
use super::proto::Msg;

/// Most listings asked for ahead and not taken yet.
pub const WINDOW: usize = 64;
/// Most hints waiting for room in the window.
pub const QUEUE: usize = 1 << 16;

/// A listing asked for: the handle opened for it and its reply.
struct Sent {
    id: u32,
    pending: Pending,
}

#[derive(Default)]
struct State {
    /// Asked for, by (parent handle, name).
    sent: HashMap<(u32, CString), Sent>,
    /// Hints waiting for room, newest last (the walk takes its newest
    /// tasks first); an entry no longer in `queued` is skipped.
    stack: Vec<(u32, CString)>,
    /// The names of `stack` still wanted, by parent handle.
    queued: HashMap<u32, HashSet<CString>>,
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
        let key = (parent, name.to_owned());
        if s.sent.contains_key(&key) {
            return;
        }
        if s.sent.len() < WINDOW {
            self.send(&mut s, key);
        } else if s.stack.len() < QUEUE && s.queued.entry(parent).or_default().insert(key.1.clone())
        {
            s.stack.push(key);
        }
    }

    /// Opens and asks for the listing of `key` (nothing on failure: the
    /// link is down, the walk sees it).
    fn send(&self, s: &mut State, key: (u32, CString)) {
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
            s.sent.insert(key, Sent { id, pending });
        }
    }

    /// Asks for waiting hints while the window has room.
    fn refill(&self, s: &mut State) {
        while s.sent.len() < WINDOW {
            let Some(key) = s.stack.pop() else { return };
            let wanted = s.queued.get_mut(&key.0).is_some_and(|q| q.remove(&key.1));
            if s.queued.get(&key.0).is_some_and(HashSet::is_empty) {
                s.queued.remove(&key.0);
            }
            if wanted {
                self.send(s, key);
            }
        }
    }

    /// The handle opened for `name` of `parent` and its listing on its
    /// way, if it was asked for.
    pub fn take(&self, parent: u32, name: &CStr) -> Option<(u32, Pending)> {
        let mut s = lock(&self.state);
        let key = (parent, name.to_owned());
        let got = s.sent.remove(&key);
        if got.is_none() {
            if let Some(q) = s.queued.get_mut(&parent) {
                q.remove(name);
            }
        }
        self.refill(&mut s);
        got.map(|x| (x.id, x.pending))
    }

    /// The handle `parent` is being closed: what was asked for below it
    /// and not taken is dropped (its handles closed), and its waiting
    /// hints are forgotten. Called before its `Close` is sent, so no
    /// `Open` under it follows that.
    pub fn forget(&self, parent: u32) {
        let mut s = lock(&self.state);
        s.queued.remove(&parent);
        let keys: Vec<_> = s.sent.keys().filter(|k| k.0 == parent).cloned().collect();
        for k in keys {
            if let Some(x) = s.sent.remove(&k) {
                self.drop_sent(x);
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
        s.stack.clear();
        s.queued.clear();
    }

    fn drop_sent(&self, x: Sent) {
        self.link.abandon(x.pending);
        let _ = self.link.send(&Msg::Close { id: x.id }, false);
    }
}

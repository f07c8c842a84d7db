//! One inotify instance for many watchers (the daemon's pairs).
//!
//! A [`SharedInotify`] owns the inotify descriptor and one reader thread
//! that reads it and routes each event by its watch descriptor to the
//! inbox of every watcher that holds that watch ([`Inbox`], woken through
//! its eventfd). Each watcher keeps its own watch map; only the routing
//! table (`wd` → watcher ids) is shared. So:
//!
//! - an inbox is bounded ([`SharedInotify::new`]'s `limit`): a watcher that
//!   falls behind gets an `IN_Q_OVERFLOW` of its own (it rebuilds its map
//!   and rescans its tree) while the others lose nothing;
//! - `ENOSPC` from `inotify_add_watch` is returned to the watcher whose
//!   directory it was (it rescans that subtree periodically);
//! - a watcher that stops ([`Inbox`] dropped) removes the watches it alone
//!   held; the others' watches are untouched.
//!
//! Two watchers may watch the same directory (overlapping sources): the
//! kernel gives one watch descriptor per inode and instance, so a watch
//! is added with `IN_MASK_ADD` and removed from the kernel when its last
//! holder lets it go. Only a kernel queue overflow of the shared instance
//! (the reader thread starved for `fs.inotify.max_queued_events` events)
//! cannot be attributed to one watcher: every watcher is told.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use inotify::EventMask;

use crate::sys::notify::{self, EventFd};

/// An event as the reader copied it out of the kernel's buffer.
struct Raw {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Option<Box<[u8]>>,
}

/// An event handed to a watcher: `(wd, mask, cookie, name)`.
pub type Routed = (i32, EventMask, u32, Option<OsString>);

/// A watcher's queue of routed events.
struct Queue {
    events: VecDeque<Raw>,
    /// Events were dropped (the queue was full): the watcher must rescan.
    overflow: bool,
}

/// What the reader and one watcher share.
struct Slot {
    queue: Mutex<Queue>,
    wake: EventFd,
}

/// The routing table: who holds each watch.
#[derive(Default)]
struct Routes {
    /// The first holder of each watch.
    first: HashMap<i32, u32>,
    /// The other holders of the few watches held by several watchers.
    more: HashMap<i32, Vec<u32>>,
    slots: HashMap<u32, Arc<Slot>>,
    next_id: u32,
}

impl Routes {
    fn holds(&self, wd: i32, id: u32) -> bool {
        self.first.get(&wd) == Some(&id) || self.more.get(&wd).is_some_and(|v| v.contains(&id))
    }

    fn add(&mut self, wd: i32, id: u32) {
        if self.holds(wd, id) {
            return;
        }
        match self.first.entry(wd) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.more.entry(wd).or_default().push(id);
            }
        }
    }

    /// Drops `id`'s hold on `wd`; true when nobody holds it any more.
    fn remove(&mut self, wd: i32, id: u32) -> bool {
        if let Some(v) = self.more.get_mut(&wd) {
            if let Some(i) = v.iter().position(|&x| x == id) {
                v.swap_remove(i);
            } else if self.first.get(&wd) == Some(&id) {
                // Promote another holder.
                let next = v.swap_remove(0);
                self.first.insert(wd, next);
            } else {
                return false;
            }
            if v.is_empty() {
                self.more.remove(&wd);
            }
            return false;
        }
        if self.first.get(&wd) == Some(&id) {
            self.first.remove(&wd);
            return true;
        }
        false
    }

    fn holders(&self, wd: i32, out: &mut Vec<u32>) {
        out.clear();
        if let Some(&f) = self.first.get(&wd) {
            out.push(f);
        }
        if let Some(v) = self.more.get(&wd) {
            out.extend_from_slice(v);
        }
    }
}

struct Inner {
    fd: OwnedFd,
    routes: Mutex<Routes>,
    /// The most events an inbox holds.
    limit: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One inotify instance shared by many watchers (see the module docs).
pub struct SharedInotify {
    inner: Arc<Inner>,
    stop: Arc<EventFd>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

/// The default bound of a watcher's inbox (events).
pub const DEFAULT_INBOX: usize = 16384;

impl SharedInotify {
    /// Creates the instance and starts its reader thread; each watcher's
    /// inbox holds at most `limit` events.
    pub fn new(limit: usize) -> io::Result<Arc<SharedInotify>> {
        use rustix::fs::inotify::{init, CreateFlags};
        let fd = init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let inner = Arc::new(Inner {
            fd,
            routes: Mutex::new(Routes::default()),
            limit: limit.max(1),
        });
        let stop = Arc::new(EventFd::new()?);
        let (i2, s2) = (inner.clone(), stop.clone());
        let h = std::thread::Builder::new()
            .name("dirsync-inotify".into())
            .spawn(move || read_loop(&i2, &s2))?;
        Ok(Arc::new(SharedInotify {
            inner,
            stop,
            reader: Mutex::new(Some(h)),
        }))
    }

    /// A new watcher's inbox.
    pub fn join(&self) -> io::Result<Inbox> {
        let slot = Arc::new(Slot {
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                overflow: false,
            }),
            wake: EventFd::new()?,
        });
        let mut r = lock(&self.inner.routes);
        let id = r.next_id;
        r.next_id = r.next_id.wrapping_add(1);
        r.slots.insert(id, slot.clone());
        Ok(Inbox {
            inner: self.inner.clone(),
            id,
            slot,
        })
    }

    /// The watches held (all watchers).
    pub fn watches(&self) -> usize {
        lock(&self.inner.routes).first.len()
    }
}

impl std::fmt::Debug for SharedInotify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedInotify")
            .field("watches", &self.watches())
            .finish()
    }
}

impl Drop for SharedInotify {
    fn drop(&mut self) {
        self.stop.notify();
        if let Some(h) = lock(&self.reader).take() {
            let _ = h.join();
        }
    }
}

/// The reader thread: reads the instance until `stop`.
fn read_loop(inner: &Inner, stop: &EventFd) {
    // inotify events are at most 16 + NAME_MAX + 1 bytes: 64 KiB holds
    // hundreds of them.
    let mut buf = vec![0u8; 64 * 1024];
    let mut holders = Vec::new();
    loop {
        match notify::wait_readable(&[inner.fd.as_fd(), stop.as_fd()], None) {
            Ok(r) if r[1] => return,
            Ok(_) => {}
            Err(_) => return,
        }
        loop {
            match rustix::io::read(&inner.fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => route(inner, &buf[..n], &mut holders),
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return,
            }
        }
    }
}

/// Parses `struct inotify_event`s (`wd`, `mask`, `cookie`, `len`, then
/// `len` bytes of NUL-padded name) and routes them.
fn route(inner: &Inner, mut buf: &[u8], holders: &mut Vec<u32>) {
    let mut woken: Vec<Arc<Slot>> = Vec::new();
    let mut routes = lock(&inner.routes);
    while buf.len() >= 16 {
        let word = |i: usize| [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]];
        let wd = i32::from_ne_bytes(word(0));
        let mask = u32::from_ne_bytes(word(4));
        let cookie = u32::from_ne_bytes(word(8));
        let len = u32::from_ne_bytes(word(12)) as usize;
        let Some(raw_name) = buf.get(16..16 + len) else {
            break;
        };
        let name_bytes = raw_name.split(|&b| b == 0).next().unwrap_or(&[]);
        let name = (!name_bytes.is_empty()).then(|| Box::<[u8]>::from(name_bytes));
        buf = &buf[16 + len..];
        if mask & libc::IN_Q_OVERFLOW != 0 {
            // The shared queue overflowed: nobody knows whose events were
            // lost, so every watcher rescans.
            for s in routes.slots.values() {
                lock(&s.queue).overflow = true;
                woken.push(s.clone());
            }
            continue;
        }
        routes.holders(wd, holders);
        for id in holders.iter() {
            let Some(s) = routes.slots.get(id) else {
                continue;
            };
            let mut q = lock(&s.queue);
            if q.events.len() >= inner.limit {
                q.overflow = true;
            } else {
                q.events.push_back(Raw {
                    wd,
                    mask,
                    cookie,
                    name: name.clone(),
                });
            }
            drop(q);
            if !woken.iter().any(|w| Arc::ptr_eq(w, s)) {
                woken.push(s.clone());
            }
        }
        if mask & libc::IN_IGNORED != 0 {
            // The kernel removed the watch: nobody holds it any more.
            routes.first.remove(&wd);
            routes.more.remove(&wd);
        }
    }
    drop(routes);
    for s in woken {
        s.wake.notify();
    }
}

/// One watcher's side of a [`SharedInotify`]: adds and removes its
/// watches and takes the events routed to it. Dropping it removes the
/// watches only it held.
pub struct Inbox {
    inner: Arc<Inner>,
    id: u32,
    slot: Arc<Slot>,
}

impl Inbox {
    /// Adds (or extends) the watch on the open directory `dir` and routes
    /// its events here.
    pub fn add_watch(&self, dir: BorrowedFd<'_>, fallback: &Path, mask: u32) -> io::Result<i32> {
        // The routing table is locked across the system call: an event of
        // the new watch read meanwhile waits for the route.
        let mut r = lock(&self.inner.routes);
        let wd = notify::add_watch(
            self.inner.fd.as_fd(),
            dir,
            fallback,
            mask | libc::IN_MASK_ADD,
        )?;
        r.add(wd, self.id);
        Ok(wd)
    }

    /// Lets the watch `wd` go (removed from the kernel when no other
    /// watcher holds it).
    pub fn rm_watch(&self, wd: i32) {
        let mut r = lock(&self.inner.routes);
        if r.remove(wd, self.id) {
            notify::rm_watch(self.inner.fd.as_fd(), wd);
        }
    }

    /// Readable when events (or an overflow) are waiting.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.slot.wake.as_fd()
    }

    /// Takes what is waiting (an overflow last, as `IN_Q_OVERFLOW` with
    /// watch descriptor -1); empty when nothing is.
    pub fn take(&self) -> Vec<Routed> {
        self.slot.wake.drain();
        let (events, overflow) = {
            let mut q = lock(&self.slot.queue);
            (
                std::mem::take(&mut q.events),
                std::mem::replace(&mut q.overflow, false),
            )
        };
        let mut out: Vec<Routed> = events
            .into_iter()
            .map(|e| {
                (
                    e.wd,
                    EventMask::from_bits_retain(e.mask),
                    e.cookie,
                    e.name.map(|n| OsString::from_vec(n.into_vec())),
                )
            })
            .collect();
        if overflow {
            out.push((-1, EventMask::Q_OVERFLOW, 0, None));
        }
        out
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut r = lock(&self.inner.routes);
        r.slots.remove(&self.id);
        let mine: Vec<i32> = r
            .first
            .iter()
            .filter(|&(_, &id)| id == self.id)
            .map(|(&wd, _)| wd)
            .chain(
                r.more
                    .iter()
                    .filter(|(_, v)| v.contains(&self.id))
                    .map(|(&wd, _)| wd),
            )
            .collect();
        for wd in mine {
            if r.remove(wd, self.id) {
                notify::rm_watch(self.inner.fd.as_fd(), wd);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Routes;

    #[test]
    fn routes_count_holders() {
        let mut r = Routes::default();
        r.add(5, 1);
        r.add(5, 1);
        r.add(5, 2);
        r.add(6, 2);
        let mut h = Vec::new();
        r.holders(5, &mut h);
        assert_eq!(h, [1, 2]);
        // The first holder leaves: the other keeps the watch.
        assert!(!r.remove(5, 1));
        r.holders(5, &mut h);
        assert_eq!(h, [2]);
        assert!(r.remove(5, 2));
        assert!(!r.remove(5, 2));
        r.holders(5, &mut h);
        assert!(h.is_empty());
        assert!(!r.remove(6, 1));
        assert!(r.remove(6, 2));
    }
}

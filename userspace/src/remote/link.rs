//! The engine's end of a link to an agent: requests go out through one
//! shared writer; a reader thread takes the agent's replies to whoever
//! waits for them (by request number) and handles its notes (what an
//! asynchronous operation did) as they come.
//!
//! Only listing, stat, rename, compare and the final barrier wait for a
//! reply; every change (create, remove, attributes, links, file content)
//! is sent without waiting, in order, and its outcome comes back as a
//! note: a failure is reported then, and the counters of the summary are
//! corrected by [`Link::finish`]. So there is no round trip per file.
//!
//! Everything the peer sends is bounded here: a listing may hold at most
//! [`MAX_LIST_ENTRIES`] entries, the listings waiting together at most
//! [`MAX_LIST_BYTES`] (counted as each part arrives, before it is kept);
//! the requests waiting are at most [`MAX_WAITING`] (only this side adds
//! them); the peer's counts saturate. When the reader thread ends for any
//! reason, a panic included, the link is down and every waiter wakes.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use super::protocol::frame::{FrameError, FrameReader, FrameWriter};
use super::protocol::messages::{Answer, Entry, Msg, NoteOp};
use crate::report::{Event, Reporter, Summary};

/// What a waiting request gets: the answer and the listing parts.
type Outcome = Result<(Answer, Vec<Entry>), io::Error>;

/// The most entries one listing may have. An honest agent sends every
/// entry of a directory: this is a directory of a million entries (more
/// would not fit [`MAX_LIST_BYTES`] anyway).
pub const MAX_LIST_ENTRIES: usize = 1 << 20;

/// The most memory the listings waiting for their end may hold together
/// (each entry counted as its size in memory plus its name and link
/// target): 192 MiB, a million entries with names of 30 bytes. A peer
/// that sends more (an endless listing, or many at once) is cut before
/// it is kept.
pub const MAX_LIST_BYTES: usize = 192 << 20;

/// The most requests waiting for a reply at once. Only this side adds
/// them (the prefetch window of 64 listings, one listing ahead per
/// directory being synced, the stats and file plans of the workers), so
/// reaching it is a bug, refused rather than grown without bound.
pub const MAX_WAITING: usize = 4096;

/// What an entry costs while its listing waits (see [`MAX_LIST_BYTES`]).
fn entry_cost(e: &Entry) -> usize {
    std::mem::size_of::<Entry>()
        + e.name.as_bytes().len()
        + 16
        + e.link.as_ref().map_or(0, |l| l.len() + 16)
}

struct Waiter {
    entries: Vec<Entry>,
    /// What `entries` costs (see [`entry_cost`]).
    cost: usize,
    tx: mpsc::Sender<Outcome>,
}

/// The waiting requests and what their listings cost together.
#[derive(Default)]
struct Waiters {
    map: HashMap<u32, Waiter>,
    cost: usize,
}

/// Corrections of the engine's counters from the agent's notes.
#[derive(Debug, Default, Clone, Copy)]
struct Adjust {
    copied: i64,
    bytes: i64,
    dirs_created: i64,
    links: i64,
    deleted: i64,
    specials: i64,
    errors: i64,
}

fn apply(v: &mut u64, d: i64) {
    *v = v.saturating_add_signed(d);
}

/// `v += d`, saturating (the peer's counts are untrusted).
fn add(v: &mut i64, d: i64) {
    *v = v.saturating_add(d);
}

/// A link to an agent (see the module docs).
pub struct Link {
    w: Mutex<FrameWriter>,
    waiters: Mutex<Waiters>,
    next_req: AtomicU32,
    next_id: AtomicU32,
    /// Why the link is down.
    down: Mutex<Option<String>>,
    adjust: Mutex<Adjust>,
    /// An out-of-space failure: the run must stop.
    fatal: Mutex<Option<(PathBuf, io::Error)>>,
    reporter: Arc<dyn Reporter>,
    /// How DST is shown (`host:path`).
    label: PathBuf,
    /// The peer, for messages.
    host: String,
    /// Feature bits both sides have (`messages::FEATURE_*`).
    features: std::sync::atomic::AtomicU64,
    /// Requests that waited for a reply (round trips).
    calls: std::sync::atomic::AtomicU64,
    /// Kinds of notes (`1 << NoteOp`) already warned about for lack of
    /// privilege: one warning per kind (`-o -g -X -A`, as locally).
    warned: std::sync::atomic::AtomicU32,
    /// Requests sent whose reply nobody took yet, and the most at once.
    pending: (std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64),
    /// Raised by the client's `WatchStop` (a watching server sets it).
    watch_stop: std::sync::OnceLock<Arc<crate::sys::notify::EventFd>>,
}

/// A request on its way: [`Link::wait`] takes its reply.
pub struct Pending {
    rx: mpsc::Receiver<Outcome>,
    /// The reply, once [`Pending::arrived`] saw it.
    got: Option<Outcome>,
}

impl Pending {
    /// The listing, if the reply is here (without waiting).
    pub fn arrived(&mut self) -> Option<&[Entry]> {
        if self.got.is_none() {
            self.got = self.rx.try_recv().ok();
        }
        match &self.got {
            Some(Ok((_, entries))) => Some(entries),
            _ => None,
        }
    }
}

/// The error every call gets once the link is down.
pub fn lost(host: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("connection to {host} lost: {why}"),
    )
}

impl Link {
    /// Starts the reader thread on `r`; requests go to `w`.
    pub fn start(
        r: FrameReader,
        w: FrameWriter,
        reporter: Arc<dyn Reporter>,
        label: &Path,
        host: &str,
    ) -> Arc<Link> {
        let link = Arc::new(Link {
            w: Mutex::new(w),
            waiters: Mutex::new(Waiters::default()),
            next_req: AtomicU32::new(1),
            next_id: AtomicU32::new(1),
            down: Mutex::new(None),
            adjust: Mutex::new(Adjust::default()),
            fatal: Mutex::new(None),
            reporter,
            label: label.to_path_buf(),
            host: host.to_string(),
            features: std::sync::atomic::AtomicU64::new(0),
            calls: std::sync::atomic::AtomicU64::new(0),
            warned: Default::default(),
            pending: Default::default(),
            watch_stop: Default::default(),
        });
        let l = link.clone();
        std::thread::spawn(move || {
            // Down when the thread ends, however (a panic included):
            // nobody waits for a reply that cannot come.
            let guard = DownOnDrop(l);
            guard.0.clone().read_loop(r);
        });
        link
    }

    /// A `WatchStop` from the peer raises `flag` (else it is an error).
    pub fn on_watch_stop(&self, flag: Arc<crate::sys::notify::EventFd>) {
        let _ = self.watch_stop.set(flag);
    }

    /// Records the feature bits both sides have.
    pub fn set_features(&self, f: u64) {
        self.features.store(f, Ordering::Relaxed);
    }

    /// The feature bits both sides have.
    pub fn features(&self) -> u64 {
        self.features.load(Ordering::Relaxed)
    }

    /// How many requests waited for a reply so far (round trips).
    pub fn round_trips(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The most requests that were on their way at once (sent, reply not
    /// taken yet): how far the listings were pipelined.
    pub fn most_pending(&self) -> u64 {
        self.pending.1.load(Ordering::Relaxed)
    }

    /// The peer's name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Why the link is down, if it is.
    pub fn down(&self) -> Option<String> {
        lock(&self.down).clone()
    }

    /// A new handle or file stream number.
    pub fn new_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn check(&self) -> io::Result<()> {
        if let Some(why) = self.down() {
            return Err(lost(&self.host, &why));
        }
        if let Some((_, e)) = &*lock(&self.fatal) {
            return Err(io::Error::from_raw_os_error(
                e.raw_os_error().unwrap_or(libc::ENOSPC),
            ));
        }
        Ok(())
    }

    /// Sends `m` without waiting (buffered; `flush` to push it out now).
    pub fn send(&self, m: &Msg, flush: bool) -> io::Result<()> {
        self.check()?;
        let (kind, payload) = m.encode();
        let mut w = lock(&self.w);
        let r = w
            .write(kind, &payload)
            .and_then(|()| if flush { w.flush() } else { Ok(()) });
        if let Err(e) = &r {
            self.set_down(&e.to_string());
        }
        r
    }

    /// Sends what is buffered (the end of an operation: the changes sent
    /// without waiting must not wait for the next request).
    pub fn flush(&self) -> io::Result<()> {
        self.check()?;
        let r = lock(&self.w).flush();
        if let Err(e) = &r {
            self.set_down(&e.to_string());
        }
        r
    }

    /// Sends the request `make(req)` and waits for its reply.
    pub fn call(&self, make: impl FnOnce(u32) -> Msg) -> io::Result<(Answer, Vec<Entry>)> {
        let p = self.request(make)?;
        self.wait(p)
    }

    /// Sends the request `make(req)` (flushed) without waiting: several
    /// can be on their way at once; [`Link::wait`] takes the reply.
    pub fn request(&self, make: impl FnOnce(u32) -> Msg) -> io::Result<Pending> {
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        {
            let mut w = lock(&self.waiters);
            if w.map.len() >= MAX_WAITING {
                return Err(io::Error::other(format!(
                    "more than {MAX_WAITING} requests to {} waiting",
                    self.host
                )));
            }
            w.map.insert(
                req,
                Waiter {
                    entries: Vec::new(),
                    cost: 0,
                    tx,
                },
            );
        }
        if let Err(e) = self.send(&make(req), true) {
            lock(&self.waiters).remove(req);
            return Err(e);
        }
        let now = self.pending.0.fetch_add(1, Ordering::Relaxed) + 1;
        self.pending.1.fetch_max(now, Ordering::Relaxed);
        Ok(Pending { rx, got: None })
    }

    /// The reply of a request sent by [`Link::request`].
    pub fn wait(&self, p: Pending) -> io::Result<(Answer, Vec<Entry>)> {
        let r = match p.got {
            Some(got) => Ok(got),
            None => p.rx.recv(),
        };
        self.pending.0.fetch_sub(1, Ordering::Relaxed);
        match r {
            Ok(r) => r,
            Err(_) => Err(lost(&self.host, &self.down().unwrap_or_default())),
        }
    }

    /// A request whose reply nobody will take (its listing is not
    /// needed any more): no longer counted as on its way.
    pub fn abandon(&self, p: Pending) {
        drop(p);
        self.pending.0.fetch_sub(1, Ordering::Relaxed);
    }

    fn set_down(&self, why: &str) {
        let mut d = lock(&self.down);
        if d.is_none() {
            *d = Some(why.to_string());
        }
        drop(d);
        // Wake every waiter: their senders are dropped.
        let mut w = lock(&self.waiters);
        w.map.clear();
        w.cost = 0;
    }

    fn read_loop(self: Arc<Self>, mut r: FrameReader) {
        let why = loop {
            let m = match r.read() {
                Ok((kind, payload)) => Msg::decode(kind, payload),
                Err(FrameError::Closed) => break "the connection was closed".to_string(),
                Err(e) => break format!("{e}"),
            };
            match m {
                Ok(Msg::Bye) => break "the agent said goodbye".to_string(),
                Ok(m) => {
                    if let Err(e) = self.dispatch(m) {
                        break format!("protocol error: {e}");
                    }
                }
                Err(e) => break format!("protocol error: {e}"),
            }
        };
        self.set_down(&why);
    }

    fn dispatch(&self, m: Msg) -> Result<(), String> {
        match m {
            Msg::Entries { req, entries } => {
                let mut w = lock(&self.waiters);
                let cost: usize = entries.iter().map(entry_cost).sum();
                let total = w.cost.saturating_add(cost);
                let waiter = w.map.get_mut(&req).ok_or("a listing nobody asked for")?;
                if waiter.entries.len().saturating_add(entries.len()) > MAX_LIST_ENTRIES {
                    return Err(format!("a listing of more than {MAX_LIST_ENTRIES} entries"));
                }
                if total > MAX_LIST_BYTES {
                    return Err(format!(
                        "listings of more than {} MiB",
                        MAX_LIST_BYTES >> 20
                    ));
                }
                waiter.entries.extend(entries);
                waiter.cost += cost;
                w.cost = total;
            }
            Msg::Reply { req, result } => {
                let waiter = lock(&self.waiters)
                    .remove(req)
                    .ok_or("a reply nobody asked for")?;
                let out = result
                    .map(|a| (a, waiter.entries))
                    .map_err(io::Error::from_raw_os_error);
                let _ = waiter.tx.send(out);
            }
            Msg::Note {
                op,
                path,
                errno,
                count,
                silent,
            } => {
                if !relative(&path) {
                    return Err("a note about a path outside the tree".into());
                }
                self.note(op, &path, errno, count, silent)
            }
            Msg::WatchStop => self.watch_stop.get().ok_or("an unasked stop")?.notify(),
            _ => return Err("an unexpected message".into()),
        }
        Ok(())
    }

    /// Handles what an asynchronous operation did.
    fn note(&self, op: NoteOp, path: &[u8], errno: i32, count: u64, silent: bool) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let mut a = lock(&self.adjust);
        if errno == 0 {
            match op {
                NoteOp::Remove => add(&mut a.deleted, count - 1),
                NoteOp::Symlink | NoteOp::Special | NoteOp::Copy => add(&mut a.deleted, count),
                _ => {}
            }
            return;
        }
        let what = match op {
            NoteOp::Open => "cannot open directory",
            NoteOp::CreateDir => {
                add(&mut a.dirs_created, -1);
                "cannot create directory"
            }
            NoteOp::Remove => {
                add(&mut a.deleted, -1);
                "cannot delete"
            }
            NoteOp::SetAttrs => "cannot set attributes",
            NoteOp::Symlink => {
                add(&mut a.links, -1);
                "cannot create symlink"
            }
            NoteOp::Special => {
                add(&mut a.specials, -1);
                "cannot create"
            }
            NoteOp::Copy => {
                add(&mut a.copied, -1);
                add(&mut a.bytes, -count);
                "cannot copy"
            }
            NoteOp::Owner => "cannot set owner or group",
            NoteOp::Xattrs => "cannot set extended attributes",
        };
        let privilege = [libc::EPERM, libc::EACCES, libc::EOPNOTSUPP].contains(&errno);
        if matches!(op, NoteOp::Owner | NoteOp::Xattrs) && privilege {
            let bit = 1 << op as u32;
            if self.warned.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
                add(&mut a.errors, 1);
                drop(a);
                let e = io::Error::from_raw_os_error(errno);
                let message = format!(
                    "{what}: {e} (not applied here and to later entries; the rest is synced)"
                );
                let path = self.path(path);
                self.reporter.event(&Event::Warning {
                    path: &path,
                    message: &message,
                });
            }
            return;
        }
        if (op == NoteOp::Remove && errno == libc::ENOENT) || silent {
            return;
        }
        let e = io::Error::from_raw_os_error(errno);
        let p = self.path(path);
        if crate::error::is_out_of_space(&e) {
            let mut f = lock(&self.fatal);
            if f.is_none() {
                *f = Some((p, e));
            }
            return;
        }
        add(&mut a.errors, 1);
        drop(a);
        let message = format!("{what}: {e}");
        self.reporter.event(&Event::Error {
            path: &p,
            message: &message,
        });
    }

    /// The user-visible path of `rel`.
    pub fn path(&self, rel: &[u8]) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        if rel.is_empty() {
            self.label.clone()
        } else {
            self.label.join(std::ffi::OsStr::from_bytes(rel))
        }
    }

    /// Waits until the agent has done everything sent so far, then
    /// corrects `summary` with what its notes said. An error: the link is
    /// down, or an out-of-space failure stopped the run (path, error).
    /// `last`: the goodbye goes right behind the barrier (the end of a
    /// one-shot run: the agent answers, then ends, and the transport with
    /// it, without another round trip).
    pub fn finish(
        &self,
        summary: &mut Summary,
        last: bool,
    ) -> Result<(), (Option<PathBuf>, io::Error)> {
        if let Some((p, e)) = lock(&self.fatal).take() {
            return Err((Some(p), e));
        }
        let barrier = self
            .request(|req| Msg::Barrier { req })
            .map_err(|e| (None, e))?;
        if last {
            let _ = self.send(&Msg::Bye, true);
        }
        self.wait(barrier).map_err(|e| (None, e))?;
        if let Some((p, e)) = lock(&self.fatal).take() {
            return Err((Some(p), e));
        }
        let a = *lock(&self.adjust);
        apply(&mut summary.copied, a.copied);
        apply(&mut summary.bytes, a.bytes);
        apply(&mut summary.dirs_created, a.dirs_created);
        apply(&mut summary.links, a.links);
        apply(&mut summary.deleted, a.deleted);
        apply(&mut summary.specials, a.specials);
        apply(&mut summary.errors, a.errors);
        *lock(&self.adjust) = Adjust::default();
        Ok(())
    }
}

impl Waiters {
    /// Takes the waiter of `req` out, with what its listing cost.
    fn remove(&mut self, req: u32) -> Option<Waiter> {
        let w = self.map.remove(&req)?;
        self.cost = self.cost.saturating_sub(w.cost);
        Some(w)
    }
}

/// Marks the link down when dropped: the reader thread holds it, so the
/// link is down once that thread ends, even by a panic.
struct DownOnDrop(Arc<Link>);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let why = if std::thread::panicking() {
            "internal error: the link's reader failed"
        } else {
            "the link's reader stopped"
        };
        self.0.set_down(why);
    }
}

/// Whether a path from the peer is relative and stays in the tree (no
/// `/` first, no `..`), so that it cannot stand for another path than
/// the one under the label in messages.
fn relative(p: &[u8]) -> bool {
    p.first() != Some(&b'/') && p.split(|&b| b == b'/').all(|c| c != b"..")
}

/// Locks, ignoring poisoning (a panicked holder left consistent data).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::NullReporter;
    use std::time::Duration;

    /// A stream whose read panics after a while (a bug under the reader).
    struct Panics;

    impl io::Read for Panics {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(Duration::from_millis(200));
            panic!("a bug under the link's reader");
        }
    }

    #[test]
    fn a_panic_of_the_reader_wakes_every_waiter() {
        let (r, w) = (
            FrameReader::new(Box::new(Panics)),
            FrameWriter::new(Box::new(io::sink())),
        );
        let link = Link::start(r, w, Arc::new(NullReporter), Path::new("h:/d"), "h");
        let (tx, rx) = mpsc::channel();
        let l = link.clone();
        std::thread::spawn(move || {
            let _ = tx.send(l.call(|req| Msg::Barrier { req }).map(|_| ()));
        });
        let r = rx.recv_timeout(Duration::from_secs(10));
        let e = r.expect("the waiter still waits").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(link.down().unwrap().contains("internal error"));
    }
}

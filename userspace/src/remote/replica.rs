//! [The seam](crate::sync::replica) implemented over a [`Link`]: a DST
//! that an agent on another machine holds. The engine (walk, decide,
//! install) runs unchanged on this side.
//!
//! A handle is a number the agent maps to an open directory descriptor.
//! A listing brings the metadata, symlink targets and device numbers of
//! the whole directory in one exchange (the agent stats its own tree with
//! its own backend), and `stat`/`read_link`/`rdev` of a listed entry are
//! answered from it. A directory this side just created is known to be
//! empty: no exchange at all. Changes are sent without waiting. The
//! listings of directories the walk is about to open are asked for ahead
//! ([`super::prefetch`]): the round trips overlap.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};

use super::link::{lock, Link, Pending};
use super::prefetch::Prefetch;
use super::protocol::messages::{Answer, Entry, Msg, DELTA_MIN, FEATURE_DELTA, FEATURE_FRESH};
use crate::attrs::xattr::{Selection, Xattrs};
use crate::stat::{Kind, Meta};
use crate::sync::{Attrs, Committed, IncomingFile, Over, Replica, ReplicaDir};
use crate::sys::{self, DirEntry};

mod fidelity;

/// Size of the data messages of a file.
const CHUNK: usize = 256 << 10;

/// A DST held by an agent.
pub struct RemoteReplica {
    link: Arc<Link>,
    pre: Arc<Prefetch>,
    /// A one-shot run: the root's listing is asked for with its opening
    /// (the run lists it next; a watcher's operations mostly do not), and
    /// a directory written into does not ask for its own attributes (a
    /// watcher's operation ends with that exchange: once it is over, the
    /// agent has carried out the operation, and the watcher may stop).
    one_shot: bool,
    /// `-S`: only data extents go on the wire.
    sparse: bool,
}

impl RemoteReplica {
    /// The replica behind `link`.
    pub fn new(link: Arc<Link>) -> Self {
        let pre = Arc::new(Prefetch::new(link.clone()));
        RemoteReplica {
            link,
            pre,
            one_shot: false,
            sparse: false,
        }
    }

    /// With what the run's options `o` ask of the content (`-S`).
    pub fn with_options(mut self, o: &crate::sync::Options) -> Self {
        self.sparse = o.sparse;
        self
    }

    /// The replica of a one-shot run (push, or the engine of a pull): the
    /// root's listing travels with the root's stat, and the run's final
    /// barrier is the only exchange after the walk.
    pub fn one_shot(link: Arc<Link>) -> Self {
        RemoteReplica {
            one_shot: true,
            ..Self::new(link)
        }
    }
}

fn unexpected() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "unexpected reply from the agent",
    )
}

impl Replica for RemoteReplica {
    fn root(&self) -> io::Result<Box<dyn ReplicaDir>> {
        let id = self.link.new_id();
        let m = Msg::Open {
            id,
            parent: 0,
            name: None,
        };
        self.link.send(&m, false)?;
        let mut d = RemoteDir::new(&self.link, &self.pre, id, false);
        d.one_shot = self.one_shot;
        d.sparse = self.sparse;
        if self.one_shot {
            *lock(&d.ahead) = Some(self.link.request(|req| Msg::List { req, id })?);
        }
        Ok(Box::new(d))
    }

    fn rename(&self, from: &[CString], to: &[CString]) -> io::Result<bool> {
        // Listings asked for before the rename may describe what it moves.
        self.pre.reset();
        let (from, to) = (from.to_vec(), to.to_vec());
        match self.link.call(|req| Msg::Rename { req, from, to })? {
            (Answer::Bool(b), _) => Ok(b),
            _ => Err(unexpected()),
        }
    }

    fn hard_link(
        &self,
        target: &[CString],
        at: &[CString],
    ) -> io::Result<crate::sync::replica::Linked> {
        self.link_names(target, at)
    }

    fn id_resolver(&self) -> Option<Arc<dyn crate::attrs::owner::Resolve>> {
        Some(self.resolver())
    }
}

/// One directory handle of a [`RemoteReplica`].
struct RemoteDir {
    link: Arc<Link>,
    pre: Arc<Prefetch>,
    id: u32,
    /// Created by this side just now: empty, no need to ask.
    fresh: bool,
    /// Its listing, asked for ahead and on its way.
    ahead: Mutex<Option<Pending>>,
    /// A change inside it was sent: its own mtime is not known any more.
    written: std::sync::atomic::AtomicBool,
    /// Of a one-shot run ([`RemoteReplica::one_shot`]).
    one_shot: bool,
    /// The last listing, by name.
    cache: Mutex<HashMap<CString, Entry>>,
    /// Subdirectories created through this handle.
    created: Mutex<HashSet<CString>>,
    /// `-S` ([`RemoteReplica::with_options`]).
    sparse: bool,
    /// Whether it has extended attributes, as its parent's listing said.
    self_xattrs: Option<bool>,
    /// Attributes fetched by `xattr_names`, for the `xattrs` that follows.
    xvals: Mutex<HashMap<Option<CString>, Xattrs>>,
    /// Attributes of the entries its listing flagged, asked for with the
    /// listing and on their way ([`RemoteDir::ask_xattrs_ahead`]).
    xahead: Mutex<HashMap<CString, Pending>>,
}

impl RemoteDir {
    fn new(link: &Arc<Link>, pre: &Arc<Prefetch>, id: u32, fresh: bool) -> Self {
        RemoteDir {
            link: link.clone(),
            pre: pre.clone(),
            id,
            fresh,
            ahead: Mutex::new(None),
            written: Default::default(),
            one_shot: false,
            cache: Mutex::new(HashMap::new()),
            created: Mutex::new(HashSet::new()),
            sparse: false,
            self_xattrs: None,
            xvals: Mutex::new(HashMap::new()),
            xahead: Mutex::new(HashMap::new()),
        }
    }

    /// A handle on its subdirectory `name` (number `id`).
    fn child(&self, id: u32, fresh: bool, name: &CStr) -> RemoteDir {
        let mut d = RemoteDir::new(&self.link, &self.pre, id, fresh);
        d.one_shot = self.one_shot;
        d.sparse = self.sparse;
        d.self_xattrs = self.cached(name, |e| e.xattrs).filter(|_| !fresh);
        d
    }

    fn cached<T>(&self, name: &CStr, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        lock(&self.cache).get(name).map(f)
    }

    /// Sends a change inside this directory (without waiting).
    fn change(&self, m: &Msg) -> io::Result<()> {
        self.written
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.link.send(m, false)
    }
}

impl Drop for RemoteDir {
    fn drop(&mut self) {
        self.pre.forget(self.id);
        if let Some(p) = lock(&self.ahead).take() {
            self.link.abandon(p);
        }
        self.forget_xattrs_ahead(None);
        let _ = self.link.send(&Msg::Close { id: self.id }, false);
    }
}

fn stat_reply(r: (Answer, Vec<Entry>)) -> io::Result<Option<Meta>> {
    match r.0 {
        Answer::Meta(m) => Ok(m),
        _ => Err(unexpected()),
    }
}

impl ReplicaDir for RemoteDir {
    fn list(&self) -> io::Result<Vec<DirEntry>> {
        if self.fresh {
            return Ok(Vec::new());
        }
        let id = self.id;
        let ahead = lock(&self.ahead).take();
        let (_, entries) = match ahead {
            Some(p) => self.link.wait(p)?,
            None => self.link.call(|req| Msg::List { req, id })?,
        };
        let out = entries
            .iter()
            .map(|e| DirEntry {
                name: e.name.clone(),
                d_type: e.d_type,
            })
            .collect();
        self.ask_xattrs_ahead(&entries)?;
        let mut c = lock(&self.cache);
        c.clear();
        c.extend(entries.into_iter().map(|e| (e.name.clone(), e)));
        Ok(out)
    }
    fn stat(&self, name: &CStr) -> io::Result<Option<Meta>> {
        if let Some(m) = self.cached(name, |e| e.meta) {
            return m.map_err(io::Error::from_raw_os_error);
        }
        let (id, name) = (self.id, Some(name.to_owned()));
        stat_reply(self.link.call(|req| Msg::Stat { req, id, name })?)
    }
    fn stat_self(&self) -> io::Result<Meta> {
        if self.fresh {
            // Created 0700 by this side: its attributes get set after its
            // children, without asking.
            return Ok(Meta {
                kind: Kind::Dir,
                perm: 0o700,
                size: 0,
                mtime: 0,
                mtime_nsec: 0,
                ino: 0,
                dev: (0, 0),
                ids: Default::default(),
            });
        }
        if self.one_shot && self.written.load(std::sync::atomic::Ordering::Relaxed) {
            // Changes went in without waiting, so its mtime is whatever
            // the agent's clock said then: not worth a round trip. An
            // answer that matches no SRC (no such mode or mtime) makes
            // the engine set both, again without waiting.
            return Ok(Meta {
                kind: Kind::Dir,
                perm: u32::MAX,
                size: 0,
                mtime: i64::MIN,
                mtime_nsec: 0,
                ino: 0,
                dev: (0, 0),
                ids: Default::default(),
            });
        }
        let id = self.id;
        stat_reply(self.link.call(|req| Msg::Stat {
            req,
            id,
            name: None,
        })?)?
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }
    fn prefetch(&self, name: &CStr) {
        self.pre.hint(self.id, name);
    }
    fn open_dir(&self, name: &CStr) -> io::Result<Box<dyn ReplicaDir>> {
        let fresh = lock(&self.created).remove(name);
        if let (false, Some((id, p))) = (fresh, self.pre.take(self.id, name)) {
            let d = self.child(id, false, name);
            *lock(&d.ahead) = Some(p);
            return Ok(Box::new(d));
        }
        let id = self.link.new_id();
        let m = Msg::Open {
            id,
            parent: self.id,
            name: Some(name.to_owned()),
        };
        self.link.send(&m, false)?;
        Ok(Box::new(self.child(id, fresh, name)))
    }
    fn create_dir(&self, name: &CStr) -> io::Result<()> {
        let m = Msg::CreateDir {
            id: self.id,
            name: name.to_owned(),
        };
        self.change(&m)?;
        lock(&self.created).insert(name.to_owned());
        Ok(())
    }
    fn remove(&self, name: &CStr) -> io::Result<u64> {
        let m = Msg::Remove {
            id: self.id,
            name: name.to_owned(),
        };
        self.change(&m)?;
        lock(&self.cache).remove(name);
        self.forget_xattrs_ahead(Some(name));
        Ok(1)
    }
    fn read_link(&self, name: &CStr) -> io::Result<Vec<u8>> {
        self.cached(name, |e| e.link.clone())
            .flatten()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
    }
    fn rdev(&self, name: &CStr) -> io::Result<(u32, u32)> {
        self.cached(name, |e| e.rdev)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
    }
    fn set_attrs(&self, name: Option<&CStr>, attrs: &Attrs) -> io::Result<()> {
        let m = Msg::SetAttrs {
            id: self.id,
            name: name.map(CStr::to_owned),
            attrs: *attrs,
        };
        self.link.send(&m, false)
    }
    fn install_symlink(
        &self,
        name: &CStr,
        target: &[u8],
        attrs: &Attrs,
        over: Over,
    ) -> io::Result<u64> {
        let m = Msg::Symlink {
            id: self.id,
            name: name.to_owned(),
            target: target.to_vec(),
            attrs: *attrs,
            over,
        };
        self.change(&m).map(|()| 0)
    }
    fn install_special(
        &self,
        name: &CStr,
        fmt: u32,
        rdev: (u32, u32),
        attrs: &Attrs,
        over: Over,
    ) -> io::Result<u64> {
        let m = Msg::Special {
            id: self.id,
            name: name.to_owned(),
            fmt,
            rdev,
            attrs: *attrs,
            over,
        };
        self.change(&m).map(|()| 0)
    }
    fn chown(&self, name: Option<&CStr>, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        self.send_chown(name, uid, gid)
    }
    fn xattr_names(&self, name: Option<&CStr>, sel: Selection) -> io::Result<Vec<CString>> {
        self.remote_xattr_names(name, sel)
    }
    fn xattrs(&self, name: Option<&CStr>, sel: Selection) -> io::Result<Xattrs> {
        self.remote_xattrs(name, sel)
    }
    fn set_xattrs(&self, name: Option<&CStr>, set: &Xattrs, remove: &[CString]) -> io::Result<()> {
        self.send_xattrs(name, set, remove)
    }
    fn same_content(&self, name: &CStr, src: BorrowedFd<'_>) -> io::Result<bool> {
        let fid = self.link.new_id();
        let size = crate::stat::StatBackend::stat_fd(&crate::stat::Statx, src)?.size;
        let begin = Msg::FileBegin {
            fid,
            id: self.id,
            name: name.to_owned(),
            size,
            compare: true,
            fresh: false,
            plan: 0,
        };
        self.link.send(&begin, false)?;
        send_data(&self.link, fid, src, u64::MAX)?;
        match self.link.call(|req| Msg::CompareEnd { req, fid })? {
            (Answer::Bool(b), _) => Ok(b),
            _ => Err(unexpected()),
        }
    }
    fn receive_file<'a>(
        &'a self,
        name: &CStr,
        fresh: bool,
    ) -> io::Result<Box<dyn IncomingFile + 'a>> {
        self.xattrs_changed(Some(name));
        Ok(Box::new(RemoteIncoming {
            dir: self,
            fid: self.link.new_id(),
            name: name.to_owned(),
            fresh: fresh && self.link.features() & FEATURE_FRESH != 0,
            begun: false,
            done: false,
        }))
    }
}

/// Sends up to `len` bytes of `src` (from its offset) as data messages;
/// returns how many. Each message's bytes are read into a buffer of their
/// own size, which the message then owns: a small file costs no more than
/// its size (most files of a tree are far smaller than [`CHUNK`]).
fn send_data(link: &Link, fid: u32, src: BorrowedFd<'_>, len: u64) -> io::Result<u64> {
    let mut sent = 0u64;
    while sent < len {
        let want = usize::try_from(len - sent).map_or(CHUNK, |l| l.min(CHUNK));
        let mut bytes = vec![0u8; want];
        let n = sys::read(src, &mut bytes)?;
        if n == 0 {
            break;
        }
        bytes.truncate(n);
        link.send(&Msg::Data { fid, bytes }, false)?;
        sent += n as u64;
    }
    Ok(sent)
}

/// A file on its way to the agent. The content flows without waiting;
/// the commit (or abort, on drop) follows it.
struct RemoteIncoming<'a> {
    dir: &'a RemoteDir,
    fid: u32,
    name: CString,
    /// DST had no such name (said to the agent when both sides have
    /// [`FEATURE_FRESH`]).
    fresh: bool,
    begun: bool,
    done: bool,
}

impl RemoteIncoming<'_> {
    /// Sends the beginning of the stream once (`size`: what the sender
    /// expects to send, for the receiver's plan).
    fn begin(&mut self, size: u64) -> io::Result<Option<Vec<u8>>> {
        self.begin_with(size, true)
    }

    /// [`Self::begin`]; `plan`: a large file may go as a delta.
    fn begin_with(&mut self, size: u64, plan: bool) -> io::Result<Option<Vec<u8>>> {
        if self.begun {
            return Ok(None);
        }
        self.begun = true;
        let (fid, id, name, fresh) = (self.fid, self.dir.id, self.name.clone(), self.fresh);
        let link = &self.dir.link;
        if plan && link.features() & FEATURE_DELTA != 0 && size >= DELTA_MIN {
            // The receiver's plan first (one exchange, large files only).
            let m = |plan| Msg::FileBegin {
                fid,
                id,
                name,
                size,
                compare: false,
                fresh,
                plan,
            };
            return match link.call(m)? {
                // `Some(signature)`: the content goes as delta ops
                // against it (`delta::send_file`).
                (Answer::Plan(signature), _) => Ok(signature),
                _ => Err(unexpected()),
            };
        }
        let m = Msg::FileBegin {
            fid,
            id,
            name,
            size,
            compare: false,
            fresh,
            plan: 0,
        };
        link.send(&m, false).map(|()| None)
    }
}

impl IncomingFile for RemoteIncoming<'_> {
    fn write_from(&mut self, src: BorrowedFd<'_>, len: u64) -> io::Result<u64> {
        if self.dir.sparse && RemoteIncoming::has_holes(src, len)? {
            // `-S`: data extents as data, holes as their length.
            self.begin_with(len, false)?;
            return self.send_sparse(src, len);
        }
        if let Some(sig) = self.begin(len)? {
            let sent = super::delta::send_file(&self.dir.link, self.fid, &sig, src, len)?;
            if let Some(n) = sent {
                return Ok(n);
            }
        }
        send_data(&self.dir.link, self.fid, src, len)
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.begin(data.len() as u64)?;
        for chunk in data.chunks(CHUNK) {
            let m = Msg::Data {
                fid: self.fid,
                bytes: chunk.to_vec(),
            };
            self.dir.link.send(&m, false)?;
        }
        Ok(())
    }

    fn set_owner(&mut self, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        self.begin(0)?;
        let m = Msg::FileOwner {
            fid: self.fid,
            uid,
            gid,
        };
        self.dir.link.send(&m, false)
    }

    fn set_xattrs(&mut self, want: &Xattrs, _sel: Selection) -> io::Result<()> {
        self.begin(0)?;
        RemoteDir::check_size(want)?;
        let m = Msg::FileXattrs {
            fid: self.fid,
            want: want.clone(),
        };
        self.dir.link.send(&m, false)
    }

    fn commit(
        mut self: Box<Self>,
        attrs: &Attrs,
        fsync: bool,
        over: Over,
    ) -> io::Result<Committed> {
        self.begin(0)?;
        self.done = true;
        let m = Msg::Commit {
            fid: self.fid,
            attrs: *attrs,
            fsync,
            over,
        };
        self.dir.change(&m)?;
        Ok(Committed::Done { deleted: 0 })
    }
}

impl Drop for RemoteIncoming<'_> {
    fn drop(&mut self) {
        if self.begun && !self.done {
            let _ = self.dir.link.send(&Msg::Abort { fid: self.fid }, false);
        }
    }
}

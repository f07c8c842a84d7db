//! `-H -A -X -o -g -S` of a [`RemoteReplica`](super::RemoteReplica)
//! (`protocol::fidelity`): owner and attribute changes go without
//! waiting, like every change; the attributes of an entry are asked for
//! only when the listing says it has some (a resync of a tree without
//! attributes costs no round trip per file), and those of the entries it
//! flags are asked for all at once as the listing arrives, before the
//! engine compares them (one round trip per directory, not per file;
//! the requests are those every peer knows); a hard link and the first
//! use of each SRC user or group name are one exchange each.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use super::{lock, send_data, unexpected, Link, RemoteDir, RemoteIncoming, RemoteReplica};
use crate::attrs::xattr::{Selection, Xattrs};
use crate::remote::protocol::frame::MAX_FRAME;
use crate::remote::protocol::messages::{Answer, Entry, Msg};
use crate::stat::Kind;

/// Most attribute requests of one directory's entries sent ahead (the
/// link's own bound, `link::MAX_WAITING`, is shared by every directory
/// open at once and by the listings asked for ahead). Entries beyond it
/// are asked for one by one, when compared.
pub const XATTRS_AHEAD: usize = 256;
use crate::sync::replica::Linked;

impl RemoteReplica {
    /// `-H`: one exchange per link made (a resync whose groups are
    /// intact makes none: the engine knows them linked from the
    /// listings).
    pub(super) fn link_names(&self, target: &[CString], at: &[CString]) -> io::Result<Linked> {
        let (target, at) = (target.to_vec(), at.to_vec());
        match self.link.call(|req| Msg::HardLink { req, target, at })? {
            (Answer::Linked(l), _) => Ok(l),
            _ => Err(unexpected()),
        }
    }

    /// DST's ids of SRC's names.
    pub(super) fn resolver(&self) -> Arc<dyn crate::attrs::owner::Resolve> {
        Arc::new(Resolver(self.link.clone()))
    }
}

/// DST's ids of SRC's names: asked of the agent, once per distinct id
/// (the engine's `IdMap` caches the answers).
struct Resolver(Arc<Link>);

impl crate::attrs::owner::Resolve for Resolver {
    fn id(&self, group: bool, id: u32, name: &CStr) -> u32 {
        let name = name.to_bytes().to_vec();
        match self.0.call(|req| Msg::MapId {
            req,
            group,
            id,
            name,
        }) {
            Ok((Answer::Id(v), _)) => v,
            _ => id,
        }
    }
}

impl RemoteDir {
    /// `-o`/`-g` of an entry or of the directory.
    pub(super) fn send_chown(
        &self,
        name: Option<&CStr>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> io::Result<()> {
        let m = Msg::Chown {
            id: self.id,
            name: name.map(CStr::to_owned),
            uid,
            gid,
        };
        self.link.send(&m, false)
    }

    /// The attributes of `name` (or the directory) may have changed: its
    /// listing's bit is not to be trusted any more.
    pub(super) fn xattrs_changed(&self, name: Option<&CStr>) {
        if let Some(n) = name {
            if let Some(e) = lock(&self.cache).get_mut(n) {
                e.xattrs = true;
            }
            self.forget_xattrs_ahead(Some(n));
        }
        lock(&self.xvals).remove(&name.map(CStr::to_owned));
    }

    /// A listing arrived: asks for the attributes of every entry it flags
    /// (not directories: their own handle asks) without waiting, at most
    /// [`XATTRS_AHEAD`]; `fetch` takes the replies. The engine compares
    /// those entries next, so their answers are what it would have asked
    /// for one round trip at a time.
    pub(super) fn ask_xattrs_ahead(&self, entries: &[Entry]) -> io::Result<()> {
        self.forget_xattrs_ahead(None);
        let flagged = entries
            .iter()
            .filter(|e| e.xattrs && !matches!(e.meta, Ok(Some(ref m)) if m.kind == Kind::Dir))
            .take(XATTRS_AHEAD);
        let mut ahead = lock(&self.xahead);
        for e in flagged {
            let (id, name) = (self.id, Some(e.name.clone()));
            let p = self.link.request(|req| Msg::GetXattrs { req, id, name })?;
            ahead.insert(e.name.clone(), p);
        }
        Ok(())
    }

    /// Drops the attributes asked for ahead of `name` (all: `None`).
    pub(super) fn forget_xattrs_ahead(&self, name: Option<&CStr>) {
        let mut ahead = lock(&self.xahead);
        let gone: Vec<_> = match name {
            Some(n) => ahead.remove(n).into_iter().collect(),
            None => ahead.drain().map(|(_, p)| p).collect(),
        };
        drop(ahead);
        for p in gone {
            self.link.abandon(p);
        }
    }

    /// Names of the attributes of `name` (or of the directory): none,
    /// without asking, when the listing says so.
    pub(super) fn remote_xattr_names(
        &self,
        name: Option<&CStr>,
        sel: Selection,
    ) -> io::Result<Vec<CString>> {
        let known = match name {
            Some(n) => self.cached(n, |e| e.xattrs),
            None => self.self_xattrs,
        };
        if known == Some(false) {
            return Ok(Vec::new());
        }
        let x = self.fetch(name)?;
        let names = x
            .iter()
            .filter(|(n, _)| sel.wants(n.to_bytes()))
            .map(|(n, _)| n.clone())
            .collect();
        lock(&self.xvals).insert(name.map(CStr::to_owned), x);
        Ok(names)
    }

    /// Names and values (those `remote_xattr_names` fetched, else asked now).
    pub(super) fn remote_xattrs(&self, name: Option<&CStr>, sel: Selection) -> io::Result<Xattrs> {
        let x = match lock(&self.xvals).remove(&name.map(CStr::to_owned)) {
            Some(x) => x,
            None => self.fetch(name)?,
        };
        Ok(x.into_iter()
            .filter(|(n, _)| sel.wants(n.to_bytes()))
            .collect())
    }

    fn fetch(&self, name: Option<&CStr>) -> io::Result<Xattrs> {
        let ahead = name.and_then(|n| lock(&self.xahead).remove(n));
        let (id, name) = (self.id, name.map(CStr::to_owned));
        let reply = match ahead {
            Some(p) => self.link.wait(p)?,
            None => self.link.call(|req| Msg::GetXattrs { req, id, name })?,
        };
        match reply {
            (Answer::Xattrs(x), _) => Ok(x),
            _ => Err(unexpected()),
        }
    }

    /// Attributes too large for one message are not sent (an error of that
    /// entry, `E2BIG`, not a broken link).
    pub(super) fn check_size(x: &Xattrs) -> io::Result<()> {
        let n: usize = x
            .iter()
            .map(|(n, v)| n.as_bytes().len() + v.len() + 8)
            .sum();
        match n > MAX_FRAME as usize - 4096 {
            true => Err(io::Error::from_raw_os_error(libc::E2BIG)),
            false => Ok(()),
        }
    }

    /// Sets `set` and removes `remove`, without waiting.
    pub(super) fn send_xattrs(
        &self,
        name: Option<&CStr>,
        set: &Xattrs,
        remove: &[CString],
    ) -> io::Result<()> {
        Self::check_size(set)?;
        self.xattrs_changed(name);
        let m = Msg::SetXattrs {
            id: self.id,
            name: name.map(CStr::to_owned),
            set: set.clone(),
            remove: remove.to_vec(),
        };
        self.written
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.link.send(&m, false)
    }
}

impl RemoteIncoming<'_> {
    /// Whether `src` (`len` bytes) has a hole; its offset is left as it was.
    pub(super) fn has_holes(src: BorrowedFd<'_>, len: u64) -> io::Result<bool> {
        use rustix::fs::SeekFrom;
        if len == 0 {
            return Ok(false);
        }
        let at = rustix::fs::seek(src, SeekFrom::Current(0))?;
        let holes = crate::attrs::content::next_extent(src, 0, len)? != Some((0, len));
        rustix::fs::seek(src, SeekFrom::Start(at))?;
        Ok(holes)
    }

    /// `-S`: sends the data extents of `src` as data and the holes between
    /// them as their length; returns the bytes covered (fewer: `src` shrank).
    pub(super) fn send_sparse(&self, src: BorrowedFd<'_>, len: u64) -> io::Result<u64> {
        let (link, fid) = (&self.dir.link, self.fid);
        use rustix::fs::SeekFrom;
        let mut pos = 0;
        while let Some((start, end)) = crate::attrs::content::next_extent(src, pos, len)? {
            if start > pos {
                link.send(
                    &Msg::Hole {
                        fid,
                        len: start - pos,
                    },
                    false,
                )?;
            }
            rustix::fs::seek(src, SeekFrom::Start(start))?;
            let n = send_data(link, fid, src, end - start)?;
            if n < end - start {
                return Ok(start + n);
            }
            pos = end;
        }
        if pos < len {
            link.send(
                &Msg::Hole {
                    fid,
                    len: len - pos,
                },
                false,
            )?;
        }
        Ok(len)
    }
}

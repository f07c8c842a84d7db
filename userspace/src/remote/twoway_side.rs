//! The remote side of a two-way run (`dirsync --two-way A host:B`): a
//! [`Replica`] whose tree is on another machine, reached through its
//! agent (`twoway_agent`) with the messages of `protocol::twoway`, one
//! request at a time. The engine and the archive stay here.
//!
//! Everything the agent sends is checked before use: each path is
//! relative with no `..` (the decoder), a scan lists at most
//! [`MAX_SCAN_ENTRIES`] entries and [`MAX_SCAN_BYTES`] of names, a
//! content stream is never longer than the size the engine scanned, and
//! `--timeout` applies to every read (the link's `Alive`). A broken
//! promise ends the session: every later request fails, the run stops or
//! counts errors, and nothing is written from a stream that broke.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use super::client::{self, Connect, Session};
use super::protocol::events;
use super::protocol::messages::{Msg, Role};
use super::protocol::twoway::{
    self, Op, TwMsg, TwReply, CHUNK, ENTRY_COST, MAX_SCAN_BYTES, MAX_SCAN_ENTRIES,
};
use super::spec::Spec;
use super::RemoteError;
use crate::exclude::Excludes;
use crate::report::Reporter;
use crate::stat::StatBackend;
use crate::sync::Options;
use crate::twoway::apply::{Installed, Side};
use crate::twoway::reconcile::State;
use crate::twoway::replica::{Replica, SourceChanged};
use crate::twoway::scan::Tree;

/// A tree on another machine, one side of a two-way run.
pub struct RemoteSide {
    s: RefCell<Session>,
    spec: Spec,
    label: String,
    root: ((u32, u32), u64),
    /// Why the session is unusable (a broken promise, a lost link).
    broken: RefCell<Option<String>>,
    /// A scan was asked for and not read yet.
    scanning: Cell<bool>,
}

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// Connects to `spec`'s agent for a two-way run (its root must exist).
pub fn connect(spec: &Spec, c: &Connect, o: &Options) -> Result<RemoteSide, RemoteError> {
    let setup = super::setup(Role::TwoWay, &spec.path, o);
    let mut s = client::open(spec, c, &setup)?;
    let host = spec.host.clone();
    let proto = |m: String| RemoteError::Protocol {
        host: host.clone(),
        message: m,
    };
    let first = client_read(&mut s).map_err(|e| proto(e.to_string()))?;
    let root = match first {
        TwMsg::Root { dev, ino } => (dev, ino),
        other => return Err(proto(format!("expected the root, got {other:?}"))),
    };
    let label = spec
        .host
        .rsplit('@')
        .next()
        .unwrap_or(&spec.host)
        .to_string();
    Ok(RemoteSide {
        s: RefCell::new(s),
        spec: spec.clone(),
        label,
        root,
        broken: RefCell::new(None),
        scanning: Cell::new(false),
    })
}

/// The next two-way message (events are not expected here).
fn client_read(s: &mut Session) -> io::Result<TwMsg> {
    let (k, p) = s.r.read().map_err(|e| bad(e.to_string()))?;
    let m = Msg::decode(k, p).map_err(|e| bad(e.to_string()))?;
    match twoway::of_msg(&m) {
        Some(t) => t.map_err(|e| bad(e.to_string())),
        None => match m {
            Msg::Refuse(t) => Err(bad(crate::report::human(&t))),
            other => Err(bad(format!("unexpected message {other:?}"))),
        },
    }
}

impl RemoteSide {
    /// Why the session broke (the agent broke a promise, the link was
    /// lost), if it did: the run must not end as a success.
    pub fn broken(&self) -> Option<String> {
        self.broken.borrow().clone()
    }

    fn check(&self) -> io::Result<()> {
        match &*self.broken.borrow() {
            Some(why) => Err(super::link::lost(&self.spec.host, why)),
            None => Ok(()),
        }
    }

    /// Marks the session broken by `e` (every later request fails).
    fn broke(&self, e: io::Error) -> io::Error {
        let mut b = self.broken.borrow_mut();
        if b.is_none() {
            *b = Some(e.to_string());
        }
        e
    }

    fn send(&self, m: &TwMsg, flush: bool) -> io::Result<()> {
        self.check()?;
        let mut s = self.s.borrow_mut();
        let r = super::agent::send(&mut s.w, &twoway::to_msg(m)).and_then(|()| {
            if flush {
                s.w.flush()
            } else {
                Ok(())
            }
        });
        r.map_err(|e| self.broke(e))
    }

    fn next(&self) -> io::Result<TwMsg> {
        self.check()?;
        let r = client_read(&mut self.s.borrow_mut());
        r.map_err(|e| self.broke(e))
    }

    /// The reply to the request just sent.
    fn reply(&self) -> io::Result<TwReply> {
        match self.next()? {
            TwMsg::Reply(TwReply::Errno(n)) => Err(io::Error::from_raw_os_error(n)),
            TwMsg::Reply(TwReply::Refused(t)) => Err(io::Error::other(format!(
                "{} refused: {}",
                self.spec.host,
                crate::report::human(&t)
            ))),
            TwMsg::Reply(r) => Ok(r),
            other => Err(self.broke(bad(format!("expected a reply, got {other:?}")))),
        }
    }

    fn call(&self, m: &TwMsg) -> io::Result<TwReply> {
        self.send(m, true)?;
        self.reply()
    }

    fn call_bool(&self, op: Op) -> io::Result<bool> {
        match self.call(&TwMsg::Op(op))? {
            TwReply::Bool(b) => Ok(b),
            other => Err(self.broke(bad(format!("expected yes or no, got {other:?}")))),
        }
    }

    fn shown_bytes(&self, rel: &[u8]) -> Vec<u8> {
        self.shown(rel).as_os_str().as_bytes().to_vec()
    }
}

impl Drop for RemoteSide {
    fn drop(&mut self) {
        // An agent that broke a promise is not waited for.
        let limit = match self.broken.get_mut() {
            Some(_) => Duration::ZERO,
            None => Duration::from_secs(10),
        };
        let s = self.s.get_mut();
        let _ = super::agent::send(&mut s.w, &Msg::Bye).and_then(|()| s.w.flush());
        s.transport.finish(limit);
    }
}

/// A file's content from the agent: chunks, never more than the size
/// scanned, then its end.
struct RemoteRead<'s> {
    side: &'s RemoteSide,
    left: u64,
    rest: Vec<u8>,
    at: usize,
    ended: bool,
}

impl Read for RemoteRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.rest.len() {
            if self.ended {
                return Ok(0);
            }
            match self.side.next()? {
                TwMsg::Chunk(b) if b.len() as u64 <= self.left => {
                    self.left -= b.len() as u64;
                    (self.rest, self.at) = (b, 0);
                }
                TwMsg::Chunk(_) => {
                    self.ended = true;
                    let e = bad("the agent sent a file longer than it announced");
                    return Err(self.side.broke(e));
                }
                TwMsg::End { ok } => {
                    self.ended = true;
                    return if ok && self.left == 0 {
                        Ok(0)
                    } else {
                        Err(io::Error::other(SourceChanged))
                    };
                }
                other => {
                    self.ended = true;
                    let e = bad(format!("expected content, got {other:?}"));
                    return Err(self.side.broke(e));
                }
            }
        }
        let n = (self.rest.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.rest[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Drop for RemoteRead<'_> {
    /// A stream not read to its end is read now (the next reply follows
    /// it); bounded by the size announced.
    fn drop(&mut self) {
        let mut buf = vec![0u8; CHUNK];
        while !self.ended {
            self.at = self.rest.len();
            if self.read(&mut buf).is_err() {
                break;
            }
        }
    }
}

impl Replica for RemoteSide {
    fn shown(&self, rel: &[u8]) -> PathBuf {
        let l = self.spec.label();
        if rel.is_empty() {
            l
        } else {
            l.join(std::ffi::OsStr::from_bytes(rel))
        }
    }
    fn label(&self) -> &str {
        &self.label
    }
    fn local(&self) -> Option<&Side> {
        None
    }
    fn root_id(&self) -> io::Result<((u32, u32), u64)> {
        Ok(self.root)
    }
    fn canonical(&self) -> Option<PathBuf> {
        None
    }
    fn begin_scan(&self) -> io::Result<()> {
        self.send(&TwMsg::Scan, true)?;
        self.scanning.set(true);
        Ok(())
    }
    fn scan(&self, _: &dyn StatBackend, _: &Excludes, rep: &dyn Reporter) -> io::Result<Tree> {
        if !self.scanning.replace(false) {
            self.begin_scan()?;
            self.scanning.set(false);
        }
        let mut tree = Tree::default();
        let mut all = Vec::new();
        let (mut count, mut bytes) = (0usize, 0usize);
        let prefix = self.spec.path.as_os_str().as_bytes().to_vec();
        loop {
            self.check()?;
            let m = {
                let mut s = self.s.borrow_mut();
                match s.r.read() {
                    Ok((k, p)) => Msg::decode(k, p).map_err(|e| bad(e.to_string())),
                    Err(e) => Err(bad(e.to_string())),
                }
            };
            let m = m.map_err(|e| self.broke(e))?;
            if let Msg::Event(w) = &m {
                // The agent's paths are its root's: shown as host:path.
                let map = |p: &[u8]| match p.strip_prefix(&prefix[..]) {
                    Some(r) if r.is_empty() || r[0] == b'/' => {
                        let r = r.strip_prefix(b"/").unwrap_or(r);
                        self.shown_bytes(r)
                    }
                    _ => self.shown_bytes(b""),
                };
                events::with_event(w, map, |e| rep.event(e))
                    .ok_or_else(|| self.broke(bad("an unknown event")))?;
                continue;
            }
            let t = match twoway::of_msg(&m) {
                Some(t) => t.map_err(|e| self.broke(bad(e.to_string())))?,
                None => return Err(self.broke(bad(format!("unexpected message {m:?}")))),
            };
            let mut grow = |n: usize, b: usize| -> io::Result<()> {
                count = count.saturating_add(n);
                bytes = bytes.saturating_add(b);
                if count > MAX_SCAN_ENTRIES || bytes > MAX_SCAN_BYTES {
                    return Err(self.broke(bad(format!(
                        "the agent's scan is larger than {MAX_SCAN_ENTRIES} entries or {} MiB",
                        MAX_SCAN_BYTES >> 20
                    ))));
                }
                Ok(())
            };
            match t {
                TwMsg::Entries(es) => {
                    let b = es
                        .iter()
                        .map(|(p, s)| p.len() + s.target.len() + ENTRY_COST)
                        .sum();
                    grow(es.len(), b)?;
                    all.extend(es);
                }
                TwMsg::Skipped { skipped, leftovers } => {
                    let b = skipped
                        .iter()
                        .chain(&leftovers)
                        .map(|p| p.len() + ENTRY_COST)
                        .sum();
                    grow(skipped.len() + leftovers.len(), b)?;
                    tree.skipped.extend(skipped);
                    tree.leftovers.extend(leftovers);
                }
                TwMsg::Root { dev, ino } => {
                    if (dev, ino) != self.root {
                        return Err(self.broke(bad("the agent's root changed during the run")));
                    }
                    break;
                }
                other => return Err(self.broke(bad(format!("unexpected {other:?}")))),
            }
        }
        all.sort_unstable_by(|x, y| x.0.cmp(&y.0));
        tree.entries = all.into_iter().collect();
        Ok(tree)
    }
    fn stat(&self, rel: &[u8]) -> io::Result<Option<State>> {
        match self.call(&TwMsg::Op(Op::Stat { path: rel.to_vec() }))? {
            TwReply::State(s) => Ok(s),
            other => Err(self.broke(bad(format!("expected a state, got {other:?}")))),
        }
    }
    fn read<'s>(&'s self, rel: &[u8], seen: &State) -> io::Result<Box<dyn Read + 's>> {
        self.send(
            &TwMsg::Read {
                path: rel.to_vec(),
                seen: seen.clone(),
            },
            true,
        )?;
        // A refusal or failure is a reply; content starts with a chunk or
        // the end.
        let first = self.next()?;
        let (rest, ended, left) = match first {
            TwMsg::Chunk(b) if b.len() as u64 <= seen.size => {
                let left = seen.size - b.len() as u64;
                (b, false, left)
            }
            TwMsg::End { ok } if ok && seen.size == 0 => (Vec::new(), true, 0),
            TwMsg::End { .. } | TwMsg::Reply(TwReply::Bool(false)) => {
                return Err(io::Error::other(SourceChanged))
            }
            TwMsg::Reply(TwReply::Errno(n)) => return Err(io::Error::from_raw_os_error(n)),
            TwMsg::Reply(TwReply::Refused(t)) => {
                return Err(io::Error::other(format!(
                    "{} refused: {}",
                    self.spec.host,
                    crate::report::human(&t)
                )))
            }
            other => return Err(self.broke(bad(format!("expected content, got {other:?}")))),
        };
        Ok(Box::new(RemoteRead {
            side: self,
            left,
            rest,
            at: 0,
            ended,
        }))
    }
    fn install(
        &self,
        dst: &[u8],
        src: &State,
        data: Option<&mut dyn Read>,
        expect: Option<&State>,
        stamp: &str,
        label: &str,
    ) -> io::Result<Installed> {
        self.send(
            &TwMsg::Put {
                path: dst.to_vec(),
                src: src.clone(),
                expect: expect.cloned(),
                stamp: stamp.as_bytes().to_vec(),
                label: label.as_bytes().to_vec(),
            },
            false,
        )?;
        let mut failed = None;
        if let Some(data) = data {
            let mut buf = vec![0u8; CHUNK];
            let mut left = src.size;
            let ok = loop {
                // One byte more than announced tells a longer source.
                let want = (left.min(CHUNK as u64) as usize).max(1);
                match data.read(&mut buf[..want]) {
                    Ok(0) => break left == 0,
                    Ok(n) if n as u64 > left => break false,
                    Ok(n) => {
                        left -= n as u64;
                        self.send(&TwMsg::Chunk(buf[..n].to_vec()), false)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        if !crate::twoway::replica::is_source_changed(&e) {
                            failed = Some(e);
                        }
                        break false;
                    }
                }
            };
            self.send(&TwMsg::End { ok }, true)?;
        } else {
            self.s.borrow_mut().w.flush().map_err(|e| self.broke(e))?;
        }
        let r = self.reply();
        if let Some(e) = failed {
            return Err(e);
        }
        match r? {
            TwReply::Installed(i) => Ok(i),
            other => Err(self.broke(bad(format!("expected an install, got {other:?}")))),
        }
    }
    fn remove(&self, path: &[u8], seen: &State) -> io::Result<bool> {
        self.call_bool(Op::Remove {
            path: path.to_vec(),
            seen: seen.clone(),
        })
    }
    fn set_attrs(&self, path: &[u8], seen: &State, to: &State, mtime: bool) -> io::Result<bool> {
        self.call_bool(Op::SetAttrs {
            path: path.to_vec(),
            seen: seen.clone(),
            to: to.clone(),
            mtime,
        })
    }
    fn rename(&self, from: &[u8], to: &[u8], seen: &State) -> io::Result<bool> {
        self.call_bool(Op::Rename {
            from: from.to_vec(),
            to: to.to_vec(),
            seen: seen.clone(),
        })
    }
    fn remove_leftover(&self, path: &[u8]) -> io::Result<()> {
        self.call_bool(Op::RemoveLeftover {
            path: path.to_vec(),
        })
        .map(|_| ())
    }
}

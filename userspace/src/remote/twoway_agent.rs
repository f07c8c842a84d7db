//! The agent of a two-way run (`Role::TwoWay`, messages of
//! `protocol::twoway`): it scans its tree, streams a file's content,
//! and carries out the engine's changes on its side through the same
//! dirfd-relative code as a local two-way run (`twoway::apply`, no
//! symlink followed, nothing outside the root reachable), re-checking
//! the state the engine scanned just before each change. It keeps no
//! state between requests: the archive is the engine's.
//!
//! Its own rules: a dry run changes nothing (a change request is
//! refused); `--write-only` refuses to send content; `--read-only`
//! refuses the role (`confine`). A stream longer than it said, or a
//! message out of place, ends the session.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::agent;
use super::confine::{Access, Confine};
use super::protocol::frame::{FrameError, FrameReader, FrameWriter};
use super::protocol::messages::{Msg, Setup};
use super::protocol::twoway::{self, Op, TwMsg, TwReply, CHUNK};
use super::RemoteError;
use crate::exclude::Excludes;
use crate::report::{Event, Reporter};
use crate::stat::{self, StatBackend, Statx};
use crate::sys;
use crate::twoway::apply::{self, CopyOpts, Side};
use crate::twoway::reconcile::{State, Type};
use crate::twoway::replica::{self as rep, is_source_changed};
use crate::twoway::scan;

/// How many bytes of paths one scan message carries at most.
const BATCH_BYTES: usize = 512 << 10;

type Res<T> = Result<T, RemoteError>;

fn proto_err(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::Protocol {
        host: "client".into(),
        message: e.to_string(),
    }
}

/// Sends a `Refuse` for `e` (escaped: a path in it is the client's
/// bytes) and returns it as the error.
fn refuse(w: &mut FrameWriter, e: &dyn std::error::Error) -> RemoteError {
    let mut message = String::new();
    let _ = crate::report::write_human(&mut message, crate::error::chain(e).as_bytes());
    let _ = agent::send(w, &Msg::Refuse(message.as_bytes().to_vec())).and_then(|()| w.flush());
    RemoteError::Remote {
        host: "client".into(),
        message,
    }
}

/// Sends the scan's events to the engine as they happen.
struct Events<'a> {
    w: std::sync::Mutex<&'a mut FrameWriter>,
}

impl Reporter for Events<'_> {
    fn event(&self, e: &Event<'_>) {
        let m = Msg::Event(super::protocol::events::to_wire(e));
        let _ = agent::send(&mut super::link::lock(&self.w), &m);
    }
}

struct TwoWayAgent {
    side: Side,
    shown: PathBuf,
    backend: Box<dyn StatBackend>,
    ex: Excludes,
    dry_run: bool,
    read: bool,
    copy: CopyOpts,
}

fn send(w: &mut FrameWriter, m: TwMsg) -> Res<()> {
    agent::send(w, &twoway::to_msg(&m)).map_err(proto_err)
}

fn reply(w: &mut FrameWriter, r: TwReply) -> Res<()> {
    send(w, TwMsg::Reply(r))?;
    w.flush().map_err(proto_err)
}

fn errno(e: &io::Error) -> TwReply {
    TwReply::Errno(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Serves a two-way engine on the client until it says goodbye.
pub fn serve(
    mut r: FrameReader,
    mut w: FrameWriter,
    setup: &Setup,
    confine: &Confine,
) -> Result<(), RemoteError> {
    let o = super::options_of(setup);
    let path = Path::new(OsStr::from_bytes(&setup.path));
    let root = match confine.open_dir(&setup.path) {
        Ok(Some(fd)) => Ok(fd),
        Ok(None) => sys::open_root(path).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => io::Error::new(e.kind(), "does not exist"),
            Some(libc::ENOTDIR) => io::Error::new(e.kind(), "is not a directory"),
            _ => e,
        }),
        Err(e) => return Err(refuse(&mut w, &e)),
    };
    let root = match root {
        Ok(fd) => fd,
        Err(e) => {
            let e = io::Error::new(e.kind(), format!("{}: {e}", path.display()));
            return Err(refuse(&mut w, &e));
        }
    };
    let setup_err = |w: &mut FrameWriter, e: &dyn std::error::Error| refuse(w, e);
    let backend = match stat::select(o.stat_backend, &stat::sysfs_dir()) {
        Ok(b) => b,
        Err(e) => return Err(setup_err(&mut w, &e)),
    };
    let ex = match Excludes::new(&o.excludes) {
        Ok(x) => x,
        Err(e) => return Err(setup_err(&mut w, &e)),
    };
    let id = Statx.stat_fd(root.as_fd()).map_err(proto_err)?;
    let ready = Msg::Ready {
        created: false,
        exists: true,
    };
    agent::send(&mut w, &ready).map_err(proto_err)?;
    send(
        &mut w,
        TwMsg::Root {
            dev: id.dev,
            ino: id.ino,
        },
    )?;
    w.flush().map_err(proto_err)?;
    let mut a = TwoWayAgent {
        side: Side::new(root, path.to_path_buf(), String::new()),
        shown: path.to_path_buf(),
        backend,
        ex,
        dry_run: o.dry_run,
        read: confine.access() != Access::WriteOnly,
        copy: CopyOpts {
            fsync: o.fsync,
            no_reflink: o.no_reflink,
        },
    };
    loop {
        let m = match r.read() {
            Ok((k, p)) => Msg::decode(k, p).map_err(proto_err)?,
            Err(FrameError::Closed) => return Ok(()),
            Err(e) => return Err(proto_err(e)),
        };
        match (twoway::of_msg(&m), m) {
            (_, Msg::Bye) => return Ok(()),
            (Some(t), _) => a.handle(t.map_err(proto_err)?, &mut r, &mut w)?,
            (None, other) => return Err(proto_err(format!("unexpected message {other:?}"))),
        }
    }
}

impl TwoWayAgent {
    fn handle(&mut self, m: TwMsg, r: &mut FrameReader, w: &mut FrameWriter) -> Res<()> {
        match m {
            TwMsg::Scan => self.scan(w),
            TwMsg::Read { path, seen } => self.read(&path, &seen, w),
            TwMsg::Put {
                path,
                src,
                expect,
                stamp,
                label,
            } => {
                let mut data = PutStream {
                    r,
                    left: src.size,
                    ended: src.kind != Type::File,
                    bad: None,
                    rest: Vec::new(),
                    at: 0,
                };
                let out = if self.dry_run {
                    Err(TwReply::Refused(b"a change in a dry run".to_vec()))
                } else {
                    let d = (src.kind == Type::File).then_some(&mut data as &mut dyn Read);
                    let (stamp, label) = (
                        String::from_utf8_lossy(&stamp),
                        String::from_utf8_lossy(&label),
                    );
                    rep::install_local(
                        &self.side,
                        &path,
                        &src,
                        d,
                        expect.as_ref(),
                        &stamp,
                        &label,
                        self.copy,
                    )
                    .map_err(|e| errno(&e))
                };
                data.drain();
                if let Some(why) = data.bad {
                    return Err(proto_err(why));
                }
                reply(w, out.map_or_else(|e| e, TwReply::Installed))
            }
            TwMsg::Op(op) => {
                let out = self.op(op);
                reply(w, out.unwrap_or_else(|e| e))
            }
            other => Err(proto_err(format!("unexpected message {other:?}"))),
        }
    }

    fn op(&mut self, op: Op) -> Result<TwReply, TwReply> {
        let change = |dry: bool| {
            if dry {
                Err(TwReply::Refused(b"a change in a dry run".to_vec()))
            } else {
                Ok(())
            }
        };
        let b = |x: io::Result<bool>| x.map(TwReply::Bool).map_err(|e| errno(&e));
        match op {
            Op::Stat { path } => self
                .side
                .stat(&path)
                .map(TwReply::State)
                .map_err(|e| errno(&e)),
            Op::Remove { path, seen } => {
                change(self.dry_run)?;
                b(apply::remove_entry(&self.side, &path, &seen))
            }
            Op::SetAttrs {
                path,
                seen,
                to,
                mtime,
            } => {
                change(self.dry_run)?;
                b(apply::set_attrs(&self.side, &path, &seen, &to, mtime))
            }
            Op::Rename { from, to, seen } => {
                change(self.dry_run)?;
                b(rep::rename_local(&self.side, &from, &to, &seen))
            }
            Op::RemoveLeftover { path } => {
                change(self.dry_run)?;
                if !scan::split(&path)
                    .1
                    .starts_with(crate::copy::TMP_PREFIX.as_bytes())
                {
                    return Err(TwReply::Refused(b"not a temporary".to_vec()));
                }
                b(apply::remove_leftover(&self.side, &path).map(|()| true))
            }
        }
    }

    fn scan(&mut self, w: &mut FrameWriter) -> Res<()> {
        let tree = {
            let ev = Events {
                w: std::sync::Mutex::new(&mut *w),
            };
            scan::scan(
                self.side.root.as_fd(),
                &self.shown,
                &*self.backend,
                &self.ex,
                &ev,
            )
        };
        let (mut batch, mut bytes) = (Vec::new(), 0);
        for (p, s) in tree.entries {
            bytes += p.len() + s.target.len() + 64;
            batch.push((p, s));
            if bytes >= BATCH_BYTES {
                send(w, TwMsg::Entries(std::mem::take(&mut batch)))?;
                bytes = 0;
            }
        }
        send(w, TwMsg::Entries(batch))?;
        let (mut sk, mut lo) = (tree.skipped.into_iter(), tree.leftovers.into_iter());
        loop {
            let (mut skipped, mut leftovers, mut bytes) = (Vec::new(), Vec::new(), 0);
            while bytes < BATCH_BYTES {
                if let Some(p) = sk.next() {
                    bytes += p.len() + 8;
                    skipped.push(p);
                } else if let Some(p) = lo.next() {
                    bytes += p.len() + 8;
                    leftovers.push(p);
                } else {
                    break;
                }
            }
            // The root itself unreadable: no path to send; it is "".
            skipped.retain(|p| !p.is_empty());
            if skipped.is_empty() && leftovers.is_empty() {
                break;
            }
            send(w, TwMsg::Skipped { skipped, leftovers })?;
        }
        let id = Statx.stat_fd(self.side.root.as_fd()).map_err(proto_err)?;
        send(
            w,
            TwMsg::Root {
                dev: id.dev,
                ino: id.ino,
            },
        )?;
        w.flush().map_err(proto_err)
    }

    fn read(&mut self, path: &[u8], seen: &State, w: &mut FrameWriter) -> Res<()> {
        if !self.read {
            return reply(
                w,
                TwReply::Refused(b"this server is --write-only: it sends no content".to_vec()),
            );
        }
        if seen.kind != Type::File {
            return reply(w, TwReply::Errno(libc::EINVAL));
        }
        let mut f = match rep::open_local(&self.side, path, seen) {
            Ok(f) => f,
            Err(e) if is_source_changed(&e) => return reply(w, TwReply::Bool(false)),
            Err(e) => return reply(w, errno(&e)),
        };
        let mut buf = vec![0u8; CHUNK];
        let mut left = seen.size;
        let ok = loop {
            let want = (left.min(CHUNK as u64) as usize).max(1);
            match f.read(&mut buf[..want]) {
                Ok(0) => break left == 0,
                Ok(n) if n as u64 > left => break false,
                Ok(n) => {
                    left -= n as u64;
                    send(w, TwMsg::Chunk(buf[..n].to_vec()))?;
                }
                Err(_) => break false,
            }
        };
        send(w, TwMsg::End { ok })?;
        w.flush().map_err(proto_err)
    }
}

/// The content of a `Put`, read from the engine's chunks: never more than
/// the size it announced (more is a protocol error, [`PutStream::bad`]).
struct PutStream<'a> {
    r: &'a mut FrameReader,
    left: u64,
    ended: bool,
    bad: Option<String>,
    /// The chunk being read, and how much of it was.
    rest: Vec<u8>,
    at: usize,
}

impl PutStream<'_> {
    /// The next chunk (`None`: the end).
    fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.ended {
            return Ok(None);
        }
        let m = match self.r.read() {
            Ok((k, p)) => twoway::parse(k, p).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let fail = |s: &mut Self, why: String| {
            s.ended = true;
            s.bad = Some(why);
            Err(io::Error::other("the engine broke the protocol"))
        };
        match m {
            Ok(TwMsg::Chunk(b)) if b.len() as u64 <= self.left => {
                self.left -= b.len() as u64;
                Ok(Some(b))
            }
            Ok(TwMsg::Chunk(_)) => fail(self, "a file's content longer than announced".into()),
            Ok(TwMsg::End { ok }) => {
                self.ended = true;
                if ok {
                    Ok(None)
                } else {
                    Err(io::Error::other(rep::SourceChanged))
                }
            }
            Ok(other) => fail(self, format!("expected content, got {other:?}")),
            Err(e) => fail(self, e),
        }
    }

    /// Reads what is left of the stream (a failed install).
    fn drain(&mut self) {
        while let Ok(Some(_)) = self.next() {}
    }
}

impl Read for PutStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A chunk larger than `buf` is handed out over several reads.
        if self.at >= self.rest.len() {
            match self.next()? {
                None => return Ok(0),
                Some(b) => (self.rest, self.at) = (b, 0),
            }
        }
        let n = (self.rest.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.rest[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

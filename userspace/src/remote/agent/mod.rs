//! The agent: carries out an engine's requests on a local DST
//! ([`LocalReplica`], the same dirfd-relative code as a local sync).
//!
//! Safety: every name in a message was checked to be one path component
//! by the decoder (`protocol::fields::check_name`); every operation is
//! relative to a handle opened from the root with `O_NOFOLLOW |
//! O_DIRECTORY`, one component at a time, so nothing outside the root can
//! be reached. The tables of handles and file streams are bounded
//! ([`MAX_HANDLES`], [`MAX_FILES`]); a peer that breaks the rules (an
//! unknown or reused number, a message out of place) gets a protocol
//! error and the agent stops.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;

use crate::remote::protocol::frame::FrameWriter;
use crate::remote::protocol::messages::{Answer, Entry, Msg, NoteOp};
mod stream;

use crate::stat::Kind;
use crate::sync::local::{LocalDir, LocalReplica};
use crate::sync::{IncomingFile, Replica, ReplicaDir};
use crate::sys;
use stream::{Partials, Receiver, Stream};

/// Most directory handles open at once.
pub const MAX_HANDLES: usize = 1 << 16;
/// Most files being received at once.
pub const MAX_FILES: usize = 4096;
/// A listing is sent in parts of about this many bytes.
const PART_BYTES: usize = 256 << 10;

/// A peer broke the protocol.
#[derive(Debug, thiserror::Error)]
#[error("protocol error: {0}")]
pub struct Violation(pub String);

fn violation(what: &str) -> Violation {
    Violation(what.to_string())
}

/// An open directory, or one that could not be opened (`dir` `None`):
/// then the first operation on it reports the failure, unless `quiet`
/// (its creation failed, or its parent's opening: already reported), and
/// the others fail silently.
struct Handle {
    dir: Option<Arc<LocalDir>>,
    rel: Vec<u8>,
    quiet: bool,
}

/// A change to carry out on a directory; returns entries removed.
type Change = Box<dyn FnOnce(&LocalDir) -> io::Result<u64>>;

/// The agent's state.
pub struct Agent {
    root: LocalReplica,
    handles: HashMap<u32, Handle>,
    /// (handle, name) of directories whose creation failed (reported):
    /// opening them fails quietly.
    failed_creates: std::collections::HashSet<(u32, CString)>,
    streams: HashMap<u32, Stream>,
    partials: Partials,
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    if rel.is_empty() {
        return name.to_vec();
    }
    let mut p = rel.to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

/// Sends a note: `r` is the outcome of an operation.
fn note(
    w: &mut FrameWriter,
    op: NoteOp,
    path: Vec<u8>,
    r: io::Result<u64>,
    silent: bool,
) -> io::Result<()> {
    let (errno, count) = match r {
        Ok(n) => (0, n),
        Err(e) => (errno(&e), 0),
    };
    if errno == 0 && count == 0 && op != NoteOp::Remove {
        return Ok(()); // nothing to correct
    }
    send(
        w,
        &Msg::Note {
            op,
            path,
            errno,
            count,
            silent,
        },
    )
}

/// Writes one message.
pub fn send(w: &mut FrameWriter, m: &Msg) -> io::Result<()> {
    let (k, p) = m.encode();
    w.write(k, &p)
}

impl Agent {
    /// An agent for the tree of `root`.
    pub fn new(root: LocalReplica) -> Self {
        Agent {
            root,
            handles: HashMap::new(),
            failed_creates: Default::default(),
            streams: HashMap::new(),
            partials: Partials::default(),
        }
    }

    /// A dry run: leaves stale partial files (module `stream`).
    pub fn keep_partials(&mut self) {
        self.partials.keep();
    }

    fn handle(&self, id: u32) -> Result<&Handle, Violation> {
        self.handles
            .get(&id)
            .ok_or_else(|| violation("unknown directory handle"))
    }

    /// Carries out one message; `Ok(false)` when the engine said goodbye.
    pub fn handle_msg(&mut self, m: Msg, w: &mut FrameWriter) -> Result<bool, Violation> {
        let io = |e: io::Error| Violation(format!("cannot send: {e}"));
        match m {
            Msg::Open { id, parent, name } => self.open(id, parent, name).map_err(io)?,
            Msg::Close { id } => {
                let h = self.handles.remove(&id);
                let h = h.ok_or_else(|| violation("closing an unknown handle"))?;
                self.partials.close(id, h.dir.as_deref());
            }
            Msg::List { req, id } => {
                let hidden = list(self.handle(id)?, req, w).map_err(io)?;
                self.partials.seen(id, hidden);
            }
            Msg::Stat { req, id, name } => {
                let h = self.handle(id)?;
                let r = match (&h.dir, name) {
                    (None, _) => Err(libc::ENOENT),
                    (Some(d), Some(n)) => d.stat(&n).map(Answer::Meta).map_err(|e| errno(&e)),
                    (Some(d), None) => d
                        .stat_self()
                        .map(|m| Answer::Meta(Some(m)))
                        .map_err(|e| errno(&e)),
                };
                send(w, &Msg::Reply { req, result: r }).map_err(io)?;
            }
            Msg::Rename { req, from, to } => {
                let r = self.root.rename(&from, &to).unwrap_or(false);
                let m = Msg::Reply {
                    req,
                    result: Ok(Answer::Bool(r)),
                };
                send(w, &m).map_err(io)?;
            }
            Msg::Barrier { req } => {
                let m = Msg::Reply {
                    req,
                    result: Ok(Answer::Unit),
                };
                send(w, &m).map_err(io)?;
            }
            Msg::Bye => return Ok(false),
            m => self.change(m, w)?,
        }
        Ok(true)
    }

    fn open(&mut self, id: u32, parent: u32, name: Option<CString>) -> io::Result<()> {
        if self.handles.contains_key(&id) || self.handles.len() >= MAX_HANDLES {
            return Err(io::Error::other(violation(
                "reused handle or too many handles",
            )));
        }
        let (r, rel, quiet) = match (parent, name) {
            (0, None) => (self.root.root_dir(), Vec::new(), false),
            (p, Some(n)) => {
                let quiet = self.failed_creates.remove(&(p, n.clone()));
                match self.handles.get(&p) {
                    Some(Handle {
                        dir: Some(d), rel, ..
                    }) => (d.open_local(&n), join(rel, n.as_bytes()), quiet),
                    Some(Handle { dir: None, rel, .. }) => (
                        Err(io::Error::from_raw_os_error(libc::ENOENT)),
                        join(rel, n.as_bytes()),
                        true,
                    ),
                    None => return Err(io::Error::other(violation("unknown parent handle"))),
                }
            }
            _ => return Err(io::Error::other(violation("bad open"))),
        };
        let dir = r.ok().map(Arc::new);
        self.handles.insert(id, Handle { dir, rel, quiet });
        Ok(())
    }

    /// The asynchronous operations: a failure becomes a note.
    fn change(&mut self, m: Msg, w: &mut FrameWriter) -> Result<(), Violation> {
        let io = |e: io::Error| Violation(format!("cannot send: {e}"));
        let (op, id, name, f): (NoteOp, u32, Option<CString>, Change) = match m {
            Msg::CreateDir { id, name } => {
                let n = name.clone();
                (
                    NoteOp::CreateDir,
                    id,
                    Some(name),
                    Box::new(move |d| d.create_dir(&n).map(|()| 0)),
                )
            }
            Msg::Remove { id, name } => {
                let n = name.clone();
                (
                    NoteOp::Remove,
                    id,
                    Some(name),
                    Box::new(move |d| d.remove(&n)),
                )
            }
            Msg::SetAttrs { id, name, attrs } => {
                let n = name.clone();
                (
                    NoteOp::SetAttrs,
                    id,
                    name,
                    Box::new(move |d| d.set_attrs(n.as_deref(), &attrs).map(|()| 0)),
                )
            }
            Msg::Symlink {
                id,
                name,
                target,
                attrs,
                over,
            } => {
                let n = name.clone();
                (
                    NoteOp::Symlink,
                    id,
                    Some(name),
                    Box::new(move |d| d.install_symlink(&n, &target, &attrs, over)),
                )
            }
            Msg::Special {
                id,
                name,
                fmt,
                rdev,
                attrs,
                over,
            } => {
                let n = name.clone();
                (
                    NoteOp::Special,
                    id,
                    Some(name),
                    Box::new(move |d| d.install_special(&n, fmt, rdev, &attrs, over)),
                )
            }
            m => return self.stream(m, w),
        };
        let h = self
            .handles
            .get_mut(&id)
            .ok_or_else(|| violation("unknown directory handle"))?;
        let rel = match &name {
            Some(n) => join(&h.rel, n.as_bytes()),
            None => h.rel.clone(),
        };
        let (r, silent) = match &h.dir {
            Some(d) => (f(d), false),
            None => (
                Err(io::Error::from_raw_os_error(libc::ENOENT)),
                std::mem::replace(&mut h.quiet, true),
            ),
        };
        if op == NoteOp::CreateDir && r.is_err() {
            if self.failed_creates.len() >= MAX_HANDLES {
                self.failed_creates.clear();
            }
            if let Some(n) = name.clone() {
                self.failed_creates.insert((id, n));
            }
        }
        note(w, op, rel, r, silent).map_err(io)
    }

    /// File streams: begin, data, commit, abort, compare.
    fn stream(&mut self, m: Msg, w: &mut FrameWriter) -> Result<(), Violation> {
        let io = |e: io::Error| Violation(format!("cannot send: {e}"));
        match m {
            Msg::FileBegin {
                fid,
                id,
                name,
                size,
                compare,
                fresh,
                plan: plan_req,
            } => {
                if self.streams.contains_key(&fid) || self.streams.len() >= MAX_FILES {
                    return Err(violation("reused file number or too many files at once"));
                }
                self.partials.used(id, &name);
                let h = self
                    .handles
                    .get_mut(&id)
                    .ok_or_else(|| violation("unknown directory handle"))?;
                let rel = join(&h.rel, name.as_bytes());
                // The first file into a directory that could not be
                // opened reports it (unless already reported).
                let report = h.dir.is_none() && !std::mem::replace(&mut h.quiet, true);
                let s = match (&h.dir, compare) {
                    (Some(d), true) => Stream::Compare {
                        mine: d.open_file(&name).ok(),
                        same: true,
                    },
                    (None, true) => Stream::Compare {
                        mine: None,
                        same: false,
                    },
                    // A new name is written unnamed and linked once, when
                    // this file system can (probed once, so that the
                    // commit never asks for the content again).
                    (Some(d), false) => {
                        match d.receive_shared(&name, fresh && d.unnamed_files_work()) {
                            Ok(file) => Stream::Write {
                                file,
                                rel,
                                got: 0,
                                err: None,
                                rx: Some(Box::new(Receiver::new(d.clone(), name.clone()))),
                            },
                            Err(e) => Stream::Failed {
                                rel,
                                got: 0,
                                err: Some(e),
                            },
                        }
                    }
                    (None, false) => Stream::Failed {
                        rel,
                        got: 0,
                        err: report.then(|| io::Error::from_raw_os_error(libc::ENOENT)),
                    },
                };
                let mut s = s;
                if plan_req != 0 {
                    let sig = stream::plan(&mut s, size);
                    let m = Msg::Reply {
                        req: plan_req,
                        result: Ok(Answer::Plan(sig)),
                    };
                    send(w, &m).map_err(io)?;
                }
                self.streams.insert(fid, s);
            }
            Msg::Data { fid, bytes } => {
                let s = self
                    .streams
                    .get_mut(&fid)
                    .ok_or_else(|| violation("data for an unknown file"))?;
                data(s, &bytes);
            }
            Msg::Commit {
                fid,
                attrs,
                fsync,
                over,
            } => {
                let s = self
                    .streams
                    .remove(&fid)
                    .ok_or_else(|| violation("commit of an unknown file"))?;
                let (rel, r, silent) = match s {
                    Stream::Write {
                        file,
                        rel,
                        got,
                        err: None,
                        ..
                    } => {
                        let r = file.commit(&attrs, fsync, over).and_then(|c| match c {
                            crate::sync::Committed::Done { deleted } => Ok(deleted),
                            // Only an unnamed file whose linking had not
                            // been probed asks for its content again, and
                            // the agent probes first: never lose it quietly.
                            crate::sync::Committed::Retry => {
                                Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
                            }
                        });
                        (rel, r.map_err(|e| (e, got)), false)
                    }
                    Stream::Write {
                        rel,
                        got,
                        err: Some(e),
                        ..
                    } => (rel, Err((e, got)), false),
                    Stream::Failed { rel, got, err } => {
                        let silent = err.is_none();
                        let e = err.unwrap_or_else(|| io::Error::from_raw_os_error(libc::ENOENT));
                        (rel, Err((e, got)), silent)
                    }
                    Stream::Compare { .. } => return Err(violation("commit of a compared file")),
                };
                let m = match r {
                    Ok(0) => return Ok(()),
                    Ok(n) => Msg::Note {
                        op: NoteOp::Copy,
                        path: rel,
                        errno: 0,
                        count: n,
                        silent,
                    },
                    Err((e, got)) => Msg::Note {
                        op: NoteOp::Copy,
                        path: rel,
                        errno: errno(&e),
                        count: got,
                        silent,
                    },
                };
                send(w, &m).map_err(io)?;
            }
            Msg::Abort { fid } => {
                self.streams
                    .remove(&fid)
                    .ok_or_else(|| violation("abort of an unknown file"))?;
            }
            Msg::CompareEnd { req, fid } => {
                let same = match self.streams.remove(&fid) {
                    Some(Stream::Compare { mine, same }) => {
                        same && mine.is_some_and(|f| at_end(f.as_fd()))
                    }
                    _ => return Err(violation("end of a compare that did not begin")),
                };
                send(
                    w,
                    &Msg::Reply {
                        req,
                        result: Ok(Answer::Bool(same)),
                    },
                )
                .map_err(io)?;
            }
            m @ (Msg::Delta { .. } | Msg::DeltaEnd { .. }) => {
                stream::on_message(&mut self.streams, m, w).map_err(Violation)?
            }
            _ => return Err(violation("a message the agent does not take")),
        }
        Ok(())
    }
}

/// Whether nothing is left to read in `f`.
fn at_end(f: std::os::fd::BorrowedFd<'_>) -> bool {
    let mut b = [0u8; 1];
    matches!(sys::read(f, &mut b), Ok(0))
}

/// Writes (or compares) one data message of a stream.
fn data(s: &mut Stream, bytes: &[u8]) {
    match s {
        Stream::Write { file, got, err, .. } => {
            if err.is_none() {
                if let Err(e) = write_all(file.as_mut(), bytes) {
                    *err = Some(e);
                }
            }
            *got += bytes.len() as u64;
        }
        Stream::Failed { got, .. } => *got += bytes.len() as u64,
        Stream::Compare { mine, same } => {
            if let (Some(f), true) = (mine, *same) {
                let mut buf = vec![0u8; bytes.len()];
                *same =
                    read_full(f.as_fd(), &mut buf).is_ok_and(|n| n == bytes.len() && buf == bytes);
            }
        }
    }
}

fn read_full(f: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match sys::read(f, &mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Appends `bytes` to a file being received.
fn write_all(file: &mut (dyn IncomingFile + Send), bytes: &[u8]) -> io::Result<()> {
    file.write(bytes)
}

/// Sends a message; no partial file seen.
fn send_none(w: &mut FrameWriter, m: &Msg) -> io::Result<Vec<CString>> {
    send(w, m).map(|()| Vec::new())
}

/// Sends the listing of `h` in parts, then the reply; returns the
/// partial files it left out.
fn list(h: &Handle, req: u32, w: &mut FrameWriter) -> io::Result<Vec<CString>> {
    let Some(d) = &h.dir else {
        return send_none(
            w,
            &Msg::Reply {
                req,
                result: Err(libc::ENOENT),
            },
        );
    };
    // The agent's own best backend lists and describes the directory in
    // one pass (dirsync_readdir when its kernel has it).
    let mut entries = match d.scan() {
        Ok(n) => n,
        Err(e) => {
            return send_none(
                w,
                &Msg::Reply {
                    req,
                    result: Err(errno(&e)),
                },
            )
        }
    };
    let hidden = stream::hide_partials(&mut entries);
    let mut part = Vec::new();
    let mut bytes = 0;
    for de in entries {
        let meta = de.meta.map_err(|e| errno(&e));
        let kind = meta.as_ref().ok().and_then(|m| m.map(|m| m.kind));
        let link = match kind {
            Some(Kind::Symlink) => d.read_link(&de.name).ok(),
            _ => None,
        };
        let rdev = match kind {
            Some(Kind::Special(_)) => d.rdev(&de.name).unwrap_or((0, 0)),
            _ => (0, 0),
        };
        bytes += de.name.as_bytes().len() + link.as_ref().map_or(0, Vec::len) + 80;
        part.push(Entry {
            name: de.name,
            d_type: de.d_type,
            meta,
            link,
            rdev,
        });
        if bytes >= PART_BYTES {
            send(
                w,
                &Msg::Entries {
                    req,
                    entries: std::mem::take(&mut part),
                },
            )?;
            bytes = 0;
        }
    }
    if !part.is_empty() {
        send(w, &Msg::Entries { req, entries: part })?;
    }
    send(
        w,
        &Msg::Reply {
            req,
            result: Ok(Answer::Unit),
        },
    )
    .map(|()| hidden)
}

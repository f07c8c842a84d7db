//! The agent's file streams: begin, data, commit, abort, compare (and
//! the delta messages, module `stream`). A file's bytes are bounded by
//! the size its `FileBegin` declared: more, or a commit with fewer, is a
//! protocol error.

use std::io;
use std::os::fd::AsFd;

use std::collections::HashMap;

use super::handles::{errno, Handles};
use super::policy::{self, Policy, Violation};
use super::reply::{cannot_send, send};
use super::stream::{self, Partials, Receiver, Stream};
use crate::remote::protocol::frame::FrameWriter;
use crate::remote::protocol::messages::{Answer, Msg, NoteOp};
use crate::sync::{Committed, IncomingFile};
use crate::sys;

/// Most files being received at once (each holds an open file and its
/// place: about 1 KiB).
pub const MAX_FILES: usize = 4096;
/// Most files being assembled from delta ops at once (each holds up to
/// 1 MiB of copy buffer): a plan asked beyond it gets "send it whole".
pub const MAX_PLANS: usize = 64;

fn violation(what: &str) -> Violation {
    Violation(what.to_string())
}

/// The file streams by number (at most [`MAX_FILES`]) and the partial
/// files seen.
pub struct Files {
    streams: HashMap<u32, Stream>,
    /// Partial files seen in listings (module `stream`).
    pub partials: Partials,
}

impl Files {
    /// No stream yet; `keep`: leave stale partial files (a dry run,
    /// `--no-delete`).
    pub fn new(keep: bool) -> Self {
        let mut partials = Partials::default();
        if keep {
            partials.keep();
        }
        Files {
            streams: HashMap::new(),
            partials,
        }
    }

    /// The stream `fid`, if any.
    pub fn stream(&mut self, fid: u32) -> Option<&mut Stream> {
        self.streams.get_mut(&fid)
    }

    /// File streams: begin, data, commit, abort, compare, delta; names
    /// are in `handles`, the rules in `p`.
    pub fn on_message(
        &mut self,
        handles: &mut Handles,
        p: &Policy,
        m: Msg,
        w: &mut FrameWriter,
    ) -> Result<(), Violation> {
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
                let h = handles.get(id)?;
                if !compare {
                    p.change("a file", &h.shown(Some(&name)))?;
                    if h.excluded(p, &name, Some(false)) {
                        return Err(policy::refused("an excluded file", &h.shown(Some(&name))));
                    }
                }
                // `--max-size`: not received, silently (the engine has
                // reported it skipped).
                let taken = compare || p.takes_size(size);
                self.partials.used(id, &name);
                let h = handles.get_mut(id)?;
                let at = (h.place.clone(), name.clone());
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
                    (_, false) if !taken => Stream::Failed {
                        at,
                        size,
                        got: 0,
                        err: None,
                    },
                    // A new name is written unnamed and linked once, when
                    // this file system can (probed once, so that the
                    // commit never asks for the content again).
                    (Some(d), false) => {
                        match d.receive_shared(&name, fresh && d.unnamed_files_work()) {
                            Ok(file) => Stream::Write {
                                file,
                                at,
                                size,
                                got: 0,
                                err: None,
                                rx: Some(Box::new(Receiver::new(d.clone(), name.clone()))),
                            },
                            Err(e) => Stream::Failed {
                                at,
                                size,
                                got: 0,
                                err: Some(e),
                            },
                        }
                    }
                    (None, false) => Stream::Failed {
                        at,
                        size,
                        got: 0,
                        err: report.then(|| io::Error::from_raw_os_error(libc::ENOENT)),
                    },
                };
                let mut s = s;
                if plan_req != 0 {
                    let busy = self.streams.values().filter(|s| s.applying()).count();
                    let sig = match busy < MAX_PLANS {
                        true => stream::plan(&mut s, size),
                        false => None,
                    };
                    let m = Msg::Reply {
                        req: plan_req,
                        result: Ok(Answer::Plan(sig)),
                    };
                    send(w, &m).map_err(cannot_send)?;
                }
                self.streams.insert(fid, s);
            }
            Msg::Data { fid, bytes } => {
                let s = self
                    .streams
                    .get_mut(&fid)
                    .ok_or_else(|| violation("data for an unknown file"))?;
                data(s, &bytes)?;
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
                if let Stream::Write { size, got, .. } | Stream::Failed { size, got, .. } = &s {
                    if got != size {
                        return Err(Violation(format!(
                            "commit of a file with {got} of the {size} bytes declared"
                        )));
                    }
                }
                // Set-id bits are not the receiver's to keep, unless it
                // asked for owners (`policy`).
                let mut attrs = attrs;
                attrs.perm = attrs.perm.map(|m| p.set_id(m));
                let (at, r, silent) = match s {
                    Stream::Write {
                        file,
                        at,
                        got,
                        err: None,
                        ..
                    } => {
                        let r = file.commit(&attrs, fsync, over).and_then(|c| match c {
                            Committed::Done { deleted } => Ok(deleted),
                            // Only an unnamed file whose linking had not
                            // been probed asks for its content again, and
                            // the agent probes first: never lose it quietly.
                            Committed::Retry => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
                        });
                        (at, r.map_err(|e| (e, got)), false)
                    }
                    Stream::Write {
                        at,
                        got,
                        err: Some(e),
                        ..
                    } => (at, Err((e, got)), false),
                    Stream::Failed { at, got, err, .. } => {
                        let silent = err.is_none();
                        let e = err.unwrap_or_else(|| io::Error::from_raw_os_error(libc::ENOENT));
                        (at, Err((e, got)), silent)
                    }
                    Stream::Compare { .. } => return Err(violation("commit of a compared file")),
                };
                let shown = || super::handles::shown(at.0.as_ref(), Some(&at.1));
                let m = match r {
                    Ok(0) => return Ok(()),
                    Ok(n) => Msg::Note {
                        op: NoteOp::Copy,
                        path: shown(),
                        errno: 0,
                        count: n,
                        silent,
                    },
                    Err((e, got)) => Msg::Note {
                        op: NoteOp::Copy,
                        path: shown(),
                        errno: errno(&e),
                        count: got,
                        silent,
                    },
                };
                send(w, &m).map_err(cannot_send)?;
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
                let m = Msg::Reply {
                    req,
                    result: Ok(Answer::Bool(same)),
                };
                send(w, &m).map_err(cannot_send)?;
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

/// Writes (or compares) one data message of a stream; more bytes than
/// the file's declared size is a protocol error (nothing of them is
/// written).
fn data(s: &mut Stream, bytes: &[u8]) -> Result<(), Violation> {
    s.take(bytes.len() as u64).map_err(Violation)?;
    match s {
        Stream::Write { file, err, .. } => {
            if err.is_none() {
                if let Err(e) = write_all(file.as_mut(), bytes) {
                    *err = Some(e);
                }
            }
        }
        Stream::Failed { .. } => {}
        Stream::Compare { mine, same } => {
            if let (Some(f), true) = (mine, *same) {
                let mut buf = vec![0u8; bytes.len()];
                *same =
                    read_full(f.as_fd(), &mut buf).is_ok_and(|n| n == bytes.len() && buf == bytes);
            }
        }
    }
    Ok(())
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

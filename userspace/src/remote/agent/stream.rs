//! The agent's file streams, with the receiving side of delta transfer
//! and of resumable files (see [`crate::remote::delta`] for the protocol).
//!
//! [`Receiver::plan`] picks a basis: the partial file of that name (what
//! arrived of an interrupted transfer) or else the current file, and
//! gives its signature. From then on the file is written into a new
//! partial file, `.dirsync-partial.NAME` next to it: never under the
//! final name, kept when the transfer is cut, renamed over NAME at the
//! commit (the same install as any temporary). Partial files are hidden
//! from listings ([`hide_partials`]), so the engine neither sees nor
//! deletes them; a completed file consumes its own.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::handles::Place;
use crate::remote::protocol::frame::FrameWriter;
use crate::remote::protocol::messages::{Answer, Msg};
use crate::sync::local::LocalDir;
use crate::sync::IncomingFile;
use crate::transfer::delta::wire::WireError;
use crate::transfer::delta::{
    block_len_for, strong_len_for, Applier, DeltaError, Op, Signature, MAX_BLOCK,
};

/// Prefix of the partial files.
pub const PARTIAL_PREFIX: &[u8] = b".dirsync-partial.";
/// The largest signature sent (it fits a frame): files up to about
/// 12 GiB get a delta, larger ones are sent whole.
const MAX_SIGNATURE: usize = 1 << 20;

/// Where a file is: its directory's place and its name (a path is built
/// only for a note).
pub type At = (Option<Arc<Place>>, CString);

/// A file being received or compared. `size` is what the sender
/// declared (`FileBegin`): more bytes (data, or what delta ops produce)
/// are a protocol error, and so is a commit with fewer.
pub enum Stream {
    /// Written into a temporary or partial file.
    Write {
        /// The file being written.
        file: Box<dyn IncomingFile + Send>,
        /// Where.
        at: At,
        /// Declared size.
        size: u64,
        /// Bytes written so far.
        got: u64,
        /// The first write error.
        err: Option<io::Error>,
        /// Delta transfer and partial file.
        rx: Option<Box<Receiver>>,
    },
    /// Compared with the existing file (`--checksum`).
    Compare {
        /// The existing file.
        mine: Option<OwnedFd>,
        /// Equal so far.
        same: bool,
    },
    /// Its directory is unusable, it could not be created, or it is not
    /// taken (`--max-size`: `err` `None`, nothing reported).
    Failed {
        /// Where.
        at: At,
        /// Declared size.
        size: u64,
        /// Bytes received so far.
        got: u64,
        /// The failure to report (`None`: reported already, or silent).
        err: Option<io::Error>,
    },
}

impl Stream {
    /// Whether it holds a delta applier (memory: its copy buffer).
    pub fn applying(&self) -> bool {
        matches!(self, Stream::Write { rx: Some(rx), .. } if rx.applier.is_some())
    }

    /// Counts `n` more bytes of the file; more than declared is a
    /// protocol error.
    pub fn take(&mut self, n: u64) -> Result<(), String> {
        if let Stream::Write { size, got, .. } | Stream::Failed { size, got, .. } = self {
            if n > *size - *got {
                return Err(format!("more than the {size} bytes declared for a file"));
            }
            *got += n;
        }
        Ok(())
    }
}

/// The name of the partial file of `name` (`None`: too long).
pub fn partial_name(name: &[u8]) -> Option<CString> {
    let p = [PARTIAL_PREFIX, name].concat();
    (p.len() <= 255).then(|| CString::new(p).ok()).flatten()
}

/// Whether `name` is a partial file (hidden from listings).
pub fn is_partial(name: &[u8]) -> bool {
    name.starts_with(PARTIAL_PREFIX)
}

/// Opens `name` in `dir` if it is a non-empty regular file.
fn open_basis(dir: &LocalDir, name: &CStr) -> Option<File> {
    let f = File::from(dir.open_file(name).ok()?);
    let m = f.metadata().ok()?;
    (m.is_file() && m.len() > 0).then_some(f)
}

/// A writer into a file being received.
struct Out<'a>(&'a mut (dyn IncomingFile + Send));

impl Write for Out<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map(|()| buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a delta message could not be applied.
pub enum ApplyError {
    /// The peer sent bytes that are not ops: a protocol error.
    Wire(WireError),
    /// The ops produce more than the file's declared size: a protocol
    /// error (nothing of that op was written).
    TooLong,
    /// Writing the file failed.
    Io(io::Error),
}

/// The receiver's side of one file stream.
pub struct Receiver {
    dir: Arc<LocalDir>,
    name: CString,
    /// The partial file being written, if there is one.
    partial: Option<CString>,
    applier: Option<Applier>,
    /// Block length and length of the basis of the applier's signature.
    basis: (u64, u64),
    /// The delta did not fit or did not match: the whole file is needed.
    failed: bool,
}

impl Receiver {
    /// For the stream of `name` in `dir`.
    pub fn new(dir: Arc<LocalDir>, name: CString) -> Self {
        Receiver {
            dir,
            name,
            partial: None,
            applier: None,
            basis: (0, 0),
            failed: false,
        }
    }

    /// Answers a plan request for a file the sender has `size` bytes of:
    /// switches `file` (nothing written yet) to a partial file, and
    /// returns the signature of the basis, if any.
    pub fn plan(&mut self, file: &mut Box<dyn IncomingFile + Send>, size: u64) -> Option<Vec<u8>> {
        let partial = partial_name(self.name.as_bytes())?;
        let basis = open_basis(&self.dir, &partial).or_else(|| open_basis(&self.dir, &self.name));
        // The basis (maybe the old partial file) stays open for reading.
        if let Ok(f) = self.dir.receive_partial(&self.name, &partial) {
            *file = f;
            self.partial = Some(partial);
        }
        let basis = basis?;
        let len = basis.metadata().ok()?.len();
        let (bl, sl) = sig_params(len, size)?;
        let sig = Signature::compute(&basis, bl, sl).ok()?;
        let mut bytes = Vec::new();
        sig.encode(&mut bytes);
        self.applier = Some(Applier::new(&sig, Some(basis)));
        self.basis = (u64::from(sig.block_len()), sig.file_len());
        Some(bytes)
    }

    /// Applies a message of ops to `file`, at most `room` bytes of
    /// output; returns the bytes written. Ops that do not fit the basis
    /// only mark the delta failed.
    pub fn apply(
        &mut self,
        ops: &[u8],
        file: &mut (dyn IncomingFile + Send),
        room: u64,
    ) -> Result<u64, ApplyError> {
        let Some(a) = self.applier.as_mut().filter(|_| !self.failed) else {
            self.failed = true;
            return Ok(0);
        };
        let before = a.written();
        let mut rest = ops;
        while !rest.is_empty() {
            let (op, used) = Op::decode(rest).map_err(ApplyError::Wire)?;
            if output_len(&op, self.basis) > room - (a.written() - before) {
                return Err(ApplyError::TooLong);
            }
            match a.apply(op, &mut Out(file)) {
                Ok(()) => {}
                Err(DeltaError::Io(e)) => return Err(ApplyError::Io(e)),
                Err(_) => {
                    self.failed = true;
                    break;
                }
            }
            rest = &rest[used..];
        }
        Ok(a.written() - before)
    }

    /// The end of the delta: whether the file is complete and matches.
    /// If not, `file` starts again empty for the whole content.
    pub fn end(&mut self, file: &mut Box<dyn IncomingFile + Send>) -> io::Result<bool> {
        let ok = !self.failed && self.applier.as_ref().is_some_and(Applier::is_done);
        self.applier = None;
        if !ok {
            self.failed = false;
            *file = match &self.partial {
                Some(p) => self.dir.receive_partial(&self.name, p)?,
                None => self.dir.receive_shared(&self.name, false)?,
            };
        }
        Ok(ok)
    }
}

/// The bytes `op` writes, against a basis of (block length, length)
/// `basis` (an op out of its range writes nothing: the applier refuses it).
fn output_len(op: &Op<'_>, (bl, len): (u64, u64)) -> u64 {
    match op {
        Op::Copy { start, count } => {
            let off = u64::from(*start) * bl;
            let end = ((u64::from(*start) + u64::from(*count)) * bl).min(len);
            end.saturating_sub(off)
        }
        Op::Literal(d) => d.len() as u64,
        Op::End { .. } => 0,
    }
}

/// Block and strong hash lengths for the signature of a basis of `len`
/// bytes against a new file of `size` bytes: blocks large enough for
/// the signature to fit a frame (`None`: it cannot).
fn sig_params(len: u64, size: u64) -> Option<(u32, usize)> {
    let mut bl = block_len_for(len);
    loop {
        let sl = strong_len_for(len.max(size), bl);
        let per_frame = ((MAX_SIGNATURE - 64) / (4 + sl)) as u64;
        let fit = len.div_ceil(per_frame);
        if fit <= bl as u64 {
            return Some((bl, sl));
        }
        bl = ((fit + 7) & !7).min(MAX_BLOCK as u64 + 8) as u32;
        if bl > MAX_BLOCK {
            return None;
        }
    }
}

/// THE place where the receiver decides how the content of the file of
/// stream `s` (the sender has `size` bytes of it) comes: whole (`None`),
/// or as delta ops against the signature of its basis (`Some(signature
/// bytes)`): its partial file or its current copy. Either way the file
/// is then received into a partial file ([`Receiver`]).
/// Asked only when both sides have
/// [`FEATURE_DELTA`](crate::remote::protocol::messages::FEATURE_DELTA) and the
/// file is large ([`crate::remote::protocol::messages::DELTA_MIN`]).
pub fn plan(s: &mut Stream, size: u64) -> Option<Vec<u8>> {
    match s {
        Stream::Write {
            file,
            rx: Some(rx),
            got: 0,
            err: None,
            ..
        } => rx.plan(file, size),
        _ => None,
    }
}

/// Leaves the partial files (regular files by their prefix) out of a
/// listing; returns their names.
pub fn hide_partials(names: &mut Vec<crate::stat::Entry>) -> Vec<CString> {
    let mut hidden = Vec::new();
    names.retain(|d| {
        let file = matches!(d.d_type, libc::DT_REG | libc::DT_UNKNOWN);
        if file && is_partial(d.name.as_bytes()) {
            hidden.push(d.name.clone());
            return false;
        }
        true
    });
    hidden
}

/// Most partial file names remembered at once (about 20 MiB): those of
/// listings beyond it are simply kept.
const MAX_SEEN: usize = 1 << 16;

/// The partial files seen in listings, by directory handle. Those that
/// no file of this run used are removed when the engine is done with
/// the directory (their file is complete or gone from SRC). At most
/// [`MAX_SEEN`] names (a peer listing a directory under many handles
/// cannot grow it further).
#[derive(Default)]
pub struct Partials {
    seen: HashMap<u32, HashSet<CString>>,
    /// Names in `seen`.
    count: usize,
    /// A dry run or `--no-delete`: remove nothing.
    keep: bool,
}

impl Partials {
    /// Removes nothing (a dry run, `--no-delete`).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Partial files `names` in the listing of handle `id`.
    pub fn seen(&mut self, id: u32, names: Vec<CString>) {
        if names.is_empty() || self.keep || self.count + names.len() > MAX_SEEN {
            return;
        }
        self.count += names.len();
        if let Some(old) = self.seen.insert(id, names.into_iter().collect()) {
            self.count -= old.len();
        }
    }

    /// File `name` of handle `id` is being sent: its partial file (and
    /// itself, if its name looks like one) is in use.
    pub fn used(&mut self, id: u32, name: &CStr) {
        if let Some(s) = self.seen.get_mut(&id) {
            let before = s.len();
            s.remove(name);
            if let Some(p) = partial_name(name.to_bytes()) {
                s.remove(&p);
            }
            self.count -= before - s.len();
        }
    }

    /// Handle `id` (directory `dir`) is closed: removes what was unused,
    /// leaving the directory's mtime as it was (the engine may have set
    /// it already).
    pub fn close(&mut self, id: u32, dir: Option<&LocalDir>) {
        use crate::sync::{Attrs, ReplicaDir};
        let names = self.seen.remove(&id);
        self.count -= names.as_ref().map_or(0, HashSet::len);
        if let (Some(names), Some(d)) = (names, dir) {
            let before = d.stat_self().ok();
            for n in names {
                let _ = d.remove(&n);
            }
            if let Some(m) = before {
                let attrs = Attrs {
                    perm: None,
                    mtime: Some((m.mtime, m.mtime_nsec)),
                };
                let _ = d.set_attrs(None, &attrs);
            }
        }
    }
}

/// The agent's handling of [`Msg::Delta`] and [`Msg::DeltaEnd`] for its
/// file streams.
pub fn on_message(
    streams: &mut HashMap<u32, Stream>,
    m: Msg,
    w: &mut FrameWriter,
) -> Result<(), String> {
    let unknown = || "delta message for an unknown file".to_string();
    let io = |e: io::Error| format!("cannot send: {e}");
    let send = |w: &mut FrameWriter, m: &Msg| {
        let (k, p) = m.encode();
        w.write(k, &p)
    };
    match m {
        Msg::Delta { fid, ops } => match streams.get_mut(&fid).ok_or_else(unknown)? {
            Stream::Write {
                file,
                rx: Some(rx),
                size,
                got,
                err: err @ None,
                ..
            } => match rx.apply(&ops, file.as_mut(), *size - *got) {
                Ok(n) => {
                    *got += n;
                    Ok(())
                }
                Err(ApplyError::Io(e)) => {
                    *err = Some(e);
                    Ok(())
                }
                Err(ApplyError::Wire(e)) => Err(format!("bad delta: {e}")),
                Err(ApplyError::TooLong) => Err(format!(
                    "delta ops producing more than the {size} bytes declared for a file"
                )),
            },
            _ => Ok(()),
        },
        Msg::DeltaEnd { req, fid } => {
            let ok = match streams.get_mut(&fid).ok_or_else(unknown)? {
                Stream::Write {
                    file,
                    rx: Some(rx),
                    got,
                    err: err @ None,
                    ..
                } => match rx.end(file) {
                    Ok(ok) => {
                        if !ok {
                            *got = 0;
                        }
                        ok
                    }
                    Err(e) => {
                        *err = Some(e);
                        true
                    }
                },
                // A failed stream: the commit reports it.
                _ => true,
            };
            let reply = Msg::Reply {
                req,
                result: Ok(Answer::Bool(ok)),
            };
            send(w, &reply).map_err(io)
        }
        _ => Err("not a delta message".into()),
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;

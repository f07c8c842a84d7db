//! Delta transfer and resumable files over a link (with
//! [`FEATURE_DELTA`]), on top of [`crate::transfer::delta`]: the sending
//! side (the receiving side is in [`super::stream`]).
//!
//! The sender, for a file worth it ([`wants_plan`]), begins the stream,
//! asks for the receiver's plan ([`Msg::PlanAsk`]) and waits for it: the
//! signature of the receiver's basis (its partial file of that name, or
//! its current file), or none (then the whole file follows). With a
//! signature the sender streams delta ops ([`Msg::Delta`]) and
//! asks whether the result matched its hash ([`Msg::DeltaEnd`]); if not,
//! (the basis changed meanwhile) it sends the whole file ([`Msg::Data`]).

use std::io::{self, Read};
use std::os::fd::BorrowedFd;

use super::link::Link;
use super::proto::{Answer, Msg, FEATURE_DELTA};
use crate::sys;
use crate::transfer::delta::wire::MAX_OP_BYTES;
use crate::transfer::delta::{generate, DeltaError, Signature};

/// A changed file this large or larger is sent as a delta (when the
/// receiver has a copy).
pub const DELTA_MIN: u64 = 64 << 10;
/// A new file this large or larger asks for a plan too: the receiver may
/// hold a partial file of it from an interrupted run.
pub const RESUME_MIN: u64 = 1 << 20;
/// Bytes of ops per [`Msg::Delta`].
const OPS_BATCH: usize = 256 << 10;

/// Whether the sender asks for a plan for a file of `len` bytes
/// (`fresh`: the receiver has no file by that name).
pub fn wants_plan(link: &Link, fresh: bool, len: u64) -> bool {
    link.has(FEATURE_DELTA) && len >= if fresh { RESUME_MIN } else { DELTA_MIN }
}

/// Reads a descriptor from its offset.
struct FdReader<'a>(BorrowedFd<'a>);

impl Read for FdReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::read(self.0, buf)
    }
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("delta: {what}"))
}

/// The sender's side of file stream `fid` (begun): asks for the plan and
/// sends `len` bytes of `src` (from offset 0) as a delta. `Ok(Some(n))`:
/// sent, `n` bytes of content; `Ok(None)`: send it whole instead, after
/// rewinding `src`.
pub fn send_file(link: &Link, fid: u32, src: BorrowedFd<'_>, len: u64) -> io::Result<Option<u64>> {
    let Some(bytes) = link.plan(fid)? else {
        return Ok(None);
    };
    let sig = Signature::decode(&bytes).map_err(invalid)?;
    let mut batch = Vec::with_capacity(OPS_BATCH + MAX_OP_BYTES);
    let n = generate(&sig, FdReader(src).take(len), |op| {
        op.encode(&mut batch);
        if batch.len() >= OPS_BATCH {
            let ops = std::mem::take(&mut batch);
            link.send(&Msg::Delta { fid, ops }, false)?;
        }
        Ok(())
    })
    .map_err(|e| match e {
        DeltaError::Io(e) => e,
        e => invalid(e),
    })?;
    if !batch.is_empty() {
        link.send(&Msg::Delta { fid, ops: batch }, false)?;
    }
    match link.call(|req| Msg::DeltaEnd { req, fid })? {
        (Answer::Bool(true), _) => Ok(Some(n)),
        (Answer::Bool(false), _) => {
            rustix::fs::seek(src, rustix::fs::SeekFrom::Start(0))?;
            Ok(None)
        }
        _ => Err(invalid("unexpected reply to the end of a delta")),
    }
}

//! Delta transfer and resumable files over a link (with
//! `FEATURE_DELTA`), on top of [`crate::transfer::delta`]: the sending
//! side (the receiving side is the agent's file streams).
//!
//! The sender, for a large file ([`super::protocol::messages::DELTA_MIN`]), begins
//! the stream asking for the receiver's plan ([`Msg::FileBegin`] with a
//! request number) and waits for it ([`Answer::Plan`]): the signature of the receiver's basis (its partial file of that name, or
//! its current file), or none (then the whole file follows). With a
//! signature the sender streams delta ops ([`Msg::Delta`]) and
//! asks whether the result matched its hash ([`Msg::DeltaEnd`]); if not,
//! (the basis changed meanwhile) it sends the whole file ([`Msg::Data`]).

use std::io::{self, Read};
use std::os::fd::BorrowedFd;

use super::link::Link;
use super::protocol::messages::{Answer, Msg};
use crate::sys;
use crate::transfer::delta::wire::MAX_OP_BYTES;
use crate::transfer::delta::{generate, DeltaError, Op, Signature};

/// Bytes of ops per [`Msg::Delta`].
const OPS_BATCH: usize = 256 << 10;
/// Bytes of the new file that the ops of one [`Msg::Delta`] stand for
/// at most: a batch of copies is sent (and flushed) when it has that
/// much for the receiver to do, not when it is large, so the receiver
/// works while the sender matches (see `generate::MAX_COPY_RUN`).
const WORK_BATCH: u64 = 8 << 20;

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

/// The sender's side of file stream `fid` (begun, the receiver's plan
/// was `signature`): sends `len` bytes of `src` (from offset 0) as a
/// delta. `Ok(Some(n))`: sent, `n` bytes of content; `Ok(None)`: send it
/// whole instead (`src` rewound).
pub fn send_file(
    link: &Link,
    fid: u32,
    signature: &[u8],
    src: BorrowedFd<'_>,
    len: u64,
) -> io::Result<Option<u64>> {
    let sig = Signature::decode(signature).map_err(invalid)?;
    let mut batch = Vec::with_capacity(OPS_BATCH + MAX_OP_BYTES);
    let mut work = 0u64;
    let bl = sig.block_len() as u64;
    let n = generate(&sig, FdReader(src).take(len), |op| {
        op.encode(&mut batch);
        work += match op {
            Op::Copy { count, .. } => count as u64 * bl,
            Op::Literal(d) => d.len() as u64,
            Op::End { .. } => 0,
        };
        if batch.len() >= OPS_BATCH || work >= WORK_BATCH {
            let ops = std::mem::take(&mut batch);
            link.send(&Msg::Delta { fid, ops }, work >= WORK_BATCH)?;
            work = 0;
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

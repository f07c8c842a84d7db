//! What the agent writes back: messages, and notes of the operations
//! carried out without waiting.

use std::io;

use super::handles::errno;
use super::policy::Violation;
use crate::remote::protocol::frame::FrameWriter;
use crate::remote::protocol::messages::{Msg, NoteOp};

/// Writes one message.
pub fn send(w: &mut FrameWriter, m: &Msg) -> io::Result<()> {
    let (k, p) = m.encode();
    w.write(k, &p)
}

/// A failure to write to the peer, as the error that stops the agent.
pub fn cannot_send(e: io::Error) -> Violation {
    Violation(format!("cannot send: {e}"))
}

/// Sends a note: `r` is the outcome of an operation.
pub fn note(
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

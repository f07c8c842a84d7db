//! Peers that stop talking: after the handshake, or after taking the
//! client's first request.

use std::io;

use dirsync::remote::protocol::messages::{Msg, Role};

use crate::peer::{Peer, PATIENCE, PLAIN};
use crate::Scenario;

/// This module's scenarios.
pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("silent-after-handshake", silent_after_handshake),
    ("silent-after-ready", silent_after_ready),
];

/// Hello, then nothing: never answers the setup.
fn silent_after_handshake(p: &mut Peer) -> io::Result<()> {
    p.serve(PLAIN)?;
    silence(p)
}

/// Takes the setup (either role), says ready, then says nothing more and
/// answers nothing.
fn silent_after_ready(p: &mut Peer) -> io::Result<()> {
    let s = p.serve(PLAIN)?;
    let exists = s.role == Role::Agent || s.dst_exists;
    p.send(&Msg::Ready {
        created: false,
        exists,
    })?;
    p.flush()?;
    silence(p)
}

/// Reads and drops what comes, sends nothing, until the other side
/// closes or [`PATIENCE`] runs out.
fn silence(p: &mut Peer) -> io::Result<()> {
    p.drain();
    let start = std::time::Instant::now();
    while start.elapsed() < PATIENCE {
        if p.recv()?.is_none() {
            break;
        }
    }
    Ok(())
}

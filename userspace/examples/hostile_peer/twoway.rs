//! Agents of a two-way run (`dirsync --two-way A host:B`) that break the
//! promises of `protocol::twoway`: no feature bit, scan entries that name
//! paths outside the tree or longer than `PATH_MAX`, a scan without end,
//! a file's content longer than it said or without end.

use std::io;

use dirsync::remote::protocol::messages::{Msg, FEATURE_TWOWAY};
use dirsync::remote::protocol::twoway::{of_msg, to_msg, TwMsg, CHUNK};
use dirsync::twoway::reconcile::{State, Type};

use crate::peer::{Peer, PATIENCE, PLAIN};
use crate::Scenario;

/// This module's scenarios.
pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("tw-no-feature", no_feature),
    ("tw-scan-dotdot", scan_dotdot),
    ("tw-scan-absolute", scan_absolute),
    ("tw-scan-oversized", scan_oversized),
    ("tw-scan-endless", scan_endless),
    ("tw-read-longer", read_longer),
    ("tw-read-endless", read_endless),
];

fn file(size: u64) -> State {
    State {
        kind: Type::File,
        size,
        mtime: 1_000_000_000_000_000_000,
        perm: 0o644,
        ino: 7,
        target: Vec::new(),
        attrs: 0,
        ctime: 0,
    }
}

fn tw(p: &mut Peer, m: TwMsg) -> io::Result<()> {
    p.send(&to_msg(&m))
}

/// Ready and the root, then waits for the engine's scan request.
fn ready_until_scan(p: &mut Peer) -> io::Result<()> {
    p.serve(PLAIN)?;
    p.send(&Msg::Ready {
        created: false,
        exists: true,
    })?;
    tw(
        p,
        TwMsg::Root {
            dev: (0, 42),
            ino: 2,
        },
    )?;
    p.flush()?;
    until(p, |t| matches!(t, TwMsg::Scan))
}

/// Reads until a two-way message `want` says yes.
fn until(p: &mut Peer, want: impl Fn(&TwMsg) -> bool) -> io::Result<()> {
    loop {
        match p.recv()? {
            Some(m) => {
                if let Some(Ok(t)) = of_msg(&m) {
                    if want(&t) {
                        return Ok(());
                    }
                }
            }
            None => return Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
}

/// A hello without the two-way bit: the client must not even ask.
fn no_feature(p: &mut Peer) -> io::Result<()> {
    p.serve(PLAIN & !FEATURE_TWOWAY)?;
    p.until_closed()
}

/// A scan entry that is `p` (its components, sent as they are).
fn scan_with(p: &mut Peer, path: &[u8]) -> io::Result<()> {
    ready_until_scan(p)?;
    tw(p, TwMsg::Entries(vec![(path.to_vec(), file(3))]))?;
    tw(
        p,
        TwMsg::Root {
            dev: (0, 42),
            ino: 2,
        },
    )?;
    p.flush()?;
    // Its content (3 bytes) to whoever asks for it.
    loop {
        until(p, |t| matches!(t, TwMsg::Read { .. }))?;
        tw(p, TwMsg::Chunk(b"bad".to_vec()))?;
        tw(p, TwMsg::End { ok: true })?;
        p.flush()?;
    }
}

/// `../escape`: a path out of the tree.
fn scan_dotdot(p: &mut Peer) -> io::Result<()> {
    scan_with(p, b"../escape")
}

/// `/tmp/escape`: an absolute path.
fn scan_absolute(p: &mut Peer) -> io::Result<()> {
    scan_with(p, b"/tmp/escape")
}

/// A path of 5000 bytes (25 components of 199).
fn scan_oversized(p: &mut Peer) -> io::Result<()> {
    let part = vec![b'x'; 199];
    let long = vec![part; 25].join(&b'/');
    scan_with(p, &long)
}

/// Entries without end (long names, fresh each batch): the engine must
/// stop at its bound.
fn scan_endless(p: &mut Peer) -> io::Result<()> {
    ready_until_scan(p)?;
    p.drain();
    let start = std::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed() < PATIENCE {
        let batch = (0..200)
            .map(|_| {
                n += 1;
                let mut name = format!("{n:020}").into_bytes();
                name.resize(250, b'n');
                let path = [&name[..], &name[..], &name[..], &name[..]].join(&b'/');
                (path, file(1))
            })
            .collect();
        tw(p, TwMsg::Entries(batch))?;
        p.flush()?;
    }
    Ok(())
}

/// One file `f` of `size` bytes on this side, then, when it is read, the
/// content from `chunks` (its sizes).
fn read_with(p: &mut Peer, size: u64, chunks: impl Iterator<Item = usize>) -> io::Result<()> {
    ready_until_scan(p)?;
    tw(p, TwMsg::Entries(vec![(b"f".to_vec(), file(size))]))?;
    tw(
        p,
        TwMsg::Root {
            dev: (0, 42),
            ino: 2,
        },
    )?;
    p.flush()?;
    until(p, |t| matches!(t, TwMsg::Read { .. }))?;
    p.drain();
    let start = std::time::Instant::now();
    for c in chunks {
        if start.elapsed() > PATIENCE {
            break;
        }
        tw(p, TwMsg::Chunk(vec![b'z'; c]))?;
        p.flush()?;
    }
    tw(p, TwMsg::End { ok: true })?;
    p.flush()?;
    p.until_closed()
}

/// A 10-byte file whose content comes as 30 bytes.
fn read_longer(p: &mut Peer) -> io::Result<()> {
    read_with(p, 10, [10, 10, 10].into_iter())
}

/// A 1 MiB file whose content never ends.
fn read_endless(p: &mut Peer) -> io::Result<()> {
    read_with(p, 1 << 20, std::iter::repeat(CHUNK))
}

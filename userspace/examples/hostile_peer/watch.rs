//! Servers of `dirsync watch host:SRC DST` that misbehave: an older one
//! without the watch feature, one that claims to watch and floods the
//! client with events (and ignores its stop), one that sends an event
//! larger than any honest path.

use std::io;

use dirsync::remote::protocol::messages::{Msg, WireEvent, FEATURE_WATCH};

use crate::peer::{Peer, PATIENCE, PLAIN};
use crate::Scenario;

/// This module's scenarios.
pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("watch-old-server", old_server),
    ("watch-endless-events", endless_events),
    ("watch-oversized-event", oversized_event),
];

/// What the flood sends at most (the test stops the client long before).
const FLOOD_LIMIT: u64 = 50_000_000;

/// An older server: no watch bit in its hello. A client that sent a
/// setup anyway would get a ready and an empty one-shot pull (`Done`).
fn old_server(p: &mut Peer) -> io::Result<()> {
    let s = p.serve(PLAIN & !FEATURE_WATCH)?;
    p.send(&Msg::Ready {
        created: false,
        exists: s.dst_exists,
    })?;
    p.send(&Msg::Done {
        counters: Vec::new(),
        fatal: None,
    })?;
    p.flush()?;
    p.until_closed()
}

/// Setup, ready, then `Copied` events (distinct paths of about 4 KiB)
/// for ever, whatever the client says (its `WatchStop` included).
fn endless_events(p: &mut Peer) -> io::Result<()> {
    let s = p.serve(PLAIN)?;
    p.send(&Msg::Ready {
        created: false,
        exists: true,
    })?;
    p.flush()?;
    p.drain();
    let start = std::time::Instant::now();
    let pad = vec![b'x'; 4000];
    for i in 0..FLOOD_LIMIT {
        let name = [&s.path[..], b"/", &pad[..], format!("{i}").as_bytes()].concat();
        p.send(&Msg::Event(WireEvent {
            kind: 0,
            a: name.clone(),
            b: name,
            text: Vec::new(),
            count: 0,
        }))?;
        if i % 64 == 0 {
            p.flush()?;
        }
        if start.elapsed() > PATIENCE {
            break;
        }
    }
    Ok(())
}

/// Setup, ready, then one event whose path is 900 KiB (within a frame).
fn oversized_event(p: &mut Peer) -> io::Result<()> {
    let s = p.serve(PLAIN)?;
    p.send(&Msg::Ready {
        created: false,
        exists: true,
    })?;
    let long = [&s.path[..], b"/", &vec![b'y'; 900 << 10][..]].concat();
    p.send(&Msg::Event(WireEvent {
        kind: 3,
        a: long,
        b: Vec::new(),
        text: Vec::new(),
        count: 0,
    }))?;
    p.flush()?;
    p.until_closed()
}

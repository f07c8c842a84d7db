//! Engine events on the wire (a pull: the server's engine reports, the
//! client prints).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::messages::WireEvent;
use crate::report::Event;

fn b(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

/// The wire form of `e`.
pub fn to_wire(e: &Event<'_>) -> WireEvent {
    let (kind, a, bb, text, count) = match *e {
        Event::Copied { src, dst } => (0, b(src), b(dst), "", 0),
        Event::CreatedDir { path } => (1, b(path), vec![], "", 0),
        Event::Linked { path, target } => (2, b(path), target.to_vec(), "", 0),
        Event::Deleted { path } => (3, b(path), vec![], "", 0),
        Event::Attrs { path } => (4, b(path), vec![], "", 0),
        Event::Renamed { from, to } => (5, b(from), b(to), "", 0),
        Event::Special { path, kind } => (6, b(path), vec![], kind, 0),
        Event::Skipped { path, message } => (7, b(path), vec![], message, 0),
        Event::Warning { path, message } => (8, b(path), vec![], message, 0),
        Event::Error { path, message } => (9, b(path), vec![], message, 0),
        Event::Watching { dir } => (10, b(dir), vec![], "", 0),
        Event::Notify { kind, path } => (11, b(path), vec![], kind, 0),
        Event::Rescan {
            reason,
            path,
            count,
        } => (12, b(path), vec![], reason, count),
        Event::Cloned { src, dst } => (13, b(src), b(dst), "", 0),
        Event::HardLinked { path, target } => (14, b(path), b(target), "", 0),
        Event::Conflict {
            path,
            copy,
            message,
        } => (15, b(path), copy.map(b).unwrap_or_default(), message, 0),
    };
    WireEvent {
        kind,
        a,
        b: bb,
        text: text.as_bytes().to_vec(),
        count,
    }
}

/// Calls `f` with the event `w` describes, its paths passed through `map`
/// (the client shows the server's paths as `host:path`); `None` for an
/// unknown kind.
pub fn with_event(
    w: &WireEvent,
    map: impl Fn(&[u8]) -> Vec<u8>,
    f: impl FnOnce(&Event<'_>),
) -> Option<()> {
    let (a, bb) = (map(&w.a), map(&w.b));
    let (a, bb) = (
        Path::new(OsStr::from_bytes(&a)),
        Path::new(OsStr::from_bytes(&bb)),
    );
    let text = String::from_utf8_lossy(&w.text);
    let t = text.as_ref();
    let e = match w.kind {
        0 => Event::Copied { src: a, dst: bb },
        1 => Event::CreatedDir { path: a },
        2 => Event::Linked {
            path: a,
            target: &w.b,
        },
        3 => Event::Deleted { path: a },
        4 => Event::Attrs { path: a },
        5 => Event::Renamed { from: a, to: bb },
        6 => Event::Special { path: a, kind: t },
        7 => Event::Skipped {
            path: a,
            message: t,
        },
        8 => Event::Warning {
            path: a,
            message: t,
        },
        9 => Event::Error {
            path: a,
            message: t,
        },
        10 => Event::Watching { dir: a },
        11 => Event::Notify { kind: t, path: a },
        12 => Event::Rescan {
            reason: t,
            path: a,
            count: w.count,
        },
        13 => Event::Cloned { src: a, dst: bb },
        14 => Event::HardLinked {
            path: a,
            target: bb,
        },
        15 => Event::Conflict {
            path: a,
            copy: (!w.b.is_empty()).then_some(bb),
            message: t,
        },
        _ => return None,
    };
    f(&e);
    Some(())
}

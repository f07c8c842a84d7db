//! Peers that push the engine's end of a link past its bounds: an
//! endless listing, counts of `u64::MAX` in notes, a note about a path
//! outside the tree. Each plays the agent of a push (DST here).

use std::ffi::CString;
use std::io;

use dirsync::remote::protocol::messages::{Answer, Entry, Msg, NoteOp};
use dirsync::stat::{Ids, Kind, Meta};

use crate::peer::{Peer, PLAIN};
use crate::Scenario;

/// This module's scenarios.
pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("endless-listing", endless_listing),
    ("huge-counts", huge_counts),
    ("note-absolute", |p| note_outside(p, b"/etc/passwd")),
    ("note-dotdot", |p| note_outside(p, b"a/../../etc")),
];

/// What the endless listing sends at most (the client is cut long
/// before; one without bounds keeps ten times this in memory).
const ENDLESS_LIMIT: usize = 64 << 20;

/// Setup, ready (DST exists), then the client's requests one by one to
/// `answer` (`false`: stop), until it closes.
fn agent(
    p: &mut Peer,
    mut answer: impl FnMut(&mut Peer, Msg) -> io::Result<bool>,
) -> io::Result<()> {
    p.serve(PLAIN)?;
    p.send(&Msg::Ready {
        created: false,
        exists: true,
    })?;
    p.flush()?;
    p.drain();
    while let Some(m) = p.recv()? {
        if matches!(m, Msg::Bye) || !answer(p, m)? {
            break;
        }
        p.flush()?;
    }
    Ok(())
}

fn unit(req: u32) -> Msg {
    Msg::Reply {
        req,
        result: Ok(Answer::Unit),
    }
}

/// The usual answers: an empty listing, a directory for every stat.
fn honest(p: &mut Peer, m: &Msg) -> io::Result<()> {
    match *m {
        Msg::List { req, .. } => p.send(&unit(req)),
        Msg::Stat { req, .. } => p.send(&Msg::Reply {
            req,
            result: Ok(Answer::Meta(Some(Meta {
                kind: Kind::Dir,
                perm: 0o755,
                size: 0,
                mtime: 0,
                mtime_nsec: 0,
                ino: 1,
                dev: (0, 0),
                ids: Ids::default(),
            }))),
        }),
        _ => Ok(()),
    }
}

/// The first listing asked for gets parts of 60,000 entries (about
/// 1 MiB each) again and again, never its end.
fn endless_listing(p: &mut Peer) -> io::Result<()> {
    agent(p, |p, m| {
        let Msg::List { req, .. } = m else {
            return Ok(true);
        };
        let entry = Entry {
            name: CString::new("a").expect("no NUL"),
            d_type: libc::DT_REG,
            meta: Ok(None),
            link: None,
            rdev: (0, 0),
            xattrs: false,
        };
        let part = Msg::Entries {
            req,
            entries: vec![entry; 60_000],
        };
        let size = part.encode().1.len();
        let mut sent = 0;
        while sent < ENDLESS_LIMIT {
            p.send(&part)?;
            p.flush()?;
            sent += size;
        }
        Ok(true)
    })
}

fn note(op: NoteOp, path: &[u8], errno: i32, count: u64) -> Msg {
    Msg::Note {
        op,
        path: path.to_vec(),
        errno,
        count,
        silent: false,
    }
}

/// Before answering the barrier: notes of `u64::MAX` removed entries
/// (twice), of a copy that removed as many, and of a failed copy of
/// `u64::MAX` bytes.
fn huge_counts(p: &mut Peer) -> io::Result<()> {
    agent(p, |p, m| {
        if let Msg::Barrier { req } = m {
            p.send(&note(NoteOp::Remove, b"x", 0, u64::MAX))?;
            p.send(&note(NoteOp::Remove, b"x", 0, u64::MAX))?;
            p.send(&note(NoteOp::Copy, b"y", 0, u64::MAX))?;
            p.send(&note(NoteOp::Copy, b"y", libc::EIO, u64::MAX))?;
            p.send(&unit(req))?;
        }
        honest(p, &m).map(|()| true)
    })
}

/// Before answering the barrier: a failure of setting attributes on
/// `path` (not a path under DST).
fn note_outside(p: &mut Peer, path: &'static [u8]) -> io::Result<()> {
    agent(p, |p, m| {
        if let Msg::Barrier { req } = m {
            p.send(&note(NoteOp::SetAttrs, path, libc::EIO, 0))?;
            p.send(&unit(req))?;
        }
        honest(p, &m).map(|()| true)
    })
}

//! Engines of a pull that abuse what `-a` lets through
//! (`protocol::fidelity`): an oversize extended attribute, an ACL with
//! too many entries, hard links out of the tree (by `..` and through a
//! symlink DST holds), an owner change or an attribute the receiving
//! user did not ask for. Each plays the server of a pull (the client is
//! the agent of DST) and ends with a summary, so that only the agent's
//! own rules can make the run fail.

use std::ffi::CString;
use std::io;

use dirsync::remote::protocol::fidelity::{MAX_ACL_ENTRIES, MAX_XATTR_VALUE};
use dirsync::remote::protocol::messages::Msg;

use crate::peer::{Peer, PLAIN};
use crate::Scenario;

/// This module's scenarios.
pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("fid-oversize-xattr", |p| engine(p, &oversize_xattr())),
    ("fid-acl-entries", |p| engine(p, &acl_entries())),
    ("fid-link-dotdot", |p| engine(p, &link_dotdot())),
    ("fid-link-symlink", |p| engine(p, &link_symlink())),
    ("fid-chown", |p| engine(p, &chown())),
    ("fid-xattr-not-asked", |p| engine(p, &xattr_not_asked())),
];

fn name(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// A POSIX ACL value with `n` entries (user::rw-).
fn acl(n: usize) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for _ in 0..n {
        v.extend_from_slice(&[0x01, 0, 6, 0, 0xff, 0xff, 0xff, 0xff]);
    }
    v
}

fn set_on_file(x: Vec<(CString, Vec<u8>)>) -> Vec<Msg> {
    vec![Msg::SetXattrs {
        id: 1,
        name: Some(name("file")),
        set: x,
        remove: Vec::new(),
    }]
}

fn oversize_xattr() -> Vec<Msg> {
    set_on_file(vec![(name("user.big"), vec![b'x'; MAX_XATTR_VALUE + 1])])
}

fn acl_entries() -> Vec<Msg> {
    set_on_file(vec![(
        name("system.posix_acl_access"),
        acl(MAX_ACL_ENTRIES + 1),
    )])
}

/// `outside/keep` next to DST, by `..`: refused by the decoder.
fn link_dotdot() -> Vec<Msg> {
    vec![Msg::HardLink {
        req: 7,
        target: vec![name(".."), name("outside"), name("keep")],
        at: vec![name("stolen")],
    }]
}

/// Through DST's symlink `out` (to `../outside`): the agent opens each
/// component without following symlinks, so nothing is linked.
fn link_symlink() -> Vec<Msg> {
    vec![
        Msg::HardLink {
            req: 7,
            target: vec![name("out"), name("keep")],
            at: vec![name("stolen")],
        },
        Msg::HardLink {
            req: 8,
            target: vec![name("file")],
            at: vec![name("out"), name("planted")],
        },
    ]
}

/// An owner change of DST's `file` (refused without `-o`).
fn chown() -> Vec<Msg> {
    vec![Msg::Chown {
        id: 1,
        name: Some(name("file")),
        uid: Some(4242),
        gid: None,
    }]
}

/// A `user.*` attribute (refused without `-X`).
fn xattr_not_asked() -> Vec<Msg> {
    set_on_file(vec![(name("user.planted"), b"1".to_vec())])
}

/// The server of a pull: ready, the root as handle 1, `msgs`, a summary;
/// then waits for the client to close.
fn engine(p: &mut Peer, msgs: &[Msg]) -> io::Result<()> {
    p.serve(PLAIN)?;
    p.send(&Msg::Ready {
        created: false,
        exists: true,
    })?;
    p.send(&Msg::Open {
        id: 1,
        parent: 0,
        name: None,
    })?;
    for m in msgs {
        p.send(m)?;
    }
    p.send(&Msg::Done {
        counters: Vec::new(),
        fatal: None,
    })?;
    p.flush()?;
    p.until_closed()
}

//! The agent's answer to a listing: the entries of a directory with
//! their metadata, in parts, partial files left out.

use std::ffi::CString;
use std::io;

use super::handles::{errno, Handle};
use super::policy::Policy;
use super::reply::send;
use super::stream;
use crate::remote::protocol::frame::FrameWriter;
use crate::remote::protocol::messages::{Answer, Entry, Msg};
use crate::stat::{Kind, Meta};
use crate::sync::ReplicaDir;

/// A listing is sent in parts of about this many bytes.
const PART_BYTES: usize = 256 << 10;

/// Sends a message; no partial file seen.
fn send_none(w: &mut FrameWriter, m: &Msg) -> io::Result<Vec<CString>> {
    send(w, m).map(|()| Vec::new())
}

/// Sends the listing of `h` in parts, then the reply; returns the
/// partial files it left out.
pub fn list(h: &Handle, p: &Policy, req: u32, w: &mut FrameWriter) -> io::Result<Vec<CString>> {
    let Some(d) = &h.dir else {
        return send_none(
            w,
            &Msg::Reply {
                req,
                result: Err(libc::ENOENT),
            },
        );
    };
    // The agent's own best backend lists and describes the directory in
    // one pass (dirsync_readdir when its kernel has it).
    let mut entries = match d.scan() {
        Ok(n) => n,
        Err(e) => {
            return send_none(
                w,
                &Msg::Reply {
                    req,
                    result: Err(errno(&e)),
                },
            )
        }
    };
    let hidden = stream::hide_partials(&mut entries);
    let mut part = Vec::new();
    let mut bytes = 0;
    for de in entries {
        let meta = de
            .meta
            .map_err(|e| errno(&e))
            .map(|m| m.map(|m| strip(p, m)));
        let kind = meta.as_ref().ok().and_then(|m| m.map(|m| m.kind));
        let link = match kind {
            Some(Kind::Symlink) => d.read_link(&de.name).ok(),
            _ => None,
        };
        let rdev = match kind {
            Some(Kind::Special(_)) => d.rdev(&de.name).unwrap_or((0, 0)),
            _ => (0, 0),
        };
        // `-X`/`-A`: whether it has attributes (one listxattr, as a
        // local run makes): a resync asks for values only then.
        let xattrs = p.sel.any()
            && kind.is_some_and(|k| !matches!(k, Kind::Special(_)))
            && d.xattr_names(Some(&de.name), p.sel)
                .is_ok_and(|n| !n.is_empty());
        bytes += de.name.as_bytes().len() + link.as_ref().map_or(0, Vec::len) + 80;
        part.push(Entry {
            name: de.name,
            d_type: de.d_type,
            meta,
            link,
            rdev,
            xattrs,
        });
        if bytes >= PART_BYTES {
            send(
                w,
                &Msg::Entries {
                    req,
                    entries: std::mem::take(&mut part),
                },
            )?;
            bytes = 0;
        }
    }
    if !part.is_empty() {
        send(w, &Msg::Entries { req, entries: part })?;
    }
    send(
        w,
        &Msg::Reply {
            req,
            result: Ok(Answer::Unit),
        },
    )
    .map(|()| hidden)
}

/// `m` as the peer gets it: owner, group and link count only when the
/// receiver's options use them (`-H -o -g`, with the fidelity feature).
pub fn strip(p: &Policy, mut m: Meta) -> Meta {
    if !p.ids() {
        m.ids = Default::default();
    }
    m.ids.blocks = 0;
    m
}

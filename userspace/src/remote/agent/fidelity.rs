//! The agent's side of `-H -A -X -o -g -S` (`protocol::fidelity`): owner
//! and group, extended attributes and ACLs, hard links, holes, and the
//! mapping of SRC's user and group names to this side's ids. Each is
//! carried out only when the receiving side's own options ask for it
//! ([`Policy`]); anything else is a violation (the agent stops).
//!
//! Failures for lack of privilege come back as notes of their kind
//! ([`NoteOp::Owner`], [`NoteOp::Xattrs`]): the engine's side warns once
//! per kind (exit 2) and everything else is synced.

use std::ffi::{CStr, CString};
use std::io;

use super::handles::{errno, shown};
use super::policy::{refused, Policy, Violation};
use super::reply::{cannot_send, note, send};
use super::stream::Stream;
use super::{Agent, Change};
use crate::remote::protocol::frame::{FrameWriter, MAX_FRAME};
use crate::remote::protocol::messages::{Answer, Msg, NoteOp, Xattrs};
use crate::sync::{Replica, ReplicaDir};

/// Refuses an option the receiving side did not ask for.
fn asked(on: bool, what: &str, path: &[u8]) -> Result<(), Violation> {
    match on {
        true => Ok(()),
        false => Err(refused(what, path)),
    }
}

/// The receiving side's id of SRC's `name` (`id` when it has none, or
/// with `--numeric-ids`).
fn map_id(p: &Policy, group: bool, id: u32, name: &[u8]) -> u32 {
    if p.numeric_ids {
        return id;
    }
    let Ok(n) = CString::new(name) else { return id };
    crate::attrs::owner::local_id(group, &n).unwrap_or(id)
}

/// The bytes `x` takes in a reply.
fn encoded_len(x: &Xattrs) -> usize {
    x.iter()
        .map(|(n, v)| n.as_bytes().len() + v.len() + 8)
        .sum()
}

impl Agent {
    /// Carries out one message of `protocol::fidelity`; `Ok(None)`: not
    /// one of them (given back).
    pub(super) fn fidelity(
        &mut self,
        m: Msg,
        w: &mut FrameWriter,
    ) -> Result<Option<Msg>, Violation> {
        let p = &self.policy;
        let (op, id, name, f): (NoteOp, u32, Option<CString>, Change) = match m {
            Msg::Chown { id, name, uid, gid } => {
                let h = self.handles.get(id)?;
                let at = h.shown(name.as_deref());
                p.change("changing an owner", &at)?;
                asked(
                    p.owner || uid.is_none(),
                    "changing an owner without -o",
                    &at,
                )?;
                asked(p.group || gid.is_none(), "changing a group without -g", &at)?;
                self.not_excluded(id, name.as_deref())?;
                let n = name.clone();
                let f: Change = Box::new(move |d| d.chown(n.as_deref(), uid, gid).map(|()| 0));
                (NoteOp::Owner, id, name, f)
            }
            Msg::SetXattrs {
                id,
                name,
                set,
                remove,
            } => {
                let h = self.handles.get(id)?;
                let at = h.shown(name.as_deref());
                p.change("setting extended attributes", &at)?;
                let names = set.iter().map(|(n, _)| n.as_c_str());
                p.xattr_names(names.chain(remove.iter().map(CString::as_c_str)), &at)?;
                self.not_excluded(id, name.as_deref())?;
                let n = name.clone();
                let f: Change =
                    Box::new(move |d| d.set_xattrs(n.as_deref(), &set, &remove).map(|()| 0));
                (NoteOp::Xattrs, id, name, f)
            }
            Msg::GetXattrs { req, id, name } => {
                let h = self.handles.get(id)?;
                let r = match &h.dir {
                    None => Err(libc::ENOENT),
                    Some(d) => match d.xattrs(name.as_deref(), p.sel) {
                        Ok(x) if encoded_len(&x) > MAX_FRAME as usize - 4096 => Err(libc::E2BIG),
                        Ok(x) => Ok(Answer::Xattrs(x)),
                        Err(e) => Err(errno(&e)),
                    },
                };
                send(w, &Msg::Reply { req, result: r }).map_err(cannot_send)?;
                return Ok(None);
            }
            Msg::HardLink { req, target, at } => {
                let shown_at = join(&at);
                p.change("a hard link", &shown_at)?;
                asked(p.hard_links, "a hard link without -H", &shown_at)?;
                for path in [&target, &at] {
                    let rel = join(path);
                    if !p.excludes.is_empty() && p.excluded(&rel, false) {
                        return Err(refused("a hard link to or at an excluded file", &rel));
                    }
                }
                // Components were checked one by one (no '..', no '/');
                // the replica opens each with O_NOFOLLOW below the root:
                // nothing outside the tree can be linked or replaced.
                let r = match self.root.hard_link(&target, &at) {
                    Ok(l) => Ok(Answer::Linked(l)),
                    Err(e) => Err(errno(&e)),
                };
                send(w, &Msg::Reply { req, result: r }).map_err(cannot_send)?;
                return Ok(None);
            }
            Msg::MapId {
                req,
                group,
                id,
                name,
            } => {
                let what = if group { p.group } else { p.owner };
                asked(what, "a user or group name not asked for", &name)?;
                let r = Ok(Answer::Id(map_id(p, group, id, &name)));
                send(w, &Msg::Reply { req, result: r }).map_err(cannot_send)?;
                return Ok(None);
            }
            m @ (Msg::FileOwner { .. } | Msg::FileXattrs { .. } | Msg::Hole { .. }) => {
                self.file_fidelity(m, w)?;
                return Ok(None);
            }
            m => return Ok(Some(m)),
        };
        self.carry_out(op, id, name, f, w)?;
        Ok(None)
    }

    /// Refuses a change of an excluded entry (or directory).
    fn not_excluded(&self, id: u32, name: Option<&CStr>) -> Result<(), Violation> {
        let h = self.handles.get(id)?;
        let excluded = match name {
            Some(n) => h.excluded(&self.policy, n, None),
            None => h.excluded,
        };
        match excluded {
            true => Err(refused("changing an excluded entry", &h.shown(name))),
            false => Ok(()),
        }
    }

    /// Owner, attributes and holes of a file being received.
    fn file_fidelity(&mut self, m: Msg, w: &mut FrameWriter) -> Result<(), Violation> {
        let p = &self.policy;
        let fid = match &m {
            Msg::FileOwner { fid, .. } | Msg::FileXattrs { fid, .. } | Msg::Hole { fid, .. } => {
                *fid
            }
            _ => unreachable!("only file messages come here"),
        };
        let s = self
            .files
            .stream(fid)
            .ok_or_else(|| Violation("an attribute of an unknown file".into()))?;
        if let Msg::Hole { len, .. } = m {
            // Counted in the declared size like data.
            s.take(len).map_err(Violation)?;
            match s {
                Stream::Write {
                    file,
                    err: err @ None,
                    ..
                } => {
                    if let Err(e) = file.hole(len) {
                        *err = Some(e);
                    }
                }
                Stream::Compare { .. } => return Err(Violation("a hole in a compare".into())),
                _ => {}
            }
            return Ok(());
        }
        let (file, at) = match s {
            Stream::Write {
                file,
                at,
                err: None,
                ..
            } => (file, at.clone()),
            // Nothing is written to it any more.
            Stream::Write { .. } | Stream::Failed { .. } => return Ok(()),
            Stream::Compare { .. } => return Err(Violation("an attribute of a compare".into())),
        };
        let path = shown(at.0.as_ref(), Some(&at.1));
        let (op, r) = match m {
            Msg::FileOwner { uid, gid, .. } => {
                asked(
                    p.owner || uid.is_none(),
                    "changing an owner without -o",
                    &path,
                )?;
                asked(
                    p.group || gid.is_none(),
                    "changing a group without -g",
                    &path,
                )?;
                (NoteOp::Owner, file.set_owner(uid, gid))
            }
            Msg::FileXattrs { want, .. } => {
                p.xattr_names(want.iter().map(|(n, _)| n.as_c_str()), &path)?;
                (NoteOp::Xattrs, file.set_xattrs(&want, p.sel))
            }
            _ => unreachable!("only file messages come here"),
        };
        if let Err(e) = r {
            let r: io::Result<u64> = Err(e);
            note(w, op, path, r, false).map_err(cannot_send)?;
        }
        Ok(())
    }
}

/// A path of components, for a message or an exclude check.
fn join(p: &[CString]) -> Vec<u8> {
    let parts: Vec<&[u8]> = p.iter().map(|c| c.as_bytes()).collect();
    parts.join(&b'/')
}

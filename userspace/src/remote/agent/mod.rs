//! The agent: carries out an engine's requests on a local DST
//! ([`LocalReplica`], the same dirfd-relative code as a local sync),
//! within the receiving side's own rules ([`Policy`]).
//!
//! Safety: every name in a message was checked to be one path component
//! by the decoder (`protocol::fields::check_name`); every operation is
//! relative to a handle opened from the root with `O_NOFOLLOW |
//! O_DIRECTORY`, one component at a time, so nothing outside the root can
//! be reached. What a peer can make the agent hold is bounded: handles
//! ([`handles::MAX_HANDLES`], each its name and its parent, not a path),
//! file streams ([`MAX_FILES`]; each file's bytes by its declared size),
//! delta appliers ([`MAX_PLANS`]), failed creations
//! ([`handles::MAX_FAILED_CREATES`]), held removals
//! ([`policy::MAX_PENDING`]), partial files seen ([`stream::Partials`]).
//! A peer that breaks the protocol or the policy (an unknown or reused
//! number, a message out of place, a change the receiver's options
//! refuse) gets a protocol error and the agent stops.

use std::ffi::CString;
use std::io;

use crate::remote::protocol::frame::FrameWriter;
use crate::remote::protocol::messages::{Answer, Msg, NoteOp};
mod fidelity;
mod files;
pub mod handles;
mod listing;
pub mod policy;
mod reply;
mod stream;

use crate::sync::local::{LocalDir, LocalReplica};
use crate::sync::{Replica, ReplicaDir};
pub use files::{MAX_FILES, MAX_PLANS};
pub use handles::MAX_HANDLES;
use handles::{errno, Handles};
pub use policy::{Policy, Violation};
pub use reply::send;
use reply::{cannot_send, note};

/// A change to carry out on a directory; returns entries removed.
type Change = Box<dyn FnOnce(&LocalDir) -> io::Result<u64>>;

/// The agent's state.
pub struct Agent {
    root: LocalReplica,
    policy: Policy,
    handles: Handles,
    /// File streams and partial files.
    files: files::Files,
    /// Removals held under `--no-delete` (see [`policy`]).
    pending: policy::Pending,
}

impl Agent {
    /// An agent for the tree of `root`, within the rules of `policy`. A
    /// dry run or `--no-delete` leaves stale partial files (module
    /// `stream`).
    pub fn new(root: LocalReplica, policy: Policy) -> Self {
        let files = files::Files::new(policy.dry_run || policy.no_delete);
        Agent {
            root,
            policy,
            handles: Handles::default(),
            files,
            pending: Default::default(),
        }
    }

    /// The engine is done (a pull's summary came): a removal still held
    /// was never the engine's to make.
    pub fn finish(&self) -> Result<(), Violation> {
        match self.pending.left(None) {
            Some(n) => Err(policy::refused("a removal under --no-delete", n.as_bytes())),
            None => Ok(()),
        }
    }

    /// Carries out one message; `Ok(false)` when the engine said goodbye.
    pub fn handle_msg(&mut self, m: Msg, w: &mut FrameWriter) -> Result<bool, Violation> {
        match m {
            Msg::Open { id, parent, name } => {
                self.handles
                    .open(&self.root, &self.policy, (id, parent, name))?
            }
            Msg::Close { id } => {
                if let Some(n) = self.pending.left(Some(id)) {
                    let h = self.handles.get(id)?;
                    let what = "a removal under --no-delete";
                    return Err(policy::refused(what, &h.shown(Some(n))));
                }
                let h = self.handles.close(id)?;
                self.files.partials.close(id, h.dir.as_deref());
            }
            Msg::List { req, id } => {
                let hidden = listing::list(self.handles.get(id)?, &self.policy, req, w)
                    .map_err(cannot_send)?;
                self.files.partials.seen(id, hidden);
            }
            Msg::Stat { req, id, name } => {
                let h = self.handles.get(id)?;
                let p = &self.policy;
                let r = match (&h.dir, name) {
                    (None, _) => Err(libc::ENOENT),
                    (Some(d), Some(n)) => d
                        .stat(&n)
                        .map(|m| Answer::Meta(m.map(|m| listing::strip(p, m))))
                        .map_err(|e| errno(&e)),
                    (Some(d), None) => d
                        .stat_self()
                        .map(|m| Answer::Meta(Some(listing::strip(p, m))))
                        .map_err(|e| errno(&e)),
                };
                send(w, &Msg::Reply { req, result: r }).map_err(cannot_send)?;
            }
            Msg::Rename { req, from, to } => {
                if self.policy.dry_run {
                    let shown: Vec<&[u8]> = from.iter().map(|c| c.as_bytes()).collect();
                    self.policy.change("a rename", &shown.join(&b'/'))?;
                }
                let r = self.root.rename(&from, &to).unwrap_or(false);
                let m = Msg::Reply {
                    req,
                    result: Ok(Answer::Bool(r)),
                };
                send(w, &m).map_err(cannot_send)?;
            }
            Msg::Barrier { req } => {
                self.finish()?;
                let m = Msg::Reply {
                    req,
                    result: Ok(Answer::Unit),
                };
                send(w, &m).map_err(cannot_send)?;
            }
            Msg::Bye => {
                self.finish()?;
                return Ok(false);
            }
            m => {
                if let Some(m) = self.fidelity(m, w)? {
                    self.change(m, w)?
                }
            }
        }
        Ok(true)
    }

    /// The asynchronous operations: a failure becomes a note.
    fn change(&mut self, m: Msg, w: &mut FrameWriter) -> Result<(), Violation> {
        let p = &self.policy;
        let (op, id, name, f): (NoteOp, u32, Option<CString>, Change) = match m {
            Msg::CreateDir { id, name } => {
                let h = self.handles.get(id)?;
                p.change("creating a directory", &h.shown(Some(&name)))?;
                if h.excluded(p, &name, Some(true)) {
                    return Err(policy::refused(
                        "creating an excluded directory",
                        &h.shown(Some(&name)),
                    ));
                }
                // A removal held for this directory (`--no-delete`:
                // the entry it replaces) is carried out first.
                if self.pending.take(id, &name) {
                    self.carry_out(NoteOp::Remove, id, Some(name.clone()), remove(&name), w)?;
                }
                let n = name.clone();
                (
                    NoteOp::CreateDir,
                    id,
                    Some(name),
                    Box::new(move |d| d.create_dir(&n).map(|()| 0)),
                )
            }
            Msg::Remove { id, name } => {
                let h = self.handles.get(id)?;
                let at = h.shown(Some(&name));
                p.change("a removal", &at)?;
                if h.excluded(p, &name, None) {
                    return Err(policy::refused("removing an excluded entry", &at));
                }
                if p.no_delete {
                    // Only to replace it with a directory (see `policy`).
                    return self.pending.hold(id, name, &at);
                }
                (NoteOp::Remove, id, Some(name.clone()), remove(&name))
            }
            Msg::SetAttrs { id, name, attrs } => {
                let h = self.handles.get(id)?;
                p.change("setting attributes", &h.shown(name.as_deref()))?;
                let mut attrs = attrs;
                if let Some(n) = &name {
                    // What it is decides the rules (a directory keeps its
                    // set-group-ID bit; an exclude may name directories).
                    let is_dir = h.dir.as_ref().and_then(|d| d.stat(n).ok().flatten());
                    let is_dir = is_dir.map(|m| m.kind == crate::stat::Kind::Dir);
                    if h.excluded(p, n, is_dir) {
                        let what = "setting attributes of an excluded entry";
                        return Err(policy::refused(what, &h.shown(Some(n))));
                    }
                    if is_dir != Some(true) {
                        attrs.perm = attrs.perm.map(|m| p.set_id(m));
                    }
                } else if h.excluded {
                    let what = "setting attributes of an excluded directory";
                    return Err(policy::refused(what, &h.shown(None)));
                }
                let n = name.clone();
                (
                    NoteOp::SetAttrs,
                    id,
                    name,
                    Box::new(move |d| d.set_attrs(n.as_deref(), &attrs).map(|()| 0)),
                )
            }
            Msg::Symlink {
                id,
                name,
                target,
                attrs,
                over,
            } => {
                let h = self.handles.get(id)?;
                p.change("a symlink", &h.shown(Some(&name)))?;
                if h.excluded(p, &name, Some(false)) {
                    return Err(policy::refused(
                        "an excluded symlink",
                        &h.shown(Some(&name)),
                    ));
                }
                let n = name.clone();
                (
                    NoteOp::Symlink,
                    id,
                    Some(name),
                    Box::new(move |d| d.install_symlink(&n, &target, &attrs, over)),
                )
            }
            Msg::Special {
                id,
                name,
                fmt,
                rdev,
                attrs,
                over,
            } => {
                let h = self.handles.get(id)?;
                let at = h.shown(Some(&name));
                p.change("a special file", &at)?;
                if !p.specials {
                    let kind = crate::stat::Kind::Special(fmt).describe();
                    return Err(policy::refused(
                        &format!("a {kind} without --specials"),
                        &at,
                    ));
                }
                if h.excluded(p, &name, Some(false)) {
                    return Err(policy::refused("an excluded special file", &at));
                }
                let mut attrs = attrs;
                attrs.perm = attrs.perm.map(policy::clear_set_id);
                let n = name.clone();
                (
                    NoteOp::Special,
                    id,
                    Some(name),
                    Box::new(move |d| d.install_special(&n, fmt, rdev, &attrs, over)),
                )
            }
            m => return self.files.on_message(&mut self.handles, p, m, w),
        };
        self.carry_out(op, id, name, f, w)
    }

    /// Carries out `f` on handle `id` and notes its outcome.
    fn carry_out(
        &mut self,
        op: NoteOp,
        id: u32,
        name: Option<CString>,
        f: Change,
        w: &mut FrameWriter,
    ) -> Result<(), Violation> {
        let h = self.handles.get_mut(id)?;
        let (r, silent) = match &h.dir {
            Some(d) => (f(d), false),
            None => (
                Err(io::Error::from_raw_os_error(libc::ENOENT)),
                std::mem::replace(&mut h.quiet, true),
            ),
        };
        if r.is_err() || op == NoteOp::Remove || r.as_ref().is_ok_and(|&n| n > 0) {
            let rel = h.shown(name.as_deref());
            if op == NoteOp::CreateDir && r.is_err() {
                if let Some(n) = name {
                    self.handles.create_failed(id, n);
                }
            }
            return note(w, op, rel, r, silent).map_err(cannot_send);
        }
        Ok(())
    }
}

/// The removal of `name`.
fn remove(name: &CString) -> Change {
    let n = name.clone();
    Box::new(move |d| d.remove(&n))
}

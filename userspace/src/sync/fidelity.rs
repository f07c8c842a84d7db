//! Owner, group, extended attributes and ACLs (`-o -g -X -A`) as the
//! engine applies them; the system calls are in [`crate::attrs`].
//!
//! * A copied file gets them on its temporary, before it has its name
//!   ([`prepare_incoming`]): owner first (a chown clears
//!   `security.capability` and set-id bits), then the attributes
//!   (`security.capability` last), then mode and mtime at the commit.
//! * An existing entry is compared ([`fix_owner`], [`fix_xattrs`]): the
//!   owner from the stat the walk made anyway (no system call), the
//!   attributes with one `listxattr` per side; values are read only when
//!   a side has names (see [`crate::attrs::xattr`]).
//! * What cannot be applied for lack of privilege (another user's owner
//!   as non-root, `security.*` without `CAP_SYS_ADMIN`/`CAP_SETFCAP`) gives
//!   ONE warning per kind and counts one error (exit 2); the rest is
//!   synced.

use std::ffi::{CStr, CString};
use std::io;
use std::path::{Path, PathBuf};

use super::node::{DirNode, Run};
use super::options::Options;
use super::replica::{IncomingFile, ReplicaDir};
use crate::attrs::xattr::{self, Selection, Target};
use crate::report::{inc, Event};
use crate::stat::{Kind, Meta};

/// The attribute names `opts` syncs.
pub fn selection(opts: &Options) -> Selection {
    Selection {
        xattrs: opts.xattrs,
        acls: opts.acls,
    }
}

/// The DST owner and group SRC's `s` asks for (`None`: not synced).
fn wanted_ids(op: &Run, s: &Meta) -> (Option<u32>, Option<u32>) {
    let (o, ids) = (&op.sh.opts, &op.sh.fid.ids);
    (
        o.owner.then(|| ids.map_uid(s.ids.uid)),
        o.group.then(|| ids.map_gid(s.ids.gid)),
    )
}

/// Whether `e` means "not allowed" (rather than a broken entry).
fn is_privilege(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::EOPNOTSUPP)
    )
}

/// An attribute asked for could not be applied: a privilege problem is
/// warned about once per `what` (and counted once: exit 2), anything
/// else is an error of the entry.
fn not_applied(op: &Run, what: &'static str, path: PathBuf, e: io::Error) {
    if !is_privilege(&e) {
        op.fail(what, path, e);
        return;
    }
    let mut w = op.sh.fid.warned.lock().unwrap_or_else(|p| p.into_inner());
    if w.contains(&what) {
        return;
    }
    w.push(what);
    drop(w);
    inc(&op.counters.errors, 1);
    let msg = format!("{what}: {e} (not applied here and to later entries; the rest is synced)");
    op.event(Event::Warning {
        path: &path,
        message: &msg,
    });
}

/// Owner, group and attributes of SRC's open file `src` (metadata `s`)
/// onto the file being received, before it gets its name. Returns
/// whether owner and group are as `-o`/`-g` ask (set, or none asked).
pub fn prepare_incoming(
    op: &Run,
    rel: &Path,
    src: std::os::fd::BorrowedFd<'_>,
    s: &Meta,
    incoming: &mut dyn IncomingFile,
) -> bool {
    let (uid, gid) = wanted_ids(op, s);
    let mut owned = true;
    if uid.is_some() || gid.is_some() {
        if let Err(e) = incoming.set_owner(uid, gid) {
            owned = false;
            not_applied(op, "cannot set owner or group", op.dst_path(rel), e);
        }
    }
    let sel = selection(&op.sh.opts);
    if !sel.any() {
        return owned;
    }
    match xattr::read_all(Target::Fd(src), sel) {
        Ok(want) => {
            if let Err(e) = incoming.set_xattrs(&want, sel) {
                not_applied(op, "cannot set extended attributes", op.dst_path(rel), e);
            }
        }
        Err(e) => op.fail("cannot read extended attributes", op.src_path(rel), e),
    }
    owned
}

/// One entry the set-id rule ([`dst_perm`]) looks at: SRC's (where it
/// is, to ask its owner when the backend did not give it) and DST's.
pub struct SetIdEntry<'a> {
    /// SRC's entry.
    pub src: Target<'a>,
    /// DST's directory.
    pub dst: &'a dyn ReplicaDir,
    /// The entry's name in it.
    pub name: &'a CStr,
    /// DST's entry before (`None`: a new one, made by `dst`, see
    /// [`ReplicaDir::new_owner`]).
    pub d: Option<&'a Meta>,
    /// Owner and group were made what `-o`/`-g` ask.
    pub chowned: bool,
}

/// Whether `s` is a non-directory with set-user-ID or set-group-ID.
fn has_set_id(s: &Meta) -> bool {
    s.kind != Kind::Dir && s.perm & (libc::S_ISUID | libc::S_ISGID) != 0
}

/// (uid, gid) of `m` when its backend gave them (a link count).
fn ids_of(m: &Meta) -> Option<(u32, u32)> {
    (m.ids.nlink > 0).then_some((m.ids.uid, m.ids.gid))
}

/// THE set-id rule: the permission bits DST's entry `e` gets for SRC's
/// `s`. Set-user-ID (set-group-ID) of a non-directory is kept only when
/// DST's owner (group), once the engine is done with it, is known to be
/// SRC's, or what `-o` (`-g`) asks for it; otherwise it is cleared, as a
/// `chown` would: root copying another user's set-user-ID program
/// without `-o` must not make a set-user-ID-root one. Ids the backend
/// did not give are asked of `statx` (only for such an entry); a DST
/// whose owners this side cannot know (a remote agent) clears them.
pub fn dst_perm(op: &Run, s: &Meta, e: SetIdEntry<'_>) -> u32 {
    use crate::stat::{StatBackend, Statx};
    if !has_set_id(s) {
        return s.perm;
    }
    let src = ids_of(s).or_else(|| {
        let m = match e.src {
            Target::Fd(fd) => Statx.stat_fd(fd).ok(),
            Target::At(dir, name) => Statx.stat_at(dir, name).ok().flatten(),
        };
        m.and_then(|m| ids_of(&m))
    });
    let before = match e.d {
        Some(d) => ids_of(d).or_else(|| e.dst.owner_of(e.name)),
        None => e.dst.new_owner(),
    };
    let (wu, wg) = wanted_ids(op, s);
    let (cu, cg) = match e.chowned {
        true => (wu, wg),
        false => (None, None),
    };
    let now = (cu.or(before.map(|b| b.0)), cg.or(before.map(|b| b.1)));
    let same = |now: Option<u32>, wanted: Option<u32>, src: Option<u32>| {
        now.is_some_and(|n| wanted == Some(n) || src == Some(n))
    };
    let mut perm = s.perm;
    if !same(now.0, wu, src.map(|s| s.0)) {
        perm &= !libc::S_ISUID;
    }
    if !same(now.1, wg, src.map(|s| s.1)) {
        perm &= !libc::S_ISGID;
    }
    perm
}

/// Sets owner/group of DST's `name` (or of the directory `dst`, `None`)
/// where they differ from SRC's `s` (`d`: DST's metadata, `None` when
/// new). Returns whether something was (or, dry, would be) changed.
pub fn fix_owner(
    op: &Run,
    dst: &dyn ReplicaDir,
    name: Option<&CStr>,
    rel: &Path,
    s: &Meta,
    d: Option<&Meta>,
) -> bool {
    let (uid, gid) = wanted_ids(op, s);
    let uid = uid.filter(|u| d.map_or(true, |d| d.ids.uid != *u));
    let gid = gid.filter(|g| d.map_or(true, |d| d.ids.gid != *g));
    if uid.is_none() && gid.is_none() {
        return false;
    }
    if op.sh.opts.dry_run {
        return true;
    }
    match dst.chown(name, uid, gid) {
        Ok(()) => true,
        Err(e) => {
            not_applied(op, "cannot set owner or group", op.dst_path(rel), e);
            false
        }
    }
}

/// Makes the attributes of DST's `name` (or the directory, `None`) equal
/// to SRC's (`src`). Returns whether something was (or would be) changed.
pub fn fix_xattrs(
    op: &Run,
    dst: &dyn ReplicaDir,
    name: Option<&CStr>,
    src: Target<'_>,
    rel: &Path,
) -> bool {
    let sel = selection(&op.sh.opts);
    if !sel.any() {
        return false;
    }
    let read = || -> Result<_, (bool, io::Error)> {
        let sn = xattr::names(src, sel).map_err(|e| (true, e))?;
        let dn: Vec<CString> = dst.xattr_names(name, sel).map_err(|e| (false, e))?;
        if sn.is_empty() && dn.is_empty() {
            return Ok(None);
        }
        let want = xattr::read_all(src, sel).map_err(|e| (true, e))?;
        let have = dst.xattrs(name, sel).map_err(|e| (false, e))?;
        Ok(Some(xattr::diff(&want, &have)))
    };
    let (set, remove) = match read() {
        Ok(Some(d)) if !d.0.is_empty() || !d.1.is_empty() => d,
        Ok(_) => return false,
        Err((true, e)) => {
            op.fail("cannot read extended attributes", op.src_path(rel), e);
            return false;
        }
        Err((false, e)) => {
            not_applied(op, "cannot read extended attributes", op.dst_path(rel), e);
            return false;
        }
    };
    if op.sh.opts.dry_run {
        return true;
    }
    if let Err(e) = dst.set_xattrs(name, &set, &remove) {
        not_applied(op, "cannot set extended attributes", op.dst_path(rel), e);
    }
    true
}

/// Whether a chown of an entry of kind `k` with permission bits `perm`
/// needs the mode applied again (the kernel clears set-id bits of
/// non-directories on chown).
pub fn chown_clears_mode(k: Kind, perm: u32) -> bool {
    k != Kind::Dir && k != Kind::Symlink && perm & 0o6000 != 0
}

/// Owner, group and attributes of a directory (`-o -g -X -A`), before
/// its mode and mtime (the node's finishing hook, [`super::node::Shared`]);
/// whether something changed.
pub fn dir_attrs(node: &DirNode, dst: &dyn ReplicaDir) -> bool {
    use std::os::fd::AsFd;
    let (op, rel) = (&node.op, &node.rel);
    let src = Target::Fd(node.src.as_fd());
    let owner = fix_owner(op, dst, None, rel, &node.src_meta, node.dst_meta.as_ref());
    let xattrs = fix_xattrs(op, dst, None, src, rel);
    owner || xattrs
}

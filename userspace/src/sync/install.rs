//! Carrying out a decision for one entry: remove, fix attributes, recreate
//! a symlink or special file, copy a regular file. SRC is read here; DST is
//! changed only through the [replica](super::replica) handle of the
//! directory.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::fidelity::{self, SetIdEntry};
use super::node::{DirNode, Run};
use super::replica::{Attrs, Committed, Over, ReplicaDir};
use crate::attrs::xattr::Target;
use crate::report::{inc, Event};
use crate::stat::{Kind, Meta};
use crate::sys;

/// Removes DST's entry (file, link or tree). Returns false on failure.
pub fn remove_entry(op: &Run, dir: &DirNode, name: &CStr, rel: &Path) -> bool {
    let p = op.dst_path(rel);
    if op.sh.opts.dry_run {
        inc(&op.counters.deleted, 1);
        op.event(Event::Deleted { path: &p });
        return true;
    }
    let Some(dst) = &dir.dst else { return false };
    dir.prepare_write();
    match dst.remove(name) {
        Ok(n) => {
            inc(&op.counters.deleted, n);
            op.event(Event::Deleted { path: &p });
            true
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
        Err(e) => {
            op.fail("cannot delete", p, e);
            false
        }
    }
}

/// Applies mode and mtime of a SRC entry (in `src_dir`) to DST's entry of
/// the same type, and with `-o -g -X -A` owner, group and attributes
/// (owner first: a chown clears set-id bits and capabilities).
pub fn fix_attrs(
    op: &Run,
    dst: Option<&dyn ReplicaDir>,
    src_dir: BorrowedFd<'_>,
    name: &CStr,
    rel: &Path,
    (s, d): (Meta, Meta),
) {
    let Some(dst) = dst else { return };
    let owner = fidelity::fix_owner(op, dst, Some(name), rel, &s, Some(&d));
    let e = SetIdEntry {
        src: Target::At(src_dir, name),
        dst,
        name,
        d: Some(&d),
        chowned: owner,
    };
    let s = Meta {
        perm: fidelity::dst_perm(op, &s, e),
        ..s
    };
    let mut attrs = Attrs::diff(&s, Some(&d));
    if owner && fidelity::chown_clears_mode(s.kind, s.perm) {
        attrs.perm = Some(s.perm);
    }
    let p = op.dst_path(rel);
    if !attrs.is_empty() && !op.sh.opts.dry_run {
        if let Err(e) = dst.set_attrs(Some(name), &attrs) {
            op.fail("cannot set attributes", p, e);
            return;
        }
    }
    let src = crate::attrs::xattr::Target::At(src_dir, name);
    let xattrs = fidelity::fix_xattrs(op, dst, Some(name), src, rel);
    if attrs.is_empty() && !owner && !xattrs {
        return;
    }
    inc(&op.counters.attrs, 1);
    op.event(Event::Attrs { path: &p });
}

/// Owner, group and attributes of a symlink or special file just made
/// (they have no open descriptor to set them on before the rename); a
/// chown clears set-id bits, so the mode follows it.
fn fidelity_of_new(
    op: &Run,
    dir: &DirNode,
    dst: &dyn ReplicaDir,
    name: &CStr,
    rel: &Path,
    s: &Meta,
) {
    if fidelity::fix_owner(op, dst, Some(name), rel, s, None)
        && fidelity::chown_clears_mode(s.kind, s.perm)
    {
        let e = SetIdEntry {
            src: Target::At(dir.src.as_fd(), name),
            dst,
            name,
            d: None,
            chowned: true,
        };
        let perm = Attrs {
            perm: Some(fidelity::dst_perm(op, s, e)),
            mtime: None,
        };
        if let Err(e) = dst.set_attrs(Some(name), &perm) {
            op.fail("cannot set attributes", op.dst_path(rel), e);
        }
    }
    let src = crate::attrs::xattr::Target::At(dir.src.as_fd(), name);
    fidelity::fix_xattrs(op, dst, Some(name), src, rel);
}

/// Makes DST's `name` a symlink with the target SRC's has.
pub fn sync_symlink(op: &Run, dir: &DirNode, name: &CStr, rel: &Path, s: Meta, d: Option<Meta>) {
    let target = match sys::readlink_at(dir.src.as_fd(), name) {
        Ok(t) => t,
        Err(e) => {
            op.fail("cannot read link", op.src_path(rel), e);
            return;
        }
    };
    if let (Some(dm), Some(dst)) = (d, &dir.dst) {
        if dm.kind == Kind::Symlink && dst.read_link(name).is_ok_and(|t| t == target) {
            fix_attrs(op, Some(dst.as_ref()), dir.src.as_fd(), name, rel, (s, dm));
            return;
        }
    }
    let p = op.dst_path(rel);
    if !op.sh.opts.dry_run {
        let Some(dst) = &dir.dst else { return };
        dir.prepare_write();
        let attrs = Attrs::diff(&s, None);
        match dst.install_symlink(name, &target, &attrs, Over::of(d.as_ref())) {
            Ok(n) => inc(&op.counters.deleted, n),
            Err(e) => {
                op.fail("cannot create symlink", p, e);
                return;
            }
        }
        fidelity_of_new(op, dir, dst.as_ref(), name, rel, &s);
    }
    inc(&op.counters.links, 1);
    op.event(Event::Linked {
        path: &p,
        target: &target,
    });
}

/// `--specials`: recreates a FIFO, socket or device node (same type, mode,
/// device number and mtime) unless DST has the same.
pub fn sync_special(op: &Run, dir: &DirNode, name: &CStr, rel: &Path, s: Meta, d: Option<Meta>) {
    // The device number is not part of the compared record: ask statx.
    let want = match sys::rdev_at(dir.src.as_fd(), name) {
        Ok(r) => r,
        Err(e) => {
            op.fail("cannot stat", op.src_path(rel), e);
            return;
        }
    };
    let p = op.dst_path(rel);
    if let (Some(dm), Some(dst)) = (d, &dir.dst) {
        if dm.kind == s.kind && dst.rdev(name).is_ok_and(|r| r == want) {
            fix_attrs(op, Some(dst.as_ref()), dir.src.as_fd(), name, rel, (s, dm));
            return;
        }
    }
    if !op.sh.opts.dry_run {
        let Some(dst) = &dir.dst else { return };
        let Kind::Special(fmt) = s.kind else { return };
        dir.prepare_write();
        let mut attrs = Attrs::diff(&s, None);
        let e = SetIdEntry {
            src: Target::At(dir.src.as_fd(), name),
            dst: dst.as_ref(),
            name,
            d: None,
            chowned: false,
        };
        attrs.perm = Some(fidelity::dst_perm(op, &s, e));
        match dst.install_special(name, fmt, want, &attrs, Over::of(d.as_ref())) {
            Ok(n) => inc(&op.counters.deleted, n),
            Err(e) => {
                op.fail("cannot create", p, e);
                return;
            }
        }
        fidelity_of_new(op, dir, dst.as_ref(), name, rel, &s);
    }
    inc(&op.counters.specials, 1);
    op.event(Event::Special {
        path: &p,
        kind: s.kind.describe(),
    });
}

/// How many times a file that changes while being copied is retried.
const COPY_RETRIES: u32 = 3;

/// One regular file to copy (or first compare).
pub struct FileWork {
    pub name: std::ffi::CString,
    pub src_meta: Meta,
    pub dst_meta: Option<Meta>,
    pub compare_first: bool,
}

/// How one copy attempt ended.
enum Attempt {
    /// Copied (bytes; whether as a clone).
    Copied(u64, bool),
    /// SRC changed during the copy: another attempt.
    Again,
    /// The replica asks for the content again (not counted as an attempt).
    Resend,
    /// Reported (or vanished): stop.
    Stop,
}

/// Whether DST's file already has SRC's content (`--checksum`).
fn same_content(dir: &DirNode, name: &CStr, dst: &dyn ReplicaDir) -> bool {
    let Ok(src) = sys::open_file_at(dir.src.as_fd(), name) else {
        return false;
    };
    // An unreadable DST file is simply replaced; an unreadable SRC file
    // fails in the copy with a clear error.
    dst.same_content(name, src.as_fd()).unwrap_or(false)
}

/// Copies SRC's regular file `w.name` over DST's, retrying while SRC
/// changes during the copy.
pub fn sync_file(op: &Run, dir: &DirNode, w: &FileWork) {
    let (name, s, d) = (w.name.as_c_str(), w.src_meta, w.dst_meta);
    let rel = dir.child(name);
    if w.compare_first {
        if let (Some(dm), Some(dst)) = (d, &dir.dst) {
            if same_content(dir, name, dst.as_ref()) {
                fix_attrs(op, Some(dst.as_ref()), dir.src.as_fd(), name, &rel, (s, dm));
                return;
            }
        }
    }
    let (sp, dp) = (op.src_path(&rel), op.dst_path(&rel));
    if op.sh.opts.dry_run {
        inc(&op.counters.copied, 1);
        inc(&op.counters.bytes, s.size);
        op.event(Event::Copied { src: &sp, dst: &dp });
        return;
    }
    let Some(dst) = &dir.dst else { return };
    let mut attempt = 0;
    while attempt <= COPY_RETRIES {
        match copy_once(op, dir, dst.as_ref(), w, attempt) {
            Attempt::Copied(n, cloned) => {
                inc(&op.counters.copied, 1);
                inc(&op.counters.bytes, n);
                inc(&op.sh.progress.copied, 1);
                inc(&op.sh.progress.bytes, n);
                if cloned {
                    op.event(Event::Cloned { src: &sp, dst: &dp });
                } else {
                    op.event(Event::Copied { src: &sp, dst: &dp });
                }
                return;
            }
            Attempt::Again => attempt += 1,
            Attempt::Resend => {}
            Attempt::Stop => return,
        }
    }
    if op.sh.opts.defer_changing {
        let mut u = op.sh.unsettled.lock().unwrap_or_else(|p| p.into_inner());
        u.push(rel);
        return;
    }
    op.fail(
        "not copied",
        sp,
        io::Error::other(format!(
            "the file kept changing during the copy ({} attempts)",
            COPY_RETRIES + 1
        )),
    );
}

/// Opens SRC's file and the metadata it had when the copy starts: the
/// first attempt trusts the walk's stat (no second stat): had the name
/// been replaced or changed since, the check after the copy (inode, type,
/// size, mtime) sees it and the copy is retried.
fn open_source(op: &Run, dir: &DirNode, w: &FileWork, attempt: u32) -> Option<(OwnedFd, Meta)> {
    let sp = || op.src_path(&dir.child(&w.name));
    let src = match sys::open_listed_file_at(dir.src.as_fd(), &w.name) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return None, // vanished
        Err(e) => {
            op.fail("cannot open", sp(), e);
            return None;
        }
    };
    let before = if attempt == 0 {
        w.src_meta
    } else {
        match op.sh.backend.stat_fd(src.as_fd()) {
            Ok(m) => m,
            Err(e) => {
                op.fail("cannot stat", sp(), e);
                return None;
            }
        }
    };
    if before.kind != Kind::File {
        let e = io::Error::other("no longer a regular file");
        op.fail("changed type during the sync", sp(), e);
        return None;
    }
    Some((src, before))
}

/// Whether SRC's file changed between `before` and `after` (or the copy
/// got another size).
fn changed(before: &Meta, after: &Meta, copied: u64) -> bool {
    copied != before.size
        || after.kind != Kind::File
        || after.ino != before.ino
        || after.dev != before.dev
        || after.size != before.size
        || !after.same_mtime(before)
}

/// One attempt of [`sync_file`]: the content goes to the replica, which
/// keeps it unnamed until the commit; a SRC that changed meanwhile is
/// discarded (dropped) and copied again.
fn copy_once(op: &Run, dir: &DirNode, dst: &dyn ReplicaDir, w: &FileWork, attempt: u32) -> Attempt {
    let sp = || op.src_path(&dir.child(&w.name));
    let Some((src, before)) = open_source(op, dir, w, attempt) else {
        return Attempt::Stop;
    };
    dir.prepare_write();
    let mut incoming = match dst.receive_file(&w.name, w.dst_meta.is_none()) {
        Ok(f) => f,
        Err(e) => {
            let where_ = op.dst_path(&dir.rel);
            op.fail("cannot create a temporary file in", where_, e);
            return Attempt::Stop;
        }
    };
    let res = incoming
        .write_from(src.as_fd(), before.size)
        .and_then(|n| Ok((n, op.sh.backend.stat_fd(src.as_fd())?)));
    let (n, after) = match res {
        Ok(x) => x,
        Err(e) => {
            op.fail("cannot copy", sp(), e);
            return Attempt::Stop;
        }
    };
    if changed(&before, &after, n) {
        return Attempt::Again;
    }
    let owned = fidelity::prepare_incoming(
        op,
        &dir.child(&w.name),
        src.as_fd(),
        &after,
        incoming.as_mut(),
    );
    let cloned = incoming.cloned();
    let e = SetIdEntry {
        src: Target::Fd(src.as_fd()),
        dst,
        name: &w.name,
        d: None,
        chowned: owned,
    };
    let attrs = Attrs {
        perm: Some(fidelity::dst_perm(op, &after, e)),
        mtime: Some((before.mtime, before.mtime_nsec)),
    };
    match incoming.commit(&attrs, op.sh.opts.fsync, Over::of(w.dst_meta.as_ref())) {
        Ok(Committed::Done { deleted }) => {
            inc(&op.counters.deleted, deleted);
            Attempt::Copied(n, cloned)
        }
        Ok(Committed::Retry) => Attempt::Resend,
        Err(e) => {
            op.fail("cannot copy", sp(), e);
            Attempt::Stop
        }
    }
}

//! The local implementation of [the seam](super::replica): DST is a
//! directory of this machine, reached with dirfd-relative system calls.
//!
//! Installing: a new regular file is an unnamed `O_TMPFILE` linked into
//! place once complete; a replacement (and every symlink or special file)
//! is made under a temporary name and renamed over the old entry by
//! `LocalDir::install_over`, the one place that removes what is in the
//! way. Attributes are applied by `set_attrs`, the one place that does.

use std::ffi::{CStr, CString};
use std::io;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

pub use super::remove::remove_tree;
use super::replica::{Attrs, Committed, IncomingFile, Linked, Over, Replica, ReplicaDir};
use crate::attrs::content::{self, CopyMode, Made};
use crate::attrs::owner;
use crate::attrs::xattr::{self, Selection, Target, Xattrs};
use crate::copy;
use crate::error::is_out_of_space;
use crate::stat::{Entry, Meta, StatBackend};
use crate::sys::{self, DirEntry};

/// Whether new files can be written as `O_TMPFILE` and linked into place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Tmpfile {
    /// Not tried yet.
    Unknown = 0,
    /// Works here.
    Works = 1,
    /// Does not: named temporary + rename.
    Unusable = 2,
}

/// What every directory handle of one local replica shares.
struct Ctx {
    backend: Arc<dyn StatBackend>,
    is_root: bool,
    /// A [`Tmpfile`].
    tmpfile: AtomicU8,
    /// How file content is copied (`-S`, reflinks).
    mode: CopyMode,
    /// A clone (`FICLONE`) has not failed here yet.
    clone_ok: std::sync::atomic::AtomicBool,
}

impl Ctx {
    fn tmpfile(&self) -> Tmpfile {
        match self.tmpfile.load(Ordering::Relaxed) {
            1 => Tmpfile::Works,
            2 => Tmpfile::Unusable,
            _ => Tmpfile::Unknown,
        }
    }
    fn set_tmpfile(&self, t: Tmpfile) {
        self.tmpfile.store(t as u8, Ordering::Relaxed);
    }
}

/// A local destination directory.
pub struct LocalReplica {
    root: OwnedFd,
    ctx: Arc<Ctx>,
}

impl LocalReplica {
    /// The replica rooted at the open directory `root`.
    pub fn new(root: OwnedFd, backend: Arc<dyn StatBackend>, is_root: bool) -> Self {
        LocalReplica {
            root,
            ctx: Arc::new(Ctx {
                backend,
                is_root,
                tmpfile: AtomicU8::new(Tmpfile::Unknown as u8),
                mode: CopyMode::default(),
                clone_ok: std::sync::atomic::AtomicBool::new(true),
            }),
        }
    }

    /// The same replica copying content the way `mode` says (holes,
    /// clones); call before the first handle is made.
    pub fn with_copy_mode(mut self, mode: CopyMode) -> Self {
        if let Some(ctx) = Arc::get_mut(&mut self.ctx) {
            ctx.mode = mode;
        }
        self
    }

    /// A handle on the root directory (the remote agent's way in: it keeps
    /// handles in a table, see `remote::agent`).
    pub fn root_dir(&self) -> io::Result<LocalDir> {
        Ok(LocalDir {
            fd: sys::open_dir_at(self.root.as_fd(), c".")?,
            ctx: self.ctx.clone(),
        })
    }

    /// The parent directory of the path `comps`, opened from the root.
    fn open_parent(&self, comps: &[CString]) -> io::Result<OwnedFd> {
        let mut fd = self.root.try_clone()?;
        for name in &comps[..comps.len() - 1] {
            fd = sys::open_dir_at(fd.as_fd(), name)?;
        }
        Ok(fd)
    }
}

impl Replica for LocalReplica {
    fn root(&self) -> io::Result<Box<dyn ReplicaDir>> {
        // A new open of "." rather than a dup: a dup would share the read
        // offset, and a second listing would start at the end.
        Ok(Box::new(LocalDir {
            fd: sys::open_dir_at(self.root.as_fd(), c".")?,
            ctx: self.ctx.clone(),
        }))
    }

    fn rename(&self, from: &[CString], to: &[CString]) -> io::Result<bool> {
        if from.is_empty() || to.is_empty() {
            return Ok(false);
        }
        let (Ok(fp), Ok(tp)) = (self.open_parent(from), self.open_parent(to)) else {
            return Ok(false);
        };
        let (fname, tname) = (&from[from.len() - 1], &to[to.len() - 1]);
        let b = &self.ctx.backend;
        match b.stat_at(fp.as_fd(), fname) {
            Ok(Some(_)) => {}
            _ => return Ok(false),
        }
        // Whatever DST has at `to` is replaced by the renamed entry; a
        // non-empty directory there must go first.
        if let Ok(Some(m)) = b.stat_at(tp.as_fd(), tname) {
            if Over::of(Some(&m)) == Over::Tree {
                let _ = remove_tree(tp.as_fd(), tname, self.ctx.is_root);
            }
        }
        Ok(sys::rename_at(fp.as_fd(), fname, tp.as_fd(), tname).is_ok())
    }

    fn hard_link(&self, target: &[CString], at: &[CString]) -> io::Result<Linked> {
        let (Some(tname), Some(aname)) = (target.last(), at.last()) else {
            return Ok(Linked::NoTarget);
        };
        let (tp, ap) = match (self.open_parent(target), self.open_parent(at)) {
            (Ok(t), Ok(a)) => (t, a),
            (Err(e), _) | (_, Err(e)) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
            _ => return Ok(Linked::NoTarget),
        };
        let b = &self.ctx.backend;
        let t = match b.stat_at(tp.as_fd(), tname)? {
            Some(m) if m.kind == crate::stat::Kind::File => m,
            _ => return Ok(Linked::NoTarget),
        };
        let a = b.stat_at(ap.as_fd(), aname)?;
        if a.is_some_and(|a| a.ino == t.ino && a.dev == t.dev) {
            return Ok(Linked::Already);
        }
        let dir = LocalDir {
            fd: ap,
            ctx: self.ctx.clone(),
        };
        if a.is_none() {
            match sys::link_at(tp.as_fd(), tname, dir.fd(), aname) {
                Ok(()) => return Ok(Linked::Made { deleted: 0 }),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        let tmp = copy::temp_name();
        sys::link_at(tp.as_fd(), tname, dir.fd(), &tmp)?;
        let deleted = dir.install_over(&tmp, aname, Over::of(a.as_ref()))?;
        Ok(Linked::Made { deleted })
    }
}

/// One open directory of a [`LocalReplica`].
pub struct LocalDir {
    fd: OwnedFd,
    ctx: Arc<Ctx>,
}

/// Applies `attrs` to `name` in `dir` (never following a symlink), or to
/// `dir` itself when `name` is `None`: the one way attributes are set.
fn set_attrs(dir: BorrowedFd<'_>, name: Option<&CStr>, attrs: &Attrs) -> io::Result<()> {
    let fd = dir;
    if let Some(perm) = attrs.perm {
        match name {
            Some(n) => sys::chmod_at_nofollow(fd, n, perm)?,
            None => sys::chmod_fd(fd, perm)?,
        }
    }
    if let Some((sec, nsec)) = attrs.mtime {
        match name {
            Some(n) => sys::set_mtime_at(fd, n, sec, nsec)?,
            None => sys::set_mtime_fd(fd, sec, nsec)?,
        }
    }
    Ok(())
}

impl LocalDir {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `name` in this directory, or the directory itself.
    fn target<'a>(&'a self, name: Option<&'a CStr>) -> Target<'a> {
        match name {
            Some(n) => Target::At(self.fd(), n),
            None => Target::Fd(self.fd()),
        }
    }

    /// Opens the regular file `name` for reading (never through a
    /// symlink).
    pub fn open_file(&self, name: &CStr) -> io::Result<OwnedFd> {
        sys::open_file_at(self.fd(), name)
    }

    /// Opens the subdirectory `name` (never through a symlink).
    pub fn open_local(&self, name: &CStr) -> io::Result<LocalDir> {
        Ok(LocalDir {
            fd: sys::open_dir_at(self.fd(), name)?,
            ctx: self.ctx.clone(),
        })
    }

    /// [`ReplicaDir::receive_file`] for a shared handle: the file keeps
    /// its directory alive (the remote agent holds several at once).
    pub fn receive_shared(
        self: &Arc<Self>,
        name: &CStr,
        fresh: bool,
    ) -> io::Result<Box<dyn IncomingFile + Send>> {
        Ok(Box::new(receive(self.clone(), name, fresh)?))
    }

    /// Receives `name` under the name `partial` (a new file; a regular
    /// file by that name is replaced) which stays when the file is not
    /// committed: what arrived is there for a later resume. Committed
    /// like any temporary (renamed over `name`).
    pub fn receive_partial(
        self: &Arc<Self>,
        name: &CStr,
        partial: &CStr,
    ) -> io::Result<Box<dyn IncomingFile + Send>> {
        match sys::unlink_at(self.fd(), partial) {
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
            _ => {}
        }
        let out = sys::create_excl_at(self.fd(), partial, 0o600)?;
        Ok(Box::new(LocalIncoming {
            dir: self.clone(),
            name: name.to_owned(),
            tmp: Some(partial.to_owned()),
            out: Some(out),
            cloned: false,
            keep: true,
        }))
    }

    /// Whether new files can be written unnamed (`O_TMPFILE`) and linked
    /// here, tried once (a file linked under a temporary name, then
    /// removed) if no copy has told yet: for a receiver that cannot ask
    /// for a file again (the remote agent), as [`Committed::Retry`] would.
    pub fn unnamed_files_work(&self) -> bool {
        if self.ctx.tmpfile() == Tmpfile::Unknown {
            let t = copy::temp_name();
            match sys::open_tmpfile(self.fd())
                .and_then(|fd| sys::link_tmpfile(fd.as_fd(), self.fd(), &t))
            {
                Ok(()) => {
                    let _ = sys::unlink_at(self.fd(), &t);
                    self.ctx.set_tmpfile(Tmpfile::Works);
                }
                // Out of space says nothing about O_TMPFILE: not now.
                Err(e) if is_out_of_space(&e) => return false,
                Err(_) => self.ctx.set_tmpfile(Tmpfile::Unusable),
            }
        }
        self.ctx.tmpfile() == Tmpfile::Works
    }

    /// Gives the complete temporary entry `tmp` the name `name`, first
    /// removing a tree in the way: the one "install over" of the replica.
    /// On failure `tmp` is removed. Returns the entries removed.
    fn install_over(&self, tmp: &CStr, name: &CStr, over: Over) -> io::Result<u64> {
        let res = (|| {
            let removed = match over {
                Over::Tree => remove_tree(self.fd(), name, self.ctx.is_root)?,
                Over::Entry => 0,
            };
            sys::rename_at(self.fd(), tmp, self.fd(), name)?;
            Ok(removed)
        })();
        if res.is_err() {
            let _ = sys::unlink_at(self.fd(), tmp);
        }
        res
    }
}

impl ReplicaDir for LocalDir {
    fn list(&self) -> io::Result<Vec<DirEntry>> {
        sys::read_dir(self.fd())
    }
    fn scan(&self) -> io::Result<Vec<Entry>> {
        self.ctx.backend.list(self.fd())
    }
    fn stat(&self, name: &CStr) -> io::Result<Option<Meta>> {
        self.ctx.backend.stat_at(self.fd(), name)
    }
    fn stat_self(&self) -> io::Result<Meta> {
        self.ctx.backend.stat_fd(self.fd())
    }
    fn open_dir(&self, name: &CStr) -> io::Result<Box<dyn ReplicaDir>> {
        Ok(Box::new(LocalDir {
            fd: sys::open_dir_at(self.fd(), name)?,
            ctx: self.ctx.clone(),
        }))
    }
    fn create_dir(&self, name: &CStr) -> io::Result<()> {
        sys::mkdir_at(self.fd(), name, 0o700)
    }
    fn remove(&self, name: &CStr) -> io::Result<u64> {
        remove_tree(self.fd(), name, self.ctx.is_root)
    }
    fn read_link(&self, name: &CStr) -> io::Result<Vec<u8>> {
        sys::readlink_at(self.fd(), name)
    }
    fn rdev(&self, name: &CStr) -> io::Result<(u32, u32)> {
        sys::rdev_at(self.fd(), name)
    }
    fn set_attrs(&self, name: Option<&CStr>, attrs: &Attrs) -> io::Result<()> {
        set_attrs(self.fd(), name, attrs)
    }
    fn install_symlink(
        &self,
        name: &CStr,
        target: &[u8],
        attrs: &Attrs,
        over: Over,
    ) -> io::Result<u64> {
        let tmp = copy::temp_name();
        sys::symlink_at(target, self.fd(), &tmp)?;
        let mtime_only = Attrs {
            perm: None,
            ..*attrs
        };
        if let Err(e) = set_attrs(self.fd(), Some(&tmp), &mtime_only) {
            let _ = sys::unlink_at(self.fd(), &tmp);
            return Err(e);
        }
        self.install_over(&tmp, name, over)
    }
    fn install_special(
        &self,
        name: &CStr,
        fmt: u32,
        rdev: (u32, u32),
        attrs: &Attrs,
        over: Over,
    ) -> io::Result<u64> {
        let tmp = copy::temp_name();
        let perm = attrs.perm.unwrap_or(0o600);
        sys::mknod_at(self.fd(), &tmp, fmt | (perm & 0o777), rdev)?;
        if let Err(e) = set_attrs(self.fd(), Some(&tmp), attrs) {
            let _ = sys::unlink_at(self.fd(), &tmp);
            return Err(e);
        }
        self.install_over(&tmp, name, over)
    }
    fn new_owner(&self) -> Option<(u32, u32)> {
        // This process's user; its group, or the directory's when the
        // directory is set-group-ID (then new entries inherit it).
        let st = rustix::fs::fstat(self.fd()).ok()?;
        let gid = match st.st_mode & libc::S_ISGID != 0 {
            true => st.st_gid,
            false => sys::egid(),
        };
        Some((sys::euid(), gid))
    }
    fn owner_of(&self, name: &CStr) -> Option<(u32, u32)> {
        let m = crate::stat::StatBackend::stat_at(&crate::stat::Statx, self.fd(), name);
        m.ok().flatten().map(|m| (m.ids.uid, m.ids.gid))
    }
    fn chown(&self, name: Option<&CStr>, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        match name {
            Some(n) => owner::chown_at(self.fd(), n, uid, gid),
            None => owner::chown_fd(self.fd(), uid, gid),
        }
    }
    fn xattr_names(&self, name: Option<&CStr>, sel: Selection) -> io::Result<Vec<CString>> {
        xattr::names(self.target(name), sel)
    }
    fn xattrs(&self, name: Option<&CStr>, sel: Selection) -> io::Result<Xattrs> {
        xattr::read_all(self.target(name), sel)
    }
    fn set_xattrs(&self, name: Option<&CStr>, set: &Xattrs, remove: &[CString]) -> io::Result<()> {
        xattr::apply(self.target(name), set, remove)
    }
    fn same_content(&self, name: &CStr, src: BorrowedFd<'_>) -> io::Result<bool> {
        let mine = sys::open_file_at(self.fd(), name)?;
        copy::same_content(src, mine.as_fd())
    }
    fn receive_file<'a>(
        &'a self,
        name: &CStr,
        fresh: bool,
    ) -> io::Result<Box<dyn IncomingFile + 'a>> {
        Ok(Box::new(receive(self, name, fresh)?))
    }
}

/// Starts receiving `name` into `dir` (see [`ReplicaDir::receive_file`]).
fn receive<D: Deref<Target = LocalDir>>(
    dir: D,
    name: &CStr,
    fresh: bool,
) -> io::Result<LocalIncoming<D>> {
    let named = || copy::create_temp(dir.fd()).map(|(t, fd)| (Some(t), fd));
    let (tmp, out) = if fresh && dir.ctx.tmpfile() != Tmpfile::Unusable {
        match sys::open_tmpfile(dir.fd()) {
            Ok(fd) => (None, fd),
            Err(e) if is_out_of_space(&e) => return Err(e),
            Err(_) => {
                dir.ctx.set_tmpfile(Tmpfile::Unusable);
                named()?
            }
        }
    } else {
        named()?
    };
    Ok(LocalIncoming {
        dir,
        name: name.to_owned(),
        tmp,
        out: Some(out),
        cloned: false,
        keep: false,
    })
}

/// A file being written into a [`LocalDir`] (held as `D`: borrowed or
/// shared): unnamed (`tmp` is `None`) or under a temporary name.
struct LocalIncoming<D: Deref<Target = LocalDir>> {
    dir: D,
    name: CString,
    tmp: Option<CString>,
    /// `None` once committed or discarded.
    out: Option<OwnedFd>,
    /// The content is a clone of SRC's.
    cloned: bool,
    /// Not committed: leave `tmp` (a partial file, for a later resume).
    keep: bool,
}

impl<D: Deref<Target = LocalDir>> LocalIncoming<D> {
    /// Links the complete unnamed file into place.
    fn link_unnamed(&self, out: BorrowedFd<'_>) -> io::Result<Committed> {
        let (dir, ctx) = (self.dir.fd(), &self.dir.ctx);
        match sys::link_tmpfile(out, dir, &self.name) {
            Ok(()) => {
                ctx.set_tmpfile(Tmpfile::Works);
                Ok(Committed::Done { deleted: 0 })
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                // The name appeared meanwhile: replace it atomically.
                let t = copy::temp_name();
                sys::link_tmpfile(out, dir, &t)?;
                self.dir.install_over(&t, &self.name, Over::Entry)?;
                Ok(Committed::Done { deleted: 0 })
            }
            Err(e) if !is_out_of_space(&e) && ctx.tmpfile() == Tmpfile::Unknown => {
                // Unnamed files cannot be linked here (no /proc, no
                // capability): send it again for a named temporary.
                ctx.set_tmpfile(Tmpfile::Unusable);
                Ok(Committed::Retry)
            }
            Err(e) => Err(e),
        }
    }
}

impl<D: Deref<Target = LocalDir>> IncomingFile for LocalIncoming<D> {
    fn write_from(&mut self, src: BorrowedFd<'_>, len: u64) -> io::Result<u64> {
        let out = self.out.as_ref().expect("not committed yet");
        let ctx = &self.dir.ctx;
        let try_clone = ctx.clone_ok.load(Ordering::Relaxed);
        let (made, clone_works) =
            content::copy_content(src, out.as_fd(), len, ctx.mode, try_clone)?;
        if try_clone && !clone_works {
            ctx.clone_ok.store(false, Ordering::Relaxed);
        }
        match made {
            Made::Cloned(n) => {
                self.cloned = true;
                Ok(n)
            }
            Made::Copied(n) => Ok(n),
        }
    }

    fn hole(&mut self, len: u64) -> io::Result<()> {
        // Past the end, then the length there: a hole, wherever it is.
        let out = self.out.as_ref().expect("not committed yet");
        let at = rustix::fs::seek(out, rustix::fs::SeekFrom::Current(0))?;
        let end = at
            .checked_add(len)
            .filter(|&e| i64::try_from(e).is_ok())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EFBIG))?;
        rustix::fs::ftruncate(out, end)?;
        rustix::fs::seek(out, rustix::fs::SeekFrom::Start(end))?;
        Ok(())
    }

    fn set_owner(&mut self, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        let out = self.out.as_ref().expect("not committed yet");
        owner::chown_fd(out.as_fd(), uid, gid)
    }

    fn set_xattrs(&mut self, want: &Xattrs, sel: Selection) -> io::Result<()> {
        let out = self.out.as_ref().expect("not committed yet");
        let t = Target::Fd(out.as_fd());
        // A new file may have inherited a default ACL: read what it has.
        let have = xattr::read_all(t, sel)?;
        let (set, remove) = xattr::diff(want, &have);
        xattr::apply(t, &set, &remove)
    }

    fn cloned(&self) -> bool {
        self.cloned
    }

    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        let out = self.out.as_ref().expect("not committed yet");
        while !data.is_empty() {
            let n = sys::write(out.as_fd(), data)?;
            data = &data[n..];
        }
        Ok(())
    }

    fn commit(
        mut self: Box<Self>,
        attrs: &Attrs,
        fsync: bool,
        over: Over,
    ) -> io::Result<Committed> {
        let out = self.out.take().expect("committed once");
        set_attrs(out.as_fd(), None, attrs)?;
        if fsync {
            sys::fsync(out.as_fd())?;
        }
        match self.tmp.take() {
            Some(t) => {
                drop(out);
                let deleted = self.dir.install_over(&t, &self.name, over)?;
                Ok(Committed::Done { deleted })
            }
            None => self.link_unnamed(out.as_fd()),
        }
    }
}

impl<D: Deref<Target = LocalDir>> Drop for LocalIncoming<D> {
    fn drop(&mut self) {
        drop(self.out.take());
        if let Some(t) = self.tmp.take().filter(|_| !self.keep) {
            let _ = sys::unlink_at(self.dir.fd(), &t);
        }
    }
}

//! One side of a two-way run as the engine sees it ([`Replica`]): a local
//! tree ([`Side`], what `apply` does through directory descriptors) or a
//! tree on another machine reached through its agent
//! (`remote::twoway_side`). The engine and its archive stay on the
//! machine that runs `dirsync`; every change carries the state the engine
//! scanned, and the side re-checks it just before acting.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use super::apply::{self, CopyOpts, Installed, Side};
use super::attrs::{AttrSel, Attrs};
use super::reconcile::{State, Type};
use super::scan::{self, cname, split, state_of, Tree};
use crate::copy;
use crate::exclude::Excludes;
use crate::report::Reporter;
use crate::stat::{StatBackend, Statx};
use crate::sys;

/// The error a content stream ends with when its source changed while it
/// was read (the copy is dropped: the next run sees the change).
#[derive(Debug, thiserror::Error)]
#[error("the source changed while it was read")]
pub struct SourceChanged;

/// Whether `e` is [`SourceChanged`].
pub fn is_source_changed(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|x| x.is::<SourceChanged>())
}

/// One side of a two-way run.
pub trait Replica {
    /// The user-visible path of `rel`.
    fn shown(&self, rel: &[u8]) -> PathBuf;
    /// The side's name in conflict copies.
    fn label(&self) -> &str;
    /// The local side, for the direct (reflink) copy between two.
    fn local(&self) -> Option<&Side>;
    /// The root's device and inode.
    fn root_id(&self) -> io::Result<((u32, u32), u64)>;
    /// The root's canonical local path (`None`: not local).
    fn canonical(&self) -> Option<PathBuf>;
    /// Starts the scan now (a remote side scans while the engine scans
    /// the other).
    fn begin_scan(&self) -> io::Result<()> {
        Ok(())
    }
    /// One pass over the tree (after [`Replica::begin_scan`]).
    fn scan(
        &self,
        backend: &dyn StatBackend,
        ex: &Excludes,
        rep: &dyn Reporter,
    ) -> io::Result<Tree>;
    /// The state of `rel` now.
    fn stat(&self, rel: &[u8]) -> io::Result<Option<State>>;
    /// The content of the file `rel`, if it is still `seen`; the stream
    /// ends in [`SourceChanged`] if it changes while read.
    fn read<'s>(&'s self, rel: &[u8], seen: &State) -> io::Result<Box<dyn Read + 's>>;
    /// Installs `src` at `dst` (content from `data` for a file) if `dst`
    /// is still `expect`; else under a conflict name labelled `label`.
    fn install(
        &self,
        dst: &[u8],
        src: &State,
        data: Option<&mut dyn Read>,
        expect: Option<&State>,
        stamp: &str,
        label: &str,
    ) -> io::Result<Installed>;
    /// Removes `path` if still `seen` (`Ok(false)`: left alone).
    fn remove(&self, path: &[u8], seen: &State) -> io::Result<bool>;
    /// Gives `path` the mode (and mtime) of `to` if still `seen`.
    fn set_attrs(&self, path: &[u8], seen: &State, to: &State, mtime: bool) -> io::Result<bool>;
    /// Renames `from` (still `seen`) to `to`, replacing nothing.
    fn rename(&self, from: &[u8], to: &[u8], seen: &State) -> io::Result<bool>;
    /// Removes a temporary left by an interrupted run.
    fn remove_leftover(&self, path: &[u8]) -> io::Result<()>;
    /// Adds to a scanned `tree` what `-o -g -X` compare (each entry's
    /// attribute digest and ctime; nothing when none is selected).
    fn add_attrs(&self, _tree: &mut Tree, _rep: &dyn Reporter) {}
    /// The attributes of `-o -g -X` of `path` (`None`: none selected, or
    /// a side that does not carry them).
    fn read_attrs(&self, _path: &[u8]) -> io::Result<Option<Attrs>> {
        Ok(None)
    }
    /// Gives `path` the attributes `a` (read from the other side).
    fn write_attrs(&self, _path: &[u8], _a: &Attrs) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "owner, group and extended attributes are not carried to this side",
        ))
    }
}

/// Writes `data` (exactly `src.size` bytes) to a temporary in `dir` with
/// `src`'s mode and mtime; the temporary's name. A short or long stream
/// or a [`SourceChanged`] end removes it: `Ok(None)`.
fn write_temp(
    dir: BorrowedFd<'_>,
    src: &State,
    data: &mut dyn Read,
    o: CopyOpts,
) -> io::Result<Option<std::ffi::CString>> {
    let (tmp, tfd) = copy::create_temp(dir)?;
    let done = (|| -> io::Result<bool> {
        let mut f = std::fs::File::from(tfd.try_clone()?);
        // One byte more than announced tells a longer stream.
        let n = io::copy(&mut data.take(src.size.saturating_add(1)), &mut f)?;
        if n != src.size {
            return Ok(false);
        }
        apply::finish_temp(tfd.as_fd(), src, o)?;
        Ok(true)
    })();
    drop(tfd);
    match done {
        Ok(true) => Ok(Some(tmp)),
        Ok(false) => {
            let _ = sys::unlink_at(dir, &tmp);
            Ok(None)
        }
        Err(e) => {
            let _ = sys::unlink_at(dir, &tmp);
            if is_source_changed(&e) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// Installs `src` at `dst` on the local side `to` (see
/// [`Replica::install`]); the content of a file comes from `data`.
#[allow(clippy::too_many_arguments)]
pub fn install_local(
    to: &Side,
    dst: &[u8],
    src: &State,
    data: Option<&mut dyn Read>,
    expect: Option<&State>,
    stamp: &str,
    label: &str,
    o: CopyOpts,
) -> io::Result<Installed> {
    let (dparent, dname) = split(dst);
    let ddir = to.dir(dparent)?;
    let dc = cname(dname);
    match src.kind {
        Type::Dir => apply::make_dir(to, ddir.as_fd(), &dc, src, expect),
        Type::Symlink => {
            let tmp = copy::temp_name();
            sys::symlink_at(&src.target, ddir.as_fd(), &tmp)?;
            apply::install(to, ddir.as_fd(), &tmp, dname, expect, stamp, label)
        }
        Type::File => {
            let Some(data) = data else {
                return Err(io::Error::other("a file without content"));
            };
            match write_temp(ddir.as_fd(), src, data, o)? {
                Some(tmp) => apply::install(to, ddir.as_fd(), &tmp, dname, expect, stamp, label),
                None => Ok(Installed::SourceChanged),
            }
        }
    }
}

/// The content of a local file as scanned (`seen`), ending in
/// [`SourceChanged`] if it changed while read.
pub struct LocalRead {
    f: std::fs::File,
    seen: State,
    done: bool,
}

impl Read for LocalRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.f.read(buf)?;
        if n == 0 && !self.done {
            self.done = true;
            let m = Statx.stat_fd(self.f.as_fd())?;
            let now = state_of(&m, Vec::new());
            if !apply::unchanged(now.as_ref(), Some(&self.seen)) {
                return Err(io::Error::other(SourceChanged));
            }
        }
        Ok(n)
    }
}

/// Opens the local file `rel` of `side` if it is still `seen`.
pub fn open_local(side: &Side, rel: &[u8], seen: &State) -> io::Result<LocalRead> {
    let (parent, name) = split(rel);
    let d = side.dir(parent)?;
    let fd = sys::open_listed_file_at(d.as_fd(), &cname(name))?;
    let m = Statx.stat_fd(fd.as_fd())?;
    if !apply::unchanged(state_of(&m, Vec::new()).as_ref(), Some(seen)) {
        return Err(io::Error::other(SourceChanged));
    }
    Ok(LocalRead {
        f: std::fs::File::from(fd),
        seen: seen.clone(),
        done: false,
    })
}

/// Renames `from` (if still `seen`) to `to` on a local side, replacing
/// nothing (`Ok(false)`: changed, or `to` exists).
pub fn rename_local(r: &Side, from: &[u8], to: &[u8], seen: &State) -> io::Result<bool> {
    if !apply::unchanged(r.stat(from)?.as_ref(), Some(seen)) || r.stat(to)?.is_some() {
        return Ok(false);
    }
    let (fp, fname) = split(from);
    let (tp, tname) = split(to);
    let (fd, td) = (r.dir(fp)?, r.dir(tp)?);
    rustix::fs::renameat_with(
        &*fd,
        cname(fname).as_c_str(),
        &*td,
        cname(tname).as_c_str(),
        rustix::fs::RenameFlags::NOREPLACE,
    )?;
    r.forget_dirs();
    Ok(true)
}

/// A local side and how it copies.
pub struct Local {
    /// The side.
    pub side: Side,
    /// `--fsync`, `--no-reflink`.
    pub copy: CopyOpts,
    /// `-o -g -X`.
    pub sel: AttrSel,
}

impl Replica for Local {
    fn shown(&self, rel: &[u8]) -> PathBuf {
        self.side.shown(rel)
    }
    fn label(&self) -> &str {
        &self.side.label
    }
    fn local(&self) -> Option<&Side> {
        Some(&self.side)
    }
    fn root_id(&self) -> io::Result<((u32, u32), u64)> {
        let m = Statx.stat_fd(self.side.root.as_fd())?;
        Ok((m.dev, m.ino))
    }
    fn canonical(&self) -> Option<PathBuf> {
        std::fs::canonicalize(&self.side.shown).ok()
    }
    fn scan(
        &self,
        backend: &dyn StatBackend,
        ex: &Excludes,
        rep: &dyn Reporter,
    ) -> io::Result<Tree> {
        Ok(scan::scan(
            self.side.root.as_fd(),
            &self.side.shown,
            backend,
            ex,
            rep,
        ))
    }
    fn add_attrs(&self, tree: &mut Tree, rep: &dyn Reporter) {
        if self.sel.any() {
            self.digest_attrs(tree, rep);
        }
    }
    fn stat(&self, rel: &[u8]) -> io::Result<Option<State>> {
        self.side.stat(rel)
    }
    fn read<'s>(&'s self, rel: &[u8], seen: &State) -> io::Result<Box<dyn Read + 's>> {
        Ok(Box::new(open_local(&self.side, rel, seen)?))
    }
    fn install(
        &self,
        dst: &[u8],
        src: &State,
        data: Option<&mut dyn Read>,
        expect: Option<&State>,
        stamp: &str,
        label: &str,
    ) -> io::Result<Installed> {
        install_local(&self.side, dst, src, data, expect, stamp, label, self.copy)
    }
    fn remove(&self, path: &[u8], seen: &State) -> io::Result<bool> {
        apply::remove_entry(&self.side, path, seen)
    }
    fn set_attrs(&self, path: &[u8], seen: &State, to: &State, mtime: bool) -> io::Result<bool> {
        apply::set_attrs(&self.side, path, seen, to, mtime)
    }
    fn rename(&self, from: &[u8], to: &[u8], seen: &State) -> io::Result<bool> {
        rename_local(&self.side, from, to, seen)
    }
    fn remove_leftover(&self, path: &[u8]) -> io::Result<()> {
        apply::remove_leftover(&self.side, path)
    }
    fn read_attrs(&self, path: &[u8]) -> io::Result<Option<Attrs>> {
        if !self.sel.any() {
            return Ok(None);
        }
        let (parent, name) = split(path);
        let d = self.side.dir(parent)?;
        Ok(Some(
            super::attrs::read(d.as_fd(), &cname(name), self.sel)?.0,
        ))
    }
    fn write_attrs(&self, path: &[u8], a: &Attrs) -> io::Result<()> {
        let (parent, name) = split(path);
        let d = self.side.dir(parent)?;
        super::attrs::write(d.as_fd(), &cname(name), a)
    }
}

impl Local {
    /// Adds the attribute digest and ctime of every file and directory of
    /// `tree` (`-o -g -X`); an entry whose attributes cannot be read is
    /// left alone on both sides, as one that cannot be described.
    fn digest_attrs(&self, tree: &mut Tree, rep: &dyn Reporter) {
        let mut bad = Vec::new();
        for (path, st) in tree.entries.iter_mut() {
            if st.kind == Type::Symlink {
                continue;
            }
            let (parent, name) = split(path);
            let r = self
                .side
                .dir(parent)
                .and_then(|d| super::attrs::read(d.as_fd(), &cname(name), self.sel));
            match r {
                Ok((a, ctime)) => {
                    st.attrs = super::attrs::digest(&a);
                    st.ctime = ctime;
                }
                Err(e) => {
                    let msg = format!("cannot read attributes: {e}");
                    rep.event(&crate::report::Event::Error {
                        path: &self.side.shown(path),
                        message: &msg,
                    });
                    bad.push(path.clone());
                }
            }
        }
        for p in bad {
            tree.entries.remove(&p);
            tree.skipped.push(p);
        }
    }
}

/// Copies the entry `src_path` of `from` (as scanned: `src`) to
/// `dst_path` on `to`, where the scan saw `expect` (see
/// [`apply::copy_entry`], which two local sides use).
#[allow(clippy::too_many_arguments)]
pub fn copy_between(
    from: &dyn Replica,
    to: &dyn Replica,
    src_path: &[u8],
    src: &State,
    dst_path: &[u8],
    expect: Option<&State>,
    stamp: &str,
    o: CopyOpts,
) -> io::Result<Installed> {
    if let (Some(f), Some(t)) = (from.local(), to.local()) {
        return apply::copy_entry(f, t, src_path, src, dst_path, expect, stamp, o);
    }
    match src.kind {
        Type::File => {
            let mut data = match from.read(src_path, src) {
                Ok(d) => d,
                Err(e) if is_source_changed(&e) => return Ok(Installed::SourceChanged),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    return Ok(Installed::SourceChanged)
                }
                Err(e) => return Err(e),
            };
            to.install(dst_path, src, Some(&mut *data), expect, stamp, from.label())
        }
        Type::Symlink => {
            if !apply::unchanged(from.stat(src_path)?.as_ref(), Some(src)) {
                return Ok(Installed::SourceChanged);
            }
            to.install(dst_path, src, None, expect, stamp, from.label())
        }
        Type::Dir => to.install(dst_path, src, None, expect, stamp, from.label()),
    }
}

/// Whether the files `p` of both sides have the same bytes (false when
/// either cannot be read: a conflict keeps both, nothing is lost).
pub fn same_content(ra: &dyn Replica, rb: &dyn Replica, p: &[u8], sa: &State, sb: &State) -> bool {
    if sa.size != sb.size {
        return false;
    }
    if let (Some(a), Some(b)) = (ra.local(), rb.local()) {
        let (parent, name) = split(p);
        let open = |r: &Side| -> io::Result<std::os::fd::OwnedFd> {
            let d = r.dir(parent)?;
            sys::open_listed_file_at(d.as_fd(), &cname(name))
        };
        return match (open(a), open(b)) {
            (Ok(x), Ok(y)) => copy::same_content(x.as_fd(), y.as_fd()).unwrap_or(false),
            _ => false,
        };
    }
    let (Ok(mut x), Ok(mut y)) = (ra.read(p, sa), rb.read(p, sb)) else {
        return false;
    };
    let (mut bx, mut by) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = match read_full(&mut *x, &mut bx) {
            Ok(n) => n,
            Err(_) => return false,
        };
        let k = n.max(1).min(by.len());
        let m = match read_full(&mut *y, &mut by[..k]) {
            Ok(m) => m,
            Err(_) => return false,
        };
        if n != m || bx[..n] != by[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

/// Reads until `buf` is full or the stream ends.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

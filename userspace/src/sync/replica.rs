//! THE SEAM: everything the engine does to the destination tree.
//!
//! The planner (`walk`, [`super::decide`], `install`)
//! reads SRC itself (local descriptors) but reaches DST only through the
//! two traits of this module:
//!
//! * [`Replica`]: the destination as a whole: a handle on its root
//!   directory, and renames between two paths inside it;
//! * [`ReplicaDir`]: one open directory of the destination: list it (with
//!   every entry's metadata: [`ReplicaDir::scan`]), stat
//!   an entry or itself, open a subdirectory, create a directory, remove an
//!   entry (a whole tree), read a link target or a device number, set
//!   attributes, install a symlink or special file over an entry, compare
//!   a file's content with a SRC file, and receive a file's content
//!   ([`IncomingFile`]: written under a name nobody sees, then committed
//!   into place with its attributes, or dropped to discard it).
//!
//! Names are always ONE path component, relative to the directory handle.
//! Every method returns `io::Result`: an implementation maps its failures
//! to the errno a local file system would give (the engine tests for
//! `ENOENT`, `ENOSPC`, `EDQUOT`, `EACCES`).
//!
//! [`super::local::LocalReplica`] implements it with dirfd-relative system
//! calls. A replica on another machine (an agent reached over ssh) can
//! implement both traits by forwarding each call, without touching the
//! planner: the planner never sees a descriptor of DST.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::BorrowedFd;

use crate::attrs::xattr::{Selection, Xattrs};
use crate::stat::{Entry, Kind, Meta};
use crate::sys::DirEntry;

/// The error of a replica that does not carry an attribute (the default
/// of the fidelity methods: a remote replica does not carry them yet).
pub fn unsupported() -> io::Error {
    io::Error::from_raw_os_error(libc::EOPNOTSUPP)
}

/// How [`Replica::hard_link`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linked {
    /// Both names already were one file.
    Already,
    /// The name now is a link to the target; `deleted` entries were
    /// removed from its way.
    Made {
        /// Entries removed (a tree that was in the way).
        deleted: u64,
    },
    /// The target (or a parent) is missing.
    NoTarget,
}

/// Attributes to set; `None` leaves that attribute alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Permission bits (`0o7777`).
    pub perm: Option<u32>,
    /// mtime (seconds, nanoseconds).
    pub mtime: Option<(i64, u32)>,
}

impl Attrs {
    /// The attributes of `s` that differ from `d` (both when `d` is
    /// `None`); a symlink has no mode of its own.
    pub fn diff(s: &Meta, d: Option<&Meta>) -> Attrs {
        let perm_differs = s.kind != Kind::Symlink && d.map_or(true, |d| d.perm != s.perm);
        let mtime_differs = d.map_or(true, |d| !d.same_mtime(s));
        Attrs {
            perm: perm_differs.then_some(s.perm),
            mtime: mtime_differs.then_some((s.mtime, s.mtime_nsec)),
        }
    }

    /// Whether there is nothing to set.
    pub fn is_empty(&self) -> bool {
        self.perm.is_none() && self.mtime.is_none()
    }
}

/// What an install replaces: whether a directory tree is in the way (it
/// must be removed first; anything else is replaced by the rename).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Over {
    /// Nothing, or a non-directory (replaced atomically).
    Entry,
    /// A directory, removed with everything in it first.
    Tree,
}

impl Over {
    /// From the DST entry's metadata.
    pub fn of(d: Option<&Meta>) -> Over {
        match d {
            Some(m) if m.kind == Kind::Dir => Over::Tree,
            _ => Over::Entry,
        }
    }
}

/// How a commit of received content ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committed {
    /// In place; `deleted` entries were removed from its way.
    Done {
        /// Entries removed (a tree that was in the way).
        deleted: u64,
    },
    /// This way of writing is not possible here: send the content again
    /// (the replica falls back to another way).
    Retry,
}

/// The destination tree (see the module docs).
pub trait Replica: Send + Sync {
    /// A new handle on the root directory, with its own read offset.
    fn root(&self) -> io::Result<Box<dyn ReplicaDir>>;
    /// Renames the entry at the path `from` to the path `to` (components
    /// from the root), first removing a directory tree at `to`. `Ok(false)`
    /// when there is nothing at `from` or a parent is missing.
    fn rename(&self, from: &[CString], to: &[CString]) -> io::Result<bool>;
    /// `-H`: makes the path `at` a hard link to the regular file at the
    /// path `target` (components from the root), replacing what `at` is
    /// atomically, unless both already are one file.
    fn hard_link(&self, target: &[CString], at: &[CString]) -> io::Result<Linked> {
        let _ = (target, at);
        Err(unsupported())
    }
    /// `-o`/`-g` by name: how SRC's names become DST's ids when DST's
    /// user database is not this machine's (`None`: it is).
    fn id_resolver(&self) -> Option<std::sync::Arc<dyn crate::attrs::owner::Resolve>> {
        None
    }
}

/// One open directory of the destination (see the module docs).
pub trait ReplicaDir: Send + Sync {
    /// All entries (no `.`/`..`), in no particular order.
    fn list(&self) -> io::Result<Vec<DirEntry>>;
    /// All entries with their metadata (each as [`stat`](Self::stat) gives
    /// it: `Ok(None)` when it vanished after the listing), in no particular
    /// order: what the walk reads. This default lists, then stats each
    /// entry; an implementation with a cheaper way to get both (the local
    /// one with `dirsync_readdir`, a remote one in one round trip)
    /// overrides it.
    fn scan(&self) -> io::Result<Vec<Entry>> {
        Ok(self
            .list()?
            .into_iter()
            .map(|e| {
                let meta = self.stat(&e.name);
                Entry {
                    name: e.name,
                    d_type: e.d_type,
                    meta,
                }
            })
            .collect())
    }
    /// Metadata of `name`, not following a symlink; `None` if absent.
    fn stat(&self, name: &CStr) -> io::Result<Option<Meta>>;
    /// Metadata of this directory.
    fn stat_self(&self) -> io::Result<Meta>;
    /// A hint: the walk is going to open the subdirectory `name` (DST
    /// has it) and list it. A replica whose listings cost a round trip
    /// asks for that one now, so that several are on their way at once;
    /// the default does nothing.
    fn prefetch(&self, name: &CStr) {
        let _ = name;
    }
    /// Opens the subdirectory `name` (never through a symlink).
    fn open_dir(&self, name: &CStr) -> io::Result<Box<dyn ReplicaDir>>;
    /// Creates the directory `name`, mode 0700 (its mode comes later).
    fn create_dir(&self, name: &CStr) -> io::Result<()>;
    /// Removes `name` and, for a directory, everything below it. Returns
    /// how many entries were removed.
    fn remove(&self, name: &CStr) -> io::Result<u64>;
    /// The target of the symlink `name`.
    fn read_link(&self, name: &CStr) -> io::Result<Vec<u8>>;
    /// The device number (major, minor) of `name` ((0, 0) if not a device).
    fn rdev(&self, name: &CStr) -> io::Result<(u32, u32)>;
    /// Sets attributes of `name`, or of this directory itself (`None`),
    /// never following a symlink.
    fn set_attrs(&self, name: Option<&CStr>, attrs: &Attrs) -> io::Result<()>;
    /// Puts a symlink to `target` with mtime `attrs.mtime` at `name`,
    /// replacing what is there (see [`Over`]); returns entries removed.
    fn install_symlink(
        &self,
        name: &CStr,
        target: &[u8],
        attrs: &Attrs,
        over: Over,
    ) -> io::Result<u64>;
    /// Puts a FIFO, socket or device node (`S_IFMT` bits `fmt`, device
    /// `rdev`) with `attrs` at `name`, replacing what is there; returns
    /// entries removed.
    fn install_special(
        &self,
        name: &CStr,
        fmt: u32,
        rdev: (u32, u32),
        attrs: &Attrs,
        over: Over,
    ) -> io::Result<u64>;
    /// The owner and group an entry created here gets (before any
    /// `-o`/`-g`), when this side knows them (`None`: a remote agent,
    /// whose user is not known here): the set-id rule needs them
    /// (`fidelity::dst_perm`).
    fn new_owner(&self) -> Option<(u32, u32)> {
        None
    }
    /// Owner and group of `name`, when this side can know them (the
    /// set-id rule, for a backend whose listing has no ids).
    fn owner_of(&self, name: &CStr) -> Option<(u32, u32)> {
        let _ = name;
        None
    }
    /// `-o`/`-g`: sets owner and/or group of `name` (or of this directory,
    /// `None`), never following a symlink.
    fn chown(&self, name: Option<&CStr>, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        let _ = (name, uid, gid);
        Err(unsupported())
    }
    /// `-X`/`-A`: the names of the attributes of `name` (or this
    /// directory) that `sel` wants, sorted (one `listxattr` locally).
    fn xattr_names(&self, name: Option<&CStr>, sel: Selection) -> io::Result<Vec<CString>> {
        let _ = (name, sel);
        Err(unsupported())
    }
    /// Names and values of those attributes, sorted by name.
    fn xattrs(&self, name: Option<&CStr>, sel: Selection) -> io::Result<Xattrs> {
        let _ = (name, sel);
        Err(unsupported())
    }
    /// Sets `set` (in order) and removes `remove` on `name` (or this
    /// directory); tries all, returns the first failure.
    fn set_xattrs(&self, name: Option<&CStr>, set: &Xattrs, remove: &[CString]) -> io::Result<()> {
        let _ = (name, set, remove);
        Err(unsupported())
    }
    /// Whether the regular file `name` has the same content as `src`.
    fn same_content(&self, name: &CStr, src: BorrowedFd<'_>) -> io::Result<bool>;
    /// Starts receiving the content of the file `name`; `fresh` when DST
    /// has nothing at `name` (the replica may then write it unnamed).
    fn receive_file<'a>(
        &'a self,
        name: &CStr,
        fresh: bool,
    ) -> io::Result<Box<dyn IncomingFile + 'a>>;
}

/// A file being received (see [`ReplicaDir::receive_file`]); dropping it
/// without a commit discards it.
pub trait IncomingFile {
    /// Appends exactly `len` bytes (fewer if `src` ends first) read from
    /// `src` at its current offset; returns how many.
    fn write_from(&mut self, src: BorrowedFd<'_>, len: u64) -> io::Result<u64>;
    /// Appends `data` (content that arrived from elsewhere: the remote
    /// agent's way in).
    fn write(&mut self, data: &[u8]) -> io::Result<()>;
    /// `-S`: appends `len` bytes of hole (zeros that take no space where
    /// the file system can); this default writes zeros.
    fn hole(&mut self, len: u64) -> io::Result<()> {
        let zeros = vec![0u8; len.min(256 << 10) as usize];
        let mut left = len;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            self.write(&zeros[..n])?;
            left -= n as u64;
        }
        Ok(())
    }
    /// `-o`/`-g`: sets owner and/or group, after the content and before
    /// the extended attributes (a chown clears `security.capability`).
    fn set_owner(&mut self, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        let _ = (uid, gid);
        Err(unsupported())
    }
    /// `-X`/`-A`: makes the file's attributes (of those `sel` wants) equal
    /// to `want`, before its name exists (inherited default ACLs included).
    fn set_xattrs(&mut self, want: &Xattrs, sel: Selection) -> io::Result<()> {
        let _ = (want, sel);
        Err(unsupported())
    }
    /// Whether the content was cloned from SRC (shares its extents).
    fn cloned(&self) -> bool {
        false
    }
    /// Sets `attrs`, syncs to disk when `fsync`, and gives the file its
    /// name, replacing what is there (see [`Over`]).
    fn commit(self: Box<Self>, attrs: &Attrs, fsync: bool, over: Over) -> io::Result<Committed>;
}

//! The record both backends return ([`Meta`]), a listed entry with its
//! record ([`Entry`]) and their trait.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::BorrowedFd;

use crate::sys;

/// The type of a file system object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// FIFO, socket, character or block device (the `S_IFMT` bits).
    Special(u32),
}

impl Kind {
    /// From the `S_IFMT` bits of a mode.
    pub fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            other => Kind::Special(other),
        }
    }

    /// A word for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::Special(libc::S_IFIFO) => "fifo",
            Kind::Special(libc::S_IFSOCK) => "socket",
            Kind::Special(libc::S_IFCHR) => "character device",
            Kind::Special(libc::S_IFBLK) => "block device",
            Kind::Special(_) => "special file",
        }
    }
}

/// The metadata the engine compares: the same record from either backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Object type.
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub perm: u32,
    /// Size in bytes (symlink: target length).
    pub size: u64,
    /// mtime seconds.
    pub mtime: i64,
    /// mtime nanoseconds.
    pub mtime_nsec: u32,
    /// Inode number.
    pub ino: u64,
    /// Device (major, minor).
    pub dev: (u32, u32),
    /// Owner, group, link count and 512-byte blocks allocated. statx
    /// fills all four; the system calls fill owner, group and link count
    /// when the kernel gives them (`DIRSYNC_INFO_UID`, `_GID`, `_NLINK`;
    /// zero from a kernel of the first ABI) and never the blocks. An
    /// engine that needs them ([`crate::sync::Options::needs_ids`]) gets
    /// a backend that guarantees them ([`super::select_for`]).
    pub ids: Ids,
}

/// The fields of [`Meta`] not in `DIRSYNC_INFO_BASIC`: owner, group, link
/// count, allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Number of hard links.
    pub nlink: u32,
    /// 512-byte blocks allocated.
    pub blocks: u64,
}

impl Meta {
    /// Same mtime to the nanosecond.
    pub fn same_mtime(&self, other: &Meta) -> bool {
        self.mtime == other.mtime && self.mtime_nsec == other.mtime_nsec
    }
}

/// One entry of a directory listing ([`StatBackend::list`]) and its
/// metadata.
#[derive(Debug)]
pub struct Entry {
    /// The name (one component, never `.` or `..`).
    pub name: CString,
    /// `DT_*` from the directory (`DT_UNKNOWN` when the file system does
    /// not fill it).
    pub d_type: u8,
    /// What [`StatBackend::stat_at`] of the name gives: `Ok(None)` when the
    /// entry vanished between the listing and its stat, `Err` when it
    /// could not be described (the listing itself did not fail).
    pub meta: io::Result<Option<Meta>>,
}

/// A source of [`Meta`]: for a name relative to a directory descriptor,
/// for an open descriptor, and for every entry of an open directory.
pub trait StatBackend: Send + Sync {
    /// Metadata of `name` in `dir`, not following a final symlink;
    /// `Ok(None)` when there is no such entry.
    fn stat_at(&self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Meta>>;
    /// Metadata of an open descriptor.
    fn stat_fd(&self, fd: BorrowedFd<'_>) -> io::Result<Meta>;
    /// Every entry of the open directory `dir` (no `.`/`..`, in no
    /// particular order) with its metadata, reading from `dir`'s current
    /// position (pass a descriptor of its own). The portable way, this
    /// default: `getdents64`, then [`stat_at`](Self::stat_at) per entry.
    fn list(&self, dir: BorrowedFd<'_>) -> io::Result<Vec<Entry>> {
        let names = sys::read_dir(dir)?;
        Ok(names
            .into_iter()
            .map(|e| {
                let meta = self.stat_at(dir, &e.name);
                Entry {
                    name: e.name,
                    d_type: e.d_type,
                    meta,
                }
            })
            .collect())
    }
    /// One line for `-v`: which backend this is.
    fn describe(&self) -> String;
}

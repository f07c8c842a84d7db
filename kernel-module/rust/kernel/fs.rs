// SPDX-License-Identifier: GPL-2.0

//! File system: path names, path lookup and file attributes.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/namei.h`](srctree/include/linux/namei.h),
//! [`include/linux/stat.h`](srctree/include/linux/stat.h).
//!
//! The types here own what the C functions return ([`Filename`] a
//! `struct filename`, [`Path`] the references of a `struct path`,
//! [`RawFile`] a file reference) and release it on drop, so their users
//! need no `unsafe` code.
// dirsync-series: begin dir
//!
//! [`dir`] reads directories and looks up their entries.
// dirsync-series: end dir

use crate::{
    bindings,
    error::{
        code::{EBADF, ENOMEM},
        from_err_ptr, to_result, Result,
    },
    ffi::{c_char, c_int, c_uint},
    uaccess::UserPtr,
};
use core::{mem::MaybeUninit, ptr::NonNull};

// Declared in `fs/internal.h`, which only the VFS includes: these
// abstractions are part of it, bindgen does not see that header.  As in
// the bindings, `struct path` holds zero-sized lock class keys under
// lockdep, which the lint takes for not FFI-safe; the layouts are
// bindgen's.
#[allow(improper_ctypes)]
extern "C" {
    fn filename_lookup_missing(
        dfd: c_int,
        name: *mut bindings::filename,
        flags: c_uint,
        path: *mut bindings::path,
        last_missing: *mut bool,
    ) -> c_int;
}
// dirsync-series: begin dir

pub mod dir;
// dirsync-series: end dir

/// The file type bits of a mode (`S_IFMT`); the others are permissions.
pub const S_IFMT: u32 = bindings::S_IFMT;

/// `AT_*` flags of the `*at()` system calls.
pub mod at {
    use crate::bindings;

    /// Do not follow a final symlink.
    pub const SYMLINK_NOFOLLOW: u32 = bindings::AT_SYMLINK_NOFOLLOW;
    /// Do not trigger an automount at the final component.
    pub const NO_AUTOMOUNT: u32 = bindings::AT_NO_AUTOMOUNT;
    /// An empty path names the directory file descriptor itself.
    pub const EMPTY_PATH: u32 = bindings::AT_EMPTY_PATH;
    /// The statx() synchronisation type bits.
    pub const STATX_SYNC_TYPE: u32 = bindings::AT_STATX_SYNC_TYPE;
    /// Do what stat(2) does (the default).
    pub const STATX_SYNC_AS_STAT: u32 = bindings::AT_STATX_SYNC_AS_STAT;
    /// Force the attributes to be synchronised with the server.
    pub const STATX_FORCE_SYNC: u32 = bindings::AT_STATX_FORCE_SYNC;
    /// Do not synchronise the attributes with the server.
    pub const STATX_DONT_SYNC: u32 = bindings::AT_STATX_DONT_SYNC;
}

/// `LOOKUP_*` flags of path lookups.
pub mod lookup {
    use crate::bindings;

    /// Follow a final symlink.
    pub const FOLLOW: u32 = bindings::LOOKUP_FOLLOW;
    /// Accept an empty path (it names the starting directory).
    pub const EMPTY: u32 = bindings::LOOKUP_EMPTY;
    /// Trust no cached dentry (retry after -ESTALE).
    pub const REVAL: u32 = bindings::LOOKUP_REVAL;
}

/// `STATX_*` attribute mask bits, as in [`Kstat::result_mask`].
pub mod statx {
    use crate::bindings;

    /// The file type bits of the mode.
    pub const TYPE: u32 = bindings::STATX_TYPE;
    /// The permission bits of the mode.
    pub const MODE: u32 = bindings::STATX_MODE;
    /// The size.
    pub const SIZE: u32 = bindings::STATX_SIZE;
    /// The modification time.
    pub const MTIME: u32 = bindings::STATX_MTIME;
    /// The inode number.
    pub const INO: u32 = bindings::STATX_INO;
    /// The owner.
    pub const UID: u32 = bindings::STATX_UID;
    /// The group.
    pub const GID: u32 = bindings::STATX_GID;
    /// The number of hard links.
    pub const NLINK: u32 = bindings::STATX_NLINK;
    /// What stat(2) returns.
    pub const BASIC_STATS: u32 = bindings::STATX_BASIC_STATS;
}

/// The result of [`Filename::lookup`].
pub enum Lookup {
    /// The name resolves to this path.
    Found(Path),
    /// Every directory leading to the last component exists, and the last
    /// component does not (or, as a symlink followed, does not resolve).
    LastMissing,
}

/// A path name copied from userspace, as `getname_flags()` returns it.
///
/// # Invariants
///
/// `self.0` is a valid `struct filename` we own one reference to; it is
/// released exactly once, on drop.
pub struct Filename(NonNull<bindings::filename>);

impl Filename {
    /// Copies the NUL-terminated string at the userspace address `ptr`.
    ///
    /// `flags` may hold [`lookup::EMPTY`] to accept an empty string.
    /// Fails with -EFAULT for a bad address, -ENAMETOOLONG for a string of
    /// `PATH_MAX` bytes or more, -ENOENT for an empty string without
    /// [`lookup::EMPTY`], -ENOMEM.
    #[inline]
    pub fn from_user(ptr: UserPtr, flags: u32) -> Result<Self> {
        // CAST: the flags are small `LOOKUP_*` bits, they fit in a `c_int`.
        let flags = flags as c_int;
        // SAFETY: `getname_flags()` copies from the userspace address with
        // `strncpy_from_user()`, which accepts any address (a bad one is
        // -EFAULT), and returns a new `struct filename` or an error pointer.
        let name = from_err_ptr(unsafe { bindings::getname_flags(ptr as *const c_char, flags) })?;
        // INVARIANT: `getname_flags()` succeeded: `name` is a valid
        // `struct filename` whose reference we now own (it is never NULL).
        Ok(Self(NonNull::new(name).ok_or(ENOMEM)?))
    }

    /// Resolves the name relative to `dfd` (a directory file descriptor,
    /// or `AT_FDCWD`) with the caller's credentials and `LOOKUP_*` `flags`,
    /// in one path walk (`filename_lookup_missing()`).
    ///
    /// A missing last component is [`Lookup::LastMissing`]; every other
    /// failure, a missing directory of the prefix included, is an error.
    #[inline]
    pub fn lookup(&self, dfd: c_int, flags: u32) -> Result<Lookup> {
        let mut path = MaybeUninit::<bindings::path>::uninit();
        let mut last_missing = false;
        // CAST: `LOOKUP_*` bits are an `unsigned int` in C.
        let flags = flags as c_uint;
        // SAFETY: `self.0` is a valid `struct filename` (type invariant),
        // which the call does not consume; `path` and `last_missing` are
        // valid for writes; `path` is written only on success.
        let ret = unsafe {
            filename_lookup_missing(
                dfd,
                self.0.as_ptr(),
                flags,
                path.as_mut_ptr(),
                &mut last_missing,
            )
        };
        if ret == -(bindings::ENOENT as c_int) && last_missing {
            return Ok(Lookup::LastMissing);
        }
        to_result(ret)?;
        // INVARIANT: on success the call filled `path` and took a reference
        // on its mount and dentry, which we now own.
        // SAFETY: `path` was initialised by the successful call.
        Ok(Lookup::Found(Path(unsafe { path.assume_init() })))
    }
}

impl Drop for Filename {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own a reference to `self.0` (type invariant), released
        // only here.
        unsafe { bindings::putname(self.0.as_ptr()) };
    }
}

/// Returns whether `ptr` is NULL or the empty string and `dfd` is a file
/// descriptor (not `AT_FDCWD`), i.e. whether an `AT_EMPTY_PATH` call
/// describes `dfd` itself without a path walk (`vfs_empty_path()`).
#[inline]
pub fn is_empty_path(dfd: c_int, ptr: UserPtr) -> bool {
    // SAFETY: `vfs_empty_path()` reads at most one byte from the userspace
    // address with `get_user()`, which accepts any address.
    unsafe { bindings::vfs_empty_path(dfd, ptr as *const c_char) }
}

/// Reads the attributes of `path` with `vfs_getattr()`.
///
/// # Safety
///
/// `path` must be a valid `struct path` whose references are held for the
/// duration of the call.
#[inline]
unsafe fn getattr(
    path: *const bindings::path,
    request_mask: u32,
    query_flags: u32,
) -> Result<Kstat> {
    let mut stat = MaybeUninit::<bindings::kstat>::zeroed();
    // SAFETY: `path` is valid (function safety requirement) and `stat` is
    // valid for writes.
    let ret = unsafe { bindings::vfs_getattr(path, stat.as_mut_ptr(), request_mask, query_flags) };
    to_result(ret)?;
    // SAFETY: `struct kstat` is plain data (integers, and structs and
    // arrays of them), for which all-zero bytes are a valid value, and
    // `stat` started zeroed; `vfs_getattr()` only stores such values in it.
    Ok(Kstat(unsafe { stat.assume_init() }))
}

/// A location in the file system (`struct path`) whose references we own.
///
/// # Invariants
///
/// `self.0` holds one reference to its mount and one to its (positive)
/// dentry, released exactly once, on drop.
pub struct Path(bindings::path);

impl Path {
    /// Reads the attributes `request_mask` (`STATX_*` bits) asks for, with
    /// the `AT_STATX_SYNC_*` bits of `query_flags`, as `statx()` does.
    #[inline]
    pub fn getattr(&self, request_mask: u32, query_flags: u32) -> Result<Kstat> {
        // SAFETY: `self.0` is valid with references held (type invariant).
        unsafe { getattr(&self.0, request_mask, query_flags) }
    }
}

impl Drop for Path {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: by the type invariant we hold references on `self.0` that
        // have not been released; this is the only place releasing them.
        unsafe { bindings::path_put(&self.0) };
    }
}

/// An open file found by its descriptor with `fget_raw()`, which also
/// accepts `O_PATH` descriptors.
///
/// # Invariants
///
/// `self.0` is a valid `struct file` we own one reference to, released
/// exactly once, on drop.
pub struct RawFile(NonNull<bindings::file>);

impl RawFile {
    /// Takes a reference to the file of descriptor `fd` of the current
    /// task; -EBADF if there is none.
    #[inline]
    pub fn fget_raw(fd: c_int) -> Result<Self> {
        let fd = c_uint::try_from(fd).map_err(|_| EBADF)?;
        // SAFETY: `fget_raw()` accepts any number and returns a new file
        // reference or NULL.
        let file = NonNull::new(unsafe { bindings::fget_raw(fd) }).ok_or(EBADF)?;
        // INVARIANT: `fget_raw()` returned a reference we now own.
        Ok(Self(file))
    }

    /// Reads the attributes of the file, as [`Path::getattr`].
    #[inline]
    pub fn getattr(&self, request_mask: u32, query_flags: u32) -> Result<Kstat> {
        // SAFETY: `self.0` is a valid file (type invariant), and an open
        // file holds the references of its `f_path` as long as it lives.
        unsafe {
            getattr(
                core::ptr::addr_of!((*self.0.as_ptr()).f_path),
                request_mask,
                query_flags,
            )
        }
    }
}

impl Drop for RawFile {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own a reference to `self.0` (type invariant), released
        // only here.
        unsafe { bindings::fput(self.0.as_ptr()) };
    }
}

/// The attributes of a file (`struct kstat`), as `vfs_getattr()` fills
/// them.
pub struct Kstat(bindings::kstat);

impl Kstat {
    /// The `STATX_*` bits of the attributes the file system provided.
    #[inline]
    pub fn result_mask(&self) -> u32 {
        self.0.result_mask
    }

    /// The type (`S_IFMT`) and permission bits.
    #[inline]
    pub fn mode(&self) -> u32 {
        u32::from(self.0.mode)
    }

    /// The size in bytes (`loff_t`).
    #[inline]
    pub fn size(&self) -> i64 {
        self.0.size
    }

    /// The modification time: seconds since the epoch and nanoseconds.
    #[inline]
    pub fn mtime(&self) -> (i64, u32) {
        // CAST: `tv_nsec` of a file time is in [0, 1e9), as cp_statx()
        // assumes when it copies it to a `__u32`.
        (self.0.mtime.tv_sec, self.0.mtime.tv_nsec as u32)
    }

    /// The inode number.
    #[inline]
    pub fn ino(&self) -> u64 {
        self.0.ino
    }

    /// The major and minor numbers of the device holding the file.
    #[inline]
    pub fn dev(&self) -> (u32, u32) {
        let minor_mask = (1u32 << bindings::MINORBITS) - 1;
        (self.0.dev >> bindings::MINORBITS, self.0.dev & minor_mask)
    }

    /// The owner's uid as the current task's user namespace sees it (the
    /// overflow uid when it has no mapping there), as `cp_statx()` gives
    /// `stx_uid`.
    #[inline]
    pub fn uid(&self) -> u32 {
        // SAFETY: `current_user_ns()` is the user namespace of the running
        // task's credentials, valid during the call;
        // `from_kuid_munged()` only reads its id maps.
        unsafe { bindings::from_kuid_munged(bindings::current_user_ns(), self.0.uid) }
    }

    /// The group's gid as the current task's user namespace sees it, as
    /// [`Kstat::uid`].
    #[inline]
    pub fn gid(&self) -> u32 {
        // SAFETY: as in `uid()`.
        unsafe { bindings::from_kgid_munged(bindings::current_user_ns(), self.0.gid) }
    }

    /// The number of hard links.
    #[inline]
    pub fn nlink(&self) -> u32 {
        self.0.nlink
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Directories: reading the entries of an open directory at its file
//! position, and looking up one entry by name.
//!
//! C headers: [`include/linux/file.h`](srctree/include/linux/file.h),
//! [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/namei.h`](srctree/include/linux/namei.h).

use super::{getattr, Kstat};
use crate::{
    bindings,
    error::{
        code::{EBADF, EINVAL, ENOENT},
        from_err_ptr, to_result, Error, Result,
    },
    ffi::{c_char, c_int, c_uint},
};
use core::{marker::PhantomData, ptr::addr_of_mut};

/// What [`PosFile::iterate`] calls for each entry: the name and the `DT_*`
/// type the directory gives; it returns `false` to stop before the entry,
/// which is then the first one the next iteration reports.
pub type Emit<'a> = dyn FnMut(&[u8], u32) -> bool + 'a;

/// The `dir_context` passed to `iterate_dir()`, and the closure its actor
/// calls.
#[repr(C)]
struct Iteration<'a, 'b> {
    ctx: bindings::dir_context,
    emit: &'a mut Emit<'b>,
}

/// The `filldir_t` actor of [`PosFile::iterate`].
///
/// # Safety
///
/// `ctx` must be the `ctx` field of a live [`Iteration`], and `name` valid
/// for reads of `len` bytes, as `iterate_dir()` guarantees for the
/// `dir_context` it was given.
unsafe extern "C" fn actor(
    ctx: *mut bindings::dir_context,
    name: *const c_char,
    len: c_int,
    _pos: bindings::loff_t,
    _ino: u64,
    d_type: c_uint,
) -> bool {
    let Ok(len) = usize::try_from(len) else {
        return false;
    };
    // `ctx` is the first field of the `#[repr(C)]` `Iteration`, so the
    // pointers are the same (`container_of()`).
    let iteration = ctx.cast::<Iteration<'_, '_>>();
    // SAFETY: `iteration` points to a live `Iteration` (function safety
    // requirement), whose `emit` field nothing else accesses while
    // `iterate_dir()` runs: the file system only uses `ctx.pos` and
    // `ctx.actor`.
    let emit = unsafe { &mut *addr_of_mut!((*iteration).emit) };
    // SAFETY: the file system passes `len` bytes of name valid for reads
    // during the call (function safety requirement).
    let name = unsafe { core::slice::from_raw_parts(name.cast::<u8>(), len) };
    emit(name, d_type)
}

/// An open file found by its descriptor with `fdget_pos()`: for a file
/// whose position can be shared, the file position lock (`f_pos_lock`) is
/// held until drop, as `getdents64()` and `read()` hold it.
///
/// `O_PATH` descriptors are not accepted (-EBADF).
///
/// # Invariants
///
/// `self.0` is what `fdget_pos()` returned for a descriptor that has a
/// file: `fd_file(self.0)` is a valid file, referenced for as long as the
/// guard lives (by the `struct fd` or, when the descriptor table is not
/// shared, by the table itself), and released with `fdput_pos()` exactly
/// once, on drop, by the task that got it (the type is not `Send`, and a
/// system call cannot keep it past its return).
pub struct PosFile {
    fd: bindings::fd,
    _not_send: PhantomData<*mut ()>,
}

impl PosFile {
    /// Gets the file of descriptor `fd` of the current task and its
    /// position lock; -EBADF if there is no such file, or it is `O_PATH`.
    #[inline]
    pub fn fdget_pos(fd: c_uint) -> Result<Self> {
        // SAFETY: `fdget_pos()` accepts any number; it returns an empty
        // `struct fd` when the descriptor has no (non-`O_PATH`) file.
        let fd = unsafe { bindings::fdget_pos(fd) };
        // SAFETY: `fd_file()` only masks the flag bits off `fd.word`.
        if unsafe { bindings::fd_file(fd) }.is_null() {
            return Err(EBADF);
        }
        // INVARIANT: `fdget_pos()` found a file.
        Ok(Self {
            fd,
            _not_send: PhantomData,
        })
    }

    #[inline]
    fn file(&self) -> *mut bindings::file {
        // SAFETY: `fd_file()` only masks the flag bits off `fd.word`; the
        // result is a valid file (type invariant).
        unsafe { bindings::fd_file(self.fd) }
    }

    /// The file position (`f_pos`).
    #[inline]
    pub fn pos(&self) -> i64 {
        // SAFETY: the file is valid (type invariant), and its position is
        // ours: we hold its position lock, or the file is not shared.
        unsafe { (*self.file()).f_pos }
    }

    /// Sets the file position to `pos`, a value [`PosFile::pos`] returned,
    /// with `vfs_llseek(SEEK_SET)` (a directory's own `llseek` may need to
    /// update its state, as for `seekdir()`).
    #[inline]
    pub fn seek(&self, pos: i64) -> Result {
        // CAST: SEEK_SET is 0.
        let whence = bindings::SEEK_SET as c_int;
        // SAFETY: the file is valid (type invariant); we hold its position
        // lock or it is not shared, as the `lseek()` system call does.
        let ret = unsafe { bindings::vfs_llseek(self.file(), pos, whence) };
        if ret < 0 {
            // CAST: a negative `loff_t` from llseek is a -errno.
            return Err(Error::from_errno(ret as c_int));
        }
        Ok(())
    }

    /// Reads the directory from the file position with `iterate_dir()`,
    /// calling `emit` for each entry ("." and ".." included) until it
    /// returns `false` or the directory ends, and advances the position
    /// past the entries `emit` accepted.
    ///
    /// `emit` runs with the directory's `i_rwsem` held shared; taking
    /// `&mut self` keeps it from calling [`PosFile::lookup`].  Fails with
    /// -ENOTDIR when the file is not a directory, -ENOENT when the
    /// directory was removed, or what the file system or an LSM returns.
    pub fn iterate(&mut self, emit: &mut Emit<'_>) -> Result {
        let mut iteration = Iteration {
            ctx: bindings::dir_context {
                actor: Some(actor),
                pos: 0,
            },
            emit,
        };
        // SAFETY: the file is valid (type invariant) and we hold its
        // position lock (or it is not shared), as `iterate_dir()` requires;
        // `iteration.ctx` is the first field of a live `Iteration`, as
        // `actor` requires, and lives until `iterate_dir()` returns.
        to_result(unsafe { bindings::iterate_dir(self.file(), &mut iteration.ctx) })
    }

    /// Looks up the entry `name` of the directory, as `fstatat(fd, name,
    /// AT_SYMLINK_NOFOLLOW)` would find it: a symlink is not followed, a
    /// mount point gives the root of what is mounted there (no automount
    /// is triggered), and the caller must be allowed to search the
    /// directory (-EACCES otherwise).  No lock is held on entry; the
    /// directory's `i_rwsem` is taken shared only on a dcache miss.
    ///
    /// Fails with -ENOENT for a missing entry, -EACCES for a name that
    /// is not one path component, -ENOTDIR when the file is not a
    /// directory, and the errors of the lookup.
    pub fn lookup(&self, name: &[u8]) -> Result<Child<'_>> {
        let len = c_int::try_from(name.len()).map_err(|_| EINVAL)?;
        // SAFETY: the file is valid (type invariant) and holds references
        // to its `f_path` while open.
        let dir = unsafe { &(*self.file()).f_path };
        // SAFETY: `dir.mnt` is a valid mount (see above).
        let idmap = unsafe { bindings::mnt_idmap(dir.mnt) };
        // SAFETY: `name` is valid for reads of `len` bytes (its bytes are
        // checked: "/" and NUL are -EACCES); `dir.dentry` is pinned by the
        // file; no directory lock is held (`iterate()` takes `&mut self`,
        // so it is not running); `lookup_one_unlocked()` checks search
        // permission on the directory with the mount's idmap and returns a
        // referenced, possibly negative, dentry or an error pointer.
        let dentry = from_err_ptr(unsafe {
            bindings::lookup_one_unlocked(idmap, name.as_ptr().cast::<c_char>(), dir.dentry, len)
        })?;
        // SAFETY: `dentry` is a valid dentry we hold a reference to; its
        // flags may change under us, as `traverse_mounts()` expects too.
        if !unsafe { bindings::d_managed(dentry) } {
            // Nothing is mounted there and it is no automount point: the
            // dentry is the entry, on the directory's mount.
            // SAFETY: as above.
            if unsafe { bindings::d_is_negative(dentry) } {
                // SAFETY: we own the reference, released once.
                unsafe { bindings::dput(dentry) };
                return Err(ENOENT);
            }
            // INVARIANT: a reference to a positive dentry; the mount is
            // the directory's, pinned by `self` for `'_`.
            return Ok(Child {
                path: bindings::path {
                    mnt: dir.mnt,
                    dentry,
                },
                own_mnt: false,
                _dir: PhantomData,
            });
        }
        let mut path = bindings::path {
            // SAFETY: `dir.mnt` is a valid mount (see above); `mntget()`
            // returns it with one more reference.
            mnt: unsafe { bindings::mntget(dir.mnt) },
            dentry,
        };
        // SAFETY: `path` holds one reference to its mount and dentry;
        // `follow_down()` replaces them by the topmost mount on the dentry
        // and its root, keeping one reference to each, also on failure
        // (-ENOENT for a negative dentry, or what `d_manage()` returns).
        let ret = unsafe { bindings::follow_down(&mut path, 0) };
        if ret < 0 {
            // SAFETY: `path` holds references (see above), released once.
            unsafe { bindings::path_put(&path) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: `path` holds a reference to a positive dentry and one
        // to its mount.
        Ok(Child {
            path,
            own_mnt: true,
            _dir: PhantomData,
        })
    }
}

/// An entry of a directory found by [`PosFile::lookup`].
///
/// # Invariants
///
/// `self.path.dentry` is a positive dentry we hold one reference to.  If
/// `self.own_mnt`, we hold one reference to `self.path.mnt` too; if not,
/// `self.path.mnt` is the mount of the directory's file, which the
/// borrowed [`PosFile`] keeps alive for `'a`.  The references are released
/// exactly once, on drop.
pub struct Child<'a> {
    path: bindings::path,
    own_mnt: bool,
    _dir: PhantomData<&'a PosFile>,
}

impl Child<'_> {
    /// Reads the attributes `request_mask` (`STATX_*` bits) asks for, with
    /// the `AT_STATX_SYNC_*` bits of `query_flags`, as `statx()` does.
    #[inline]
    pub fn getattr(&self, request_mask: u32, query_flags: u32) -> Result<Kstat> {
        // SAFETY: `self.path` is valid and its references are held for as
        // long as `self` lives (type invariant).
        unsafe { getattr(&self.path, request_mask, query_flags) }
    }
}

impl Drop for Child<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own a reference to the dentry (type invariant),
        // released only here.
        unsafe { bindings::dput(self.path.dentry) };
        if self.own_mnt {
            // SAFETY: we own a reference to the mount (type invariant),
            // released only here.
            unsafe { bindings::mntput(self.path.mnt) };
        }
    }
}

impl Drop for PosFile {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `self.fd` came from `fdget_pos()` and is released only
        // here, by the task that got it (type invariant).
        unsafe { bindings::fdput_pos(self.fd) };
    }
}

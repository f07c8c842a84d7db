// SPDX-License-Identifier: GPL-2.0

//! Directories: reading the entries of an open directory at its file
//! position, and looking up one entry by name.
//!
//! C headers: [`include/linux/file.h`](srctree/include/linux/file.h),
//! [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`fs/internal.h`](srctree/fs/internal.h).

use super::Path;
use crate::{
    bindings,
    error::{
        code::{EBADF, EINVAL, ENOTDIR},
        to_result, Result,
    },
    ffi::{c_char, c_int, c_uint},
    types::Opaque,
};
use core::{
    marker::PhantomData,
    mem::MaybeUninit,
    ptr::{addr_of, addr_of_mut},
};

// Declared in `fs/internal.h`, which only the VFS includes: these
// abstractions are part of it, bindgen does not see that header.  As in
// the bindings, `struct path` holds zero-sized lock class keys under
// lockdep, which the lint takes for not FFI-safe; the layouts are
// bindgen's.
#[allow(improper_ctypes)]
extern "C" {
    fn lookup_dir_entry(
        dir: *const bindings::path,
        name: *const c_char,
        len: c_int,
        flags: c_uint,
        path: *mut bindings::path,
    ) -> c_int;
}

/// The `dir_context` passed to `iterate_dir()`, and the closure its actor
/// calls.
///
/// The actor finds the `Iteration` from the `dir_context` pointer with
/// `container_of!`: [`PosDir::iterate`] passes a pointer derived from a
/// pointer to the whole `Iteration`, so the actor may reach `emit`.
struct Iteration<F> {
    ctx: Opaque<bindings::dir_context>,
    emit: F,
}

/// The `filldir_t` actor of [`PosDir::iterate`] for a closure of type `F`.
///
/// # Safety
///
/// `ctx` must point to the `ctx` field of a live `Iteration<F>`, with the
/// provenance of a pointer to the whole `Iteration<F>`, that nothing else
/// accesses during the call; `name` must be valid for reads of `len`
/// bytes.  `iterate_dir()` guarantees both for the `dir_context`
/// [`PosDir::iterate`] gives it: the file system only reads and writes
/// `ctx->pos` and calls `ctx->actor`, from the iterating task, between
/// the calls of the actor.
unsafe extern "C" fn actor<F: FnMut(&[u8], u32) -> bool>(
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
    // SAFETY: `ctx` points to the `ctx` field of a live `Iteration<F>`
    // (function safety requirement); `container_of!` only subtracts the
    // field's offset, so the result points to that `Iteration<F>`, with
    // the provenance `ctx` has (the whole struct's).
    let iteration = unsafe { crate::container_of!(ctx, Iteration<F>, ctx) }.cast_mut();
    // SAFETY: `iteration` is valid and nothing else accesses its `emit`
    // field during this call (function safety requirement).
    let emit = unsafe { &mut *addr_of_mut!((*iteration).emit) };
    // SAFETY: the file system passes `len` bytes of name valid for reads
    // during the call (function safety requirement).
    let name = unsafe { core::slice::from_raw_parts(name.cast::<u8>(), len) };
    emit(name, d_type)
}

/// An open directory found by its descriptor with `fdget_pos()`, its file
/// position lock (`f_pos_lock`) held until drop, as `getdents64()` holds
/// it.  The only type on which directories are iterated and looked up.
///
/// # Invariants
///
/// - `self.fd` is what `fdget_pos()` returned for a descriptor that has a
///   file: `fd_file(self.fd)` is a valid file, referenced for as long as
///   the guard lives (by the `struct fd` or, when the descriptor table is
///   not shared, by the table itself), and released with `fdput_pos()`
///   exactly once, on drop, by the task that got it (the type is not
///   `Send`, and a system call cannot keep it past its return).
/// - The file is a directory that can be looked up in (`d_can_lookup()`
///   of its dentry: `S_ISDIR` and an `->lookup`), which it stays: an open
///   file keeps its dentry positive and its inode.
/// - The file's position lock is held by this task (`FDPUT_POS_UNLOCK` is
///   set in `self.fd`), so the position is ours until drop.
pub struct PosDir {
    fd: bindings::fd,
    _not_send: PhantomData<*mut ()>,
}

impl PosDir {
    /// Gets the file of descriptor `fd` of the current task and its
    /// position lock.
    ///
    /// Fails with -EBADF if there is no such file or it is `O_PATH`, and
    /// with -ENOTDIR if it is not a directory that can be read (a regular
    /// file, a directory without `->lookup`, or one whose file operations
    /// have no `->iterate_shared`, for which `fdget_pos()` takes no
    /// position lock and `iterate_dir()` would fail with -ENOTDIR).
    #[inline]
    pub fn fdget(fd: c_uint) -> Result<Self> {
        // SAFETY: `fdget_pos()` accepts any number; it returns an empty
        // `struct fd` when the descriptor has no (non-`O_PATH`) file.
        let fd = unsafe { bindings::fdget_pos(fd) };
        // SAFETY: `fd_file()` only masks the flag bits off `fd.word`.
        let file = unsafe { bindings::fd_file(fd) };
        if file.is_null() {
            return Err(EBADF);
        }
        // SAFETY: `file` is a valid file (`fdget_pos()` found it), whose
        // `f_path.dentry` is pinned and positive while the file is open.
        let is_dir = unsafe { bindings::d_can_lookup((*file).f_path.dentry) };
        // CAST: FDPUT_POS_UNLOCK is a flag bit of the `unsigned long` word.
        let locked = fd.word & bindings::FDPUT_POS_UNLOCK as usize != 0;
        if !is_dir || !locked {
            // SAFETY: `fd` came from `fdget_pos()` and is released once,
            // here, by the task that got it.
            unsafe { bindings::fdput_pos(fd) };
            return Err(ENOTDIR);
        }
        // INVARIANT: `fdget_pos()` found a file, it is a directory that
        // can be looked up in, and `fdget_pos()` took its position lock.
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

    /// Reads the directory from the file position with `iterate_dir()`,
    /// calling `emit` for each entry ("." and ".." included) until it
    /// returns `false` or the directory ends, and advances the position
    /// past the entries `emit` accepted, exactly: an entry `emit` refuses
    /// is the first one the next iteration gives.
    ///
    /// `emit` runs with the directory's `i_rwsem` held shared, and may
    /// sleep (fault in user memory); taking `&mut self` keeps it from
    /// calling [`PosDir::lookup`].  Fails with -ENOENT when the directory
    /// was removed, or what the file system or an LSM returns.
    pub fn iterate<F: FnMut(&[u8], u32) -> bool>(&mut self, emit: F) -> Result {
        let mut iteration = Iteration {
            ctx: Opaque::new(bindings::dir_context {
                actor: Some(actor::<F>),
                pos: 0,
            }),
            emit,
        };
        // The pointer the actor gets is derived from this one, so its
        // provenance covers the whole `Iteration`, `emit` included.
        let whole: *mut Iteration<F> = &mut iteration;
        // SAFETY: `whole` points to `iteration`, which is live.
        let ctx = Opaque::raw_get(unsafe { addr_of!((*whole).ctx) });
        // SAFETY: the file is a valid directory and we hold its position
        // lock (type invariants), as `iterate_dir()` requires; `ctx`
        // points to the `ctx` field of `iteration` with the provenance of
        // `whole`, and `iteration` is not used otherwise until
        // `iterate_dir()` returns, as `actor::<F>` requires.
        to_result(unsafe { bindings::iterate_dir(self.file(), ctx) })
    }

    /// Looks up the entry `name` of the directory, as `fstatat(fd, name,
    /// AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT)` would find it, with the C
    /// helper `lookup_dir_entry()`: a symlink is not followed, a mount
    /// point gives the root of what is mounted there (no automount is
    /// triggered), the caller must be allowed to search the directory,
    /// the lookup is audited, and -ESTALE is retried with `LOOKUP_REVAL`.
    /// `reval` asks for `LOOKUP_REVAL` from the start (a caller whose
    /// `getattr` met -ESTALE).  No directory lock is held on entry; the
    /// directory's `i_rwsem` is taken shared only on a dcache miss.
    ///
    /// Fails with -ENOENT for a missing entry, -EACCES for a name that is
    /// not one path component (".", "..", a "/" or a NUL in it) or a
    /// directory that cannot be searched, and the errors of the lookup.
    pub fn lookup(&self, name: &[u8], reval: bool) -> Result<Path> {
        let len = c_int::try_from(name.len()).map_err(|_| EINVAL)?;
        let flags = if reval { bindings::LOOKUP_REVAL } else { 0 };
        let mut path = MaybeUninit::<bindings::path>::uninit();
        // SAFETY: the file is valid (type invariant) and holds references
        // to its `f_path` while open; `name` is valid for reads of `len`
        // bytes (the helper checks them); no directory lock is held
        // (`iterate()` takes `&mut self`, so it is not running); `path` is
        // valid for writes, and written only on success.
        let ret = unsafe {
            lookup_dir_entry(
                addr_of!((*self.file()).f_path),
                name.as_ptr().cast::<c_char>(),
                len,
                flags,
                path.as_mut_ptr(),
            )
        };
        to_result(ret)?;
        // INVARIANT: on success the helper filled `path` with a positive
        // dentry and took one reference on it and one on its mount, which
        // the `Path` now owns.
        // SAFETY: `path` was initialised by the successful call.
        Ok(Path(unsafe { path.assume_init() }))
    }
}

impl Drop for PosDir {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `self.fd` came from `fdget_pos()` and is released only
        // here, by the task that got it (type invariant).
        unsafe { bindings::fdput_pos(self.fd) };
    }
}

/// Whether the current task has a fatal signal pending (it is being
/// killed): long work should stop.
#[inline]
pub fn fatal_signal_pending() -> bool {
    // SAFETY: `get_current()` is the running task, valid during the call.
    unsafe { bindings::fatal_signal_pending(bindings::get_current()) }
}

/// Whether the current task has any signal pending: a system call that
/// can return a short count should return it, so that the signal is
/// handled.
#[inline]
pub fn signal_pending() -> bool {
    // SAFETY: `get_current()` is the running task, valid during the call.
    unsafe { bindings::signal_pending(bindings::get_current()) != 0 }
}

/// Lets the scheduler run another task if this one has run long enough
/// (`cond_resched()`); may sleep.
#[inline]
pub fn cond_resched() {
    // SAFETY: `cond_resched()` may be called from any context that can
    // sleep, which a function of a system call's process context is.
    unsafe { bindings::cond_resched() };
}

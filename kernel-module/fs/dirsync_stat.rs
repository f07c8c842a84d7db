// SPDX-License-Identifier: GPL-2.0

//! `dirsync_stat(2)`: the metadata a directory synchronizer compares, in one
//! kernel transition.
//!
//! The system call entry point is the C shim in `fs/dirsync_syscall.c`, which
//! calls [`dirsync_stat_rust`]. The path is resolved with the caller's
//! credentials by `user_path_at()`, the attributes are read with
//! `vfs_getattr()` and a fully initialised `struct dirsync_info` is copied to
//! userspace. A missing final component is reported with `exists == 0`
//! instead of an error. The ABI is described in
//! `include/uapi/linux/dirsync.h`.
//!
//! The calls into the C VFS live in the small [`PathRef`] and
//! [`LockedParent`] types, which own the references a lookup returns and drop
//! them on every exit path; the rest is safe code returning [`Result`].

use core::mem::{offset_of, size_of, MaybeUninit};
use kernel::{
    bindings,
    error::{
        code::{EINVAL, ENOENT},
        from_err_ptr, to_result, Error, Result,
    },
    ffi::{c_char, c_int, c_long, c_uint},
    types::AsBytes,
    uaccess::{UserPtr, UserSlice},
    uapi,
};

/// The `AT_*` flags `dirsync_stat(2)` accepts.
const VALID_AT_FLAGS: u32 = bindings::AT_SYMLINK_NOFOLLOW | bindings::AT_EMPTY_PATH;

/// Rust mirror of the uapi `struct dirsync_info` (80 bytes, no implicit
/// padding); the assertions below keep the two layouts identical.
#[repr(C)]
#[derive(Default)]
struct DirsyncInfo {
    exists: u32,
    mode: u32,
    size: u64,
    mtime: i64,
    mtime_nsec: u32,
    mask: u32,
    ino: u64,
    dev_major: u32,
    dev_minor: u32,
    spare: [u64; 4],
}

// The mirror has the size and field offsets of the uapi struct that bindgen
// generated from `include/uapi/linux/dirsync.h`, and no implicit padding
// (its size is the sum of its fields' sizes).
const _: () = {
    type U = uapi::dirsync_info;
    assert!(size_of::<DirsyncInfo>() == 80);
    assert!(size_of::<DirsyncInfo>() == size_of::<U>());
    assert!(offset_of!(DirsyncInfo, exists) == offset_of!(U, exists));
    assert!(offset_of!(DirsyncInfo, mode) == offset_of!(U, mode));
    assert!(offset_of!(DirsyncInfo, size) == offset_of!(U, size));
    assert!(offset_of!(DirsyncInfo, mtime) == offset_of!(U, mtime));
    assert!(offset_of!(DirsyncInfo, mtime_nsec) == offset_of!(U, mtime_nsec));
    assert!(offset_of!(DirsyncInfo, mask) == offset_of!(U, mask));
    assert!(offset_of!(DirsyncInfo, ino) == offset_of!(U, ino));
    assert!(offset_of!(DirsyncInfo, dev_major) == offset_of!(U, dev_major));
    assert!(offset_of!(DirsyncInfo, dev_minor) == offset_of!(U, dev_minor));
    assert!(offset_of!(DirsyncInfo, spare) == offset_of!(U, __spare));
    assert!(
        size_of::<DirsyncInfo>()
            == 6 * size_of::<u32>() + 3 * size_of::<u64>() + size_of::<[u64; 4]>()
    );
};

// SAFETY: `DirsyncInfo` is `repr(C)`, made only of integers, and has no
// implicit padding (asserted above), so all of its bytes are initialised.
unsafe impl AsBytes for DirsyncInfo {}

impl DirsyncInfo {
    /// The answer for an existing object: the fields `stat.result_mask`
    /// says the file system filled, and their `DIRSYNC_INFO_*` bits.
    fn from_kstat(stat: &bindings::kstat) -> Self {
        let minor_mask = (1u32 << bindings::MINORBITS) - 1;
        let got = stat.result_mask;
        let has = |statx_bit: u32| got & statx_bit != 0;
        // The type, inode and device numbers are always valid.
        let mut mask = uapi::DIRSYNC_INFO_TYPE | uapi::DIRSYNC_INFO_INO | uapi::DIRSYNC_INFO_DEV;
        let mut mode = u32::from(stat.mode) & bindings::S_IFMT;
        let mut info = DirsyncInfo {
            exists: 1,
            ino: stat.ino,
            dev_major: stat.dev >> bindings::MINORBITS,
            dev_minor: stat.dev & minor_mask,
            ..Self::default()
        };
        if has(bindings::STATX_MODE) {
            mask |= uapi::DIRSYNC_INFO_MODE;
            mode |= u32::from(stat.mode) & !bindings::S_IFMT;
        }
        if has(bindings::STATX_SIZE) {
            mask |= uapi::DIRSYNC_INFO_SIZE;
            // CAST: exactly what cp_statx() does for stx_size.
            info.size = stat.size as u64;
        }
        if has(bindings::STATX_MTIME) {
            mask |= uapi::DIRSYNC_INFO_MTIME;
            info.mtime = stat.mtime.tv_sec;
            // CAST: `tv_nsec` is in [0, 1e9), as cp_statx() assumes.
            info.mtime_nsec = stat.mtime.tv_nsec as u32;
        }
        info.mode = mode;
        info.mask = mask;
        info
    }
}

/// A `struct path` whose mount and dentry references are owned.
///
/// # Invariants
///
/// `self.0` holds one reference to its mount and one to its dentry, which
/// are released exactly once, on drop.
struct PathRef(bindings::path);

impl PathRef {
    /// Resolves the userspace string at `name` relative to `dfd` with the
    /// caller's credentials, like the `*at()` system calls do.
    fn lookup(dfd: c_int, name: UserPtr, lookup_flags: c_uint) -> Result<Self> {
        let mut path = MaybeUninit::<bindings::path>::uninit();
        // SAFETY: `user_path_at()` copies the string from the userspace
        // address `name` with `strncpy_from_user()` (any address is allowed:
        // a bad one gives -EFAULT, an overlong string -ENAMETOOLONG) and
        // writes `path` only on success; `path` is valid for writes.
        let ret = unsafe {
            bindings::user_path_at(dfd, name as *const c_char, lookup_flags, path.as_mut_ptr())
        };
        to_result(ret)?;
        // INVARIANT: on success `user_path_at()` initialised `path` and took
        // a reference on its mount and dentry, which we now own.
        // SAFETY: `path` was initialised by the successful call.
        Ok(PathRef(unsafe { path.assume_init() }))
    }

    /// Reads the attributes of the object.
    fn getattr(&self) -> Result<bindings::kstat> {
        // SAFETY: all-zero bytes are a valid `struct kstat` (integers only).
        let mut stat: bindings::kstat = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: `self.0` is a valid path with references held (type
        // invariant) and `stat` is valid for writes.
        let ret = unsafe {
            bindings::vfs_getattr(
                &self.0,
                &mut stat,
                bindings::STATX_BASIC_STATS,
                bindings::AT_STATX_SYNC_AS_STAT,
            )
        };
        to_result(ret)?;
        Ok(stat)
    }
}

impl Drop for PathRef {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `self.0` holds references that have
        // not been released yet; this is the only place releasing them.
        unsafe { bindings::path_put(&self.0) };
    }
}

/// The parent directory of a path's final component, locked, and the
/// (possibly negative) dentry of that component.
///
/// # Invariants
///
/// `parent` holds a reference to its mount and dentry, the inode of
/// `parent.dentry` is locked by us, and `child` is a dentry reference we
/// own. All three are released exactly once, on drop.
struct LockedParent {
    parent: bindings::path,
    child: *mut bindings::dentry,
}

impl LockedParent {
    /// Resolves every component of the userspace string at `name` but the
    /// last, relative to `dfd`, and looks the last one up in the result.
    ///
    /// Fails with -EINVAL when the last component is `.`, `..` or `/`.
    fn lookup(dfd: c_int, name: UserPtr) -> Result<Self> {
        let mut parent = MaybeUninit::<bindings::path>::uninit();
        // SAFETY: `user_path_locked_at()` copies the string from the
        // userspace address `name` with `getname()` (a bad address gives
        // -EFAULT) and writes `parent` only when it returns a dentry;
        // `parent` is valid for writes.
        let child = from_err_ptr(unsafe {
            bindings::user_path_locked_at(dfd, name as *const c_char, parent.as_mut_ptr())
        })?;
        // INVARIANT: on success `user_path_locked_at()` returned a dentry
        // reference and filled `parent` with referenced, locked directory.
        Ok(LockedParent {
            // SAFETY: `parent` was initialised by the successful call.
            parent: unsafe { parent.assume_init() },
            child,
        })
    }
}

impl Drop for LockedParent {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own a reference to `self.child`,
        // hold the lock of the (positive, directory) inode of
        // `self.parent.dentry` and references to `self.parent`; they are
        // released here once, in the order of the kernel's own callers.
        unsafe {
            bindings::dput(self.child);
            bindings::inode_unlock((*self.parent.dentry).d_inode);
            bindings::path_put(&self.parent);
        }
    }
}

/// Translates `dirsync_stat(2)` flags into `LOOKUP_*` flags.
fn lookup_flags(at_flags: c_uint) -> Result<c_uint> {
    if at_flags & !VALID_AT_FLAGS != 0 {
        return Err(EINVAL);
    }
    // Like stat(2): trigger automounts, follow a final symlink by default.
    let mut flags = bindings::LOOKUP_AUTOMOUNT;
    if at_flags & bindings::AT_SYMLINK_NOFOLLOW == 0 {
        flags |= bindings::LOOKUP_FOLLOW;
    }
    if at_flags & bindings::AT_EMPTY_PATH != 0 {
        flags |= bindings::LOOKUP_EMPTY;
    }
    Ok(flags)
}

fn is_errno(err: Error, errno: u32) -> bool {
    i64::from(err.to_errno()) == -i64::from(errno)
}

/// Looks the path up and reads its attributes; retries once with
/// `LOOKUP_REVAL` on -ESTALE, as `vfs_statx()` does.
fn stat_path(dfd: c_int, name: UserPtr, mut flags: c_uint) -> Result<bindings::kstat> {
    loop {
        let res = PathRef::lookup(dfd, name, flags).and_then(|path| path.getattr());
        match res {
            Err(e) if is_errno(e, bindings::ESTALE) && flags & bindings::LOOKUP_REVAL == 0 => {
                flags |= bindings::LOOKUP_REVAL;
            }
            res => return res,
        }
    }
}

/// Decides what a lookup that failed with -ENOENT means: `Ok` if only the
/// final component is missing (the directory containing it exists), the
/// error of the parent lookup otherwise (-ENOENT for a missing directory in
/// the prefix, -ENOTDIR, -EACCES, ...).
///
/// The parent is resolved by a second lookup of the same user string,
/// stopping before its final component (`user_path_locked_at()`, which
/// takes the parent's inode lock briefly: the only exported helper doing a
/// parent walk relative to a `dfd`). This costs a second walk only on the
/// -ENOENT path.
fn check_final_component_missing(dfd: c_int, name: UserPtr) -> Result {
    match LockedParent::lookup(dfd, name) {
        // Dropping `parent` unlocks and releases it.
        Ok(_parent) => Ok(()),
        // The last component is ".", ".." or "/", so the -ENOENT came
        // from the walk itself (e.g. a directory removed meanwhile).
        Err(e) if e == EINVAL => Err(ENOENT),
        Err(e) => Err(e),
    }
}

/// The system call, with errors as [`Error`].
fn dirsync_stat(dfd: c_int, name: UserPtr, info: UserPtr, at_flags: c_uint) -> Result {
    let flags = lookup_flags(at_flags)?;
    let answer = match stat_path(dfd, name, flags) {
        Ok(stat) => DirsyncInfo::from_kstat(&stat),
        Err(e) if e == ENOENT => {
            check_final_component_missing(dfd, name)?;
            // Every byte zero, `exists` included.
            DirsyncInfo::default()
        }
        Err(e) => return Err(e),
    };
    UserSlice::new(info, size_of::<DirsyncInfo>())
        .writer()
        .write(&answer)
}

/// Implementation of `dirsync_stat(2)`, called by the C entry point
/// `sys_dirsync_stat()` in `fs/dirsync_syscall.c`.
///
/// Returns 0 or a negative errno.
#[no_mangle]
pub extern "C" fn dirsync_stat_rust(
    dfd: c_int,
    path: *const c_char,
    info: *mut uapi::dirsync_info,
    flags: c_uint,
) -> c_long {
    match dirsync_stat(dfd, path as UserPtr, info as UserPtr, flags) {
        Ok(()) => 0,
        // CAST: an errno is in [-MAX_ERRNO, -1], which fits any `c_long`.
        Err(e) => e.to_errno() as c_long,
    }
}

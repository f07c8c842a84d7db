// SPDX-License-Identifier: GPL-2.0

//! Discovery of `dirsync_stat(2)` for userspace.
//!
//! Creates, at boot, the world-readable files
//!
//! - `/sys/kernel/dirsync/syscall_nr`: the system call number, in decimal;
//! - `/sys/kernel/dirsync/abi_version`: `DIRSYNC_ABI_VERSION`, in decimal;
//!
//! so that a program can learn that the call exists, and with which number
//! and ABI, without executing a syscall number that may mean something else
//! on another kernel (see `include/uapi/linux/dirsync.h`).

use core::ptr;
use kernel::{
    bindings, c_str,
    error::{code::ENOMEM, to_result},
    ffi::{c_char, c_uint},
    prelude::*,
    str::CStr,
    uapi,
};

module! {
    type: DirsyncSysfs,
    name: "dirsync_sysfs",
    author: "dirsync developers",
    description: "Discovery of the dirsync_stat system call in sysfs",
    license: "GPL",
}

/// Signature of a `struct kobj_attribute` show callback.
type ShowFn = unsafe extern "C" fn(
    *mut bindings::kobject,
    *mut bindings::kobj_attribute,
    *mut c_char,
) -> isize;

/// A read-only (0444) sysfs attribute, registered once and never modified.
#[repr(transparent)]
struct ReadOnlyAttr(bindings::kobj_attribute);

// SAFETY: the attribute is immutable after its constant initialisation;
// sysfs only reads it, from any thread.
unsafe impl Sync for ReadOnlyAttr {}

impl ReadOnlyAttr {
    const fn new(name: &'static CStr, show: ShowFn) -> Self {
        // SAFETY: all-zero bytes are a valid `struct kobj_attribute` (null
        // pointers, `None` callbacks, zero integers).
        let mut attr: bindings::kobj_attribute = unsafe { core::mem::zeroed() };
        attr.attr.name = name.as_char_ptr();
        attr.attr.mode = 0o444;
        attr.show = Some(show);
        ReadOnlyAttr(attr)
    }

    fn as_attribute(&'static self) -> *const bindings::attribute {
        &self.0.attr
    }
}

/// Formats `value` and a newline into the sysfs page `buf`.
///
/// # Safety
///
/// `buf` must be the page-sized buffer sysfs passes to a show callback.
unsafe fn emit_u32(buf: *mut c_char, value: u32) -> isize {
    // SAFETY: `buf` is a sysfs show buffer (function safety requirement)
    // and the format consumes exactly one `unsigned int`.
    let len =
        unsafe { bindings::sysfs_emit(buf, c_str!("%u\n").as_char_ptr(), c_uint::from(value)) };
    // CAST: `sysfs_emit()` returns a byte count (at most `PAGE_SIZE`) or a
    // negative errno; both fit in `isize`.
    len as isize
}

/// Show callback of `syscall_nr`.
///
/// # Safety
///
/// Called by sysfs only, with its page-sized `buf`.
unsafe extern "C" fn syscall_nr_show(
    _kobj: *mut bindings::kobject,
    _attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: sysfs passes its show buffer (function safety requirement).
    unsafe { emit_u32(buf, uapi::__NR_dirsync_stat) }
}

/// Show callback of `abi_version`.
///
/// # Safety
///
/// Called by sysfs only, with its page-sized `buf`.
unsafe extern "C" fn abi_version_show(
    _kobj: *mut bindings::kobject,
    _attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: sysfs passes its show buffer (function safety requirement).
    unsafe { emit_u32(buf, uapi::DIRSYNC_ABI_VERSION) }
}

static SYSCALL_NR: ReadOnlyAttr = ReadOnlyAttr::new(c_str!("syscall_nr"), syscall_nr_show);
static ABI_VERSION: ReadOnlyAttr = ReadOnlyAttr::new(c_str!("abi_version"), abi_version_show);

/// The `/sys/kernel/dirsync` directory.
///
/// # Invariants
///
/// `kobj` is a valid kobject we hold one reference to, dropped on drop.
struct DirsyncSysfs {
    kobj: *mut bindings::kobject,
}

// SAFETY: the kobject is reference counted and locked internally; this
// type only keeps its reference and drops it once.
unsafe impl Send for DirsyncSysfs {}
// SAFETY: `DirsyncSysfs` has no methods using the pointer through `&self`.
unsafe impl Sync for DirsyncSysfs {}

impl kernel::Module for DirsyncSysfs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: `kernel_kobj` is set by `ksysfs_init()`, a core initcall
        // that runs before this (device level) initcall; the name is a
        // valid C string.
        let kobj = unsafe {
            bindings::kobject_create_and_add(c_str!("dirsync").as_char_ptr(), bindings::kernel_kobj)
        };
        if kobj.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: `kobject_create_and_add()` returned a new reference.
        let dir = DirsyncSysfs { kobj };
        for attr in [&SYSCALL_NR, &ABI_VERSION] {
            // SAFETY: `dir.kobj` is valid (type invariant) and `attr` is a
            // static attribute that outlives it; on error `dir` is dropped,
            // which removes the directory with what it contains.
            to_result(unsafe {
                bindings::sysfs_create_file_ns(dir.kobj, attr.as_attribute(), ptr::null())
            })?;
        }
        Ok(dir)
    }
}

impl Drop for DirsyncSysfs {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we hold one reference to `self.kobj`.
        unsafe { bindings::kobject_put(self.kobj) };
    }
}

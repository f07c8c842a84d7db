//! Extended attributes (`-X`) and POSIX ACLs (`-A`, stored as the
//! `system.posix_acl_access` / `system.posix_acl_default` attributes, copied
//! raw, which Linux accepts as is).
//!
//! An entry is named by a directory descriptor and ONE component, so the
//! last component is never followed and nothing else is resolved inside
//! the trees: the listing uses `listxattrat(dir, name,
//! AT_SYMLINK_NOFOLLOW)` where the kernel has it (Linux 6.13+, see
//! [`listxattrat`]), else `llistxattr` of the path
//! `/proc/self/fd/<dir>/<name>` (about four times the cost: the magic
//! link is resolved on every call); the rare value reads and writes use
//! that path. An open file uses the `f*xattr` calls.
//!
//! Cost on an unchanged tree: one listing per entry and side. Values are
//! read only when a name list is not empty (most files have none); then
//! each value is read with one `getxattr` into a buffer (no size query
//! first).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// An entry whose attributes are read or written.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// An open file or directory.
    Fd(BorrowedFd<'a>),
    /// `name` in the directory `dir`, never following a symlink.
    At(BorrowedFd<'a>, &'a CStr),
}

/// Attributes (name, value), sorted by name.
pub type Xattrs = Vec<(CString, Vec<u8>)>;

/// The ACL attributes.
pub const ACL_ACCESS: &[u8] = b"system.posix_acl_access";
/// The default ACL of a directory.
pub const ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

/// Which attribute names a run syncs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// `-X`: every name but the ACLs.
    pub xattrs: bool,
    /// `-A`: the two ACL names.
    pub acls: bool,
}

impl Selection {
    /// Whether `name` is synced.
    pub fn wants(&self, name: &[u8]) -> bool {
        if name == ACL_ACCESS || name == ACL_DEFAULT {
            self.acls
        } else {
            self.xattrs
        }
    }
    /// Whether anything is synced.
    pub fn any(&self) -> bool {
        self.xattrs || self.acls
    }
}

fn proc_path(dir: BorrowedFd<'_>, name: &CStr) -> CString {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.to_bytes());
    CString::new(p).expect("no NUL in a CStr")
}

/// `listxattrat(2)` (x86-64 number 465 since Linux 6.13), used only when
/// it is known to be that call: the kernel's release is 6.13 or later
/// and it is not a dirsync kernel (no `/sys/kernel/dirsync`: a kernel with
/// the dirsync series numbers its own calls from 463). `None`: not
/// available (then also after an `ENOSYS` or a seccomp `EPERM`).
fn listxattrat(dir: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> Option<io::Result<usize>> {
    use std::sync::atomic::{AtomicU8, Ordering};
    static STATE: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 yes, 2 no
    if STATE.load(Ordering::Relaxed) == 0 {
        STATE.store(if listxattrat_known() { 1 } else { 2 }, Ordering::Relaxed);
    }
    if STATE.load(Ordering::Relaxed) != 1 {
        return None;
    }
    // SAFETY: `listxattrat_known` verified that 465 is listxattrat(int
    // dfd, const char *path, unsigned int at_flags, char *list, size_t
    // size): it reads the NUL-terminated `name` (alive for the call) and
    // writes at most `buf.len()` bytes into `buf`, a valid exclusive
    // borrow; `dir` is a descriptor borrowed for the call.
    let r = unsafe {
        libc::syscall(
            465,
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW as libc::c_uint,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    if r >= 0 {
        return Some(Ok(r as usize));
    }
    let e = io::Error::last_os_error();
    if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) {
        STATE.store(2, Ordering::Relaxed);
        return None;
    }
    Some(Err(e))
}

/// Whether system call 465 is `listxattrat` here (see [`listxattrat`]).
fn listxattrat_known() -> bool {
    if !cfg!(target_arch = "x86_64") || std::path::Path::new("/sys/kernel/dirsync").exists() {
        return false;
    }
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 13)
}

/// The names of `t`'s attributes that `sel` wants, sorted.
pub fn names(t: Target<'_>, sel: Selection) -> io::Result<Vec<CString>> {
    // The usual answer (no names, or a few) fits on the stack.
    let mut small = [0u8; 512];
    let mut big = Vec::new();
    let n = loop {
        let buf: &mut [u8] = if big.is_empty() { &mut small } else { &mut big };
        let r = match t {
            Target::Fd(fd) => rustix::fs::flistxattr(fd, &mut *buf),
            Target::At(dir, name) => match listxattrat(dir, name, buf) {
                Some(r) => r.map_err(|e| {
                    rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO)
                }),
                None => rustix::fs::llistxattr(&*proc_path(dir, name), &mut *buf),
            },
        };
        match r {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => big.resize((big.len() * 4).max(4096), 0),
            // No attribute support on this file system: none.
            Err(rustix::io::Errno::OPNOTSUPP) => break 0,
            Err(e) => return Err(e.into()),
        }
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let buf: &[u8] = if big.is_empty() { &small } else { &big };
    let mut out: Vec<CString> = buf[..n]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty() && sel.wants(s))
        .map(|s| CString::new(s).expect("split at NUL"))
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// The value of `key` of `t`; `None` when it vanished meanwhile.
pub fn get(t: Target<'_>, key: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        let r = match t {
            Target::Fd(fd) => rustix::fs::fgetxattr(fd, key, &mut buf[..]),
            Target::At(dir, name) => {
                rustix::fs::lgetxattr(&*proc_path(dir, name), key, &mut buf[..])
            }
        };
        match r {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::RANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 8, 0),
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Names and values of `t`'s attributes that `sel` wants, sorted.
pub fn read_all(t: Target<'_>, sel: Selection) -> io::Result<Xattrs> {
    let mut out = Vec::new();
    for k in names(t, sel)? {
        if let Some(v) = get(t, &k)? {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// Sets `key` to `value` on `t`.
pub fn set(t: Target<'_>, key: &CStr, value: &[u8]) -> io::Result<()> {
    let flags = rustix::fs::XattrFlags::empty();
    match t {
        Target::Fd(fd) => rustix::fs::fsetxattr(fd, key, value, flags)?,
        Target::At(dir, name) => rustix::fs::lsetxattr(&*proc_path(dir, name), key, value, flags)?,
    }
    Ok(())
}

/// Removes `key` from `t` (absent is fine).
pub fn remove(t: Target<'_>, key: &CStr) -> io::Result<()> {
    let r = match t {
        Target::Fd(fd) => rustix::fs::fremovexattr(fd, key),
        Target::At(dir, name) => rustix::fs::lremovexattr(&*proc_path(dir, name), key),
    };
    match r {
        Ok(()) | Err(rustix::io::Errno::NODATA) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The `security.capability` name: set last (after owner and mode).
pub const CAPABILITY: &[u8] = b"security.capability";

/// What makes `have` equal to `want`: (set, remove). `security.capability`
/// comes last in `set`, so that it is written after everything else.
pub fn diff(want: &Xattrs, have: &Xattrs) -> (Xattrs, Vec<CString>) {
    let mut set: Xattrs = want
        .iter()
        .filter(|(k, v)| !have.iter().any(|(hk, hv)| hk == k && hv == v))
        .cloned()
        .collect();
    set.sort_by_key(|(k, _)| k.as_bytes() == CAPABILITY);
    let remove = have
        .iter()
        .filter(|(k, _)| !want.iter().any(|(wk, _)| wk == k))
        .map(|(k, _)| k.clone())
        .collect();
    (set, remove)
}

/// Makes `t`'s attributes `want` (set, then remove): the first failure is
/// returned after trying the rest.
pub fn apply(t: Target<'_>, set_: &Xattrs, remove_: &[CString]) -> io::Result<()> {
    let mut first = None;
    for k in remove_ {
        if let Err(e) = remove(t, k) {
            first.get_or_insert(e);
        }
    }
    for (k, v) in set_ {
        if let Err(e) = set(t, k, v) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(k: &str, v: &str) -> (CString, Vec<u8>) {
        (CString::new(k).unwrap(), v.as_bytes().to_vec())
    }

    #[test]
    fn selection_splits_acls_from_the_rest() {
        let a = Selection {
            xattrs: false,
            acls: true,
        };
        let x_ = Selection {
            xattrs: true,
            acls: false,
        };
        assert!(a.wants(ACL_ACCESS) && a.wants(ACL_DEFAULT) && !a.wants(b"user.a"));
        assert!(!x_.wants(ACL_ACCESS) && x_.wants(b"user.a") && x_.wants(CAPABILITY));
    }

    #[test]
    fn diff_sets_changed_and_new_capability_last_and_removes_extra() {
        let want = vec![
            x("security.capability", "c"),
            x("user.a", "1"),
            x("user.b", "2"),
        ];
        let have = vec![x("user.a", "1"), x("user.b", "x"), x("user.z", "9")];
        let (set, rm) = diff(&want, &have);
        assert_eq!(set, vec![x("user.b", "2"), x("security.capability", "c")]);
        assert_eq!(rm, vec![CString::new("user.z").unwrap()]);
        assert_eq!(diff(&want, &want), (vec![], vec![]));
    }

    #[test]
    fn user_xattrs_round_trip_on_a_named_entry() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), b"x").unwrap();
        let dir = crate::sys::open_root(d.path()).unwrap();
        use std::os::fd::AsFd;
        let t = Target::At(dir.as_fd(), c"f");
        let all = Selection {
            xattrs: true,
            acls: true,
        };
        set(t, c"user.k", b"v").unwrap();
        assert_eq!(read_all(t, all).unwrap(), vec![x("user.k", "v")]);
        remove(t, c"user.k").unwrap();
        assert!(names(t, all).unwrap().is_empty());
    }
}

//! Extended attributes (`-X`) and POSIX ACLs (`-A`, stored as the
//! `system.posix_acl_access` / `system.posix_acl_default` attributes, copied
//! raw, which Linux accepts as is).
//!
//! An entry is named by a directory descriptor and ONE component: the
//! `l*xattr` calls get the path `/proc/self/fd/<dir>/<name>`, so the last
//! component is never followed and nothing else is resolved inside the
//! trees (Linux 6.12 has no `*xattrat` calls). An open file uses the
//! `f*xattr` calls.
//!
//! Cost on an unchanged tree: one `listxattr` per entry and side. Values
//! are read only when a name list is not empty (most files have none);
//! then each value is read with one `getxattr` into a buffer (no size
//! query first).

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

/// The names of `t`'s attributes that `sel` wants, sorted.
pub fn names(t: Target<'_>, sel: Selection) -> io::Result<Vec<CString>> {
    let mut buf = vec![0u8; 1024];
    let n = loop {
        let r = match t {
            Target::Fd(fd) => rustix::fs::flistxattr(fd, &mut buf[..]),
            Target::At(dir, name) => rustix::fs::llistxattr(&*proc_path(dir, name), &mut buf[..]),
        };
        match r {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            // No attribute support on this file system: none.
            Err(rustix::io::Errno::OPNOTSUPP) => break 0,
            Err(e) => return Err(e.into()),
        }
    };
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

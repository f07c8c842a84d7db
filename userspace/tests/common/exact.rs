//! The comparator of an exact replica (`-a`): besides what
//! [`super::tree_diff`] compares, owner and group, extended attributes
//! (every name the caller can list, ACLs included), the hard-link
//! structure (which names share one file) and the allocation of regular
//! files (512-byte blocks, within one 4 KiB block per 64 KiB of
//! allocation plus two blocks: extents may round differently).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What [`exact_diff`] adds per entry.
#[derive(Debug, Default, PartialEq, Eq)]
struct Extra {
    uid: u32,
    gid: u32,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    ino: u64,
    nlink: u64,
    blocks: u64,
    is_file: bool,
}

/// Names and values of `p`'s extended attributes (not following a link).
pub fn xattrs_of(p: &Path) -> std::io::Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: `c` is NUL-terminated, `names` is writable for its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut out = BTreeMap::new();
    for name in names[..n as usize]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
    {
        let k = CString::new(name).unwrap();
        let mut v = vec![0u8; 64 * 1024];
        // SAFETY: both strings are NUL-terminated, `v` is writable.
        let m = unsafe { libc::lgetxattr(c.as_ptr(), k.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        if m < 0 {
            return Err(std::io::Error::last_os_error());
        }
        v.truncate(m as usize);
        out.insert(name.to_vec(), v);
    }
    Ok(out)
}

fn walk(root: &Path) -> std::io::Result<BTreeMap<Vec<u8>, Extra>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, rel)) = stack.pop() {
        let m = std::fs::symlink_metadata(&dir)?;
        out.insert(rel.clone(), extra(&dir, &m)?);
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let mut r = rel.clone();
            if !r.is_empty() {
                r.push(b'/');
            }
            r.extend_from_slice(e.file_name().as_bytes());
            let m = std::fs::symlink_metadata(e.path())?;
            if m.is_dir() {
                stack.push((e.path(), r));
            } else {
                out.insert(r, extra(&e.path(), &m)?);
            }
        }
    }
    Ok(out)
}

fn extra(p: &Path, m: &std::fs::Metadata) -> std::io::Result<Extra> {
    Ok(Extra {
        uid: m.uid(),
        gid: m.gid(),
        xattrs: xattrs_of(p)?,
        ino: m.ino(),
        nlink: m.nlink(),
        blocks: m.blocks(),
        is_file: m.is_file(),
    })
}

/// The names sharing the file of every regular file with several names.
fn groups(t: &BTreeMap<Vec<u8>, Extra>) -> BTreeMap<Vec<u8>, Vec<Vec<u8>>> {
    let mut by_ino: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for (p, e) in t.iter().filter(|(_, e)| e.is_file && e.nlink > 1) {
        by_ino.entry(e.ino).or_default().push(p.clone());
    }
    let mut out = BTreeMap::new();
    for names in by_ino.into_values() {
        for n in &names {
            out.insert(n.clone(), names.clone());
        }
    }
    out
}

/// Differences between two trees as an exact replica sees them:
/// [`super::tree_diff`] and owner, group, xattrs/ACLs, hard links and
/// allocation. Empty when equal.
pub fn exact_diff(a: &Path, b: &Path) -> std::io::Result<Vec<String>> {
    let mut diffs = super::tree_diff(a, b)?;
    let (ta, tb) = (walk(a)?, walk(b)?);
    let (ga, gb) = (groups(&ta), groups(&tb));
    for (p, ea) in &ta {
        let Some(eb) = tb.get(p) else { continue };
        let show = String::from_utf8_lossy(p);
        if (ea.uid, ea.gid) != (eb.uid, eb.gid) {
            diffs.push(format!(
                "{show}: owner {}:{} vs {}:{}",
                ea.uid, ea.gid, eb.uid, eb.gid
            ));
        }
        if ea.xattrs != eb.xattrs {
            diffs.push(format!(
                "{show}: xattrs {:?} vs {:?}",
                ea.xattrs.keys(),
                eb.xattrs.keys()
            ));
        }
        if ga.get(p) != gb.get(p) {
            diffs.push(format!(
                "{show}: hard links {:?} vs {:?}",
                ga.get(p),
                gb.get(p)
            ));
        }
        let slack = 8 * (ea.blocks.max(eb.blocks) / 128) + 16;
        if ea.is_file && ea.blocks.abs_diff(eb.blocks) > slack {
            diffs.push(format!(
                "{show}: allocation {} vs {} blocks",
                ea.blocks, eb.blocks
            ));
        }
    }
    Ok(diffs)
}

/// Panics with the differences unless `b` is an exact replica of `a`.
#[track_caller]
pub fn assert_exact(a: &Path, b: &Path) {
    let d = exact_diff(a, b).expect("trees readable");
    assert!(d.is_empty(), "not an exact replica:\n  {}", d.join("\n  "));
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Sets the extended attribute `name` of `p` (not following a link).
pub fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    let (c, n) = (cpath(p), CString::new(name).unwrap());
    // SAFETY: both strings are NUL-terminated; `value` is readable for
    // its length.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {name} on {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// Removes the extended attribute `name` of `p`.
pub fn remove_xattr(p: &Path, name: &str) {
    let (c, n) = (cpath(p), CString::new(name).unwrap());
    // SAFETY: both strings are NUL-terminated.
    let r = unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) };
    assert_eq!(
        r,
        0,
        "removexattr {name} on {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// ACL entry tags (`linux/posix_acl.h`).
pub const USER_OBJ: u16 = 0x01;
/// A named user.
pub const USER: u16 = 0x02;
/// The owning group.
pub const GROUP_OBJ: u16 = 0x04;
/// The mask.
pub const MASK: u16 = 0x10;
/// Others.
pub const OTHER: u16 = 0x20;

/// The `system.posix_acl_*` value of `entries` (tag, perm, id; the id
/// only matters for USER/GROUP), as setfacl writes it.
pub fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        let id = if tag == USER || tag == 0x08 {
            id
        } else {
            u32::MAX
        };
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

/// An ACL granting the user `uid` the permissions `perm` (rwx bits).
pub fn acl_for_user(uid: u32, perm: u16) -> Vec<u8> {
    acl(&[
        (USER_OBJ, 7, 0),
        (USER, perm, uid),
        (GROUP_OBJ, 5, 0),
        (MASK, 7, 0),
        (OTHER, 5, 0),
    ])
}

/// A v2 `security.capability` value: cap_net_raw, permitted and effective.
pub const CAP_NET_RAW: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// A scratch directory on tmpfs: /dev/shm on the host, $TMPDIR (a tmpfs
/// /tmp) in the test VM.
pub fn tmpfs_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let b = tempfile::Builder::new()
        .prefix("dirsync-fid-")
        .tempdir_in(shm);
    b.unwrap_or_else(|_| {
        tempfile::Builder::new()
            .prefix("dirsync-fid-")
            .tempdir()
            .unwrap()
    })
}

/// Writes `len` bytes of which only three 4 KiB extents (start, middle,
/// end) hold data: a sparse file.
pub fn write_sparse(p: &Path, len: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(p).unwrap();
    f.set_len(len).unwrap();
    for (i, off) in [0, len / 2 / 4096 * 4096, len - 4096]
        .into_iter()
        .enumerate()
    {
        f.write_all_at(&[0x5a ^ i as u8; 4096], off).unwrap();
    }
}

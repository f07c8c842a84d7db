//! Owner and group (`-o`, `-g`): applying them, and mapping ids between
//! the two sides.
//!
//! Like rsync, ids are mapped by NAME unless `--numeric-ids`: SRC's uid is
//! turned into a user name with SRC's user database and that name into a
//! uid with DST's (a name unknown on either side keeps its number). For a
//! local replica both sides share this machine's database (`getpwuid_r`,
//! `getpwnam_r` through NSS), so the mapping is the identity and costs one
//! lookup per distinct id (cached); the split into "name on the SRC side"
//! and "id on the DST side" ([`IdMap::map_uid`]) is what a remote replica
//! needs, whose DST side answers with ITS database.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::Mutex;

use rustix::fs::{AtFlags, Gid, Uid};

/// Sets owner and/or group of an open file (`None`: unchanged).
pub fn chown_fd(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let (u, g) = (uid.map(Uid::from_raw), gid.map(Gid::from_raw));
    Ok(rustix::fs::fchown(fd, u, g)?)
}

/// Sets owner and/or group of `name` in `dir`, never following a symlink.
pub fn chown_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    uid: Option<u32>,
    gid: Option<u32>,
) -> io::Result<()> {
    let (u, g) = (uid.map(Uid::from_raw), gid.map(Gid::from_raw));
    Ok(rustix::fs::chownat(
        dir,
        name,
        u,
        g,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// Which database a lookup asks.
#[derive(Clone, Copy)]
enum Db {
    User,
    Group,
}

/// The name of `id` in the local database, if any.
fn name_of(db: Db, id: u32) -> Option<CString> {
    let mut buf = vec![0u8; 4096];
    let ptr = buf.as_mut_ptr().cast::<libc::c_char>();
    let mut result: *mut libc::c_void = std::ptr::null_mut();
    match db {
        Db::User => {
            // SAFETY: all-zero is a valid `passwd` (null pointers, 0s).
            let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
            let res = (&mut result as *mut *mut libc::c_void).cast::<*mut libc::passwd>();
            // SAFETY: `pw`, `buf` (of the given length) and `res` are valid
            // for writes during the call; getpwuid_r stores into them only.
            let r = unsafe { libc::getpwuid_r(id, &mut pw, ptr, buf.len(), res) };
            // SAFETY: on success with a non-null result, `pw.pw_name`
            // points to a NUL-terminated string inside `buf`, alive here.
            (r == 0 && !result.is_null()).then(|| unsafe { CStr::from_ptr(pw.pw_name) }.to_owned())
        }
        Db::Group => {
            // SAFETY: all-zero is a valid `group` (null pointers, 0s).
            let mut gr: libc::group = unsafe { std::mem::zeroed() };
            let res = (&mut result as *mut *mut libc::c_void).cast::<*mut libc::group>();
            // SAFETY: as for getpwuid_r.
            let r = unsafe { libc::getgrgid_r(id, &mut gr, ptr, buf.len(), res) };
            // SAFETY: as above, `gr.gr_name` points into `buf`.
            (r == 0 && !result.is_null()).then(|| unsafe { CStr::from_ptr(gr.gr_name) }.to_owned())
        }
    }
}

/// The id of `name` in the local database, if any.
fn id_of(db: Db, name: &CStr) -> Option<u32> {
    let mut buf = vec![0u8; 4096];
    let ptr = buf.as_mut_ptr().cast::<libc::c_char>();
    let mut result: *mut libc::c_void = std::ptr::null_mut();
    match db {
        Db::User => {
            // SAFETY: all-zero is a valid `passwd`.
            let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
            let res = (&mut result as *mut *mut libc::c_void).cast::<*mut libc::passwd>();
            // SAFETY: `name` is NUL-terminated; the out-parameters are
            // valid for writes during the call.
            let r = unsafe { libc::getpwnam_r(name.as_ptr(), &mut pw, ptr, buf.len(), res) };
            (r == 0 && !result.is_null()).then_some(pw.pw_uid)
        }
        Db::Group => {
            // SAFETY: all-zero is a valid `group`.
            let mut gr: libc::group = unsafe { std::mem::zeroed() };
            let res = (&mut result as *mut *mut libc::c_void).cast::<*mut libc::group>();
            // SAFETY: as for getpwnam_r.
            let r = unsafe { libc::getgrnam_r(name.as_ptr(), &mut gr, ptr, buf.len(), res) };
            (r == 0 && !result.is_null()).then_some(gr.gr_gid)
        }
    }
}

/// The id of a user (`group` false) or group `name` in this machine's
/// database, if any.
pub fn local_id(group: bool, name: &CStr) -> Option<u32> {
    id_of(if group { Db::Group } else { Db::User }, name)
}

/// The DST side's ids of SRC's names when DST is on another machine
/// (whose user database is its own).
pub trait Resolve: Send + Sync {
    /// DST's id of the user (group, `group`) SRC calls `name` (SRC's id
    /// `id`); `id` when DST has no such name.
    fn id(&self, group: bool, id: u32, name: &CStr) -> u32;
}

/// SRC ids to DST ids (see the module docs), cached.
#[derive(Default)]
pub struct IdMap {
    numeric: bool,
    /// DST's database, when not this machine's.
    remote: Option<std::sync::Arc<dyn Resolve>>,
    users: Mutex<HashMap<u32, u32>>,
    groups: Mutex<HashMap<u32, u32>>,
    /// The last mapping of each database (SRC id << 32 | DST id; 0 for
    /// none yet: 0 maps to 0 anyway), read without a lock: most entries
    /// of a tree share an owner.
    last: [std::sync::atomic::AtomicU64; 2],
}

impl IdMap {
    /// By name, or by number when `numeric`.
    pub fn new(numeric: bool) -> IdMap {
        IdMap {
            numeric,
            ..IdMap::default()
        }
    }

    /// DST's names are resolved by `r` (another machine's database).
    pub fn set_remote(&mut self, r: std::sync::Arc<dyn Resolve>) {
        self.remote = Some(r);
    }

    fn map(&self, db: Db, id: u32) -> u32 {
        use std::sync::atomic::Ordering::Relaxed;
        if self.numeric || id == 0 {
            return id;
        }
        let last = &self.last[db as usize];
        let l = last.load(Relaxed);
        if (l >> 32) as u32 == id {
            return l as u32;
        }
        let cache = match db {
            Db::User => &self.users,
            Db::Group => &self.groups,
        };
        let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
        let mapped = *c.entry(id).or_insert_with(|| match &self.remote {
            // SRC's name, once per distinct id, to DST's database.
            Some(r) => name_of(db, id).map_or(id, |n| r.id(matches!(db, Db::Group), id, &n)),
            None => name_of(db, id).and_then(|n| id_of(db, &n)).unwrap_or(id),
        });
        last.store((u64::from(id) << 32) | u64::from(mapped), Relaxed);
        mapped
    }

    /// The DST uid for SRC's `uid`.
    pub fn map_uid(&self, uid: u32) -> u32 {
        self.map(Db::User, uid)
    }

    /// The DST gid for SRC's `gid`.
    pub fn map_gid(&self, gid: u32) -> u32 {
        self.map(Db::Group, gid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_name_mapping_is_the_identity_and_unknown_ids_keep_their_number() {
        let m = IdMap::new(false);
        assert_eq!(m.map_uid(0), 0);
        assert_eq!(m.map_gid(0), 0);
        // Whatever the database holds (the test VM has none), a name maps
        // back to its own id on one machine.
        if let Some(n) = name_of(Db::User, 65534) {
            assert_eq!(id_of(Db::User, &n), Some(65534));
        }
        assert_eq!(m.map_uid(65534), 65534);
        // An id no database knows keeps its number.
        assert_eq!(m.map_uid(3_999_999_999), 3_999_999_999);
        assert_eq!(IdMap::new(true).map_uid(12345), 12345);
    }
}

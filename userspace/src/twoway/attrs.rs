//! The attributes of `-o`, `-g` and `-X` in two-way mode: owner, group
//! and the `user.*` extended attributes of files and directories (not of
//! symlinks, which Linux gives no `user.*` attributes). A scan records a
//! digest of them per path ([`digest`], kept in the archive), so that an
//! attribute-only change on one side is seen and carried over
//! ([`read`], [`write`]) without copying content.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::BorrowedFd;

use crate::attrs::owner;
use crate::attrs::xattr::{self, Selection, Target, Xattrs};

/// Which attributes are synced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttrSel {
    /// `-o`.
    pub owner: bool,
    /// `-g`.
    pub group: bool,
    /// `-X` (`user.*` names only).
    pub xattrs: bool,
}

impl AttrSel {
    /// The selection of `opts`.
    pub fn of(opts: &crate::sync::Options) -> AttrSel {
        AttrSel {
            owner: opts.owner,
            group: opts.group,
            xattrs: opts.xattrs,
        }
    }

    /// Whether anything is selected.
    pub fn any(&self) -> bool {
        self.owner || self.group || self.xattrs
    }
}

/// The selected attributes of one entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Owner (`-o`).
    pub uid: Option<u32>,
    /// Group (`-g`).
    pub gid: Option<u32>,
    /// `user.*` attributes, sorted (`-X`).
    pub xattrs: Option<Xattrs>,
}

/// The most `user.*` attributes read per entry (a hostile tree cannot
/// grow the digest's input without bound: the kernel bounds each value
/// at 64 KiB and the list at 64 KiB).
const MAX_XATTRS: usize = 1024;

/// Reads the selected attributes of `name` in `dir`, and its ctime (ns).
pub fn read(dir: BorrowedFd<'_>, name: &CStr, sel: AttrSel) -> io::Result<(Attrs, i64)> {
    let st = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    let ctime = (st.st_ctime as i64)
        .saturating_mul(1_000_000_000)
        .saturating_add(st.st_ctime_nsec as i64);
    let mut a = Attrs {
        uid: sel.owner.then_some(st.st_uid),
        gid: sel.group.then_some(st.st_gid),
        xattrs: None,
    };
    if sel.xattrs {
        let t = Target::At(dir, name);
        let all = Selection {
            xattrs: true,
            acls: false,
        };
        let mut out = Vec::new();
        for k in xattr::names(t, all)? {
            if !k.as_bytes().starts_with(b"user.") {
                continue;
            }
            if out.len() >= MAX_XATTRS {
                return Err(io::Error::other("more than 1024 user.* attributes"));
            }
            if let Some(v) = xattr::get(t, &k)? {
                out.push((k, v));
            }
        }
        out.sort();
        a.xattrs = Some(out);
    }
    Ok((a, ctime))
}

/// A digest of `a` (FNV-1a, 64 bits: stable across builds, the archive
/// keeps it); never 0, which means "nothing selected".
pub fn digest(a: &Attrs) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    let mut field = |tag: u8, bytes: &[u8]| {
        eat(&[tag]);
        eat(&(bytes.len() as u64).to_le_bytes());
        eat(bytes);
    };
    if let Some(u) = a.uid {
        field(b'u', &u.to_le_bytes());
    }
    if let Some(g) = a.gid {
        field(b'g', &g.to_le_bytes());
    }
    if let Some(x) = &a.xattrs {
        for (k, v) in x {
            field(b'k', k.as_bytes());
            field(b'v', v);
        }
        field(b'x', &(x.len() as u64).to_le_bytes());
    }
    h.max(1)
}

/// Makes `name` in `dir` have `want` (owner and group first, then the
/// `user.*` attributes set and removed); the first failure is returned.
pub fn write(dir: BorrowedFd<'_>, name: &CStr, want: &Attrs) -> io::Result<()> {
    if want.uid.is_some() || want.gid.is_some() {
        owner::chown_at(dir, name, want.uid, want.gid)?;
    }
    if let Some(w) = &want.xattrs {
        let (have, _) = read(
            dir,
            name,
            AttrSel {
                xattrs: true,
                ..AttrSel::default()
            },
        )?;
        let have = have.xattrs.unwrap_or_default();
        let (set, remove): (Xattrs, Vec<CString>) = xattr::diff(w, &have);
        xattr::apply(Target::At(dir, name), &set, &remove)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(ino: u64, attrs: u64, ctime: i64) -> crate::twoway::reconcile::State {
        crate::twoway::reconcile::State {
            kind: crate::twoway::reconcile::Type::File,
            size: 5,
            mtime: 100,
            perm: 0o644,
            ino,
            target: Vec::new(),
            attrs,
            ctime,
        }
    }

    /// The reconciler's cases of the digest (beside its table in
    /// `reconcile/tests.rs`): changed on one side only → attributes, no
    /// copy; differently on both → a metadata conflict won by the newer
    /// ctime, A or B.
    #[test]
    fn reconcile_cases_of_the_digest() {
        use crate::twoway::reconcile::{reconcile, Action, ConflictKind, Policy, Side};
        let arch = file(10, 1, 0);
        let mut never = || panic!("content compared for an attribute change");
        let one = reconcile(
            Some(&arch),
            20,
            Some(&file(10, 1, 5)),
            Some(&file(20, 77, 6)),
            Policy::KeepBoth,
            &mut never,
        );
        assert_eq!(one, Action::Attrs(Side::B));
        for (ca, cb, w) in [(1_000, 2_000, Side::B), (3_000, 2_000, Side::A)] {
            let mut same = || true;
            let both = reconcile(
                Some(&arch),
                20,
                Some(&file(10, 5, ca)),
                Some(&file(20, 6, cb)),
                Policy::KeepBoth,
                &mut same,
            );
            assert_eq!(
                both,
                Action::Conflict {
                    winner: w,
                    what: ConflictKind::Metadata
                }
            );
        }
    }

    #[test]
    fn digest_tells_fields_apart() {
        let x = |k: &str, v: &str| Some(vec![(CString::new(k).unwrap(), v.as_bytes().to_vec())]);
        let a = Attrs {
            uid: Some(1),
            ..Attrs::default()
        };
        let b = Attrs {
            gid: Some(1),
            ..Attrs::default()
        };
        assert_ne!(digest(&a), digest(&b));
        let c = Attrs {
            xattrs: x("user.a", "bc"),
            ..Attrs::default()
        };
        let d = Attrs {
            xattrs: x("user.ab", "c"),
            ..Attrs::default()
        };
        assert_ne!(digest(&c), digest(&d));
        assert_eq!(digest(&c), digest(&c.clone()));
        assert_ne!(digest(&Attrs::default()), 0);
    }
}

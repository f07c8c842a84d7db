//! The receiver's own rules ([`Policy`]): the side that holds DST obeys
//! its user's options, not the engine's requests. Built from the
//! receiving side's options (a pull: the local user's; a push: the
//! server's setup), it is checked on every message that would change
//! DST; a message that breaks it is a [`Violation`]: the agent stops and
//! nothing further is written.
//!
//! Every rule lets through what an honest engine with the same options
//! sends (see `sync::walk`, `sync::install`, `sync::decide`):
//!
//! * `-n`: no change at all. An honest dry run only opens, lists, stats,
//!   compares (`--checksum`: `FileBegin` with `compare`, its data and
//!   `CompareEnd`) and asks for the final barrier.
//! * `--no-delete`: no removal of an entry SRC lacks. The engine still
//!   replaces an entry by one of another type (as a local `--no-delete`
//!   run does): installs over a directory (`Over::Tree`), a rename over
//!   an existing entry (the watcher's), and the `Remove` of an entry
//!   (a non-directory) followed by the `CreateDir` of the same name: every
//!   `Remove` is held ([`Pending`]) until that `CreateDir` comes, and a
//!   held removal left at the `Close` of its directory, the barrier or
//!   the end is a violation (it was never carried out).
//! * no FIFO, socket or device without `--specials` (the decoder already
//!   refuses any other file type);
//! * `--exclude`: no change to an excluded path (matched as the local
//!   engine does, `crate::exclude`) nor below an excluded directory;
//! * `--max-size`: a larger file is not received (its stream is dropped
//!   silently: the honest engine skipped and reported it already);
//! * set-id bits ([`Policy::set_id`]): over the protocol the receiver
//!   does not know the source's owner, so they are cleared on what it
//!   receives (not on directories), as a `chown` would, unless the
//!   receiving user asked for owners (`-o`: set-user-ID kept) and groups
//!   (`-g`: set-group-ID kept) to be SRC's;
//! * `-H -A -X -o -g` (`remote::protocol::fidelity`): no hard link, no
//!   owner or group, no extended attribute outside what the receiver's
//!   own options sync (`-X`: every namespace its user may write, `-A`:
//!   the ACL names).

use std::collections::HashSet;
use std::ffi::{CStr, CString};

use crate::exclude::{Excludes, PatternError};
use crate::sync::Options;

/// A peer broke the protocol or the receiver's rules.
#[derive(Debug, thiserror::Error)]
#[error("protocol error: {0}")]
pub struct Violation(pub String);

/// A violation of a rule: what was refused, and where (escaped, at most
/// its last kilobyte shown).
pub fn refused(what: &str, path: &[u8]) -> Violation {
    let shown = &path[path.len().saturating_sub(1024)..];
    let mut p = String::new();
    let _ = crate::report::write_human(&mut p, shown);
    let cut = if shown.len() < path.len() { "..." } else { "" };
    Violation(format!("refused {what}: '{cut}{p}'"))
}

/// Most removals held at once under `--no-delete` (each waits for its
/// `CreateDir`; the engine sends it right after).
pub const MAX_PENDING: usize = 1024;

/// The receiver's rules (see the module docs).
pub struct Policy {
    /// `-n`: nothing changes.
    pub dry_run: bool,
    /// `--no-delete`.
    pub no_delete: bool,
    /// `--specials`.
    pub specials: bool,
    /// `--exclude`.
    pub excludes: Excludes,
    /// `--max-size`.
    pub max_size: Option<u64>,
    /// `-H`.
    pub hard_links: bool,
    /// `-o`.
    pub owner: bool,
    /// `-g`.
    pub group: bool,
    /// `-X`/`-A`: the attribute names synced.
    pub sel: crate::attrs::xattr::Selection,
    /// `--numeric-ids`.
    pub numeric_ids: bool,
}

impl Policy {
    /// The rules of the receiving user's options `o`.
    pub fn of(o: &Options) -> Result<Policy, PatternError> {
        Ok(Policy {
            dry_run: o.dry_run,
            no_delete: o.no_delete,
            specials: o.specials,
            excludes: Excludes::new(&o.excludes)?,
            max_size: o.max_size,
            hard_links: o.hard_links,
            owner: o.owner,
            group: o.group,
            sel: crate::attrs::xattr::Selection {
                xattrs: o.xattrs,
                acls: o.acls,
            },
            numeric_ids: o.numeric_ids,
        })
    }

    /// Whether listings carry owner, group and link count (`-H -o -g`).
    pub fn ids(&self) -> bool {
        self.hard_links || self.owner || self.group
    }

    /// Permission bits `perm` of a received non-directory: set-user-ID
    /// only with `-o`, set-group-ID only with `-g` (see the module docs).
    pub fn set_id(&self, perm: u32) -> u32 {
        let mut keep = 0;
        if self.owner {
            keep |= libc::S_ISUID;
        }
        if self.group {
            keep |= libc::S_ISGID;
        }
        perm & !((libc::S_ISUID | libc::S_ISGID) & !keep)
    }

    /// An attribute change (`what`) at `path`: the names must be ones
    /// this side's options sync.
    pub fn xattr_names<'a>(
        &self,
        names: impl IntoIterator<Item = &'a CStr>,
        path: &[u8],
    ) -> Result<(), Violation> {
        for n in names {
            if !self.sel.wants(n.to_bytes()) {
                let what = match n.to_bytes().starts_with(b"system.posix_acl") {
                    true => "an ACL without -A",
                    false => "an extended attribute without -X",
                };
                return Err(refused(what, path));
            }
        }
        Ok(())
    }

    /// A change (`what`) at `path`: refused under `-n`.
    pub fn change(&self, what: &str, path: &[u8]) -> Result<(), Violation> {
        if self.dry_run {
            return Err(refused(&format!("{what} in a dry run (-n)"), path));
        }
        Ok(())
    }

    /// Whether `path` (relative to the root, the entry's type unknown:
    /// a removal) is excluded whatever its type. The engine matches a
    /// removal with the type of one side or the other (DST's entry
    /// alone, or SRC's directory or special file replacing it), so only
    /// a path excluded as both is surely not the engine's.
    pub fn excluded_any_type(&self, path: &[u8]) -> bool {
        self.excluded(path, false) && self.excluded(path, true)
    }

    /// Whether `path` (relative to the root; a directory when `is_dir`)
    /// matches `--exclude`.
    pub fn excluded(&self, path: &[u8], is_dir: bool) -> bool {
        if self.excludes.is_empty() || path.is_empty() {
            return false;
        }
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        self.excludes.is_excluded(path, name, is_dir)
    }

    /// Whether a file of `size` bytes is received (`--max-size`).
    pub fn takes_size(&self, size: u64) -> bool {
        self.max_size.map_or(true, |m| size <= m)
    }
}

/// Permission bits `perm` of a non-directory received from a peer:
/// without set-user-ID and set-group-ID (the receiver does not know the
/// source's owner and group: see the module docs).
pub fn clear_set_id(perm: u32) -> u32 {
    perm & !(libc::S_ISUID | libc::S_ISGID)
}

/// Removals held under `--no-delete` until the `CreateDir` that replaces
/// the removed entry (see the module docs); at most [`MAX_PENDING`].
#[derive(Default)]
pub struct Pending {
    held: HashSet<(u32, CString)>,
}

impl Pending {
    /// Holds the removal of `name` in handle `id`.
    pub fn hold(&mut self, id: u32, name: CString, path: &[u8]) -> Result<(), Violation> {
        if self.held.len() >= MAX_PENDING {
            return Err(refused("a removal under --no-delete", path));
        }
        self.held.insert((id, name));
        Ok(())
    }

    /// Takes the held removal of `name` in `id`, if any.
    pub fn take(&mut self, id: u32, name: &CStr) -> bool {
        self.held.remove(&(id, name.to_owned()))
    }

    /// A held removal of handle `id` (`None`: of any), that was never
    /// carried out: the engine removed an entry SRC lacks.
    pub fn left(&self, id: Option<u32>) -> Option<&CString> {
        self.held
            .iter()
            .find(|(h, _)| id.map_or(true, |i| i == *h))
            .map(|(_, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_of_the_options() {
        let o = Options {
            excludes: vec!["*.o".into(), "cache/".into()],
            max_size: Some(10),
            ..Options::default()
        };
        let p = Policy::of(&o).unwrap();
        assert!(p.excluded(b"a/b.o", false));
        assert!(p.excluded(b"cache", true));
        assert!(!p.excluded(b"cache", false));
        assert!(p.excluded_any_type(b"x.o"));
        assert!(!p.excluded_any_type(b"cache"));
        assert!(p.takes_size(10) && !p.takes_size(11));
        assert!(p.change("x", b"a").is_ok());
        let dry = Policy::of(&Options {
            dry_run: true,
            ..Options::default()
        })
        .unwrap();
        assert!(dry.change("x", b"a").is_err());
        assert_eq!(clear_set_id(0o6755), 0o755);
        assert_eq!(clear_set_id(0o1777), 0o1777);
        // Set-id bits of received files: only what -o / -g ask for.
        assert_eq!(p.set_id(0o6755), 0o755);
        let with = |owner, group| Policy {
            owner,
            group,
            ..Policy::of(&Options::default()).unwrap()
        };
        assert_eq!(with(true, false).set_id(0o6755), 0o4755);
        assert_eq!(with(false, true).set_id(0o6755), 0o2755);
        assert_eq!(with(true, true).set_id(0o7755), 0o7755);
    }

    #[test]
    fn pending_removals_are_bounded() {
        let mut p = Pending::default();
        for i in 0..MAX_PENDING as u32 {
            p.hold(i, c"x".to_owned(), b"x").unwrap();
        }
        assert!(p.hold(0, c"y".to_owned(), b"y").is_err());
        assert!(p.take(3, c"x"));
        assert!(!p.take(3, c"x"));
        assert!(p.left(Some(4)).is_some() && p.left(Some(3)).is_none());
    }
}

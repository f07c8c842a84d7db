//! The decision for one path of a two-way sync, from the archive (the
//! last synced state) and both sides: a pure function, no system call
//! (content equality, when it matters, is asked of the caller).
//!
//! The rules are those of Balasubramaniam & Pierce ("What is a file
//! synchronizer?"): a path changed on one side only propagates; changed on
//! both sides to identical results is just recorded; otherwise it is a
//! conflict, and nothing anyone wrote is lost. [`keep_surviving_dirs`]
//! then fixes up directories: one deleted (or replaced by a file) on one
//! side while something below it changed on the other survives.

use std::collections::HashSet;

/// The type of an entry, as far as two-way sync cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
}

/// The state of one entry on one side (as scanned), or in the archive
/// (where `ino` is the side's inode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// Type.
    pub kind: Type,
    /// Size (files), else 0.
    pub size: u64,
    /// mtime in nanoseconds since the epoch.
    pub mtime: i64,
    /// Permission bits (`0o7777`; 0 for symlinks).
    pub perm: u32,
    /// Inode number.
    pub ino: u64,
    /// Symlink target (empty for others).
    pub target: Vec<u8>,
    /// A digest of the attributes `-o`, `-g` and `-X` select (owner,
    /// group, `user.*` extended attributes; [`crate::twoway::attrs`]),
    /// 0 when none is selected and for symlinks.
    pub attrs: u64,
    /// The change time in nanoseconds, when known (else 0: the archive
    /// does not keep it): the newer wins a metadata conflict.
    pub ctime: i64,
}

/// One of the two replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The first root (`A`).
    A,
    /// The second root (`B`).
    B,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// `--conflict`: who wins a conflict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// The newer mtime keeps the name, the other becomes a conflict copy.
    #[default]
    KeepBoth,
    /// The newer mtime wins (the loser is still kept as a conflict copy
    /// unless `--conflict-delete-loser`).
    Newer,
    /// A wins.
    A,
    /// B wins.
    B,
}

/// What a conflict is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictKind {
    /// Different content (or symlink target, or file vs symlink): the
    /// winner keeps the name, the loser becomes a conflict copy.
    Content,
    /// Same content, different permission bits: the winner's attributes
    /// are applied (no copy of the content).
    Metadata,
    /// A directory against a non-directory: the directory keeps the name
    /// (what is below it survives), the other becomes a conflict copy.
    Type,
}

/// What to do with one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do, nothing to record.
    Nothing,
    /// Both sides are identical: record them in the archive.
    Record,
    /// Identical but for the mtime: give the older side (this one) the
    /// newer mtime, then record.
    FixMtime(Side),
    /// Propagate this side's entry to the other side (create or replace).
    Copy(Side),
    /// Only the permission bits changed on this side: apply them to the
    /// other side.
    Attrs(Side),
    /// Delete the entry on this side (deleted on the other, unchanged here).
    Delete(Side),
    /// Gone on both sides: drop the archive's record.
    Forget,
    /// Changed differently on both sides.
    Conflict {
        /// Who keeps the name.
        winner: Side,
        /// What differs.
        what: ConflictKind,
    },
}

/// How one side changed since the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Unchanged,
    Created,
    Deleted,
    Modified,
    /// Only the permission bits.
    Perm,
}

fn change(arch: Option<&State>, cur: Option<&State>) -> Change {
    match (arch, cur) {
        (None, None) => Change::Unchanged,
        (None, Some(_)) => Change::Created,
        (Some(_), None) => Change::Deleted,
        (Some(a), Some(c)) => {
            let content_same = a.kind == c.kind
                && match c.kind {
                    // A directory's size and mtime change with its entries,
                    // which are paths of their own.
                    Type::Dir => true,
                    Type::Symlink => a.target == c.target,
                    Type::File => a.size == c.size && a.mtime == c.mtime && a.ino == c.ino,
                };
            if !content_same {
                Change::Modified
            } else if a.perm != c.perm || a.attrs != c.attrs {
                Change::Perm
            } else {
                Change::Unchanged
            }
        }
    }
}

/// Who wins a conflict between `a` and `b` under `policy` (a directory
/// always keeps its name against a non-directory).
fn winner(a: &State, b: &State, policy: Policy) -> Side {
    match policy {
        Policy::A => Side::A,
        Policy::B => Side::B,
        Policy::KeepBoth | Policy::Newer => {
            if b.mtime > a.mtime {
                Side::B
            } else {
                Side::A
            }
        }
    }
}

/// Who wins a metadata conflict: as [`winner`], but by the newer change
/// time when both sides' are known (an attribute change moves the ctime,
/// not the mtime).
fn meta_winner(a: &State, b: &State, policy: Policy) -> Side {
    match policy {
        Policy::KeepBoth | Policy::Newer if a.ctime != 0 && b.ctime != 0 => {
            if b.ctime > a.ctime {
                Side::B
            } else {
                Side::A
            }
        }
        _ => winner(a, b, policy),
    }
}

/// Compares two present entries that both changed (or that meet on a
/// first run): `same_content` is asked only for two regular files of one
/// size.
fn both_present(
    a: &State,
    b: &State,
    policy: Policy,
    same_content: &mut dyn FnMut() -> bool,
) -> Action {
    if a.kind != b.kind {
        if a.kind == Type::Dir || b.kind == Type::Dir {
            let w = if a.kind == Type::Dir {
                Side::A
            } else {
                Side::B
            };
            return Action::Conflict {
                winner: w,
                what: ConflictKind::Type,
            };
        }
        return Action::Conflict {
            winner: winner(a, b, policy),
            what: ConflictKind::Content,
        };
    }
    let same = match a.kind {
        Type::Dir => true,
        Type::Symlink => a.target == b.target,
        Type::File => a.size == b.size && same_content(),
    };
    if !same {
        return Action::Conflict {
            winner: winner(a, b, policy),
            what: ConflictKind::Content,
        };
    }
    if (a.kind != Type::Symlink && a.perm != b.perm) || a.attrs != b.attrs {
        return Action::Conflict {
            winner: meta_winner(a, b, policy),
            what: ConflictKind::Metadata,
        };
    }
    if a.kind == Type::File && a.mtime != b.mtime {
        return Action::FixMtime(if a.mtime < b.mtime { Side::A } else { Side::B });
    }
    Action::Record
}

/// The action for one path: `arch` is the archive's record (None on a
/// first run or for a new path), `a` and `b` the sides' entries.
/// `same_content` tells whether the two regular files have the same bytes
/// (called at most once, only when both are files of one size that both
/// changed, or meet without a record).
pub fn reconcile(
    arch: Option<&State>,
    arch_ino_b: u64,
    a: Option<&State>,
    b: Option<&State>,
    policy: Policy,
    same_content: &mut dyn FnMut() -> bool,
) -> Action {
    let ca = change(arch, a);
    let arch_b = arch.map(|s| State {
        ino: arch_ino_b,
        ..s.clone()
    });
    let cb = change(arch_b.as_ref(), b);
    use Change::*;
    match (ca, cb) {
        (Unchanged, Unchanged) => Action::Nothing,
        (Deleted, Deleted) => Action::Forget,
        (Deleted, Unchanged) => Action::Delete(Side::B),
        (Unchanged, Deleted) => Action::Delete(Side::A),
        (Perm, Unchanged) => Action::Attrs(Side::A),
        (Unchanged, Perm) => Action::Attrs(Side::B),
        // Modify (or a mode change) against delete: the modification wins.
        (Deleted, _) => Action::Copy(Side::B),
        (_, Deleted) => Action::Copy(Side::A),
        (_, Unchanged) => Action::Copy(Side::A),
        (Unchanged, _) => Action::Copy(Side::B),
        (Created, Created) | (_, _) => match (a, b) {
            (Some(a), Some(b)) => both_present(a, b, policy, same_content),
            (Some(_), None) => Action::Copy(Side::A),
            (None, Some(_)) => Action::Copy(Side::B),
            (None, None) => Action::Forget,
        },
    }
}

/// One planned path, for [`keep_surviving_dirs`].
#[derive(Clone, Debug)]
pub struct Planned {
    /// The path relative to the roots (`/`-separated bytes).
    pub path: Vec<u8>,
    /// Type on A, if present.
    pub a: Option<Type>,
    /// Type on B, if present.
    pub b: Option<Type>,
    /// The decision.
    pub action: Action,
}

fn kind_on(p: &Planned, s: Side) -> Option<Type> {
    match s {
        Side::A => p.a,
        Side::B => p.b,
    }
}

/// The side whose directory the action removes, if it does.
fn removes_dir(p: &Planned) -> Option<Side> {
    match p.action {
        Action::Delete(y) if kind_on(p, y) == Some(Type::Dir) => Some(y),
        Action::Copy(x)
            if kind_on(p, x.other()) == Some(Type::Dir) && kind_on(p, x) != Some(Type::Dir) =>
        {
            Some(x.other())
        }
        _ => None,
    }
}

fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&c| c == b'/') {
        Some(i) => &path[..i],
        None => b"",
    }
}

/// Directories deleted (or replaced by a non-directory) on one side while
/// something below them is kept (changed or new on the other side) are
/// kept: a deletion becomes a copy of the directory, a replacement a type
/// conflict that the directory wins. Unchanged siblings keep their
/// deletion. `plan` must be sorted by path bytes (parents before
/// children).
pub fn keep_surviving_dirs(plan: &mut [Planned]) {
    let mut keep: HashSet<Vec<u8>> = HashSet::new();
    for p in plan.iter_mut().rev() {
        let below = keep.contains(&p.path);
        if below {
            if let Some(y) = removes_dir(p) {
                p.action = match p.action {
                    Action::Delete(_) => Action::Copy(y),
                    _ => Action::Conflict {
                        winner: y,
                        what: ConflictKind::Type,
                    },
                };
            }
        }
        let survives = !matches!(p.action, Action::Delete(_) | Action::Forget);
        if (below || survives) && !p.path.is_empty() {
            keep.insert(parent(&p.path).to_vec());
        }
    }
}

#[cfg(test)]
mod tests;

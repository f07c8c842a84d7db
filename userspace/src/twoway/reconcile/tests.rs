//! The table test of [`super::reconcile`]: every case of the issue's
//! point 2, and the directory fix-up.

use super::*;

fn file(size: u64, mtime: i64, perm: u32, ino: u64) -> State {
    State {
        kind: Type::File,
        size,
        mtime,
        perm,
        ino,
        target: Vec::new(),
        attrs: 0,
        ctime: 0,
    }
}

fn dir(perm: u32, ino: u64) -> State {
    State {
        kind: Type::Dir,
        size: 4096,
        mtime: 7,
        perm,
        ino,
        target: Vec::new(),
        attrs: 0,
        ctime: 0,
    }
}

fn link(target: &[u8], ino: u64) -> State {
    State {
        kind: Type::Symlink,
        size: target.len() as u64,
        mtime: 1,
        perm: 0,
        ino,
        target: target.to_vec(),
        attrs: 0,
        ctime: 0,
    }
}

/// The archived file: inode 10 on A, 20 on B.
fn arch() -> State {
    file(5, 100, 0o644, 10)
}
fn on_a() -> State {
    file(5, 100, 0o644, 10)
}
fn on_b() -> State {
    file(5, 100, 0o644, 20)
}

const YES: bool = true;
const NO: bool = false;

use Action::*;
use Side::{A as SA, B as SB};

#[test]
fn table() {
    let newer_a = file(6, 300, 0o644, 11);
    let newer_b = file(7, 200, 0o644, 21);
    let a_same_content_older = file(6, 250, 0o644, 11);
    let b_same_content_newer = file(6, 350, 0o644, 21);
    let chmod_a = file(5, 100, 0o600, 10);
    let chmod_b = file(5, 100, 0o640, 20);
    let chmod_b_same = file(5, 100, 0o600, 20);
    let d_a = dir(0o755, 30);
    let d_b = dir(0o755, 40);
    // (case, archive, A, B, policy, content equal, expected)
    #[allow(clippy::type_complexity)]
    let cases: Vec<(
        &str,
        Option<State>,
        Option<State>,
        Option<State>,
        Policy,
        bool,
        Action,
    )> = vec![
        (
            "unchanged",
            Some(arch()),
            Some(on_a()),
            Some(on_b()),
            Policy::KeepBoth,
            NO,
            Nothing,
        ),
        (
            "A changed",
            Some(arch()),
            Some(newer_a.clone()),
            Some(on_b()),
            Policy::KeepBoth,
            NO,
            Copy(SA),
        ),
        (
            "B changed",
            Some(arch()),
            Some(on_a()),
            Some(newer_b.clone()),
            Policy::KeepBoth,
            NO,
            Copy(SB),
        ),
        (
            "A replaced, same size and mtime (new inode)",
            Some(arch()),
            Some(file(5, 100, 0o644, 99)),
            Some(on_b()),
            Policy::KeepBoth,
            NO,
            Copy(SA),
        ),
        (
            "both changed identically",
            Some(arch()),
            Some(file(6, 250, 0o644, 11)),
            Some(file(6, 250, 0o644, 21)),
            Policy::KeepBoth,
            YES,
            Record,
        ),
        (
            "both changed identically, mtimes differ: newer recorded on both",
            Some(arch()),
            Some(a_same_content_older.clone()),
            Some(b_same_content_newer.clone()),
            Policy::KeepBoth,
            YES,
            FixMtime(SA),
        ),
        (
            "both changed differently: newer A keeps the name",
            Some(arch()),
            Some(newer_a.clone()),
            Some(newer_b.clone()),
            Policy::KeepBoth,
            NO,
            Conflict {
                winner: SA,
                what: ConflictKind::Content,
            },
        ),
        (
            "both changed differently, same size",
            Some(arch()),
            Some(file(6, 100, 0o644, 11)),
            Some(file(6, 200, 0o644, 21)),
            Policy::KeepBoth,
            NO,
            Conflict {
                winner: SB,
                what: ConflictKind::Content,
            },
        ),
        (
            "both changed differently, --conflict b",
            Some(arch()),
            Some(newer_a.clone()),
            Some(newer_b.clone()),
            Policy::B,
            NO,
            Conflict {
                winner: SB,
                what: ConflictKind::Content,
            },
        ),
        (
            "both changed differently, --conflict a",
            Some(arch()),
            Some(file(1, 1, 0o644, 11)),
            Some(newer_b.clone()),
            Policy::A,
            NO,
            Conflict {
                winner: SA,
                what: ConflictKind::Content,
            },
        ),
        (
            "both changed differently, --conflict newer",
            Some(arch()),
            Some(file(1, 1, 0o644, 11)),
            Some(newer_b.clone()),
            Policy::Newer,
            NO,
            Conflict {
                winner: SB,
                what: ConflictKind::Content,
            },
        ),
        (
            "modified on A, deleted on B",
            Some(arch()),
            Some(newer_a.clone()),
            None,
            Policy::B,
            NO,
            Copy(SA),
        ),
        (
            "deleted on A, modified on B",
            Some(arch()),
            None,
            Some(newer_b.clone()),
            Policy::A,
            NO,
            Copy(SB),
        ),
        (
            "chmod on A, deleted on B",
            Some(arch()),
            Some(chmod_a.clone()),
            None,
            Policy::KeepBoth,
            NO,
            Copy(SA),
        ),
        (
            "deleted on A, unchanged on B",
            Some(arch()),
            None,
            Some(on_b()),
            Policy::KeepBoth,
            NO,
            Delete(SB),
        ),
        (
            "unchanged on A, deleted on B",
            Some(arch()),
            Some(on_a()),
            None,
            Policy::KeepBoth,
            NO,
            Delete(SA),
        ),
        (
            "deleted on both",
            Some(arch()),
            None,
            None,
            Policy::KeepBoth,
            NO,
            Forget,
        ),
        (
            "type change on A (file -> dir), B unchanged",
            Some(arch()),
            Some(d_a.clone()),
            Some(on_b()),
            Policy::KeepBoth,
            NO,
            Copy(SA),
        ),
        (
            "type change on B (file -> symlink), A unchanged",
            Some(arch()),
            Some(on_a()),
            Some(link(b"t", 50)),
            Policy::KeepBoth,
            NO,
            Copy(SB),
        ),
        (
            "type change on A (dir), modified on B: the directory keeps the name",
            Some(arch()),
            Some(d_a.clone()),
            Some(newer_b.clone()),
            Policy::B,
            NO,
            Conflict {
                winner: SA,
                what: ConflictKind::Type,
            },
        ),
        (
            "type change on A (symlink), modified on B",
            Some(arch()),
            Some(link(b"x", 51)),
            Some(newer_b.clone()),
            Policy::KeepBoth,
            NO,
            Conflict {
                winner: SB,
                what: ConflictKind::Content,
            },
        ),
        (
            "symlinks changed to one target",
            Some(link(b"old", 1)),
            Some(link(b"new", 2)),
            Some(link(b"new", 3)),
            Policy::KeepBoth,
            NO,
            Record,
        ),
        (
            "symlinks changed to two targets",
            Some(link(b"old", 1)),
            Some(link(b"x", 2)),
            Some(link(b"y", 3)),
            Policy::KeepBoth,
            NO,
            Conflict {
                winner: SA,
                what: ConflictKind::Content,
            },
        ),
        (
            "symlink retargeted on B",
            Some(link(b"old", 1)),
            Some(link(b"old", 1)),
            Some(link(b"y", 3)),
            Policy::KeepBoth,
            NO,
            Copy(SB),
        ),
        (
            "first run: only on A",
            None,
            Some(newer_a.clone()),
            None,
            Policy::KeepBoth,
            NO,
            Copy(SA),
        ),
        (
            "first run: only on B",
            None,
            None,
            Some(newer_b.clone()),
            Policy::KeepBoth,
            NO,
            Copy(SB),
        ),
        (
            "first run: identical",
            None,
            Some(file(6, 250, 0o644, 11)),
            Some(file(6, 250, 0o644, 21)),
            Policy::KeepBoth,
            YES,
            Record,
        ),
        (
            "first run: identical content, mtimes differ",
            None,
            Some(b_same_content_newer.clone()),
            Some(file(6, 250, 0o644, 21)),
            Policy::KeepBoth,
            YES,
            FixMtime(SB),
        ),
        (
            "first run: different: a conflict, nothing deleted",
            None,
            Some(newer_a.clone()),
            Some(newer_b.clone()),
            Policy::KeepBoth,
            NO,
            Conflict {
                winner: SA,
                what: ConflictKind::Content,
            },
        ),
        (
            "first run: both directories",
            None,
            Some(d_a.clone()),
            Some(d_b.clone()),
            Policy::KeepBoth,
            NO,
            Record,
        ),
        (
            "first run: dir vs file",
            None,
            Some(newer_a.clone()),
            Some(d_b.clone()),
            Policy::KeepBoth,
            NO,
            Conflict {
                winner: SB,
                what: ConflictKind::Type,
            },
        ),
        (
            "attributes only on A (-a family: mode)",
            Some(arch()),
            Some(chmod_a.clone()),
            Some(on_b()),
            Policy::KeepBoth,
            NO,
            Attrs(SA),
        ),
        (
            "attributes only on B",
            Some(arch()),
            Some(on_a()),
            Some(chmod_b.clone()),
            Policy::KeepBoth,
            NO,
            Attrs(SB),
        ),
        (
            "same attribute change on both",
            Some(arch()),
            Some(chmod_a.clone()),
            Some(chmod_b_same),
            Policy::KeepBoth,
            YES,
            Record,
        ),
        (
            "different attribute changes on both: metadata conflict",
            Some(arch()),
            Some(chmod_a.clone()),
            Some(chmod_b.clone()),
            Policy::KeepBoth,
            YES,
            Conflict {
                winner: SA,
                what: ConflictKind::Metadata,
            },
        ),
        (
            "directory mode changed on B",
            Some(dir(0o755, 30)),
            Some(dir(0o755, 30)),
            Some(dir(0o700, 40)),
            Policy::KeepBoth,
            NO,
            Attrs(SB),
        ),
        (
            "directory unchanged (its mtime moved with its entries)",
            Some(dir(0o755, 30)),
            Some(State {
                mtime: 99,
                ..dir(0o755, 30)
            }),
            Some(dir(0o755, 40)),
            Policy::KeepBoth,
            NO,
            Nothing,
        ),
        (
            "directory deleted on A, unchanged on B",
            Some(dir(0o755, 30)),
            None,
            Some(dir(0o755, 40)),
            Policy::KeepBoth,
            NO,
            Delete(SB),
        ),
    ];
    for (name, ar, a, b, policy, eq, want) in cases {
        let arch_b = match (&ar, name) {
            (Some(s), _) if s.kind == Type::Dir => 40,
            (Some(s), _) if s.kind == Type::Symlink => 3,
            _ => 20,
        };
        let mut asked = false;
        let got = reconcile(
            ar.as_ref(),
            arch_b,
            a.as_ref(),
            b.as_ref(),
            policy,
            &mut || {
                asked = true;
                eq
            },
        );
        assert_eq!(got, want, "case: {name}");
        if eq {
            assert!(
                asked,
                "case {name}: content equality was needed and not asked"
            );
        }
    }
}

/// `same_content` is not asked when sizes differ or one side is unchanged
/// (no content read on an unchanged run).
#[test]
fn content_is_read_only_when_needed() {
    let mut asked = 0;
    let mut ask = || {
        asked += 1;
        true
    };
    reconcile(
        Some(&arch()),
        20,
        Some(&on_a()),
        Some(&on_b()),
        Policy::KeepBoth,
        &mut ask,
    );
    let big = file(9, 5, 0o644, 11);
    let small = file(8, 5, 0o644, 21);
    let got = reconcile(
        Some(&arch()),
        20,
        Some(&big),
        Some(&small),
        Policy::KeepBoth,
        &mut ask,
    );
    assert_eq!(
        got,
        Conflict {
            winner: SA,
            what: ConflictKind::Content
        }
    );
    assert_eq!(asked, 0);
}

fn planned(path: &str, a: Option<Type>, b: Option<Type>, action: Action) -> Planned {
    Planned {
        path: path.as_bytes().to_vec(),
        a,
        b,
        action,
    }
}

/// A directory deleted on A while B changed something below it: the
/// changed entry survives with its parents, unchanged siblings go.
#[test]
fn deleted_directory_with_changes_below_survives() {
    let d = Some(Type::Dir);
    let f = Some(Type::File);
    let mut plan = vec![
        planned("d", None, d, Delete(SB)),
        planned("d/e", None, d, Delete(SB)),
        planned("d/e/changed", None, f, Copy(SB)),
        planned("d/e/same", None, f, Delete(SB)),
        planned("d/gone", None, f, Delete(SB)),
        planned("d2", None, d, Delete(SB)),
        planned("d2/x", None, f, Delete(SB)),
        planned("d3", d, None, Delete(SA)),
        planned("d3/new", d, None, Delete(SA)),
        planned("d3/new/f", f, None, Copy(SA)),
    ];
    keep_surviving_dirs(&mut plan);
    let got: Vec<_> = plan
        .iter()
        .map(|p| (String::from_utf8_lossy(&p.path).into_owned(), p.action))
        .collect();
    let want = vec![
        ("d", Copy(SB)),
        ("d/e", Copy(SB)),
        ("d/e/changed", Copy(SB)),
        ("d/e/same", Delete(SB)),
        ("d/gone", Delete(SB)),
        ("d2", Delete(SB)),
        ("d2/x", Delete(SB)),
        ("d3", Copy(SA)),
        ("d3/new", Copy(SA)),
        ("d3/new/f", Copy(SA)),
    ];
    let want: Vec<_> = want.into_iter().map(|(p, a)| (p.to_string(), a)).collect();
    assert_eq!(got, want);
}

/// A directory replaced by a file on A while B added a file in it: a type
/// conflict that the directory wins.
#[test]
fn directory_replaced_by_file_with_new_content_below_is_a_conflict() {
    let mut plan = vec![
        planned("d", Some(Type::File), Some(Type::Dir), Copy(SA)),
        planned("d/new", None, Some(Type::File), Copy(SB)),
        planned("e", Some(Type::File), Some(Type::Dir), Copy(SA)),
        planned("e/old", None, Some(Type::File), Delete(SB)),
    ];
    keep_surviving_dirs(&mut plan);
    assert_eq!(
        plan[0].action,
        Conflict {
            winner: SB,
            what: ConflictKind::Type
        }
    );
    assert_eq!(plan[1].action, Copy(SB));
    assert_eq!(plan[2].action, Copy(SA));
    assert_eq!(plan[3].action, Delete(SB));
}

//! Discovery, selection and the backends on the running kernel.

use super::*;
use std::fs;

fn fake_readdir(abi: Option<&str>, nr: Option<&str>) -> tempfile::TempDir {
    fake_sysfs(abi, "readdir_syscall_nr", nr)
}

#[test]
fn discovers_readdir_only_where_announced() {
    let d = fake_readdir(Some("1\n"), Some("464\n"));
    assert_eq!(discover_readdir(d.path(), "x86_64"), Ok(464));
    // dirsync_stat's file alone does not announce dirsync_readdir.
    let d = fake(Some("1\n"), Some("463\n"));
    match discover_readdir(d.path(), "x86_64") {
        Err(e @ Unavailable::MissingReaddir(_)) => {
            assert!(
                e.to_string().contains("does not provide dirsync_readdir"),
                "{e}"
            );
            assert!(e.to_string().contains("readdir_syscall_nr"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let gone = d.path().join("nope");
    assert!(matches!(
        discover_readdir(&gone, "x86_64"),
        Err(Unavailable::Missing(p)) if p.ends_with("abi_version")
    ));
    let d = fake_readdir(Some("2\n"), Some("464\n"));
    assert_eq!(
        discover_readdir(d.path(), "x86_64"),
        Err(Unavailable::AbiMismatch { kernel: 2, ours: 1 })
    );
    for nr in ["4096\n", "-464\n", "464 \n", "\n", "0x1d0\n"] {
        let d = fake_readdir(Some("1\n"), Some(nr));
        assert!(
            matches!(
                discover_readdir(d.path(), "x86_64"),
                Err(Unavailable::Malformed(..))
            ),
            "{nr:?}"
        );
    }
    let d = fake_readdir(Some("1\n"), Some("464\n"));
    assert_eq!(
        discover_readdir(d.path(), "aarch64"),
        Err(Unavailable::Arch("aarch64"))
    );
}

/// On the running kernel: with dirsync_readdir announced, the batch
/// listing gives exactly what getdents64 + statx gives, field by
/// field; without it, `--stat-backend syscall` is refused and auto
/// lists the portable way.
#[test]
fn the_running_kernel_lists_like_statx() {
    let real = sysfs_dir();
    let t = tempfile::tempdir().unwrap();
    let p = t.path();
    fs::write(p.join("f"), b"hello").unwrap();
    fs::create_dir(p.join("d")).unwrap();
    std::os::unix::fs::symlink("f", p.join("l")).unwrap();
    for i in 0..700 {
        fs::write(p.join(format!("n{i:04}-{}", "x".repeat(i % 200))), b"").unwrap();
    }
    // Hard links, and (as root, as the suites run) other owners.
    fs::hard_link(p.join("f"), p.join("f2")).unwrap();
    for i in 0..20u32 {
        let n = p.join(format!("n{i:04}-{}", "x".repeat(i as usize % 200)));
        if crate::sys::euid() == 0 {
            std::os::unix::fs::chown(&n, Some(1000 + i), Some(2000 + i)).unwrap();
        }
    }
    let sorted_as = |b: &dyn StatBackend, ids: bool| {
        let dir = crate::sys::open_root(p).unwrap();
        let mut v: Vec<_> = b
            .list(dir.as_fd())
            .unwrap()
            .into_iter()
            // The blocks are statx's alone; owner, group and link
            // count are compared when the backend guarantees them.
            .map(|e| {
                let meta = e.meta.unwrap().map(|m| Meta {
                    ids: match ids {
                        true => Ids { blocks: 0, ..m.ids },
                        false => Ids::default(),
                    },
                    ..m
                });
                (e.name, e.d_type, meta)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let sorted = |b: &dyn StatBackend| sorted_as(b, false);
    let portable = sorted(&Statx);
    assert_eq!(portable.len(), 704);
    let with_ids = sorted_as(&Statx, true);
    let f2 = with_ids.iter().find(|e| e.0.as_bytes() == b"f2").unwrap();
    assert_eq!(f2.2.unwrap().ids.nlink, 2);
    match discover_readdir(&real, std::env::consts::ARCH) {
        Ok(nr) => {
            let b = select(BackendChoice::Syscall, &real).expect("announced: usable");
            let want = format!("dirsync_readdir (syscall {nr}) + dirsync_stat");
            assert!(b.describe().starts_with(&want), "{}", b.describe());
            assert_eq!(sorted(b.as_ref()), portable);
            // This series' kernels fill owner, group and link count:
            // an engine needing them keeps the batch listing, and gets
            // exactly statx's values.
            let b = select_for(BackendChoice::Auto, true, &real).unwrap();
            let want = format!("dirsync_readdir (syscall {nr}) + dirsync_stat (syscall");
            assert!(b.describe().starts_with(&want), "{}", b.describe());
            assert!(b.describe().contains("with owner, group, links"));
            assert_eq!(sorted_as(b.as_ref(), true), with_ids);
        }
        Err(_) => {
            let err = select(BackendChoice::Syscall, &real)
                .err()
                .expect("refused");
            assert!(err.to_string().contains("does not provide"), "{err}");
            let b = select(BackendChoice::Auto, &real).unwrap();
            assert!(!b.describe().contains("dirsync_readdir"));
            assert_eq!(sorted(b.as_ref()), portable);
            // Without the calls, an engine needing the ids gets statx,
            // whatever it asked for.
            for choice in [BackendChoice::Auto, BackendChoice::Syscall] {
                let b = select_for(choice, true, &real).unwrap();
                assert_eq!(b.describe(), "statx");
                assert_eq!(sorted_as(b.as_ref(), true), with_ids);
            }
        }
    }
}

fn fake(abi: Option<&str>, nr: Option<&str>) -> tempfile::TempDir {
    fake_sysfs(abi, "syscall_nr", nr)
}

/// A sysfs directory with `abi_version` and the number file `nr_file`
/// (each only when given).
fn fake_sysfs(abi: Option<&str>, nr_file: &str, nr: Option<&str>) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    if let Some(a) = abi {
        fs::write(d.path().join("abi_version"), a).unwrap();
    }
    if let Some(n) = nr {
        fs::write(d.path().join(nr_file), n).unwrap();
    }
    d
}

#[test]
fn discovers_a_matching_kernel() {
    let d = fake(Some("1\n"), Some("463\n"));
    assert_eq!(
        discover(d.path(), "x86_64"),
        Ok(SyscallInfo { nr: 463, abi: 1 })
    );
    // No trailing newline is accepted too.
    let d = fake(Some("1"), Some("470"));
    assert_eq!(discover(d.path(), "x86_64").unwrap().nr, 470);
}

#[test]
fn missing_dir_or_files_mean_no_syscall() {
    let d = tempfile::tempdir().unwrap();
    let gone = d.path().join("nope");
    assert!(matches!(
        discover(&gone, "x86_64"),
        Err(Unavailable::Missing(_))
    ));
    let d = fake(Some("1\n"), None);
    match discover(d.path(), "x86_64") {
        Err(Unavailable::Missing(p)) => assert!(p.ends_with("syscall_nr")),
        other => panic!("{other:?}"),
    }
    let d = fake(None, Some("463\n"));
    match discover(d.path(), "x86_64") {
        Err(Unavailable::Missing(p)) => assert!(p.ends_with("abi_version")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn abi_mismatch_is_refused() {
    let d = fake(Some("2\n"), Some("463\n"));
    assert_eq!(
        discover(d.path(), "x86_64"),
        Err(Unavailable::AbiMismatch { kernel: 2, ours: 1 })
    );
    let d = fake(Some("0\n"), Some("463\n"));
    assert!(matches!(
        discover(d.path(), "x86_64"),
        Err(Unavailable::AbiMismatch { .. })
    ));
}

#[test]
fn garbage_is_refused() {
    for (abi, nr) in [
        ("1\n", "-1\n"),
        ("1\n", "463 \n"),
        ("1\n", "0x1cf\n"),
        ("1\n", "\n"),
        ("1\n", "99999\n"),
        ("1\n", "12345678901234567890\n"),
        (" 1\n", "463\n"),
        ("1\n\n", "463\n"),
    ] {
        let d = fake(Some(abi), Some(nr));
        assert!(
            matches!(
                discover(d.path(), "x86_64"),
                Err(Unavailable::Malformed(..))
            ),
            "{abi:?} {nr:?}"
        );
    }
}

#[test]
fn other_architectures_are_refused_before_reading() {
    let d = fake(Some("1\n"), Some("463\n"));
    assert_eq!(
        discover(d.path(), "aarch64"),
        Err(Unavailable::Arch("aarch64"))
    );
}

#[test]
fn select_falls_back_or_errors() {
    let d = tempfile::tempdir().unwrap();
    let gone = d.path().join("nope");
    assert_eq!(
        select(BackendChoice::Auto, &gone).unwrap().describe(),
        "statx"
    );
    assert_eq!(
        select(BackendChoice::Statx, &gone).unwrap().describe(),
        "statx"
    );
    let err = select(BackendChoice::Syscall, &gone)
        .err()
        .expect("must fail");
    assert!(
        matches!(err, SelectError::Unavailable(Unavailable::Missing(_))),
        "{err}"
    );
    assert!(err.to_string().contains("does not provide dirsync_stat"));
    let bad = fake(Some("7\n"), Some("463\n"));
    let err = select(BackendChoice::Syscall, bad.path())
        .err()
        .expect("must fail");
    assert!(
        matches!(
            err,
            SelectError::Unavailable(Unavailable::AbiMismatch { kernel: 7, ours: 1 })
        ),
        "{err}"
    );
    assert_eq!(
        select(BackendChoice::Auto, bad.path()).unwrap().describe(),
        "statx"
    );
}

#[test]
fn sysfs_dir_comes_from_the_header() {
    assert_eq!(sysfs_dir(), PathBuf::from("/sys/kernel/dirsync"));
}

#[test]
fn statx_reports_types_and_missing() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("f"), b"hello").unwrap();
    std::os::unix::fs::symlink("f", d.path().join("l")).unwrap();
    let dir = crate::sys::open_root(d.path()).unwrap();
    use std::os::fd::AsFd;
    let fd = dir.as_fd();
    let f = Statx.stat_at(fd, c"f").unwrap().unwrap();
    assert_eq!((f.kind, f.size), (Kind::File, 5));
    let l = Statx.stat_at(fd, c"l").unwrap().unwrap();
    assert_eq!((l.kind, l.size), (Kind::Symlink, 1));
    assert_eq!(Statx.stat_at(fd, c"missing").unwrap(), None);
    assert_eq!(Statx.stat_fd(fd).unwrap().kind, Kind::Dir);
}

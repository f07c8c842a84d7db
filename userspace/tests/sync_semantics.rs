//! What DST looks like after a run: exactness, deletions, type changes,
//! options, special files, hard links.

mod common;
use common::*;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn json(src: &Path, dst: &Path, extra: &[&str]) -> String {
    let mut a: Vec<&str> = vec!["--json"];
    a.extend_from_slice(extra);
    sync_ok(src, dst, &a)
}

/// A counter of the `--json` summary in `out`.
#[track_caller]
fn summary_field(out: &str, field: &str) -> u64 {
    counter(&json_summary(out), field)
}

#[test]
fn deletions_of_files_links_and_whole_trees() {
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    sync_ok(&src, &dst, &[]);
    // Extra entries in DST, at several levels.
    let d = Dir::open(&dst);
    d.write(b"extra-file", b"x");
    d.symlink(b"extra-link", b"/");
    let e = d.mkdir(b"extra-tree", 0o755);
    e.mkdir(b"a", 0o755).mkdir(b"b", 0o555);
    e.write(b"f", b"f");
    d.sub(b"sub").write(b"extra-in-sub", b"y");
    let out = json(&src, &dst, &[]);
    assert_eq!(summary_field(&out, "deleted"), 7, "{out}");
    assert_trees_equal(&src, &dst);
}

#[test]
fn no_delete_keeps_extra_entries() {
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    sync_ok(&src, &dst, &[]);
    let d = Dir::open(&dst);
    d.write(b"extra-file", b"x");
    d.mkdir(b"extra-tree", 0o755).write(b"f", b"f");
    Dir::open(&src).write(b"new", b"new");
    sync_ok(&src, &dst, &["--no-delete"]);
    assert!(dst.join("extra-file").exists() && dst.join("extra-tree/f").exists());
    assert_eq!(std::fs::read(dst.join("new")).unwrap(), b"new");
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
}

/// Every type change, both ways, including a directory with content
/// replaced by a file.
#[test]
fn type_changes() {
    let (_t, src, dst) = pair();
    let s = Dir::open(&src);
    s.write(b"file2dir", b"f");
    s.write(b"file2link", b"f");
    s.mkdir(b"dir2file", 0o755)
        .mkdir(b"inner", 0o755)
        .write(b"x", b"x");
    s.mkdir(b"dir2link", 0o755).write(b"y", b"y");
    s.symlink(b"link2file", b"somewhere");
    s.symlink(b"link2dir", b"dir2file");
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);

    s.unlink(b"file2dir");
    s.mkdir(b"file2dir", 0o700).write(b"now", b"a dir");
    s.unlink(b"file2link");
    s.symlink(b"file2link", b"target");
    std::fs::remove_dir_all(src.join("dir2file")).unwrap();
    s.write(b"dir2file", b"now a file");
    std::fs::remove_dir_all(src.join("dir2link")).unwrap();
    s.symlink(b"dir2link", b"file2dir");
    s.unlink(b"link2file");
    s.write(b"link2file", b"file now");
    s.unlink(b"link2dir");
    s.mkdir(b"link2dir", 0o755).write(b"z", b"z");
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
}

#[test]
fn mtime_nanoseconds_and_modes_are_exact() {
    let (_t, src, dst) = pair();
    let s = Dir::open(&src);
    for (i, mode) in [0o644u32, 0o600, 0o755, 0o4755, 0o2711, 0o1777, 0o000, 0o444]
        .iter()
        .enumerate()
    {
        let name = format!("f{i}");
        s.write(name.as_bytes(), name.as_bytes());
        s.chmod(name.as_bytes(), *mode);
        s.set_mtime(
            name.as_bytes(),
            1_700_000_000 + i as i64,
            100_000_000 * i as i64 + 7,
        );
    }
    let sub = s.mkdir(b"d", 0o711);
    sub.write(b"x", b"x");
    s.set_mtime(b"d", 1_111_111_111, 222_222_222);
    if !is_root() {
        // Unreadable to us when not root: make it readable, keep the rest.
        s.chmod(b"f6", 0o200);
        s.chmod(b"f6", 0o400);
    }
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
    // Only attributes change: fixed without copying (same inode).
    let ino = Dir::open(&dst).stat(b"f0").unwrap().st_ino;
    s.chmod(b"f0", 0o640);
    s.set_mtime(b"f1", 5, 5);
    let out = json(&src, &dst, &[]);
    // f1's mtime differs: the default comparison (size + mtime) copies it.
    assert_eq!(summary_field(&out, "copied"), 1, "{out}");
    assert_eq!(summary_field(&out, "attrs"), 1, "{out}");
    assert_eq!(Dir::open(&dst).stat(b"f0").unwrap().st_ino, ino);
    assert_trees_equal(&src, &dst);
}

#[test]
fn directories_get_mode_and_mtime_after_their_children() {
    let (_t, src, dst) = pair();
    let s = Dir::open(&src);
    let a = s.mkdir(b"a", 0o755);
    let b = a.mkdir(b"b", 0o755);
    b.write(b"f", b"f");
    a.set_mtime(b"b", 1000, 1);
    s.set_mtime(b"a", 2000, 2);
    // A read-only directory with content: its mode can only be applied last.
    let ro = s.mkdir(b"ro", 0o755);
    ro.write(b"in", b"in");
    s.chmod(b"ro", 0o555);
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
    // Changing a file deep inside changes nothing else in DST.
    b.write(b"f", b"longer");
    b.set_mtime(b"f", 3000, 3);
    a.set_mtime(b"b", 1000, 1);
    let out = json(&src, &dst, &[]);
    assert_eq!(summary_field(&out, "copied"), 1);
    assert_eq!(summary_field(&out, "attrs"), 0, "{out}");
    assert_trees_equal(&src, &dst);
    // New content in the read-only directory.
    s.chmod(b"ro", 0o755);
    ro.write(b"in2", b"in2");
    s.chmod(b"ro", 0o555);
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
}

#[test]
fn size_only_ignores_mtime_but_fixes_it() {
    let (_t, src, dst) = pair();
    let s = Dir::open(&src);
    s.write(b"f", b"aaaa");
    sync_ok(&src, &dst, &[]);
    let ino = Dir::open(&dst).stat(b"f").unwrap().st_ino;
    s.write(b"f", b"bbbb"); // same size, new mtime
    let out = json(&src, &dst, &["--size-only"]);
    assert_eq!(summary_field(&out, "copied"), 0, "{out}");
    assert_eq!(std::fs::read(dst.join("f")).unwrap(), b"aaaa");
    assert_eq!(Dir::open(&dst).stat(b"f").unwrap().st_ino, ino);
    // A size change is copied.
    s.write(b"f", b"ccccc");
    let out = json(&src, &dst, &["--size-only"]);
    assert_eq!(summary_field(&out, "copied"), 1, "{out}");
    assert_eq!(std::fs::read(dst.join("f")).unwrap(), b"ccccc");
}

#[test]
fn checksum_compares_content() {
    let (_t, src, dst) = pair();
    let s = Dir::open(&src);
    s.write(b"f", b"aaaa");
    s.write(b"g", b"same");
    sync_ok(&src, &dst, &[]);
    // Same size and mtime but different content: only -c notices.
    s.write(b"f", b"bbbb");
    s.set_mtime(b"f", 1_000, 0);
    Dir::open(&dst).set_mtime(b"f", 1_000, 0);
    let out = json(&src, &dst, &[]);
    assert_eq!(summary_field(&out, "copied"), 0);
    assert_eq!(std::fs::read(dst.join("f")).unwrap(), b"aaaa");
    let out = json(&src, &dst, &["-c"]);
    assert_eq!(summary_field(&out, "copied"), 1, "{out}");
    assert_eq!(std::fs::read(dst.join("f")).unwrap(), b"bbbb");
    // Same content, different mtime: -c fixes the mtime without a copy.
    let ino = Dir::open(&dst).stat(b"g").unwrap().st_ino;
    s.set_mtime(b"g", 77, 77);
    let out = json(&src, &dst, &["--checksum"]);
    assert_eq!(summary_field(&out, "copied"), 0, "{out}");
    assert_eq!(summary_field(&out, "attrs"), 1, "{out}");
    assert_eq!(Dir::open(&dst).stat(b"g").unwrap().st_ino, ino);
    assert_trees_equal(&src, &dst);
}

#[test]
fn no_recursive_syncs_the_top_level_only() {
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    std::fs::create_dir(&dst).unwrap();
    std::fs::create_dir(dst.join("keep-dir")).unwrap();
    std::fs::write(dst.join("extra"), b"x").unwrap();
    sync_ok(&src, &dst, &["--no-recursive"]);
    assert!(!dst.join("sub").exists(), "subdirectories are not copied");
    assert!(
        dst.join("keep-dir").is_dir(),
        "nor are DST directories deleted"
    );
    assert!(!dst.join("extra").exists(), "top-level files are mirrored");
    assert_eq!(std::fs::read(dst.join("small.txt")).unwrap(), b"hello\n");
    assert_eq!(
        std::fs::read_link(dst.join("link-rel")).unwrap(),
        Path::new("small.txt")
    );
}

#[test]
fn excludes_are_neither_copied_nor_deleted() {
    let (_t, src, dst) = pair();
    let s = Dir::open(&src);
    s.write(b"keep.txt", b"k");
    s.write(b"drop.o", b"o");
    let b = s.mkdir(b"build", 0o755);
    b.write(b"out", b"out");
    let sub = s.mkdir(b"sub", 0o755);
    sub.write(b"x.o", b"o");
    sub.mkdir(b"build", 0o755).write(b"y", b"y");
    sub.write(b"log", b"log");
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("precious.o"), b"mine").unwrap();
    sync_ok(
        &src,
        &dst,
        &[
            "--exclude",
            "*.o",
            "--exclude",
            "/build/",
            "--exclude",
            "sub/log",
        ],
    );
    assert!(dst.join("keep.txt").exists());
    assert!(!dst.join("drop.o").exists());
    assert!(!dst.join("sub/x.o").exists());
    assert!(!dst.join("build").exists());
    assert!(
        dst.join("sub/build/y").exists(),
        "anchored pattern only at the top"
    );
    assert!(!dst.join("sub/log").exists());
    assert_eq!(std::fs::read(dst.join("precious.o")).unwrap(), b"mine");
}

#[test]
fn special_files_are_skipped_with_a_warning() {
    let (_t, src, dst) = pair();
    let fifo = std::ffi::CString::new(src.join("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let mut expected = vec![("fifo", "fifo not copied")];
    // A socket where the kernel has them (the test VM's has no networking).
    let _sock = match std::os::unix::net::UnixListener::bind(src.join("sock")) {
        Ok(l) => {
            expected.push(("sock", "socket not copied"));
            Some(l)
        }
        Err(e)
            if e.raw_os_error() == Some(libc::ENOSYS)
                || e.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
        {
            None
        }
        Err(e) => panic!("bind: {e}"),
    };
    // Device nodes need root.
    if is_root() {
        let dev = std::ffi::CString::new(src.join("null-dev").as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated path; (1, 3) is /dev/null's number.
        let r = unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
        assert_eq!(r, 0, "mknod: {}", std::io::Error::last_os_error());
        expected.push(("null-dev", "character device not copied"));
    }
    std::fs::write(src.join("regular"), b"r").unwrap();
    // DST has an entry where SRC has a special file: it goes.
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("fifo"), b"stale").unwrap();
    let o = run([
        std::ffi::OsStr::new("--json"),
        src.as_os_str(),
        dst.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines = json_lines(&out);
    for (name, message) in &expected {
        let want = serde_json::json!({
            "action": "skipped",
            "path": format!("{}/{name}", shown_src(&src).display()),
            "message": message,
        });
        assert!(lines.contains(&want), "missing {want} in:\n{out}");
        assert!(
            std::fs::symlink_metadata(dst.join(name)).is_err(),
            "{name} in DST"
        );
    }
    assert_eq!(summary_field(&out, "skipped"), expected.len() as u64);
    assert_eq!(summary_field(&out, "deleted"), 1);
    assert!(dst.join("regular").exists());
}

#[test]
fn hard_links_become_independent_files() {
    let (_t, src, dst) = pair();
    std::fs::write(src.join("a"), b"shared").unwrap();
    std::fs::hard_link(src.join("a"), src.join("b")).unwrap();
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
    let (ia, ib) = (
        Dir::open(&dst).stat(b"a").unwrap().st_ino,
        Dir::open(&dst).stat(b"b").unwrap().st_ino,
    );
    assert_ne!(ia, ib, "copied as two files");
    assert_eq!(Dir::open(&dst).stat(b"a").unwrap().st_nlink, 1);
}

#[test]
fn byte_names_of_every_kind() {
    let (_t, src, dst) = pair();
    let s = Dir::open(&src);
    let names: [&[u8]; 8] = [
        b"\xff\xfe\xfd",
        b"new\nline",
        b"tab\there",
        b"-rf",
        b"--help",
        b" leading space",
        b"back\\slash",
        b"\x01\x02ctl",
    ];
    for n in names {
        s.write(n, n);
        let d = s.mkdir(&[n, b".d"].concat(), 0o755);
        d.write(n, b"inner");
        s.symlink(&[n, b".l"].concat(), n);
    }
    // A name of the maximum length (255 bytes).
    s.write(&[b'x'; 255], b"long name");
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
    // Deleting them works too.
    for n in names {
        s.unlink(n);
    }
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
}

#[test]
fn dry_run_changes_nothing_but_reports_everything() {
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    sync_ok(&src, &dst, &[]);
    let s = Dir::open(&src);
    s.write(b"small.txt", b"changed!");
    s.write(b"brand-new", b"n");
    std::fs::remove_dir_all(src.join("sub")).unwrap();
    s.chmod(b"private", 0o644);
    let before = snapshot(&dst);
    let out = json(&src, &dst, &["-n"]);
    assert_eq!(before, snapshot(&dst), "dry run changed DST");
    assert_eq!(summary_field(&out, "copied"), 2, "{out}");
    assert_eq!(summary_field(&out, "deleted"), 1, "{out}");
    assert!(summary_field(&out, "attrs") >= 1, "{out}");
    // The real run does what the dry run announced.
    let real = json(&src, &dst, &[]);
    assert_eq!(summary_field(&real, "copied"), 2);
    assert_trees_equal(&src, &dst);
}

#[test]
fn leftover_temporary_files_are_cleaned_up() {
    let (_t, src, dst) = pair();
    std::fs::write(src.join("f"), b"f").unwrap();
    sync_ok(&src, &dst, &[]);
    // As if a previous run had crashed mid-copy.
    std::fs::write(dst.join(".dirsync-tmp.1.2"), b"partial").unwrap();
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
}

#[test]
fn fsync_option_copies_the_same() {
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    sync_ok(&src, &dst, &["--fsync"]);
    assert_trees_equal(&src, &dst);
}

#[test]
fn exclude_negation_and_directory_patterns_from_the_command_line() {
    let (_t, src, dst) = pair();
    let s = Dir::open(&src);
    s.write(b"a.log", b"a");
    s.write(b"keep.log", b"k");
    let c = s.mkdir(b"cache", 0o755);
    c.write(b"x", b"x");
    s.write(b"cachefile", b"c");
    sync_ok(
        &src,
        &dst,
        &[
            "--exclude",
            "*.log",
            "--exclude",
            "!keep.log",
            "--exclude",
            "cache*/",
        ],
    );
    let names = Dir::open(&dst).names();
    assert_eq!(names, vec![b"cachefile".to_vec(), b"keep.log".to_vec()]);
}

#[test]
fn specials_option_recreates_fifos_sockets_and_devices() {
    let (_t, src, dst) = pair();
    let mk = |name: &str, mode: u32, dev: libc::dev_t| {
        let c = std::ffi::CString::new(src.join(name).as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated path.
        let r = unsafe { libc::mknod(c.as_ptr(), mode, dev) };
        assert_eq!(r, 0, "mknod {name}: {}", std::io::Error::last_os_error());
    };
    mk("fifo", libc::S_IFIFO | 0o640, 0);
    let mut expected = 1;
    if is_root() {
        mk("null", libc::S_IFCHR | 0o666, libc::makedev(1, 3));
        mk("loop", libc::S_IFBLK | 0o600, libc::makedev(7, 0));
        expected += 2;
    }
    let _sock = std::os::unix::net::UnixListener::bind(src.join("sock")).ok();
    if _sock.is_some() {
        expected += 1;
    }
    let s = Dir::open(&src);
    s.set_mtime(b"fifo", 1234, 5678);
    // DST has something else under one of the names.
    std::fs::create_dir_all(dst.join("fifo/inner")).unwrap();
    let out = json(&src, &dst, &["--specials"]);
    assert_eq!(summary_field(&out, "specials"), expected, "{out}");
    assert_eq!(summary_field(&out, "skipped"), 0, "{out}");
    assert!(
        json_lines(&out).iter().any(|l| l["action"] == "special"),
        "{out}"
    );
    assert_trees_equal(&src, &dst);
    // Idempotent; a changed device number is fixed.
    let out = json(&src, &dst, &["--specials"]);
    assert_eq!(summary_field(&out, "specials"), 0, "{out}");
    if is_root() {
        s.unlink(b"null");
        mk("null", libc::S_IFCHR | 0o666, libc::makedev(1, 5));
        s.set_mtime(b"null", 99, 0);
        let out = json(&src, &dst, &["--specials"]);
        assert_eq!(summary_field(&out, "specials"), 1, "{out}");
        assert_trees_equal(&src, &dst);
    }
    // Without the option they are skipped and DST's copies removed.
    let out = json(&src, &dst, &[]);
    assert_eq!(summary_field(&out, "skipped"), expected, "{out}");
    assert!(Dir::open(&dst).stat(b"fifo").is_none());
}

//! The command line: usage, exit codes, output formats, backends,
//! completions and man page.

mod common;
use common::*;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn no_arguments_prints_the_usage_and_exits_1() {
    let o = run::<[&str; 0], &str>([]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("Usage: dirsync <source_dir> <destination_dir>\n"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--help"));
}

#[test]
fn usage_errors_exit_1() {
    let t = tempdir();
    let src = t.path().join("s");
    std::fs::create_dir(&src).unwrap();
    for args in [
        vec!["--no-such-option", "a", "b"],
        vec![src.to_str().unwrap()],
        vec!["a", "b", "c"],
        vec!["--stat-backend", "bogus", "a", "b"],
        vec!["--size-only", "--checksum", "a", "b"],
        vec!["-v", "-q", "a", "b"],
        vec!["completions", "no-such-shell"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
    }
    // The environment default is validated too.
    let o = cmd(["a", "b"])
        .env("DIRSYNC_STAT_BACKEND", "bogus")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn help_documents_exit_codes_and_exits_0() {
    let o = run(["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let h = stdout(&o);
    for needle in [
        "Exit codes:",
        "0  success",
        "1  usage error",
        "2  partial failure",
        "3  fatal",
        "--dry-run",
        "--no-delete",
        "--size-only",
        "--no-recursive",
        "--checksum",
        "--exclude <PATTERN>",
        "--stat-backend <BACKEND>",
        "DIRSYNC_STAT_BACKEND",
        "--json",
        "watch",
    ] {
        assert!(h.contains(needle), "--help lacks {needle:?}:\n{h}");
    }
    let o = run(["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("dirsync "));
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    for (shell, needle) in [
        ("bash", "--stat-backend"),
        ("zsh", "--no-recursive"),
        ("fish", "stat-backend"),
    ] {
        let o = run(["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        assert!(
            stdout(&o).contains(needle),
            "{shell} completion lacks {needle}"
        );
    }
    let o = run(["man"]);
    assert_eq!(o.status.code(), Some(0));
    let m = stdout(&o);
    assert!(
        m.starts_with(".ie") || m.contains(".TH dirsync"),
        "{}",
        &m[..m.len().min(200)]
    );
    assert!(m.contains("stat\\-backend") || m.contains("stat-backend"));
    assert!(m.contains("Exit codes"));
}

#[test]
fn verbose_prints_one_line_per_action_and_the_backend() {
    let (_t, src, dst) = pair();
    let d = Dir::open(&src);
    d.write(b"a", b"1");
    d.mkdir(b"sub", 0o755).write(b"b", b"2");
    d.symlink(b"l", b"a");
    std::fs::create_dir_all(dst.join("gone")).unwrap();
    let o = cmd(["-v", "--stat-backend", "statx"])
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let (s, ds) = (src.display(), dst.display());
    for line in [
        format!("Copied: {s}/a -> {ds}/a"),
        format!("Copied: {s}/sub/b -> {ds}/sub/b"),
        format!("Created directory: {ds}/sub"),
        format!("Linked: {ds}/l -> a"),
        format!("Deleted: {ds}/gone"),
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing {line:?} in:\n{out}"
        );
    }
    assert!(
        out.lines().last().unwrap().starts_with("Summary: 2 copied"),
        "{out}"
    );
    assert!(stderr(&o).contains("Backend: statx"), "{}", stderr(&o));
    // Without -v: silent.
    d.write(b"a", b"changed");
    let o = cmd::<[&str; 0], &str>([])
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "");
}

#[test]
fn json_is_one_object_per_action_with_escaped_byte_names() {
    let (_t, src, dst) = pair();
    let d = Dir::open(&src);
    d.write(b"bad\xffname\n\"q\"", b"x");
    let o = cmd(["--json"]).arg(&src).arg(&dst).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let s = src.display().to_string();
    let ds = dst.display().to_string();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(lines[0]).unwrap(),
        serde_json::json!({"action": "created_dir", "path": ds})
    );
    // The wire form of a name that is not UTF-8 (`\udcHH`, a lone
    // surrogate, which serde_json refuses): compared as text.
    assert_eq!(
        lines[1],
        format!(
            "{{\"action\":\"copied\",\"src\":\"{s}/bad\\udcffname\\n\\\"q\\\"\",\"dst\":\"{ds}/bad\\udcffname\\n\\\"q\\\"\"}}"
        )
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(lines[2]).unwrap(),
        serde_json::json!({
            "action": "summary", "copied": 1, "bytes": 1, "dirs_created": 0,
            "links": 0, "deleted": 0, "attrs": 0, "renamed": 0, "skipped": 0,
            "specials": 0, "errors": 0, "conflicts": 0, "exit": 0
        })
    );
}

#[test]
fn quiet_silences_warnings_but_not_errors() {
    let (t, src, dst) = pair();
    let fifo = src.join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let o = cmd::<[&str; 0], &str>([])
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("fifo not copied"), "{}", stderr(&o));
    let o = cmd(["-q"]).arg(&src).arg(&dst).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), "");
    // Errors are still shown with -q.
    let o = cmd(["-q"])
        .arg(t.path().join("missing"))
        .arg(&dst)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("does not exist"));
}

/// The number the running kernel announces in `/sys/kernel/dirsync/FILE`
/// (with our ABI), if any.
fn announced(file: &str) -> Option<String> {
    let abi = std::fs::read_to_string("/sys/kernel/dirsync/abi_version").ok()?;
    if abi.trim() != "1" {
        return None;
    }
    let nr = std::fs::read_to_string(format!("/sys/kernel/dirsync/{file}")).ok()?;
    Some(nr.trim().to_string())
}

/// Whether the running kernel announces both calls `syscall` needs.
fn kernel_has_syscall() -> bool {
    announced("syscall_nr").is_some() && announced("readdir_syscall_nr").is_some()
}

#[test]
fn stat_backend_syscall_works_or_fails_cleanly() {
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    let o = cmd(["-v", "--stat-backend", "syscall"])
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    if kernel_has_syscall() {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let nr = announced("syscall_nr").unwrap();
        let rnr = announced("readdir_syscall_nr").unwrap();
        let line = format!(
            "Backend: dirsync_readdir (syscall {rnr}) + dirsync_stat (syscall {nr}, ABI 1)"
        );
        assert!(stderr(&o).lines().any(|l| l == line), "{}", stderr(&o));
        assert_trees_equal(&src, &dst);
        // And the second run sees everything as equal through the syscall.
        let o = cmd(["--json", "--stat-backend", "syscall"])
            .arg(&src)
            .arg(&dst)
            .output()
            .unwrap();
        let out = stdout(&o);
        assert_eq!(json_lines(&out).len(), 1, "{out}");
        assert_eq!(actions(&json_summary(&out)), 0, "{out}");
    } else {
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        let missing = if announced("syscall_nr").is_none() {
            "does not provide dirsync_stat"
        } else {
            "does not provide dirsync_readdir"
        };
        assert!(stderr(&o).contains(missing), "{}", stderr(&o));
        assert!(!dst.exists(), "nothing may be touched");
    }
}

/// A tree synced with one backend is equal, to the other, in every
/// compared field: an unchanged resync with either does nothing, and a
/// change made afterwards is found by both.
#[test]
fn backends_agree_on_an_unchanged_tree() {
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    let backends: &[&str] = if kernel_has_syscall() {
        &["syscall", "statx", "auto"]
    } else {
        &["statx", "auto"]
    };
    sync_ok(&src, &dst, &["--stat-backend", backends[0]]);
    for b in backends {
        let out = sync_ok(&src, &dst, &["--json", "--stat-backend", b]);
        assert_eq!(actions(&json_summary(&out)), 0, "{b}: {out}");
    }
    for (i, b) in backends.iter().enumerate() {
        let name = format!("new{i}");
        std::fs::write(src.join(&name), b"n").unwrap();
        std::fs::remove_file(dst.join("small.txt")).unwrap();
        let out = sync_ok(&src, &dst, &["--json", "--stat-backend", b]);
        assert_eq!(counter(&json_summary(&out), "copied"), 2, "{b}: {out}");
        assert_trees_equal(&src, &dst);
    }
}

#[test]
fn stat_backend_default_comes_from_the_environment() {
    let (_t, src, dst) = pair();
    let o = cmd(["-v"])
        .arg(&src)
        .arg(&dst)
        .env("DIRSYNC_STAT_BACKEND", "statx")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("Backend: statx"), "{}", stderr(&o));
    // auto picks the syscall exactly when the kernel has it.
    let o = cmd(["-v"])
        .arg(&src)
        .arg(&dst)
        .env("DIRSYNC_STAT_BACKEND", "auto")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let want = match (announced("syscall_nr"), announced("readdir_syscall_nr")) {
        (_, Some(_)) => "Backend: dirsync_readdir",
        (Some(_), None) => "Backend: dirsync_stat",
        (None, None) => "Backend: statx",
    };
    assert!(stderr(&o).contains(want), "{}", stderr(&o));
    // The command line beats the environment.
    let o = cmd(["-v", "--stat-backend", "statx"])
        .arg(&src)
        .arg(&dst)
        .env("DIRSYNC_STAT_BACKEND", "syscall")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("Backend: statx"));
}

#[test]
fn names_that_look_like_options_work_after_double_dash() {
    let t = tempdir();
    let src = t.path().join("-src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"f").unwrap();
    let o = run_as(
        None,
        Some(t.path()),
        &[OsStr::new("--"), OsStr::new("-src"), OsStr::new("-dst")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_trees_equal(&src, &t.path().join("-dst"));
}

#[test]
fn watch_subcommand_is_dispatched_with_the_shared_options() {
    let o = run(["watch", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let h = stdout(&o);
    for needle in [
        "--exclude <PATTERN>",
        "--stat-backend <BACKEND>",
        "--no-delete",
        "Exit codes:",
    ] {
        assert!(h.contains(needle), "watch --help lacks {needle:?}:\n{h}");
    }
    // Bad input is refused before anything is watched.
    let t = tempdir();
    let o = run([
        std::ffi::OsStr::new("watch"),
        t.path().join("missing").as_os_str(),
        t.path().join("dst").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(!t.path().join("dst").exists());
    let o = run(["watch", "only-one"]);
    assert_eq!(o.status.code(), Some(1));
}

//! A confined server (`dirsync --server --root DIR [--read-only |
//! --write-only]`), as an ssh forced command runs it: every path the
//! client names stays beneath DIR (`/etc`, `..`, `a/../../x`, a symlinked
//! component, an absolute path outside: refused, exit 3, nothing outside
//! DIR read, created or changed), the roles the flags forbid are refused,
//! and what the client asked sshd to run (`SSH_ORIGINAL_COMMAND`) must be
//! a dirsync server. Through a `-e` wrapper that plays sshd's forced
//! command, and once through the real test sshd with a forced-command key.
//!
//! Safe when the confinement is broken (a mutation check, a regression):
//! the server runs in a scratch directory of the test's tree, so a
//! relative path it would take as is (`..`, `sub`) stays in the tree; the
//! absolute paths named are in the tree, or begin with a directory that
//! exists in DIR only ([`BASE`]), so that a server taking them from `/`
//! finds no parent and creates nothing; only `/etc` is named as is, and
//! only to read (into the test's tree).

mod common;
use common::sshd::Sshd;
use common::*;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A directory in DIR and nowhere else: `/BASE/...` is DIR/BASE/...
/// beneath DIR, and a path with no parent from `/`.
const BASE: &str = "dirsync-confine-test-base";

/// The test's world: the served DIR with a tree in it, a canary outside
/// DIR, a symlink inside DIR to it, the server's working directory, and
/// the client's trees.
struct World {
    t: tempfile::TempDir,
    /// The `-e` scripts (apart: snapshots of `t` must not see them).
    scripts: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World {
            t: tempdir(),
            scripts: tempdir(),
        };
        build_sample_tree(&w.served().join("data"));
        std::fs::create_dir_all(w.served().join("a/b")).unwrap();
        std::fs::create_dir(w.served().join(BASE)).unwrap();
        std::fs::create_dir(w.path("cwd")).unwrap();
        std::fs::create_dir_all(w.outside().join("etc")).unwrap();
        std::fs::write(w.outside().join("canary"), b"outside DIR").unwrap();
        std::fs::write(w.outside().join("etc/passwd"), b"canary:x:0:0").unwrap();
        std::os::unix::fs::symlink(w.outside(), w.served().join("link")).unwrap();
        build_sample_tree(&w.path("src"));
        let got = w.path("got");
        std::fs::create_dir(&got).unwrap();
        std::fs::write(got.join("keep"), b"the client's").unwrap();
        w
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.t.path().join(rel)
    }

    /// DIR.
    fn served(&self) -> PathBuf {
        self.path("served")
    }

    /// Outside DIR (its canaries must never be read, changed or copied).
    fn outside(&self) -> PathBuf {
        self.path("outside")
    }

    /// A `-e` command that plays sshd with the forced command
    /// `dirsync --server --root DIR FLAGS`: it ignores the host, puts the
    /// remote command the client asked for in `SSH_ORIGINAL_COMMAND` and
    /// runs the forced command instead, in the scratch directory `cwd`.
    fn forced(&self, flags: &str) -> String {
        let name = format!("forced{}", flags.replace(['-', ' '], "_"));
        let script = self.scripts.path().join(name);
        let text = format!(
            "#!/bin/sh\ncd '{}' || exit 9\n\
             SSH_ORIGINAL_COMMAND=\"$2\" exec '{}' --server --root '{}' {flags}\n",
            self.path("cwd").display(),
            bin().display(),
            self.served().display()
        );
        write_script(&script, text);
        script.display().to_string()
    }
}

/// `dirsync -e RSH SRC DST` with `extra` before them.
fn sync(rsh: &str, extra: &[&str], src: &OsStr, dst: &OsStr) -> Output {
    let mut c = cmd(["-e", rsh]);
    c.args(extra).arg(src).arg(dst);
    c.output().unwrap()
}

fn host(p: &[u8]) -> OsString {
    OsStr::from_bytes(&[b"host:", p].concat()).to_os_string()
}

/// Fails with the entries that differ between two snapshots.
#[track_caller]
fn unchanged(before: &Snap, after: &Snap, what: &str) {
    let keys: std::collections::BTreeSet<_> = before.keys().chain(after.keys()).collect();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert!(diff.is_empty(), "{what}: changed: {diff:?}");
}

type Snap = std::collections::BTreeMap<Vec<u8>, EntryInfo>;

/// Exit 3, `needles` in stderr, no panic.
#[track_caller]
fn refused(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in {err:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// Paths that lead out of DIR, or through a symlink, as a pull's SRC:
/// refused, the local DST unchanged, nothing anywhere changed.
#[test]
fn pull_paths_outside_dir_are_refused() {
    let w = World::new();
    let rsh = w.forced("");
    let outside = w.outside();
    let canary_dir = outside.as_os_str().as_bytes();
    let canary_file = outside.join("canary");
    let cases: [(&[u8], &str); 9] = [
        (b"/etc", "does not exist"),
        (b"..", "'..' is not allowed"),
        (b"a/../../outside", "'..' is not allowed"),
        (b"data/../..", "'..' is not allowed"),
        (b"link", "symlink"),
        (b"a/../link", "'..' is not allowed"),
        (b"link/etc", "symlink"),
        (canary_dir, "does not exist"),
        (canary_file.as_os_str().as_bytes(), "does not exist"),
    ];
    let before = snapshot(w.t.path());
    for (p, why) in cases {
        let o = sync(&rsh, &[], &host(p), w.path("got").as_os_str());
        refused(&o, &["host", "refused", why]);
        unchanged(
            &before,
            &snapshot(w.t.path()),
            &format!("{p:?}: something changed"),
        );
        // The same into a DST that does not exist: not even created.
        let o = sync(&rsh, &[], &host(p), w.path("new").as_os_str());
        refused(&o, &["host"]);
        assert!(!w.path("new").exists(), "{p:?}: DST created");
    }
}

/// `/etc` is DIR/etc: what is there, and nothing of the real /etc.
#[test]
fn leading_slash_is_dir() {
    let w = World::new();
    let etc = w.served().join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("served"), b"in DIR").unwrap();
    let o = sync(
        &w.forced(""),
        &[],
        &host(b"/etc"),
        w.path("etc").as_os_str(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_trees_equal(&etc, &w.path("etc"));
    assert!(!w.path("etc/passwd").exists(), "the real /etc was read");
}

/// The same paths as a push's DST: refused, nothing created or changed
/// anywhere (the canary outside DIR keeps its content).
#[test]
fn push_paths_outside_dir_are_refused() {
    let w = World::new();
    let rsh = w.forced("");
    let abs = w.outside().join("pushed");
    let cases: [(&[u8], &str); 8] = [
        (b"..", "'..' is not allowed"),
        (b"../outside/pushed", "'..' is not allowed"),
        (b"a/../../outside", "'..' is not allowed"),
        (b"link", "symlink"),
        (b"link/pushed", "symlink"),
        (b"link/etc", "symlink"),
        (abs.as_os_str().as_bytes(), "does not exist"),
        (b"data/small.txt/x", "not a directory"),
    ];
    let before = snapshot(w.t.path());
    for (p, why) in cases {
        let o = sync(&rsh, &[], w.path("src").as_os_str(), &host(p));
        refused(&o, &["host", "refused", why]);
        unchanged(
            &before,
            &snapshot(w.t.path()),
            &format!("{p:?}: something changed"),
        );
    }
    assert_eq!(
        std::fs::read(w.outside().join("canary")).unwrap(),
        b"outside DIR"
    );
}

/// Push and pull with `--root` work: DST created beneath DIR, trees equal.
#[test]
fn push_and_pull_beneath_dir_work() {
    let w = World::new();
    let o = sync(
        &w.forced("--write-only"),
        &[],
        w.path("src").as_os_str(),
        &host(format!("/{BASE}/backup").as_bytes()),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_trees_equal(&w.path("src"), &w.served().join(BASE).join("backup"));
    // Again, into an existing DST after a change, and deeper.
    std::fs::write(w.path("src/new"), b"new").unwrap();
    let o = sync(
        &w.forced(""),
        &[],
        w.path("src").as_os_str(),
        &host(b"a/b/c"),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_trees_equal(&w.path("src"), &w.served().join("a/b/c"));
    let o = sync(
        &w.forced("--read-only"),
        &[],
        &host(b"data"),
        w.path("pulled").as_os_str(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_trees_equal(&w.served().join("data"), &w.path("pulled"));
    // DIR itself, as `host:` (`host:/` too, not tried: a broken server
    // would read all of `/`).
    let o = sync(&w.forced(""), &[], &host(b""), w.path("all").as_os_str());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(w.path("all/data").is_dir() && w.path("all/a/b/c/new").is_file());
    // The symlink inside DIR is copied as a symlink, never followed.
    let link = std::fs::symlink_metadata(w.path("all/link")).unwrap();
    assert!(link.file_type().is_symlink());
    assert!(!w.path("all/canary").exists());
}

/// `--read-only` refuses a push, `--write-only` a pull: before anything
/// is read or written.
#[test]
fn roles_the_flags_forbid_are_refused() {
    let w = World::new();
    let before = snapshot(w.t.path());
    let o = sync(
        &w.forced("--read-only"),
        &[],
        w.path("src").as_os_str(),
        &host(b"data"),
    );
    refused(&o, &["host", "read-only"]);
    unchanged(
        &before,
        &snapshot(w.t.path()),
        "a push to a read-only server",
    );
    let o = sync(
        &w.forced("--read-only"),
        &[],
        w.path("src").as_os_str(),
        &host(b"new"),
    );
    refused(&o, &["host", "read-only"]);
    assert!(!w.served().join("new").exists());
    let o = sync(
        &w.forced("--write-only"),
        &[],
        &host(b"data"),
        w.path("got").as_os_str(),
    );
    refused(&o, &["host", "write-only"]);
    let o = sync(
        &w.forced("--write-only"),
        &[],
        &host(b"data"),
        w.path("new").as_os_str(),
    );
    refused(&o, &["host", "write-only"]);
    assert!(
        !w.path("new").exists(),
        "a pull from a write-only server created DST"
    );
    unchanged(&before, &snapshot(w.t.path()), "something changed");
}

/// Under a forced command, what the client asked for must be a dirsync
/// server: a shell command is refused without a byte of the protocol
/// (and never run), `--deploy` fails with exit 3.
#[test]
fn forced_command_accepts_only_a_dirsync_server() {
    let w = World::new();
    let rsh = w.forced("");
    let pwned = w.path("pwned");
    let shell = format!("touch '{}'", pwned.display());
    for asked in [
        shell.as_str(),
        "dirsync --server; id",
        "sh -c 'dirsync --server'",
        "\x1b[2J dirsync --server",
    ] {
        let o = Command::new(&rsh)
            .args(["host", asked])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        // Not a byte of the protocol (a server would send its hello).
        assert!(o.stdout.is_empty(), "{asked}: the server answered");
        refused(&o, &["this key only runs dirsync --server"]);
        assert!(!o.stderr.contains(&0x1b), "{asked}: not escaped");
        assert!(!pwned.exists());
    }
    // What the client sends (`shell_quote`d `--remote-path`) is fine.
    let o = sync(
        &rsh,
        &["--remote-path", "/opt/it's here/dirsync"],
        w.path("src").as_os_str(),
        &host(b"quoted"),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_trees_equal(&w.path("src"), &w.served().join("quoted"));
    // --deploy sends an upload script: refused, nothing uploaded.
    let cache = w.path("cache");
    let o = cmd(["-e", rsh.as_str(), "--deploy"])
        .arg(w.path("src"))
        .arg(host(b"deployed"))
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    refused(&o, &["host", "this key only runs dirsync --server"]);
    assert!(!w.served().join("deployed").exists());
    assert!(!cache.exists(), "the upload script ran");
}

/// The hostile names in a refusal come back escaped.
#[test]
fn refused_paths_are_escaped() {
    let w = World::new();
    let o = sync(
        &w.forced(""),
        &[],
        &host(b"../\x1b[2Jx\n"),
        w.path("got").as_os_str(),
    );
    refused(&o, &["'..' is not allowed"]);
    assert!(
        !o.stderr.contains(&0x1b),
        "{:?}",
        String::from_utf8_lossy(&o.stderr)
    );
    // An unconfined server's refusals too (a DST whose parent is missing,
    // in its scratch directory).
    let script = w.scripts.path().join("unconfined");
    let text = format!(
        "#!/bin/sh\ncd '{}' || exit 9\nexec '{}' --server\n",
        w.path("cwd").display(),
        bin().display()
    );
    write_script(&script, text);
    let o = sync(
        &script.display().to_string(),
        &[],
        w.path("src").as_os_str(),
        &host(b"no\x1b[2J/x"),
    );
    refused(&o, &["its parent directory does not exist"]);
    assert!(
        !o.stderr.contains(&0x1b),
        "{:?}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read_dir(w.path("cwd")).unwrap().next().is_none());
}

/// Through the real sshd: a key whose `authorized_keys` line is
/// `command="dirsync --server --root DIR --write-only",restrict` pushes
/// into DIR only; `host:/etc` and a push to another `.ssh` are refused.
#[test]
fn forced_command_key_through_sshd() {
    let w = World::new();
    let sshd = Sshd::shared();
    // In the scratch directory (see the top), as the README's line
    // without the `cd`.
    let forced = format!(
        "cd {} && exec {} --server --root {} --write-only",
        w.path("cwd").display(),
        bin().display(),
        w.served().display()
    );
    let rsh = sshd.forced_rsh("backup", &forced);
    let remote =
        |p: &[u8]| -> OsString { OsStr::from_bytes(&[b"127.0.0.1:", p].concat()).to_os_string() };
    let run = |extra: &[&str], src: &OsStr, dst: &OsStr| {
        let mut c = cmd(["-e", rsh.as_str(), "--remote-path"]);
        c.arg(bin()).args(extra).arg(src).arg(dst);
        c.output().unwrap()
    };
    // DIR/etc exists: `/etc` is refused for the role, not for a miss.
    std::fs::create_dir(w.served().join("etc")).unwrap();
    // Another account's .ssh, outside DIR.
    let ssh_dir = w.path("home/.ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::fs::write(ssh_dir.join("authorized_keys"), b"ssh-ed25519 AAAA owner\n").unwrap();
    let evil = w.path("evil");
    std::fs::create_dir(&evil).unwrap();
    std::fs::write(evil.join("authorized_keys"), b"ssh-ed25519 AAAA attacker\n").unwrap();

    let o = run(&[], w.path("src").as_os_str(), &remote(b"sub"));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_trees_equal(&w.path("src"), &w.served().join("sub"));

    let before = snapshot(w.t.path());
    let o = run(&[], &remote(b"/etc"), w.path("got").as_os_str());
    refused(&o, &["127.0.0.1", "write-only"]);
    for dst in [
        ssh_dir.as_os_str().as_bytes(),
        b"../home/.ssh",
        b"link/../home/.ssh",
    ] {
        let o = run(&[], evil.as_os_str(), &remote(dst));
        refused(&o, &["127.0.0.1", "refused"]);
    }
    // Not even through ssh's own command line.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("{rsh} 127.0.0.1 'cat /etc/hostname'"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.stdout.is_empty(), "the server answered");
    refused(&o, &["this key only runs dirsync --server"]);
    unchanged(&before, &snapshot(w.t.path()), "something changed");
    assert_eq!(
        std::fs::read(ssh_dir.join("authorized_keys")).unwrap(),
        b"ssh-ed25519 AAAA owner\n"
    );
    let _ = std::io::stderr().flush();
}

/// `--root`, `--read-only`, `--write-only` only go with `--server`, and
/// `--read-only` not with `--write-only`.
#[test]
fn server_flags_only_with_server() {
    let t = tempdir();
    for args in [
        &["--root", "/tmp", "a", "b"][..],
        &["--read-only", "a", "b"],
        &["--server", "--read-only", "--write-only"],
        &["--server", "-n"],
        &["--server", "a", "b"],
    ] {
        let o = cmd(args).current_dir(t.path()).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
    }
    // A --root that is not a directory: exit 3 before the handshake.
    let o = cmd(["--server", "--root"])
        .arg(t.path().join("nope"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(o.stdout.is_empty());
}

//! Helpers of the two-way suites: a pair of trees with its own state
//! file, running `dirsync --two-way`, and snapshots of whole trees.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use super::common;

/// What a tree holds at one path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Node {
    /// A file: content and mode bits.
    File(Vec<u8>, u32),
    /// A directory and its mode bits.
    Dir(u32),
    /// A symlink and its target.
    Link(Vec<u8>),
}

/// Every entry below `root` by relative path (a path is shown as a
/// `String`: the suites use ASCII names).
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            let node = if m.file_type().is_symlink() {
                Node::Link(
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                )
            } else if m.is_dir() {
                stack.push(p.clone());
                Node::Dir(mode)
            } else {
                Node::File(std::fs::read(&p).unwrap(), mode)
            };
            out.insert(rel, node);
        }
    }
    out
}

/// A pair of roots `a` and `b` in a temporary directory, with the state
/// file `state`.
pub struct Pair {
    pub t: tempfile::TempDir,
    pub a: PathBuf,
    pub b: PathBuf,
    pub state: PathBuf,
}

impl Pair {
    /// Two empty roots.
    pub fn new() -> Pair {
        let t = common::tempdir();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let state = t.path().join("state/pair.db");
        Pair { t, a, b, state }
    }

    /// `dirsync --two-way --state STATE extra... A B` (in the remote
    /// suite, `twoway_remote`: B as `127.0.0.1:B` through the test sshd).
    pub fn run(&self, extra: &[&str]) -> Output {
        let mut c = common::cmd(["--two-way", "--state"]);
        c.arg(&self.state).args(extra);
        match remote_side() {
            Some(RemoteSide::B) => {
                c.args(common::sshd::Sshd::shared().args());
                c.arg(&self.a).arg(common::sshd::remote(&self.b));
            }
            Some(RemoteSide::A) => {
                c.args(common::sshd::Sshd::shared().args());
                c.arg(common::sshd::remote(&self.a)).arg(&self.b);
            }
            None => {
                c.arg(&self.a).arg(&self.b);
            }
        }
        c.output().expect("cannot run dirsync")
    }

    /// Runs and asserts the exit code; returns stdout.
    pub fn run_code(&self, extra: &[&str], code: i32) -> String {
        let o = self.run(extra);
        assert_eq!(
            o.status.code(),
            Some(code),
            "stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs with `--json`, expects exit 0 and returns the summary object.
    pub fn sync(&self) -> serde_json::Value {
        let out = self.run_code(&["--json"], 0);
        let last = out.lines().last().expect("a summary line");
        serde_json::from_str(last).unwrap()
    }

    /// Asserts A and B hold the same entries, and returns them.
    pub fn assert_same(&self) -> BTreeMap<String, Node> {
        let (sa, sb) = (snapshot(&self.a), snapshot(&self.b));
        assert_eq!(sa, sb, "A and B differ");
        sa
    }

    /// Syncs, checks A == B, then a second run changes nothing.
    pub fn converge(&self) -> BTreeMap<String, Node> {
        self.sync();
        let snap = self.assert_same();
        let s = self.sync();
        for k in [
            "copied",
            "deleted",
            "renamed",
            "links",
            "dirs_created",
            "attrs",
            "conflicts",
            "errors",
        ] {
            assert_eq!(s[k], 0, "second run did {k}: {s}");
        }
        snap
    }
}

/// Writes `content` to `root/rel` (parents created).
pub fn put(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// Sets the mtime of `root/rel` to `sec` seconds.
pub fn mtime(root: &Path, rel: &str, sec: i64) {
    let f = std::fs::File::options()
        .write(true)
        .open(root.join(rel))
        .unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(sec as u64))
        .unwrap();
}

/// The inode of `root/rel`.
pub fn ino(root: &Path, rel: &str) -> u64 {
    std::fs::symlink_metadata(root.join(rel)).unwrap().ino()
}

/// Names in `root/dir` containing `.sync-conflict-`.
pub fn conflicts(root: &Path, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".sync-conflict-"))
        .collect();
    v.sort();
    v
}

/// Which root a remote two-way suite puts behind the test sshd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteSide {
    /// `dirsync --two-way 127.0.0.1:A B`.
    A,
    /// `dirsync --two-way A 127.0.0.1:B`.
    B,
}

/// The remote side of this test binary: `twoway_remote` (B remote) and
/// `twoway_remote_a` (A remote) compile the local suites again.
pub fn remote_side() -> Option<RemoteSide> {
    let exe = std::env::current_exe().ok()?;
    let name = exe.file_name()?.to_string_lossy().into_owned();
    if name.starts_with("twoway_remote_a-") {
        Some(RemoteSide::A)
    } else if name.starts_with("twoway_remote-") {
        Some(RemoteSide::B)
    } else {
        None
    }
}

/// A's name in conflict copies: `a`, or the host when A is remote.
pub fn label_a() -> &'static str {
    match remote_side() {
        Some(RemoteSide::A) => "127.0.0.1",
        _ => "a",
    }
}

/// How dirsync shows the path `p` of A: `127.0.0.1:P` when A is remote.
pub fn shown_a(p: &Path) -> String {
    match remote_side() {
        Some(RemoteSide::A) => format!("127.0.0.1:{}", p.display()),
        _ => p.display().to_string(),
    }
}

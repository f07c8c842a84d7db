//! Remote runs through a real sshd (`common::sshd`): refusals and remote
//! failures name the host, a protocol version mismatch names both
//! versions, a missing remote dirsync suggests `--deploy`, which uploads
//! this binary once (checked by hash); hostile servers and clients get a
//! clean protocol error and nothing outside the tree is touched.

mod common;
use common::sshd::Sshd;
use common::*;

use std::ffi::{CString, OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use dirsync::remote::protocol::messages::{Hello, Msg, Role, Setup, PROTOCOL};

/// `dirsync [args] src dst` through `sshd`.
fn remote_run(sshd: &Sshd, args: &[&OsStr]) -> Output {
    let mut c = cmd(sshd.args());
    c.args(args);
    c.output().unwrap()
}

fn r(p: &Path) -> OsString {
    sshd::remote(p).into_os_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn fatal_with(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in {err:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn refusals_name_the_host_and_touch_nothing() {
    let sshd = Sshd::shared();
    let t = tempdir();
    let src = t.path().join("src");
    build_sample_tree(&src);
    std::fs::write(t.path().join("file"), b"f").unwrap();
    let before = snapshot(t.path());
    let o = remote_run(sshd, &[src.as_os_str(), &r(&t.path().join("file"))]);
    fatal_with(&o, &["127.0.0.1", "exists and is not a directory"]);
    let o = remote_run(
        sshd,
        &[src.as_os_str(), &r(&t.path().join("no/parent/dst"))],
    );
    fatal_with(&o, &["127.0.0.1", "its parent directory does not exist"]);
    let o = remote_run(
        sshd,
        &[&r(&t.path().join("nope")), t.path().join("dst").as_os_str()],
    );
    fatal_with(&o, &["127.0.0.1", "does not exist"]);
    assert_eq!(before, snapshot(t.path()), "something was touched");
}

/// A `--remote-path` (or `--rsh`) script that prints `bytes` then
/// swallows its input.
fn fake_peer(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    prerecorded_peer(dir, name, bytes, Then::Drain)
}

#[test]
fn version_mismatch_names_both_versions() {
    let sshd = Sshd::shared();
    let (t, src, dst) = pair();
    build_sample_tree(&src);
    let hello = Msg::Hello(Hello {
        protocol: 99,
        version: b"9.9.9".to_vec(),
        features: 0,
    });
    let fake = fake_peer(t.path(), "future-dirsync", &frame(&hello));
    let mut c = cmd(["-e", &sshd.rsh(), "--remote-path"]);
    let o = c.arg(&fake).arg(&src).arg(r(&dst)).output().unwrap();
    let ours = format!(
        "dirsync {} speaks protocol {PROTOCOL}",
        env!("CARGO_PKG_VERSION")
    );
    fatal_with(
        &o,
        &[
            "127.0.0.1",
            "protocol version mismatch",
            &ours,
            "9.9.9 speaks protocol 99",
            "--deploy",
        ],
    );
    assert!(!dst.exists());
}

#[test]
fn missing_remote_dirsync_suggests_deploy() {
    let sshd = Sshd::shared();
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    let mut c = cmd(["-e", &sshd.rsh(), "--remote-path", "/nonexistent/dirsync"]);
    let o = c.arg(&src).arg(r(&dst)).output().unwrap();
    fatal_with(&o, &["127.0.0.1", "no dirsync found there", "--deploy"]);
    assert!(!dst.exists());
}

#[test]
fn deploy_uploads_this_binary_once_checked_by_hash() {
    let sshd = Sshd::shared();
    let (t, src, dst) = pair();
    build_sample_tree(&src);
    let cache = t.path().join("cache");
    let rsh = format!(
        "{} -o SetEnv=XDG_CACHE_HOME={}",
        sshd.rsh(),
        cache.display()
    );
    let deploy = |dst: &Path| {
        let mut c = cmd([
            "-e",
            &rsh,
            "--remote-path",
            "/nonexistent/dirsync",
            "--deploy",
        ]);
        let o = c.arg(&src).arg(r(dst)).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    deploy(&dst);
    assert_trees_equal(&src, &dst);
    let agents: Vec<_> = std::fs::read_dir(cache.join("dirsync"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(agents.len(), 1, "{agents:?}");
    let agent = &agents[0];
    let name = agent.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("agent-{}-", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );
    assert_eq!(std::fs::read(agent).unwrap(), std::fs::read(bin()).unwrap());
    // Again: the cached agent is used as is (same inode, not rewritten).
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(agent).unwrap().ino();
    deploy(&t.path().join("dst2"));
    assert_eq!(std::fs::metadata(agent).unwrap().ino(), ino);
    // A damaged agent fails the hash check and is uploaded again.
    std::fs::write(agent, b"#!/bin/sh\nexit 1\n").unwrap();
    deploy(&t.path().join("dst3"));
    assert_eq!(std::fs::read(agent).unwrap(), std::fs::read(bin()).unwrap());
    assert_trees_equal(&src, &t.path().join("dst3"));
}

/// Hostile servers: the client (as the agent of its DST, in a pull) gets
/// a clean error and nothing outside DST changes.
#[test]
fn hostile_servers_get_a_clean_error() {
    let t = tempdir();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), b"keep").unwrap();
    let hello = frame(&Msg::Hello(dirsync::remote::hello(
        dirsync::remote::protocol::messages::FEATURES,
    )));
    let ready = frame(&Msg::Ready {
        created: false,
        exists: true,
    });
    let name = |s: &str| CString::new(s).unwrap();
    let open_root = frame(&Msg::Open {
        id: 1,
        parent: 0,
        name: None,
    });
    let via = |n: &str| {
        let mut b = open_root.clone();
        b.extend(frame(&Msg::Open {
            id: 2,
            parent: 1,
            name: Some(name(n)),
        }));
        b.extend(frame(&Msg::CreateDir {
            id: 2,
            name: name("pwned"),
        }));
        b.extend(frame(&Msg::Remove {
            id: 2,
            name: name("keep"),
        }));
        b
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
            "bad frame length",
        ),
        ("huge", u32::MAX.to_le_bytes().to_vec(), "bad frame length"),
        (
            "not-hello",
            [hello.clone(), ready.clone(), frame(&Msg::Bye)].concat()[hello.len()..].to_vec(),
            "hello",
        ),
        (
            "dotdot",
            [hello.clone(), ready.clone(), via("..")].concat(),
            "bad name",
        ),
        (
            "slash",
            [hello.clone(), ready.clone(), via("a/b")].concat(),
            "bad name",
        ),
        (
            "symlink",
            [
                hello.clone(),
                ready.clone(),
                via("link"),
                frame(&Msg::Abort { fid: 77 }),
            ]
            .concat(),
            "abort of an unknown file",
        ),
        (
            "truncated",
            [hello.clone(), ready.clone(), open_root[..6].to_vec()].concat(),
            "closed",
        ),
        (
            "unknown-handle",
            [
                hello.clone(),
                ready.clone(),
                frame(&Msg::List { req: 1, id: 42 }),
            ]
            .concat(),
            "unknown directory handle",
        ),
    ];
    for (case, bytes, needle) in cases {
        let dst = t.path().join(format!("dst-{case}"));
        std::fs::create_dir(&dst).unwrap();
        std::os::unix::fs::symlink(&outside, dst.join("link")).unwrap();
        let fake = fake_peer(t.path(), &format!("server-{case}"), &bytes);
        let rsh = format!("{} --", fake.display());
        let o = cmd(["-e", &rsh])
            .arg("127.0.0.1:/src")
            .arg(&dst)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{case}: {err}");
        assert!(
            err.contains("127.0.0.1") && err.contains(needle),
            "{case}: {err}"
        );
        assert!(!err.contains("panicked"), "{case}: {err}");
        assert_eq!(
            std::fs::read(outside.join("keep")).unwrap(),
            b"keep",
            "{case}"
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1, "{case}");
        let names: Vec<_> = std::fs::read_dir(&dst)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [OsString::from("link")], "{case}");
    }
}

/// A hostile client against `dirsync --server` (the agent of a DST).
#[test]
fn hostile_clients_get_a_clean_error() {
    let t = tempdir();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let dst = t.path().join("dst");
    std::fs::create_dir(&dst).unwrap();
    std::os::unix::fs::symlink(&outside, dst.join("link")).unwrap();
    let setup = Setup {
        role: Role::Agent,
        path: dst.as_os_str().as_bytes().to_vec(),
        flags: 0,
        backend: 2,
        jobs: 1,
        excludes: vec![],
        label: vec![],
        dst_exists: true,
        bwlimit: 0,
        max_size: u64::MAX,
    };
    let start = [
        // No feature: the frames that follow are plain.
        frame(&Msg::Hello(dirsync::remote::hello(0))),
        frame(&Msg::Setup(setup)),
    ]
    .concat();
    let name = |s: &str| CString::new(s).unwrap();
    let open = |id, parent, n: Option<&str>| {
        frame(&Msg::Open {
            id,
            parent,
            name: n.map(name),
        })
    };
    let mut data_too_long = frame(&Msg::Data {
        fid: 1,
        bytes: vec![],
    });
    data_too_long[9..13].copy_from_slice(&1000u32.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            [open(1, 0, None), open(2, 1, Some(".."))].concat(),
            "bad name",
        ),
        (
            "nul",
            [
                open(1, 0, None),
                open(2, 1, Some("a"))
                    .iter()
                    .map(|&b| if b == b'a' { 0 } else { b })
                    .collect(),
            ]
            .concat(),
            "NUL",
        ),
        (
            "symlink",
            [
                open(1, 0, None),
                open(2, 1, Some("link")),
                frame(&Msg::CreateDir {
                    id: 2,
                    name: name("x"),
                }),
                frame(&Msg::Close { id: 99 }),
            ]
            .concat(),
            "unknown handle",
        ),
        ("huge", u32::MAX.to_le_bytes().to_vec(), "bad frame length"),
        (
            "reused",
            [open(1, 0, None), open(1, 0, None)].concat(),
            "protocol error",
        ),
        (
            "data-length",
            [open(1, 0, None), data_too_long].concat(),
            "truncated",
        ),
        (
            "garbage",
            b"\x05\x00\x00\x00\xffabcd".to_vec(),
            "unknown message type",
        ),
    ];
    for (case, bytes, needle) in cases {
        let mut child = Command::new(bin())
            .arg("--server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&start).unwrap();
        let _ = stdin.write_all(&bytes);
        drop(stdin);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3), "{case}: {err}");
        assert!(err.contains(needle), "{case}: {err}");
        assert!(!err.contains("panicked"), "{case}: {err}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "{case}");
    }
}

/// Mounts a tmpfs of `size` on `dir` (root); detached on drop.
struct Tmpfs(CString);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let target = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let opts = CString::new(format!("size={size}")).unwrap();
        // SAFETY: NUL-terminated strings; tmpfs needs no device.
        let r = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        assert_eq!(r, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        Tmpfs(target)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // SAFETY: NUL-terminated path.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Failures on the remote side (a busy mount point that cannot be
/// deleted; a full file system) are reported with the host name: the
/// first as an entry error (exit 2, the rest synced), the second as fatal
/// (exit 3) with no temporary file left. Needs root (mounts): CI runs as
/// root.
#[test]
fn remote_failures_name_the_host_and_a_full_disk_is_fatal() {
    assert!(
        is_root(),
        "this test mounts file systems: run it as root (CI does)"
    );
    let sshd = Sshd::shared();
    let (_t, src, dst) = pair();
    build_sample_tree(&src);
    std::fs::create_dir(&dst).unwrap();
    std::fs::create_dir(dst.join("busy")).unwrap();
    let busy = Tmpfs::mount(&dst.join("busy"), "64k");
    let o = remote_run(sshd, &[OsStr::new("--json"), src.as_os_str(), &r(&dst)]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = out
        .lines()
        .find(|l| l.contains("\"error\""))
        .unwrap_or_else(|| panic!("no error line in {out}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["path"], format!("127.0.0.1:{}/busy", dst.display()));
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("cannot delete: Device or resource busy"),
        "{v}"
    );
    let summary = out.lines().last().unwrap();
    let s: serde_json::Value = serde_json::from_str(summary).unwrap();
    assert_eq!(s["errors"], 1, "{summary}");
    assert_eq!(s["deleted"], 0, "{summary}");
    drop(busy);
    // Everything else was synced; once unmounted, the next run deletes it.
    let o = remote_run(sshd, &[src.as_os_str(), &r(&dst)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_trees_equal(&src, &dst);

    // A full remote file system.
    let t = tempdir();
    let (src, mnt) = (t.path().join("src"), t.path().join("small"));
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    std::fs::write(src.join("a-small"), b"fits").unwrap();
    std::fs::write(src.join("m-huge"), vec![b'x'; 2 << 20]).unwrap();
    let _full = Tmpfs::mount(&mnt, "1m");
    let dst = mnt.join("dst");
    std::fs::create_dir(&dst).unwrap();
    let o = remote_run(sshd, &[src.as_os_str(), &r(&dst)]);
    fatal_with(&o, &["127.0.0.1", "No space left on device"]);
    for e in std::fs::read_dir(&dst).unwrap() {
        let n = e.unwrap().file_name();
        assert!(
            !n.to_string_lossy().starts_with(".dirsync-tmp."),
            "temp file left: {n:?}"
        );
        assert_ne!(n, "m-huge");
    }
}

/// ssh cannot connect or authenticate: ssh's own message, then ours
/// naming the host, exit 3, nothing created.
#[test]
fn unreachable_host_and_refused_key_are_clear_errors() {
    let sshd = Sshd::shared();
    let (t, src, dst) = pair();
    build_sample_tree(&src);
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let rsh = sshd
        .rsh()
        .replace(&format!("-p {}", sshd.port), &format!("-p {port}"));
    let o = cmd(["-e", &rsh]).arg(&src).arg(r(&dst)).output().unwrap();
    fatal_with(
        &o,
        &[
            "Connection refused",
            "127.0.0.1: the connection ended before the handshake",
        ],
    );
    // A key the server does not know.
    let key = t.path().join("stranger");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let rsh = sshd.rsh().replace(
        &sshd.key().display().to_string(),
        &key.display().to_string(),
    );
    let o = cmd(["-e", &rsh]).arg(&src).arg(r(&dst)).output().unwrap();
    fatal_with(
        &o,
        &[
            "Permission denied",
            "127.0.0.1: the connection ended before the handshake",
        ],
    );
    assert!(!dst.exists());
}

//! The agent opens only regular files of DST for reading: a FIFO or a
//! device that has the name of a file the engine compares (`--checksum`)
//! or wants a delta plan of is never opened (an inotify watch on DST sees
//! every open), and a remote run over such a DST completes at once and
//! replaces them as a mirror must.

mod common;
use common::sshd::Sshd;
use common::*;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dirsync::remote::agent::{Agent, Policy};
use dirsync::remote::protocol::frame::{FrameReader, FrameWriter};
use dirsync::remote::protocol::messages::{Answer, Msg, DELTA_MIN};
use dirsync::stat::Statx;
use dirsync::sync::local::LocalReplica;
use dirsync::sync::Options;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn mkfifo(p: &Path) {
    let n = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(n.as_ptr(), 0o644) }, 0);
}

/// `/dev/null`'s numbers under another name (root only).
fn mknull(p: &Path) {
    let n = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; makedev(1, 3) is /dev/null.
    let r = unsafe { libc::mknod(n.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

/// The names opened in `dir` since the watch `fd` began (`IN_OPEN`).
fn opened(fd: i32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // SAFETY: `buf` is writable for its length; `fd` is an inotify
        // descriptor opened non-blocking.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return out;
        }
        let mut at = 0usize;
        while at + 16 <= n as usize {
            let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
            let name = &buf[at + 16..at + 16 + len];
            let end = name.iter().position(|&b| b == 0).unwrap_or(len);
            out.push(name[..end].to_vec());
            at += 16 + len;
        }
    }
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The agent, driven directly, is asked to compare `fifo` and `dev` with
/// content and for a delta plan of both (the engine's listing was stale:
/// they were regular files then). Neither is opened, the compares say
/// "different", the plans "send it whole", and nothing blocks (the whole
/// exchange runs in a thread with a deadline).
#[test]
fn the_agent_never_opens_a_fifo_or_a_device_it_is_asked_to_read() {
    let t = tempdir();
    let dst = t.path().join("dst");
    std::fs::create_dir(&dst).unwrap();
    mkfifo(&dst.join("fifo"));
    let mut names = vec!["fifo"];
    if is_root() {
        mknull(&dst.join("dev"));
        names.push("dev");
    }
    std::fs::write(dst.join("file"), vec![7u8; DELTA_MIN as usize]).unwrap();
    let d = CString::new(dst.as_os_str().as_bytes()).unwrap();
    // SAFETY: plain inotify calls on a NUL-terminated path.
    let ino = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(ino >= 0);
    // SAFETY: as above.
    assert!(unsafe { libc::inotify_add_watch(ino, d.as_ptr(), libc::IN_OPEN) } >= 0);

    let dst2 = dst.clone();
    let names2: Vec<&'static str> = names.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let root = dirsync::sys::open_root(&dst2).unwrap();
        // The receiving user allows special files: their creation is part of
        // what is fuzzed (without --specials each one is a violation).
        let policy = Policy::of(&Options {
            specials: true,
            ..Options::default()
        })
        .unwrap();
        let mut agent = Agent::new(LocalReplica::new(root, Arc::new(Statx), false), policy);
        let sink = Arc::new(Mutex::new(Vec::new()));
        let mut w = FrameWriter::new(Box::new(Sink(sink.clone())));
        let mut msgs = vec![Msg::Open {
            id: 1,
            parent: 0,
            name: None,
        }];
        let mut fid = 0;
        // "file" too: the regular file is compared and planned (the
        // watch sees it opened, so it would see the others).
        for n in names2.iter().chain(&["file"]) {
            fid += 1;
            msgs.push(Msg::FileBegin {
                fid,
                id: 1,
                name: c(n),
                size: 4,
                compare: true,
                fresh: false,
                plan: 0,
            });
            msgs.push(Msg::Data {
                fid,
                bytes: b"abcd".to_vec(),
            });
            msgs.push(Msg::CompareEnd { req: fid, fid });
            fid += 1;
            msgs.push(Msg::FileBegin {
                fid,
                id: 1,
                name: c(n),
                size: DELTA_MIN * 2,
                compare: false,
                fresh: false,
                plan: fid,
            });
            msgs.push(Msg::Abort { fid });
        }
        for m in msgs {
            assert!(agent.handle_msg(m, &mut w).unwrap());
        }
        w.flush().unwrap();
        let bytes = sink.lock().unwrap().clone();
        let mut r = FrameReader::new(Box::new(std::io::Cursor::new(bytes)));
        let mut replies = Vec::new();
        while let Ok((k, p)) = r.read() {
            replies.push(Msg::decode(k, p).unwrap());
        }
        let _ = tx.send(replies);
    });
    let replies = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the agent blocked (or panicked)");
    let opened = opened(ino);
    let shown: Vec<_> = opened.iter().map(|n| String::from_utf8_lossy(n)).collect();
    // SAFETY: `ino` is ours, closed once.
    unsafe { libc::close(ino) };
    for n in &names {
        assert!(
            !opened.contains(&n.as_bytes().to_vec()),
            "{n} was opened: {shown:?}"
        );
    }
    assert!(opened.contains(&b"file".to_vec()), "{shown:?}");
    // Per name: the compare reply, then the plan reply.
    let mut answers = replies.into_iter().filter_map(|m| match m {
        Msg::Reply { result, .. } => Some(result.unwrap()),
        _ => None,
    });
    for n in &names {
        assert_eq!(answers.next(), Some(Answer::Bool(false)), "{n}");
        assert_eq!(answers.next(), Some(Answer::Plan(None)), "{n}");
    }
    assert_eq!(answers.next(), Some(Answer::Bool(false)), "file");
    assert!(
        matches!(answers.next(), Some(Answer::Plan(Some(_)))),
        "file"
    );
    assert_eq!(
        std::fs::metadata(dst.join("file")).unwrap().len(),
        DELTA_MIN
    );
}

/// A push over ssh to a DST where a FIFO (and, as root, a device node)
/// has the name of a SRC file, with `--checksum`, next to a 2 MiB file
/// that changed (delta): the run ends quickly and DST is SRC's mirror.
#[test]
fn a_remote_checksum_and_delta_run_replaces_fifos_and_devices() {
    let sshd = Sshd::shared();
    let (_t, src, dst) = pair();
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    let big: Vec<u8> = (0..2u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(src.join("big"), &big).unwrap();
    let mut old = big.clone();
    old[1 << 20..(1 << 20) + 4096].fill(0);
    std::fs::write(dst.join("big"), &old).unwrap();
    std::fs::write(src.join("fifo"), b"fifo's content").unwrap();
    mkfifo(&dst.join("fifo"));
    if is_root() {
        std::fs::write(src.join("dev"), b"dev's content").unwrap();
        mknull(&dst.join("dev"));
    }
    let start = Instant::now();
    let mut c = cmd(sshd.args());
    c.arg("--checksum").arg(&src).arg(sshd::remote(&dst));
    let o = c.output().unwrap();
    let took = start.elapsed();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_trees_equal(&src, &dst);
}

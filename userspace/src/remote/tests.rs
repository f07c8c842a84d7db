//! The engine against an agent in the same process, over a socket pair:
//! the exchange count does not grow with the number of files (no round
//! trip per file), and the result is the tree a local sync gives.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;

use super::agent::{Agent, Policy};
use super::link::Link;
use super::protocol::frame::{FrameReader, FrameWriter};
use super::replica::RemoteReplica;
use super::server::run_agent;
use crate::report::NullReporter;
use crate::stat::{BackendChoice, Statx};
use crate::sync::local::LocalReplica;
use crate::sync::{Options, Syncer};
use crate::sys;

/// Pushes `src` to `dst` through an in-process agent; returns the summary
/// and the round trips.
fn push(src: &Path, dst: &Path) -> (crate::sync::Summary, u64) {
    let (s, trips, _) = push_jobs(src, dst, 2);
    (s, trips)
}

/// [`push`] with `jobs` threads; also returns the most requests that
/// were on their way at once.
fn push_jobs(src: &Path, dst: &Path, jobs: usize) -> (crate::sync::Summary, u64, u64) {
    push_with(
        src,
        dst,
        Options {
            jobs,
            ..Options::default()
        },
    )
}

/// [`push`] with `options` (both sides).
fn push_with(src: &Path, dst: &Path, options: Options) -> (crate::sync::Summary, u64, u64) {
    let (a, b) = UnixStream::pair().unwrap();
    let root = LocalReplica::new(sys::open_root(dst).unwrap(), Arc::new(Statx), false);
    let policy = Policy::of(&options).unwrap();
    let agent = std::thread::spawn(move || {
        let mut agent = Agent::new(root, policy);
        let mut r = FrameReader::new(Box::new(b.try_clone().unwrap()));
        let mut w = FrameWriter::new(Box::new(b));
        run_agent(Some(&mut agent), &mut r, &mut w, |_| Ok(None::<()>)).unwrap();
    });
    let r = FrameReader::new(Box::new(a.try_clone().unwrap()));
    let w = FrameWriter::new(Box::new(a));
    let link = Link::start(r, w, Arc::new(NullReporter), dst, "test");
    let replica = Box::new(RemoteReplica::one_shot(link.clone()));
    let options = Options {
        stat_backend: BackendChoice::Statx,
        ..options
    };
    let syncer = Syncer::with_replica(
        src,
        dst,
        Some(replica),
        false,
        options,
        Arc::new(NullReporter),
    )
    .unwrap();
    let mut summary = syncer.sync_all().unwrap();
    link.finish(&mut summary, true).unwrap();
    let trips = link.round_trips();
    drop(syncer);
    agent.join().unwrap();
    (summary, trips, link.most_pending())
}

fn tree(root: &Path, dirs: usize, files: usize) {
    for d in 0..dirs {
        let dir = root.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            std::fs::write(dir.join(format!("f{f}")), format!("{d}/{f}")).unwrap();
        }
    }
}

#[test]
fn round_trips_do_not_grow_with_files() {
    let t = tempfile::tempdir().unwrap();
    let mut trips = Vec::new();
    for (i, files) in [10usize, 300].into_iter().enumerate() {
        let (src, dst) = (
            t.path().join(format!("s{i}")),
            t.path().join(format!("d{i}")),
        );
        tree(&src, 4, files);
        std::fs::create_dir(&dst).unwrap();
        let (s, first) = push(&src, &dst);
        assert_eq!(s.copied, 4 * files as u64);
        assert_eq!(s.errors, 0);
        // Changed files in an existing tree: listings, not one exchange each.
        for d in 0..4 {
            std::fs::write(src.join(format!("d{d}/f0")), b"changed!").unwrap();
        }
        let (s, second) = push(&src, &dst);
        assert_eq!(s.copied, 4);
        let out = std::process::Command::new("diff")
            .arg("-r")
            .arg(&src)
            .arg(&dst)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        trips.push((first, second));
    }
    println!("round trips (first copy, resync) for 40 and 1200 files: {trips:?}");
    // The same directories, 30 times the files: the same exchanges.
    assert_eq!(trips[0], trips[1], "{trips:?}");
    // First copy: the root's stat and listing, and the barrier (new
    // directories are known to be empty). Resync: the root's stat, one
    // listing per directory (5) and the barrier; the changed
    // directories' own attributes are set without asking for them.
    assert_eq!(trips[1], (3, 7), "{trips:?}");
}

#[test]
fn listings_are_asked_for_ahead() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("s"), t.path().join("d"));
    tree(&src, 12, 3);
    for d in 0..12 {
        for sub in 0..3 {
            std::fs::create_dir_all(src.join(format!("d{d}/x{sub}"))).unwrap();
        }
    }
    std::fs::create_dir(&dst).unwrap();
    push_jobs(&src, &dst, 1);
    std::fs::write(src.join("d5/x1/new"), b"new").unwrap();
    // One thread: the root's listing is merged before any subdirectory
    // is opened, so the listings of all 12 are on their way at once, and
    // each of those asks for its 3 before they are taken.
    let (s, trips, most) = push_jobs(&src, &dst, 1);
    assert_eq!((s.copied, s.errors), (1, 0));
    assert!(most >= 12, "at most {most} requests at once");
    // Still one request per directory (1 + 12 + 36), the root's stat and
    // the barrier.
    assert_eq!(trips, 1 + 12 + 36 + 2);
    let out = std::process::Command::new("diff")
        .arg("-r")
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The notes an agent sends for `msgs`.
fn notes(
    root: &Path,
    msgs: Vec<super::protocol::messages::Msg>,
) -> Vec<super::protocol::messages::Msg> {
    let replica = LocalReplica::new(sys::open_root(root).unwrap(), Arc::new(Statx), false);
    let mut agent = Agent::new(replica, Policy::of(&Options::default()).unwrap());
    let sink = Sink::default();
    let mut w = FrameWriter::new(Box::new(sink.clone()));
    for m in msgs {
        assert!(agent.handle_msg(m, &mut w).unwrap());
    }
    w.flush().unwrap();
    let bytes = sink.0.lock().unwrap().clone();
    let mut r = FrameReader::new(Box::new(std::io::Cursor::new(bytes)));
    let mut out = Vec::new();
    while let Ok((k, p)) = r.read() {
        out.push(super::protocol::messages::Msg::decode(k, p).unwrap());
    }
    out
}

#[test]
fn a_directory_that_cannot_be_opened_is_reported_once() {
    use super::protocol::messages::{Msg, NoteOp};
    use crate::sync::{Attrs, Over};
    let t = tempfile::tempdir().unwrap();
    let name = |s: &str| std::ffi::CString::new(s).unwrap();
    let file = |fid| {
        vec![
            Msg::FileBegin {
                fid,
                id: 2,
                name: name("f"),
                size: 1,
                compare: false,
                fresh: false,
                plan: 0,
            },
            Msg::Data {
                fid,
                bytes: b"x".to_vec(),
            },
            Msg::Commit {
                fid,
                attrs: Attrs::default(),
                fsync: false,
                over: Over::Entry,
            },
        ]
    };
    let open = |id, parent, n: Option<&str>| Msg::Open {
        id,
        parent,
        name: n.map(name),
    };
    // Gone (removed meanwhile): the first file says so, the next is quiet.
    let mut msgs = vec![open(1, 0, None), open(2, 1, Some("gone"))];
    msgs.extend(file(10));
    msgs.extend(file(11));
    let out = notes(t.path(), msgs);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        matches!(&out[0], Msg::Note { op: NoteOp::Copy, errno: libc::ENOENT, silent: false, path, .. } if path == b"gone/f"),
        "{out:?}"
    );
    assert!(matches!(&out[1], Msg::Note { silent: true, .. }), "{out:?}");
    // Its creation failed (reported): everything in it is quiet.
    std::fs::write(t.path().join("afile"), b"").unwrap();
    let mut msgs = vec![
        open(1, 0, None),
        Msg::CreateDir {
            id: 1,
            name: name("afile"),
        },
        open(2, 1, Some("afile")),
    ];
    msgs.extend(file(10));
    let out = notes(t.path(), msgs);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        matches!(
            &out[0],
            Msg::Note {
                op: NoteOp::CreateDir,
                errno: libc::EEXIST,
                silent: false,
                ..
            }
        ),
        "{out:?}"
    );
    assert!(matches!(&out[1], Msg::Note { silent: true, .. }), "{out:?}");
}

#[test]
fn file_begin_flags_are_the_byte_older_peers_know() {
    use super::protocol::messages::Msg;
    let begin = |compare, fresh| Msg::FileBegin {
        fid: 7,
        id: 1,
        name: std::ffi::CString::new("f").unwrap(),
        size: 3,
        compare,
        fresh,
        plan: 0,
    };
    // fid, id, name (u32 length + bytes), size: then the flags byte.
    let flags_at = 4 + 4 + 4 + 1 + 8;
    for (compare, fresh, byte) in [(false, false, 0), (true, false, 1), (false, true, 2)] {
        let (k, p) = begin(compare, fresh).encode();
        assert_eq!(p[flags_at], byte, "compare {compare}, fresh {fresh}");
        assert_eq!(Msg::decode(k, &p), Ok(begin(compare, fresh)));
    }
    // A bit no build knows is a protocol error, not a guess.
    let (k, mut p) = begin(false, false).encode();
    p[flags_at] = 4;
    assert!(Msg::decode(k, &p).is_err());
}

/// A resync of a directory whose files have extended attributes asks for
/// them all as its listing arrives (every request on its way at once),
/// not one round trip per file, and still repairs one that differs.
#[test]
fn attributes_of_a_directory_are_asked_for_at_once() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("s"), t.path().join("d"));
    std::fs::create_dir_all(src.join("one")).unwrap();
    std::fs::create_dir(&dst).unwrap();
    for f in 0..100 {
        let p = src.join("one").join(format!("f{f}"));
        std::fs::write(&p, format!("{f}")).unwrap();
        if f % 5 != 0 {
            let v = format!("v{f}");
            xattr_set(&p, b"user.t", v.as_bytes()).unwrap();
        }
    }
    let options = || Options {
        xattrs: true,
        ..Options::default()
    };
    let (s, _, _) = push_with(&src, &dst, options());
    assert_eq!(s.errors, 0);
    // DST's value of one differs: the resync sets it again.
    let odd = dst.join("one/f7");
    xattr_set(&odd, b"user.t", b"changed").unwrap();
    let (s, _, most) = push_with(&src, &dst, options());
    assert_eq!(s.errors, 0);
    assert!(most >= 80, "at most {most} requests on their way at once");
    for f in 0..100 {
        let p = dst.join("one").join(format!("f{f}"));
        let want = (f % 5 != 0).then(|| format!("v{f}").into_bytes());
        assert_eq!(xattr_get(&p, b"user.t"), want, "{}", p.display());
    }
}

fn cpath(p: &Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn xattr_set(p: &Path, name: &[u8], v: &[u8]) -> std::io::Result<()> {
    let name = std::ffi::CString::new(name).unwrap();
    rustix::fs::setxattr(
        cpath(p).as_c_str(),
        name.as_c_str(),
        v,
        rustix::fs::XattrFlags::empty(),
    )?;
    Ok(())
}

fn xattr_get(p: &Path, name: &[u8]) -> Option<Vec<u8>> {
    let name = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::getxattr(cpath(p).as_c_str(), name.as_c_str(), &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

//! The side that holds DST keeps its own rules (`remote::agent::policy`)
//! and its tables are bounded, whatever the engine on the other side
//! asks: scripted hostile servers in a pull (prerecorded frames through
//! `-e`), each judged by outcomes: exit code, DST and its surroundings
//! on disk, peak RSS of the client. And the set-id rule of a local run.

mod common;
use common::*;

use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dirsync::remote::protocol::messages::Msg;
use dirsync::sync::{Attrs, Over};
use dirsync::transfer::delta::Op;

fn name(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// What a server says before its engine's requests (no feature: plain
/// frames), and the root opened as handle 1.
fn start() -> Vec<Msg> {
    vec![
        Msg::Hello(dirsync::remote::hello(0)),
        Msg::Ready {
            created: false,
            exists: true,
        },
        Msg::Open {
            id: 1,
            parent: 0,
            name: None,
        },
    ]
}

/// The end of an engine's run: a summary (a client that took everything
/// before it exits 0).
fn done() -> Msg {
    Msg::Done {
        counters: Vec::new(),
        fatal: None,
    }
}

/// A server (for `-e`) in `dir` that prints `msgs` (after [`start`])
/// then swallows its input.
fn server(dir: &Path, case: &str, msgs: &[Msg]) -> String {
    let mut bytes = Vec::new();
    for m in start().iter().chain(msgs) {
        bytes.extend(frame(m));
    }
    let script = prerecorded_peer(dir, case, &bytes, Then::Drain);
    format!("{} --", script.display())
}

/// How a run ended.
struct Run {
    code: Option<i32>,
    stderr: String,
    /// Peak RSS of the client (VmHWM), KiB.
    peak_kib: u64,
}

/// Most RSS a client may reach (the run is killed beyond it).
const RSS_LIMIT_KIB: u64 = 256 << 10;

fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// The largest peak RSS of this process's children waited for so far
/// (`ru_maxrss`, KiB).
fn children_max_rss_kib() -> u64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid, writable rusage; getrusage only writes it.
    let r = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, ru.as_mut_ptr()) };
    assert_eq!(r, 0, "getrusage");
    // SAFETY: getrusage succeeded, so it filled `ru` (and zeroed is a
    // valid rusage anyway).
    let ru = unsafe { ru.assume_init() };
    ru.ru_maxrss as u64
}

/// `dirsync -e RSH args 127.0.0.1:/src DST`, its peak RSS sampled while
/// it runs (killed past [`RSS_LIMIT_KIB`] or 120 s), and bounded after
/// it by [`children_max_rss_kib`].
fn pull(rsh: &str, args: &[&str], dst: &Path) -> Run {
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(bin())
        .args(["-e", rsh])
        .args(args)
        .arg("127.0.0.1:/src")
        .arg(dst)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(k) = vm_hwm(child.id()) {
            peak = peak.max(k);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if peak > RSS_LIMIT_KIB || t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.and_then(|s| s.code()),
        stderr: std::fs::read_to_string(err.path()).unwrap(),
        // A client that ends between two samples: the largest peak of
        // this process's waited-for children bounds it from above.
        peak_kib: peak.max(children_max_rss_kib()),
    }
}

/// A DST with a few entries, next to a directory that must stay as it
/// is; returns (tempdir, dst, outside).
fn dst_tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempdir();
    let (dst, outside) = (t.path().join("dst"), t.path().join("outside"));
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), b"keep").unwrap();
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("file"), b"content").unwrap();
    std::fs::create_dir(dst.join("secret")).unwrap();
    std::fs::write(dst.join("secret/data"), b"s").unwrap();
    std::fs::create_dir(dst.join("private")).unwrap();
    std::os::unix::fs::symlink(&outside, dst.join("link")).unwrap();
    (t, dst, outside)
}

/// The attack was refused: exit 3 naming the host and `needle`, nothing
/// changed in the whole temporary tree (DST and outside), no panic.
#[track_caller]
fn refused(
    case: &str,
    run: &Run,
    needle: &str,
    before: &std::collections::BTreeMap<Vec<u8>, EntryInfo>,
    root: &Path,
) {
    assert_eq!(run.code, Some(3), "{case}: {}", run.stderr);
    assert!(
        run.stderr.contains("127.0.0.1") && run.stderr.contains(needle),
        "{case}: expected {needle:?} in {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{case}: {}", run.stderr);
    let mut after = snapshot(root);
    if case.starts_with("data-") {
        // A file's stream probes once whether this file system can link
        // an unnamed file (a temporary, gone): DST's own times change.
        let b = before.get(&b"dst"[..]).unwrap().clone();
        let a = after.get_mut(&b"dst"[..]).unwrap();
        (a.mtime, a.ctime) = (b.mtime, b.ctime);
    }
    assert!(
        before == &after,
        "{case}: something changed: {:?}",
        diff_keys(before, &after)
    );
}

fn diff_keys(
    a: &std::collections::BTreeMap<Vec<u8>, EntryInfo>,
    b: &std::collections::BTreeMap<Vec<u8>, EntryInfo>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push(format!("gone {}", String::from_utf8_lossy(k))),
            Some(w) if w != v => out.push(format!("changed {}", String::from_utf8_lossy(k))),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("new {}", String::from_utf8_lossy(k)));
    }
    out
}

fn attrs(perm: u32) -> Attrs {
    Attrs {
        perm: Some(perm),
        mtime: Some((1_000_000, 0)),
    }
}

/// A whole file `n` of `data` in handle 1, with mode `perm`.
fn file(fid: u32, n: &str, data: &[u8], perm: u32) -> Vec<Msg> {
    vec![
        Msg::FileBegin {
            fid,
            id: 1,
            name: name(n),
            size: data.len() as u64,
            compare: false,
            fresh: true,
            plan: 0,
        },
        Msg::Data {
            fid,
            bytes: data.to_vec(),
        },
        Msg::Commit {
            fid,
            attrs: attrs(perm),
            fsync: false,
            over: Over::Entry,
        },
    ]
}

fn special(n: &str, fmt: u32, rdev: (u32, u32)) -> Msg {
    Msg::Special {
        id: 1,
        name: name(n),
        fmt,
        rdev,
        attrs: attrs(0o666),
        over: Over::Entry,
    }
}

/// Each case: (name, options, the engine's messages, what the error says).
type Case = (&'static str, Vec<&'static str>, Vec<Msg>, &'static str);

fn run_refused(cases: Vec<Case>) {
    for (case, args, mut msgs, needle) in cases {
        let (t, dst, _outside) = dst_tree();
        let scripts = tempdir();
        msgs.push(done());
        let rsh = server(scripts.path(), case, &msgs);
        let before = snapshot(t.path());
        let run = pull(&rsh, &args, &dst);
        refused(case, &run, needle, &before, t.path());
    }
}

#[test]
fn devices_and_fifos_need_specials() {
    run_refused(vec![
        (
            "block",
            vec![],
            vec![special("sda", libc::S_IFBLK, (8, 0))],
            "block device without --specials",
        ),
        (
            "char",
            vec![],
            vec![special("mem", libc::S_IFCHR, (1, 1))],
            "character device without --specials",
        ),
        (
            "fifo",
            vec![],
            vec![special("fifo", libc::S_IFIFO, (0, 0))],
            "fifo without --specials",
        ),
        // Any other file type is not a special file: a decoding error.
        (
            "regular-as-special",
            vec!["--specials"],
            vec![special("reg", libc::S_IFREG, (0, 0))],
            "special file type",
        ),
    ]);
    // With --specials the same FIFO is made (the rule, not a blanket
    // refusal), without its set-id bits.
    let (_t, dst, _outside) = dst_tree();
    let scripts = tempdir();
    let mut fifo = special("fifo", libc::S_IFIFO, (0, 0));
    if let Msg::Special { attrs: a, .. } = &mut fifo {
        a.perm = Some(0o6644);
    }
    let rsh = server(scripts.path(), "fifo-ok", &[fifo, done()]);
    let run = pull(&rsh, &["--specials"], &dst);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let m = std::fs::symlink_metadata(dst.join("fifo")).unwrap();
    assert_eq!(m.mode() & libc::S_IFMT, libc::S_IFIFO);
    assert_eq!(m.mode() & 0o7777, 0o644);
}

#[test]
fn set_id_bits_received_are_cleared() {
    let (_t, dst, _outside) = dst_tree();
    let scripts = tempdir();
    let mut msgs = file(1, "suid", b"#!/bin/sh\n", 0o4755);
    msgs.extend(file(2, "sgid", b"#!/bin/sh\n", 0o2755));
    msgs.push(Msg::SetAttrs {
        id: 1,
        name: Some(name("file")),
        attrs: attrs(0o6755),
    });
    // A directory keeps its set-group-ID bit (new entries' group).
    msgs.push(Msg::SetAttrs {
        id: 1,
        name: Some(name("private")),
        attrs: attrs(0o2755),
    });
    msgs.push(done());
    let rsh = server(scripts.path(), "suid", &msgs);
    let run = pull(&rsh, &[], &dst);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mode = |n: &str| std::fs::symlink_metadata(dst.join(n)).unwrap().mode() & 0o7777;
    assert_eq!(mode("suid"), 0o755);
    assert_eq!(mode("sgid"), 0o755);
    assert_eq!(mode("file"), 0o755);
    assert_eq!(mode("private"), 0o2755);
    assert_eq!(std::fs::read(dst.join("suid")).unwrap(), b"#!/bin/sh\n");
}

#[test]
fn a_dry_run_changes_nothing() {
    let n = || vec!["-n"];
    let mut cases: Vec<Case> = vec![
        (
            "create-dir",
            n(),
            vec![Msg::CreateDir {
                id: 1,
                name: name("new"),
            }],
            "creating a directory in a dry run",
        ),
        (
            "remove",
            vec!["-n", "--no-delete"],
            vec![Msg::Remove {
                id: 1,
                name: name("file"),
            }],
            "removal in a dry run",
        ),
        (
            "set-attrs",
            n(),
            vec![Msg::SetAttrs {
                id: 1,
                name: Some(name("file")),
                attrs: attrs(0o777),
            }],
            "setting attributes in a dry run",
        ),
        (
            "symlink",
            n(),
            vec![Msg::Symlink {
                id: 1,
                name: name("file"),
                target: b"/etc/passwd".to_vec(),
                attrs: Attrs::default(),
                over: Over::Entry,
            }],
            "symlink in a dry run",
        ),
        (
            "file",
            n(),
            file(1, "file", b"overwritten", 0o644),
            "a file in a dry run",
        ),
        (
            "rename",
            n(),
            vec![Msg::Rename {
                req: 1,
                from: vec![name("file")],
                to: vec![name("moved")],
            }],
            "rename in a dry run",
        ),
    ];
    cases.push((
        "special",
        vec!["-n", "--specials"],
        vec![special("fifo", libc::S_IFIFO, (0, 0))],
        "special file in a dry run",
    ));
    run_refused(cases);
}

#[test]
fn no_delete_removes_nothing() {
    run_refused(vec![(
        "remove",
        vec!["--no-delete"],
        vec![
            Msg::Remove {
                id: 1,
                name: name("file"),
            },
            Msg::Close { id: 1 },
        ],
        "removal under --no-delete",
    )]);
    // Held to the end of the run: refused at the summary.
    run_refused(vec![(
        "remove-then-done",
        vec!["--no-delete"],
        vec![Msg::Remove {
            id: 1,
            name: name("file"),
        }],
        "removal under --no-delete",
    )]);
    // A file replaced by a directory is what a local --no-delete run
    // does too: the removal goes with the directory's creation.
    let (_t, dst, _outside) = dst_tree();
    let scripts = tempdir();
    let msgs = [
        Msg::Remove {
            id: 1,
            name: name("file"),
        },
        Msg::CreateDir {
            id: 1,
            name: name("file"),
        },
        done(),
    ];
    let rsh = server(scripts.path(), "replace", &msgs);
    let run = pull(&rsh, &["--no-delete"], &dst);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(dst.join("file").is_dir());
}

#[test]
fn partial_files_are_kept_under_no_delete() {
    let (_t, dst, _outside) = dst_tree();
    std::fs::write(dst.join(".dirsync-partial.gone"), b"half").unwrap();
    let scripts = tempdir();
    let msgs = [Msg::List { req: 1, id: 1 }, Msg::Close { id: 1 }, done()];
    let rsh = server(scripts.path(), "partials", &msgs);
    let run = pull(&rsh, &["--no-delete"], &dst);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        std::fs::read(dst.join(".dirsync-partial.gone")).unwrap(),
        b"half"
    );
    // Without --no-delete, an unused partial file goes (as before).
    let run = pull(&rsh, &[], &dst);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!dst.join(".dirsync-partial.gone").exists());
}

#[test]
fn excluded_paths_do_not_change() {
    let ex = || vec!["--exclude", "secret", "--exclude", "private/"];
    let open_private = Msg::Open {
        id: 2,
        parent: 1,
        name: Some(name("private")),
    };
    let mut in_private = file(1, "f", b"x", 0o644);
    for m in &mut in_private {
        if let Msg::FileBegin { id, .. } = m {
            *id = 2;
        }
    }
    in_private.insert(0, open_private);
    run_refused(vec![
        (
            "create",
            ex(),
            vec![Msg::CreateDir {
                id: 1,
                name: name("secret"),
            }],
            "creating an excluded directory",
        ),
        (
            "remove",
            ex(),
            vec![Msg::Remove {
                id: 1,
                name: name("secret"),
            }],
            "removing an excluded entry",
        ),
        (
            "file",
            ex(),
            file(1, "secret", b"x", 0o644),
            "an excluded file",
        ),
        (
            "attrs",
            ex(),
            vec![Msg::SetAttrs {
                id: 1,
                name: Some(name("private")),
                attrs: attrs(0o777),
            }],
            "setting attributes of an excluded entry",
        ),
        ("below", ex(), in_private, "an excluded file"),
    ]);
}

#[test]
fn nested_opens_stay_small() {
    const OPENS: u32 = 1 << 16;
    let (t, dst, _outside) = dst_tree();
    let scripts = tempdir();
    let long = "n".repeat(255);
    // The root is handle 1; 65,535 nested directories of 255-byte names
    // fill the table; one more open is refused.
    let mut msgs: Vec<Msg> = (2..=OPENS + 1)
        .map(|id| Msg::Open {
            id,
            parent: id - 1,
            name: Some(name(&long)),
        })
        .collect();
    msgs.push(done());
    let rsh = server(scripts.path(), "nested", &msgs);
    let before = snapshot(t.path());
    let t0 = Instant::now();
    let run = pull(&rsh, &[], &dst);
    let secs = t0.elapsed().as_secs_f64();
    eprintln!("nested opens: peak RSS {} KiB, {secs:.2} s", run.peak_kib);
    assert!(
        run.peak_kib > 0 && run.peak_kib < RSS_LIMIT_KIB,
        "peak RSS {} KiB",
        run.peak_kib
    );
    refused("nested", &run, "too many handles", &before, t.path());
}

/// A delta whose copy ops repeat the basis: the partial file never
/// exceeds the declared size; DST's file is unchanged.
#[test]
fn delta_ops_cannot_outgrow_the_declared_size() {
    const BASIS: usize = 4 << 20;
    const DECLARED: u64 = 8 << 20;
    let (_t, dst, _outside) = dst_tree();
    let basis: Vec<u8> = (0..BASIS as u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(dst.join("big"), &basis).unwrap();
    let scripts = tempdir();
    // One block at a time, whatever the block length: 64 MiB of output
    // from 4 KiB blocks, 16 MiB from 1 KiB ones... far beyond 8 MiB.
    let mut ops = Vec::new();
    for _ in 0..16384 {
        Op::Copy { start: 0, count: 1 }.encode(&mut ops);
    }
    let mut msgs = vec![Msg::FileBegin {
        fid: 1,
        id: 1,
        name: name("big"),
        size: DECLARED,
        compare: false,
        fresh: false,
        plan: 1,
    }];
    for chunk in ops.chunks(60_000) {
        msgs.push(Msg::Delta {
            fid: 1,
            ops: chunk.to_vec(),
        });
    }
    msgs.push(Msg::Commit {
        fid: 1,
        attrs: attrs(0o644),
        fsync: false,
        over: Over::Entry,
    });
    let rsh = server(scripts.path(), "delta", &msgs);
    let run = pull(&rsh, &[], &dst);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr.contains("127.0.0.1") && run.stderr.contains("declared"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(
        std::fs::read(dst.join("big")).unwrap() == basis,
        "DST's file changed"
    );
    let partial = dst.join(".dirsync-partial.big");
    let len = std::fs::metadata(&partial).map_or(0, |m| m.len());
    eprintln!("delta: exit {:?}, partial file {len} bytes", run.code);
    assert!(len <= DECLARED, "partial file of {len} bytes");
}

#[test]
fn data_must_match_the_declared_size() {
    let begin = |size| Msg::FileBegin {
        fid: 1,
        id: 1,
        name: name("new"),
        size,
        compare: false,
        fresh: true,
        plan: 0,
    };
    let data = |n: usize| Msg::Data {
        fid: 1,
        bytes: vec![b'x'; n],
    };
    let commit = Msg::Commit {
        fid: 1,
        attrs: attrs(0o644),
        fsync: false,
        over: Over::Entry,
    };
    run_refused(vec![
        (
            "data-more",
            vec![],
            vec![begin(10), data(6), data(5), commit.clone()],
            "more than the 10 bytes declared",
        ),
        (
            "data-fewer",
            vec![],
            vec![begin(10), data(5), commit.clone()],
            "5 of the 10 bytes declared",
        ),
    ]);
}

#[test]
fn max_size_files_are_not_received() {
    let (_t, dst, _outside) = dst_tree();
    let scripts = tempdir();
    let mut msgs = file(1, "large", &[b'x'; 100], 0o644);
    msgs.extend(file(2, "small", &[b'y'; 10], 0o644));
    msgs.push(done());
    let rsh = server(scripts.path(), "max-size", &msgs);
    let run = pull(&rsh, &["--max-size", "10"], &dst);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!dst.join("large").exists());
    assert_eq!(std::fs::read(dst.join("small")).unwrap(), [b'y'; 10]);
}

/// Local: root copying a set-uid file of uid 65534 without `-o` makes
/// no set-uid-root file; with `-o` it keeps the bit and the owner.
#[test]
fn local_set_id_follows_the_owner() {
    assert!(
        is_root(),
        "this test chowns files: run it as root (CI does)"
    );
    let t = tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let f = src.join("prog");
    std::fs::write(&f, b"#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o6755)).unwrap();
    let mine = src.join("mine");
    std::fs::write(&mine, b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let plain = t.path().join("plain");
    let o = cmd([src.as_os_str(), plain.as_os_str()]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m = std::fs::metadata(plain.join("prog")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o755));
    // root's own set-uid file stays set-uid (its owner is SRC's).
    let m = std::fs::metadata(plain.join("mine")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o4755));
    // A second run converges (no attribute change reported every time).
    let o = cmd(["-v", src.to_str().unwrap(), plain.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = [o.stdout, o.stderr].concat();
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.contains("prog") || out.is_empty() || !out.contains("Updated attributes"),
        "{out}"
    );
    assert!(!out.contains("Updated attributes"), "{out}");
    let owned = t.path().join("owned");
    let o = cmd(["-o", "-g", src.to_str().unwrap(), owned.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m = std::fs::metadata(owned.join("prog")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (65534, 65534, 0o6755)
    );
}

/// `--max-size` locally: larger files are skipped (reported), DST's copy
/// of one is left alone, smaller ones are copied; a plain number is
/// bytes, a suffix is understood.
#[test]
fn max_size_skips_larger_files_locally() {
    let t = tempdir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(src.join("small"), [b's'; 10]).unwrap();
    std::fs::write(src.join("large"), [b'l'; 11]).unwrap();
    std::fs::write(src.join("kilo"), vec![b'k'; 2048]).unwrap();
    std::fs::write(dst.join("large"), b"old").unwrap();
    let o = cmd(["-v", "--max-size", "10"])
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("larger than --max-size"), "{out}");
    assert_eq!(std::fs::read(dst.join("small")).unwrap(), [b's'; 10]);
    assert_eq!(std::fs::read(dst.join("large")).unwrap(), b"old");
    assert!(!dst.join("kilo").exists());
    let o = cmd(["--max-size", "2K"])
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read(dst.join("kilo")).unwrap().len(), 2048);
    assert_eq!(std::fs::read(dst.join("large")).unwrap(), [b'l'; 11]);
    let o = cmd(["--max-size", "ten"])
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

/// A push: `dirsync --server` as the agent of its DST keeps the rules of
/// the setup's options against a client that breaks them (no FIFO
/// without --specials, nothing under -n, nothing larger than
/// --max-size).
#[test]
fn the_server_agent_keeps_the_setup_rules() {
    use dirsync::remote::protocol::messages::{Role, Setup, OPT_DRY_RUN};
    use std::io::{Read, Write};
    let run = |dst: &Path, flags: u32, max_size: u64, msgs: &[Msg]| {
        let setup = Setup {
            role: Role::Agent,
            path: dst.as_os_str().as_encoded_bytes().to_vec(),
            flags,
            backend: 2,
            jobs: 1,
            excludes: vec![],
            label: vec![],
            dst_exists: true,
            bwlimit: 0,
            max_size,
        };
        let mut bytes = frame(&Msg::Hello(dirsync::remote::hello(0)));
        bytes.extend(frame(&Msg::Setup(setup)));
        bytes.extend(frame(&Msg::Open {
            id: 1,
            parent: 0,
            name: None,
        }));
        for m in msgs {
            bytes.extend(frame(m));
        }
        bytes.extend(frame(&Msg::Bye));
        let mut child = Command::new(bin())
            .arg("--server")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(&bytes);
        drop(stdin);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (child.wait().unwrap().code(), err)
    };
    let (t, dst, _outside) = dst_tree();
    let before = snapshot(t.path());
    let (code, err) = run(&dst, 0, u64::MAX, &[special("fifo", libc::S_IFIFO, (0, 0))]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("fifo without --specials"), "{err}");
    let (code, err) = run(&dst, OPT_DRY_RUN, u64::MAX, &file(1, "new", b"x", 0o644));
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("a file in a dry run"), "{err}");
    assert!(before == snapshot(t.path()), "something changed");
    let mut msgs = file(1, "large", &[b'x'; 11], 0o4755);
    msgs.extend(file(2, "small", &[b'y'; 10], 0o4755));
    let (code, err) = run(&dst, 0, 10, &msgs);
    assert_eq!(code, Some(0), "{err}");
    assert!(!dst.join("large").exists());
    let m = std::fs::metadata(dst.join("small")).unwrap();
    assert_eq!((m.len(), m.mode() & 0o7777), (10, 0o755));
}

/// An honest engine never trips the rules: real pulls and pushes through
/// sshd with the options the rules come from (-n with --checksum,
/// --no-delete over entries that change type, --exclude, --max-size,
/// and a delta of a large file).
#[test]
fn honest_runs_never_trip_the_rules() {
    use common::sshd::{remote, Sshd};
    let sshd = Sshd::shared();
    for push in [false, true] {
        let t = tempdir();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        build_sample_tree(&src);
        std::fs::create_dir_all(src.join("becomes-dir")).unwrap();
        std::fs::write(src.join("becomes-file"), b"f").unwrap();
        std::fs::create_dir_all(src.join("keep/sub")).unwrap();
        std::fs::write(src.join("keep/sub/x.o"), b"object").unwrap();
        let large: Vec<u8> = (0..3u32 << 20).map(|i| (i * 13 % 251) as u8).collect();
        std::fs::write(src.join("large"), &large).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(dst.join("becomes-dir"), b"was a file").unwrap();
        std::fs::create_dir_all(dst.join("becomes-file/inner")).unwrap();
        std::fs::write(dst.join("extra"), b"only in DST").unwrap();
        let mut old = large.clone();
        old[1 << 20..(1 << 20) + 100].fill(0);
        std::fs::write(dst.join("large"), &old).unwrap();
        let go = |args: &[&str]| {
            let (s, d) = match push {
                true => (src.clone(), remote(&dst)),
                false => (remote(&src), dst.clone()),
            };
            let o = cmd(sshd.args()).args(args).arg(s).arg(d).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            assert_eq!(o.status.code(), Some(0), "push {push} {args:?}: {err}");
        };
        let before = snapshot(&dst);
        go(&["-n", "--checksum"]);
        go(&["-n", "--no-delete", "--exclude", "*.o"]);
        assert!(
            before == snapshot(&dst),
            "push {push}: a dry run changed DST"
        );
        go(&["--no-delete", "--exclude", "*.o", "--max-size", "2M"]);
        assert!(dst.join("becomes-dir").is_dir());
        assert_eq!(std::fs::read(dst.join("becomes-file")).unwrap(), b"f");
        assert_eq!(std::fs::read(dst.join("extra")).unwrap(), b"only in DST");
        assert!(!dst.join("keep/sub/x.o").exists());
        assert!(
            std::fs::read(dst.join("large")).unwrap() == old,
            "over --max-size"
        );
        go(&["--exclude", "*.o", "--checksum"]);
        assert!(std::fs::read(dst.join("large")).unwrap() == large);
        assert!(!dst.join("extra").exists());
        go(&[]);
        std::fs::remove_file(dst.join("extra")).ok();
        assert_trees_equal(&src, &dst);
    }
}

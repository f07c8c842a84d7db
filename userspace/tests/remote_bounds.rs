//! The engine's end of a link is bounded and nothing waits for ever:
//! hostile servers (`examples/hostile_peer`'s `bounds` scenarios answer
//! requests, `fake_peer` prints prerecorded frames) sending an endless
//! listing, huge counts, a note about a path outside the tree, a zstd
//! stream asking for a 128 MiB window, or nothing after the handshake;
//! a silent client against `dirsync --server`; and an honest run slower
//! than `--timeout` that keepalives keep alive. Each asserts the exit
//! code, the wall time and the peak RSS (`VmHWM` of the run's process,
//! sampled every 5 ms until it ends), and what is on disk.

mod common;
use common::*;

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dirsync::remote::protocol::messages::{
    Hello, Msg, NoteOp, Role, Setup, FEATURES, FEATURE_KEEPALIVE, FEATURE_ZSTD, KEEPALIVE, PROTOCOL,
};

fn hello(features: u64) -> Vec<u8> {
    frame(&Msg::Hello(Hello {
        protocol: PROTOCOL,
        version: b"hostile".to_vec(),
        features,
    }))
}

fn ready() -> Vec<u8> {
    frame(&Msg::Ready {
        created: false,
        exists: true,
    })
}

/// An `-e` command that prints `bytes`, then reads its input to the end
/// and says nothing more (its output stays open until then).
fn fake_peer(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let script = prerecorded_peer(dir, name, bytes, Then::HoldOpen);
    format!("{} --", script.display())
}

/// What a measured run did.
#[derive(Debug)]
struct Run {
    /// Exit code (`None`: killed at the limit).
    code: Option<i32>,
    stdout: String,
    stderr: String,
    secs: f64,
    /// Peak RSS of the process alone, in MiB.
    rss_mib: f64,
}

/// Runs `c` (stdin closed), killing it after `limit`; its peak RSS is
/// its `VmHWM`.
fn measured(mut c: Command, limit: Duration) -> Run {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = c.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let (code, hwm_kib) = wait_measured(&mut child, start, limit);
    let secs = start.elapsed().as_secs_f64();
    Run {
        code,
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
        secs,
        rss_mib: hwm_kib as f64 / 1024.0,
    }
}

/// Waits for `child` (killed once `limit` passed since `start`): its
/// exit code (`None`: killed) and its peak RSS in KiB (`VmHWM`, the last
/// sample before it ended: it only grows).
fn wait_measured(child: &mut Child, start: Instant, limit: Duration) -> (Option<i32>, u64) {
    let pid = child.id();
    let mut killed = false;
    let mut hwm = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let kib = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            hwm = hwm.max(kib.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), hwm);
        }
        if !killed && start.elapsed() > limit {
            child.kill().unwrap();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `dirsync ARGS -e HOSTILE SRC 127.0.0.1:/dst`, the hostile peer playing
/// `scenario`, measured (killed after 60 s).
fn push_to_hostile(src: &Path, scenario: &str, args: &[&str]) -> Run {
    let mut c = Command::new(bin());
    c.args(args)
        .arg("-e")
        .arg(hostile_rsh(scenario))
        .arg(src)
        .arg("127.0.0.1:/dst");
    measured(c, Duration::from_secs(60))
}

fn dirsync(args: &[&std::ffi::OsStr]) -> Command {
    let mut c = Command::new(bin());
    c.args(args);
    c
}

#[track_caller]
fn fatal(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, Some(3), "{run:?}");
    for n in needles {
        assert!(run.stderr.contains(n), "expected {n:?} in {run:?}");
    }
    assert!(!run.stderr.contains("panicked"), "{run:?}");
}

fn src_with_file(t: &Path) -> PathBuf {
    let src = t.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    src
}

/// The hostile agent of a push answers the first listing with parts of
/// 60,000 entries for ever (64 MiB at most: a client without bounds kept
/// ten times that): cut at the entry bound, early, in little memory.
#[test]
fn an_endless_listing_is_cut_early_in_little_memory() {
    let t = tempdir();
    let src = src_with_file(t.path());
    let run = push_to_hostile(&src, "endless-listing", &["--timeout", "20"]);
    fatal(
        &run,
        &["127.0.0.1", "a listing of more than 1048576 entries"],
    );
    assert!(run.secs < 15.0, "{run:?}");
    assert!(run.rss_mib < 256.0, "{run:?}");
    eprintln!("endless listing: {:.1} s, {:.0} MiB", run.secs, run.rss_mib);
}

/// Counts of u64::MAX in the agent's notes saturate (no wrap, no panic of
/// the reader thread, no wait for ever); a failed copy is reported.
#[test]
fn huge_counts_in_notes_saturate() {
    let t = tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let run = push_to_hostile(&src, "huge-counts", &["--json", "--timeout", "10"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    let last = run.stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["deleted"], i64::MAX as u64, "{last}");
    assert_eq!(v["bytes"], 0, "{last}");
    assert_eq!(v["errors"], 1, "{last}");
    assert!(run.secs < 8.0, "{run:?}");
}

/// A note's path is shown under the host's label: one that is absolute
/// or climbs out (`..`) is a protocol error, not a path of this host.
#[test]
fn a_note_about_a_path_outside_the_tree_is_refused() {
    for scenario in ["note-absolute", "note-dotdot"] {
        let t = tempdir();
        let src = t.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let run = push_to_hostile(&src, scenario, &["--timeout", "10"]);
        fatal(&run, &["127.0.0.1", "outside the tree"]);
        assert!(!run.stderr.contains("etc"), "{scenario}: {run:?}");
    }
}

/// A zstd stream whose frame asks for a 128 MiB window (and fills it) is
/// refused before the window is reserved.
#[test]
fn a_zstd_window_beyond_8_mib_is_refused() {
    let t = tempdir();
    let src = src_with_file(t.path());
    let note = frame(&Msg::Note {
        op: NoteOp::SetAttrs,
        path: b"n".to_vec(),
        errno: 0,
        count: 0,
        silent: false,
    });
    let mut plain = ready();
    while plain.len() < 120 << 20 {
        plain.extend_from_slice(&note);
    }
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    enc.window_log(27).unwrap();
    enc.write_all(&plain).unwrap();
    drop(plain);
    let packed = enc.finish().unwrap();
    let rsh = fake_peer(t.path(), "window", &[hello(FEATURE_ZSTD), packed].concat());
    let c = dirsync(&[
        "-z".as_ref(),
        "--timeout".as_ref(),
        "10".as_ref(),
        "-e".as_ref(),
        rsh.as_ref(),
        src.as_os_str(),
        "127.0.0.1:/dst".as_ref(),
    ]);
    let run = measured(c, Duration::from_secs(60));
    fatal(&run, &["127.0.0.1"]);
    assert!(run.secs < 8.0, "{run:?}");
    assert!(run.rss_mib < 64.0, "{run:?}");
    eprintln!("zstd window: {:.1} s, {:.0} MiB", run.secs, run.rss_mib);
}

/// A server silent after the handshake (or before it), in a push and in
/// a pull: `--timeout 2` ends the run in 2 to 6 s, exit 3, nothing under
/// a final name in the pull's DST.
#[test]
fn a_silent_server_times_out() {
    let t = tempdir();
    let src = src_with_file(t.path());
    let greeted = fake_peer(t.path(), "silent", &[hello(0), ready()].concat());
    let mute = fake_peer(t.path(), "mute", b"");
    let pulled = t.path().join("pulled");
    // The lead's hostile peer offers keepalives and sends none: ours do
    // not upset it (its reader takes them in), and the run times out.
    let hostile = hostile_rsh("silent-after-ready");
    let dst: &std::ffi::OsStr = "127.0.0.1:/dst".as_ref();
    let remote_src: &std::ffi::OsStr = "127.0.0.1:/src".as_ref();
    let cases = [
        ("push", &greeted, src.as_os_str(), dst),
        ("pull", &greeted, remote_src, pulled.as_os_str()),
        ("handshake", &mute, src.as_os_str(), dst),
        ("keepalive push", &hostile, src.as_os_str(), dst),
        ("keepalive pull", &hostile, remote_src, pulled.as_os_str()),
    ];
    for (case, rsh, a, b) in cases {
        let c = dirsync(&[
            "--timeout".as_ref(),
            "2".as_ref(),
            "-e".as_ref(),
            rsh.as_ref(),
            a,
            b,
        ]);
        let run = measured(c, Duration::from_secs(30));
        fatal(&run, &["127.0.0.1", "no data for 2 s (--timeout)"]);
        assert!((1.9..6.0).contains(&run.secs), "{case}: {run:?}");
    }
    let names: Vec<_> = std::fs::read_dir(&pulled)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(names.is_empty(), "{names:?}");
}

/// `dirsync --server` with a client that sends its hello and setup, then
/// nothing: the server ends within its timeout (its own, or the one the
/// client's keepalive told it), exit 3.
#[test]
fn a_silent_client_does_not_keep_the_server() {
    let t = tempdir();
    let dst = t.path().join("dst");
    std::fs::create_dir(&dst).unwrap();
    let setup = frame(&Msg::Setup(Setup {
        role: Role::Agent,
        path: dst.as_os_str().as_bytes().to_vec(),
        flags: 0,
        backend: 0,
        jobs: 0,
        excludes: Vec::new(),
        label: Vec::new(),
        dst_exists: true,
        bwlimit: 0,
        max_size: u64::MAX,
    }));
    let keepalive_1s = [
        5u32.to_le_bytes().to_vec(),
        vec![KEEPALIVE],
        1u32.to_le_bytes().to_vec(),
    ]
    .concat();
    let cases = [
        ("own timeout", Some("2"), hello(0), Vec::new(), 1.9),
        (
            "the client's",
            None,
            hello(FEATURES & !FEATURE_ZSTD),
            keepalive_1s,
            0.9,
        ),
    ];
    for (case, env, hello, extra, least) in cases {
        let mut c = Command::new(bin());
        c.arg("--server");
        match env {
            Some(v) => c.env("DIRSYNC_TIMEOUT", v),
            None => c.env_remove("DIRSYNC_TIMEOUT"),
        };
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = c.spawn().unwrap();
        let mut inp = child.stdin.take().unwrap();
        inp.write_all(&[hello, setup.clone(), extra].concat())
            .unwrap();
        inp.flush().unwrap();
        let mut out = child.stdout.take().unwrap();
        let drain = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
        });
        let (code, _) = wait_measured(&mut child, start, Duration::from_secs(30));
        let secs = start.elapsed().as_secs_f64();
        drop(inp);
        drain.join().unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(code, Some(3), "{case}: {secs:.1} s: {err}");
        assert!((least..6.0).contains(&secs), "{case}: {secs:.1} s: {err}");
        assert!(err.contains("(--timeout)"), "{case}: {err}");
        assert_eq!(std::fs::read_dir(&dst).unwrap().count(), 0, "{case}");
    }
}

/// An honest push that lasts longer than `--timeout` (--bwlimit): while
/// the file streams, the agent has nothing to say but keepalives, and
/// the run is not cut.
#[test]
fn a_slow_but_live_run_is_not_cut() {
    let t = tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let data: Vec<u8> = (0..700_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("big"), &data).unwrap();
    std::fs::write(src.join("small"), b"s").unwrap();
    let dst = t.path().join("dst");
    // A local transport: runs the remote command with sh.
    let rsh = t.path().join("local-rsh");
    write_script(&rsh, "#!/bin/sh\nshift\nexec sh -c \"$1\"\n");
    let remote = format!("127.0.0.1:{}", dst.display());
    let c = dirsync(&[
        "--timeout".as_ref(),
        "2".as_ref(),
        "--bwlimit".as_ref(),
        "100K".as_ref(),
        "-e".as_ref(),
        rsh.as_os_str(),
        "--remote-path".as_ref(),
        bin().as_os_str(),
        src.as_os_str(),
        remote.as_ref(),
    ]);
    let run = measured(c, Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.secs > 4.0, "not slower than the timeout: {run:?}");
    assert!(std::fs::read(dst.join("big")).unwrap() == data);
    assert_eq!(std::fs::read(dst.join("small")).unwrap(), b"s");
    eprintln!("slow run: {:.1} s", run.secs);
}

/// `dirsync watch` with a remote DST whose server goes silent after the
/// handshake: the timeout is a lost connection, reconnected with
/// back-off (each connection runs the transport once more).
#[test]
fn a_watch_reconnects_when_its_server_goes_silent() {
    let t = tempdir();
    let src = src_with_file(t.path());
    let data = t.path().join("greeting.bin");
    // It says it has keepalives (a watch has no timeout with a server
    // that has none), and sends none.
    std::fs::write(&data, [hello(FEATURE_KEEPALIVE), ready()].concat()).unwrap();
    let count = t.path().join("connections");
    let script = t.path().join("silent-counted");
    let text = format!(
        "#!/bin/sh\necho x >> '{}'\ncat '{}'\ncat >/dev/null\n",
        count.display(),
        data.display()
    );
    write_script(&script, text);
    let rsh = format!("{} --", script.display());
    let c = dirsync(&[
        "watch".as_ref(),
        "--timeout".as_ref(),
        "1".as_ref(),
        "-e".as_ref(),
        rsh.as_ref(),
        src.as_os_str(),
        "127.0.0.1:/dst".as_ref(),
    ]);
    // Killed after 8 s: a hung first connection is one connection.
    let run = measured(c, Duration::from_secs(8));
    assert_eq!(run.code, None, "{run:?}");
    let n = std::fs::read(&count).unwrap().len() / 2;
    assert!(n >= 3, "{n} connections in 8 s: {run:?}");
    assert!(
        run.stderr.contains("no data for 1 s (--timeout)"),
        "{run:?}"
    );
}

#[test]
fn help_documents_the_timeout() {
    for args in [&["--help"][..], &["watch", "--help"]] {
        let o = Command::new(bin()).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(0));
        let h = String::from_utf8_lossy(&o.stdout);
        for needle in ["--timeout <SECONDS>", "[default: 120]", "0: no timeout"] {
            assert!(h.contains(needle), "{args:?} lacks {needle:?}:\n{h}");
        }
    }
}

/// A pulling server that starts a file, sends part of it, then goes
/// silent: the timeout ends the run, and DST has nothing under the
/// file's name (nor a partial file left behind).
#[test]
fn a_timeout_in_the_middle_of_a_file_leaves_no_file() {
    let t = tempdir();
    let dst = t.path().join("dst");
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("keep"), b"keep").unwrap();
    let name = |n: &str| CString::new(n).unwrap();
    let bytes = [
        hello(0),
        ready(),
        frame(&Msg::Open {
            id: 1,
            parent: 0,
            name: None,
        }),
        frame(&Msg::FileBegin {
            fid: 1,
            id: 1,
            name: name("f"),
            size: 1000,
            compare: false,
            fresh: false,
            plan: 0,
        }),
        frame(&Msg::Data {
            fid: 1,
            bytes: vec![b'x'; 100],
        }),
    ]
    .concat();
    let rsh = fake_peer(t.path(), "half-file", &bytes);
    let c = dirsync(&[
        "--timeout".as_ref(),
        "2".as_ref(),
        "-e".as_ref(),
        rsh.as_ref(),
        "127.0.0.1:/src".as_ref(),
        dst.as_os_str(),
    ]);
    let run = measured(c, Duration::from_secs(30));
    fatal(&run, &["127.0.0.1", "no data for 2 s (--timeout)"]);
    assert!((1.9..6.0).contains(&run.secs), "{run:?}");
    let mut names: Vec<_> = std::fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["keep"], "{run:?}");
    assert_eq!(std::fs::read(dst.join("keep")).unwrap(), b"keep");
}

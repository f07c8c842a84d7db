//! Delta transfer, compression, `--bwlimit` and interrupted transfers,
//! through a real sshd (`common::sshd`). Bytes on the wire are counted by
//! the transport itself: `-e` is `common/count_rsh.py`, a relay around
//! ssh that counts both directions (not dirsync's own statistics).

mod common;
use common::sshd::Sshd;
use common::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// The tests of this file one at a time: two of them measure time or
/// bytes, the 256 MiB one takes the CPU.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts of one or more runs through the counting transport.
struct Counter {
    dir: tempfile::TempDir,
}

impl Counter {
    fn new() -> Counter {
        Counter { dir: tempdir() }
    }
    fn rsh(&self, sshd: &Sshd) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/count_rsh.py");
        format!(
            "{} {} {}",
            script.display(),
            self.dir.path().display(),
            sshd.rsh()
        )
    }
    fn read(&self, what: &str) -> u64 {
        std::fs::read_to_string(self.dir.path().join(what))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
    /// Bytes both ways since the last reset.
    fn total(&self) -> u64 {
        self.read("up") + self.read("down")
    }
    fn reset(&self) {
        for f in ["up", "down", "pid"] {
            let _ = std::fs::remove_file(self.dir.path().join(f));
        }
    }
}

/// `dirsync -e RSH --remote-path BIN [extra] SRC 127.0.0.1:DST`.
fn push(rsh: &str, extra: &[&str], src: &Path, dst: &Path) -> Output {
    let mut c = cmd(["-e", rsh, "--remote-path"]);
    c.arg(bin()).args(extra).arg(src).arg(sshd::remote(dst));
    c.output().unwrap()
}

#[track_caller]
fn ok(o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
}

/// A file of `len` pseudo-random bytes (incompressible).
fn random_file(path: &Path, len: u64, seed: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = seed | 1;
    let mut buf = vec![0u8; MIB as usize];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(MIB) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

/// Overwrites `len` bytes at `at` with other pseudo-random bytes.
fn change(path: &Path, at: u64, len: u64) {
    use std::os::unix::fs::FileExt;
    let tmp = path.with_extension("patch");
    random_file(&tmp, len, 0xdead_beef);
    let data = std::fs::read(&tmp).unwrap();
    std::fs::remove_file(&tmp).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&data, at).unwrap();
}

/// Names in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_changed_mib_in_a_large_file_sends_under_3_percent() {
    let _one = serial();
    let sshd = Sshd::shared();
    let t = tempdir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    let size = 256 * MIB;
    random_file(&src.join("big"), size, 1);
    let count = Counter::new();
    ok(&push(&count.rsh(sshd), &[], &src, &dst));
    assert!(count.total() > size, "the first copy sends the file");
    assert_trees_equal(&src, &dst);
    change(&src.join("big"), size / 2 - 12345, MIB);
    count.reset();
    ok(&push(&count.rsh(sshd), &[], &src, &dst));
    let wire = count.total();
    eprintln!(
        "delta: {wire} bytes on the wire for a {size}-byte file with 1 MiB changed ({:.2}%)",
        wire as f64 * 100.0 / size as f64
    );
    assert!(wire * 100 < size * 3, "{wire} bytes on the wire");
    assert!(wire > MIB, "the changed MiB must cross: {wire}");
    assert_trees_equal(&src, &dst);
    assert_eq!(names(&dst), ["big"]);
}

#[test]
fn bwlimit_5m_moves_20_mib_in_4_seconds() {
    let _one = serial();
    let sshd = Sshd::shared();
    let t = tempdir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    random_file(&src.join("f"), 20 * MIB, 2);
    let start = Instant::now();
    ok(&push(&sshd.rsh(), &["--bwlimit", "5M"], &src, &dst));
    let secs = start.elapsed().as_secs_f64();
    eprintln!("--bwlimit 5M: 20 MiB in {secs:.2} s");
    assert!((3.5..=6.0).contains(&secs), "{secs} s");
    assert_trees_equal(&src, &dst);
}

#[test]
fn compression_sends_less_and_round_trips() {
    let _one = serial();
    let sshd = Sshd::shared();
    let t = tempdir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    let text: String = (0..400_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(src.join("text"), &text).unwrap();
    build_sample_tree(&src.join("tree"));
    let count = Counter::new();
    ok(&push(&count.rsh(sshd), &["-z"], &src, &dst));
    let wire = count.total();
    eprintln!(
        "-z: {wire} bytes on the wire for {} bytes of text",
        text.len()
    );
    assert!(wire * 5 < text.len() as u64, "{wire} bytes on the wire");
    assert_trees_equal(&src, &dst);
    // And a resync with a change, compressed and as a delta.
    let mut more = text.clone();
    more.insert_str(text.len() / 2, "inserted\n");
    std::fs::write(src.join("text"), &more).unwrap();
    ok(&push(&count.rsh(sshd), &["-z"], &src, &dst));
    assert_trees_equal(&src, &dst);
}

/// Waits until `path` holds a number (the transport's pid).
fn wait_pid(path: &Path) -> i32 {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Some(p) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return p;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the transport did not start");
}

/// Waits until the partial file of `name` in `dir` holds `min` bytes.
fn wait_partial(dir: &Path, name: &str, min: u64) -> PathBuf {
    let p = dir.join(format!(".dirsync-partial.{name}"));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if std::fs::metadata(&p).is_ok_and(|m| m.len() >= min) {
            return p;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no partial file of {min} bytes appeared");
}

#[test]
fn a_killed_transfer_leaves_no_final_name_and_a_rerun_resumes() {
    let _one = serial();
    let sshd = Sshd::shared();
    let t = tempdir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    let size = 48 * MIB;
    random_file(&src.join("big"), size, 3);
    std::fs::write(src.join("small"), b"small").unwrap();
    let count = Counter::new();
    let mut c = cmd(["-e", &count.rsh(sshd), "--bwlimit", "8M", "--remote-path"]);
    c.arg(bin()).arg(&src).arg(sshd::remote(&dst));
    let child = c
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ssh = wait_pid(&count.dir.path().join("pid"));
    // Some of the file has arrived (about 2 s of 6): cut the connection.
    wait_partial(&dst, "big", 12 * MIB);
    // SAFETY: kill(2) on the pid of the ssh process this test started
    // (through the counting relay); no memory is involved.
    assert_eq!(unsafe { libc::kill(ssh, libc::SIGKILL) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "the cut run must fail");
    // Let the remote agent notice and stop.
    std::thread::sleep(Duration::from_millis(500));
    let left = names(&dst);
    assert!(!left.contains(&"big".to_string()), "a final name: {left:?}");
    let partial = std::fs::metadata(dst.join(".dirsync-partial.big"))
        .unwrap()
        .len();
    assert!(
        partial > 0 && partial < size,
        "partial file of {partial} bytes"
    );
    count.reset();
    ok(&push(&count.rsh(sshd), &[], &src, &dst));
    let wire = count.total();
    eprintln!(
        "resume: {wire} bytes on the wire for a {size}-byte file, {partial} bytes had arrived"
    );
    assert!(wire < size - partial / 2, "{wire} bytes on the wire");
    assert_trees_equal(&src, &dst);
    assert_eq!(names(&dst), ["big", "small"], "the partial file is gone");
}

#[test]
fn stale_partial_files_are_removed_and_real_ones_kept() {
    let _one = serial();
    let sshd = Sshd::shared();
    let t = tempdir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::create_dir_all(dst.join("sub")).unwrap();
    std::fs::write(src.join("sub/kept"), b"k").unwrap();
    // A file of SRC whose name looks like a partial file's.
    std::fs::write(src.join(".dirsync-partial.x"), b"mine").unwrap();
    // Partial files of files SRC no longer has.
    std::fs::write(dst.join(".dirsync-partial.gone"), b"stale").unwrap();
    std::fs::write(dst.join("sub/.dirsync-partial.gone"), b"stale").unwrap();
    ok(&push(&sshd.rsh(), &["-n"], &src, &dst));
    assert!(
        dst.join(".dirsync-partial.gone").exists(),
        "a dry run removes nothing"
    );
    for _ in 0..2 {
        ok(&push(&sshd.rsh(), &[], &src, &dst));
        assert_trees_equal(&src, &dst);
    }
    assert_eq!(
        std::fs::read(dst.join(".dirsync-partial.x")).unwrap(),
        b"mine"
    );
}

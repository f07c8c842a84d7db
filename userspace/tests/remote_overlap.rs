//! A push lists SRC while its ssh session connects (`sync::src_prefetch`),
//! through a real sshd (`common::sshd`). The transport (`-e`) is a shell
//! wrapper that, before it execs ssh, waits until the client has used
//! CPU time (from `/proc/PPID/stat`): only a client that works while the
//! transport starts gets there; one that waits for the hello never does
//! and the wrapper gives up after its bound.

mod common;
use common::sshd::Sshd;
use common::*;

use std::path::Path;

/// Directories and files in each of the tree (60,000 empty files: their
/// scan takes well over [`TICKS`] of CPU).
const DIRS: usize = 200;
const FILES: usize = 300;
/// The client's CPU time (clock ticks of 10 ms) the wrapper waits for:
/// more than starting the process takes.
const TICKS: u64 = 5;

fn build(src: &Path) {
    for d in 0..DIRS {
        let dir = src.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..FILES {
            std::fs::write(dir.join(format!("f{f:03}")), b"").unwrap();
        }
    }
    std::fs::write(src.join("early"), b"removed while ssh connects").unwrap();
}

/// The wrapper: `rsh.sh OUT SRC RSH... HOST CMD`. Waits (bounded: 20 s)
/// for the client's CPU time to reach TICKS, writes it to OUT/cpu, then
/// changes SRC's root (a directory the client has listed by then) and
/// runs the transport.
fn wrapper(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("rsh.sh");
    write_script(
        &p,
        format!(
            r#"#!/bin/sh
out=$1 src=$2
shift 2
i=0
while [ "$i" -lt 400 ]; do
    t=$(awk '{{print $14 + $15}}' "/proc/$PPID/stat")
    if [ "$t" -ge {TICKS} ]; then
        echo "$t" > "$out/cpu"
        break
    fi
    sleep 0.05
    i=$((i + 1))
done
echo late > "$src/late"
rm -f "$src/early"
exec "$@"
"#
        ),
    );
    p
}

#[test]
fn push_scans_src_while_ssh_connects_and_sees_later_changes() {
    let sshd = Sshd::shared();
    let t = tempdir();
    let (src, dst, out) = (
        t.path().join("src"),
        t.path().join("dst"),
        t.path().join("out"),
    );
    std::fs::create_dir(&out).unwrap();
    build(&src);
    let rsh = format!(
        "{} {} {} {}",
        wrapper(t.path()).display(),
        out.display(),
        src.display(),
        sshd.rsh()
    );
    let args: Vec<std::ffi::OsString> = vec![
        "-e".into(),
        rsh.into(),
        "--remote-path".into(),
        bin().into(),
        src.clone().into(),
        common::sshd::remote(&dst).into(),
    ];
    let o = cmd(args).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The client had used TICKS of CPU before the transport even ran.
    let cpu = std::fs::read_to_string(out.join("cpu")).unwrap_or_default();
    assert!(
        cpu.trim().parse::<u64>().is_ok_and(|t| t >= TICKS),
        "the client did not work while the transport started (cpu {cpu:?})"
    );
    // What changed after SRC was listed ahead is synced all the same.
    assert_eq!(std::fs::read(dst.join("late")).unwrap(), b"late\n");
    assert!(!dst.join("early").exists());
    assert_trees_equal(&src, &dst);
}

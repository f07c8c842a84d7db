//! `dirsync watch -a`: setfacl, setfattr, chown, ln and `truncate -s`
//! (a grown hole) in SRC are each replicated, the link as a link.

mod common;
use common::exact::exact_diff;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Watch {
    dir: tempfile::TempDir,
    src: PathBuf,
    dst: PathBuf,
    child: Child,
}

impl Watch {
    fn start() -> Watch {
        let dir = tempfile::Builder::new()
            .prefix("dirsync-fidw-")
            .tempdir_in("/dev/shm")
            .unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        std::fs::create_dir(&src).unwrap();
        sh(
            &src,
            "echo a >f; mkdir d; echo b >d/g; truncate -s 64M sparse; echo x >>sparse",
        );
        let out = std::fs::File::create(dir.path().join("out")).unwrap();
        let child = Command::new(common::bin())
            .args(["watch", "-a", "-v"])
            .arg(&src)
            .arg(&dst)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let w = Watch {
            dir,
            src,
            dst,
            child,
        };
        let want = format!("Watching: {}", w.src.display());
        w.wait("the first watch", || w.output().lines().any(|l| l == want));
        w.wait_exact();
        w
    }
    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out")).unwrap_or_default()
    }
    fn wait(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{what}: not within 20 s\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn wait_exact(&self) {
        let start = Instant::now();
        loop {
            let d = exact_diff(&self.src, &self.dst).unwrap_or_else(|e| vec![e.to_string()]);
            if d.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "not exact within 20 s: {d:?}\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn sh(cwd: &Path, script: &str) {
    let out = Command::new("bash")
        .arg("-ec")
        .arg(script)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ino(p: &Path) -> u64 {
    std::fs::symlink_metadata(p).unwrap().ino()
}

#[test]
fn watch_replicates_acls_xattrs_owner_links_and_holes() {
    let w = Watch::start();
    let steps = [
        "setfacl -m u:nobody:rwx f",
        "setfacl -d -m u:nobody:rx d",
        "setfattr -n user.k -v v d/g",
        "chown 65534:65534 d/g",
        "ln f d/f-link",
        "truncate -s 256M sparse",
    ];
    for step in steps {
        let f = ino(&w.dst.join("f"));
        sh(&w.src, step);
        w.wait_exact();
        assert_eq!(ino(&w.dst.join("f")), f, "{step}: f kept its DST file");
    }
    assert_eq!(
        ino(&w.dst.join("d/f-link")),
        ino(&w.dst.join("f")),
        "ln is a link in DST"
    );
    let out = w.output();
    assert!(out.contains("Hard linked:"), "{out}");
    let (s, d) = (w.src.join("sparse"), w.dst.join("sparse"));
    let blocks = |p: &Path| std::fs::metadata(p).unwrap().blocks();
    assert!(
        blocks(&d) <= blocks(&s) + 16,
        "{} vs {}",
        blocks(&d),
        blocks(&s)
    );
}

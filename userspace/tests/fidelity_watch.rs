//! `dirsync watch -a`: setfacl, setfattr, chown, ln and `truncate -s`
//! (a grown hole) in SRC are each replicated, the link as a link. Again
//! with DST remote as `remote_push_fidelity_watch` (`common::sshd`).

mod common;
use common::exact::{acl_for_user, exact_diff, set_xattr, tmpfs_dir};

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
        let dir = tmpfs_dir();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join("f"), "a").unwrap();
        std::fs::write(src.join("d/g"), "b").unwrap();
        common::exact::write_sparse(&src.join("sparse"), 4 << 20);
        let out = std::fs::File::create(dir.path().join("out")).unwrap();
        let mut args: Vec<std::ffi::OsString> = vec![src.clone().into(), dst.clone().into()];
        if let Some(mode) = common::sshd::mode() {
            args = common::remote_args(mode, &common::bin(), args);
        }
        let child = Command::new(common::bin())
            .args(["watch", "-a", "-v"])
            .args(&args)
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

fn ino(p: &Path) -> u64 {
    std::fs::symlink_metadata(p).unwrap().ino()
}

#[test]
fn watch_replicates_acls_xattrs_owner_links_and_holes() {
    let w = Watch::start();
    type Step = (&'static str, fn(&Path));
    let steps: [Step; 6] = [
        ("setfacl", |s| {
            set_xattr(
                &s.join("f"),
                "system.posix_acl_access",
                &acl_for_user(65534, 7),
            )
        }),
        ("setfacl -d", |s| {
            set_xattr(
                &s.join("d"),
                "system.posix_acl_default",
                &acl_for_user(65534, 5),
            )
        }),
        ("setfattr", |s| set_xattr(&s.join("d/g"), "user.k", b"v")),
        ("chown", |s| {
            std::os::unix::fs::chown(s.join("d/g"), Some(65534), Some(65534)).unwrap()
        }),
        ("ln", |s| {
            std::fs::hard_link(s.join("f"), s.join("d/f-link")).unwrap()
        }),
        ("truncate -s", |s| {
            let f = std::fs::File::options()
                .write(true)
                .open(s.join("sparse"))
                .unwrap();
            f.set_len(16 << 20).unwrap();
        }),
    ];
    for (step, act) in steps {
        let f = ino(&w.dst.join("f"));
        act(&w.src);
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

//! The system call layer against a local user racing it in DST: the
//! chmod of kernels without `fchmodat2` never reaches outside the tree
//! through a symlink swapped in, and opening a file for reading never
//! opens (blocks on) a FIFO or a device that has the name.

mod common;
use common::*;

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use dirsync::sys;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// A thread that swaps `dir/a` and `dir/b` (`renameat2(RENAME_EXCHANGE)`)
/// until `stop`, counting the swaps.
fn swapper(
    dir: std::path::PathBuf,
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let d = std::fs::File::open(&dir).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&d);
        while !stop.load(Ordering::Relaxed) {
            // SAFETY: both names are NUL-terminated literals; `fd` is open
            // for the whole loop.
            let r = unsafe {
                libc::renameat2(fd, c"a".as_ptr(), fd, c"b".as_ptr(), libc::RENAME_EXCHANGE)
            };
            assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
            swaps.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// The fallback chmod (forced: this kernel may have `fchmodat2`) on a name
/// that a racing thread keeps swapping between a regular file and a
/// symlink to a file outside the tree: the outside file's mode never
/// changes, and both outcomes (the file chmodded, the symlink refused)
/// happened, so the race was run.
#[test]
fn chmod_fallback_never_follows_a_swapped_in_symlink() {
    chmod_race();
}

/// The race of [`chmod_fallback_never_follows_a_swapped_in_symlink`] (run
/// again without `/proc` by [`the_fallbacks_without_proc`]). There, the
/// entry is reopened by name, so that reopening can also meet the symlink
/// (`ELOOP`) or the other inode (`EAGAIN`): refusals too.
fn chmod_race() {
    let t = tempdir();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, b"v").unwrap();
    std::fs::set_permissions(&victim, PermissionsExt::from_mode(0o644)).unwrap();
    let dst = t.path().join("dst");
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("a"), b"mine").unwrap();
    std::os::unix::fs::symlink("../outside/victim", dst.join("b")).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let th = swapper(dst.clone(), stop.clone(), swaps.clone());
    let dir = std::fs::File::open(&dst).unwrap();
    let (mut done, mut refused) = (0u32, 0u32);
    for i in 0..20_000u32 {
        let mode = if i % 2 == 0 { 0o600 } else { 0o640 };
        match sys::chmod_at_nofollow_fallback(dir.as_fd(), &c("a"), mode) {
            Ok(()) => done += 1,
            Err(e)
                if [libc::EOPNOTSUPP, libc::ELOOP, libc::EAGAIN]
                    .contains(&e.raw_os_error().unwrap_or(0)) =>
            {
                refused += 1
            }
            Err(e) => panic!("unexpected error {e}"),
        }
        let m = std::fs::metadata(&victim).unwrap().mode() & 0o7777;
        assert_eq!(m, 0o644, "iteration {i}: the chmod went outside the tree");
    }
    stop.store(true, Ordering::Relaxed);
    th.join().unwrap();
    assert!(swaps.load(Ordering::Relaxed) > 1000, "the race did not run");
    assert!(done > 0 && refused > 0, "done {done}, refused {refused}");
    // The regular file (wherever it is now) did get modes.
    let file = [dst.join("a"), dst.join("b")]
        .into_iter()
        .find(|p| std::fs::symlink_metadata(p).unwrap().is_file())
        .unwrap();
    let m = std::fs::metadata(&file).unwrap().mode() & 0o7777;
    assert!(m == 0o600 || m == 0o640, "{m:o}");
}

/// The fallback chmod on each type: a symlink refused, a FIFO and a
/// directory changed (the FIFO never opened: this would block).
#[test]
fn chmod_fallback_handles_every_type() {
    let t = tempdir();
    let d = t.path();
    std::fs::write(d.join("f"), b"f").unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink("f", d.join("l")).unwrap();
    let fifo = c(&d.join("p").to_string_lossy());
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let dir = std::fs::File::open(d).unwrap();
    for (name, mode) in [("f", 0o751), ("sub", 0o711), ("p", 0o600)] {
        sys::chmod_at_nofollow_fallback(dir.as_fd(), &c(name), mode).unwrap();
        let m = std::fs::symlink_metadata(d.join(name)).unwrap().mode() & 0o7777;
        assert_eq!(m, mode, "{name}");
    }
    let e = sys::chmod_at_nofollow_fallback(dir.as_fd(), &c("l"), 0o600).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP));
    assert_eq!(
        std::fs::metadata(d.join("f")).unwrap().mode() & 0o7777,
        0o751
    );
}

/// `open_file_at` on a FIFO (no writer: a plain read-only open would block
/// forever), a character device, a socket, a symlink and a regular file:
/// only the regular file is opened, the others fail at once with `EINVAL`
/// (`ELOOP` for the symlink). Each call runs in a thread with a deadline,
/// so a blocking open fails the test instead of hanging it.
#[test]
fn open_file_at_opens_only_regular_files() {
    let t = tempdir();
    let d = t.path().to_path_buf();
    std::fs::write(d.join("f"), b"content").unwrap();
    std::os::unix::fs::symlink("f", d.join("l")).unwrap();
    let fifo = c(&d.join("p").to_string_lossy());
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let _sock = std::os::unix::net::UnixListener::bind(d.join("s")).unwrap();
    let mut cases = vec![("p", libc::EINVAL), ("s", libc::EINVAL), ("l", libc::ELOOP)];
    if is_root() {
        // The null device: opening it has no effect, but it must not be
        // opened at all.
        let n = c(&d.join("n").to_string_lossy());
        // SAFETY: a NUL-terminated path; makedev(1, 3) is /dev/null.
        let r = unsafe { libc::mknod(n.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        cases.push(("n", libc::EINVAL));
    }
    let open = |name: &'static str| {
        let d = d.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let dir = std::fs::File::open(&d).unwrap();
            let _ = tx.send(sys::open_file_at(dir.as_fd(), &c(name)));
        });
        rx.recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("opening {name} blocked"))
    };
    for (name, errno) in cases {
        let e = open(name)
            .err()
            .unwrap_or_else(|| panic!("{name} was opened"));
        assert_eq!(e.raw_os_error(), Some(errno), "{name}: {e}");
    }
    let f = open("f").unwrap();
    let mut buf = [0u8; 16];
    let n = sys::read(f.as_fd(), &mut buf).unwrap();
    assert_eq!(&buf[..n], b"content");
    // Opened for reading only, and blocking (a FIFO swapped in later
    // would not matter, but a regular file's reads must not see EAGAIN).
    let fl = rustix::fs::fcntl_getfl(&f).unwrap();
    assert!(!fl.contains(rustix::fs::OFlags::NONBLOCK));
    assert!(!fl.contains(rustix::fs::OFlags::WRONLY) && !fl.contains(rustix::fs::OFlags::RDWR));
}

/// What the fallbacks without `/proc` do (and, with `/proc`, the main
/// paths): `open_file_at` opens the regular file (blocking reads) and
/// nothing else; the chmod fallback changes a file and a directory,
/// refuses a symlink, and a FIFO only without `/proc` (it would have to
/// open it).
fn without_proc_cases(proc_mounted: bool) {
    let t = tempdir();
    let d = t.path();
    std::fs::write(d.join("f"), b"content").unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink("f", d.join("l")).unwrap();
    let fifo = c(&d.join("p").to_string_lossy());
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let dir = std::fs::File::open(d).unwrap();
    let f = sys::open_file_at(dir.as_fd(), &c("f")).unwrap();
    let mut buf = [0u8; 16];
    let n = sys::read(f.as_fd(), &mut buf).unwrap();
    assert_eq!(&buf[..n], b"content");
    let fl = rustix::fs::fcntl_getfl(&f).unwrap();
    assert!(!fl.contains(rustix::fs::OFlags::NONBLOCK));
    for (name, errno) in [
        ("p", libc::EINVAL),
        ("l", libc::ELOOP),
        ("sub", libc::EINVAL),
    ] {
        let e = sys::open_file_at(dir.as_fd(), &c(name)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(errno), "{name}");
    }
    for (name, mode) in [("f", 0o751), ("sub", 0o711)] {
        sys::chmod_at_nofollow_fallback(dir.as_fd(), &c(name), mode).unwrap();
        let m = std::fs::symlink_metadata(d.join(name)).unwrap().mode() & 0o7777;
        assert_eq!(m, mode, "{name}");
    }
    let e = sys::chmod_at_nofollow_fallback(dir.as_fd(), &c("l"), 0o600).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP));
    let r = sys::chmod_at_nofollow_fallback(dir.as_fd(), &c("p"), 0o600);
    if proc_mounted {
        r.unwrap();
    } else {
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EOPNOTSUPP));
    }
}

/// The cases above with `/proc`, then again (and the chmod race) in a child of this test
/// binary run in its own mount namespace with a tmpfs over `/proc`
/// (`unshare`, root): the child (`SYS_RACES_NO_PROC` set) first checks
/// that `/proc/self/fd` is gone.
#[test]
fn the_fallbacks_without_proc() {
    if std::env::var_os("SYS_RACES_NO_PROC").is_some() {
        assert!(
            !Path::new("/proc/self/fd").exists(),
            "the child still sees /proc"
        );
        without_proc_cases(false);
        return chmod_race();
    }
    without_proc_cases(true);
    assert!(
        is_root(),
        "hiding /proc needs root (CI runs the tests as root)"
    );
    let exe = std::env::current_exe().unwrap();
    let o = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs none /proc && exec \"$0\" --exact the_fallbacks_without_proc --test-threads 1")
        .arg(&exe)
        .env("SYS_RACES_NO_PROC", "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("1 passed"), "{out}");
}

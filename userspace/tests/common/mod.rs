//! Shared test helpers: the tree comparator, tree builders, and running the
//! `dirsync` binary. Used by the sync tests and the watch tests.
//!
//! Everything here works on byte names and below PATH_MAX limits: trees are
//! walked with `openat`/`fstatat` relative to directory descriptors, never
//! with whole paths, so trees deeper than PATH_MAX compare fine.
#![allow(dead_code)]

pub mod exact;

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr};
use std::fmt::Write as _;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod sshd;

/// The binary under test: `$DIRSYNC_BIN` (set in the VM), else cargo's,
/// else (a test executable copied elsewhere) `dirsync` on `PATH`.
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DIRSYNC_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cargo = PathBuf::from(env!("CARGO_BIN_EXE_dirsync"));
    if cargo.exists() {
        return cargo;
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("dirsync"))
                .find(|p| p.is_file())
        })
        .unwrap_or(cargo)
}

/// A `dirsync` command with `args`.
pub fn cmd<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(bin());
    c.args(args);
    c
}

/// Runs `dirsync args...` and returns its output. In a remote suite
/// ([`sshd::mode`]) the last two arguments (SRC DST) get their remote
/// side (`127.0.0.1:PATH`) and the ssh arguments are added.
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let a: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
    let a = match sshd::mode() {
        Some(mode) => remote_args(mode, &bin(), a),
        None => a,
    };
    cmd(a).output().expect("cannot run dirsync")
}

/// The arguments `args` (SRC DST last) of a remote suite in `mode`: its
/// remote side (SRC in a pull, DST in a push) as `127.0.0.1:PATH`, after
/// `-e RSH --remote-path REMOTE_BIN` for [`sshd::Sshd::shared`].
pub fn remote_args(
    mode: sshd::Mode,
    remote_bin: &Path,
    mut args: Vec<std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let n = args.len();
    assert!(n >= 2, "a remote suite runs dirsync with SRC and DST");
    let i = if mode == sshd::Mode::Push {
        n - 1
    } else {
        n - 2
    };
    args[i] = sshd::remote(Path::new(&args[i])).into_os_string();
    let mut full: Vec<std::ffi::OsString> = sshd::Sshd::shared()
        .args_for(remote_bin)
        .into_iter()
        .map(Into::into)
        .collect();
    full.extend(args);
    full
}

/// How dirsync shows `src` in its output (remote in a pull suite).
pub fn shown_src(src: &Path) -> PathBuf {
    match sshd::mode() {
        Some(sshd::Mode::Pull) => sshd::remote(src),
        _ => src.to_path_buf(),
    }
}

/// How dirsync shows `dst` in its output (remote in a push suite).
pub fn shown_dst(dst: &Path) -> PathBuf {
    match sshd::mode() {
        Some(sshd::Mode::Push) => sshd::remote(dst),
        _ => dst.to_path_buf(),
    }
}

/// Runs `dirsync args...` as `uid`/`gid` (supplementary groups dropped)
/// with `cwd` as working directory. Forks by hand: std's `Command::uid`
/// and `current_dir` need a socketpair, which a kernel without networking
/// (the test VM's) does not have.
pub fn run_as(uid: Option<u32>, cwd: Option<&Path>, args: &[&OsStr]) -> Output {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let prog = CString::new(bin().as_os_str().as_bytes()).unwrap();
    let mut argv_c: Vec<CString> = vec![prog.clone()];
    argv_c.extend(args.iter().map(|a| CString::new(a.as_bytes()).unwrap()));
    let mut argv: Vec<*const libc::c_char> = argv_c.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let cwd_c = cwd.map(|c| CString::new(c.as_os_str().as_bytes()).unwrap());
    let mut out = [0i32; 2];
    let mut err = [0i32; 2];
    // SAFETY: valid two-element arrays for pipe2.
    unsafe {
        assert_eq!(libc::pipe2(out.as_mut_ptr(), libc::O_CLOEXEC), 0);
        assert_eq!(libc::pipe2(err.as_mut_ptr(), libc::O_CLOEXEC), 0);
    }
    // SAFETY: the child only makes async-signal-safe system calls (dup2,
    // chdir, setgroups, setgid, setuid, execv, _exit) on data prepared
    // before the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: see above; every pointer outlives the child's use of it.
        unsafe {
            libc::dup2(out[1], 1);
            libc::dup2(err[1], 2);
            if let Some(c) = &cwd_c {
                if libc::chdir(c.as_ptr()) != 0 {
                    libc::_exit(126);
                }
            }
            if let Some(u) = uid {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(u) != 0
                    || libc::setuid(u) != 0
                {
                    libc::_exit(125);
                }
            }
            libc::execv(prog.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    // SAFETY: closing the write ends we do not use; taking ownership of the
    // read ends.
    let (mut ro, mut re) = unsafe {
        libc::close(out[1]);
        libc::close(err[1]);
        (
            std::fs::File::from_raw_fd(out[0]),
            std::fs::File::from_raw_fd(err[0]),
        )
    };
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = re.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    let _ = ro.read_to_end(&mut stdout);
    let stderr = reader.join().unwrap();
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout,
        stderr,
    }
}

/// Runs `dirsync [extra...] src dst` and asserts exit 0; returns stdout.
pub fn sync_ok(src: &Path, dst: &Path, extra: &[&str]) -> String {
    let mut args: Vec<&OsStr> = extra.iter().map(OsStr::new).collect();
    args.push(src.as_os_str());
    args.push(dst.as_os_str());
    let out = run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "dirsync {:?} failed\nstdout:\n{}\nstderr:\n{}",
        args,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the tests run as root (root can read unreadable files).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn c(name: &[u8]) -> CString {
    CString::new(name).expect("no NUL in test names")
}

/// An open directory descriptor (closed on drop).
pub struct Dir(pub libc::c_int);

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn check(r: libc::c_int, what: &str) -> libc::c_int {
    if r < 0 {
        panic!("{what}: {}", std::io::Error::last_os_error());
    }
    r
}

/// `r` or the last OS error, prefixed with `what`.
fn cvt(r: libc::c_int, what: impl std::fmt::Display) -> std::io::Result<libc::c_int> {
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(r)
}

/// Panics with the error's message (the building blocks of test trees
/// must work).
#[track_caller]
fn must<T>(r: std::io::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

impl Dir {
    /// Opens a directory by path (a root).
    pub fn open(p: &Path) -> Dir {
        must(Dir::try_open(p))
    }

    /// Opens a directory by path, or says why not.
    pub fn try_open(p: &Path) -> std::io::Result<Dir> {
        let cp = c(p.as_os_str().as_bytes());
        // SAFETY: NUL-terminated path.
        let fd = unsafe {
            libc::open(
                cp.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        Ok(Dir(cvt(fd, format_args!("open {}", p.display()))?))
    }

    /// Opens the subdirectory `name`, not following symlinks.
    pub fn sub(&self, name: &[u8]) -> Dir {
        must(self.try_sub(name))
    }

    /// Opens the subdirectory `name`, or says why not.
    pub fn try_sub(&self, name: &[u8]) -> std::io::Result<Dir> {
        let n = c(name);
        // SAFETY: NUL-terminated name.
        let fd = unsafe {
            libc::openat(
                self.0,
                n.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        let what = format_args!("openat {:?}", String::from_utf8_lossy(name));
        Ok(Dir(cvt(fd, what)?))
    }

    /// Opens the subdirectory `name` if it is one (no symlinks).
    pub fn sub_if_dir(&self, name: &[u8]) -> Option<Dir> {
        let n = c(name);
        // SAFETY: NUL-terminated name.
        let fd = unsafe {
            libc::openat(
                self.0,
                n.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        (fd >= 0).then_some(Dir(fd))
    }

    /// `mkdirat(name, mode)` and opens it.
    pub fn mkdir(&self, name: &[u8], mode: u32) -> Dir {
        let n = c(name);
        // SAFETY: NUL-terminated name.
        check(
            unsafe { libc::mkdirat(self.0, n.as_ptr(), mode) },
            "mkdirat",
        );
        self.sub(name)
    }

    /// Writes a regular file `name` with `content` (truncating).
    pub fn write(&self, name: &[u8], content: &[u8]) {
        let n = c(name);
        // SAFETY: NUL-terminated name.
        let fd = unsafe {
            libc::openat(
                self.0,
                n.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644 as libc::c_uint,
            )
        };
        check(fd, "openat for write");
        let mut off = 0;
        while off < content.len() {
            // SAFETY: the slice is valid for reads.
            let w = unsafe { libc::write(fd, content[off..].as_ptr().cast(), content.len() - off) };
            if w < 0 {
                // SAFETY: closing our descriptor.
                unsafe { libc::close(fd) };
                panic!("write: {}", std::io::Error::last_os_error());
            }
            off += w as usize;
        }
        // SAFETY: closing our descriptor.
        unsafe { libc::close(fd) };
    }

    /// `symlinkat(target, name)`.
    pub fn symlink(&self, name: &[u8], target: &[u8]) {
        let (n, t) = (c(name), c(target));
        // SAFETY: NUL-terminated strings.
        check(
            unsafe { libc::symlinkat(t.as_ptr(), self.0, n.as_ptr()) },
            "symlinkat",
        );
    }

    /// Sets the mtime of `name` (not following symlinks).
    pub fn set_mtime(&self, name: &[u8], sec: i64, nsec: i64) {
        let n = c(name);
        let ts = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: sec,
                tv_nsec: nsec,
            },
        ];
        // SAFETY: NUL-terminated name, two valid timespecs.
        check(
            unsafe { libc::utimensat(self.0, n.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) },
            "utimensat",
        );
    }

    /// `fchmodat(name, mode)` (not for symlinks).
    pub fn chmod(&self, name: &[u8], mode: u32) {
        let n = c(name);
        // SAFETY: NUL-terminated name.
        check(
            unsafe { libc::fchmodat(self.0, n.as_ptr(), mode, 0) },
            "fchmodat",
        );
    }

    /// Removes the non-directory `name`.
    pub fn unlink(&self, name: &[u8]) {
        let n = c(name);
        // SAFETY: NUL-terminated name.
        check(unsafe { libc::unlinkat(self.0, n.as_ptr(), 0) }, "unlinkat");
    }

    /// `lstat` of `name`, `None` when missing.
    pub fn stat(&self, name: &[u8]) -> Option<libc::stat> {
        must(self.try_stat(name))
    }

    /// `lstat` of `name`, `None` when missing, or why it failed.
    pub fn try_stat(&self, name: &[u8]) -> std::io::Result<Option<libc::stat>> {
        let n = c(name);
        // SAFETY: zeroed stat is a valid out-buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: NUL-terminated name and valid out-pointer.
        let r = unsafe { libc::fstatat(self.0, n.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOENT) {
                return Ok(None);
            }
            let what = format!("fstatat {:?}: {e}", String::from_utf8_lossy(name));
            return Err(std::io::Error::new(e.kind(), what));
        }
        Ok(Some(st))
    }

    /// `fstat` of the directory itself.
    pub fn stat_self(&self) -> libc::stat {
        must(self.try_stat_self())
    }

    /// `fstat` of the directory itself, or why it failed.
    pub fn try_stat_self(&self) -> std::io::Result<libc::stat> {
        // SAFETY: zeroed stat is a valid out-buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid descriptor and out-pointer.
        cvt(unsafe { libc::fstat(self.0, &mut st) }, "fstat")?;
        Ok(st)
    }

    /// Names in the directory (without `.` and `..`), sorted.
    pub fn names(&self) -> Vec<Vec<u8>> {
        must(self.try_names())
    }

    /// Names in the directory (without `.` and `..`), sorted, or why they
    /// could not be read.
    pub fn try_names(&self) -> std::io::Result<Vec<Vec<u8>>> {
        // fdopendir takes ownership: give it a duplicate.
        // SAFETY: dup of a valid descriptor.
        let fd = cvt(
            unsafe { libc::fcntl(self.0, libc::F_DUPFD_CLOEXEC, 0) },
            "dup",
        )?;
        // SAFETY: `fd` is a valid directory descriptor we own.
        let dirp = unsafe { libc::fdopendir(fd) };
        if dirp.is_null() {
            let e = std::io::Error::last_os_error();
            // SAFETY: fdopendir failed, so `fd` is still ours to close.
            unsafe { libc::close(fd) };
            return Err(std::io::Error::new(e.kind(), format!("fdopendir: {e}")));
        }
        // SAFETY: `dirp` is valid; rewind to read from the start.
        unsafe { libc::rewinddir(dirp) };
        let mut out = Vec::new();
        loop {
            // SAFETY: `dirp` is a valid DIR*.
            let ent = unsafe { libc::readdir64(dirp) };
            if ent.is_null() {
                break;
            }
            // SAFETY: readdir returns a valid entry with a NUL-terminated name.
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }
                .to_bytes()
                .to_vec();
            if name != b"." && name != b".." {
                out.push(name);
            }
        }
        // SAFETY: closes `dirp` and `fd`.
        unsafe { libc::closedir(dirp) };
        out.sort();
        Ok(out)
    }

    /// Content of the regular file `name`.
    pub fn read(&self, name: &[u8]) -> Vec<u8> {
        must(self.try_read(name))
    }

    /// Content of the regular file `name`, or why it could not be read.
    pub fn try_read(&self, name: &[u8]) -> std::io::Result<Vec<u8>> {
        let n = c(name);
        // SAFETY: NUL-terminated name.
        let fd = unsafe {
            libc::openat(
                self.0,
                n.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        let what = format_args!("open {:?} for reading", String::from_utf8_lossy(name));
        // SAFETY: `fd` is a fresh descriptor owned by nobody else; the File
        // closes it.
        let mut f = unsafe { std::fs::File::from_raw_fd(cvt(fd, what)?) };
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut out)?;
        Ok(out)
    }

    /// Target of the symlink `name`.
    pub fn readlink(&self, name: &[u8]) -> Vec<u8> {
        must(self.try_readlink(name))
    }

    /// Target of the symlink `name`, or why it could not be read.
    pub fn try_readlink(&self, name: &[u8]) -> std::io::Result<Vec<u8>> {
        let n = c(name);
        let mut buf = vec![0u8; 8192];
        // SAFETY: buffer valid for writes of buf.len() bytes.
        let r = unsafe { libc::readlinkat(self.0, n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return Err(std::io::Error::new(e.kind(), format!("readlinkat: {e}")));
        }
        buf.truncate(r as usize);
        Ok(buf)
    }
}

/// What the comparator looks at for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// `S_IFMT` bits.
    pub kind: u32,
    /// Permission bits.
    pub perm: u32,
    /// Size (regular files and symlinks).
    pub size: u64,
    /// mtime (s, ns).
    pub mtime: (i64, i64),
    /// Inode number (not compared between trees).
    pub ino: u64,
    /// ctime (s, ns): any write, chmod or utimensat moves it (not compared
    /// between trees; snapshots of one tree taken before and after a run
    /// that must not write are compared whole).
    pub ctime: (i64, i64),
    /// Device number (device nodes).
    pub rdev: u64,
    /// Content (files) or target (symlinks).
    pub data: Vec<u8>,
}

fn info_of(dir: &Dir, name: &[u8], st: &libc::stat) -> std::io::Result<EntryInfo> {
    let kind = st.st_mode & libc::S_IFMT;
    let data = match kind {
        libc::S_IFREG => dir.try_read(name)?,
        libc::S_IFLNK => dir.try_readlink(name)?,
        _ => Vec::new(),
    };
    Ok(EntryInfo {
        kind,
        perm: st.st_mode & 0o7777,
        size: if kind == libc::S_IFDIR {
            0
        } else {
            st.st_size as u64
        },
        mtime: (st.st_mtime, st.st_mtime_nsec),
        ino: st.st_ino,
        ctime: (st.st_ctime, st.st_ctime_nsec),
        rdev: st.st_rdev,
        data,
    })
}

/// Every entry below `root` (and `root` itself as the empty path), by
/// relative byte path. Works on trees deeper than PATH_MAX.
pub fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, EntryInfo> {
    must(try_snapshot(root))
}

/// [`snapshot`], or the first error met (an entry that vanished while it
/// was read, a tree that does not exist yet, ...).
pub fn try_snapshot(root: &Path) -> std::io::Result<BTreeMap<Vec<u8>, EntryInfo>> {
    let mut out = BTreeMap::new();
    let top = Dir::try_open(root)?;
    let st = top.try_stat_self()?;
    out.insert(
        Vec::new(),
        EntryInfo {
            kind: st.st_mode & libc::S_IFMT,
            perm: st.st_mode & 0o7777,
            size: 0,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ino: st.st_ino,
            ctime: (st.st_ctime, st.st_ctime_nsec),
            rdev: st.st_rdev,
            data: Vec::new(),
        },
    );
    // Iterative walk: (dir, relative path).
    let mut stack = vec![(top, Vec::<u8>::new())];
    while let Some((dir, rel)) = stack.pop() {
        for name in dir.try_names()? {
            let Some(st) = dir.try_stat(&name)? else {
                continue;
            };
            let mut path = rel.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&name);
            let info = info_of(&dir, &name, &st)?;
            let is_dir = info.kind == libc::S_IFDIR;
            out.insert(path.clone(), info);
            if is_dir {
                stack.push((dir.try_sub(&name)?, path));
            }
        }
    }
    Ok(out)
}

fn show(p: &[u8]) -> String {
    if p.is_empty() {
        "<root>".to_string()
    } else {
        format!("{:?}", String::from_utf8_lossy(p))
    }
}

/// Whether this test binary is a remote suite (`remote_*`: its DST
/// trees are remote replicas).
pub fn remote_suite() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|e| {
            e.file_name()
                .map(|n| n.to_string_lossy().starts_with("remote_"))
        })
        .unwrap_or(false)
}

/// Differences between two trees (type, content, size, mtime to the ns,
/// permission bits, symlink target; recursively; byte names), as
/// human-readable lines; empty when equal. The roots' own mode and mtime
/// are compared too (in a remote suite, without the set-id bits of
/// non-directories: [`remote_suite`]). An error when a tree could not be
/// read whole.
pub fn tree_diff(a: &Path, b: &Path) -> std::io::Result<Vec<String>> {
    let (sa, sb) = (try_snapshot(a)?, try_snapshot(b)?);
    let mut diffs = Vec::new();
    for (p, ea) in &sa {
        match sb.get(p) {
            None => diffs.push(format!("only in {}: {}", a.display(), show(p))),
            Some(eb) => {
                let mut d = String::new();
                if ea.kind != eb.kind {
                    let _ = write!(d, " type {:o} vs {:o};", ea.kind, eb.kind);
                } else {
                    // A remote replica clears the set-id bits of what it
                    // receives (the receiver never knows SRC's owner: the
                    // set-id rule of `remote::agent::policy`).
                    let want = match remote_suite() && ea.kind != libc::S_IFDIR {
                        true => ea.perm & !0o6000,
                        false => ea.perm,
                    };
                    if ea.kind != libc::S_IFLNK && want != eb.perm {
                        let _ = write!(d, " mode {:o} vs {:o};", ea.perm, eb.perm);
                    }
                    if ea.size != eb.size {
                        let _ = write!(d, " size {} vs {};", ea.size, eb.size);
                    }
                    if ea.mtime != eb.mtime {
                        let _ = write!(d, " mtime {:?} vs {:?};", ea.mtime, eb.mtime);
                    }
                    if ea.rdev != eb.rdev {
                        let _ = write!(d, " device {:x} vs {:x};", ea.rdev, eb.rdev);
                    }
                    if ea.data != eb.data {
                        let what = if ea.kind == libc::S_IFLNK {
                            "target"
                        } else {
                            "content"
                        };
                        let _ = write!(d, " {what} differs;");
                    }
                }
                if !d.is_empty() {
                    diffs.push(format!("{}:{d}", show(p)));
                }
            }
        }
    }
    for p in sb.keys() {
        if !sa.contains_key(p) {
            diffs.push(format!("only in {}: {}", b.display(), show(p)));
        }
    }
    Ok(diffs)
}

/// Panics with the list of differences unless the trees are equal.
#[track_caller]
pub fn assert_trees_equal(a: &Path, b: &Path) {
    let d = must(tree_diff(a, b));
    if !d.is_empty() {
        let n = d.len();
        let shown: Vec<_> = d.into_iter().take(40).collect();
        panic!(
            "trees differ: {} vs {} ({n} differences)\n  {}",
            a.display(),
            b.display(),
            shown.join("\n  ")
        );
    }
}

/// A path from bytes.
pub fn bpath(base: &Path, rel: &[u8]) -> PathBuf {
    base.join(OsStr::from_bytes(rel))
}

/// A fresh temporary directory for a test (under `$TMPDIR`).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dirsync-test.")
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// Builds a small but varied tree in `root` (created if missing): files of
/// several sizes and modes, nested directories, symlinks (relative,
/// absolute, dangling), an empty file and directory, byte names
/// (non-UTF-8, newline, leading dash), and odd mtimes (ns precision, before
/// 1970, far future).
pub fn build_sample_tree(root: &Path) {
    let _ = std::fs::create_dir_all(root);
    let d = Dir::open(root);
    d.write(b"small.txt", b"hello\n");
    d.write(b"empty", b"");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    d.write(b"big.bin", &big);
    d.write(b"-leading-dash", b"dash");
    d.write(b"new\nline", b"nl");
    d.write(b"caf\xe9-latin1", b"latin1 name");
    d.write(b"exec.sh", b"#!/bin/sh\necho hi\n");
    d.chmod(b"exec.sh", 0o755);
    d.write(b"private", b"secret");
    d.chmod(b"private", 0o600);
    d.write(b"setgid-ish", b"m");
    d.chmod(b"setgid-ish", 0o2750);
    d.symlink(b"link-rel", b"small.txt");
    d.symlink(b"link-abs", b"/etc/passwd");
    d.symlink(b"link-dangling", b"does/not/exist");
    d.symlink(b"link-dir", b"sub");
    let sub = d.mkdir(b"sub", 0o755);
    sub.write(b"a", b"A");
    let deep = sub.mkdir(b"deeper", 0o750);
    deep.write(b"b", b"B");
    deep.mkdir(b"empty-dir", 0o700);
    deep.set_mtime(b"empty-dir", 1_000_000_000, 123_456_789);
    deep.set_mtime(b"b", -86_400, 5);
    sub.set_mtime(b"deeper", 1_500_000_000, 999_999_999);
    d.set_mtime(b"small.txt", 4_102_444_800, 1);
    d.set_mtime(b"link-rel", 1_234_567_890, 42);
    let ro = d.mkdir(b"readonly-dir", 0o755);
    ro.write(b"x", b"x");
    d.chmod(b"readonly-dir", 0o555);
    d.set_mtime(b"sub", 1_600_000_000, 1);
}

/// `find`-like listing of relative paths (for messages).
pub fn listing(root: &Path) -> Vec<String> {
    snapshot(root).keys().map(|k| show(k)).collect()
}

/// A small seeded PRNG (xorshift64*), so that a failing random test can be
/// replayed with the seed it prints.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// An index below `n`.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    pub fn name(&mut self) -> Vec<u8> {
        const ALPHABET: &[u8] = b"abcXYZ019-_. \n\xff\xe9";
        let len = 1 + self.below(12) as usize;
        loop {
            let n: Vec<u8> = (0..len)
                .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize])
                .collect();
            if n != b"." && n != b".." {
                return n;
            }
        }
    }
}

/// A temporary directory with an empty `src` in it and the path of a `dst`
/// not created yet.
pub fn pair() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempdir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    (t, src, dst)
}

/// Every line of `--json` output, parsed (a line that is not one JSON
/// object fails the test).
#[track_caller]
pub fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v.is_object(), "not an object: {l}");
            v
        })
        .collect()
}

/// The closing `{"action":"summary",...}` object of `--json` output.
#[track_caller]
pub fn json_summary(out: &str) -> serde_json::Value {
    let last = json_lines(out).pop().expect("no output");
    assert_eq!(
        last["action"], "summary",
        "last line is not the summary: {out}"
    );
    last
}

/// A counter of a summary object.
#[track_caller]
pub fn counter(summary: &serde_json::Value, field: &str) -> u64 {
    summary[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {field:?} in {summary}"))
}

/// The changes a summary object counts (everything but bytes, skipped and
/// errors).
#[track_caller]
pub fn actions(summary: &serde_json::Value) -> u64 {
    [
        "copied",
        "dirs_created",
        "links",
        "deleted",
        "attrs",
        "renamed",
        "specials",
    ]
    .iter()
    .map(|f| counter(summary, f))
    .sum()
}

/// Library options with the metadata backend of `DIRSYNC_STAT_BACKEND`
/// (`auto`, `syscall`, `statx`; unset: auto), as the CLI reads it: the VM
/// runs every suite once per backend.
pub fn options() -> dirsync::sync::Options {
    use dirsync::stat::BackendChoice;
    let stat_backend = match std::env::var("DIRSYNC_STAT_BACKEND").as_deref() {
        Err(_) | Ok("auto") => BackendChoice::Auto,
        Ok("syscall") => BackendChoice::Syscall,
        Ok("statx") => BackendChoice::Statx,
        Ok(other) => panic!("DIRSYNC_STAT_BACKEND={other:?}: not auto, syscall or statx"),
    };
    dirsync::sync::Options {
        stat_backend,
        ..Default::default()
    }
}

/// The hostile peer of the test suite (`examples/hostile_peer`), built
/// once per test process when cargo runs the tests (so that a run of one
/// test file gets a fresh one), else found next to the test executables
/// (`target/<profile>/examples/`).
pub fn hostile_peer() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current_exe");
            // target/<profile>/deps/<test> -> target/<profile>/examples/
            let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
            if let Some(cargo) = std::env::var_os("CARGO") {
                let mut c = Command::new(cargo);
                c.args(["build", "--locked", "--example", "hostile_peer"])
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .env("CARGO_TARGET_DIR", profile_dir.parent().expect("target"));
                if profile_dir.file_name() == Some(OsStr::new("release")) {
                    c.arg("--release");
                }
                let st = c.status().expect("cargo build --example hostile_peer");
                assert!(st.success(), "cannot build the hostile peer");
            }
            let p = profile_dir.join("examples/hostile_peer");
            assert!(p.is_file(), "no hostile peer at {}", p.display());
            p
        })
        .clone()
}

/// The `-e` value that makes a `dirsync` talk to the hostile peer playing
/// `scenario`.
pub fn hostile_rsh(scenario: &str) -> String {
    format!("{} {scenario}", hostile_peer().display())
}

/// `m` as one frame on the wire (length, kind, payload): what a hostile
/// peer's prerecorded stream is made of.
pub fn frame(m: &dirsync::remote::protocol::messages::Msg) -> Vec<u8> {
    let (k, p) = m.encode();
    let mut out = ((p.len() + 1) as u32).to_le_bytes().to_vec();
    out.push(k);
    out.extend_from_slice(&p);
    out
}

/// Writes the executable script `path` (mode 0755) through a child
/// process, so that this process never holds it open for writing: a
/// script written here directly could be held open by a child that
/// another test thread forks meanwhile (until that child's exec), and
/// running it would then fail with `ETXTBSY`.
pub fn write_script(path: &Path, text: impl AsRef<[u8]>) {
    use std::io::Write;
    let mut c = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    c.stdin.take().unwrap().write_all(text.as_ref()).unwrap();
    assert!(
        c.wait().unwrap().success(),
        "cannot write {}",
        path.display()
    );
}

/// What a prerecorded peer ([`prerecorded_peer`]) does once its bytes
/// are out.
pub enum Then {
    /// Reads its input to the end, its output closed (the client sees
    /// the end of the stream).
    Drain,
    /// Reads its input to the end with its output still open (the
    /// client sees a peer that says nothing more).
    HoldOpen,
    /// As `Drain`, for at most this many seconds (a client that waits
    /// for the peer to exit does not wait long).
    DrainFor(u32),
}

/// An `-e` transport command (a script in `dir`) that prints `bytes`,
/// then does `then`: a hostile peer that needs no reaction.
pub fn prerecorded_peer(dir: &Path, name: &str, bytes: &[u8], then: Then) -> PathBuf {
    let data = dir.join(format!("{name}.bin"));
    std::fs::write(&data, bytes).unwrap();
    let tail = match then {
        Then::Drain => "exec cat >/dev/null".to_string(),
        // Not `exec`: the shell keeps its stdout (the client's input) open.
        Then::HoldOpen => "cat >/dev/null".to_string(),
        Then::DrainFor(s) => format!("exec timeout {s} cat >/dev/null"),
    };
    let script = dir.join(name);
    write_script(
        &script,
        format!("#!/bin/sh\ncat '{}'\n{tail}\n", data.display()),
    );
    script
}

//! Metadata backends: the `dirsync_stat` and `dirsync_readdir` system
//! calls, or `statx`.
//!
//! All implement [`StatBackend`] and return the same [`Meta`] record, for a
//! single name ([`StatBackend::stat_at`]) and for every entry of a
//! directory ([`StatBackend::list`], the engine's one way to list):
//! [`statx`](Statx) in `stat/statx.rs` (listing: `getdents64`, then one
//! `statx` per entry), the `dirsync_stat` syscall ([`DirsyncSyscall`], the
//! only code that knows `struct dirsync_info`) in `stat/syscall.rs
//! ` (listing: `getdents64`, then one `dirsync_stat` per entry), and
//! [`Batch`] in `stat/readdir.rs`: `dirsync_readdir` lists a directory with
//! every entry's metadata in one call per 64 KiB of records (the only code
//! that knows `struct dirsync_dirent`, with a parser that refuses a
//! malformed buffer), single names going to one of the others.
//! [`select`] picks once per syncer, from `--stat-backend`.
//!
//! A syscall is used only when the running kernel is verified to provide
//! it ([`discover`], [`discover_readdir`]): `/sys/kernel/dirsync/abi_version`
//! must equal [`crate::uapi::DIRSYNC_ABI_VERSION`], `syscall_nr`
//! (`dirsync_stat`) or `readdir_syscall_nr` (`dirsync_readdir`) must exist,
//! and the architecture must be x86-64. Otherwise the number is never
//! executed (on Linux 6.13+ without the patch series, 463 is `setxattrat`
//! and 464 `getxattrat`).

use std::ffi::CStr;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::uapi;

mod meta;
mod readdir;
mod statx;
mod syscall;

pub use self::meta::{Entry, Ids, Kind, Meta, StatBackend};
pub use self::readdir::{parse, Batch, Described, DirsyncReaddir, Malformed, Record};
pub use self::statx::Statx;
pub use self::syscall::DirsyncSyscall;

/// Which backend the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// The syscall when the running kernel is verified to have it, else statx.
    #[default]
    Auto,
    /// The syscall; an error when the kernel lacks it.
    Syscall,
    /// Always statx.
    Statx,
}

/// What [`discover`] found in the sysfs directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallInfo {
    /// The syscall number the kernel announced.
    pub nr: u32,
    /// The ABI version the kernel announced (equal to ours).
    pub abi: u32,
}

/// Why the syscall cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// No sysfs directory or file: the kernel lacks the call.
    #[error("the running kernel does not provide dirsync_stat ({} is missing)", .0.display())]
    Missing(PathBuf),
    /// No `readdir_syscall_nr`: the kernel lacks `dirsync_readdir`.
    #[error("the running kernel does not provide dirsync_readdir ({} is missing)", .0.display())]
    MissingReaddir(PathBuf),
    /// A sysfs file could not be read or parsed.
    #[error("cannot use dirsync_stat: {}: {}", .0.display(), .1)]
    Malformed(PathBuf, String),
    /// The kernel speaks another ABI version.
    #[error("the kernel's dirsync_stat speaks ABI {kernel}, this program needs ABI {ours}")]
    AbiMismatch {
        /// What the kernel announced.
        kernel: u32,
        /// What this program was built for.
        ours: u32,
    },
    /// This architecture is not supported by the syscall backend.
    #[error("the dirsync_stat backend supports x86_64 only, not {0}")]
    Arch(&'static str),
}

fn read_decimal(path: &Path) -> Result<u32, Unavailable> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Unavailable::Missing(path.to_path_buf()))
        }
        Err(e) => return Err(Unavailable::Malformed(path.to_path_buf(), e.to_string())),
    };
    let s = std::str::from_utf8(&text)
        .map_err(|_| Unavailable::Malformed(path.to_path_buf(), "not text".into()))?;
    let s = s.strip_suffix('\n').unwrap_or(s);
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Unavailable::Malformed(
            path.to_path_buf(),
            format!("expected a decimal number, found {s:?}"),
        ));
    }
    s.parse().map_err(|e: std::num::ParseIntError| {
        Unavailable::Malformed(path.to_path_buf(), e.to_string())
    })
}

/// Reads `<sysfs_dir>/abi_version` and `<sysfs_dir>/syscall_nr` and checks
/// them against this build for the architecture `arch` (pass
/// `std::env::consts::ARCH`). The real directory is
/// [`crate::uapi::DIRSYNC_SYSFS_DIR`]; tests pass a fake one.
pub fn discover(sysfs_dir: &Path, arch: &'static str) -> Result<SyscallInfo, Unavailable> {
    if arch != "x86_64" {
        return Err(Unavailable::Arch(arch));
    }
    let abi = read_decimal(&sysfs_dir.join("abi_version"))?;
    let ours = uapi::DIRSYNC_ABI_VERSION;
    if abi != ours {
        return Err(Unavailable::AbiMismatch { kernel: abi, ours });
    }
    let nr = read_decimal(&sysfs_dir.join("syscall_nr"))?;
    if nr >= 4096 {
        return Err(Unavailable::Malformed(
            sysfs_dir.join("syscall_nr"),
            format!("implausible syscall number {nr}"),
        ));
    }
    Ok(SyscallInfo { nr, abi })
}

/// Reads `<sysfs_dir>/abi_version` and `<sysfs_dir>/readdir_syscall_nr`
/// as [`discover`] does for `dirsync_stat`: the number of
/// `dirsync_readdir`, announced by kernels that implement it (never
/// execute it otherwise: on Linux 6.13+ without the series, 464 is
/// `getxattrat`).
pub fn discover_readdir(sysfs_dir: &Path, arch: &'static str) -> Result<u32, Unavailable> {
    if arch != "x86_64" {
        return Err(Unavailable::Arch(arch));
    }
    let abi = read_decimal(&sysfs_dir.join("abi_version"))?;
    let ours = uapi::DIRSYNC_ABI_VERSION;
    if abi != ours {
        return Err(Unavailable::AbiMismatch { kernel: abi, ours });
    }
    let path = sysfs_dir.join("readdir_syscall_nr");
    let nr = match read_decimal(&path) {
        Err(Unavailable::Missing(p)) => return Err(Unavailable::MissingReaddir(p)),
        other => other?,
    };
    if nr >= 4096 {
        let why = format!("implausible syscall number {nr}");
        return Err(Unavailable::Malformed(path, why));
    }
    Ok(nr)
}

/// The real sysfs directory of the discovery mechanism.
pub fn sysfs_dir() -> PathBuf {
    let bytes = uapi::DIRSYNC_SYSFS_DIR;
    let s = CStr::from_bytes_with_nul(bytes)
        .ok()
        .and_then(|c| c.to_str().ok())
        .unwrap_or("/sys/kernel/dirsync");
    PathBuf::from(s)
}

/// Why [`select`] cannot give the syscall backend.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// The kernel does not announce a usable `dirsync_stat`.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The probe call on `/` failed (`via`: which of the two calls).
    #[error("{via} probe failed")]
    Probe {
        /// `dirsync_stat` or `statx`.
        via: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The syscall and statx describe `/` differently.
    #[error("dirsync_stat disagrees with statx on /: {call:?} vs {statx:?}")]
    Disagrees {
        /// What the syscall said.
        call: Box<Option<Meta>>,
        /// What statx said.
        statx: Box<Option<Meta>>,
    },
    /// `dirsync_readdir` and statx describe an entry of `/` differently.
    #[error("dirsync_readdir disagrees with statx on /{name}: {call:?} vs {statx:?}")]
    ReaddirDisagrees {
        /// The entry.
        name: String,
        /// What the listing said.
        call: Box<Meta>,
        /// What statx said.
        statx: Box<Option<Meta>>,
    },
}

/// Picks the backend for `choice`, discovering the system calls in
/// `sysfs_dir`: for single paths `dirsync_stat` (else statx), for whole
/// directories `dirsync_readdir` ([`Batch`]; else `getdents64` and a stat
/// per entry). `Syscall` without a verified kernel for both is an error (it
/// says why); `Auto` takes each call the kernel verifiably has. A verified
/// call is also probed once on `/` and must agree with statx.
pub fn select(
    choice: BackendChoice,
    sysfs_dir: &Path,
) -> Result<Box<dyn StatBackend>, SelectError> {
    if choice == BackendChoice::Statx {
        return Ok(Box::new(Statx));
    }
    let required = choice == BackendChoice::Syscall;
    let single: Box<dyn StatBackend> = match single_path_call(sysfs_dir) {
        Ok(b) => Box::new(b),
        Err(why) if required => return Err(why),
        Err(_) => Box::new(Statx),
    };
    match readdir_call(sysfs_dir) {
        Ok(r) => Ok(Box::new(Batch::new(r, single))),
        Err(why) if required => Err(why),
        Err(_) => Ok(single),
    }
}

/// `dirsync_stat`, discovered and probed.
fn single_path_call(sysfs_dir: &Path) -> Result<DirsyncSyscall, SelectError> {
    let info = discover(sysfs_dir, std::env::consts::ARCH)?;
    // SAFETY: `discover` verified that the running kernel provides
    // dirsync_stat with our ABI under this number.
    let b = unsafe { DirsyncSyscall::new(info.nr, info.abi) };
    probe(&b)?;
    Ok(b)
}

/// `dirsync_readdir`, discovered and probed.
fn readdir_call(sysfs_dir: &Path) -> Result<DirsyncReaddir, SelectError> {
    let nr = discover_readdir(sysfs_dir, std::env::consts::ARCH)?;
    // SAFETY: `discover_readdir` verified that the running kernel
    // announces dirsync_readdir with our ABI under this number.
    let r = unsafe { DirsyncReaddir::new(nr) };
    probe_readdir(&r)?;
    Ok(r)
}

/// Lists `/` with the verified `dirsync_readdir`: the records must parse
/// and the first entry described must agree with statx.
fn probe_readdir(r: &DirsyncReaddir) -> Result<(), SelectError> {
    let via = |via, source| SelectError::Probe { via, source };
    let root = crate::sys::open_root(Path::new("/")).map_err(|e| via("open /", e))?;
    let entries = r
        .list(&Statx, root.as_fd())
        .map_err(|e| via("dirsync_readdir", e))?;
    let Some((name, call)) = entries.iter().find_map(|e| {
        e.meta
            .as_ref()
            .ok()
            .copied()
            .flatten()
            .map(|m| (&e.name, m))
    }) else {
        return Ok(());
    };
    let statx = Statx
        .stat_at(root.as_fd(), name)
        .map_err(|e| via("statx", e))?;
    match statx {
        Some(s) if s.ino == call.ino && s.kind == call.kind && s.perm == call.perm => Ok(()),
        statx => Err(SelectError::ReaddirDisagrees {
            name: name.to_string_lossy().into_owned(),
            call: Box::new(call),
            statx: Box::new(statx),
        }),
    }
}

/// Checks that the verified syscall agrees with statx on `/`.
fn probe(b: &DirsyncSyscall) -> Result<(), SelectError> {
    let via = |via, source| SelectError::Probe { via, source };
    let via_call = b
        .stat_at(rustix::fs::CWD, c"/")
        .map_err(|e| via("dirsync_stat", e))?;
    let via_statx = Statx
        .stat_at(rustix::fs::CWD, c"/")
        .map_err(|e| via("statx", e))?;
    match (via_call, via_statx) {
        (Some(a), Some(s)) if a.ino == s.ino && a.kind == s.kind && a.perm == s.perm => Ok(()),
        (call, statx) => Err(SelectError::Disagrees {
            call: Box::new(call),
            statx: Box::new(statx),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_readdir(abi: Option<&str>, nr: Option<&str>) -> tempfile::TempDir {
        fake_sysfs(abi, "readdir_syscall_nr", nr)
    }

    #[test]
    fn discovers_readdir_only_where_announced() {
        let d = fake_readdir(Some("1\n"), Some("464\n"));
        assert_eq!(discover_readdir(d.path(), "x86_64"), Ok(464));
        // dirsync_stat's file alone does not announce dirsync_readdir.
        let d = fake(Some("1\n"), Some("463\n"));
        match discover_readdir(d.path(), "x86_64") {
            Err(e @ Unavailable::MissingReaddir(_)) => {
                assert!(
                    e.to_string().contains("does not provide dirsync_readdir"),
                    "{e}"
                );
                assert!(e.to_string().contains("readdir_syscall_nr"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let gone = d.path().join("nope");
        assert!(matches!(
            discover_readdir(&gone, "x86_64"),
            Err(Unavailable::Missing(p)) if p.ends_with("abi_version")
        ));
        let d = fake_readdir(Some("2\n"), Some("464\n"));
        assert_eq!(
            discover_readdir(d.path(), "x86_64"),
            Err(Unavailable::AbiMismatch { kernel: 2, ours: 1 })
        );
        for nr in ["4096\n", "-464\n", "464 \n", "\n", "0x1d0\n"] {
            let d = fake_readdir(Some("1\n"), Some(nr));
            assert!(
                matches!(
                    discover_readdir(d.path(), "x86_64"),
                    Err(Unavailable::Malformed(..))
                ),
                "{nr:?}"
            );
        }
        let d = fake_readdir(Some("1\n"), Some("464\n"));
        assert_eq!(
            discover_readdir(d.path(), "aarch64"),
            Err(Unavailable::Arch("aarch64"))
        );
    }

    /// On the running kernel: with dirsync_readdir announced, the batch
    /// listing gives exactly what getdents64 + statx gives, field by
    /// field; without it, `--stat-backend syscall` is refused and auto
    /// lists the portable way.
    #[test]
    fn the_running_kernel_lists_like_statx() {
        let real = sysfs_dir();
        let t = tempfile::tempdir().unwrap();
        let p = t.path();
        fs::write(p.join("f"), b"hello").unwrap();
        fs::create_dir(p.join("d")).unwrap();
        std::os::unix::fs::symlink("f", p.join("l")).unwrap();
        for i in 0..700 {
            fs::write(p.join(format!("n{i:04}-{}", "x".repeat(i % 200))), b"").unwrap();
        }
        let sorted = |b: &dyn StatBackend| {
            let dir = crate::sys::open_root(p).unwrap();
            let mut v: Vec<_> = b
                .list(dir.as_fd())
                .unwrap()
                .into_iter()
                // Owner, group, link count and blocks are statx's alone
                // (the engine asks statx when an option needs them).
                .map(|e| {
                    let meta = e.meta.unwrap().map(|m| Meta {
                        ids: Ids::default(),
                        ..m
                    });
                    (e.name, e.d_type, meta)
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let portable = sorted(&Statx);
        assert_eq!(portable.len(), 703);
        match discover_readdir(&real, std::env::consts::ARCH) {
            Ok(nr) => {
                let b = select(BackendChoice::Syscall, &real).expect("announced: usable");
                let want = format!("dirsync_readdir (syscall {nr}) + dirsync_stat");
                assert!(b.describe().starts_with(&want), "{}", b.describe());
                assert_eq!(sorted(b.as_ref()), portable);
            }
            Err(_) => {
                let err = select(BackendChoice::Syscall, &real)
                    .err()
                    .expect("refused");
                assert!(err.to_string().contains("does not provide"), "{err}");
                let b = select(BackendChoice::Auto, &real).unwrap();
                assert!(!b.describe().contains("dirsync_readdir"));
                assert_eq!(sorted(b.as_ref()), portable);
            }
        }
    }

    fn fake(abi: Option<&str>, nr: Option<&str>) -> tempfile::TempDir {
        fake_sysfs(abi, "syscall_nr", nr)
    }

    /// A sysfs directory with `abi_version` and the number file `nr_file`
    /// (each only when given).
    fn fake_sysfs(abi: Option<&str>, nr_file: &str, nr: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        if let Some(a) = abi {
            fs::write(d.path().join("abi_version"), a).unwrap();
        }
        if let Some(n) = nr {
            fs::write(d.path().join(nr_file), n).unwrap();
        }
        d
    }

    #[test]
    fn discovers_a_matching_kernel() {
        let d = fake(Some("1\n"), Some("463\n"));
        assert_eq!(
            discover(d.path(), "x86_64"),
            Ok(SyscallInfo { nr: 463, abi: 1 })
        );
        // No trailing newline is accepted too.
        let d = fake(Some("1"), Some("470"));
        assert_eq!(discover(d.path(), "x86_64").unwrap().nr, 470);
    }

    #[test]
    fn missing_dir_or_files_mean_no_syscall() {
        let d = tempfile::tempdir().unwrap();
        let gone = d.path().join("nope");
        assert!(matches!(
            discover(&gone, "x86_64"),
            Err(Unavailable::Missing(_))
        ));
        let d = fake(Some("1\n"), None);
        match discover(d.path(), "x86_64") {
            Err(Unavailable::Missing(p)) => assert!(p.ends_with("syscall_nr")),
            other => panic!("{other:?}"),
        }
        let d = fake(None, Some("463\n"));
        match discover(d.path(), "x86_64") {
            Err(Unavailable::Missing(p)) => assert!(p.ends_with("abi_version")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn abi_mismatch_is_refused() {
        let d = fake(Some("2\n"), Some("463\n"));
        assert_eq!(
            discover(d.path(), "x86_64"),
            Err(Unavailable::AbiMismatch { kernel: 2, ours: 1 })
        );
        let d = fake(Some("0\n"), Some("463\n"));
        assert!(matches!(
            discover(d.path(), "x86_64"),
            Err(Unavailable::AbiMismatch { .. })
        ));
    }

    #[test]
    fn garbage_is_refused() {
        for (abi, nr) in [
            ("1\n", "-1\n"),
            ("1\n", "463 \n"),
            ("1\n", "0x1cf\n"),
            ("1\n", "\n"),
            ("1\n", "99999\n"),
            ("1\n", "12345678901234567890\n"),
            (" 1\n", "463\n"),
            ("1\n\n", "463\n"),
        ] {
            let d = fake(Some(abi), Some(nr));
            assert!(
                matches!(
                    discover(d.path(), "x86_64"),
                    Err(Unavailable::Malformed(..))
                ),
                "{abi:?} {nr:?}"
            );
        }
    }

    #[test]
    fn other_architectures_are_refused_before_reading() {
        let d = fake(Some("1\n"), Some("463\n"));
        assert_eq!(
            discover(d.path(), "aarch64"),
            Err(Unavailable::Arch("aarch64"))
        );
    }

    #[test]
    fn select_falls_back_or_errors() {
        let d = tempfile::tempdir().unwrap();
        let gone = d.path().join("nope");
        assert_eq!(
            select(BackendChoice::Auto, &gone).unwrap().describe(),
            "statx"
        );
        assert_eq!(
            select(BackendChoice::Statx, &gone).unwrap().describe(),
            "statx"
        );
        let err = select(BackendChoice::Syscall, &gone)
            .err()
            .expect("must fail");
        assert!(
            matches!(err, SelectError::Unavailable(Unavailable::Missing(_))),
            "{err}"
        );
        assert!(err.to_string().contains("does not provide dirsync_stat"));
        let bad = fake(Some("7\n"), Some("463\n"));
        let err = select(BackendChoice::Syscall, bad.path())
            .err()
            .expect("must fail");
        assert!(
            matches!(
                err,
                SelectError::Unavailable(Unavailable::AbiMismatch { kernel: 7, ours: 1 })
            ),
            "{err}"
        );
        assert_eq!(
            select(BackendChoice::Auto, bad.path()).unwrap().describe(),
            "statx"
        );
    }

    #[test]
    fn sysfs_dir_comes_from_the_header() {
        assert_eq!(sysfs_dir(), PathBuf::from("/sys/kernel/dirsync"));
    }

    #[test]
    fn statx_reports_types_and_missing() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("f"), b"hello").unwrap();
        std::os::unix::fs::symlink("f", d.path().join("l")).unwrap();
        let dir = crate::sys::open_root(d.path()).unwrap();
        use std::os::fd::AsFd;
        let fd = dir.as_fd();
        let f = Statx.stat_at(fd, c"f").unwrap().unwrap();
        assert_eq!((f.kind, f.size), (Kind::File, 5));
        let l = Statx.stat_at(fd, c"l").unwrap().unwrap();
        assert_eq!((l.kind, l.size), (Kind::Symlink, 1));
        assert_eq!(Statx.stat_at(fd, c"missing").unwrap(), None);
        assert_eq!(Statx.stat_fd(fd).unwrap().kind, Kind::Dir);
    }
}

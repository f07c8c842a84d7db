//! Metadata backends: the `dirsync_stat` system call, or `statx`.
//!
//! Both implement [`StatBackend`] and return the same [`Meta`] record:
//! [`statx`](Statx) in `stat/statx.rs`, the syscall ([`DirsyncSyscall`],
//! the only code that knows `struct dirsync_info`) in `stat/syscall.rs`. The
//! syscall is used only when the running kernel is verified to provide it
//! ([`discover`]): `/sys/kernel/dirsync/syscall_nr` and `abi_version` must
//! exist, the ABI must equal [`crate::uapi::DIRSYNC_ABI_VERSION`] and the
//! architecture must be x86-64. Otherwise the number is never executed (on
//! Linux 6.13+ without the patch series, 463 is `setxattrat`).

use std::ffi::CStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::uapi;

mod meta;
mod statx;
mod syscall;

pub use self::meta::{Ids, Kind, Meta, StatBackend};
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
}

/// Picks the backend for `choice`, discovering the syscall in `sysfs_dir`.
/// `Syscall` without a verified kernel is an error (it says why).
/// When the syscall is verified it is also probed once on `/` and must
/// agree with statx.
pub fn select(
    choice: BackendChoice,
    sysfs_dir: &Path,
) -> Result<Box<dyn StatBackend>, SelectError> {
    if choice == BackendChoice::Statx {
        return Ok(Box::new(Statx));
    }
    match discover(sysfs_dir, std::env::consts::ARCH) {
        Ok(info) => {
            // SAFETY: `discover` verified that the running kernel provides
            // dirsync_stat with our ABI under this number.
            let b = unsafe { DirsyncSyscall::new(info.nr, info.abi) };
            match probe(&b) {
                Ok(()) => Ok(Box::new(b)),
                Err(why) if choice == BackendChoice::Syscall => Err(why),
                Err(_) => Ok(Box::new(Statx)),
            }
        }
        Err(why) if choice == BackendChoice::Syscall => Err(why.into()),
        Err(_) => Ok(Box::new(Statx)),
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

    fn fake(abi: Option<&str>, nr: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        if let Some(a) = abi {
            fs::write(d.path().join("abi_version"), a).unwrap();
        }
        if let Some(n) = nr {
            fs::write(d.path().join("syscall_nr"), n).unwrap();
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

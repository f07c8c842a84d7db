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
    select_for(choice, false, sysfs_dir)
}

/// As [`select`], for an engine that also compares owner, group or link
/// count when `needs_ids` (`-o`, `-g`, `-H`): then the system calls are
/// used only if the running kernel fills those fields (`DIRSYNC_INFO_UID`,
/// `_GID`, `_NLINK`, which came after the first ABI), as the mask of its
/// answer for `/` says, never a version; else statx, whatever `choice`
/// (as before those fields existed). Each answer is still checked: one
/// without them is asked of statx.
pub fn select_for(
    choice: BackendChoice,
    needs_ids: bool,
    sysfs_dir: &Path,
) -> Result<Box<dyn StatBackend>, SelectError> {
    if choice == BackendChoice::Statx {
        return Ok(Box::new(Statx));
    }
    if needs_ids {
        return Ok(with_ids(sysfs_dir).unwrap_or_else(|| Box::new(Statx)));
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

/// The system calls, each answer required to carry owner, group and link
/// count, when the running kernel fills them; `None` otherwise.
fn with_ids(sysfs_dir: &Path) -> Option<Box<dyn StatBackend>> {
    let single = single_path_call(sysfs_dir).ok()?;
    if !single.gives_ids().ok()? {
        return None;
    }
    let single = Box::new(single.needing_ids());
    Some(match readdir_call(sysfs_dir) {
        Ok(r) => Box::new(Batch::new(r.needing_ids(), single)),
        Err(_) => single,
    })
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
mod tests;

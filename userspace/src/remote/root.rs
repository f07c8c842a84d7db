//! The root of an agent's tree (a DST): checked, created when missing.

use std::io;
use std::sync::Arc;

use crate::sync::local::LocalReplica;
use crate::sys;

/// Checks a DST `path`: whether it exists (a directory); an error when it
/// is something else, or missing with a missing parent.
pub fn check(path: &std::path::Path) -> crate::Result<bool> {
    use crate::Error;
    let exists = match std::fs::symlink_metadata(path) {
        Ok(_) => match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => true,
            Ok(_) => {
                let why = "exists and is not a directory";
                return Err(Error::invalid("destination", path, why));
            }
            Err(e) => return Err(Error::at("cannot access destination", path, e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::at("cannot access destination", path, e)),
    };
    if !exists {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        if !parent.is_dir() {
            let why = "its parent directory does not exist";
            return Err(Error::invalid("destination", path, why));
        }
    }
    Ok(exists)
}

/// Opens the DST `path` checked by [`check`], creating it when missing
/// unless a dry run (then `None`). Returns the replica and whether it was
/// created now.
pub fn open(
    path: &std::path::Path,
    dry_run: bool,
    backend: crate::stat::BackendChoice,
) -> crate::Result<(Option<LocalReplica>, bool)> {
    use crate::Error;
    let backend: Arc<dyn crate::stat::StatBackend> =
        Arc::from(crate::stat::select(backend, &crate::stat::sysfs_dir())?);
    let exists = check(path)?;
    if !exists {
        if dry_run {
            // Would be created (a dry run reports it so).
            return Ok((None, true));
        }
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::at("cannot create destination", path, e)),
        }
    }
    let fd = sys::open_root(path).map_err(|e| Error::at("cannot open", path, e))?;
    Ok((
        Some(LocalReplica::new(fd, backend, sys::euid() == 0)),
        !exists,
    ))
}

/// Opens a DST beneath a confined server's tree (module
/// [`super::confine`]): `name` in the open directory `parent` (`None`:
/// `parent` itself), never through a symlink, created there when missing
/// (`mkdirat` on `parent`) unless a dry run (then `None`), with `backend`.
/// `shown` is the path as the client named it. Returns the replica and whether it was
/// created now.
pub fn open_in(
    parent: std::os::fd::OwnedFd,
    name: Option<&std::ffi::CStr>,
    shown: &[u8],
    dry_run: bool,
    backend: Arc<dyn crate::stat::StatBackend>,
) -> Result<(Option<LocalReplica>, bool), super::confine::ConfineError> {
    use super::confine::{open_name, refused};
    let replica = |fd| LocalReplica::new(fd, backend.clone(), sys::euid() == 0);
    let Some(name) = name else {
        return Ok((Some(replica(parent)), false));
    };
    let (fd, created) = match open_name(std::os::fd::AsFd::as_fd(&parent), name) {
        Ok(fd) => (fd, false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if dry_run {
                return Ok((None, true));
            }
            let p = std::os::fd::AsFd::as_fd(&parent);
            match sys::mkdir_at(p, name, 0o777) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(refused(shown, &e)),
            }
            (
                sys::open_dir_at(p, name).map_err(|e| refused(shown, &e))?,
                true,
            )
        }
        Err(e) => return Err(refused(shown, &e)),
    };
    Ok((Some(replica(fd)), created))
}

//! The root of an agent's tree (a DST): checked, created when missing.

use std::io;
use std::sync::Arc;

use crate::sync::local::LocalReplica;
use crate::sys;

/// Opens the agent's root `path` (a DST): created when missing (its
/// parent must exist) unless a dry run, which leaves it missing (`None`).
/// Returns the replica and whether it was created now.
pub fn prepare(
    path: &std::path::Path,
    dry_run: bool,
    backend: crate::stat::BackendChoice,
) -> crate::Result<(Option<LocalReplica>, bool)> {
    use crate::Error;
    let backend: Arc<dyn crate::stat::StatBackend> =
        Arc::from(crate::stat::select(backend, &crate::stat::sysfs_dir())?);
    let exists = match std::fs::symlink_metadata(path) {
        Ok(_) => match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => true,
            Ok(_) => {
                return Err(Error::invalid(
                    "destination",
                    path,
                    "exists and is not a directory",
                ))
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
            return Err(Error::invalid(
                "destination",
                path,
                "its parent directory does not exist",
            ));
        }
        if dry_run {
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

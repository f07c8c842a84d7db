//! File content that keeps its shape: holes of sparse files (`-S`, found
//! with `SEEK_DATA`/`SEEK_HOLE`, only data extents written, then the length
//! set) and extents shared with SRC (a reflink: `FICLONE`, on by default,
//! off with `--no-reflink`, which also keeps `copy_file_range` from
//! sharing extents: it then copies with read/write).

use std::io;
use std::os::fd::BorrowedFd;

use rustix::fs::SeekFrom;

use crate::copy;

/// How content is copied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyMode {
    /// `-S`: recreate holes.
    pub sparse: bool,
    /// Try a clone first; let `copy_file_range` share extents.
    pub reflink: bool,
}

/// How a copy was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Made {
    /// Bytes written (or made present by the length, for holes).
    Copied(u64),
    /// The whole file was cloned (`FICLONE`): `len` bytes sharing SRC's
    /// extents.
    Cloned(u64),
}

/// Clones `src` into the empty `dst`; `Ok(false)` when the file systems
/// cannot (different ones, no reflink support).
pub fn clone(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<bool> {
    match rustix::fs::ioctl_ficlone(dst, src) {
        Ok(()) => Ok(true),
        Err(e)
            if [
                rustix::io::Errno::XDEV,
                rustix::io::Errno::OPNOTSUPP,
                rustix::io::Errno::INVAL,
                rustix::io::Errno::NOTTY,
                rustix::io::Errno::PERM,
                rustix::io::Errno::BADF,
            ]
            .contains(&e) =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// The data extents of `src` below `len`: (start, end) pairs.
pub fn next_extent(src: BorrowedFd<'_>, from: u64, len: u64) -> io::Result<Option<(u64, u64)>> {
    if from >= len {
        return Ok(None);
    }
    let start = match rustix::fs::seek(src, SeekFrom::Data(from)) {
        Ok(s) => s,
        Err(rustix::io::Errno::NXIO) => return Ok(None), // a hole to the end
        Err(e) => return Err(e.into()),
    };
    if start >= len {
        return Ok(None);
    }
    let end = rustix::fs::seek(src, SeekFrom::Hole(start))?.min(len);
    Ok(Some((start, end)))
}

/// Copies `[start, end)` of `src` to the same offsets of `dst`.
fn copy_range(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    start: u64,
    end: u64,
    cfr: bool,
) -> io::Result<u64> {
    let (mut i, mut o) = (start, start);
    if cfr {
        while i < end {
            let want = (end - i).min(1 << 30) as usize;
            match rustix::fs::copy_file_range(src, Some(&mut i), dst, Some(&mut o), want) {
                Ok(0) => return Ok(i - start),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break, // read/write below, from where it stopped
            }
        }
    }
    let mut buf = vec![0u8; 256 * 1024];
    while i < end {
        let want = ((end - i) as usize).min(buf.len());
        let n = rustix::io::pread(src, &mut buf[..want], i)?;
        if n == 0 {
            break;
        }
        let mut w = 0;
        while w < n {
            w += rustix::io::pwrite(dst, &buf[w..n], o + w as u64)?;
        }
        i += n as u64;
        o += n as u64;
    }
    Ok(i - start)
}

/// Copies only the data extents of `src` (length `len`) into the empty
/// `dst` and sets its length: holes stay holes. Returns `len`, or less
/// when `src` shrank meanwhile.
pub fn copy_sparse(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    len: u64,
    cfr: bool,
) -> io::Result<u64> {
    let mut pos = 0;
    while let Some((start, end)) = next_extent(src, pos, len)? {
        let n = copy_range(src, dst, start, end, cfr)?;
        if n < end - start {
            rustix::fs::ftruncate(dst, start + n)?;
            return Ok(start + n);
        }
        pos = end;
    }
    rustix::fs::ftruncate(dst, len)?;
    Ok(len)
}

/// Copies `len` bytes of `src` to the empty `dst` the way `mode` says;
/// `try_clone` is false once a clone failed on this replica.
pub fn copy_content(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    len: u64,
    mode: CopyMode,
    try_clone: bool,
) -> io::Result<(Made, bool)> {
    let mut clone_works = try_clone;
    if mode.reflink && try_clone {
        if clone(src, dst)? {
            return Ok((Made::Cloned(len), true));
        }
        clone_works = false;
    }
    let n = if mode.sparse {
        copy_sparse(src, dst, len, mode.reflink)?
    } else if mode.reflink {
        copy::copy_data(src, dst, len)?
    } else {
        copy::copy_data_rw(src, dst, len)?
    };
    Ok((Made::Copied(n), clone_works))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sparse_copy_keeps_holes_and_content() {
        let d = tempfile::tempdir().unwrap();
        let mut src = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(d.path().join("s"))
            .unwrap();
        let len: u64 = 64 << 20;
        for off in [0u64, 20 << 20, (64 << 20) - 4096] {
            src.seek(std::io::SeekFrom::Start(off)).unwrap();
            src.write_all(&[0xab; 4096]).unwrap();
        }
        src.set_len(len).unwrap();
        let dst = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(d.path().join("d"))
            .unwrap();
        for cfr in [true, false] {
            dst.set_len(0).unwrap();
            assert_eq!(
                copy_sparse(src.as_fd(), dst.as_fd(), len, cfr).unwrap(),
                len
            );
            let (sm, dm) = (src.metadata().unwrap(), dst.metadata().unwrap());
            assert_eq!(dm.len(), len);
            assert!(
                dm.blocks() <= sm.blocks() + 3 * 8,
                "{} vs {}",
                dm.blocks(),
                sm.blocks()
            );
            let (mut a, mut b) = (Vec::new(), Vec::new());
            std::fs::File::open(d.path().join("s"))
                .unwrap()
                .read_to_end(&mut a)
                .unwrap();
            std::fs::File::open(d.path().join("d"))
                .unwrap()
                .read_to_end(&mut b)
                .unwrap();
            assert!(a == b, "content differs (cfr {cfr})");
        }
    }
}

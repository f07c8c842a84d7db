//! Moving bytes: file content copy (`copy_file_range` with a read/write
//! fallback), content comparison (`--checksum`) and temporary names. All
//! relative to directory descriptors.

use std::ffi::CString;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Prefix of the temporary names dirsync creates in DST; a leftover (after
/// a crash) is an ordinary extra entry and is deleted by the next run.
pub const TMP_PREFIX: &str = ".dirsync-tmp.";

/// A fresh temporary name: `.dirsync-tmp.<pid>.<n>`.
pub fn temp_name() -> CString {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = PID.get_or_init(std::process::id);
    let s = format!("{TMP_PREFIX}{pid}.{n}");
    CString::new(s).expect("no NUL in a formatted number")
}

/// Creates a new temporary file in `dir`, retrying on name collisions.
pub fn create_temp(dir: BorrowedFd<'_>) -> io::Result<(CString, OwnedFd)> {
    loop {
        let name = temp_name();
        match sys::create_excl_at(dir, &name, 0o600) {
            Ok(fd) => return Ok((name, fd)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Copies exactly `len` bytes (or until EOF, if the file shrank) from
/// `src` to `dst`, both at their current offsets (a fresh open: 0). Uses
/// `copy_file_range`, falls back to read/write where the kernel or file
/// system cannot do it. Returns the bytes copied.
pub fn copy_data(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, len: u64) -> io::Result<u64> {
    copy_with(src, dst, len, true)
}

/// As [`copy_data`] with read/write only (`--no-reflink`: a
/// `copy_file_range` inside btrfs or xfs would share extents).
pub fn copy_data_rw(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, len: u64) -> io::Result<u64> {
    copy_with(src, dst, len, false)
}

fn copy_with(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, len: u64, cfr: bool) -> io::Result<u64> {
    let mut done: u64 = 0;
    let mut use_cfr = cfr;
    let mut buf: Vec<u8> = Vec::new();
    while done < len {
        let want = (len - done).min(1 << 30) as usize;
        if use_cfr {
            match sys::copy_file_range(src, dst, want) {
                Ok(0) => break,
                Ok(n) => {
                    done += n as u64;
                    continue;
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EXDEV)
                    | Some(libc::EINVAL)
                    | Some(libc::ENOSYS)
                    | Some(libc::EOPNOTSUPP)
                    | Some(libc::EBADF)
                    | Some(libc::EPERM) => use_cfr = false,
                    Some(libc::EINTR) => continue,
                    _ => return Err(e),
                },
            }
        }
        if buf.is_empty() {
            buf = vec![0u8; 256 * 1024];
        }
        let chunk = want.min(buf.len());
        let n = read_full(src, &mut buf[..chunk])?;
        if n == 0 {
            break;
        }
        write_all(dst, &buf[..n])?;
        done += n as u64;
    }
    Ok(done)
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = sys::write(fd, data)?;
        data = &data[n..];
    }
    Ok(())
}

fn read_full(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = sys::read(fd, &mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Whether two open files have the same content (`--checksum`): compared
/// block by block, which is exact (no hash collisions) and reads each file
/// once, like hashing both would.
pub fn same_content(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> io::Result<bool> {
    let mut x = vec![0u8; 128 * 1024];
    let mut y = vec![0u8; 128 * 1024];
    loop {
        let n = read_full(a, &mut x)?;
        let m = read_full(b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::{AsFd, FromRawFd};

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn copy_data_between_files_uses_copy_file_range() {
        let data = pattern(3 * 1024 * 1024 + 17);
        let mut src = tempfile::tempfile().unwrap();
        src.write_all(&data).unwrap();
        src.rewind().unwrap();
        let mut dst = tempfile::tempfile().unwrap();
        let n = copy_data(src.as_fd(), dst.as_fd(), data.len() as u64).unwrap();
        assert_eq!(n, data.len() as u64);
        let mut got = Vec::new();
        dst.rewind().unwrap();
        dst.read_to_end(&mut got).unwrap();
        assert!(got == data, "content differs");
    }

    /// copy_file_range refuses a pipe (EINVAL): the read/write fallback
    /// takes over and still copies every byte.
    #[test]
    fn copy_data_falls_back_to_read_write() {
        let data = pattern(600 * 1024 + 5);
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors are fresh and owned only here.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let writer = {
            let data = data.clone();
            std::thread::spawn(move || {
                let mut w = std::fs::File::from(w);
                w.write_all(&data).unwrap();
            })
        };
        let mut dst = tempfile::tempfile().unwrap();
        let n = copy_data(r.as_fd(), dst.as_fd(), data.len() as u64).unwrap();
        writer.join().unwrap();
        assert_eq!(n, data.len() as u64);
        let mut got = Vec::new();
        dst.rewind().unwrap();
        dst.read_to_end(&mut got).unwrap();
        assert!(got == data, "content differs");
    }
}

//! Moving bytes: file content copy (`copy_file_range` with a read/write
//! fallback), content comparison (`--checksum`) and temporary names. All
//! relative to directory descriptors.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{OwnedFd, RawFd};
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
pub fn create_temp(dir: RawFd) -> io::Result<(CString, OwnedFd)> {
    loop {
        let name = temp_name();
        match sys::create_excl_at(dir, &name, 0o600) {
            Ok(fd) => return Ok((name, fd)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Opens an unnamed temporary file (`O_TMPFILE`) in `dir`: it gets a name
/// only through [`link_tmpfile`], once complete.
pub fn open_tmpfile(dir: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: "." is NUL-terminated; O_TMPFILE needs a mode argument.
    let fd = unsafe {
        libc::openat(
            dir,
            c".".as_ptr(),
            libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Gives the `O_TMPFILE` file `fd` the name `name` in `dir` (fails with
/// `EEXIST` if the name exists): `linkat(AT_EMPTY_PATH)`, or through
/// `/proc/self/fd` where that needs a capability we lack.
pub fn link_tmpfile(fd: RawFd, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: empty NUL-terminated path with AT_EMPTY_PATH names `fd`.
    let r = unsafe { libc::linkat(fd, c"".as_ptr(), dir, name.as_ptr(), libc::AT_EMPTY_PATH) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if !matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EPERM)) {
        return Err(e);
    }
    let proc_path = CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL");
    // SAFETY: NUL-terminated paths; the magic link resolves to `fd`'s file.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_path.as_ptr(),
            dir,
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Copies exactly `len` bytes (or until EOF, if the file shrank) from
/// `src` to `dst`, both at their current offsets (a fresh open: 0). Uses
/// `copy_file_range`, falls back to read/write where the kernel or file
/// system cannot do it. Returns the bytes copied.
pub fn copy_data(src: RawFd, dst: RawFd, len: u64) -> io::Result<u64> {
    let mut done: u64 = 0;
    let mut use_cfr = true;
    let mut buf: Vec<u8> = Vec::new();
    while done < len {
        let want = (len - done).min(1 << 30) as usize;
        if use_cfr {
            // SAFETY: null offsets mean "use and advance the file
            // positions"; both descriptors are open.
            let n = unsafe {
                libc::copy_file_range(
                    src,
                    std::ptr::null_mut(),
                    dst,
                    std::ptr::null_mut(),
                    want,
                    0,
                )
            };
            if n >= 0 {
                if n == 0 {
                    break;
                }
                done += n as u64;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EXDEV)
                | Some(libc::EINVAL)
                | Some(libc::ENOSYS)
                | Some(libc::EOPNOTSUPP)
                | Some(libc::EBADF)
                | Some(libc::EPERM) => {
                    use_cfr = false;
                    continue;
                }
                Some(libc::EINTR) => continue,
                _ => return Err(e),
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

fn write_all(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is valid for `data.len()` bytes of reads.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

fn read_full(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the tail of `buf` is valid for writes.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    Ok(got)
}

/// Whether two open files have the same content (`--checksum`): compared
/// block by block, which is exact (no hash collisions) and reads each file
/// once, like hashing both would.
pub fn same_content(a: RawFd, b: RawFd) -> io::Result<bool> {
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
    use std::os::fd::{AsRawFd, FromRawFd};

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
        let n = copy_data(src.as_raw_fd(), dst.as_raw_fd(), data.len() as u64).unwrap();
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
        let n = copy_data(r.as_raw_fd(), dst.as_raw_fd(), data.len() as u64).unwrap();
        writer.join().unwrap();
        assert_eq!(n, data.len() as u64);
        let mut got = Vec::new();
        dst.rewind().unwrap();
        dst.read_to_end(&mut got).unwrap();
        assert!(got == data, "content differs");
    }
}

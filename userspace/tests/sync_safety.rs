//! Safety: symlinks planted in DST, trees deeper than PATH_MAX, unreadable
//! entries, out of space, sources that change during the copy.
//!
//! Also compiled as `remote_push_safety` and `remote_pull_safety`, which
//! run every sync with one side on a remote host reached through a real
//! sshd ([`common::sshd`]).

mod common;
use common::*;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

fn no_temp_files(root: &Path) {
    for k in snapshot(root).keys() {
        let name = k.rsplit(|&b| b == b'/').next().unwrap();
        assert!(
            !name.starts_with(b".dirsync-tmp."),
            "temporary file left behind: {}",
            String::from_utf8_lossy(k)
        );
    }
}

#[test]
fn symlinks_planted_in_dst_never_redirect_writes_or_deletes() {
    let (t, src, dst) = pair();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"precious").unwrap();
    std::fs::write(outside.join("file"), b"precious too").unwrap();
    let before = snapshot(&outside);

    let s = Dir::open(&src);
    let sub = s.mkdir(b"sub", 0o755);
    sub.write(b"victim", b"attacker content");
    s.write(b"file", b"new content");
    let gone = s.mkdir(b"gone-later", 0o755);
    gone.write(b"x", b"x");
    sync_ok(&src, &dst, &[]);

    // The attacker replaces DST entries with symlinks pointing outside.
    std::fs::remove_dir_all(dst.join("sub")).unwrap();
    std::os::unix::fs::symlink(&outside, dst.join("sub")).unwrap();
    std::fs::remove_file(dst.join("file")).unwrap();
    std::os::unix::fs::symlink(outside.join("file"), dst.join("file")).unwrap();
    std::fs::remove_dir_all(dst.join("gone-later")).unwrap();
    std::os::unix::fs::symlink(&outside, dst.join("gone-later")).unwrap();
    std::os::unix::fs::symlink(&outside, dst.join("extra-link")).unwrap();
    // SRC changes so that every one of them is written or deleted.
    sub.write(b"victim", b"attacker content, v2");
    s.write(b"file", b"newer content");
    std::fs::remove_dir_all(src.join("gone-later")).unwrap();

    sync_ok(&src, &dst, &[]);
    assert_eq!(before, snapshot(&outside), "a write or delete escaped DST");
    assert_trees_equal(&src, &dst);
    assert!(std::fs::symlink_metadata(dst.join("sub")).unwrap().is_dir());
}

#[test]
fn symlinks_in_src_are_copied_not_followed() {
    let (t, src, dst) = pair();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"s").unwrap();
    std::os::unix::fs::symlink(&outside, src.join("to-outside")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), src.join("secret-link")).unwrap();
    std::os::unix::fs::symlink("loop", src.join("loop")).unwrap();
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
    assert!(std::fs::symlink_metadata(dst.join("to-outside"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(snapshot(&dst).len(), 4, "{:?}", listing(&dst));
}

/// Builds a chain of `depth` directories named with 200 bytes each
/// (total path far beyond PATH_MAX) and a file at the bottom.
fn deep_chain(root: &Path, depth: usize, content: &[u8]) -> Vec<u8> {
    let name = [b'd'; 200];
    let mut d = Dir::open(root);
    let mut rel = Vec::new();
    for i in 0..depth {
        d = match d.stat(&name) {
            Some(_) => d.sub(&name),
            None => d.mkdir(&name, 0o755),
        };
        if i > 0 {
            rel.push(b'/');
        }
        rel.extend_from_slice(&name);
    }
    d.write(b"bottom", content);
    rel
}

#[test]
fn trees_deeper_than_path_max() {
    let (_t, src, dst) = pair();
    let rel = deep_chain(&src, 30, b"deep");
    assert!(rel.len() > libc::PATH_MAX as usize);
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
    // Change at the bottom, then delete the whole chain.
    deep_chain(&src, 30, b"deeper content");
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
    let _ = rel;
    let top = Dir::open(&src);
    // Remove the chain bottom-up with dirfd-relative calls.
    fn rm(d: &Dir, name: &[u8]) {
        let sub = d.sub(name);
        for n in sub.names() {
            if sub.stat(&n).unwrap().st_mode & libc::S_IFMT == libc::S_IFDIR {
                rm(&sub, &n);
            } else {
                sub.unlink(&n);
            }
        }
        let c = std::ffi::CString::new(name).unwrap();
        // SAFETY: NUL-terminated name relative to a valid descriptor.
        let r = unsafe { libc::unlinkat(d.0, c.as_ptr(), libc::AT_REMOVEDIR) };
        assert_eq!(r, 0);
    }
    rm(&top, &[b'd'; 200]);
    sync_ok(&src, &dst, &[]);
    assert_trees_equal(&src, &dst);
    assert!(Dir::open(&dst).names().is_empty());
}

const NOBODY: u32 = 65534;

/// Runs dirsync (SRC DST last in `args`) so that the side reading SRC is
/// not allowed to read everything: itself when not root, else uid and gid
/// 65534 (root reads everything, so unreadable files only exist for other
/// users), the tree handed over to that user first. In a remote suite,
/// see [`run_remote_without_dac`].
fn run_unprivileged(base: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    if let Some(mode) = sshd::mode() {
        return run_remote_without_dac(base, mode, args);
    }
    if is_root() {
        chown_tree(base, NOBODY);
        run_as(Some(NOBODY), None, args)
    } else {
        run_as(None, None, args)
    }
}

/// The capabilities that let root ignore permission bits.
const SETPRIV_NO_DAC: &str = "--bounding-set=-dac_override,-dac_read_search";

/// [`run_unprivileged`] in a remote suite. ssh logs in as the user running
/// the tests, so when that is root, the dirsync that reads SRC (this one
/// in a push, the remote one in a pull) runs as root without
/// `CAP_DAC_OVERRIDE` and `CAP_DAC_READ_SEARCH` (`setpriv` drops them from
/// the bounding set before it executes dirsync): a mode of 000 on a
/// root-owned entry then denies it as it would another user. The other
/// side, which writes DST, keeps every capability.
fn run_remote_without_dac(
    base: &Path,
    mode: sshd::Mode,
    args: &[&std::ffi::OsStr],
) -> std::process::Output {
    let mut remote_bin = bin();
    let mut c = Command::new(bin());
    if is_root() {
        match mode {
            sshd::Mode::Push => {
                c = Command::new("setpriv");
                c.args([SETPRIV_NO_DAC, "--"]).arg(bin());
            }
            sshd::Mode::Pull => {
                remote_bin = base.join("dirsync-without-dac");
                let script = format!(
                    "#!/bin/sh\nexec setpriv {SETPRIV_NO_DAC} -- '{}' \"$@\"\n",
                    bin().display()
                );
                std::fs::write(&remote_bin, script).unwrap();
                std::fs::set_permissions(
                    &remote_bin,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
                .unwrap();
            }
        }
    }
    let args = args.iter().map(|a| a.to_os_string()).collect();
    c.args(remote_args(mode, &remote_bin, args));
    c.output().expect("cannot run dirsync")
}

fn chown_tree(base: &Path, uid: u32) {
    for k in snapshot(base).keys() {
        let p = bpath(base, k);
        let cp = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated path; lchown does not follow links.
        let r = unsafe { libc::lchown(cp.as_ptr(), uid, uid) };
        assert_eq!(r, 0, "{}", p.display());
    }
}

#[test]
fn unreadable_entries_are_reported_and_skipped_the_rest_is_synced() {
    let (t, src, dst) = pair();
    build_sample_tree(&src);
    let s = Dir::open(&src);
    s.write(b"unreadable-file", b"no");
    let ud = s.mkdir(b"unreadable-dir", 0o755);
    ud.write(b"inside", b"i");
    s.mkdir(b"unreadable-new-dir", 0o755).write(b"x", b"x");
    s.mkdir(b"unreadable-dir-over-file", 0o755)
        .write(b"y", b"y");
    // DST already has older versions of them: they must be left alone.
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("unreadable-file"), b"old").unwrap();
    std::fs::create_dir(dst.join("unreadable-dir")).unwrap();
    std::fs::write(dst.join("unreadable-dir/old"), b"old").unwrap();
    std::fs::write(dst.join("unreadable-dir-over-file"), b"a file").unwrap();
    s.chmod(b"unreadable-file", 0o000);
    s.chmod(b"unreadable-dir", 0o000);
    s.chmod(b"unreadable-new-dir", 0o000);
    s.chmod(b"unreadable-dir-over-file", 0o000);
    // The tempdir itself must be enterable by the unprivileged user.
    std::fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let o = run_unprivileged(t.path(), &[src.as_os_str(), dst.as_os_str()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unreadable-file") && err.contains("Permission denied"),
        "{err}"
    );
    assert!(err.contains("unreadable-dir"), "{err}");
    assert!(err.contains("4 entries could not be synced"), "{err}");
    // Nothing was created or replaced for the unreadable directories.
    assert!(std::fs::symlink_metadata(dst.join("unreadable-new-dir")).is_err());
    assert_eq!(
        std::fs::read(dst.join("unreadable-dir-over-file")).unwrap(),
        b"a file"
    );
    // Everything else is there and exact.
    s.chmod(b"unreadable-file", 0o644);
    s.chmod(b"unreadable-dir", 0o755);
    s.chmod(b"unreadable-new-dir", 0o755);
    s.chmod(b"unreadable-dir-over-file", 0o755);
    let diffs = tree_diff(&src, &dst).unwrap();
    for d in &diffs {
        assert!(
            d.contains("unreadable") || d.starts_with("<root>"),
            "unexpected difference: {d}\nall: {diffs:#?}"
        );
    }
    assert_eq!(std::fs::read(dst.join("unreadable-file")).unwrap(), b"old");
    assert_eq!(
        std::fs::read(dst.join("unreadable-dir/old")).unwrap(),
        b"old"
    );
    no_temp_files(&dst);
}

#[test]
fn out_of_space_is_a_clear_error_and_leaves_dst_intact() {
    let t = tempdir();
    let src = t.path().join("src");
    let mnt = t.path().join("small-fs");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let s = Dir::open(&src);
    s.write(b"a-small", b"fits");
    s.write(b"b-existing", &vec![b'e'; 64 * 1024]);
    // Far bigger than the file system.
    let big = vec![b'x'; 2 * 1024 * 1024];
    s.write(b"m-huge", &big);
    s.write(b"z-small", b"fits too");
    let (code, err, names, content) = if is_root() {
        // Mount a 1 MiB tmpfs directly (the VM's busybox has no unshare);
        // detached again at the end whatever happens.
        struct Umount(std::ffi::CString);
        impl Drop for Umount {
            fn drop(&mut self) {
                // SAFETY: NUL-terminated path.
                unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
            }
        }
        let target = std::ffi::CString::new(mnt.as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated strings; tmpfs needs no device.
        let r = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"size=1m".as_ptr().cast(),
            )
        };
        assert_eq!(r, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        let _guard = Umount(target);
        let dst = mnt.join("dst");
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(dst.join("b-existing"), b"old").unwrap();
        // Through `run`: in a remote suite, one of the two is remote.
        let o = run([&src, &dst]);
        let names: Vec<String> = Dir::open(&dst)
            .names()
            .into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect();
        let content =
            String::from_utf8_lossy(&std::fs::read(dst.join("b-existing")).unwrap()).into_owned();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            names,
            content,
        )
    } else {
        // Not root: a user + mount namespace of our own.
        let script = format!(
            "set -e; mount -t tmpfs -o size=1m tmpfs '{m}'; mkdir '{m}/dst'; \
             printf old > '{m}/dst/b-existing'; \
             code=0; '{bin}' '{src}' '{m}/dst' 2>'{m}/err' || code=$?; \
             echo \"$code\"; cat '{m}/err'; echo ---; ls -A '{m}/dst'; echo ---; cat '{m}/dst/b-existing'",
            m = mnt.display(),
            bin = bin().display(),
            src = src.display()
        );
        let o = Command::new("unshare")
            .args(["-r", "-m", "sh", "-c", &script])
            .output()
            .expect("unshare");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let sections: Vec<&str> = out.split("---\n").collect();
        let mut first = sections[0].lines();
        let code = first.next().and_then(|c| c.parse().ok());
        let err = first.collect::<Vec<_>>().join("\n");
        let names = sections[1].lines().map(str::to_string).collect();
        (code, err, names, sections[2].to_string())
    };
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        names.iter().all(|n| !n.starts_with(".dirsync-tmp.")),
        "temp file left: {names:?}"
    );
    assert!(!names.iter().any(|n| n == "m-huge"), "{names:?}");
    // The existing file was not truncated or half-replaced: either the old
    // content or the complete new one.
    assert!(
        content == "old" || content.len() == 64 * 1024,
        "{content:?}"
    );
}

//! `-a` over ssh beyond the local fidelity suites (which run again as
//! `remote_push_fidelity`/`remote_pull_fidelity`): owners mapped by name
//! through the receiving side's own user database, a sparse image whose
//! bytes on the wire are its data extents (counted by the test's relay),
//! an unprivileged receiving side, hostile engines that abuse what `-a`
//! lets through, and an older peer without the feature.

mod common;
use common::exact::*;
use common::sshd::Sshd;
use common::*;

use std::ffi::OsString;
use std::os::unix::fs::{chown, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Output;

fn meta(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A user database: this machine's with `users` and `groups` (name, id)
/// added, as `passwd` and `group` files in `dir`.
fn database(dir: &Path, users: &[(&str, u32)], groups: &[(&str, u32)]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut pw = std::fs::read_to_string("/etc/passwd").unwrap();
    for (n, id) in users {
        pw += &format!("{n}:x:{id}:{id}::/nonexistent:/bin/false\n");
    }
    let mut gr = std::fs::read_to_string("/etc/group").unwrap();
    for (n, id) in groups {
        gr += &format!("{n}:x:{id}:\n");
    }
    std::fs::write(dir.join("passwd"), pw).unwrap();
    std::fs::write(dir.join("group"), gr).unwrap();
}

/// A script in `dir` that runs its arguments in a private mount
/// namespace where `/etc/passwd` and `/etc/group` are those of `db`.
fn in_db(dir: &Path, name: &str, db: &Path) -> PathBuf {
    let script = dir.join(name);
    write_script(
        &script,
        format!(
            "#!/bin/sh\nexec unshare -m sh -c 'mount --bind {db}/passwd /etc/passwd && \
             mount --bind {db}/group /etc/group && exec \"$@\"' sh \"$@\"\n",
            db = db.display()
        ),
    );
    script
}

/// Runs dirsync with `args` under the database of `local` (the client),
/// its remote side under `remote` (a `--remote-path` wrapper).
fn run_mapped(t: &Path, local: &Path, remote: &Path, args: &[OsString]) -> Output {
    let wrap_remote = t.join("remote-dirsync");
    write_script(
        &wrap_remote,
        format!(
            "#!/bin/sh\nexec {} {} \"$@\"\n",
            in_db(t, "remote-db", remote).display(),
            bin().display()
        ),
    );
    let local_wrap = in_db(t, "local-db", local);
    let mut c = std::process::Command::new(local_wrap);
    c.arg(bin())
        .args(Sshd::shared().args_for(&wrap_remote))
        .args(args);
    c.output().unwrap()
}

/// Owners and groups are mapped by name (SRC's names, the receiving
/// side's ids), push and pull; a name the receiving side lacks, or an id
/// SRC has no name for, keeps its number; `--numeric-ids` keeps numbers.
#[test]
fn owners_are_mapped_by_name_through_the_receiving_side_database() {
    assert!(is_root(), "the fidelity tests run as root (CI does)");
    let t = tmpfs_dir();
    let (src_db, dst_db) = (t.path().join("src-db"), t.path().join("dst-db"));
    database(
        &src_db,
        &[("dsmapuser", 2001), ("dsonlysrc", 2003)],
        &[("dsmapgrp", 3001)],
    );
    database(&dst_db, &[("dsmapuser", 2002)], &[("dsmapgrp", 3002)]);
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for (f, uid, gid) in [
        ("mapped", 2001, 3001),
        ("nameless", 2500, 2600),
        ("onlysrc", 2003, 3001),
    ] {
        std::fs::write(src.join(f), f).unwrap();
        chown(src.join(f), Some(uid), Some(gid)).unwrap();
    }
    let ids = |d: &Path, f: &str| (meta(&d.join(f)).uid(), meta(&d.join(f)).gid());
    for pull in [false, true] {
        for numeric in [false, true] {
            let dst = t.path().join(format!("dst-{pull}-{numeric}"));
            let mut args: Vec<OsString> = vec!["-a".into()];
            if numeric {
                args.push("--numeric-ids".into());
            }
            // The side that runs here has the database of its tree.
            let (local, remote) = match pull {
                false => {
                    args.push(src.clone().into());
                    args.push(sshd_remote(&dst));
                    (&src_db, &dst_db)
                }
                true => {
                    args.push(sshd_remote(&src));
                    args.push(dst.clone().into());
                    (&dst_db, &src_db)
                }
            };
            let out = run_mapped(t.path(), local, remote, &args);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let case = format!("pull {pull}, numeric {numeric}");
            let want = if numeric { (2001, 3001) } else { (2002, 3002) };
            assert_eq!(ids(&dst, "mapped"), want, "{case}");
            assert_eq!(ids(&dst, "nameless"), (2500, 2600), "{case}");
            let want = if numeric { (2003, 3001) } else { (2003, 3002) };
            assert_eq!(ids(&dst, "onlysrc"), want, "{case}");
        }
    }
}

fn sshd_remote(p: &Path) -> OsString {
    common::sshd::remote(p).into_os_string()
}

/// The 1 GiB image with three 64 KiB extents: only its data goes on the
/// wire (within 1%, counted by the relay around ssh), its holes are
/// holes on the receiving side (`st_blocks`), push and pull.
#[test]
fn sparse_image_sends_only_its_data_extents() {
    let t = tmpfs_dir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let img = src.join("image");
    {
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(1 << 30).unwrap();
        for (i, off) in [0u64, 500 << 20, (1 << 30) - (64 << 10)].iter().enumerate() {
            let data: Vec<u8> = (0..64 << 10).map(|j| (j * 7 + i * 13) as u8).collect();
            std::os::unix::fs::FileExt::write_all_at(&f, &data, *off).unwrap();
        }
    }
    let data: u64 = 3 * (64 << 10);
    let relay = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/count_rsh.py");
    for pull in [false, true] {
        let counts = t.path().join(format!("counts-{pull}"));
        std::fs::create_dir(&counts).unwrap();
        let dst = t.path().join(format!("dst-{pull}"));
        let rsh = format!(
            "{} {} {}",
            relay.display(),
            counts.display(),
            Sshd::shared().rsh()
        );
        let (a, b) = match pull {
            false => (src.clone().into_os_string(), sshd_remote(&dst)),
            true => (sshd_remote(&src), dst.clone().into_os_string()),
        };
        let out = cmd([
            OsString::from("-a"),
            "-e".into(),
            rsh.into(),
            "--remote-path".into(),
            bin().into(),
            a,
            b,
        ])
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_exact(&src, &dst);
        let (s, d) = (meta(&img), meta(&dst.join("image")));
        assert_eq!(d.len(), 1 << 30);
        assert!(
            d.blocks() <= s.blocks(),
            "DST allocates {} blocks, SRC {}",
            d.blocks(),
            s.blocks()
        );
        let n = |k: &str| -> u64 {
            std::fs::read_to_string(counts.join(k))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        // The data flows from SRC's side: up in a push, down in a pull.
        let wire = if pull { n("down") } else { n("up") };
        assert!(
            wire >= data && wire <= data + data / 100,
            "pull {pull}: {wire} bytes on the wire for {data} bytes of data"
        );
    }
}

/// A receiving side without privilege (the agent runs as uid 65534):
/// owners and `security.*` cannot be set there; one warning per kind,
/// everything else synced, exit 2.
#[test]
fn unprivileged_receiver_warns_once_per_kind_and_exits_2() {
    use std::os::unix::fs::PermissionsExt;
    let t = tmpfs_dir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    for f in ["r1", "r2", "r3"] {
        std::fs::write(src.join(f), f).unwrap();
        set_xattr(&src.join(f), "security.capability", &CAP_NET_RAW);
    }
    std::fs::write(src.join("mine"), "mine").unwrap();
    set_xattr(&src.join("mine"), "user.k", b"v");
    chown(src.join("mine"), Some(65534), Some(65534)).unwrap();
    std::fs::create_dir(&dst).unwrap();
    chown(&dst, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A copy of dirsync that uid 65534 can run (the build tree may not
    // be reachable for it).
    let agent = t.path().join("dirsync");
    std::fs::copy(bin(), &agent).unwrap();
    let wrap = t.path().join("as-nobody");
    write_script(
        &wrap,
        format!(
            "#!/bin/sh\nexec setpriv --reuid 65534 --regid 65534 --clear-groups {} \"$@\"\n",
            agent.display()
        ),
    );
    let mut args: Vec<OsString> = Sshd::shared()
        .args_for(&wrap)
        .into_iter()
        .map(Into::into)
        .collect();
    args.extend(["-a".into(), src.clone().into(), sshd_remote(&dst)]);
    let out = cmd(&args).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("warning:").count(), 2, "{err}");
    assert_eq!(err.matches("cannot set owner or group").count(), 1, "{err}");
    assert_eq!(
        err.matches("cannot set extended attributes").count(),
        1,
        "{err}"
    );
    for f in ["r1", "r2", "r3", "mine"] {
        assert_eq!(std::fs::read(dst.join(f)).unwrap(), f.as_bytes());
    }
    assert_eq!(meta(&dst.join("mine")).uid(), 65534);
    assert_eq!(
        xattrs_of(&dst.join("mine"))
            .unwrap()
            .get(&b"user.k"[..])
            .map(Vec::as_slice),
        Some(&b"v"[..])
    );
}

/// A pull whose receiving side (this side, DST) has no privilege: the
/// client runs as uid 65534 with its own copy of the key (mode 0600,
/// owned by 65534), the agent as root (`-l root`). Owners and `security.*` cannot be
/// set in DST: one warning per kind, everything else synced, exit 2.
#[test]
fn unprivileged_receiver_of_a_pull_warns_once_per_kind_and_exits_2() {
    use std::os::unix::fs::PermissionsExt;
    let t = tmpfs_dir();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    for f in ["r1", "r2", "r3"] {
        std::fs::write(src.join(f), f).unwrap();
        set_xattr(&src.join(f), "security.capability", &CAP_NET_RAW);
    }
    std::fs::write(src.join("mine"), "mine").unwrap();
    set_xattr(&src.join("mine"), "user.k", b"v");
    chown(src.join("mine"), Some(65534), Some(65534)).unwrap();
    std::fs::create_dir(&dst).unwrap();
    chown(&dst, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sshd = Sshd::shared();
    let key = t.path().join("key");
    std::fs::copy(sshd.key(), &key).unwrap();
    chown(&key, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let rsh = sshd.rsh().replace(
        &sshd.key().display().to_string(),
        &key.display().to_string(),
    );
    assert!(rsh.contains(&key.display().to_string()), "{rsh}");
    // As root on the remote side (ssh would log in as this side's user).
    let rsh = format!("{rsh} -l root");
    let args: Vec<OsString> = vec![
        "-e".into(),
        rsh.into(),
        "--remote-path".into(),
        bin().into(),
        "-a".into(),
        sshd_remote(&src),
        dst.clone().into(),
    ];
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
    let out = run_as(Some(65534), None, &refs);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("warning:").count(), 2, "{err}");
    assert_eq!(err.matches("cannot set owner or group").count(), 1, "{err}");
    assert_eq!(
        err.matches("cannot set extended attributes").count(),
        1,
        "{err}"
    );
    for f in ["r1", "r2", "r3", "mine"] {
        assert_eq!(std::fs::read(dst.join(f)).unwrap(), f.as_bytes());
        assert_eq!(meta(&dst.join(f)).uid(), 65534);
    }
    assert_eq!(
        xattrs_of(&dst.join("mine"))
            .unwrap()
            .get(&b"user.k"[..])
            .map(Vec::as_slice),
        Some(&b"v"[..])
    );
}

/// A DST with a file, next to a directory that must not change, and a
/// symlink in DST to that directory.
fn hostile_dst() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tmpfs_dir();
    let (dst, outside) = (t.path().join("dst"), t.path().join("outside"));
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), b"keep").unwrap();
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("file"), b"content").unwrap();
    std::os::unix::fs::symlink("../outside", dst.join("out")).unwrap();
    (t, dst, outside)
}

/// Hostile engines of a pull (`examples/hostile_peer/fidelity.rs`):
/// each abuse is refused (exit 3) or comes to nothing, and neither DST's
/// file nor anything outside DST changes.
#[test]
fn hostile_engines_cannot_abuse_fidelity_messages() {
    for (scenario, opts, code) in [
        ("fid-oversize-xattr", "-a", 3),
        ("fid-acl-entries", "-a", 3),
        ("fid-link-dotdot", "-a", 3),
        ("fid-chown", "-AX", 3),
        ("fid-xattr-not-asked", "-A", 3),
        // Refused by the agent's O_NOFOLLOW walk: an error for the
        // engine, the pull itself ends.
        ("fid-link-symlink", "-a", 0),
    ] {
        let (_t, dst, outside) = hostile_dst();
        let out = cmd([
            "-e",
            &hostile_rsh(scenario),
            opts,
            "127.0.0.1:/src",
            dst.to_str().unwrap(),
        ])
        .output()
        .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{scenario}: {err}");
        let keep = meta(&outside.join("keep"));
        assert_eq!(keep.nlink(), 1, "{scenario}: a link to outside/keep");
        assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"keep");
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            1,
            "{scenario}"
        );
        let names: Vec<_> = std::fs::read_dir(&dst)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{scenario}: {names:?}");
        let f = dst.join("file");
        assert_eq!(std::fs::read(&f).unwrap(), b"content");
        assert_eq!((meta(&f).uid(), meta(&f).nlink()), (0, 1), "{scenario}");
        assert!(xattrs_of(&f).unwrap().is_empty(), "{scenario}");
    }
}

/// A peer without the fidelity feature (an older dirsync): `-a` stops
/// with a clear message before anything is asked of it, push and pull;
/// without `-a` the same peer is talked to.
#[test]
fn an_older_peer_is_refused_when_archive_is_asked() {
    use dirsync::remote::protocol::messages::{Msg, FEATURES, FEATURE_FIDELITY, FEATURE_ZSTD};
    let t = tempdir();
    let src = t.path().join("src");
    build_sample_tree(&src);
    let mut hello = dirsync::remote::hello(FEATURES & !FEATURE_FIDELITY & !FEATURE_ZSTD);
    hello.version = b"0.0.9-old".to_vec();
    let peer = prerecorded_peer(t.path(), "old", &frame(&Msg::Hello(hello)), Then::Drain);
    let rsh = format!("{} --", peer.display());
    let dst = t.path().join("dst");
    for opt in ["-a", "-H", "-A", "-X", "-o", "-g", "-S"] {
        for (a, b) in [
            (src.clone().into_os_string(), OsString::from("host:/dst")),
            (OsString::from("host:/src"), dst.clone().into_os_string()),
        ] {
            let out = cmd([OsString::from(opt), "-e".into(), rsh.clone().into(), a, b])
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(3), "{opt}: {err}");
            assert!(err.contains("0.0.9-old cannot keep owners"), "{opt}: {err}");
        }
    }
    assert!(!dst.exists());
    // Without -a the hello passes (then the peer says nothing more).
    let out = cmd([
        OsString::from("-e"),
        rsh.into(),
        src.into_os_string(),
        "host:/dst".into(),
    ])
    .output()
    .unwrap();
    assert!(
        !stderr(&out).contains("cannot keep owners"),
        "{}",
        stderr(&out)
    );
}

/// Set-user-ID and set-group-ID bits travel with `-o`/`-g` (the
/// receiving side keeps them only when its own options have them) and are
/// cleared without, push and pull.
#[test]
fn set_id_bits_travel_only_with_owner_and_group() {
    use std::os::unix::fs::PermissionsExt;
    let t = tmpfs_dir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let f = src.join("suid");
    std::fs::write(&f, "#!/bin/sh\n").unwrap();
    chown(&f, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o6755)).unwrap();
    for pull in [false, true] {
        for (opt, want) in [("-a", (0o6755, 65534, 65534)), ("-X", (0o755, 0, 0))] {
            let dst = t.path().join(format!("dst-{pull}{opt}"));
            let (a, b) = match pull {
                false => (src.clone().into_os_string(), sshd_remote(&dst)),
                true => (sshd_remote(&src), dst.clone().into_os_string()),
            };
            let mut args: Vec<OsString> =
                Sshd::shared().args().into_iter().map(Into::into).collect();
            args.extend([opt.into(), a, b]);
            let out = cmd(&args).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let m = meta(&dst.join("suid"));
            let got = (m.mode() & 0o7777, m.uid(), m.gid());
            assert_eq!(got, want, "pull {pull}, {opt}");
        }
    }
}

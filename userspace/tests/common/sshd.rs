//! A real OpenSSH server for the remote tests: `/usr/sbin/sshd -D` on
//! 127.0.0.1 and a free port, with a host key and a client key made by
//! `ssh-keygen` in a temporary directory, and an `authorized_keys` for
//! the current user. Stopped on drop; a watchdog shell also stops it when
//! the test process ends (for the instance shared by a whole test binary).
//!
//! The client side: [`Sshd::rsh`] is the `-e` value, [`Sshd::args`] the
//! `-e ... --remote-path BIN` arguments of a dirsync command.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running sshd.
pub struct Sshd {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
    /// Closing it makes the watchdog stop sshd.
    watchdog: ChildStdin,
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(st.success(), "ssh-keygen failed");
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

/// Starts sshd with the keys of `d` on `port`, behind a watchdog shell
/// (sshd in the background, killed when our end of the shell's stdin
/// closes: drop, or this process ending). `None` when it did not come up.
fn spawn(d: &Path, port: u16) -> Option<(Child, ChildStdin)> {
    let conf = d.join("sshd_config");
    let text = format!(
        "ListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
         AuthorizedKeysFile {d}/authorized_keys\nPidFile none\nStrictModes no\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         PubkeyAuthentication yes\nUsePAM no\nPermitRootLogin yes\n\
         LogLevel FATAL\nMaxStartups 200\nAcceptEnv XDG_CACHE_HOME\n",
        d = d.display()
    );
    std::fs::write(&conf, text).unwrap();
    let script = format!(
        "/usr/sbin/sshd -D -e -f '{}' -p {port} </dev/null & p=$!; read _; kill $p",
        conf.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh");
    let stdin = child.stdin.take().unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, stdin));
        }
        if let Ok(Some(_)) = child.try_wait() {
            break; // sshd died (the port was taken?)
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Sshd {
    /// Stops the listening sshd (sessions already open stay): new
    /// connections are refused until [`Sshd::resume`].
    pub fn pause(&mut self) {
        let _ = self.watchdog.write_all(b"\n");
        let _ = self.child.wait();
    }

    /// Starts the listening sshd again, on the same port.
    pub fn resume(&mut self) {
        let (child, stdin) = spawn(self.dir.path(), self.port).expect("sshd restart");
        self.child = child;
        self.watchdog = stdin;
    }

    /// Starts one (panics when sshd cannot start: the tests need it).
    pub fn start() -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("dirsync-sshd")
            .tempdir()
            .unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        if super::is_root() {
            // sshd's privilege separation directory (Debian's unit makes it).
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        for _ in 0..5 {
            let port = free_port();
            if let Some((child, stdin)) = spawn(d, port) {
                return Sshd {
                    port,
                    dir,
                    child,
                    watchdog: stdin,
                };
            }
        }
        panic!("cannot start sshd");
    }

    /// The instance shared by the tests of this binary.
    pub fn shared() -> &'static Sshd {
        static S: OnceLock<Sshd> = OnceLock::new();
        S.get_or_init(Sshd::start)
    }

    /// The client key.
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// The `-e/--rsh` command that reaches this sshd.
    pub fn rsh(&self) -> String {
        format!(
            "ssh -p {} -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -o BatchMode=yes -o LogLevel=ERROR",
            self.port,
            self.key().display()
        )
    }

    /// The `-e/--rsh` command of a second key `name` (made now) whose
    /// `authorized_keys` line is `command="FORCED",restrict KEY`: sshd
    /// runs FORCED for it, whatever the client asks (in
    /// `SSH_ORIGINAL_COMMAND`).
    pub fn forced_rsh(&self, name: &str, forced: &str) -> String {
        let key = self.dir.path().join(name);
        keygen(&key);
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let line = format!("command=\"{forced}\",restrict {public}");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
        let rsh = self.rsh();
        let rsh = rsh.replace(
            &self.key().display().to_string(),
            &key.display().to_string(),
        );
        format!("{rsh} -o IdentitiesOnly=yes")
    }

    /// `-e RSH --remote-path BIN` for a dirsync command.
    pub fn args(&self) -> Vec<String> {
        self.args_for(&super::bin())
    }

    /// `-e RSH --remote-path REMOTE_BIN`: another program run as the
    /// remote dirsync.
    pub fn args_for(&self, remote_bin: &Path) -> Vec<String> {
        vec![
            "-e".into(),
            self.rsh(),
            "--remote-path".into(),
            remote_bin.display().to_string(),
        ]
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Closing the watchdog's stdin kills sshd; then reap the shell.
        let _ = self.watchdog.write_all(b"\n");
        let _ = self.child.wait();
    }
}

/// Which side the one-shot suites put on the remote host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `dirsync SRC 127.0.0.1:DST`.
    Push,
    /// `dirsync 127.0.0.1:SRC DST`.
    Pull,
}

/// The remote mode of this test binary: the suites of `sync_*.rs` are
/// compiled again as `remote_push_*`/`remote_pull_*` binaries, which run
/// every sync through [`Sshd::shared`].
pub fn mode() -> Option<Mode> {
    static M: OnceLock<Option<Mode>> = OnceLock::new();
    *M.get_or_init(|| {
        let exe = std::env::current_exe().ok()?;
        let name = exe.file_name()?.to_string_lossy().into_owned();
        if name.starts_with("remote_push_") {
            Some(Mode::Push)
        } else if name.starts_with("remote_pull_") {
            Some(Mode::Pull)
        } else {
            None
        }
    })
}

/// `host:path` as the remote suites write a remote path.
pub fn remote(p: &Path) -> PathBuf {
    PathBuf::from(format!("127.0.0.1:{}", p.display()))
}

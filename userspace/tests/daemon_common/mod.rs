//! The daemon tests' helpers: a real `dirsync daemon` started on a config
//! written to a temporary directory, its control socket, its notify
//! socket, and bounded waits.
#![allow(dead_code)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dirsync"))
}

/// Polls `f` every 20 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A daemon running on `dir/daemon.toml`, its socket `dir/run/control.sock`,
/// its state in `dir/state`, its stderr in `dir/daemon.log`.
pub struct Daemon {
    pub child: Child,
    pub dir: PathBuf,
}

/// The `[daemon]` block every test uses (control socket and state inside
/// `dir`), then `rest`.
pub fn config_text(dir: &Path, rest: &str) -> String {
    format!(
        "[daemon]\ncontrol = \"{d}/run/control.sock\"\nstate = \"{d}/state\"\nlog = \"debug\"\n{rest}",
        d = dir.display()
    )
}

impl Daemon {
    pub fn config(dir: &Path) -> PathBuf {
        dir.join("daemon.toml")
    }

    /// Starts it with `env` added.
    pub fn start_env(dir: &Path, env: &[(&str, &str)]) -> Daemon {
        let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
        let mut c = Command::new(bin());
        c.args(["daemon", "--config"])
            .arg(Self::config(dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM");
        for (k, v) in env {
            c.env(k, v);
        }
        Daemon {
            child: c.spawn().expect("dirsync daemon"),
            dir: dir.to_path_buf(),
        }
    }

    pub fn start(dir: &Path) -> Daemon {
        Self::start_env(dir, &[])
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/control.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// `dirsync ARGS --control SOCKET`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .arg("--control")
            .arg(self.socket())
            .output()
            .unwrap()
    }

    /// `dirsync status --json`, parsed (None while it does not answer).
    pub fn status(&self) -> Option<Value> {
        let o = self.ctl(&["status", "--json"]);
        if !o.status.success() {
            return None;
        }
        serde_json::from_slice(&o.stdout).ok()
    }

    /// The pair `name` of `status --json`.
    pub fn pair(&self, name: &str) -> Option<Value> {
        let s = self.status()?;
        s["pairs"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    pub fn state_of(&self, name: &str) -> String {
        self.pair(name)
            .and_then(|p| p["state"].as_str().map(String::from))
            .unwrap_or_default()
    }

    /// Waits until the pair `name` is in `state`.
    pub fn wait_state(&self, name: &str, state: &str, limit: Duration) {
        let ok = wait_for(limit, || self.state_of(name) == state);
        assert!(
            ok,
            "pair {name} not {state} within {limit:?}: {:?}\n{}",
            self.pair(name),
            self.log()
        );
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: a plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, sig) }, 0);
    }

    /// SIGTERM, then its exit code and how long it took.
    pub fn stop(mut self) -> (Option<i32>, Duration) {
        let t = Instant::now();
        self.signal(libc::SIGTERM);
        let mut code = None;
        wait_for(Duration::from_secs(10), || match self.child.try_wait() {
            Ok(Some(s)) => {
                code = s.code();
                true
            }
            _ => false,
        });
        let took = t.elapsed();
        let _ = self.child.kill();
        let _ = self.child.wait();
        (code, took)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A datagram socket standing in for systemd's `NOTIFY_SOCKET`.
pub struct NotifySocket {
    pub path: PathBuf,
    sock: UnixDatagram,
    pub got: Vec<String>,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        NotifySocket {
            path,
            sock,
            got: Vec::new(),
        }
    }

    /// Reads what came; true once a message satisfies `f` (within `limit`).
    pub fn wait(&mut self, limit: Duration, f: impl Fn(&str) -> bool) -> bool {
        self.wait_all(limit, |got| got.iter().any(|m| f(m)))
    }

    /// Reads what came; true once all messages so far satisfy `f`.
    pub fn wait_all(&mut self, limit: Duration, f: impl Fn(&[String]) -> bool) -> bool {
        let start = Instant::now();
        let mut buf = vec![0u8; 65536];
        loop {
            while let Ok(n) = self.sock.recv(&mut buf) {
                self.got
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            if f(&self.got) {
                return true;
            }
            if start.elapsed() > limit {
                return false;
            }
        }
    }
}

/// The inotify descriptors of `pid`: fd number → the inodes they watch.
pub fn inotify_fds(pid: u32) -> Vec<(u32, Vec<u64>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        if target.to_string_lossy() != "anon_inode:inotify" {
            continue;
        }
        let fd: u32 = e.file_name().to_string_lossy().parse().unwrap();
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
        let inos = info
            .lines()
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("ino:")))
            .filter_map(|h| u64::from_str_radix(h, 16).ok())
            .collect();
        out.push((fd, inos));
    }
    out.sort();
    out
}

/// The inotify watch of `pid` on the directory `dir`: its descriptor
/// and watch descriptor (from `/proc/PID/fdinfo`).
pub fn watch_of(pid: u32, dir: &Path) -> Option<(u32, i32)> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(dir).ok()?.ino();
    for (fd, _) in inotify_fds(pid) {
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
        for l in info.lines() {
            let field = |k: &str| l.split_whitespace().find_map(|w| w.strip_prefix(k));
            let (Some(wd), Some(i)) = (field("wd:"), field("ino:")) else {
                continue;
            };
            if u64::from_str_radix(i, 16).ok() == Some(ino) {
                return Some((fd, wd.parse().ok()?));
            }
        }
    }
    None
}

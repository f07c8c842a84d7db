//! systemd's notification protocol, by hand (about twenty lines, no
//! crate): one `AF_UNIX` datagram per message to `$NOTIFY_SOCKET` (a path,
//! or `@name` in the abstract namespace). The `sd-notify` crate does the
//! same; this keeps the dependency list short and lets the daemon keep the
//! socket for its whole life (`NotifyAccess=main`: only this process
//! sends).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// A connection to the service manager (`None` inside: not under systemd).
pub struct Notifier(Option<(UnixDatagram, SocketAddr)>);

impl Notifier {
    /// From `$NOTIFY_SOCKET`, which is then removed from the environment
    /// (hooks and children must not notify in the daemon's name).
    pub fn from_env() -> Notifier {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier(None);
        };
        let b = path.as_bytes();
        let addr = match b.first() {
            Some(b'@') => SocketAddr::from_abstract_name(&b[1..]),
            Some(b'/') => SocketAddr::from_pathname(std::path::Path::new(&path)),
            _ => return Notifier(None),
        };
        let sock = UnixDatagram::unbound();
        match (sock, addr) {
            (Ok(s), Ok(a)) => Notifier(Some((s, a))),
            _ => Notifier(None),
        }
    }

    /// Whether there is a service manager to tell.
    pub fn active(&self) -> bool {
        self.0.is_some()
    }

    /// Sends `msg` (`KEY=VALUE` lines); failures are ignored (the manager
    /// may be gone).
    pub fn send(&self, msg: &str) {
        if let Some((s, a)) = &self.0 {
            let _ = s.send_to_addr(msg.as_bytes(), a);
        }
    }
}

/// `CLOCK_MONOTONIC` in microseconds (for `MONOTONIC_USEC=`).
pub fn monotonic_usec() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64) * 1_000_000 + (t.tv_nsec as u64) / 1000
}

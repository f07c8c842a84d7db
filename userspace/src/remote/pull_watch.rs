//! The client's half of `dirsync watch host:SRC DST`: a pull whose
//! engine keeps running. The server watches its SRC with its own inotify
//! ([`super::watch_src`]); this side is the agent of DST for as long as
//! the watch lasts, with the receiver rules of any pull (the local
//! user's options, confinement to DST, the bounds), and reports the
//! server's events as a local watch reports its own.
//!
//! SIGINT/SIGTERM (blocked before any thread, read from a signalfd by a
//! thread of their own) send a `WatchStop`: the server finishes the
//! operations in hand (this side still serves them), ends with `Done`
//! and exits; this side then exits 0, as a local watch does. A server
//! that does not end within [`STOP_GRACE`], or a second signal, has its
//! transport killed (exit 3). The link itself has the keepalives and
//! `--timeout` of every remote run, in both directions; a link lost
//! (ssh killed, the server gone) ends the run with exit 3. The agent
//! writes every file under a temporary name, so DST never holds a
//! partial file under a final name.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::agent::{self, Agent, Violation};
use super::client::{start_pull, Connect};
use super::protocol::events;
use super::protocol::frame::FrameWriter;
use super::protocol::messages::{Msg, WireEvent};
use super::protocol::watch::OPT_WATCH;
use super::spec::Spec;
use super::RemoteError;
use crate::report::{human, Event, Reporter};
use crate::sync::Options;
use crate::sys::notify::{wait_readable, EventFd, SignalFd};
use crate::ExitStatus;

/// How long a stopped server may take to finish the operations in hand
/// before its transport is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The longest path or text an event of the server may carry: longer is
/// a protocol violation (exit 3), not something to print.
pub const MAX_EVENT_FIELD: usize = 64 << 10;

/// What the stopping thread needs.
struct Stopper {
    signals: SignalFd,
    /// Raised when the run is over: the thread ends.
    done: Arc<EventFd>,
    w: FrameWriter,
    /// The transport's process (killed after [`STOP_GRACE`]).
    pid: u32,
    reporter: Arc<dyn Reporter>,
    label: std::path::PathBuf,
}

impl Stopper {
    fn run(mut self) {
        let mut deadline: Option<Instant> = None;
        loop {
            let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let fds = [self.signals.as_fd(), self.done.as_fd()];
            let Ok(ready) = wait_readable(&fds, wait) else {
                return;
            };
            if ready[1] {
                return;
            }
            let signal = if ready[0] { self.signals.read() } else { None };
            match (signal, deadline) {
                (Some(sig), None) => {
                    let kind = if sig == libc::SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    };
                    self.reporter.event(&Event::Notify {
                        kind,
                        path: &self.label,
                    });
                    let sent =
                        agent::send(&mut self.w, &Msg::WatchStop).and_then(|()| self.w.flush());
                    if sent.is_err() {
                        return self.kill();
                    }
                    deadline = Some(Instant::now() + STOP_GRACE);
                }
                // A second signal, or the grace is over.
                (Some(_), Some(_)) => return self.kill(),
                (None, Some(d)) if Instant::now() >= d => return self.kill(),
                (None, _) => {}
            }
        }
    }

    fn kill(&self) {
        // The transport is not reaped before this thread is joined, so
        // the pid is still its own. SIGKILL: it inherited our blocked
        // SIGINT/SIGTERM (as it should: a Ctrl-C of the terminal's
        // process group must not cut the link before the stop is sent).
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Whether the fields of `w` are within [`MAX_EVENT_FIELD`].
fn bounded(w: &WireEvent) -> bool {
    [&w.a, &w.b, &w.text]
        .iter()
        .all(|f| f.len() <= MAX_EVENT_FIELD)
}

/// `dirsync watch host:SRC DST` (see the module docs): returns when the
/// watch ends, [`ExitStatus::Ok`] after a signal; an error when the
/// server cannot watch ([`RemoteError::NoWatch`], nothing changed), the
/// link is lost or the server breaks the rules.
pub fn run(
    spec: &Spec,
    dst: &Path,
    c: &Connect,
    options: Options,
    reporter: Arc<dyn Reporter>,
) -> Result<ExitStatus, RemoteError> {
    // Before any thread: every thread inherits the blocked signals.
    let signals = SignalFd::new().map_err(|e| crate::Error::new("creating a signalfd", e))?;
    let host = spec.host.as_str();
    let (mut s, mut agent, paths) = start_pull(spec, dst, c, &options, &*reporter, OPT_WATCH)?;
    let label = spec.label();
    let map = |p: &[u8]| paths.map(p);
    let done = Arc::new(EventFd::new().map_err(|e| crate::Error::new("creating an eventfd", e))?);
    let stopper = Stopper {
        signals,
        done: done.clone(),
        w: s.w.share(),
        pid: s.transport.id(),
        reporter: reporter.clone(),
        label: label.clone(),
    };
    let stopper: JoinHandle<()> = std::thread::spawn(move || stopper.run());
    let out = super::server::run_agent(agent.as_mut(), &mut s.r, &mut s.w, |m| match m {
        // The server's own "stop" notice: this side reported the signal.
        Msg::Event(w) if w.kind == 11 && w.text == b"stop" => Ok(None),
        Msg::Event(w) if !bounded(&w) => Err(Violation("an oversized event".into())),
        Msg::Event(w) => {
            events::with_event(&w, map, |e| reporter.event(e))
                .ok_or_else(|| Violation("unknown event".into()))?;
            Ok(None)
        }
        Msg::Done { counters: _, fatal } => Ok(Some(fatal)),
        other => Err(Violation(format!("unexpected message {other:?}"))),
    })
    .and_then(|out| {
        agent.as_ref().map_or(Ok(()), Agent::finish)?;
        Ok(out)
    });
    done.notify();
    let _ = stopper.join();
    let out = out.map_err(|e| protocol(host, e))?;
    let _ = agent::send(&mut s.w, &Msg::Bye).and_then(|()| s.w.flush());
    s.transport.finish(Duration::from_secs(10));
    match out {
        None => Err(protocol(host, "the connection was lost")),
        Some(Some(f)) => Err(RemoteError::Remote {
            host: host.to_string(),
            message: human(&f),
        }),
        Some(None) => Ok(ExitStatus::Ok),
    }
}

fn protocol(host: &str, e: impl std::fmt::Display) -> RemoteError {
    RemoteError::Protocol {
        host: host.to_string(),
        message: e.to_string(),
    }
}

//! What stops a watch loop: SIGINT/SIGTERM, or a flag ([`Signals`]).

use std::sync::Arc;

use crate::sys::notify;
use crate::{Error, Result};

/// What stops [`super::run_with`]: SIGINT/SIGTERM (created by [`Signals::new`],
/// which blocks both signals in the calling thread: call it before
/// spawning threads), or a stop flag another thread raises
/// ([`Signals::stop_flag`]: the daemon stops one pair of many).
pub struct Signals(pub(super) Stop);

/// The two kinds of [`Signals`].
pub(super) enum Stop {
    Signals(notify::SignalFd),
    Flag(Arc<notify::EventFd>),
}

impl Signals {
    /// Blocks SIGINT and SIGTERM and opens a signalfd for them.
    pub fn new() -> Result<Self> {
        Ok(Signals(Stop::Signals(
            notify::SignalFd::new().map_err(|e| Error::new("creating a signalfd", e))?,
        )))
    }

    /// Stops when `flag` is notified (what was notified before the call
    /// counts too: drain it first to start afresh).
    pub fn stop_flag(flag: Arc<notify::EventFd>) -> Self {
        Signals(Stop::Flag(flag))
    }

    /// The descriptor that becomes readable.
    pub(super) fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match &self.0 {
            Stop::Signals(s) => s.as_fd(),
            Stop::Flag(f) => f.as_fd(),
        }
    }

    /// What asked to stop, if anything: "SIGINT", "SIGTERM" or "stop".
    pub(super) fn read(&self) -> Option<&'static str> {
        match &self.0 {
            Stop::Signals(s) => s.read().map(|sig| {
                if sig == libc::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                }
            }),
            // The flag stays raised (not drained): a stop is for good.
            Stop::Flag(f) => f.is_raised().then_some("stop"),
        }
    }
}

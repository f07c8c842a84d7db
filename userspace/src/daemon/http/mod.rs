//! The daemon's HTTP side (`[daemon] http`): the status page, the JSON API
//! and the Prometheus metrics, over plain HTTP/1.1 on a socket the daemon
//! binds. Start it with [`bind`] (or [`serve`] on a listener already
//! bound); it runs on threads of its own until [`HttpServer::stop`] (or
//! drop).
//!
//! The paths and answers are in [`routes`]; who may do what in [`guard`]:
//! without a token only loopback is served and a state-changing request
//! must come from the page itself; with a token every request carries it.
//!
//! Every request is hostile: its head is at most [`request::MAX_HEAD`]
//! bytes and [`request::MAX_HEADERS`] headers, its body at most
//! [`request::MAX_BODY`] bytes, all of it must arrive within
//! [`REQUEST_DEADLINE`], an answer must be taken within [`WRITE_TIMEOUT`],
//! and at most [`MAX_CONNECTIONS`] connections are served at once (the
//! next ones get a 503 and are closed). One request per connection.

pub mod guard;
pub mod metrics;
pub mod page;
pub mod request;
pub mod routes;
mod time;

pub use super::json::pairs_json;
pub use crate::utc::rfc3339;

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};

use crate::daemon::api::Control;
use crate::daemon::service::FrontEnd;
use guard::Guard;
use request::{read_request, Response};

/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// A request (head and body) must have arrived this long after the
/// connection was accepted.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// An answer must have been taken by the client this long after it was
/// ready (a client that reads it a few bytes at a time is cut off then).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A non-loopback address without a token.
    #[error("{0}: serving a non-loopback address needs a token ([daemon] token)")]
    NotLoopback(SocketAddr),
    /// An empty token.
    #[error("the HTTP token is empty")]
    EmptyToken,
    /// Binding or setting up the socket failed.
    #[error("HTTP listener: {0}")]
    Io(#[from] io::Error),
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    wake: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// The address it listens on (with the port the system chose for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes the listener. Requests being answered
    /// finish on their own threads (each bounded by the deadlines, a
    /// `sync` by its sync).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = rustix::io::write(&*self.wake, &1u64.to_ne_bytes());
            let _ = thread.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// [`bind`] as the daemon starts its front ends
/// ([`crate::daemon::service::StartHttp`]).
pub fn start(
    addr: SocketAddr,
    token: Option<String>,
    control: Arc<dyn Control>,
) -> io::Result<Box<dyn FrontEnd>> {
    match bind(addr, token, control) {
        Ok(server) => Ok(Box::new(server)),
        Err(HttpError::Io(e)) => Err(e),
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidInput, e)),
    }
}

impl FrontEnd for HttpServer {
    fn stop(self: Box<Self>) {
        HttpServer::stop(*self);
    }
}

/// Binds `addr` and serves it ([`serve`]). A non-loopback `addr` without
/// a token is refused before anything is bound.
pub fn bind(
    addr: SocketAddr,
    token: Option<String>,
    control: Arc<dyn Control>,
) -> Result<HttpServer, HttpError> {
    check(addr, token.as_deref())?;
    serve(TcpListener::bind(addr)?, token, control)
}

/// Serves the status page, the API and the metrics of `control` on
/// `listener` until the returned handle is stopped or dropped. `token`
/// is `[daemon] token`; without one the listener must be on loopback.
pub fn serve(
    listener: TcpListener,
    token: Option<String>,
    control: Arc<dyn Control>,
) -> Result<HttpServer, HttpError> {
    let addr = listener.local_addr()?;
    check(addr, token.as_deref())?;
    listener.set_nonblocking(true)?;
    let wake = Arc::new(
        eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(io::Error::from)?,
    );
    let guard = Arc::new(Guard::new(token.as_deref(), addr.port()));
    let wake2 = Arc::clone(&wake);
    let thread = std::thread::Builder::new()
        .name("dirsync-http".into())
        .spawn(move || accept_loop(&listener, &wake2, &guard, &control))?;
    Ok(HttpServer {
        addr,
        wake,
        thread: Some(thread),
    })
}

fn check(addr: SocketAddr, token: Option<&str>) -> Result<(), HttpError> {
    match token {
        Some("") => Err(HttpError::EmptyToken),
        None if !addr.ip().is_loopback() => Err(HttpError::NotLoopback(addr)),
        _ => Ok(()),
    }
}

fn accept_loop(
    listener: &TcpListener,
    wake: &OwnedFd,
    guard: &Arc<Guard>,
    control: &Arc<dyn Control>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let mut fds = [
            PollFd::new(listener, PollFlags::IN),
            PollFd::new(wake, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
        if !fds[1].revents().is_empty() {
            return;
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => start_connection(stream, &active, guard, control),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // Out of descriptors or memory: let it pass, do not spin.
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
            }
        }
    }
}

/// Decrements the count of active connections when a connection's thread
/// ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn start_connection(
    stream: TcpStream,
    active: &Arc<AtomicUsize>,
    guard: &Arc<Guard>,
    control: &Arc<dyn Control>,
) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
        let _slot = Slot(Arc::clone(active));
        let r = Response::error(503, "Service Unavailable", "too many connections");
        // Answered here, on the accept thread: nothing may block it long.
        let deadline = Instant::now() + Duration::from_millis(200);
        if r.write_to(&stream, deadline).is_ok() {
            let _ = stream.shutdown(Shutdown::Write);
        }
        return;
    }
    let slot = Slot(Arc::clone(active));
    let (guard, control) = (Arc::clone(guard), Arc::clone(control));
    // A failed spawn drops the closure, its slot and the stream.
    let _ = std::thread::Builder::new()
        .name("dirsync-http-conn".into())
        .spawn(move || {
            let _slot = slot;
            connection(stream, &guard, &*control);
        });
}

fn connection(mut stream: TcpStream, guard: &Guard, control: &dyn Control) {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let response = match read_request(&mut stream, deadline) {
        Ok(req) => routes::handle(&req, guard, control),
        Err(e) => match e.status() {
            Some((code, reason)) => Response::error(code, reason, reason),
            None => return,
        },
    };
    finish(stream, &response);
}

/// Sets a zero linger time: closing the socket then resets the connection
/// and discards its unsent data.
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is the open socket `stream` borrows for this
    // call; the option value points to a live `linger` whose exact size is
    // passed, as SO_LINGER expects.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Writes `response`, then closes so that the client reads all of it:
/// our side is shut first and what the client still sends is drained
/// (bounded in bytes and time); closing with unread input would reset
/// the connection and could discard the answer.
fn finish(mut stream: TcpStream, response: &Response) {
    if response
        .write_to(&stream, Instant::now() + WRITE_TIMEOUT)
        .is_err()
    {
        // Too slow or gone: reset, so that what the kernel still holds
        // for it is dropped too rather than trickled out after the close.
        reset(&stream);
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

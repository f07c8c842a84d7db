//! The hostile peer's end of the conversation: frames on stdin/stdout,
//! the handshake as a server, and a reader thread that takes whatever the
//! other side sends so that it never blocks writing to us. A toolbox for
//! the scenario modules: not every one uses every tool.
#![allow(dead_code)]

use std::io;
use std::sync::mpsc;
use std::time::Duration;

use dirsync::remote::hello;
use dirsync::remote::protocol::alive::Alive;
use dirsync::remote::protocol::frame::{FrameReader, FrameWriter};
use dirsync::remote::protocol::messages::{Msg, Setup, FEATURES, FEATURE_KEEPALIVE, FEATURE_ZSTD};

/// Features the hostile server offers: all but compression, so that the
/// stream after the handshake stays plain frames (a scenario about
/// compression offers it itself).
pub const PLAIN: u64 = FEATURES & !FEATURE_ZSTD;

/// The longest any scenario waits for anything: the tests' own bounds are
/// far shorter, so a peer never outlives its test by much.
pub const PATIENCE: Duration = Duration::from_secs(300);

/// One end of a conversation with a real `dirsync`.
pub struct Peer {
    r: Option<FrameReader>,
    w: FrameWriter,
    /// Messages from the other side, once [`Peer::drain`] started.
    got: Option<mpsc::Receiver<Msg>>,
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl Peer {
    /// On stdin and stdout.
    pub fn stdio() -> Peer {
        Peer {
            r: Some(FrameReader::new(Box::new(io::stdin()))),
            w: FrameWriter::new(Box::new(io::stdout())),
            got: None,
        }
    }

    /// Queues `m`.
    pub fn send(&mut self, m: &Msg) -> io::Result<()> {
        let (k, p) = m.encode();
        self.w.write(k, &p)
    }

    /// Queues a frame of any kind and payload (not a valid message,
    /// maybe).
    pub fn send_raw(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        self.w.write(kind, payload)
    }

    /// Sends what is queued.
    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// The next message from the other side (`None`: it closed).
    pub fn recv(&mut self) -> io::Result<Option<Msg>> {
        if let Some(rx) = &self.got {
            return Ok(rx.recv_timeout(PATIENCE).ok());
        }
        let r = self.r.as_mut().expect("a reader until drain");
        match r.read() {
            Ok((k, p)) => Msg::decode(k, p).map(Some).map_err(invalid),
            Err(dirsync::remote::protocol::frame::FrameError::Closed) => Ok(None),
            Err(e) => Err(invalid(e)),
        }
    }

    /// The server's half of the handshake, offering `features`: our
    /// hello, theirs, their setup.
    pub fn serve(&mut self, features: u64) -> io::Result<Setup> {
        let mut h = hello(FEATURES);
        h.features = features;
        self.send(&Msg::Hello(h))?;
        self.flush()?;
        match self.recv()? {
            // Keepalives, when both sides have them, are taken in by the
            // reader: no scenario sees one (and none is sent from here).
            Some(Msg::Hello(theirs)) if theirs.features & features & FEATURE_KEEPALIVE != 0 => {
                if let Some(r) = self.r.as_mut() {
                    r.accept_keepalives(Alive::new(None, false));
                }
            }
            Some(Msg::Hello(_)) => {}
            other => return Err(invalid(format!("expected a hello, got {other:?}"))),
        }
        match self.recv()? {
            Some(Msg::Setup(s)) => Ok(s),
            other => Err(invalid(format!("expected a setup, got {other:?}"))),
        }
    }

    /// From now on a thread reads everything the other side sends (so
    /// that it never blocks on a full pipe); [`Peer::recv`] takes the
    /// messages it decoded, in order, until the other side closes.
    pub fn drain(&mut self) {
        let Some(mut r) = self.r.take() else { return };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            while let Ok((k, p)) = r.read() {
                match Msg::decode(k, p) {
                    Ok(m) => {
                        let _ = tx.send(m);
                    }
                    Err(_) => break,
                }
            }
        });
        self.got = Some(rx);
    }

    /// The reply to request `req`, skipping everything else (`None`: the
    /// other side closed, or [`PATIENCE`] ran out).
    pub fn reply_to(&mut self, req: u32) -> io::Result<Option<Msg>> {
        loop {
            match self.recv()? {
                Some(m @ Msg::Reply { req: r, .. }) if r == req => return Ok(Some(m)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    /// Waits until the other side closes its end (or [`PATIENCE`]).
    pub fn until_closed(&mut self) -> io::Result<()> {
        self.drain();
        while self.recv()?.is_some() {}
        Ok(())
    }
}

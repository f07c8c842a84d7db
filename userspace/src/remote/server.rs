//! `dirsync --server`: the remote side, on stdin/stdout. It sends its
//! hello first, checks the client's, takes the setup, then is the agent of
//! DST (push) or runs the engine on its SRC with the client as the agent
//! of DST (pull). A confined server ([`serve_in`], `--root DIR
//! [--read-only | --write-only]`, module [`super::confine`]) checks the
//! role and resolves the setup path beneath DIR before either.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, OnceLock, Weak};

use super::agent::{self, Agent, Policy, Violation};
use super::confine::Confine;
use super::link::Link;
use super::protocol::alive::{Alive, Timed, DEFAULT_TIMEOUT};
use super::protocol::frame::{FrameError, FrameReader, FrameWriter};
use super::protocol::messages::{
    Answer, Msg, Role, Setup, FEATURES, FEATURE_KEEPALIVE, OPT_DST_CREATED, PROTOCOL,
};
use super::protocol::watch::{FEATURE_WATCH, OPT_WATCH};
use super::protocol::{events, layers};
use super::replica::RemoteReplica;
use super::{hello, options_of, RemoteError};
use crate::error::chain;
use crate::report::{Event, Reporter};
use crate::sync::local::LocalReplica;
use crate::sync::{Replica, Syncer};

/// The client, in messages.
const CLIENT: &str = "client";

fn proto_err(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::Protocol {
        host: CLIENT.into(),
        message: e.to_string(),
    }
}

/// Reads one message.
pub fn read_msg(r: &mut FrameReader) -> Result<Msg, FrameErrorOr> {
    let (k, p) = r.read().map_err(FrameErrorOr::Frame)?;
    Msg::decode(k, p).map_err(|e| FrameErrorOr::Proto(e.to_string()))
}

/// A frame or decoding error.
#[derive(Debug, thiserror::Error)]
pub enum FrameErrorOr {
    /// Reading the frame failed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The message is malformed.
    #[error("protocol error: {0}")]
    Proto(String),
}

/// The server's own timeout (see `protocol::alive`): `DIRSYNC_TIMEOUT`
/// seconds (0: none), else [`DEFAULT_TIMEOUT`]; the client's, once its
/// first keepalive says it, replaces it.
fn own_timeout() -> Option<std::time::Duration> {
    match std::env::var("DIRSYNC_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(0) => None,
        Some(s) => Some(std::time::Duration::from_secs(s)),
        None => Some(DEFAULT_TIMEOUT),
    }
}

/// Runs the server on `r`/`w` (stdin/stdout, ours alone: `w` is made
/// non-blocking for the timeout of writes), serving any path the client
/// names (`dirsync --server`).
pub fn serve(r: std::fs::File, w: std::fs::File) -> Result<(), RemoteError> {
    serve_in(r, w, &Confine::unconfined(Default::default()))
}

/// Runs the server on `r`/`w` as [`serve`] does, as `confine` allows: a
/// role it does not allow and a path outside its tree are refused (a
/// `Refuse` to the client, and the error) before anything is read or
/// written.
pub fn serve_in(r: std::fs::File, w: std::fs::File, confine: &Confine) -> Result<(), RemoteError> {
    let alive = Alive::new(own_timeout(), true);
    let w = Timed::writer(w, alive.clone()).map_err(proto_err)?;
    let (mut r, mut w) = (
        FrameReader::new(Box::new(Timed::new(r, alive.clone()))),
        FrameWriter::new(Box::new(w)),
    );
    let flushed = |w: &mut FrameWriter, m: &Msg| agent::send(w, m).and_then(|()| w.flush());
    flushed(&mut w, &Msg::Hello(hello(FEATURES))).map_err(proto_err)?;
    let features = match read_msg(&mut r).map_err(proto_err)? {
        Msg::Hello(h) if h.protocol == PROTOCOL => h.features & FEATURES,
        Msg::Hello(h) => {
            return Err(RemoteError::Version {
                host: CLIENT.into(),
                local: PROTOCOL,
                local_version: env!("CARGO_PKG_VERSION").into(),
                remote: h.protocol,
                remote_version: crate::report::human(&h.version),
            })
        }
        _ => return Err(proto_err("the client did not start with a hello")),
    };
    // The client's stream is layered from its setup on, ours from the
    // ready (module `layers`).
    let mut r = layers::reader(r, features);
    if features & FEATURE_KEEPALIVE != 0 {
        r.accept_keepalives(alive.clone());
    }
    let setup = match read_msg(&mut r).map_err(proto_err)? {
        Msg::Setup(s) => s,
        _ => return Err(proto_err("expected the setup")),
    };
    let mut w = layers::writer(w, features, setup.bwlimit).map_err(proto_err)?;
    if features & FEATURE_KEEPALIVE != 0 {
        w.keepalive(alive).map_err(proto_err)?;
    }
    if let Err(e) = confine.check_role(setup.role) {
        return Err(refuse(&mut w, &e));
    }
    match setup.role {
        Role::Agent => serve_agent(r, w, &setup, confine),
        Role::Engine => serve_engine(r, w, setup, features, confine),
        Role::TwoWay => super::twoway_agent::serve(r, w, &setup, confine),
    }
}

/// Sends a `Refuse` for `e` (escaped: a path in it is the client's bytes,
/// shown on its terminal) and returns it as the error.
fn refuse(w: &mut FrameWriter, e: &dyn std::error::Error) -> RemoteError {
    let mut message = String::new();
    let _ = crate::report::write_human(&mut message, chain(e).as_bytes());
    let _ = agent::send(w, &Msg::Refuse(message.as_bytes().to_vec())).and_then(|()| w.flush());
    RemoteError::Remote {
        host: CLIENT.into(),
        message,
    }
}

/// Opens the DST of a push: the setup path, beneath the tree when
/// confined.
fn open_dst(
    setup: &Setup,
    confine: &Confine,
) -> Result<(Option<LocalReplica>, bool), Box<dyn std::error::Error>> {
    let o = options_of(setup);
    let Some((parent, name)) = confine.open_parent(&setup.path)? else {
        let path = Path::new(OsStr::from_bytes(&setup.path));
        return Ok(super::root::open(path, o.dry_run, o.stat_backend)?);
    };
    let backend = crate::stat::select(o.stat_backend, &crate::stat::sysfs_dir())?;
    let (p, name) = (&setup.path, name.as_deref());
    Ok(super::root::open_in(
        parent,
        name,
        p,
        o.dry_run,
        Arc::from(backend),
    )?)
}

fn serve_agent(
    mut r: FrameReader,
    mut w: FrameWriter,
    setup: &Setup,
    confine: &Confine,
) -> Result<(), RemoteError> {
    let o = options_of(setup);
    // The rules this side keeps, from the setup's options.
    let policy = match Policy::of(&o) {
        Ok(p) => p,
        Err(e) => return Err(refuse(&mut w, &e)),
    };
    let (root, created) = match open_dst(setup, confine) {
        Ok(x) => x,
        Err(e) => return Err(refuse(&mut w, &*e)),
    };
    let ready = Msg::Ready {
        created,
        exists: root.is_some(),
    };
    agent::send(&mut w, &ready)
        .and_then(|()| w.flush())
        .map_err(proto_err)?;
    let Some(root) = root else {
        // A dry run with no DST: the engine asks nothing; wait for the end.
        return wait_bye(&mut r, &mut w);
    };
    let mut agent = Agent::new(root, policy);
    run_agent(Some(&mut agent), &mut r, &mut w, |m| {
        Err(Violation(format!("unexpected message {m:?}")))
    })
    .map_err(proto_err)
    .map(|_: Option<()>| ())
}

fn wait_bye(r: &mut FrameReader, w: &mut FrameWriter) -> Result<(), RemoteError> {
    loop {
        match read_msg(r) {
            Ok(Msg::Bye) | Err(FrameErrorOr::Frame(FrameError::Closed)) => return Ok(()),
            // The run's final barrier: nothing was asked, all is done.
            Ok(Msg::Barrier { req }) => {
                let m = Msg::Reply {
                    req,
                    result: Ok(Answer::Unit),
                };
                agent::send(w, &m)
                    .and_then(|()| w.flush())
                    .map_err(proto_err)?;
            }
            Ok(_) => return Err(proto_err("unexpected message")),
            Err(e) => return Err(proto_err(e)),
        }
    }
}

/// Sends the engine's events to the client.
struct Forward {
    link: OnceLock<Weak<Link>>,
    /// A watch: each event goes out at once, and paths under the first
    /// prefix (`/proc/self/fd/N` of a confined SRC) are shown under the
    /// second (SRC as the client named it).
    watch: Option<(Vec<u8>, Vec<u8>)>,
}

impl Reporter for Forward {
    fn event(&self, e: &Event<'_>) {
        if let Some(l) = self.link.get().and_then(Weak::upgrade) {
            let mut w = events::to_wire(e);
            if let Some((from, to)) = &self.watch {
                super::watch_src::rename_prefix(&mut w, from, to);
            }
            let _ = l.send(&Msg::Event(w), self.watch.is_some());
        }
    }
}

fn serve_engine(
    r: FrameReader,
    mut w: FrameWriter,
    setup: Setup,
    features: u64,
    confine: &Confine,
) -> Result<(), RemoteError> {
    let src = Path::new(OsStr::from_bytes(&setup.path));
    let watch = setup.flags & OPT_WATCH != 0;
    if watch && features & FEATURE_WATCH == 0 {
        let e = proto_err("a watch without the feature");
        return Err(refuse(&mut w, &e));
    }
    // Confined: SRC beneath the tree, open now; shown as the client named it.
    let src_fd = match confine.open_dir(&setup.path) {
        Ok(fd) => fd,
        Err(e) => return Err(refuse(&mut w, &e)),
    };
    // A watch of a confined SRC goes through a descriptor of its own.
    let watch_fd = match (watch, &src_fd) {
        (true, Some(fd)) => match fd.try_clone() {
            Ok(d) => Some(d),
            Err(e) => return Err(refuse(&mut w, &e)),
        },
        _ => None,
    };
    let watch_path = watch_fd.as_ref().map(super::watch_src::fd_path);
    let label = Path::new(OsStr::from_bytes(&setup.label));
    let fwd = Arc::new(Forward {
        link: OnceLock::new(),
        watch: watch.then(|| {
            let from = watch_path
                .as_ref()
                .map(|p| p.as_os_str().as_bytes().to_vec());
            (from.unwrap_or_default(), setup.path.clone())
        }),
    });
    let link = Link::start(r, w, fwd.clone(), label, CLIENT);
    link.set_features(features);
    let _ = fwd.link.set(Arc::downgrade(&link));
    let mut o = options_of(&setup);
    o.defer_changing |= watch;
    let replica = setup.dst_exists.then(|| {
        let r = match watch {
            true => RemoteReplica::new(link.clone()),
            false => RemoteReplica::one_shot(link.clone()),
        };
        Box::new(r.with_options(&o)) as Box<dyn Replica>
    });
    let created = setup.flags & OPT_DST_CREATED != 0;
    let syncer = match src_fd {
        Some(fd) => Syncer::with_open_src(src, fd, label, replica, created, o.clone(), fwd.clone()),
        None => Syncer::with_replica(src, label, replica, created, o.clone(), fwd.clone()),
    };
    let syncer = match syncer {
        Ok(s) => s,
        Err(e) => {
            let m = chain(&e);
            let _ = link.send(&Msg::Refuse(m.as_bytes().to_vec()), true);
            return Err(RemoteError::Sync(e));
        }
    };
    link.send(
        &Msg::Ready {
            created,
            exists: true,
        },
        true,
    )
    .map_err(proto_err)?;
    let result = if watch {
        let at = watch_path.as_deref().unwrap_or(src);
        super::watch_src::run(at, syncer, &link, fwd, &o)
    } else {
        syncer.sync_all().map_err(|e| chain(&e)).and_then(|mut s| {
            link.finish(&mut s, false).map_err(|(p, e)| match p {
                Some(p) => format!("{}: {e}", p.display()),
                None => e.to_string(),
            })?;
            Ok(s)
        })
    };
    drop(watch_fd);
    let done = match result {
        Ok(s) => Msg::Done {
            counters: s
                .fields()
                .into_iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v))
                .collect(),
            fatal: None,
        },
        Err(m) => Msg::Done {
            counters: Vec::new(),
            fatal: Some(m.into_bytes()),
        },
    };
    link.send(&done, true).map_err(proto_err)?;
    // The client answers with a goodbye (or closes): then the link is down.
    for _ in 0..6000 {
        if link.down().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

/// Serves `agent` from `r` until the engine says goodbye; messages that
/// are not for the agent (a pull's events and end) go to `other`, which
/// ends the loop by returning `Some`.
pub fn run_agent<T>(
    mut agent: Option<&mut Agent>,
    r: &mut FrameReader,
    w: &mut FrameWriter,
    mut other: impl FnMut(Msg) -> Result<Option<T>, Violation>,
) -> Result<Option<T>, Violation> {
    loop {
        if !r.has_frame() {
            w.flush()
                .map_err(|e| Violation(format!("cannot send: {e}")))?;
        }
        let m = match r.read() {
            Ok((k, p)) => Msg::decode(k, p).map_err(|e| Violation(e.to_string()))?,
            // The engine went away between two messages: the end.
            Err(FrameError::Closed) => return Ok(None),
            Err(e) => return Err(Violation(e.to_string())),
        };
        match m {
            m @ (Msg::Event(_) | Msg::Done { .. } | Msg::Refuse(_) | Msg::Ready { .. }) => {
                if let Some(t) = other(m)? {
                    let _ = w.flush();
                    return Ok(Some(t));
                }
            }
            Msg::Bye if agent.is_none() => return Ok(None),
            // A dry run with no DST: the engine's final barrier.
            Msg::Barrier { req } if agent.is_none() => {
                let m = Msg::Reply {
                    req,
                    result: Ok(Answer::Unit),
                };
                agent::send(w, &m).map_err(|e| Violation(format!("cannot send: {e}")))?;
            }
            m => {
                let a = agent
                    .as_deref_mut()
                    .ok_or_else(|| Violation("a request, but there is no DST".into()))?;
                if !a.handle_msg(m, w)? {
                    let _ = w.flush();
                    return Ok(None);
                }
            }
        }
    }
}

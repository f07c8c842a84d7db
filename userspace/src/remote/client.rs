//! The client: connects ([`open`]), then pushes ([`push`]: the engine runs
//! here, the server is the agent of DST) or pulls ([`pull`]: the server
//! runs the engine on its SRC, this side is the agent of DST).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use super::agent::{self, Agent, Policy, Violation};
use super::link::Link;
use super::protocol::alive::{Alive, Timed};
use super::protocol::frame::{FrameError, FrameReader, FrameWriter};
use super::protocol::messages::{
    Msg, Role, Setup, FEATURES, FEATURE_FIDELITY, FEATURE_KEEPALIVE, FEATURE_ZSTD, OPT_DST_CREATED,
    OPT_FIDELITY, PROTOCOL,
};
use super::protocol::watch::{FEATURE_WATCH, OPT_WATCH};
use super::protocol::{events, layers};
use super::replica::RemoteReplica;
use super::server::{read_msg, FrameErrorOr};
use super::spec::Spec;
use super::transport::{shell_quote, Transport};
use super::{deploy, hello, setup, RemoteError};
use crate::report::{human, Event, Reporter, Summary};
use crate::sync::src_prefetch::SrcPrefetch;
use crate::sync::{Options, Replica, Syncer};

/// How to reach the remote side.
#[derive(Clone, Debug)]
pub struct Connect {
    /// The transport command (`-e/--rsh`), e.g. `ssh -p 2222`.
    pub rsh: String,
    /// The remote `dirsync` (`--remote-path`); `dirsync` on its `PATH`
    /// when `None`.
    pub remote_path: Option<OsString>,
    /// Upload and run this binary (`--deploy`).
    pub deploy: bool,
    /// Compress the stream (`-z`), if the server can.
    pub compress: bool,
    /// `--bwlimit`: bytes per second each side writes (`None`: no limit).
    pub bwlimit: Option<u64>,
    /// `--timeout`: no data from the server for that long ends the run
    /// (`None`: never; see `protocol::alive`).
    pub timeout: Option<Duration>,
}

impl Connect {
    /// The features this client offers.
    pub fn features(&self) -> u64 {
        let mut f = FEATURES;
        if !self.compress {
            f &= !FEATURE_ZSTD;
        }
        f
    }
}

/// A connected, set up session.
pub struct Session {
    /// The transport command.
    pub transport: Transport,
    /// Frames from the server.
    pub r: FrameReader,
    /// Frames to the server.
    pub w: FrameWriter,
    /// The server created its root now.
    pub created: bool,
    /// The server's root exists.
    pub exists: bool,
    /// The features both sides use.
    pub features: u64,
    /// The timeouts of this side (`--timeout`, see `protocol::alive`).
    pub alive: Arc<Alive>,
}

fn protocol(host: &str, e: impl std::fmt::Display) -> RemoteError {
    RemoteError::Protocol {
        host: host.to_string(),
        message: e.to_string(),
    }
}

/// Why the transport ended before talking.
fn ended(t: &mut Transport, host: &str, command: &str) -> RemoteError {
    let status = t.finish(Duration::from_secs(10));
    match status.and_then(|s| s.code()) {
        Some(127) => RemoteError::NotFound {
            host: host.to_string(),
            command: command.to_string(),
        },
        _ => RemoteError::NoHandshake {
            host: host.to_string(),
            status: status.map_or("killed".into(), |s| s.to_string()),
        },
    }
}

/// Connects to `spec.host`, checks the hellos and sends `setup`.
pub fn open(spec: &Spec, c: &Connect, setup: &Setup) -> Result<Session, RemoteError> {
    let host = spec.host.as_str();
    let bin = if c.deploy {
        Some(deploy::this_binary().map_err(|e| protocol(host, format!("--deploy: {e}")))?)
    } else {
        None
    };
    let remote = c.remote_path.clone().unwrap_or_else(|| "dirsync".into());
    let cmd = match &bin {
        Some(b) => deploy::remote_command(b),
        None => [shell_quote(remote.as_bytes()), b" --server".to_vec()].concat(),
    };
    let shown = String::from_utf8_lossy(remote.as_bytes()).into_owned();
    let (mut t, out, inp) =
        Transport::spawn(&c.rsh, host, &cmd).map_err(|e| RemoteError::Spawn {
            rsh: c.rsh.clone(),
            source: e,
        })?;
    // Every read and write from here on has the timeout (the handshake
    // and the upload of --deploy too).
    let alive = Alive::new(c.timeout, false);
    let mut out = Timed::new(out, alive.clone());
    let mut inp = Timed::writer(inp, alive.clone()).map_err(|e| RemoteError::Spawn {
        rsh: c.rsh.clone(),
        source: e,
    })?;
    if let Some(b) = &bin {
        if let Err(e) = deploy::upload_if_asked(b, &mut out, &mut inp) {
            return Err(match ended(&mut t, host, &shown) {
                RemoteError::NoHandshake { .. } => protocol(host, format!("--deploy: {e}")),
                other => other,
            });
        }
    }
    let (mut r, mut w) = (
        FrameReader::new(Box::new(out)),
        FrameWriter::new(Box::new(inp)),
    );
    let early = |t: &mut Transport, e: FrameErrorOr| match e {
        FrameErrorOr::Frame(FrameError::Closed | FrameError::Truncated) => ended(t, host, &shown),
        e => protocol(host, e),
    };
    let theirs = match read_msg(&mut r) {
        Ok(Msg::Hello(h)) => h,
        Ok(_) => return Err(protocol(host, "the server did not start with a hello")),
        Err(e) => return Err(early(&mut t, e)),
    };
    if theirs.protocol != PROTOCOL {
        return Err(RemoteError::Version {
            host: host.to_string(),
            local: PROTOCOL,
            local_version: env!("CARGO_PKG_VERSION").into(),
            remote: theirs.protocol,
            remote_version: human(&theirs.version),
        });
    }
    let ours = hello(c.features());
    let features = ours.features & theirs.features;
    if setup.flags & OPT_FIDELITY != 0 && features & FEATURE_FIDELITY == 0 {
        return Err(RemoteError::Remote {
            host: host.to_string(),
            message: format!(
                "the remote dirsync {} cannot keep owners, groups, ACLs, extended \
                 attributes, hard links or holes (-a -H -A -X -o -g -S); install the same \
                 version there or use --deploy",
                human(&theirs.version)
            ),
        });
    }
    if setup.flags & OPT_WATCH != 0 && features & FEATURE_WATCH == 0 {
        return Err(RemoteError::NoWatch {
            host: host.to_string(),
            version: human(&theirs.version),
        });
    }
    if setup.role == Role::TwoWay && features & super::protocol::messages::FEATURE_TWOWAY == 0 {
        return Err(RemoteError::Remote {
            host: host.to_string(),
            message: format!(
                "the remote dirsync {} cannot serve a two-way run (--two-way with host:PATH); \
                 install the same version there or use --deploy",
                human(&theirs.version)
            ),
        });
    }
    let mut setup = setup.clone();
    setup.bwlimit = c.bwlimit.unwrap_or(0);
    let send = |w: &mut FrameWriter, m: &Msg| agent::send(w, m);
    send(&mut w, &Msg::Hello(ours))
        .and_then(|()| w.flush())
        .map_err(|e| protocol(host, e))?;
    // From here on, the layers both sides agreed on (module `layers`).
    let mut w = layers::writer(w, features, setup.bwlimit).map_err(|e| protocol(host, e))?;
    let mut r = layers::reader(r, features);
    if features & FEATURE_KEEPALIVE != 0 {
        r.accept_keepalives(alive.clone());
    }
    send(&mut w, &Msg::Setup(setup))
        .and_then(|()| w.flush())
        .map_err(|e| protocol(host, e))?;
    if features & FEATURE_KEEPALIVE != 0 {
        w.keepalive(alive.clone()).map_err(|e| protocol(host, e))?;
    }
    match read_msg(&mut r) {
        Ok(Msg::Ready { created, exists }) => Ok(Session {
            transport: t,
            r,
            w,
            created,
            exists,
            features,
            alive,
        }),
        Ok(Msg::Refuse(m)) => Err(RemoteError::Remote {
            host: host.to_string(),
            message: human(&m),
        }),
        Ok(_) => Err(protocol(host, "expected ready or refuse")),
        Err(e) => Err(early(&mut t, e)),
    }
}

/// Drops error events once the link is down (one message says it).
pub struct LinkAware {
    /// Where events go.
    pub inner: Arc<dyn Reporter>,
    /// The link (set once started).
    pub link: OnceLock<Weak<Link>>,
}

impl Reporter for LinkAware {
    fn event(&self, e: &Event<'_>) {
        let down = self
            .link
            .get()
            .and_then(Weak::upgrade)
            .is_some_and(|l| l.down().is_some());
        if !(down && matches!(e, Event::Error { .. })) {
            self.inner.event(e);
        }
    }
}

/// Push: makes `spec` (remote DST) a replica of the local `src`.
pub fn push(
    src: &Path,
    spec: &Spec,
    c: &Connect,
    options: Options,
    reporter: Arc<dyn Reporter>,
) -> Result<Summary, RemoteError> {
    let host = spec.host.as_str();
    // The session connects (ssh: a few hundred ms) while SRC is listed
    // here; the walk then takes those listings instead of making them.
    let st = setup(Role::Agent, &spec.path, &options);
    let (s, ahead) = std::thread::scope(|scope| {
        let session = scope.spawn(|| open(spec, c, &st));
        let ahead = SrcPrefetch::scan(src, &options, &|| session.is_finished());
        let s = session
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (s, ahead)
    });
    let s = s?;
    let Session {
        mut transport,
        r,
        w,
        created,
        exists,
        features,
        ..
    } = s;
    let label = spec.label();
    if created {
        reporter.event(&Event::CreatedDir { path: &label });
    }
    let rep = Arc::new(LinkAware {
        inner: reporter,
        link: OnceLock::new(),
    });
    let link = Link::start(r, w, rep.clone(), &label, host);
    link.set_features(features);
    let _ = rep.link.set(Arc::downgrade(&link));
    let replica = exists.then(|| {
        Box::new(RemoteReplica::one_shot(link.clone()).with_options(&options)) as Box<dyn Replica>
    });
    let syncer =
        Syncer::with_replica(src, &label, replica, created, options, rep)?.with_src_prefetch(ahead);
    let result = syncer.sync_all();
    if let Some(why) = link.down() {
        return Err(protocol(host, super::link::lost(host, &why)));
    }
    let mut summary = result?;
    link.finish(&mut summary, true).map_err(|(p, e)| match p {
        Some(p) => RemoteError::Sync(crate::Error::at("cannot write", p, e)),
        None => protocol(host, e),
    })?;
    drop(syncer);
    transport.finish(Duration::from_secs(10));
    Ok(summary)
}

/// The server's paths (below SRC as the server named it) shown as the
/// client named SRC (`host:PATH`).
pub(crate) struct PathMap {
    prefix: Vec<u8>,
    label: std::path::PathBuf,
}

impl PathMap {
    /// `p` with the server's SRC replaced by the client's name for it.
    pub(crate) fn map(&self, p: &[u8]) -> Vec<u8> {
        match p.strip_prefix(&self.prefix[..]) {
            Some(rest) if rest.is_empty() || rest[0] == b'/' => {
                [self.label.as_os_str().as_bytes(), rest].concat()
            }
            _ => p.to_vec(),
        }
    }
}

/// The start of a pull (one-shot, or a watch with `flags` =
/// `OPT_WATCH`): DST checked, the session open with the server's engine,
/// DST opened (created once the server took SRC) under the local user's
/// rules, whatever the server's engine asks.
pub(crate) fn start_pull(
    spec: &Spec,
    dst: &Path,
    c: &Connect,
    options: &Options,
    reporter: &dyn Reporter,
    flags: u32,
) -> Result<(Session, Option<Agent>, PathMap), RemoteError> {
    let exists = super::root::check(dst)?;
    let mut st = setup(Role::Engine, &spec.path, options);
    st.label = dst.as_os_str().as_bytes().to_vec();
    st.dst_exists = exists || !options.dry_run;
    st.flags |= flags;
    if !exists && !options.dry_run {
        st.flags |= OPT_DST_CREATED;
    }
    let policy = Policy::of(options).map_err(|e| RemoteError::Sync(e.into()))?;
    let s = open(spec, c, &st)?;
    let backend = super::with_ids_backend(options.clone()).stat_backend;
    let (root, _) = super::root::open(dst, options.dry_run, backend)?;
    if !exists {
        reporter.event(&Event::CreatedDir { path: dst });
    }
    let agent = root.map(|r| Agent::new(r, policy));
    let paths = PathMap {
        prefix: spec.path.as_os_str().as_bytes().to_vec(),
        label: spec.label(),
    };
    Ok((s, agent, paths))
}

/// Pull: makes the local `dst` a replica of `spec` (remote SRC).
pub fn pull(
    spec: &Spec,
    dst: &Path,
    c: &Connect,
    options: Options,
    reporter: Arc<dyn Reporter>,
) -> Result<Summary, RemoteError> {
    let host = spec.host.as_str();
    let (mut s, mut agent, paths) = start_pull(spec, dst, c, &options, &*reporter, 0)?;
    let map = |p: &[u8]| paths.map(p);
    let out = super::server::run_agent(agent.as_mut(), &mut s.r, &mut s.w, |m| match m {
        Msg::Event(w) => {
            events::with_event(&w, map, |e| reporter.event(e))
                .ok_or_else(|| Violation("unknown event".into()))?;
            Ok(None)
        }
        Msg::Done { counters, fatal } => Ok(Some((counters, fatal))),
        other => Err(Violation(format!("unexpected message {:?}", other))),
    })
    .and_then(|out| {
        // A removal held under --no-delete and never carried out.
        agent.as_ref().map_or(Ok(()), Agent::finish)?;
        Ok(out)
    })
    .map_err(|e| protocol(host, e))?;
    let _ = agent::send(&mut s.w, &Msg::Bye).and_then(|()| s.w.flush());
    s.transport.finish(Duration::from_secs(10));
    let Some((counters, fatal)) = out else {
        return Err(protocol(host, "the server ended without a summary"));
    };
    if let Some(f) = fatal {
        return Err(RemoteError::Remote {
            host: host.to_string(),
            message: human(&f),
        });
    }
    let mut summary = Summary::default();
    for (n, v) in counters {
        summary.set(&String::from_utf8_lossy(&n), v);
    }
    Ok(summary)
}

//! Fuzz of the agent's message handler: a real `Agent` on a temporary DST
//! gets a seeded random stream of VALID messages (each one passed through
//! encode and the strict decoder first, and only if the decoder takes
//! it): opens and closes of random handles, listings, stats, directories
//! created and removed, symlinks into a sibling tree created and then
//! opened as directories, FIFOs and device nodes, renames, attribute
//! changes, and interleaved file streams (writes and `--checksum`
//! compares) of random sizes, committed or aborted. A step the agent
//! calls a protocol violation ends that seed's stream (as it ends a
//! connection). After each seed: the sibling tree (a canary, and the
//! target of every symlink) is exactly as before (content, modes, times,
//! ctime: nothing was even chmodded), nothing else appeared next to DST,
//! no file in DST is larger than the largest size declared or there at
//! the start, and the agent never panicked (the test would). Prints what
//! ran; `AGENT_FUZZ_SEEDS` runs more seeds.

mod common;
use common::*;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use dirsync::remote::agent::{Agent, Policy};
use dirsync::remote::protocol::frame::FrameWriter;
use dirsync::remote::protocol::messages::Msg;
use dirsync::stat::Statx;
use dirsync::sync::local::LocalReplica;
use dirsync::sync::{Attrs, Options, Over};

/// The names every message picks from: plain ones, the names of the
/// symlinks out of DST, bytes that are not UTF-8, a newline, and the
/// agent's own partial-file prefix.
const NAMES: &[&[u8]] = &[
    b"a",
    b"b",
    b"c",
    b"d",
    b"out",
    b"outf",
    b"abs",
    b"\n",
    b"\xff\xfe x",
    b".dirsync-partial.a",
];

/// Steps per seed and the seeds run by default.
const STEPS: usize = 400;
const SEEDS: u64 = 48;
/// The largest file a stream declares (bytes).
const MAX_SIZE: u64 = 256 << 10;

fn name(r: &mut Rng) -> CString {
    CString::new(NAMES[r.index(NAMES.len())]).unwrap()
}

fn attrs(r: &mut Rng) -> Attrs {
    Attrs {
        perm: r.chance(70).then(|| r.below(0o10000) as u32),
        mtime: r
            .chance(70)
            .then(|| (r.below(2_000_000_000) as i64, r.below(1_000_000_000) as u32)),
    }
}

fn over(r: &mut Rng) -> Over {
    if r.chance(50) {
        Over::Entry
    } else {
        Over::Tree
    }
}

/// A file stream in progress.
struct Stream {
    fid: u32,
    left: u64,
    compare: bool,
}

/// What the fuzzer knows of the agent's state, to make valid messages.
struct Model {
    handles: Vec<u32>,
    next_handle: u32,
    streams: Vec<Stream>,
    next_fid: u32,
    next_req: u32,
    largest: u64,
}

impl Model {
    fn handle(&self, r: &mut Rng) -> u32 {
        self.handles[r.index(self.handles.len())]
    }
    fn req(&mut self) -> u32 {
        self.next_req += 1;
        self.next_req
    }
}

/// The next message of the stream.
fn step(r: &mut Rng, m: &mut Model, canary: &Path) -> Msg {
    if !m.streams.is_empty() && r.chance(45) {
        let i = r.index(m.streams.len());
        let s = &mut m.streams[i];
        if s.left > 0 && !r.chance(3) {
            let n = (r.below(64 << 10) + 1).min(s.left);
            s.left -= n;
            return Msg::Data {
                fid: s.fid,
                bytes: r.bytes(n as usize),
            };
        }
        let s = m.streams.swap_remove(i);
        // A stream cut short is aborted (a commit of fewer bytes than
        // declared is a violation, and rarely sent as one).
        if r.chance(10) || (s.left > 0 && !r.chance(5)) {
            return Msg::Abort { fid: s.fid };
        }
        if s.compare {
            let req = m.req();
            return Msg::CompareEnd { req, fid: s.fid };
        }
        return Msg::Commit {
            fid: s.fid,
            attrs: attrs(r),
            fsync: false,
            over: over(r),
        };
    }
    let id = m.handle(r);
    match r.below(13) {
        0 | 1 => {
            m.next_handle += 1;
            let new = m.next_handle;
            m.handles.push(new);
            Msg::Open {
                id: new,
                parent: id,
                name: Some(name(r)),
            }
        }
        2 if m.handles.len() > 1 => {
            let i = 1 + r.index(m.handles.len() - 1);
            Msg::Close {
                id: m.handles.swap_remove(i),
            }
        }
        3 => {
            let req = m.req();
            Msg::List { req, id }
        }
        4 => {
            let req = m.req();
            Msg::Stat {
                req,
                id,
                name: r.chance(80).then(|| name(r)),
            }
        }
        5 => Msg::CreateDir { id, name: name(r) },
        6 => Msg::Remove { id, name: name(r) },
        7 => Msg::SetAttrs {
            id,
            name: r.chance(80).then(|| name(r)),
            attrs: attrs(r),
        },
        8 => {
            let targets: [Vec<u8>; 4] = [
                b"../canary".to_vec(),
                b"../../canary/f".to_vec(),
                canary.as_os_str().as_bytes().to_vec(),
                b"a".to_vec(),
            ];
            Msg::Symlink {
                id,
                name: name(r),
                target: targets[r.index(4)].clone(),
                attrs: attrs(r),
                over: over(r),
            }
        }
        9 => {
            let (fmt, rdev) = if r.chance(50) && is_root() {
                (libc::S_IFCHR, (1, 3))
            } else {
                (libc::S_IFIFO, (0, 0))
            };
            Msg::Special {
                id,
                name: name(r),
                fmt,
                rdev,
                attrs: attrs(r),
                over: over(r),
            }
        }
        10 => {
            let path = |r: &mut Rng| (0..1 + r.index(2)).map(|_| name(r)).collect();
            let req = m.req();
            Msg::Rename {
                req,
                from: path(r),
                to: path(r),
            }
        }
        _ if m.streams.len() < 6 => {
            m.next_fid += 1;
            let size = if r.chance(30) {
                r.below(16)
            } else {
                r.below(MAX_SIZE + 1)
            };
            m.largest = m.largest.max(size);
            let compare = r.chance(30);
            m.streams.push(Stream {
                fid: m.next_fid,
                left: size,
                compare,
            });
            Msg::FileBegin {
                fid: m.next_fid,
                id,
                name: name(r),
                size,
                compare,
                fresh: r.chance(30),
                plan: 0,
            }
        }
        _ => Msg::Barrier { req: m.req() },
    }
}

/// The largest regular file below `root` (symlinks not followed).
fn largest_file(root: &Path) -> u64 {
    snapshot(root)
        .values()
        .filter(|e| e.kind == libc::S_IFREG)
        .map(|e| e.size)
        .max()
        .unwrap_or(0)
}

/// One seed: returns (messages taken, whether a violation ended it).
fn run_seed(seed: u64) -> (usize, bool) {
    let t = tempdir();
    let canary = t.path().join("canary");
    let dst = t.path().join("dst");
    build_sample_tree(&canary);
    std::fs::write(canary.join("f"), b"canary").unwrap();
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("a"), vec![1u8; 1000]).unwrap();
    std::fs::create_dir(dst.join("b")).unwrap();
    std::os::unix::fs::symlink("../canary", dst.join("out")).unwrap();
    std::os::unix::fs::symlink("../canary/f", dst.join("outf")).unwrap();
    std::os::unix::fs::symlink(&canary, dst.join("b/abs")).unwrap();
    let before = snapshot(&canary);
    let around: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let start_largest = largest_file(&dst);

    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let root = dirsync::sys::open_root(&dst).unwrap();
    // The receiving user allows special files: their creation is part of
    // what is fuzzed (without --specials each one is a violation).
    let policy = Policy::of(&Options {
        specials: true,
        ..Options::default()
    })
    .unwrap();
    let mut agent = Agent::new(LocalReplica::new(root, Arc::new(Statx), false), policy);
    let mut w = FrameWriter::new(Box::new(std::io::sink()));
    let mut m = Model {
        handles: vec![1],
        next_handle: 1,
        streams: Vec::new(),
        next_fid: 0,
        next_req: 0,
        largest: 0,
    };
    let open_root = Msg::Open {
        id: 1,
        parent: 0,
        name: None,
    };
    assert!(agent.handle_msg(open_root, &mut w).unwrap());
    let (mut taken, mut violated) = (1, false);
    for _ in 0..STEPS {
        let msg = step(&mut r, &mut m, &canary);
        // Only what the strict decoder accepts reaches an agent.
        let (k, p) = msg.encode();
        let Ok(msg) = Msg::decode(k, &p) else {
            continue;
        };
        match agent.handle_msg(msg, &mut w) {
            Ok(true) => taken += 1,
            Ok(false) => unreachable!("no goodbye is sent"),
            Err(e) => {
                eprintln!("seed {seed}: {e}");
                violated = true;
                break;
            }
        }
    }
    drop(agent);

    assert_eq!(
        snapshot(&canary),
        before,
        "seed {seed}: the tree outside DST changed"
    );
    let now: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(now, around, "seed {seed}: something appeared next to DST");
    let big = largest_file(&dst);
    assert!(
        big <= m.largest.max(start_largest),
        "seed {seed}: a file of {big} bytes, the largest declared {}",
        m.largest
    );
    (taken, violated)
}

#[test]
fn the_agent_stays_inside_dst_under_random_valid_messages() {
    let seeds = std::env::var("AGENT_FUZZ_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEEDS);
    let (mut total, mut violations) = (0, 0);
    for seed in 1..=seeds {
        let (n, v) = run_seed(seed);
        total += n;
        violations += v as u32;
    }
    eprintln!("agent fuzz: {seeds} seeds, {total} messages taken, {violations} seeds ended by a violation");
    // Most seeds must run their whole stream, or this tests little.
    assert!(
        total as u64 > seeds * STEPS as u64 / 2,
        "only {total} messages taken"
    );
}

//! The agent's second thread, the [`Installer`]: it writes the content of
//! the files of a stream and installs them (attributes, then the name),
//! while the agent's own thread reads and decodes the next messages and
//! opens the next files. On a first copy of many small files the agent is
//! what everything waits for, and installing is most of its work.
//!
//! Only whole-file streams go there (no compare, no delta plan: those
//! answer the sender, so the agent's thread keeps them). Order is kept:
//! the installer takes its jobs in the order the messages came, and the
//! agent waits until it has done them all ([`Installer::sync`]) before it
//! handles any message that is not about one of its files, so a
//! directory's attributes, a removal, a rename, a listing or the final
//! barrier see every file sent before them installed. What the installer
//! finds wrong comes back as the notes the agent would have sent, and the
//! agent sends them then.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::proto::{Msg, NoteOp};
use super::stream::Stream;
use crate::sync::{Attrs, Committed, Over};
use crate::sys;

/// What the agent's thread asks of the installer.
enum Job {
    /// A new file stream (a [`Stream::Write`]).
    Begin(u32, Stream),
    /// Content of a file.
    Data(u32, Vec<u8>),
    /// The file is complete: install it.
    Commit {
        fid: u32,
        attrs: Attrs,
        fsync: bool,
        over: Over,
    },
    /// The sender gave the file up.
    Abort(u32),
    /// Answer [`Done::Synced`] once every job before this one is done.
    Sync,
}

/// What the installer says back.
enum Done {
    /// A note for the sender (a commit that went wrong, or removed what
    /// was in the way).
    Note(Msg),
    /// Every job before the [`Job::Sync`] is done.
    Synced,
}

/// The second thread and what the agent knows of its work.
pub struct Installer {
    /// `None` once the thread was told to end.
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    /// The file streams it holds: messages about them go to it.
    files: HashSet<u32>,
    /// A job was sent since the last [`Installer::sync`].
    busy: bool,
    thread: Option<JoinHandle<()>>,
}

impl Installer {
    /// Starts the thread (named `dirsync-install`).
    pub fn start() -> io::Result<Self> {
        let (jobs, rx) = mpsc::channel();
        let (tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("dirsync-install".into())
            .spawn(move || run(&rx, &tx))?;
        Ok(Installer {
            jobs: Some(jobs),
            done,
            files: HashSet::new(),
            busy: false,
            thread: Some(thread),
        })
    }

    /// How many file streams it holds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether it holds the stream `fid`.
    pub fn holds(&self, fid: u32) -> bool {
        self.files.contains(&fid)
    }

    fn send(&mut self, job: Job) {
        self.busy = true;
        // The thread ends only when `jobs` is dropped, or by a panic,
        // which `sync` reports.
        if let Some(j) = &self.jobs {
            let _ = j.send(job);
        }
    }

    /// Takes the new stream `fid` (a [`Stream::Write`]).
    pub fn begin(&mut self, fid: u32, s: Stream) {
        self.files.insert(fid);
        self.send(Job::Begin(fid, s));
    }

    /// Content for `fid`, which it holds.
    pub fn data(&mut self, fid: u32, bytes: Vec<u8>) {
        self.send(Job::Data(fid, bytes));
    }

    /// Installs `fid`, which it holds.
    pub fn commit(&mut self, fid: u32, attrs: Attrs, fsync: bool, over: Over) {
        self.files.remove(&fid);
        self.send(Job::Commit {
            fid,
            attrs,
            fsync,
            over,
        });
    }

    /// Drops `fid`, which it holds.
    pub fn abort(&mut self, fid: u32) {
        self.files.remove(&fid);
        self.send(Job::Abort(fid));
    }

    /// Waits until every job sent so far is done; returns the notes they
    /// left, in order.
    pub fn sync(&mut self) -> io::Result<Vec<Msg>> {
        if !std::mem::take(&mut self.busy) {
            return Ok(Vec::new());
        }
        self.send(Job::Sync);
        self.busy = false;
        let mut notes = Vec::new();
        loop {
            match self.done.recv() {
                Ok(Done::Note(m)) => notes.push(m),
                Ok(Done::Synced) => return Ok(notes),
                Err(_) => return Err(io::Error::other("the installer thread ended")),
            }
        }
    }
}

impl Drop for Installer {
    fn drop(&mut self) {
        // Ends the thread's loop; files it still holds are dropped there
        // (an unnamed file vanishes, a named temporary is removed).
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The installer's loop: its jobs in order, until the agent drops its
/// end of the channel.
fn run(jobs: &mpsc::Receiver<Job>, done: &mpsc::Sender<Done>) {
    let mut files: HashMap<u32, Stream> = HashMap::new();
    for job in jobs {
        let out = match job {
            Job::Begin(fid, s) => {
                files.insert(fid, s);
                None
            }
            Job::Data(fid, bytes) => {
                if let Some(s) = files.get_mut(&fid) {
                    data(s, &bytes);
                }
                None
            }
            Job::Commit {
                fid,
                attrs,
                fsync,
                over,
            } => files
                .remove(&fid)
                .and_then(|s| commit(s, &attrs, fsync, over))
                .map(Done::Note),
            Job::Abort(fid) => {
                files.remove(&fid);
                None
            }
            Job::Sync => Some(Done::Synced),
        };
        if let Some(d) = out {
            if done.send(d).is_err() {
                return;
            }
        }
    }
}

/// The errno of `e` for a note (`EIO` when it has none).
pub fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Writes (or compares) one data message of a stream.
pub fn data(s: &mut Stream, bytes: &[u8]) {
    match s {
        Stream::Write { file, got, err, .. } => {
            if err.is_none() {
                if let Err(e) = file.write(bytes) {
                    *err = Some(e);
                }
            }
            *got += bytes.len() as u64;
        }
        Stream::Failed { got, .. } => *got += bytes.len() as u64,
        Stream::Compare { mine, same } => {
            if let (Some(f), true) = (mine, *same) {
                let mut buf = vec![0u8; bytes.len()];
                *same =
                    read_full(f.as_fd(), &mut buf).is_ok_and(|n| n == bytes.len() && buf == bytes);
            }
        }
    }
}

fn read_full(f: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match sys::read(f, &mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Installs the file of stream `s` (not a compare stream: the agent
/// refuses a commit of one); returns the note that corrects the sender's
/// account, if any: the error (with the bytes that arrived), or how many
/// entries the file replaced.
pub fn commit(s: Stream, attrs: &Attrs, fsync: bool, over: Over) -> Option<Msg> {
    let (rel, r, silent) = match s {
        Stream::Write {
            file,
            rel,
            got,
            err: None,
            ..
        } => {
            let r = file.commit(attrs, fsync, over).and_then(|c| match c {
                Committed::Done { deleted } => Ok(deleted),
                // Only an unnamed file whose linking had not been probed
                // asks for its content again, and the agent probes first:
                // never lose it quietly.
                Committed::Retry => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
            });
            (rel, r.map_err(|e| (e, got)), false)
        }
        Stream::Write {
            rel,
            got,
            err: Some(e),
            ..
        } => (rel, Err((e, got)), false),
        Stream::Failed { rel, got, err } => {
            let silent = err.is_none();
            let e = err.unwrap_or_else(|| io::Error::from_raw_os_error(libc::ENOENT));
            (rel, Err((e, got)), silent)
        }
        Stream::Compare { .. } => return None,
    };
    match r {
        Ok(0) => None,
        Ok(n) => Some(Msg::Note {
            op: NoteOp::Copy,
            path: rel,
            errno: 0,
            count: n,
            silent,
        }),
        Err((e, got)) => Some(Msg::Note {
            op: NoteOp::Copy,
            path: rel,
            errno: errno(&e),
            count: got,
            silent,
        }),
    }
}

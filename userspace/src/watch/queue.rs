//! Pending work of the watcher: coalescing, settle delays and ordering.
//!
//! Every operation but a rename is *state based*: `Sync(p)` makes `DST/p`
//! equal to what `SRC/p` is when it runs, `Attrs(p)` re-applies mode and
//! mtime, `RescanAll` syncs everything. Running a state-based operation
//! later than asked, or twice, is always correct, so many events on one path
//! coalesce into one pending operation (many writes make one copy), and
//! state-based operations need no order among themselves: they only must
//! not run concurrently on related paths (one an ancestor of the other).
//!
//! A rename is *event based*: `DST/from` must still be what it was when
//! SRC was renamed. When a rename is queued, the pending state-based
//! operations on related paths are moved behind it (those under `from`
//! renamed to `to`), and later operations on related paths wait for it.
//! A full rescan replaces every pending state-based operation.
//!
//! Delays: a closed writer (`IN_CLOSE_WRITE`), a deletion, an attribute
//! change or a rename are due after [`Delays::soon`] (a few ms, to batch
//! bursts); a creation or a write with the file still open waits until it
//! has been quiet for [`Delays::quiet`], but never longer than
//! [`Delays::max_settle`] since the first unsynced change, so a writer that
//! keeps its file open still gets synced.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::map::join;

/// One unit of work for a copy worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `Syncer::sync_path`.
    Sync(PathBuf),
    /// `Syncer::sync_attrs`.
    Attrs(PathBuf),
    /// `Syncer::rename(from, to)`.
    Rename(PathBuf, PathBuf),
    /// `Syncer::sync_all`.
    RescanAll,
}

/// How soon a state-based operation is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// The writer closed, the entry was removed, ...: due after `soon`.
    Soon,
    /// Created or written and maybe still open: due once quiet.
    Settle,
}

/// The delays used by the queue.
#[derive(Clone, Copy, Debug)]
pub struct Delays {
    /// Batching delay for operations that are ready.
    pub soon: Duration,
    /// Quiet time after the last write before syncing a file still open.
    pub quiet: Duration,
    /// Longest wait since the first unsynced write of an open file.
    pub max_settle: Duration,
}

impl Default for Delays {
    fn default() -> Self {
        Delays {
            soon: Duration::from_millis(1),
            quiet: Duration::from_millis(30),
            max_settle: Duration::from_millis(300),
        }
    }
}

#[derive(Debug)]
struct Entry {
    op: Op,
    deadline: Instant,
    first: Instant,
    closed: bool,
}

/// Whether `a` is `b` or one of its ancestors ("" is everyone's ancestor).
pub fn is_ancestor_or_self(a: &Path, b: &Path) -> bool {
    let a = a.as_os_str().as_bytes();
    let b = b.as_os_str().as_bytes();
    a.is_empty() || (b.starts_with(a) && (b.len() == a.len() || b[a.len()] == b'/'))
}

/// Whether two paths are the same or one contains the other.
pub fn related(a: &Path, b: &Path) -> bool {
    is_ancestor_or_self(a, b) || is_ancestor_or_self(b, a)
}

impl Op {
    fn paths(&self) -> Vec<&Path> {
        match self {
            Op::Sync(p) | Op::Attrs(p) => vec![p],
            Op::Rename(f, t) => vec![f, t],
            Op::RescanAll => vec![Path::new("")],
        }
    }

    fn state_path(&self) -> Option<&Path> {
        match self {
            Op::Sync(p) | Op::Attrs(p) => Some(p),
            _ => None,
        }
    }

    /// Whether the two operations touch related paths.
    pub fn conflicts(&self, other: &Op) -> bool {
        let a = self.paths();
        let b = other.paths();
        a.iter().any(|x| b.iter().any(|y| related(x, y)))
    }

    fn is_barrier(&self) -> bool {
        matches!(self, Op::Rename(..) | Op::RescanAll)
    }
}

/// The queue; see the module docs.
#[derive(Debug)]
pub struct Queue {
    delays: Delays,
    seq: u64,
    pending: BTreeMap<u64, Entry>,
    index: HashMap<PathBuf, u64>,
    inflight: HashMap<u64, Op>,
}

impl Queue {
    /// An empty queue.
    pub fn new(delays: Delays) -> Self {
        Queue {
            delays,
            seq: 0,
            pending: BTreeMap::new(),
            index: HashMap::new(),
            inflight: HashMap::new(),
        }
    }

    /// Nothing pending and nothing running.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.inflight.is_empty()
    }

    /// Operations running now.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Operations waiting.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn insert_state(&mut self, mut e: Entry) {
        let path = e.op.state_path().expect("state op").to_path_buf();
        if let Some(&id) = self.index.get(&path) {
            if let Some(old) = self.pending.get_mut(&id) {
                if matches!(e.op, Op::Sync(_)) {
                    old.op = e.op;
                }
                old.first = old.first.min(e.first);
                old.deadline = old.deadline.min(e.deadline);
                old.closed |= e.closed;
                return;
            }
        }
        let id = self.next_seq();
        e.first = e.first.min(e.deadline);
        self.pending.insert(id, e);
        self.index.insert(path, id);
    }

    /// Asks for `Sync(path)`.
    pub fn push_sync(&mut self, path: &Path, urgency: Urgency, now: Instant) {
        let d = self.delays;
        if let Some(&id) = self.index.get(path) {
            if let Some(e) = self.pending.get_mut(&id) {
                e.op = Op::Sync(path.to_path_buf());
                match urgency {
                    Urgency::Soon => {
                        e.closed = true;
                        e.deadline = e.deadline.min(now + d.soon);
                    }
                    Urgency::Settle if !e.closed => {
                        e.deadline = e.deadline.max(now + d.quiet).min(e.first + d.max_settle);
                    }
                    // A close already made it due soon; it will read the
                    // latest content, later writes make a new operation.
                    Urgency::Settle => {}
                }
                return;
            }
        }
        let (deadline, closed) = match urgency {
            Urgency::Soon => (now + d.soon, true),
            Urgency::Settle => (now + d.quiet, false),
        };
        self.insert_state(Entry {
            op: Op::Sync(path.to_path_buf()),
            deadline,
            first: now,
            closed,
        });
    }

    /// Asks for `Sync(path)` again in `after` (a file that was still
    /// changing); a pending operation on `path` already covers it, and an
    /// event can only make it due sooner.
    pub fn push_retry(&mut self, path: &Path, after: Duration, now: Instant) {
        if let Some(&id) = self.index.get(path) {
            if self.pending.contains_key(&id) {
                return;
            }
        }
        self.insert_state(Entry {
            op: Op::Sync(path.to_path_buf()),
            deadline: now + after,
            first: now,
            closed: true,
        });
    }

    /// Asks for `Attrs(path)` (a pending `Sync(path)` already covers it).
    pub fn push_attrs(&mut self, path: &Path, now: Instant) {
        let d = self.delays;
        if let Some(&id) = self.index.get(path) {
            if self.pending.contains_key(&id) {
                return;
            }
        }
        self.insert_state(Entry {
            op: Op::Attrs(path.to_path_buf()),
            deadline: now + d.soon,
            first: now,
            closed: true,
        });
    }

    /// Queues a rename; pending state-based work on related paths moves
    /// behind it (see the module docs).
    pub fn push_rename(&mut self, from: &Path, to: &Path, now: Instant) {
        let moved: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, e)| match e.op.state_path() {
                Some(p) => related(p, from) || related(p, to),
                None => false,
            })
            .map(|(&id, _)| id)
            .collect();
        let mut entries = Vec::with_capacity(moved.len());
        for id in moved {
            if let Some(e) = self.pending.remove(&id) {
                if let Some(p) = e.op.state_path() {
                    self.index.remove(p);
                }
                entries.push(e);
            }
        }
        let id = self.next_seq();
        self.pending.insert(
            id,
            Entry {
                op: Op::Rename(from.to_path_buf(), to.to_path_buf()),
                deadline: now,
                first: now,
                closed: true,
            },
        );
        for mut e in entries {
            let p = e.op.state_path().expect("state op").to_path_buf();
            let np = rebase(&p, from, to).unwrap_or(p);
            e.op = match e.op {
                Op::Sync(_) => Op::Sync(np),
                _ => Op::Attrs(np),
            };
            self.insert_state(e);
        }
    }

    /// Queues a full rescan, replacing all pending state-based work (a
    /// pending rescan not yet started is reused).
    pub fn push_rescan_all(&mut self, now: Instant) {
        let state: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, e)| !matches!(e.op, Op::Rename(..)))
            .map(|(&id, _)| id)
            .collect();
        for id in state {
            self.pending.remove(&id);
        }
        self.index.clear();
        let id = self.next_seq();
        self.pending.insert(
            id,
            Entry {
                op: Op::RescanAll,
                deadline: now,
                first: now,
                closed: true,
            },
        );
    }

    /// Takes the operations that are due and may run now (at most `max`),
    /// marking them as running; each comes with an id for [`complete`].
    ///
    /// [`complete`]: Self::complete
    pub fn dispatch(&mut self, now: Instant, max: usize) -> Vec<(u64, Op)> {
        let mut out = Vec::new();
        if max == 0 {
            return out;
        }
        let mut barriers: Vec<u64> = Vec::new();
        let mut take: Vec<u64> = Vec::new();
        for (&id, e) in &self.pending {
            if out.len() + take.len() >= max {
                break;
            }
            let blocked = barriers
                .iter()
                .any(|b| self.pending[b].op.conflicts(&e.op) || matches!(e.op, Op::RescanAll))
                || self.inflight.values().any(|o| o.conflicts(&e.op))
                || take.iter().any(|t| self.pending[t].op.conflicts(&e.op));
            if !blocked && e.deadline <= now {
                take.push(id);
            } else if e.op.is_barrier() {
                barriers.push(id);
            }
        }
        for id in take {
            if let Some(e) = self.pending.remove(&id) {
                if let Some(p) = e.op.state_path() {
                    if self.index.get(p) == Some(&id) {
                        self.index.remove(p);
                    }
                }
                self.inflight.insert(id, e.op.clone());
                out.push((id, e.op));
            }
        }
        out
    }

    /// The earliest moment a pending operation becomes due, if any is not
    /// due yet. Due but blocked operations wait for a completion instead.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        self.pending
            .values()
            .map(|e| e.deadline)
            .filter(|&d| d > now)
            .min()
    }

    /// Whether some pending operation is due now (blocked or not).
    pub fn has_due(&self, now: Instant) -> bool {
        self.pending.values().any(|e| e.deadline <= now)
    }

    /// Marks a running operation as finished and returns it.
    pub fn complete(&mut self, id: u64) -> Option<Op> {
        self.inflight.remove(&id)
    }

    /// Drops everything not yet started (shutdown).
    pub fn clear_pending(&mut self) {
        self.pending.clear();
        self.index.clear();
    }
}

/// `p` with its prefix `from` replaced by `to`, when `p` is `from` or under it.
pub fn rebase(p: &Path, from: &Path, to: &Path) -> Option<PathBuf> {
    if !is_ancestor_or_self(from, p) {
        return None;
    }
    let pb = p.as_os_str().as_bytes();
    let fb = from.as_os_str().as_bytes();
    if pb.len() == fb.len() {
        return Some(to.to_path_buf());
    }
    let rest = if fb.is_empty() {
        pb
    } else {
        &pb[fb.len() + 1..]
    };
    Some(join(to, std::ffi::OsStr::from_bytes(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn q() -> Queue {
        Queue::new(Delays::default())
    }

    #[test]
    fn relations() {
        assert!(related(&p("a"), &p("a/b")));
        assert!(related(&p("a/b"), &p("a")));
        assert!(related(&p(""), &p("x")));
        assert!(!related(&p("a"), &p("ab")));
        assert!(!related(&p("a/b"), &p("a/c")));
        assert_eq!(rebase(&p("a/b/c"), &p("a/b"), &p("x")), Some(p("x/c")));
        assert_eq!(rebase(&p("a/b"), &p("a/b"), &p("x/y")), Some(p("x/y")));
        assert_eq!(rebase(&p("a/bc"), &p("a/b"), &p("x")), None);
    }

    #[test]
    fn many_writes_coalesce_into_one_copy() {
        let mut q = q();
        let t0 = Instant::now();
        q.push_sync(&p("f"), Urgency::Settle, t0); // IN_CREATE
        for i in 0..1000 {
            q.push_sync(&p("f"), Urgency::Settle, t0 + Duration::from_micros(i));
        }
        q.push_sync(&p("f"), Urgency::Soon, t0 + Duration::from_millis(2)); // close
        assert!(q.dispatch(t0 + Duration::from_millis(2), 8).is_empty());
        let d = q.next_deadline(t0 + Duration::from_millis(2)).unwrap();
        assert_eq!(d, t0 + Duration::from_millis(3));
        let ops = q.dispatch(d, 8);
        assert_eq!(ops, vec![(1, Op::Sync(p("f")))]);
        assert!(q.dispatch(d + Duration::from_secs(1), 8).is_empty());
        assert_eq!(q.complete(1), Some(Op::Sync(p("f"))));
        assert!(q.is_idle());
    }

    #[test]
    fn open_writer_is_synced_after_bounded_settle() {
        let mut q = q();
        let t0 = Instant::now();
        // A write every 10 ms, never closed: quiet never reached, but the
        // operation is due at first + max_settle.
        let mut t = t0;
        let mut synced_at = None;
        for _ in 0..100 {
            q.push_sync(&p("log"), Urgency::Settle, t);
            t += Duration::from_millis(10);
            if !q.dispatch(t, 8).is_empty() {
                synced_at = Some(t);
                break;
            }
        }
        let at = synced_at.expect("an open writer must be synced");
        assert!(at - t0 <= Duration::from_millis(310), "{:?}", at - t0);
        // A single write then silence: synced after the quiet time.
        let mut q = Queue::new(Delays::default());
        q.push_sync(&p("x"), Urgency::Settle, t0);
        assert_eq!(q.next_deadline(t0), Some(t0 + Duration::from_millis(30)));
    }

    #[test]
    fn related_operations_never_run_concurrently() {
        let mut q = q();
        let t0 = Instant::now();
        q.push_sync(&p("d"), Urgency::Soon, t0);
        q.push_sync(&p("d/f"), Urgency::Soon, t0);
        q.push_sync(&p("e"), Urgency::Soon, t0);
        let now = t0 + Duration::from_millis(5);
        let ops: Vec<Op> = q.dispatch(now, 8).into_iter().map(|x| x.1).collect();
        assert_eq!(ops, vec![Op::Sync(p("d")), Op::Sync(p("e"))]);
        // d/f waits for d; the queue does not ask for a timer meanwhile.
        assert!(q.dispatch(now, 8).is_empty());
        assert_eq!(q.next_deadline(now), None);
        q.complete(1);
        let ops: Vec<Op> = q.dispatch(now, 8).into_iter().map(|x| x.1).collect();
        assert_eq!(ops, vec![Op::Sync(p("d/f"))]);
    }

    #[test]
    fn rename_moves_pending_work_behind_it_rebased() {
        let mut q = q();
        let t0 = Instant::now();
        q.push_sync(&p("a/f"), Urgency::Settle, t0); // open writer in a/
        q.push_sync(&p("b/g"), Urgency::Soon, t0); // under the target
        q.push_sync(&p("c"), Urgency::Soon, t0); // unrelated
        q.push_rename(&p("a"), &p("b"), t0);
        let now = t0 + Duration::from_millis(5);
        let ops: Vec<Op> = q.dispatch(now, 8).into_iter().map(|x| x.1).collect();
        // The rename and the unrelated sync run; b/g waits for the rename.
        assert_eq!(ops, vec![Op::Sync(p("c")), Op::Rename(p("a"), p("b"))]);
        let ids: Vec<u64> = q.inflight.keys().copied().collect();
        for id in ids {
            q.complete(id);
        }
        let ops: Vec<Op> = q.dispatch(now, 8).into_iter().map(|x| x.1).collect();
        assert_eq!(ops, vec![Op::Sync(p("b/g"))]);
        // The open writer's sync follows the directory to b/f, still settling.
        let later = t0 + Duration::from_millis(40);
        let ops: Vec<Op> = q.dispatch(later, 8).into_iter().map(|x| x.1).collect();
        assert_eq!(ops, vec![Op::Sync(p("b/f"))]);
    }

    #[test]
    fn later_work_waits_for_an_earlier_rename() {
        let mut q = q();
        let t0 = Instant::now();
        q.push_sync(&p("x"), Urgency::Soon, t0);
        let ops = q.dispatch(t0 + Duration::from_millis(2), 8);
        assert_eq!(ops.len(), 1);
        // A rename of x while x's sync runs: it waits, and so does a write
        // into the renamed directory queued after it.
        q.push_rename(&p("x"), &p("y"), t0);
        q.push_sync(&p("y/new"), Urgency::Soon, t0);
        let now = t0 + Duration::from_millis(5);
        assert!(q.dispatch(now, 8).is_empty());
        q.complete(ops[0].0);
        let ops: Vec<Op> = q.dispatch(now, 8).into_iter().map(|x| x.1).collect();
        assert_eq!(ops, vec![Op::Rename(p("x"), p("y"))]);
    }

    #[test]
    fn rescan_replaces_pending_state_work_and_waits_for_running() {
        let mut q = q();
        let t0 = Instant::now();
        q.push_sync(&p("a"), Urgency::Soon, t0);
        let running = q.dispatch(t0 + Duration::from_millis(2), 8);
        for i in 0..100 {
            q.push_sync(&p(&format!("f{i}")), Urgency::Soon, t0);
        }
        q.push_rescan_all(t0);
        q.push_rescan_all(t0);
        assert_eq!(q.pending(), 1, "one rescan, the state work dropped");
        let now = t0 + Duration::from_millis(5);
        assert!(q.dispatch(now, 8).is_empty());
        q.complete(running[0].0);
        let ops: Vec<Op> = q.dispatch(now, 8).into_iter().map(|x| x.1).collect();
        assert_eq!(ops, vec![Op::RescanAll]);
        q.push_sync(&p("late"), Urgency::Soon, now);
        assert!(q.dispatch(now + Duration::from_millis(5), 8).len() <= 1);
    }

    #[test]
    fn attrs_upgrade_and_subsumption() {
        let mut q = q();
        let t0 = Instant::now();
        q.push_attrs(&p("f"), t0);
        q.push_sync(&p("f"), Urgency::Soon, t0);
        q.push_attrs(&p("f"), t0);
        let ops: Vec<Op> = q
            .dispatch(t0 + Duration::from_millis(5), 8)
            .into_iter()
            .map(|x| x.1)
            .collect();
        assert_eq!(ops, vec![Op::Sync(p("f"))]);
    }

    #[test]
    fn capacity_is_respected() {
        let mut q = q();
        let t0 = Instant::now();
        for i in 0..10 {
            q.push_sync(&p(&format!("f{i}")), Urgency::Soon, t0);
        }
        assert_eq!(q.dispatch(t0 + Duration::from_millis(5), 3).len(), 3);
        assert_eq!(q.dispatch(t0 + Duration::from_millis(5), 0).len(), 0);
        assert_eq!(q.inflight(), 3);
        assert_eq!(q.pending(), 7);
    }
}

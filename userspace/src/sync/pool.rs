//! The scheduler: one persistent pool of worker threads per
//! [`Syncer`](super::Syncer), shared by every operation (a one-shot sync,
//! or all the operations of a watcher): no thread is started per
//! operation.
//!
//! Work is a LIFO stack of tasks (depth first: a directory's files and
//! subdirectories are done before its siblings are opened, which bounds
//! the open descriptors). Each task belongs to a [`Group`], one per
//! operation; [`Pool::run`] queues a group's first tasks and returns when
//! the group has no task queued or running. The calling thread works on
//! its own group's tasks meanwhile, so with `-j 1` (no workers) the caller
//! does everything, and `-j N` means N threads in all.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// A unit of work; it may queue more work of its group through the
/// [`Spawner`].
pub type Task = Box<dyn FnOnce(&Spawner<'_>) + Send>;

/// The tasks of one operation.
#[derive(Debug, Default)]
pub struct Group {
    /// A task of the group panicked.
    panicked: AtomicBool,
}

struct Queued {
    group: Arc<Group>,
    task: Task,
}

/// The queue state, behind the pool's mutex.
#[derive(Default)]
struct QueueState {
    /// Tasks waiting for a thread (LIFO).
    tasks: Vec<Queued>,
    /// Tasks queued or running, per group (by address).
    pending: Vec<(Arc<Group>, usize)>,
    /// Callers of [`Pool::run`] waiting in `done`.
    waiting_callers: usize,
    /// The pool is being dropped: workers exit.
    shutdown: bool,
}

impl QueueState {
    fn pending_mut(&mut self, g: &Arc<Group>) -> &mut usize {
        let i = match self.pending.iter().position(|(x, _)| Arc::ptr_eq(x, g)) {
            Some(i) => i,
            None => {
                self.pending.push((g.clone(), 0));
                self.pending.len() - 1
            }
        };
        &mut self.pending[i].1
    }

    fn pending(&self, g: &Arc<Group>) -> usize {
        self.pending
            .iter()
            .find(|(x, _)| Arc::ptr_eq(x, g))
            .map_or(0, |(_, n)| *n)
    }

    /// One task of `g` is over; true when it was the group's last.
    fn finish(&mut self, g: &Arc<Group>) -> bool {
        let n = self.pending_mut(g);
        *n -= 1;
        if *n == 0 {
            self.pending.retain(|(x, _)| !Arc::ptr_eq(x, g));
            return true;
        }
        false
    }
}

struct Shared {
    state: Mutex<QueueState>,
    /// Signalled when a task is queued (workers wait here).
    work: Condvar,
    /// Signalled when a group is done or a task queued (callers wait here).
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, group: &Arc<Group>, task: Task) {
        let mut st = self.lock();
        *st.pending_mut(group) += 1;
        st.tasks.push(Queued {
            group: group.clone(),
            task,
        });
        let callers = st.waiting_callers > 0;
        drop(st);
        self.work.notify_one();
        if callers {
            self.done.notify_all();
        }
    }

    /// Runs one task and accounts for it.
    fn run(&self, q: Queued) {
        let spawner = Spawner {
            pool: self,
            group: &q.group,
        };
        let task = q.task;
        if catch_unwind(AssertUnwindSafe(|| task(&spawner))).is_err() {
            q.group.panicked.store(true, Ordering::Relaxed);
        }
        if self.lock().finish(&q.group) {
            self.done.notify_all();
        }
    }

    fn worker(&self) {
        let mut st = self.lock();
        loop {
            if let Some(q) = st.tasks.pop() {
                drop(st);
                self.run(q);
                st = self.lock();
                continue;
            }
            if st.shutdown {
                return;
            }
            st = self.work.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Queues more tasks of the running task's group.
pub struct Spawner<'a> {
    pool: &'a Shared,
    group: &'a Arc<Group>,
}

impl Spawner<'_> {
    /// Queues `f` in the current group.
    pub fn spawn(&self, f: impl FnOnce(&Spawner<'_>) + Send + 'static) {
        self.pool.push(self.group, Box::new(f));
    }
}

/// The worker threads (see the module docs).
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool for `threads` threads in all: `threads - 1` workers plus the
    /// caller of [`Pool::run`].
    pub fn new(threads: usize) -> io::Result<Pool> {
        let shared = Arc::new(Shared {
            state: Mutex::new(QueueState::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let mut pool = Pool {
            shared,
            workers: Vec::new(),
        };
        for i in 1..threads.max(1) {
            let s = pool.shared.clone();
            let h = std::thread::Builder::new()
                .name(format!("dirsync-worker-{i}"))
                .spawn(move || s.worker())?;
            pool.workers.push(h);
        }
        Ok(pool)
    }

    /// Runs `tasks` and everything they queue; returns when all are done.
    /// `Err` when one of them panicked (the others still ran).
    pub fn run(&self, tasks: Vec<Task>) -> Result<(), Panicked> {
        let group = Arc::new(Group::default());
        let sh = &self.shared;
        let mut tasks = tasks.into_iter();
        let first = tasks.next();
        for t in tasks {
            sh.push(&group, t);
        }
        // The caller starts with the first task itself: an operation that
        // queues nothing more (one file) wakes no worker.
        if let Some(task) = first {
            *sh.lock().pending_mut(&group) += 1;
            let group = group.clone();
            sh.run(Queued { group, task });
        }
        let mut st = sh.lock();
        while st.pending(&group) > 0 {
            let mine = st.tasks.iter().rposition(|q| Arc::ptr_eq(&q.group, &group));
            if let Some(i) = mine {
                let q = st.tasks.remove(i);
                drop(st);
                sh.run(q);
                st = sh.lock();
                continue;
            }
            st.waiting_callers += 1;
            st = sh.done.wait(st).unwrap_or_else(|p| p.into_inner());
            st.waiting_callers -= 1;
        }
        drop(st);
        if group.panicked.load(Ordering::Relaxed) {
            return Err(Panicked);
        }
        Ok(())
    }
}

/// A task panicked (an internal error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panicked;

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn fan_out(sp: &Spawner<'_>, depth: u32, hits: Arc<AtomicUsize>) {
        hits.fetch_add(1, Ordering::Relaxed);
        if depth == 0 {
            return;
        }
        for _ in 0..3 {
            let h = hits.clone();
            sp.spawn(move |sp| fan_out(sp, depth - 1, h));
        }
    }

    #[test]
    fn runs_every_task_and_what_it_queues() {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            for _ in 0..3 {
                let hits = Arc::new(AtomicUsize::new(0));
                let h = hits.clone();
                pool.run(vec![Box::new(move |sp: &Spawner<'_>| fan_out(sp, 4, h))])
                    .unwrap();
                // 1 + 3 + 9 + 27 + 81
                assert_eq!(hits.load(Ordering::Relaxed), 121, "threads {threads}");
            }
        }
    }

    #[test]
    fn concurrent_callers_share_the_pool() {
        let pool = Arc::new(Pool::new(2).unwrap());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let hits = Arc::new(AtomicUsize::new(0));
                    let h = hits.clone();
                    pool.run(vec![Box::new(move |sp: &Spawner<'_>| fan_out(sp, 3, h))])
                        .unwrap();
                    hits.load(Ordering::Relaxed)
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 40);
        }
    }

    #[test]
    fn a_panic_is_reported_and_the_pool_survives() {
        let pool = Pool::new(2).unwrap();
        let r = pool.run(vec![Box::new(|_: &Spawner<'_>| panic!("boom"))]);
        assert_eq!(r, Err(Panicked));
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        pool.run(vec![Box::new(move |sp: &Spawner<'_>| fan_out(sp, 1, h))])
            .unwrap();
        assert_eq!(hits.load(Ordering::Relaxed), 4);
    }
}

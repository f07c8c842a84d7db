//! User-space memory per watched directory of the watch map, measured with
//! a counting allocator (this test binary holds only this test, so the
//! count is not disturbed by other tests).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicIsize, Ordering};

use dirsync::watch::map::WatchMap;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn bytes_per_watched_directory() {
    const TOP: usize = 100;
    const PER: usize = 200;
    let before = LIVE.load(Ordering::Relaxed);
    let mut m = WatchMap::new();
    m.place(&PathBuf::from(""), Some(1)).unwrap();
    let mut wd = 2;
    for t in 0..TOP {
        let top = PathBuf::from(format!("dir{t:05}"));
        m.place(&top, Some(wd)).unwrap();
        wd += 1;
        for s in 0..PER {
            let rel = top.join(OsString::from(format!("sub{s:05}")));
            m.place(&rel, Some(wd)).unwrap();
            wd += 1;
        }
    }
    let after = LIVE.load(Ordering::Relaxed);
    let dirs = m.len();
    assert_eq!(dirs, 1 + TOP + TOP * PER);
    assert_eq!(m.watch_count(), dirs);
    let per = (after - before) as f64 / dirs as f64;
    eprintln!("watch map: {dirs} directories, {per:.0} bytes per directory (names of 8 bytes)");
    // A 40-byte node + its name's bytes + a u32 in each of the two hash
    // tables (wd, (parent, name)), with Vec and hash-table slack: 90 here.
    assert!(per < 150.0, "{per:.0} bytes per watched directory");
    // Paths are rebuilt, not stored.
    assert_eq!(
        m.path_of_wd(wd - 1).unwrap(),
        PathBuf::from(format!("dir{:05}/sub{:05}", TOP - 1, PER - 1))
    );
    drop(m);
}

//! The library's own rayon pool.
//!
//! Sized by `CLIPBRANCHES_NUM_THREADS` (default: all cores), built on first use. A process that
//! forks after the pool started (torch's `DataLoader` does) inherits no worker threads, so the
//! child would wait forever on a pool that is not there: a fork handler marks the child, and
//! [`install`] then runs the work on the calling thread instead.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Environment variable that sets the number of worker threads.
pub const THREADS_ENV: &str = "CLIPBRANCHES_NUM_THREADS";

static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
static FORKED_CHILD: AtomicBool = AtomicBool::new(false);

extern "C" fn mark_forked_child() {
    FORKED_CHILD.store(true, Ordering::SeqCst);
}

unsafe extern "C" {
    fn pthread_atfork(
        prepare: Option<extern "C" fn()>,
        parent: Option<extern "C" fn()>,
        child: Option<extern "C" fn()>,
    ) -> i32;
}

fn pool() -> &'static rayon::ThreadPool {
    POOL.get_or_init(|| {
        // SAFETY: registers a handler that only stores to an atomic, which is async-signal-safe
        // and valid in a freshly forked child; it is registered once, before any worker starts.
        unsafe {
            pthread_atfork(None, None, Some(mark_forked_child));
        }
        let threads = std::env::var(THREADS_ENV).ok().and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(0);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("clipbranches-{i}"))
            .build()
            .expect("building a rayon pool only fails when threads cannot be spawned")
    })
}

/// Number of threads parallel work will use (1 in a forked child).
#[must_use]
pub fn threads() -> usize {
    if FORKED_CHILD.load(Ordering::SeqCst) { 1 } else { pool().current_num_threads() }
}

/// Runs `work` inside the library's pool (or, in a forked child, on this thread with a
/// one-thread pool built for the call).
pub fn install<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if FORKED_CHILD.load(Ordering::SeqCst) {
        let single = rayon::ThreadPoolBuilder::new().num_threads(1).use_current_thread().build();
        return match single {
            Ok(p) => p.install(work),
            Err(_) => work(),
        };
    }
    pool().install(work)
}

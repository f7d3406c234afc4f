//! The task layer's part of the current core: its executor, reached by
//! `spawn` and by wakes on the core's own thread.
//!
//! Each layer keeps its own part of a core in its own thread-local (this
//! one, [`time`](crate::time)'s timers and clock, [`net`](crate::net)'s
//! stack), installed together by the reactor when a core starts. So no
//! layer reaches up to the reactor, and one call reads one thread-local.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::executor::Executor;
use super::waker::{CoreKey, TaskKey};
use crate::core_local::{self, Installed, Slot};

/// What the task layer owns of one core.
#[derive(Debug)]
pub(crate) struct TaskCore {
    pub(crate) key: CoreKey,
    pub(crate) exec: Executor,
    /// `spawn_blocking` closures running (on any thread): while any runs, a
    /// paused clock does not auto-advance (tokio's rule).
    blocking: Arc<AtomicUsize>,
}

impl TaskCore {
    pub(crate) fn new(key: CoreKey) -> TaskCore {
        TaskCore {
            key,
            exec: Executor::new(key),
            blocking: Arc::default(),
        }
    }

    /// True when no `spawn_blocking` closure of this core is running.
    pub(crate) fn no_blocking_work(&self) -> bool {
        self.blocking.load(Ordering::Acquire) == 0
    }

    /// Counts one blocking closure until the guard drops (on any thread).
    pub(crate) fn blocking_started(&self) -> BlockingGuard {
        self.blocking.fetch_add(1, Ordering::AcqRel);
        BlockingGuard(self.blocking.clone())
    }
}

/// One running blocking closure; dropping it ends the count.
#[derive(Debug)]
pub(crate) struct BlockingGuard(Arc<AtomicUsize>);

impl Drop for BlockingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

thread_local! {
    static CURRENT: Slot<TaskCore> = const { RefCell::new(None) };
}

/// Runs `f` with the current core's task part, or returns `None` off a
/// runtime thread.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&TaskCore) -> R) -> Option<R> {
    core_local::with(&CURRENT, f)
}

/// Like [`with_current`], panicking with a message naming `what` off a
/// runtime thread.
#[track_caller]
pub(crate) fn expect_current<R>(what: &str, f: impl FnOnce(&TaskCore) -> R) -> R {
    core_local::expect(&CURRENT, what, f)
}

/// Schedules `task` if `core` is the current thread's core. Returns false
/// when the wake must go through the core's cross-thread queue instead.
pub(crate) fn schedule_local(core: CoreKey, task: TaskKey) -> bool {
    with_current(|c| c.key == core && c.exec.schedule(task)).unwrap_or(false)
}

/// Whether this thread runs a core.
pub(crate) fn in_runtime() -> bool {
    with_current(|_| ()).is_some()
}

/// Installs `core` as the current thread's until the guard drops.
///
/// # Panics
/// If this thread already runs a core.
pub(crate) fn enter(core: Rc<TaskCore>) -> Installed<TaskCore> {
    core_local::install(&CURRENT, core)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_guards_count_on_any_thread() {
        let core = TaskCore::new(super::super::waker::untoken(0).0);
        assert!(core.no_blocking_work());
        let a = core.blocking_started();
        let b = core.blocking_started();
        drop(a);
        assert!(!core.no_blocking_work());
        std::thread::spawn(move || drop(b)).join().unwrap();
        assert!(core.no_blocking_work());
    }
}

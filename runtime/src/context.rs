//! The current thread's core.
//!
//! A runtime thread has exactly one [`Core`] installed while its loop runs;
//! `spawn`, timers and drivers find it here.

use std::cell::RefCell;
use std::rc::Rc;

use crate::reactor::Core;
use crate::task::waker::{CoreKey, TaskKey};

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Runs `f` with the current core, or returns `None` off a runtime thread.
pub(crate) fn with_core<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    CURRENT
        .try_with(|c| {
            let c = c.try_borrow().ok()?;
            c.as_deref().map(f)
        })
        .ok()
        .flatten()
}

/// Like [`with_core`], panicking with a message naming `what` off a
/// runtime thread.
#[track_caller]
pub(crate) fn expect_core<R>(what: &str, f: impl FnOnce(&Core) -> R) -> R {
    match with_core(f) {
        Some(r) => r,
        None => panic!(
            "{what} must be called from a thread running an mtcp runtime \
             (inside Runtime::block_on, #[mtcp::main] or #[mtcp::test])"
        ),
    }
}

/// Schedules `task` if `core` is the current thread's core. Returns false
/// when the wake must go through the core's cross-thread queue instead.
pub(crate) fn schedule_local(core: CoreKey, task: TaskKey) -> bool {
    with_core(|c| c.key == core && c.exec.schedule(task)).unwrap_or(false)
}

/// Whether this thread runs a core.
pub(crate) fn in_runtime() -> bool {
    with_core(|_| ()).is_some()
}

/// Installs `core` as the current thread's core until the guard drops.
pub(crate) fn enter(core: Rc<Core>) -> EnterGuard {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        assert!(
            c.is_none(),
            "Cannot start an mtcp runtime from within a runtime: this thread already runs one"
        );
        *c = Some(core);
    });
    EnterGuard { _private: () }
}

/// Uninstalls the current core on drop.
#[derive(Debug)]
pub(crate) struct EnterGuard {
    _private: (),
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let core = CURRENT.with(|c| c.borrow_mut().take());
        drop(core);
    }
}

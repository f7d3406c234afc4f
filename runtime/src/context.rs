//! The current thread's core, as the runtime layer sees it.
//!
//! A runtime thread has exactly one [`Core`] installed while its loop runs.
//! [`enter`] installs it here for the runtime's own calls (`run_on`,
//! `current_core`, shutdown) and each layer's part in that layer's
//! thread-local: the executor for `spawn`, the clock and wheel for timers,
//! the stack for sockets. So the layers below never reach up here.

use std::cell::RefCell;
use std::rc::Rc;

use crate::core_local::{self, Installed, Slot};
use crate::net::current::NetCore;
use crate::reactor::Core;
use crate::task::current::TaskCore;
use crate::time::current::TimeCore;

thread_local! {
    static CURRENT: Slot<Core> = const { RefCell::new(None) };
}

/// Runs `f` with the current core, or returns `None` off a runtime thread.
pub(crate) fn with_core<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    core_local::with(&CURRENT, f)
}

/// Like [`with_core`], panicking with a message naming `what` off a
/// runtime thread.
#[track_caller]
pub(crate) fn expect_core<R>(what: &str, f: impl FnOnce(&Core) -> R) -> R {
    core_local::expect(&CURRENT, what, f)
}

/// Whether this thread runs a core.
pub(crate) fn in_runtime() -> bool {
    crate::task::current::in_runtime()
}

/// Installs `core` (and each layer's part of it) as the current thread's
/// core until the guard drops.
///
/// # Panics
/// If this thread already runs a core.
pub(crate) fn enter(core: Rc<Core>) -> EnterGuard {
    // First: it checks that no core is installed yet.
    let task = crate::task::current::enter(core.task.clone());
    let time = crate::time::current::enter(core.time.clone());
    let net = crate::net::current::enter(core.net.clone());
    EnterGuard {
        _core: core_local::install(&CURRENT, core),
        _net: net,
        _time: time,
        _task: task,
    }
}

/// Uninstalls the current core on drop: the whole first, then each part
/// (in field order; the last, the task part, is the one `enter` checks).
#[derive(Debug)]
pub(crate) struct EnterGuard {
    _core: Installed<Core>,
    _net: Installed<NetCore>,
    _time: Installed<TimeCore>,
    _task: Installed<TaskCore>,
}

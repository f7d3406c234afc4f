//! The net layer's part of the current core: its I/O (the core's own
//! TCP/IP stack, or a plug-in driver), reached by every socket call with
//! one thread-local read and one borrow (see
//! [`task::current`](crate::task::current) for why each layer keeps its own
//! part).

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use mtcp_stack::stack::Stack;
use mtcp_stack::time::Instant as StackInstant;

use super::driver::StackDriver;
use crate::core_local::{self, Installed, Slot};
use crate::io_driver::IoDriver;
use crate::task::waker::Remote;

/// A core's I/O: the TCP/IP stack the core owns (the usual case, reached
/// by sockets without a downcast), or a plug-in [`IoDriver`] (a runtime of
/// timers and tasks only, or a test's driver).
pub(crate) enum Io {
    /// The core's stack and its device.
    Stack(Box<StackDriver>),
    /// Any other driver ([`NoNetwork`](crate::driver::NoNetwork) by default).
    Plugin(Box<dyn IoDriver>),
}

impl Io {
    /// The reactor's view: the tick's hooks.
    pub(crate) fn driver(&mut self) -> &mut dyn IoDriver {
        match self {
            Io::Stack(d) => &mut **d,
            Io::Plugin(d) => &mut **d,
        }
    }

    /// [`driver`](Self::driver), shared.
    pub(crate) fn driver_ref(&self) -> &dyn IoDriver {
        match self {
            Io::Stack(d) => &**d,
            Io::Plugin(d) => &**d,
        }
    }

    /// The core's stack, if it has one (until its shutdown).
    fn stack_mut(&mut self) -> Option<&mut Stack> {
        match self {
            Io::Stack(d) => d.stack_mut(),
            Io::Plugin(_) => None,
        }
    }
}

/// What the net layer owns of one core.
pub(crate) struct NetCore {
    /// The core's index among the runtime's cores.
    pub(crate) index: usize,
    /// The core's inbox, for closes posted from other threads.
    pub(crate) remote: Arc<Remote>,
    /// Every core's inbox, by index (this one included); set once all cores
    /// have started.
    pub(crate) peers: RefCell<Arc<[Arc<Remote>]>>,
    /// The core's I/O.
    pub(crate) io: RefCell<Io>,
    /// The current tick's time as the stack sees it (the time layer sets it).
    tick_now: Rc<Cell<StackInstant>>,
    /// Wakers the stack made due, woken once its borrow has ended
    /// ([`wake_due`](NetCore::wake_due); capacity reused).
    due: RefCell<Vec<Waker>>,
}

impl std::fmt::Debug for NetCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetCore")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl NetCore {
    pub(crate) fn new(
        index: usize,
        remote: Arc<Remote>,
        io: Io,
        tick_now: Rc<Cell<StackInstant>>,
    ) -> NetCore {
        NetCore {
            index,
            peers: RefCell::new(Arc::from(vec![remote.clone()])),
            remote,
            io: RefCell::new(io),
            tick_now,
            due: RefCell::new(Vec::with_capacity(64)),
        }
    }

    /// Runs `f` on this core's stack with the tick's time: one borrow, no
    /// downcast. The wakers the call made due are woken after the borrow.
    ///
    /// # Errors
    /// `Other` when the core has no stack (a runtime without a network
    /// device), or when the driver is busy: the call came from inside its
    /// `poll`, `flush` or `park` (a plug-in driver's waker).
    pub(crate) fn with_stack<R>(
        &self,
        f: impl FnOnce(&mut Stack, StackInstant) -> R,
    ) -> io::Result<R> {
        let Ok(mut io) = self.io.try_borrow_mut() else {
            return Err(io::Error::other(
                "mtcp: socket call made while this core's I/O driver is busy (from inside \
                 its poll, flush or park); make socket calls from a task",
            ));
        };
        let Some(stack) = io.stack_mut() else {
            return Err(no_device());
        };
        let r = f(stack, self.tick_now.get());
        let due = stack.has_wakes();
        drop(io);
        if due {
            self.wake_due();
        }
        Ok(r)
    }

    /// Wakes the wakers the stack made due (flow events, closed sockets,
    /// UDP readers and writers), after its borrow has ended: a waker may run
    /// code at once, and a socket call from there finds the stack free.
    /// The reactor calls it after the stack's `poll` and `flush`,
    /// [`with_stack`](Self::with_stack) after each socket call.
    pub(crate) fn wake_due(&self) {
        let mut due = {
            let Ok(mut io) = self.io.try_borrow_mut() else {
                return;
            };
            let Some(stack) = io.stack_mut() else {
                return;
            };
            if !stack.has_wakes() {
                return;
            }
            // Taken out, so a wake that makes a socket call (and so comes
            // back here) finds no borrow.
            let mut due = self.due.take();
            stack.take_wakes(&mut due);
            due
        };
        for w in due.drain(..) {
            w.wake();
        }
        // Keep the buffer with the larger capacity for the next tick.
        let mut slot = self.due.borrow_mut();
        if slot.capacity() < due.capacity() {
            *slot = due;
        }
    }

    /// Whether the I/O is borrowed now: the caller runs inside the driver's
    /// `poll`, `flush` or `park`.
    pub(crate) fn busy(&self) -> bool {
        self.io.try_borrow_mut().is_err()
    }
}

thread_local! {
    static CURRENT: Slot<NetCore> = const { RefCell::new(None) };
}

/// Runs `f` with the current core's net part, or returns `None` off a
/// runtime thread.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&NetCore) -> R) -> Option<R> {
    core_local::with(&CURRENT, f)
}

/// Installs `core` as the current thread's until the guard drops.
pub(crate) fn enter(core: Rc<NetCore>) -> Installed<NetCore> {
    core_local::install(&CURRENT, core)
}

/// Runs `f` on the current core's I/O driver if it is a `D`.
///
/// Returns `None` outside a runtime, when the driver is of another type, or
/// when the driver is busy (called from inside the driver's own `poll`,
/// `flush` or `park`, e.g. from a waker it woke).
///
/// The reactor never holds the driver while tasks run, so a socket future
/// can always reach its core's stack from `poll`.
pub fn with_io_driver<D: IoDriver, R>(f: impl FnOnce(&mut D) -> R) -> Option<R> {
    with_current(|core| {
        let mut io = core.io.try_borrow_mut().ok()?;
        let d = io.driver().as_any_mut().downcast_mut::<D>()?;
        Some(f(d))
    })
    .flatten()
}

/// A socket call on a core without a stack.
fn no_device() -> io::Error {
    io::Error::other(
        "mtcp: this runtime has no network device (build it with Builder::from_env() \
         or a network setting, or use #[mtcp::main])",
    )
}

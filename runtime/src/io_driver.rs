//! The hook between the reactor loop and an I/O source.
//!
//! Each core owns one [`IoDriver`]. The reactor calls it at fixed points of
//! every tick:
//!
//! 1. read `now` once; drain the core's cross-thread inbox;
//! 2. [`poll(now)`](IoDriver::poll): RX burst, stack input and timers,
//!    flow-event wakes;
//! 3. the runtime's timers;
//! 4. ready tasks, up to the task budget;
//! 5. [`flush(now)`](IoDriver::flush): TX lists, TX burst;
//! 6. if nothing did work: spin a few ticks, then
//!    [`park(timeout)`](IoDriver::park) until the earliest runtime timer or
//!    [`next_deadline`](IoDriver::next_deadline), input, or a cross-thread
//!    wake (through the [`unparker`](IoDriver::unparker)).
//!
//! A runtime with a network (`Builder::from_env`, `Builder::net`) does not
//! go through a factory: each core owns its TCP/IP stack directly, and
//! sockets reach it with one borrow. This trait is the plug-in point for
//! anything else; without a network or a factory, [`NoNetwork`] parks the
//! thread, which is all a runtime of timers and tasks needs.
//!
//! # Plugging a driver in
//!
//! ```
//! use std::sync::Arc;
//! use mtcp::driver::{DriverContext, IoDriver, NoNetwork};
//!
//! let rt = mtcp::runtime::Builder::new()
//!     .io_driver_factory(Arc::new(|cx: &DriverContext| {
//!         // Runs on the core's own thread, before its main future starts.
//!         let _ = (cx.core().index(), cx.core().count(), cx.extra());
//!         Ok(Box::new(NoNetwork::new()) as Box<dyn IoDriver>)
//!     }))
//!     .build()
//!     .unwrap();
//! rt.block_on(async {
//!     // Futures reach their core's driver through `with_io_driver`.
//!     let found = mtcp::driver::with_io_driver(|d: &mut NoNetwork| d.parks());
//!     assert!(found.is_some());
//! });
//! ```

use std::any::Any;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use mtcp_stack::time::Instant as StackInstant;

/// Wakes a core parked in [`IoDriver::park`]; callable from any thread.
pub type Unparker = Arc<dyn Fn() + Send + Sync>;

/// The I/O half of a core's reactor.
///
/// All methods but the [`Unparker`] run on the core's own thread. `now` is
/// the tick's time, read once per tick, in microseconds since the runtime's
/// start.
pub trait IoDriver: 'static {
    /// Receives and processes input (RX burst, protocol input, protocol
    /// timers) and wakes the wakers of flows with new events. Returns whether
    /// it did any work (a tick with no work anywhere lets the core idle).
    fn poll(&mut self, now: StackInstant) -> bool;

    /// Sends what the tick's tasks queued (TX lists, TX burst). Returns
    /// whether it did any work.
    fn flush(&mut self, now: StackInstant) -> bool;

    /// The next instant the driver needs [`poll`](Self::poll) called even
    /// without input (its earliest protocol timer), if any.
    fn next_deadline(&self) -> Option<StackInstant>;

    /// A cheap check, called many times while the core spins idle between
    /// ticks: true when input or queued output may be waiting, so the next
    /// tick should run now. It must never miss input for long (a false
    /// `false` only delays the next tick by a few hundred nanoseconds, as
    /// the spin is bounded); the default, `true`, ticks at once.
    fn has_input(&self) -> bool {
        true
    }

    /// Blocks until input arrives, `timeout` passes (`None`: no limit) or the
    /// [`unparker`](Self::unparker) is called. Spurious returns are fine.
    ///
    /// The unparker must behave like [`std::thread::Thread::unpark`]: an
    /// unpark that comes before `park` makes the next `park` return at once,
    /// or a cross-thread wake could be lost.
    fn park(&mut self, timeout: Option<Duration>);

    /// A handle that makes a current or the next [`park`](Self::park) return.
    /// Called once, on the core's thread, when the core starts.
    fn unparker(&self) -> Unparker;

    /// Called once when the core's run ends, after its tasks were dropped:
    /// close every connection as a process exit would on the kernel
    /// (gracefully: queued data, then a FIN). The reactor then keeps calling
    /// [`poll`](Self::poll) and [`flush`](Self::flush) until
    /// [`closed_all`](Self::closed_all) or the shutdown linger passes.
    /// Returns how many sockets it closed.
    fn close_all(&mut self) -> usize {
        0
    }

    /// True when a [`close_all`](Self::close_all) has nothing left to do
    /// (every connection finished, every frame sent).
    fn closed_all(&self) -> bool {
        true
    }

    /// The shutdown linger passed: reset every connection still unfinished
    /// (sent at the next [`flush`](Self::flush)). Returns how many.
    fn abort_closing(&mut self) -> usize {
        0
    }

    /// Called once when the core stops, after its tasks were dropped and
    /// its connections closed.
    fn shutdown(&mut self) {}

    /// `self`, for [`with_io_driver`](crate::driver::with_io_driver)'s downcast. Implement as `self`.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A core's identity: its index among the runtime's cores.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CoreId {
    index: usize,
    count: usize,
}

impl CoreId {
    pub(crate) fn new(index: usize, count: usize) -> CoreId {
        CoreId { index, count }
    }

    /// This core's index, `0..count`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many cores the runtime has.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// What an I/O driver factory is told about the core it builds for.
#[derive(Debug)]
pub struct DriverContext {
    core: CoreId,
    extra: Option<Arc<dyn Any + Send + Sync>>,
}

impl DriverContext {
    pub(crate) fn new(core: CoreId, extra: Option<Arc<dyn Any + Send + Sync>>) -> DriverContext {
        DriverContext { core, extra }
    }

    /// The core being started.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// The [`Builder::extra`](crate::runtime::Builder::extra) configuration,
    /// if any was set.
    pub fn extra(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.extra.as_deref()
    }

    /// The extra configuration downcast to `T`.
    pub fn extra_as<T: Any>(&self) -> Option<&T> {
        self.extra.as_deref()?.downcast_ref::<T>()
    }
}

/// Builds one core's driver, on that core's thread.
pub type DriverFactory = Arc<dyn Fn(&DriverContext) -> io::Result<Box<dyn IoDriver>> + Send + Sync>;

/// The driver of a runtime without a network device: no I/O, parks the
/// thread when idle. The default.
pub struct NoNetwork {
    thread: std::thread::Thread,
    parks: u64,
}

impl NoNetwork {
    /// A driver for the calling thread (call it on the core's thread).
    pub fn new() -> NoNetwork {
        NoNetwork {
            thread: std::thread::current(),
            parks: 0,
        }
    }

    /// How many times the core parked (for tests and statistics).
    pub fn parks(&self) -> u64 {
        self.parks
    }
}

impl Default for NoNetwork {
    fn default() -> NoNetwork {
        NoNetwork::new()
    }
}

impl fmt::Debug for NoNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoNetwork")
            .field("parks", &self.parks)
            .finish()
    }
}

impl IoDriver for NoNetwork {
    fn poll(&mut self, _now: StackInstant) -> bool {
        false
    }

    fn flush(&mut self, _now: StackInstant) -> bool {
        false
    }

    fn next_deadline(&self) -> Option<StackInstant> {
        None
    }

    fn has_input(&self) -> bool {
        false
    }

    fn park(&mut self, timeout: Option<Duration>) {
        self.parks += 1;
        match timeout {
            Some(d) => std::thread::park_timeout(d),
            None => std::thread::park(),
        }
    }

    fn unparker(&self) -> Unparker {
        let thread = self.thread.clone();
        Arc::new(move || thread.unpark())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

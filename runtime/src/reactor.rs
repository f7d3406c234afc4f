//! The per-core reactor loop: one thread, one [`Core`], one tick at a time.
//!
//! A tick, in the order of mTCP's `core.c` and DESIGN.md "One core, one
//! tick":
//!
//! 1. read `now` once;
//! 2. drain the core's inbox (cross-thread wakes, [`run_on`] closures,
//!    shutdown), bounded;
//! 3. `io.poll(now)`: RX burst, stack input and timers, flow-event wakes;
//! 4. fire the runtime's timers (the [wheel](crate::time::wheel));
//! 5. run ready tasks, the main future first, up to the task budget;
//! 6. `io.flush(now)`: TX lists and TX burst;
//! 7. when nothing happened: spin a few idle ticks, then park in
//!    `io.park(timeout)` until the earliest timer or driver deadline, or a
//!    cross-thread wake ([`IdlePolicy`]). With the clock paused
//!    ([`time::pause`](crate::time::pause)) and nothing pending anywhere,
//!    the clock first jumps to that deadline instead (auto-advance).
//!
//! [`run_on`]: crate::runtime::run_on

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant as StdInstant};

use crossbeam_channel::Receiver;
use mtcp_stack::time::Instant as StackInstant;

use crate::driver::{CoreId, DriverContext, DriverFactory, IoDriver, NoNetwork};
use crate::net::config::StackFactory;
use crate::net::driver::StackDriver;
use crate::task::executor::Executor;
use crate::task::waker::{self, CoreKey, Msg, Remote, TaskKey, REGISTRY};
use crate::time::wheel::{TimerKey, Wheel};
use crate::time::Clock;

/// Inbox messages handled per tick at most; the rest wait a tick.
const INBOX_BUDGET: usize = 1024;

/// Cheap readiness checks (inbox, device) between two idle ticks. An idle
/// tick reads the clock and looks at every timer list; these checks cost a
/// pause and a few loads each, so input is seen sooner and the clock is
/// read an order of magnitude less often while spinning. Timers are seen
/// at the next tick, at most this many checks (well under a microsecond
/// or two) late.
const IDLE_CHECKS: u32 = 32;

/// Flushes after the linger bound's resets, at most (each sends up to the
/// TX budget; the reply queue holds at most 1024 RSTs).
const FINAL_FLUSHES: usize = 64;

/// What a core does when a tick found no work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Never park: tick again at once (lowest latency, burns the core; for
    /// benchmarks).
    BusyPoll,
    /// Tick `spin` more times, then park until the next timer or driver
    /// deadline, input, or a cross-thread wake (the default, with
    /// `spin = 64`).
    Adaptive {
        /// Idle ticks before parking.
        spin: u32,
    },
}

impl Default for IdlePolicy {
    fn default() -> IdlePolicy {
        IdlePolicy::Adaptive { spin: 64 }
    }
}

/// A built runtime's settings, shared by its cores.
pub(crate) struct Config {
    pub(crate) cores: usize,
    pub(crate) idle: IdlePolicy,
    pub(crate) task_budget: usize,
    pub(crate) pin_threads: bool,
    pub(crate) first_cpu: usize,
    /// Cores start with their clock paused.
    pub(crate) start_paused: bool,
    pub(crate) io: IoSource,
    pub(crate) extra: Option<Arc<dyn Any + Send + Sync>>,
    /// How long a core keeps closing its connections after its run.
    pub(crate) shutdown_linger: Duration,
    /// Time zero of every run's clocks: the stacks outlive a run (they wait
    /// for the next one), so their time must not start over.
    pub(crate) epoch: std::time::Instant,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("cores", &self.cores)
            .field("idle", &self.idle)
            .field("task_budget", &self.task_budget)
            .field("shutdown_linger", &self.shutdown_linger)
            .finish_non_exhaustive()
    }
}

/// Where a built runtime's cores get their I/O.
pub(crate) enum IoSource {
    /// Each core builds its own stack over its queue of the device.
    Net(Arc<StackFactory>),
    /// A plug-in driver factory.
    Plugin(DriverFactory),
    /// [`NoNetwork`].
    None,
}

impl Config {
    /// Builds core `id`'s I/O, on its thread.
    pub(crate) fn make_io(&self, id: CoreId) -> io::Result<Io> {
        Ok(match &self.io {
            IoSource::Net(net) => Io::Stack(Box::new(net.build(id)?)),
            IoSource::Plugin(f) => Io::Plugin(f(&DriverContext::new(id, self.extra.clone()))?),
            IoSource::None => Io::Plugin(Box::new(NoNetwork::new())),
        })
    }
}

/// Everything one core owns. Lives in the core thread's thread-local
/// context while the loop runs.
pub(crate) struct Core {
    pub(crate) key: CoreKey,
    pub(crate) id: CoreId,
    pub(crate) exec: Executor,
    pub(crate) timers: RefCell<Wheel>,
    pub(crate) clock: Clock,
    /// The core's I/O: its own TCP/IP stack, or a plug-in driver.
    pub(crate) io: RefCell<Io>,
    pub(crate) remote: Arc<Remote>,
    inbox: Receiver<Msg>,
    /// Every core's inbox, by index (this one included); set once all cores
    /// have started.
    pub(crate) peers: RefCell<Arc<[Arc<Remote>]>>,
    pub(crate) shutdown: Shutdown,
    pub(crate) config: Arc<Config>,
    /// Wakers fired by the wheel this tick (capacity reused).
    fired: RefCell<Vec<Waker>>,
    stop: Cell<bool>,
    /// The millisecond the timer wheel was last advanced to.
    timers_ms: Cell<u64>,
    /// The current tick's time, as the stack sees it.
    pub(crate) tick_now: Cell<StackInstant>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("id", &self.id)
            .field("exec", &self.exec)
            .finish_non_exhaustive()
    }
}

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
}

/// A core's graceful shutdown signal.
#[derive(Debug, Default)]
pub(crate) struct Shutdown {
    pub(crate) requested: Cell<bool>,
    pub(crate) waiters: RefCell<Vec<Waker>>,
}

impl Shutdown {
    fn fire(&self) {
        self.requested.set(true);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
    }
}

impl Core {
    /// Builds core `id` on the calling thread: its driver (through the
    /// configured factory), inbox and registry entry.
    pub(crate) fn new(id: CoreId, config: Arc<Config>, epoch: StdInstant) -> std::io::Result<Core> {
        let io = config.make_io(id)?;
        let (remote, inbox) = Remote::new(io.driver_ref().unparker());
        let key = REGISTRY.register(remote.clone());
        let peers: Arc<[Arc<Remote>]> = Arc::from(vec![remote.clone()]);
        let clock = Clock::new(epoch);
        if config.start_paused {
            // A fresh clock runs: pausing it cannot fail.
            let _ = clock.pause();
        }
        Ok(Core {
            key,
            id,
            exec: Executor::new(key),
            timers: RefCell::new(Wheel::with_capacity(256)),
            clock,
            io: RefCell::new(io),
            remote,
            inbox,
            peers: RefCell::new(peers),
            shutdown: Shutdown::default(),
            config,
            fired: RefCell::new(Vec::with_capacity(64)),
            stop: Cell::new(false),
            timers_ms: Cell::new(0),
            tick_now: Cell::new(StackInstant::ZERO),
        })
    }

    /// Runs `f` on this core's stack with the tick's time: one borrow, no
    /// downcast.
    ///
    /// # Errors
    /// `Other` when the core has no stack (a runtime without a network
    /// device), or when the stack is busy: the call came from inside the
    /// stack's own `poll`/`flush` (a waker the stack fired that runs socket
    /// code at once, as a foreign executor's may).
    pub(crate) fn with_stack<R>(
        &self,
        f: impl FnOnce(&mut mtcp_stack::stack::Stack, StackInstant) -> R,
    ) -> std::io::Result<R> {
        let Ok(mut io) = self.io.try_borrow_mut() else {
            return Err(std::io::Error::other(
                "mtcp: socket call made while this core's stack is busy (from a waker the \
                 stack fired, run inside its poll); make socket calls from a task",
            ));
        };
        match &mut *io {
            Io::Stack(d) => match d.stack_mut() {
                Some(stack) => Ok(f(stack, self.tick_now.get())),
                None => Err(no_device()),
            },
            Io::Plugin(_) => Err(no_device()),
        }
    }

    /// Whether the stack (or plug-in driver) is borrowed now: the caller
    /// runs inside its `poll`, `flush` or `park`.
    pub(crate) fn stack_busy(&self) -> bool {
        self.io.try_borrow_mut().is_err()
    }

    /// Runs the loop until `main` completes (`linger == false`), or, with
    /// `linger`, until a `Stop` message after `main` completed (calling
    /// `on_main_done` once). Returns `None` if stopped before `main`
    /// completed.
    pub(crate) fn run<F: Future>(
        &self,
        main: F,
        linger: bool,
        on_main_done: &dyn Fn(),
    ) -> Option<F::Output> {
        let mut main = pin!(main);
        let mut output: Option<F::Output> = None;
        let main_waker = waker::waker(self.key, TaskKey::MAIN);
        let budget = self.config.task_budget;
        let mut idle_ticks: u32 = 0;
        loop {
            let now = self.clock.now();
            let stack_now = self.clock.stack_instant(now);
            self.tick_now.set(stack_now);

            let mut work = self.drain_inbox();
            if self.stop.get() {
                return output;
            }
            work |= self.io.borrow_mut().driver().poll(stack_now);
            work |= self.fire_timers(now) > 0;

            let mut polled = 0;
            // Always take the flag: a stale wake of a finished main future
            // must not keep the core from idling.
            let main_woken = self.exec.take_main_scheduled();
            if main_woken && output.is_none() {
                polled += 1;
                let mut cx = Context::from_waker(&main_waker);
                if let Poll::Ready(v) = main.as_mut().poll(&mut cx) {
                    if !linger {
                        return Some(v);
                    }
                    output = Some(v);
                    on_main_done();
                }
            }
            polled += self.exec.run(budget.saturating_sub(polled).max(1));
            work |= polled > 0;
            work |= self.io.borrow_mut().driver().flush(stack_now);

            if work || self.exec.has_ready() || self.auto_advance() {
                idle_ticks = 0;
                continue;
            }
            match self.config.idle {
                IdlePolicy::BusyPoll => self.idle_spin(),
                IdlePolicy::Adaptive { spin } => {
                    if idle_ticks < spin {
                        idle_ticks += 1;
                        self.idle_spin();
                    } else {
                        idle_ticks = 0;
                        self.park();
                    }
                }
            }
        }
    }

    /// Spins between two idle ticks until the inbox or the driver has
    /// something, at most [`IDLE_CHECKS`] times. Nothing on this core can
    /// make a task ready meanwhile: only another thread (inbox), the device
    /// or the passing of time can, and time is checked by the next tick.
    fn idle_spin(&self) {
        let io = self.io.borrow();
        let driver = io.driver_ref();
        for _ in 0..IDLE_CHECKS {
            std::hint::spin_loop();
            if !self.inbox.is_empty() || driver.has_input() {
                return;
            }
        }
    }

    /// Handles queued messages. Returns whether there were any.
    fn drain_inbox(&self) -> bool {
        self.remote.begin_drain();
        let mut n = 0;
        while n < INBOX_BUDGET {
            let Ok(msg) = self.inbox.try_recv() else {
                break;
            };
            n += 1;
            match msg {
                Msg::Wake(token) => {
                    let (core, task) = waker::untoken(token);
                    if core == self.key {
                        self.exec.schedule(task);
                    }
                }
                Msg::Run(f) => {
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
                        log::error!(
                            "mtcp: a run_on closure panicked on core {}: {}",
                            self.id.index(),
                            panic_message(&*payload)
                        );
                    }
                }
                Msg::CancelTimer(bits) => {
                    self.timers.borrow_mut().remove(TimerKey::from_bits(bits));
                }
                Msg::Shutdown => self.shutdown.fire(),
                Msg::Stop => {
                    self.stop.set(true);
                    self.shutdown.fire();
                    break;
                }
            }
        }
        n > 0
    }

    fn fire_timers(&self, now: StdInstant) -> usize {
        let now_ms = self.clock.now_ms(now);
        // The wheel has millisecond slots: within the millisecond it last
        // advanced to, nothing new can be due (a timer inserted at or before
        // the wheel's time is fired at insertion).
        if now_ms <= self.timers_ms.get() {
            return 0;
        }
        self.timers_ms.set(now_ms);
        let mut fired = self.fired.borrow_mut();
        let count = self.timers.borrow_mut().advance(now_ms, &mut fired);
        // Woken outside the wheel's borrow: a waker may be anyone's.
        for w in fired.drain(..) {
            w.wake();
        }
        count
    }

    /// The earliest deadline of the runtime's timers and the driver's.
    fn next_deadline(&self) -> Option<StdInstant> {
        let timer = self
            .timers
            .borrow()
            .next_deadline()
            .and_then(|ms| self.clock.instant_of_ms(ms));
        let io = self
            .io
            .borrow()
            .driver_ref()
            .next_deadline()
            .and_then(|t| self.clock.instant_of_stack(t));
        match (timer, io) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// tokio's auto-advance: with the clock paused and nothing left to do
    /// on this core (no work this tick, no task ready, no cross-thread wake
    /// queued, no input or output waiting in the driver, no blocking work
    /// running), the clock jumps to the next timer or driver deadline.
    /// Returns whether it did (the loop then ticks at once at the new time).
    /// Without a deadline the core parks as usual.
    fn auto_advance(&self) -> bool {
        if !self.clock.is_paused()
            || !self.clock.can_auto_advance()
            || !self.inbox.is_empty()
            || self.io.borrow().driver_ref().has_input()
        {
            return false;
        }
        match self.next_deadline() {
            Some(deadline) => self.clock.advance_to(deadline),
            None => false,
        }
    }

    /// After [`time::advance`](crate::time::advance) moved the paused clock
    /// (from a task): fires the timers now due, so their tasks run before
    /// the advancing task continues, and updates the tick's stack time.
    pub(crate) fn clock_advanced(&self) {
        let now = self.clock.now();
        self.tick_now.set(self.clock.stack_instant(now));
        self.fire_timers(now);
    }

    fn park(&self) {
        let deadline = self.next_deadline();
        let timeout = deadline.map(|d| d.saturating_duration_since(self.clock.now()));
        if timeout.is_some_and(|t| t.is_zero()) {
            return;
        }
        self.io.borrow_mut().driver().park(timeout);
    }

    /// Ends the core's run as a process exit ends on the kernel: finishes
    /// the tick (what tasks queued is sent), drops every task (their
    /// sockets close), closes every connection still open and keeps the
    /// stack running until all are done or the shutdown linger passes
    /// ([`close_connections`](Self::close_connections)); then stops the
    /// driver and leaves the registry. Called with the core still
    /// installed, so destructors can reach it. A panic of a task's
    /// destructor is resumed once the rest is done.
    pub(crate) fn teardown(&self) {
        let now = self.clock.stack_instant(StdInstant::now());
        self.tick_now.set(now);
        self.io.borrow_mut().driver().flush(now);
        let dropped = catch_unwind(AssertUnwindSafe(|| self.exec.shutdown()));
        let closed = catch_unwind(AssertUnwindSafe(|| self.close_connections()));
        // Tasks a `run_on` closure spawned while the connections closed.
        let dropped_late = catch_unwind(AssertUnwindSafe(|| self.exec.shutdown()));
        self.io.borrow_mut().driver().shutdown();
        REGISTRY.unregister(self.key);
        if let Err(p) = dropped.and(closed).and(dropped_late) {
            std::panic::resume_unwind(p);
        }
    }

    /// Closes every connection of the driver and runs it (inbox, input,
    /// timers, output) until all are done, or resets what is left at the
    /// linger bound (logged with the count). Bounded: by the linger, and
    /// each wait by the driver's next deadline.
    fn close_connections(&self) {
        let start = StdInstant::now();
        if self.io.borrow_mut().driver().close_all() == 0
            && self.io.borrow().driver_ref().closed_all()
        {
            return;
        }
        let linger = self.config.shutdown_linger;
        let deadline = start.checked_add(linger).unwrap_or(start);
        loop {
            let now = StdInstant::now();
            let stack_now = self.clock.stack_instant(now);
            self.tick_now.set(stack_now);
            // Closes sent by other threads (dropped sockets) still count.
            self.drain_inbox();
            let mut io = self.io.borrow_mut();
            let driver = io.driver();
            driver.poll(stack_now);
            driver.flush(stack_now);
            if driver.closed_all() {
                return;
            }
            if now >= deadline {
                let reset = driver.abort_closing();
                for _ in 0..FINAL_FLUSHES {
                    if driver.closed_all() {
                        break;
                    }
                    driver.flush(stack_now);
                }
                if reset > 0 {
                    log::warn!(
                        "mtcp: core {}: {reset} connection(s) still unfinished after the \
                         shutdown linger of {linger:?} were reset",
                        self.id.index()
                    );
                }
                return;
            }
            let wake = driver
                .next_deadline()
                .and_then(|t| self.clock.instant_of_stack(t))
                .map_or(deadline, |t| t.min(deadline));
            let timeout = wake.saturating_duration_since(StdInstant::now());
            if !timeout.is_zero() {
                driver.park(Some(timeout));
            }
        }
    }
}

/// A socket call on a core without a stack.
fn no_device() -> std::io::Error {
    std::io::Error::other(
        "mtcp: this runtime has no network device (build it with Builder::from_env() \
         or a network setting, or use #[mtcp::main])",
    )
}

/// The text of a panic payload, for log lines.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

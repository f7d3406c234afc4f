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
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant as StdInstant};

use crossbeam_channel::Receiver;
use mtcp_stack::time::Instant as StackInstant;

use crate::io_driver::{CoreId, DriverContext, DriverFactory, NoNetwork};
use crate::net::config::StackFactory;
use crate::net::current::{Io, NetCore};
use crate::task::current::TaskCore;
use crate::task::waker::{self, CoreKey, Msg, Remote, TaskKey, REGISTRY};
use crate::time::current::TimeCore;
use crate::time::wheel::TimerKey;
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

/// Everything one core owns. Each layer's part (tasks, time, I/O) is
/// installed in that layer's thread-local while the loop runs, and the
/// whole in [`context`](crate::context) for the runtime's own calls.
pub(crate) struct Core {
    pub(crate) key: CoreKey,
    pub(crate) id: CoreId,
    /// The executor.
    pub(crate) task: Rc<TaskCore>,
    /// The clock and the timer wheel.
    pub(crate) time: Rc<TimeCore>,
    /// The core's I/O: its own TCP/IP stack, or a plug-in driver.
    pub(crate) net: Rc<NetCore>,
    pub(crate) remote: Arc<Remote>,
    inbox: Receiver<Msg>,
    pub(crate) shutdown: Shutdown,
    pub(crate) config: Arc<Config>,
    stop: Cell<bool>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("id", &self.id)
            .field("exec", &self.task.exec)
            .finish_non_exhaustive()
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
        let clock = Clock::new(epoch);
        if config.start_paused {
            // A fresh clock runs: pausing it cannot fail.
            let _ = clock.pause();
        }
        let tick_now = Rc::new(Cell::new(StackInstant::ZERO));
        Ok(Core {
            key,
            id,
            task: Rc::new(TaskCore::new(key)),
            time: Rc::new(TimeCore::new(key, clock, tick_now.clone())),
            net: Rc::new(NetCore::new(id.index(), remote.clone(), io, tick_now)),
            remote,
            inbox,
            shutdown: Shutdown::default(),
            config,
            stop: Cell::new(false),
        })
    }

    /// The clock.
    fn clock(&self) -> &Clock {
        &self.time.clock
    }

    /// Runs the driver's `poll` (RX, protocol input and timers), then wakes
    /// what it made due, outside its borrow. Returns whether it did work.
    fn poll_io(&self, now: StackInstant) -> bool {
        let work = self.net.io.borrow_mut().driver().poll(now);
        self.net.wake_due();
        work
    }

    /// Runs the driver's `flush` (TX), then wakes what it made due.
    fn flush_io(&self, now: StackInstant) -> bool {
        let work = self.net.io.borrow_mut().driver().flush(now);
        self.net.wake_due();
        work
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
        let exec = &self.task.exec;
        let mut idle_ticks: u32 = 0;
        loop {
            let now = self.clock().now();
            let stack_now = self.time.begin_tick(now);

            let mut work = self.drain_inbox();
            if self.stop.get() {
                return output;
            }
            work |= self.poll_io(stack_now);
            work |= self.time.fire(now) > 0;

            let mut polled = 0;
            // Always take the flag: a stale wake of a finished main future
            // must not keep the core from idling.
            let main_woken = exec.take_main_scheduled();
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
            polled += exec.run(budget.saturating_sub(polled).max(1));
            work |= polled > 0;
            work |= self.flush_io(stack_now);

            if work || exec.has_ready() || self.auto_advance() {
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
        let io = self.net.io.borrow();
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
                        self.task.exec.schedule(task);
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
                Msg::CancelTimer(bits) => self.time.cancel(TimerKey::from_bits(bits)),
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

    /// The earliest deadline of the runtime's timers and the driver's.
    fn next_deadline(&self) -> Option<StdInstant> {
        let timer = self.time.next_deadline();
        let io = self
            .net
            .io
            .borrow()
            .driver_ref()
            .next_deadline()
            .and_then(|t| self.clock().instant_of_stack(t));
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
        if !self.clock().is_paused()
            || !self.task.no_blocking_work()
            || !self.inbox.is_empty()
            || self.net.io.borrow().driver_ref().has_input()
        {
            return false;
        }
        match self.next_deadline() {
            Some(deadline) => self.clock().advance_to(deadline),
            None => false,
        }
    }

    fn park(&self) {
        let deadline = self.next_deadline();
        let timeout = deadline.map(|d| d.saturating_duration_since(self.clock().now()));
        if timeout.is_some_and(|t| t.is_zero()) {
            return;
        }
        self.net.io.borrow_mut().driver().park(timeout);
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
        let now = self.time.begin_tick(StdInstant::now());
        self.flush_io(now);
        let dropped = catch_unwind(AssertUnwindSafe(|| self.task.exec.shutdown()));
        let closed = catch_unwind(AssertUnwindSafe(|| self.close_connections()));
        self.net.wake_due();
        // Tasks a `run_on` closure spawned while the connections closed.
        let dropped_late = catch_unwind(AssertUnwindSafe(|| self.task.exec.shutdown()));
        self.net.io.borrow_mut().driver().shutdown();
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
        let close_all = self.net.io.borrow_mut().driver().close_all();
        self.net.wake_due();
        if close_all == 0 && self.net.io.borrow().driver_ref().closed_all() {
            return;
        }
        let linger = self.config.shutdown_linger;
        let deadline = start.checked_add(linger).unwrap_or(start);
        loop {
            let now = StdInstant::now();
            let stack_now = self.time.begin_tick(now);
            // Closes sent by other threads (dropped sockets) still count.
            self.drain_inbox();
            {
                let mut io = self.net.io.borrow_mut();
                let driver = io.driver();
                driver.poll(stack_now);
                driver.flush(stack_now);
            }
            // What the inbox, `poll` and `flush` made due, before parking
            // (no task of this core is left, but a waker may be another
            // thread's).
            self.net.wake_due();
            let mut io = self.net.io.borrow_mut();
            let driver = io.driver();
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
                .and_then(|t| self.clock().instant_of_stack(t))
                .map_or(deadline, |t| t.min(deadline));
            let timeout = wake.saturating_duration_since(StdInstant::now());
            if !timeout.is_zero() {
                driver.park(Some(timeout));
            }
        }
    }
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

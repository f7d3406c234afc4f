//! The time layer's part of the current core: its clock, its timer wheel
//! and the tick's stack time, reached by `sleep`, `Instant::now` and the
//! reactor's timer step (see [`task::current`](crate::task::current) for
//! why each layer keeps its own part).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::Waker;
use std::time::Instant as StdInstant;

use mtcp_stack::time::Instant as StackInstant;

use super::wheel::{TimerKey, Wheel};
use super::Clock;
use crate::core_local::{self, Installed, Slot};
use crate::task::waker::CoreKey;

/// What the time layer owns of one core.
#[derive(Debug)]
pub(crate) struct TimeCore {
    /// The core's key, so a sleep knows whose wheel holds its timer.
    pub(crate) key: CoreKey,
    pub(crate) clock: Clock,
    pub(crate) timers: RefCell<Wheel>,
    /// The current tick's time as the stack sees it; shared with the net
    /// layer, which passes it to every socket call.
    tick_now: Rc<Cell<StackInstant>>,
    /// Wakers fired by the wheel this tick (capacity reused).
    fired: RefCell<Vec<Waker>>,
    /// The millisecond the wheel was last advanced to.
    timers_ms: Cell<u64>,
}

impl TimeCore {
    /// A core's time on `clock`; `tick_now` is the cell the net layer reads.
    pub(crate) fn new(key: CoreKey, clock: Clock, tick_now: Rc<Cell<StackInstant>>) -> TimeCore {
        TimeCore {
            key,
            clock,
            timers: RefCell::new(Wheel::with_capacity(256)),
            tick_now,
            fired: RefCell::new(Vec::with_capacity(64)),
            timers_ms: Cell::new(0),
        }
    }

    /// Starts a tick at `now`: sets the tick's stack time. Returns it.
    pub(crate) fn begin_tick(&self, now: StdInstant) -> StackInstant {
        let t = self.clock.stack_instant(now);
        self.tick_now.set(t);
        t
    }

    /// The current tick's stack time.
    pub(crate) fn tick_now(&self) -> StackInstant {
        self.tick_now.get()
    }

    /// Fires the timers due at `now`; returns how many fired.
    pub(crate) fn fire(&self, now: StdInstant) -> usize {
        let now_ms = self.clock.now_ms(now);
        // The wheel has millisecond slots: within the millisecond it last
        // advanced to, nothing new can be due (a timer inserted at or before
        // the wheel's time is fired at insertion).
        if now_ms <= self.timers_ms.get() {
            return 0;
        }
        self.timers_ms.set(now_ms);
        // Taken out, so a waker that comes back here (a foreign waker that
        // advances paused time, say) finds neither the wheel nor this
        // buffer borrowed.
        let mut fired = self.fired.take();
        let count = self.timers.borrow_mut().advance(now_ms, &mut fired);
        for w in fired.drain(..) {
            w.wake();
        }
        // Keep the buffer with the larger capacity for the next tick.
        let mut slot = self.fired.borrow_mut();
        if slot.capacity() < fired.capacity() {
            *slot = fired;
        }
        count
    }

    /// The earliest timer's deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<StdInstant> {
        self.timers
            .borrow()
            .next_deadline()
            .and_then(|ms| self.clock.instant_of_ms(ms))
    }

    /// Cancels a timer another thread dropped (`Msg::CancelTimer`).
    pub(crate) fn cancel(&self, key: TimerKey) {
        self.timers.borrow_mut().remove(key);
    }

    /// After [`time::advance`](crate::time::advance) moved the paused clock
    /// (from a task): fires the timers now due, so their tasks run before
    /// the advancing task continues, and updates the tick's stack time.
    pub(crate) fn clock_advanced(&self) {
        let now = self.clock.now();
        self.begin_tick(now);
        self.fire(now);
    }
}

thread_local! {
    static CURRENT: Slot<TimeCore> = const { RefCell::new(None) };
}

/// Runs `f` with the current core's time part, or returns `None` off a
/// runtime thread.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&TimeCore) -> R) -> Option<R> {
    core_local::with(&CURRENT, f)
}

/// Like [`with_current`], panicking with a message naming `what` off a
/// runtime thread.
#[track_caller]
pub(crate) fn expect_current<R>(what: &str, f: impl FnOnce(&TimeCore) -> R) -> R {
    core_local::expect(&CURRENT, what, f)
}

/// Installs `core` as the current thread's until the guard drops.
pub(crate) fn enter(core: Rc<TimeCore>) -> Installed<TimeCore> {
    core_local::install(&CURRENT, core)
}

/// The current tick's time as the stack sees it (microseconds since the
/// runtime's start), read once per tick; `None` off a runtime thread.
///
/// Socket calls made from a task pass this to the stack, so every decision
/// in one tick uses the same clock reading.
pub fn tick_now() -> Option<StackInstant> {
    with_current(TimeCore::tick_now)
}

/// Converts a [`time::Instant`](crate::time::Instant) to the stack's time
/// base (saturating at the runtime's start); `None` off a runtime thread.
pub fn to_stack_instant(t: super::Instant) -> Option<StackInstant> {
    with_current(|core| core.clock.stack_instant(t.into_std()))
}

/// Converts a stack instant to a [`time::Instant`](crate::time::Instant);
/// `None` off a runtime thread.
pub fn from_stack_instant(t: StackInstant) -> Option<super::Instant> {
    with_current(|core| core.clock.instant_of_stack(t))
        .flatten()
        .map(super::Instant::from_std)
}

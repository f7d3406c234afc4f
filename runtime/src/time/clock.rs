//! A core's clock: the runtime's epoch, the core's (pausable) time, and
//! conversions to wheel and stack time.
//!
//! The clock runs with the system's monotonic clock until it is paused
//! ([`pause`](crate::time::pause)); then its time only moves when a task
//! calls [`advance`](crate::time::advance) or when the reactor
//! auto-advances it to the next timer because the core has nothing else to
//! do. Resuming lets it run again from where it stood, so it never goes
//! back. Every core has its own clock: pausing is per core.

use std::cell::Cell;
use std::time::{Duration, Instant as StdInstant};

use mtcp_stack::time::Instant as StackInstant;

/// Why a pause, resume or advance was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ClockError {
    AlreadyPaused,
    NotPaused,
    Overflow,
}

impl ClockError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            ClockError::AlreadyPaused => "time is already frozen",
            ClockError::NotPaused => "time is not frozen",
            ClockError::Overflow => "the advanced time overflows Instant",
        }
    }
}

/// One core's clock, on the epoch every core of a runtime shares.
#[derive(Debug)]
pub(crate) struct Clock {
    epoch: StdInstant,
    /// The clock's time at `unfrozen` (or for good, while paused).
    base: Cell<StdInstant>,
    /// The system time the clock last started running at; `None` while
    /// paused.
    unfrozen: Cell<Option<StdInstant>>,
}

impl Clock {
    /// A running clock that reads the system's time.
    pub(crate) fn new(epoch: StdInstant) -> Clock {
        Clock {
            epoch,
            base: Cell::new(epoch),
            unfrozen: Cell::new(Some(epoch)),
        }
    }

    /// The clock's time.
    pub(crate) fn now(&self) -> StdInstant {
        match self.unfrozen.get() {
            Some(since) => self.base.get() + since.elapsed(),
            None => self.base.get(),
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.unfrozen.get().is_none()
    }

    /// Freezes the clock at its current time, rounded up to the timer
    /// wheel's next millisecond: whole-millisecond sleeps and advances then
    /// land exactly on timer deadlines (`sleep(d)` ends `d` after it began,
    /// to the nanosecond), as with tokio.
    pub(crate) fn pause(&self) -> Result<(), ClockError> {
        if self.is_paused() {
            return Err(ClockError::AlreadyPaused);
        }
        let now = self.now();
        let aligned = self
            .instant_of_ms(self.deadline_ms(now))
            .map_or(now, |t| t.max(now));
        self.base.set(aligned);
        self.unfrozen.set(None);
        Ok(())
    }

    /// Lets a paused clock run again from its current time.
    pub(crate) fn resume(&self) -> Result<(), ClockError> {
        if !self.is_paused() {
            return Err(ClockError::NotPaused);
        }
        self.unfrozen.set(Some(StdInstant::now()));
        Ok(())
    }

    /// Moves a paused clock forward by `by`.
    pub(crate) fn advance(&self, by: Duration) -> Result<(), ClockError> {
        if !self.is_paused() {
            return Err(ClockError::NotPaused);
        }
        let to = self
            .base
            .get()
            .checked_add(by)
            .ok_or(ClockError::Overflow)?;
        self.base.set(to);
        Ok(())
    }

    /// Moves a paused clock forward to `to` (never back). Returns whether
    /// it moved.
    pub(crate) fn advance_to(&self, to: StdInstant) -> bool {
        if !self.is_paused() || to <= self.base.get() {
            return false;
        }
        self.base.set(to);
        true
    }

    /// Wheel time of a deadline: milliseconds since the epoch, rounded up so
    /// a timer never fires early.
    pub(crate) fn deadline_ms(&self, deadline: StdInstant) -> u64 {
        let nanos = deadline.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    /// Wheel time of `now`: milliseconds since the epoch, rounded down.
    pub(crate) fn now_ms(&self, now: StdInstant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The instant at wheel time `ms`.
    pub(crate) fn instant_of_ms(&self, ms: u64) -> Option<StdInstant> {
        self.epoch.checked_add(Duration::from_millis(ms))
    }

    /// `now` as the stack sees it: microseconds since the epoch.
    pub(crate) fn stack_instant(&self, now: StdInstant) -> StackInstant {
        let micros = now.saturating_duration_since(self.epoch).as_micros();
        StackInstant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// The std instant of a stack instant.
    pub(crate) fn instant_of_stack(&self, t: StackInstant) -> Option<StdInstant> {
        self.epoch
            .checked_add(Duration::from_micros(t.total_micros()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_never_fires_early() {
        let epoch = StdInstant::now();
        let clock = Clock::new(epoch);
        let t = epoch + Duration::from_micros(2_500);
        assert_eq!(clock.deadline_ms(t), 3);
        assert_eq!(clock.now_ms(t), 2);
        assert_eq!(clock.deadline_ms(epoch + Duration::from_millis(4)), 4);
        assert_eq!(clock.stack_instant(t).total_micros(), 2_500);
        assert_eq!(
            clock.instant_of_stack(StackInstant::from_millis(7)),
            Some(epoch + Duration::from_millis(7))
        );
        assert_eq!(
            clock.instant_of_ms(3),
            Some(epoch + Duration::from_millis(3))
        );
        assert_eq!(clock.deadline_ms(epoch), 0);
    }

    #[test]
    fn running_clock_follows_the_system() {
        let clock = Clock::new(StdInstant::now());
        let before = StdInstant::now();
        let now = clock.now();
        assert!(now >= before && now <= StdInstant::now());
        assert!(!clock.is_paused());
        assert_eq!(
            clock.advance(Duration::from_secs(1)),
            Err(ClockError::NotPaused)
        );
        assert_eq!(clock.resume(), Err(ClockError::NotPaused));
        assert!(!clock.advance_to(now + Duration::from_secs(1)));
    }

    #[test]
    fn paused_clock_moves_only_when_advanced() {
        let clock = Clock::new(StdInstant::now());
        let before = clock.now();
        clock.pause().unwrap();
        assert_eq!(clock.pause(), Err(ClockError::AlreadyPaused));
        let frozen = clock.now();
        // Frozen on the wheel's millisecond grid, never earlier.
        assert!(frozen >= before && frozen - before < Duration::from_millis(1));
        assert_eq!(clock.instant_of_ms(clock.now_ms(frozen)), Some(frozen));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.now(), frozen);
        clock.advance(Duration::from_secs(3600)).unwrap();
        assert_eq!(clock.now(), frozen + Duration::from_secs(3600));
        // advance_to never goes back.
        assert!(!clock.advance_to(frozen));
        assert!(clock.advance_to(frozen + Duration::from_secs(3601)));
        assert_eq!(clock.now(), frozen + Duration::from_secs(3601));
        assert_eq!(clock.advance(Duration::MAX), Err(ClockError::Overflow));
    }

    #[test]
    fn resume_continues_from_the_paused_time() {
        let clock = Clock::new(StdInstant::now());
        clock.pause().unwrap();
        let frozen = clock.now();
        std::thread::sleep(Duration::from_millis(5));
        clock.resume().unwrap();
        let after = clock.now();
        // Time lost while paused is not caught up: the clock runs on from
        // where it stood, without jumping.
        assert!(after >= frozen && after < frozen + Duration::from_millis(5));
        clock.pause().unwrap();
        clock.advance(Duration::from_secs(10)).unwrap();
        clock.resume().unwrap();
        assert!(clock.now() >= frozen + Duration::from_secs(10));
    }
}

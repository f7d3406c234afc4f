//! A core's clock: the runtime's epoch and conversions to wheel and stack
//! time.

use std::time::{Duration, Instant as StdInstant};

use mtcp_stack::time::Instant as StackInstant;

/// The epoch every core of a runtime shares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: StdInstant,
}

impl Clock {
    pub(crate) fn new(epoch: StdInstant) -> Clock {
        Clock { epoch }
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
}

//! Round-trip time estimation and the retransmission timeout (RFC 6298).
//!
//! [`RttEstimator`] keeps SRTT and RTTVAR and turns them into an RTO with
//! exponential backoff. It takes samples; deciding *which* measurements are
//! valid samples is the caller's job (Karn's algorithm, RFC 6298 §3). Two
//! helpers make that easy:
//!
//! - [`RttSampler`] times one segment at a time and forgets the measurement
//!   when anything is retransmitted (Karn), for connections without
//!   timestamps;
//! - [`RttEstimator::sample_from_echo`] takes a sample from a TCP timestamp
//!   echo (RFC 7323 §4.1), which is unambiguous even after retransmissions.
//!
//! Minimum RTO: RFC 6298 (2.4) says the RTO SHOULD be rounded up to 1 second.
//! Like Linux (`TCP_RTO_MIN`, 200 ms) we make the minimum configurable and
//! default to 200 ms, which suits data-centre and LAN round-trip times; pass
//! `Duration::from_secs(1)` as `min_rto` for the RFC's conservative value.

use crate::time::{Duration, Instant};
use crate::wire::SeqNumber;

/// RFC 6298 (2.1): the RTO before any RTT sample, 1 second.
pub(crate) const DEFAULT_INITIAL_RTO: Duration = Duration::from_secs(1);
/// Lower bound on the RTO: 200 ms, as Linux (see the module docs for the
/// RFC's 1 s).
pub(crate) const DEFAULT_MIN_RTO: Duration = Duration::from_millis(200);
/// RFC 6298 (2.5): an upper bound of at least 60 seconds may be placed on
/// the RTO.
pub(crate) const DEFAULT_MAX_RTO: Duration = Duration::from_secs(60);
/// Clock granularity G in RFC 6298 (2.2)/(2.3): our timer wheel ticks in
/// milliseconds.
pub(crate) const CLOCK_GRANULARITY: Duration = Duration::from_millis(1);

/// RFC 6298 SRTT/RTTVAR/RTO state, with exponential backoff (§5.5).
///
/// Values are held in microseconds, as `u32` (a connection keeps one
/// estimator: 24 bytes where `u64`s took 56), so every value saturates at
/// [`MAX_MICROS`] (about 71 minutes, far above any RTO bound in use).
/// RTO always lies in `[min_rto, max_rto]`, backoff included.
///
/// # Examples
///
/// ```ignore
/// use mtcp_stack::tcp::rtt::RttEstimator;
/// use mtcp_stack::time::Duration;
///
/// let mut est = RttEstimator::default();
/// assert_eq!(est.rto(), Duration::from_secs(1));
/// est.sample(Duration::from_millis(100));
/// // SRTT = 100 ms, RTTVAR = 50 ms, RTO = 100 + 4 * 50 = 300 ms.
/// assert_eq!(est.rto(), Duration::from_millis(300));
/// est.backoff();
/// assert_eq!(est.rto(), Duration::from_millis(600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RttEstimator {
    /// SRTT in µs; [`NO_SAMPLE`] until the first sample.
    srtt: u32,
    /// RTTVAR in µs.
    rttvar: u32,
    /// The RTO computed from SRTT/RTTVAR (or the initial RTO), clamped, µs.
    base_rto: u32,
    min_rto: u32,
    max_rto: u32,
    /// How many times the RTO has been doubled since the last sample/reset.
    backoff_shift: u8,
}

/// The largest value an estimator holds, in µs; longer durations saturate.
pub(crate) const MAX_MICROS: u32 = u32::MAX - 1;

/// `srtt` before the first sample.
const NO_SAMPLE: u32 = u32::MAX;

impl Default for RttEstimator {
    /// 1 s initial, 200 ms minimum, 60 s maximum.
    fn default() -> RttEstimator {
        RttEstimator::new(DEFAULT_INITIAL_RTO, DEFAULT_MIN_RTO, DEFAULT_MAX_RTO)
    }
}

/// `d` in µs, saturated at [`MAX_MICROS`].
fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).map_or(MAX_MICROS, |us| us.min(MAX_MICROS))
}

impl RttEstimator {
    /// An estimator with no samples yet: `rto()` is `initial_rto` (clamped to
    /// `[min_rto, max_rto]`).
    ///
    /// A `max_rto` below `min_rto` is raised to `min_rto`.
    pub(crate) fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> RttEstimator {
        let min_rto = micros(min_rto);
        let max_rto = micros(max_rto).max(min_rto);
        RttEstimator {
            srtt: NO_SAMPLE,
            rttvar: 0,
            base_rto: micros(initial_rto).clamp(min_rto, max_rto),
            min_rto,
            max_rto,
            backoff_shift: 0,
        }
    }

    /// Feeds one RTT measurement `r` (RFC 6298 (2.2) and (2.3)).
    ///
    /// First sample: SRTT = R, RTTVAR = R/2. Later samples:
    /// RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R'| (with the old SRTT), then
    /// SRTT = 7/8 SRTT + 1/8 R'. Then RTO = SRTT + max(G, 4 RTTVAR), clamped.
    ///
    /// A fresh sample means the path answers again, so the backoff is
    /// cleared: the RTO is recomputed from the new estimate (RFC 6298 §5,
    /// note after (5.7)).
    pub(crate) fn sample(&mut self, rtt: Duration) {
        let r = micros(rtt);
        if self.srtt == NO_SAMPLE {
            self.srtt = r;
            self.rttvar = r / 2;
        } else {
            let srtt = u64::from(self.srtt);
            let delta = srtt.abs_diff(u64::from(r));
            // Integer forms of beta = 1/4 and alpha = 1/8, in u64 (both
            // results are below MAX_MICROS, as their inputs are).
            self.rttvar = ((3 * u64::from(self.rttvar) + delta) / 4) as u32;
            self.srtt = ((7 * srtt + u64::from(r)) / 8) as u32;
        }
        let var_term = self.rttvar.saturating_mul(4).max(micros(CLOCK_GRANULARITY));
        self.base_rto = self
            .srtt
            .saturating_add(var_term)
            .clamp(self.min_rto, self.max_rto);
        self.backoff_shift = 0;
    }

    /// Takes a sample from a timestamp echo (RFC 7323 §4.1): `tsecr_sent` is
    /// the instant at which we sent the TSval that the peer echoed in TSecr.
    /// Returns the sample taken, or `None` (and changes nothing) when the
    /// echo lies in the future, which only a bogus or corrupt echo can do.
    ///
    /// Valid for every ACK that advances SND.UNA, retransmitted or not.
    #[cfg(test)]
    pub(crate) fn sample_from_echo(
        &mut self,
        now: Instant,
        tsecr_sent: Instant,
    ) -> Option<Duration> {
        if tsecr_sent > now {
            return None;
        }
        let rtt = now - tsecr_sent;
        self.sample(rtt);
        Some(rtt)
    }

    /// The current retransmission timeout, backoff included, within
    /// `[min_rto, max_rto]`.
    pub(crate) fn rto(&self) -> Duration {
        let rto = if self.backoff_shift >= 32 {
            self.max_rto
        } else {
            self.base_rto
                .saturating_mul(1u32 << self.backoff_shift)
                .min(self.max_rto)
        };
        Duration::from_micros(u64::from(rto))
    }

    /// Doubles the RTO after a retransmission timeout (RFC 6298 (5.5)),
    /// capped at `max_rto`.
    pub(crate) fn backoff(&mut self) {
        if self.rto() < Duration::from_micros(u64::from(self.max_rto)) {
            self.backoff_shift = self.backoff_shift.saturating_add(1);
        }
    }

    /// Number of doublings currently applied.
    #[cfg(test)]
    pub(crate) fn backoff_count(&self) -> u32 {
        u32::from(self.backoff_shift)
    }

    /// Forgets the backoff (e.g. when new data is acknowledged), keeping
    /// SRTT and RTTVAR.
    pub(crate) fn reset_backoff(&mut self) {
        self.backoff_shift = 0;
    }

    /// The smoothed RTT, or `None` before the first sample.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.has_sample()
            .then(|| Duration::from_micros(u64::from(self.srtt)))
    }

    /// The RTT variation (zero before the first sample).
    #[cfg(test)]
    pub(crate) fn rttvar(&self) -> Duration {
        Duration::from_micros(u64::from(self.rttvar))
    }

    /// Whether at least one sample has been taken.
    pub(crate) fn has_sample(&self) -> bool {
        self.srtt != NO_SAMPLE
    }
}

/// Times one segment at a time for connections without timestamps, and
/// applies Karn's algorithm (RFC 6298 §3): a retransmission invalidates the
/// measurement in progress.
///
/// The caller starts timing when it sends new data (if nothing is being
/// timed), calls [`on_retransmit`](Self::on_retransmit) whenever it
/// retransmits anything, and passes every advancing ACK to
/// [`on_ack`](Self::on_ack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RttSampler {
    /// The sequence number an ACK must reach.
    end: SeqNumber,
    /// When the timed segment was sent, in µs; [`NOT_TIMING`] when nothing
    /// is timed (16 bytes, where an `Option` of the pair took 24).
    sent: u64,
}

/// `RttSampler::sent` while nothing is timed.
const NOT_TIMING: u64 = u64::MAX;

impl Default for RttSampler {
    fn default() -> RttSampler {
        RttSampler::new()
    }
}

impl RttSampler {
    /// A sampler timing nothing.
    pub(crate) const fn new() -> RttSampler {
        RttSampler {
            end: SeqNumber(0),
            sent: NOT_TIMING,
        }
    }

    /// Starts timing the segment that ends just before `end` (its sequence
    /// number plus its length, SYN and FIN counted), sent at `now`. Does
    /// nothing when a segment is already being timed (one at a time, as
    /// RFC 6298 §3 allows). Returns whether timing started.
    pub(crate) fn start(&mut self, end: SeqNumber, now: Instant) -> bool {
        if self.sent != NOT_TIMING {
            return false;
        }
        self.end = end;
        // An instant is never u64::MAX µs (585 000 years).
        self.sent = now.total_micros().min(NOT_TIMING - 1);
        true
    }

    /// Whether a segment is being timed.
    #[cfg(test)]
    pub(crate) fn is_timing(&self) -> bool {
        self.sent != NOT_TIMING
    }

    /// Karn's algorithm: something was retransmitted, so an ACK can no
    /// longer be attributed to the original transmission; drop the timing.
    pub(crate) fn on_retransmit(&mut self) {
        self.sent = NOT_TIMING;
    }

    /// An ACK acknowledging everything below `ack` arrived at `now`. When it
    /// covers the timed segment (`ack >= end`), returns the RTT sample and
    /// stops timing.
    pub(crate) fn on_ack(&mut self, ack: SeqNumber, now: Instant) -> Option<Duration> {
        if self.sent == NOT_TIMING {
            return None;
        }
        if ack >= self.end {
            let sent = Instant::from_micros(self.sent);
            self.sent = NOT_TIMING;
            Some(now - sent)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    mod estimator {
        use super::*;

        #[test]
        fn initial_rto_before_samples() {
            let est = RttEstimator::default();
            assert_eq!(est.rto(), ms(1000));
            assert_eq!(est.srtt(), None);
            assert_eq!(est.rttvar(), Duration::ZERO);
            assert!(!est.has_sample());
        }

        #[test]
        fn initial_rto_is_clamped() {
            let est = RttEstimator::new(ms(10), ms(200), ms(60_000));
            assert_eq!(est.rto(), ms(200));
            let est = RttEstimator::new(ms(100_000), ms(200), ms(60_000));
            assert_eq!(est.rto(), ms(60_000));
        }

        #[test]
        fn first_sample_sets_srtt_and_half_rttvar() {
            let mut est = RttEstimator::default();
            est.sample(ms(100));
            assert_eq!(est.srtt(), Some(ms(100)));
            assert_eq!(est.rttvar(), ms(50));
            assert_eq!(est.rto(), ms(300));
        }

        #[test]
        fn subsequent_samples_use_alpha_and_beta() {
            let mut est = RttEstimator::default();
            est.sample(ms(100));
            est.sample(ms(200));
            // RTTVAR = 3/4*50 + 1/4*|100-200| = 37.5 + 25 = 62.5 ms
            // SRTT = 7/8*100 + 1/8*200 = 112.5 ms
            assert_eq!(est.rttvar(), Duration::from_micros(62_500));
            assert_eq!(est.srtt(), Some(Duration::from_micros(112_500)));
            // RTO = 112.5 + 250 = 362.5 ms
            assert_eq!(est.rto(), Duration::from_micros(362_500));
        }

        #[test]
        fn steady_samples_converge() {
            let mut est = RttEstimator::new(ms(1000), ms(1), ms(60_000));
            for _ in 0..200 {
                est.sample(ms(50));
            }
            assert_eq!(est.srtt(), Some(ms(50)));
            assert!(est.rttvar() < Duration::from_micros(10));
            // Variance vanished: RTO = SRTT + G.
            assert!(est.rto() >= ms(51) && est.rto() < ms(52));
        }

        #[test]
        fn granularity_floor_applies() {
            let mut est = RttEstimator::new(ms(1000), Duration::ZERO, ms(60_000));
            est.sample(Duration::ZERO);
            assert_eq!(est.rto(), CLOCK_GRANULARITY);
        }

        #[test]
        fn min_rto_applies() {
            let mut est = RttEstimator::default();
            est.sample(ms(1));
            assert_eq!(est.rto(), DEFAULT_MIN_RTO);
            let mut rfc = RttEstimator::new(ms(1000), ms(1000), ms(60_000));
            rfc.sample(ms(1));
            assert_eq!(rfc.rto(), ms(1000));
        }

        #[test]
        fn max_rto_applies_to_samples() {
            let mut est = RttEstimator::default();
            est.sample(Duration::from_secs(100));
            assert_eq!(est.rto(), DEFAULT_MAX_RTO);
        }

        #[test]
        fn backoff_doubles_and_caps() {
            let mut est = RttEstimator::default();
            est.sample(ms(100));
            let expected = [600, 1200, 2400, 4800, 9600, 19_200, 38_400, 60_000, 60_000];
            for want in expected {
                est.backoff();
                assert_eq!(est.rto(), ms(want));
            }
            // The shift stops growing once capped.
            assert_eq!(est.backoff_count(), 8);
            for _ in 0..1000 {
                est.backoff();
            }
            assert_eq!(est.rto(), ms(60_000));
        }

        #[test]
        fn reset_backoff_restores_base() {
            let mut est = RttEstimator::default();
            est.sample(ms(100));
            est.backoff();
            est.backoff();
            assert_eq!(est.rto(), ms(1200));
            est.reset_backoff();
            assert_eq!(est.rto(), ms(300));
            assert_eq!(est.srtt(), Some(ms(100)));
        }

        #[test]
        fn sample_clears_backoff() {
            let mut est = RttEstimator::default();
            est.backoff();
            assert_eq!(est.rto(), ms(2000));
            est.sample(ms(100));
            assert_eq!(est.rto(), ms(300));
            assert_eq!(est.backoff_count(), 0);
        }

        #[test]
        fn sample_from_echo_measures_and_rejects_future() {
            let mut est = RttEstimator::default();
            let got = est.sample_from_echo(Instant::from_millis(1080), Instant::from_millis(1000));
            assert_eq!(got, Some(ms(80)));
            assert_eq!(est.srtt(), Some(ms(80)));
            let before = est;
            assert_eq!(
                est.sample_from_echo(Instant::from_millis(5), Instant::from_millis(6)),
                None
            );
            assert_eq!(est, before);
        }

        #[test]
        fn huge_values_do_not_overflow() {
            let mut est = RttEstimator::new(Duration::MAX, Duration::ZERO, Duration::MAX);
            est.sample(Duration::MAX);
            est.sample(Duration::ZERO);
            est.sample(Duration::MAX);
            for _ in 0..100 {
                est.backoff();
            }
            let _ = est.rto();
        }

        #[test]
        fn durations_beyond_the_u32_range_saturate() {
            let long = Duration::from_secs(10_000);
            let mut est = RttEstimator::new(long, ms(200), long);
            let top = Duration::from_micros(u64::from(MAX_MICROS));
            assert_eq!(est.rto(), top);
            est.sample(long);
            assert_eq!(est.srtt(), Some(top));
            assert_eq!(est.rto(), top);
            est.backoff();
            assert_eq!(est.backoff_count(), 0, "already at max_rto");
        }

        #[test]
        fn max_below_min_is_raised() {
            let est = RttEstimator::new(ms(1000), ms(500), ms(100));
            assert_eq!(est.rto(), ms(500));
        }
    }

    mod sampler {
        use super::*;

        #[test]
        fn times_one_segment() {
            let mut s = RttSampler::new();
            assert!(s.start(SeqNumber(1100), Instant::from_millis(10)));
            // A second segment is not timed while the first is.
            assert!(!s.start(SeqNumber(2200), Instant::from_millis(11)));
            assert_eq!(s.on_ack(SeqNumber(1000), Instant::from_millis(20)), None);
            assert!(s.is_timing());
            assert_eq!(
                s.on_ack(SeqNumber(1100), Instant::from_millis(60)),
                Some(ms(50))
            );
            assert!(!s.is_timing());
            assert_eq!(s.on_ack(SeqNumber(2200), Instant::from_millis(70)), None);
        }

        #[test]
        fn ack_beyond_end_samples() {
            let mut s = RttSampler::new();
            s.start(SeqNumber(100), Instant::from_millis(0));
            assert_eq!(
                s.on_ack(SeqNumber(5000), Instant::from_millis(30)),
                Some(ms(30))
            );
        }

        #[test]
        fn karn_retransmit_invalidates() {
            let mut s = RttSampler::new();
            s.start(SeqNumber(100), Instant::from_millis(0));
            s.on_retransmit();
            assert_eq!(s.on_ack(SeqNumber(100), Instant::from_millis(30)), None);
            // Timing can start again afterwards.
            assert!(s.start(SeqNumber(200), Instant::from_millis(40)));
            assert_eq!(
                s.on_ack(SeqNumber(200), Instant::from_millis(45)),
                Some(ms(5))
            );
        }

        #[test]
        fn works_across_sequence_wrap() {
            let mut s = RttSampler::new();
            s.start(SeqNumber(5), Instant::from_millis(0));
            assert_eq!(
                s.on_ack(SeqNumber(u32::MAX - 10), Instant::from_millis(1)),
                None
            );
            assert_eq!(s.on_ack(SeqNumber(5), Instant::from_millis(2)), Some(ms(2)));
        }
    }
}

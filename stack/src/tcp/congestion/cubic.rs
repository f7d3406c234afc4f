//! CUBIC's own rules (RFC 9438): window growth in congestion avoidance
//! follows the cubic function of the time since the last congestion event,
//!
//! ```text
//! W_cubic(t) = C * (t - K)^3 + W_max          (§4.2, eq. 1)
//! K          = cbrt((W_max - cwnd_epoch) / C)  (§4.2, eq. 2)
//! ```
//!
//! concave below W_max and convex above it, never slower than the
//! Reno-friendly estimate `W_est` (§4.3); a loss multiplies the window by
//! `beta_cubic` = 0.7 (§4.6) and, with fast convergence (§4.7), lowers W_max
//! further when the window had not recovered to the previous W_max.
//!
//! Windows inside this module are in segments (f64), as in the RFC; the
//! shared [`super::Congestion`] keeps cwnd in bytes. The state is held by
//! every connection, so what needs no `f64` is stored narrower: the epoch
//! start as µs with a sentinel, the RTT as `u32` µs, the window before the
//! last reduction (only compared with) and the carried byte fraction as
//! `f32`s (64 bytes in all, where it took 96). Slow start, fast
//! recovery bookkeeping and the RTO collapse are shared with NewReno.
//! HyStart and spurious-loss undo are not implemented.

use crate::time::{Duration, Instant};

/// RFC 9438 §5.1: the scaling constant C (segments / s^3).
pub(crate) const C: f64 = 0.4;
/// RFC 9438 §4.6: the multiplicative decrease factor beta_cubic.
pub(crate) const BETA: f64 = 0.7;
/// RFC 9438 §4.3: alpha_cubic = 3 * (1 - beta) / (1 + beta), the additive
/// increase that makes the Reno-friendly estimate as aggressive as Reno
/// with beta = 0.5.
pub(crate) const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);

/// The RTT assumed before the caller passes one (RFC 6298's initial RTO
/// would be too pessimistic for the `t + RTT` look-ahead; 100 ms is a
/// middle ground).
const DEFAULT_RTT: Duration = Duration::from_millis(100);

/// CUBIC state (RFC 9438 §4.1 variables).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cubic {
    fast_convergence: bool,
    /// W_max: the window (segments) just before the last reduction,
    /// possibly lowered by fast convergence.
    w_max: f64,
    /// cwnd_prior: the window just before the last reduction.
    cwnd_prior: f32,
    /// The plateau of the current epoch's curve: W_max, or cwnd_epoch when
    /// the epoch starts above W_max (then K = 0).
    origin: f64,
    /// K in seconds for the current epoch.
    k: f64,
    /// t = 0 of the current congestion-avoidance epoch, in µs;
    /// [`NO_EPOCH`] between epochs.
    epoch_start: u64,
    /// cwnd at the start of the epoch (segments).
    cwnd_epoch: f64,
    /// W_est, the Reno-friendly window estimate (segments).
    w_est: f64,
    /// The next epoch is the first one after an RTO (§4.8).
    after_timeout: bool,
    /// The last RTT the caller gave, µs (saturated at `u32::MAX`).
    rtt_us: u32,
    /// Growth below one byte carried to the next ACK.
    frac_bytes: f32,
}

/// `Cubic::epoch_start` between epochs.
const NO_EPOCH: u64 = u64::MAX;

/// `d` in µs, saturated at `u32::MAX` (71 minutes: no RTT is longer).
fn rtt_micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Default for Cubic {
    fn default() -> Cubic {
        Cubic::new()
    }
}

impl Cubic {
    /// Fresh state with fast convergence on (RFC 9438 §4.7 SHOULD).
    pub(crate) fn new() -> Cubic {
        Cubic {
            fast_convergence: true,
            w_max: 0.0,
            cwnd_prior: 0.0,
            origin: 0.0,
            k: 0.0,
            epoch_start: NO_EPOCH,
            cwnd_epoch: 0.0,
            w_est: 0.0,
            after_timeout: false,
            rtt_us: rtt_micros(DEFAULT_RTT),
            frac_bytes: 0.0,
        }
    }

    /// Turns fast convergence on or off.
    #[cfg(test)]
    pub(crate) fn set_fast_convergence(&mut self, on: bool) {
        self.fast_convergence = on;
    }

    /// W_max in segments (0 before the first congestion event).
    #[cfg(test)]
    pub(crate) fn w_max(&self) -> f64 {
        self.w_max
    }

    /// K in seconds for the current epoch.
    #[cfg(test)]
    pub(crate) fn k(&self) -> f64 {
        self.k
    }

    /// W_est in segments, the Reno-friendly estimate of the current epoch.
    #[cfg(test)]
    pub(crate) fn w_est(&self) -> f64 {
        self.w_est
    }

    /// When the current congestion-avoidance epoch started.
    #[cfg(test)]
    pub(crate) fn epoch_start(&self) -> Option<Instant> {
        (self.epoch_start != NO_EPOCH).then(|| Instant::from_micros(self.epoch_start))
    }

    /// RFC 9438 eq. 2: K = cbrt((W_max - cwnd_epoch) / C), in seconds.
    pub(crate) fn k_for(w_max: f64, cwnd_epoch: f64) -> f64 {
        ((w_max - cwnd_epoch) / C).cbrt()
    }

    /// RFC 9438 eq. 1 for the current epoch: W_cubic(t) in segments, `t`
    /// seconds after the epoch started.
    pub(crate) fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.origin
    }

    /// One ACK of `bytes_acked` bytes in congestion avoidance (§4.2-§4.5).
    pub(super) fn on_ack_ca(
        &mut self,
        cwnd: &mut usize,
        mss: usize,
        now: Instant,
        bytes_acked: usize,
        rtt: Option<Duration>,
    ) {
        if let Some(r) = rtt {
            self.rtt_us = rtt_micros(r);
        }
        let mss_f = mss as f64;
        let cw = (*cwnd as f64 / mss_f).max(1.0);
        if self.epoch_start == NO_EPOCH {
            self.start_epoch(now, cw);
        }
        let t = (now - Instant::from_micros(self.epoch_start)).as_secs_f64();
        let segs_acked = bytes_acked as f64 / mss_f;

        // §4.3: W_est grows by alpha per window acknowledged; alpha becomes
        // 1 once W_est reaches the window before the last reduction.
        let alpha = if self.w_est >= f64::from(self.cwnd_prior) {
            1.0
        } else {
            ALPHA
        };
        self.w_est += alpha * segs_acked / cw;

        let target = if self.w_cubic(t) < self.w_est {
            // Reno-friendly region: cwnd = W_est.
            self.w_est.max(cw)
        } else {
            // §4.4/§4.5: move towards W_cubic(t + RTT), clamped to
            // [cwnd, 1.5 cwnd], by (target - cwnd) / cwnd per segment.
            let rtt = f64::from(self.rtt_us) / 1e6;
            let goal = self.w_cubic(t + rtt).clamp(cw, 1.5 * cw);
            cw + (goal - cw) / cw * segs_acked
        };
        let grow = ((target - cw) * mss_f).max(0.0) + f64::from(self.frac_bytes);
        let whole = grow.floor();
        self.frac_bytes = (grow - whole) as f32;
        *cwnd = cwnd.saturating_add(whole as usize);
    }

    fn start_epoch(&mut self, now: Instant, cw: f64) {
        // An instant is never u64::MAX µs (585 000 years).
        self.epoch_start = now.total_micros().min(NO_EPOCH - 1);
        self.cwnd_epoch = cw;
        self.w_est = cw;
        if self.after_timeout {
            // §4.8: first CA stage after a timeout: K = 0, W_max = cwnd.
            self.after_timeout = false;
            self.w_max = cw;
        }
        if self.w_max > cw {
            self.origin = self.w_max;
            self.k = Self::k_for(self.w_max, cw);
        } else {
            self.origin = cw;
            self.k = 0.0;
        }
    }

    /// A congestion event (§4.6, §4.7) with cwnd `cwnd` bytes: updates
    /// W_max (fast convergence), ends the epoch and returns the new
    /// ssthresh, FlightSize * beta_cubic bytes (the caller applies the
    /// 2 SMSS floor).
    pub(super) fn on_congestion_event(
        &mut self,
        _now: Instant,
        cwnd: usize,
        mss: usize,
        flight_size: usize,
    ) -> usize {
        let cw = cwnd as f64 / mss as f64;
        self.w_max = if self.fast_convergence && cw < self.w_max {
            cw * (1.0 + BETA) / 2.0
        } else {
            cw
        };
        self.cwnd_prior = cw as f32;
        self.epoch_start = NO_EPOCH;
        self.frac_bytes = 0.0;
        (flight_size as f64 * BETA) as usize
    }

    /// Ends the current epoch (after idle): the next CA ACK starts a new one.
    pub(super) fn end_epoch(&mut self) {
        self.epoch_start = NO_EPOCH;
    }

    /// An RTO (§4.8): the next congestion-avoidance epoch starts with K = 0.
    pub(super) fn on_timeout(&mut self) {
        self.after_timeout = true;
        self.epoch_start = NO_EPOCH;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AckOutcome, Algorithm, Congestion};
    use super::*;
    use crate::wire::SeqNumber;

    const MSS: usize = 1000;
    const RTT: Duration = Duration::from_millis(100);

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() <= eps
    }

    /// A CUBIC connection that just had a loss at `w` segments with the
    /// pipe full, and finished fast recovery: cwnd = 0.7 w.
    fn after_loss_at(w: usize) -> Congestion {
        let mut cc = Congestion::new(Algorithm::Cubic, MSS);
        // Grow cwnd to w segments in slow start.
        let mut una = SeqNumber(0);
        while cc.cwnd() < w * MSS {
            una += MSS;
            cc.on_ack(Instant::ZERO, una, MSS, Some(RTT), 0);
        }
        assert_eq!(cc.cwnd(), w * MSS);
        let max = una + w * MSS;
        cc.enter_recovery(Instant::ZERO, max, w * MSS);
        assert_eq!(
            cc.on_ack(Instant::ZERO, max, w * MSS, Some(RTT), 2 * w * MSS),
            AckOutcome::RecoveryExited
        );
        cc
    }

    /// Acknowledges one window, one segment per ACK, at time `now`.
    fn round(cc: &mut Congestion, now: Instant) {
        let segs = cc.cwnd() / MSS;
        for _ in 0..segs {
            cc.on_ack(now, SeqNumber(0), MSS, Some(RTT), 0);
        }
    }

    #[test]
    fn constants() {
        assert!(close(ALPHA, 0.9 / 1.7, 1e-12));
        assert!(close(Cubic::k_for(100.0, 70.0), 75f64.cbrt(), 1e-12));
        assert!(close(Cubic::k_for(70.0, 70.0), 0.0, 1e-12));
    }

    #[test]
    fn beta_reduction_on_loss() {
        let cc = after_loss_at(100);
        assert_eq!(cc.ssthresh(), 70 * MSS);
        assert_eq!(cc.cwnd(), 70 * MSS);
        assert!(close(cc.cubic().unwrap().w_max(), 100.0, 1e-9));
    }

    #[test]
    fn fast_retransmit_uses_beta() {
        let mut cc = Congestion::new(Algorithm::Cubic, MSS);
        let una = SeqNumber(0);
        let max = una + 40 * MSS;
        for _ in 0..2 {
            assert!(!cc.on_duplicate_ack(Instant::ZERO, una, max));
        }
        assert!(cc.on_duplicate_ack(Instant::ZERO, una, max));
        assert_eq!(cc.ssthresh(), 28 * MSS);
        assert_eq!(cc.cwnd(), 31 * MSS);
    }

    #[test]
    fn k_formula_at_epoch_start() {
        let mut cc = after_loss_at(100);
        cc.on_ack(Instant::from_secs(1), SeqNumber(0), MSS, Some(RTT), 0);
        let c = cc.cubic().unwrap();
        assert_eq!(c.epoch_start(), Some(Instant::from_secs(1)));
        assert!(close(c.k(), (30.0f64 / 0.4).cbrt(), 1e-9), "K = {}", c.k());
        // W_cubic(0) = cwnd_epoch and W_cubic(K) = W_max.
        assert!(close(c.w_cubic(0.0), 70.0, 1e-9));
        assert!(close(c.w_cubic(c.k()), 100.0, 1e-9));
    }

    #[test]
    fn concave_then_plateau_then_convex() {
        let mut cc = after_loss_at(1000);
        let t0 = Instant::from_secs(10);
        let mut now = t0;
        let mut samples = Vec::new(); // (t, cwnd segments)
        for _ in 0..200 {
            round(&mut cc, now);
            samples.push(((now - t0).as_secs_f64(), cc.cwnd() as f64 / MSS as f64));
            now += RTT;
        }
        let k = cc.cubic().unwrap().k();
        assert!(close(k, 300f64.cbrt() / 0.4f64.cbrt(), 1e-9));
        let at = |t: f64| {
            samples
                .iter()
                .find(|(s, _)| *s >= t)
                .map(|(_, w)| *w)
                .unwrap()
        };
        let rate = |t: f64| at(t + 1.0) - at(t);
        // Concave: growth slows as the window nears W_max.
        assert!(rate(0.5) > rate(3.0));
        assert!(rate(3.0) > rate(k - 1.0));
        // Plateau: close to W_max around t = K.
        assert!(close(at(k), 1000.0, 15.0), "cwnd at K = {}", at(k));
        // Convex: growth speeds up again beyond W_max.
        assert!(rate(k + 1.0) > rate(k - 0.5));
        assert!(rate(k + 6.0) > rate(k + 3.0));
        assert!(at(k + 8.0) > 1000.0 + 0.4 * 5f64.powi(3));
        // Never decreases.
        assert!(samples.windows(2).all(|w| w[1].1 >= w[0].1));
    }

    #[test]
    fn growth_clamped_to_half_window_per_rtt() {
        let mut cc = after_loss_at(100);
        // Far in the convex region the target is capped at 1.5 cwnd per
        // RTT.
        round(&mut cc, Instant::from_secs(0));
        let before = cc.cwnd();
        round(&mut cc, Instant::from_secs(60));
        assert!(cc.cwnd() as f64 <= 1.5 * before as f64 + MSS as f64);
        assert!(cc.cwnd() > before);
    }

    #[test]
    fn reno_friendly_region_with_short_rtt() {
        // With a 1 ms RTT, the cubic curve barely moves in 100 RTTs, while
        // Reno would add about a segment per RTT: CUBIC follows W_est.
        let mut cc = after_loss_at(10);
        let mut now = Instant::from_secs(1);
        for _ in 0..100 {
            let segs = cc.cwnd() / MSS;
            for _ in 0..segs {
                cc.on_ack(now, SeqNumber(0), MSS, Some(Duration::from_millis(1)), 0);
            }
            now += Duration::from_millis(1);
        }
        let c = cc.cubic().unwrap();
        let w = cc.cwnd() as f64 / MSS as f64;
        assert!(w > 90.0, "cwnd {w} segments");
        assert!(close(w, c.w_est(), 1.5), "cwnd {w}, W_est {}", c.w_est());
        assert!(c.w_cubic(0.1) < c.w_est());
    }

    #[test]
    fn reno_friendly_alpha_until_cwnd_prior() {
        // W_est starts at 7 and grows by ALPHA per window until it reaches
        // cwnd_prior (10), then by 1.
        let mut c = Cubic::new();
        let mut cwnd = 10 * MSS;
        let ssthresh = c.on_congestion_event(Instant::ZERO, cwnd, MSS, cwnd);
        cwnd = ssthresh;
        let now = Instant::ZERO;
        let mut acked_windows = 0;
        while c.w_est() < 10.0 - 1e-9 || acked_windows == 0 {
            let segs = cwnd / MSS;
            let before = if acked_windows == 0 { 7.0 } else { c.w_est() };
            for _ in 0..segs {
                c.on_ack_ca(&mut cwnd, MSS, now, MSS, Some(Duration::from_micros(1)));
            }
            acked_windows += 1;
            if c.w_est() < 10.0 {
                // Growth per window roughly ALPHA (cwnd changes within the
                // window, so allow slack).
                let g = c.w_est() - before;
                assert!(g > 0.4 && g < 0.6, "growth {g}");
            }
            assert!(acked_windows < 20);
        }
        let before = c.w_est();
        let segs = cwnd / MSS;
        for _ in 0..segs {
            c.on_ack_ca(&mut cwnd, MSS, now, MSS, Some(Duration::from_micros(1)));
        }
        let g = c.w_est() - before;
        assert!(g > 0.85 && g < 1.1, "growth {g}");
    }

    #[test]
    fn fast_convergence_lowers_w_max() {
        let mut c = Cubic::new();
        c.on_congestion_event(Instant::ZERO, 100 * MSS, MSS, 100 * MSS);
        assert!(close(c.w_max(), 100.0, 1e-9));
        // The next loss comes before the window regained W_max.
        c.on_congestion_event(Instant::ZERO, 90 * MSS, MSS, 90 * MSS);
        assert!(close(c.w_max(), 90.0 * 1.7 / 2.0, 1e-9));
        // A loss above W_max sets W_max to cwnd.
        c.on_congestion_event(Instant::ZERO, 120 * MSS, MSS, 120 * MSS);
        assert!(close(c.w_max(), 120.0, 1e-9));

        let mut slow = Cubic::new();
        slow.set_fast_convergence(false);
        slow.on_congestion_event(Instant::ZERO, 100 * MSS, MSS, 100 * MSS);
        slow.on_congestion_event(Instant::ZERO, 90 * MSS, MSS, 90 * MSS);
        assert!(close(slow.w_max(), 90.0, 1e-9));
    }

    #[test]
    fn ssthresh_uses_flight_size() {
        let mut c = Cubic::new();
        // Application-limited: only 20 segments in flight of a 100 window.
        let s = c.on_congestion_event(Instant::ZERO, 100 * MSS, MSS, 20 * MSS);
        assert_eq!(s, 14 * MSS);
    }

    #[test]
    fn epoch_above_w_max_starts_convex() {
        let mut c = Cubic::new();
        c.on_congestion_event(Instant::ZERO, 50 * MSS, MSS, 50 * MSS);
        let mut cwnd = 60 * MSS; // e.g. grew in slow start past W_max
        c.on_ack_ca(&mut cwnd, MSS, Instant::ZERO, MSS, Some(RTT));
        assert_eq!(c.k(), 0.0);
        assert!(close(c.w_cubic(0.0), 60.0, 1e-9));
    }

    #[test]
    fn rto_collapse_and_first_epoch_after_timeout() {
        let mut cc = after_loss_at(100);
        cc.on_rto(Instant::from_secs(5), SeqNumber(1_000_000), 70 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 49 * MSS);
        // Slow start back to ssthresh.
        let mut now = Instant::from_secs(6);
        while cc.in_slow_start() {
            round(&mut cc, now);
            now += RTT;
        }
        // The first CA ACK starts an epoch with K = 0, W_max = cwnd.
        round(&mut cc, now);
        let c = cc.cubic().unwrap();
        assert_eq!(c.k(), 0.0);
        assert!(c.w_max() >= 49.0 && c.w_max() < 60.0, "W_max {}", c.w_max());
    }

    #[test]
    fn idle_restart_ends_epoch() {
        let mut cc = after_loss_at(100);
        round(&mut cc, Instant::from_secs(1));
        assert_eq!(
            cc.cubic().unwrap().epoch_start(),
            Some(Instant::from_secs(1))
        );
        cc.restart_after_idle();
        assert_eq!(cc.cubic().unwrap().epoch_start(), None);
        // Back in slow start (cwnd = IW < ssthresh): no epoch until CA.
        assert!(cc.in_slow_start());
        let mut now = Instant::from_secs(30);
        while cc.in_slow_start() {
            assert_eq!(cc.cubic().unwrap().epoch_start(), None);
            round(&mut cc, now);
            now += RTT;
        }
        round(&mut cc, now);
        let start = cc.cubic().unwrap().epoch_start().unwrap();
        assert!(start >= Instant::from_secs(30) && start <= now);
    }

    #[test]
    fn never_shrinks_in_avoidance() {
        let mut cc = after_loss_at(50);
        let mut last = cc.cwnd();
        let mut now = Instant::ZERO;
        for i in 0..2000u64 {
            let rtt = Duration::from_millis(1 + i % 50);
            cc.on_ack(
                now,
                SeqNumber(0),
                1 + (i as usize * 7919) % MSS,
                Some(rtt),
                0,
            );
            assert!(cc.cwnd() >= last);
            last = cc.cwnd();
            now += Duration::from_millis(3);
        }
    }
}

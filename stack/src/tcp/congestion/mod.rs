//! Congestion control: NewReno (RFC 5681/6582) and CUBIC (RFC 9438).
//!
//! [`Congestion`] is what a TCB holds. It owns the parts both algorithms
//! share — cwnd and ssthresh in bytes, slow start with appropriate byte
//! counting (RFC 3465), the duplicate-ACK counter and the RFC 6582 fast
//! recovery bookkeeping (the `recover` point, window inflation on duplicate
//! ACKs, partial-ACK deflation, full-ACK exit) and the RTO response — and
//! dispatches to the algorithm for the parts that differ: growth in
//! congestion avoidance and the window reduction on loss. Dispatch is a
//! `match` on the [`Algorithm`], chosen at socket creation: no trait
//! objects.
//!
//! Every connection holds this state for its whole life, idle or not, so
//! it is kept small (88 bytes, CUBIC's included): windows are stored as
//! `u32`s and computed with as `usize`; CUBIC keeps `f64`s only where its
//! curve needs them (see [`Cubic`]).
//!
//! # How the state machine drives it
//!
//! ```text
//! ACK advances SND.UNA by n   -> on_ack(now, ack, n, rtt, flight_after)
//!                                  PartialAck: retransmit first unacked seg
//! duplicate ACK (RFC 5681 §2) -> on_duplicate_ack(now, snd_una, snd_max)
//!                                  true: fast retransmit now (3rd dup ACK)
//! SACK loss detected (6675)   -> enter_recovery(now, snd_max, flight)
//! retransmission timeout      -> on_rto(now, snd_max, flight)
//! ```
//!
//! Limited transmit (RFC 3042) and the decision of what is a duplicate ACK
//! are the caller's.

pub(crate) mod cubic;
pub(crate) mod newreno;

pub(crate) use cubic::Cubic;
pub(crate) use newreno::NewReno;

use core::fmt;

use crate::time::{Duration, Instant};
use crate::wire::SeqNumber;

/// RFC 5681 §3.2 / RFC 6582: duplicate ACKs that trigger fast retransmit.
pub(crate) const DUP_THRESH: u32 = 3;

/// The initial ssthresh, "arbitrarily high" (RFC 5681 §3.1): 1 GiB, the
/// largest window TCP can advertise (window scale 14).
pub(crate) const INITIAL_SSTHRESH: usize = 1 << 30;

/// RFC 3465 §2.2: the most cwnd grows per ACK in slow start is L * SMSS
/// with L = 2.
pub(crate) const ABC_LIMIT: usize = 2;

/// RFC 5681 §3.1 equation 1: the initial window, 2 to 4 segments depending on
/// SMSS. Equivalent to RFC 3390's `min(4*MSS, max(2*MSS, 4380))`. (RFC 6928's
/// 10 segments is experimental; we stay with the standard.)
pub(crate) fn initial_window(mss: usize) -> usize {
    (4 * mss).min((2 * mss).max(4380))
}

/// Which algorithm a socket uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// RFC 5681 + RFC 6582.
    #[default]
    NewReno,
    /// RFC 9438 (with RFC 6582 recovery bookkeeping).
    Cubic,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::NewReno => "newreno",
            Algorithm::Cubic => "cubic",
        })
    }
}

/// What an advancing ACK means for loss recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    /// Not in recovery: the window grew (or held).
    Normal,
    /// RFC 6582 §3.2 step 4: a partial ACK during fast recovery. The caller
    /// retransmits the first unacknowledged segment (or, with SACK, what
    /// NextSeg says) and, on the first partial ACK, restarts the RTO timer.
    PartialAck,
    /// RFC 6582 §3.2 step 3: the ACK covers `recover`; fast recovery ended.
    RecoveryExited,
}

/// A window as stored: saturated at `u32::MAX`, which none reaches (see
/// [`Congestion`]'s fields).
#[inline]
fn narrow(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The algorithm's own state.
#[derive(Debug, Clone)]
enum Algo {
    NewReno(NewReno),
    Cubic(Cubic),
}

/// Congestion-control state of one connection. Windows are in bytes.
///
/// # Examples
///
/// ```ignore
/// use mtcp_stack::tcp::congestion::{Algorithm, Congestion};
/// use mtcp_stack::time::Instant;
/// use mtcp_stack::wire::SeqNumber;
///
/// let mut cc = Congestion::new(Algorithm::NewReno, 1460);
/// assert_eq!(cc.cwnd(), 4380); // RFC 5681 initial window for SMSS 1460
/// let now = Instant::ZERO;
/// // Three duplicate ACKs with 10 segments in flight: fast retransmit.
/// let (una, max) = (SeqNumber(1000), SeqNumber(1000 + 14600));
/// assert!(!cc.on_duplicate_ack(now, una, max));
/// assert!(!cc.on_duplicate_ack(now, una, max));
/// assert!(cc.on_duplicate_ack(now, una, max));
/// assert!(cc.in_recovery());
/// assert_eq!(cc.ssthresh(), 7300);
/// assert_eq!(cc.cwnd(), 7300 + 3 * 1460);
/// ```
#[derive(Debug, Clone)]
pub(crate) struct Congestion {
    algo: Algo,
    /// cwnd, ssthresh and SMSS in bytes; stored as `u32` (all are at most
    /// [`INITIAL_SSTHRESH`] plus a few segments), computed with as `usize`.
    cwnd: u32,
    ssthresh: u32,
    mss: u32,
    /// Duplicate ACKs in a row (saturating: only up to [`DUP_THRESH`]
    /// matters).
    dup_acks: u8,
    in_recovery: bool,
    /// RFC 6582 "recover": the highest sequence number transmitted when
    /// recovery (or the last RTO) began, i.e. SND.MAX - 1. `None` once
    /// SND.UNA has passed it (which also keeps the wrapping comparison
    /// meaningful on long connections).
    recover: Option<SeqNumber>,
    /// An RTO happened and no new data has been acknowledged since: later
    /// timeouts keep ssthresh (RFC 5681 §3.1 note on equation 4).
    rto_pending: bool,
    /// Slow start after an RTO uses L = 1 (RFC 3465 §2.3).
    slow_start_after_rto: bool,
}

impl Congestion {
    /// Fresh state for a connection with sender MSS `mss` (at least 1):
    /// cwnd = [`initial_window`], ssthresh = [`INITIAL_SSTHRESH`].
    pub(crate) fn new(algorithm: Algorithm, mss: usize) -> Congestion {
        let mss = mss.max(1);
        Congestion {
            algo: match algorithm {
                Algorithm::NewReno => Algo::NewReno(NewReno::new()),
                Algorithm::Cubic => Algo::Cubic(Cubic::new()),
            },
            cwnd: narrow(initial_window(mss)),
            ssthresh: narrow(INITIAL_SSTHRESH),
            mss: narrow(mss),
            dup_acks: 0,
            in_recovery: false,
            recover: None,
            rto_pending: false,
            slow_start_after_rto: false,
        }
    }

    /// The algorithm in use.
    #[cfg(test)]
    pub(crate) fn algorithm(&self) -> Algorithm {
        match self.algo {
            Algo::NewReno(_) => Algorithm::NewReno,
            Algo::Cubic(_) => Algorithm::Cubic,
        }
    }

    /// The CUBIC state, when CUBIC is in use (for inspection and stats).
    #[cfg(test)]
    pub(crate) fn cubic(&self) -> Option<&Cubic> {
        match &self.algo {
            Algo::Cubic(c) => Some(c),
            Algo::NewReno(_) => None,
        }
    }

    /// cwnd, ssthresh and SMSS as computed with.
    #[inline]
    fn windows(&self) -> (usize, usize, usize) {
        (
            self.cwnd as usize,
            self.ssthresh as usize,
            self.mss as usize,
        )
    }

    /// Stores cwnd, ssthresh and SMSS.
    #[inline]
    fn set_windows(&mut self, cwnd: usize, ssthresh: usize, mss: usize) {
        self.cwnd = narrow(cwnd);
        self.ssthresh = narrow(ssthresh);
        self.mss = narrow(mss);
    }

    /// Stores cwnd.
    #[inline]
    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = narrow(cwnd);
    }

    /// The congestion window in bytes.
    #[inline]
    pub(crate) fn cwnd(&self) -> usize {
        self.cwnd as usize
    }

    /// The slow-start threshold in bytes.
    #[cfg(test)]
    pub(crate) fn ssthresh(&self) -> usize {
        self.ssthresh as usize
    }

    /// The sender MSS (SMSS) in bytes.
    #[cfg(test)]
    pub(crate) fn mss(&self) -> usize {
        self.mss as usize
    }

    /// Changes SMSS (e.g. once the peer's MSS option is known, or on a path
    /// MTU change). While cwnd is still the initial window it is recomputed
    /// for the new SMSS; otherwise it is kept, but never below one SMSS.
    pub(crate) fn set_mss(&mut self, mss: usize) {
        let mss = mss.max(1);
        let (mut cwnd, ssthresh, old) = self.windows();
        if cwnd == initial_window(old) && ssthresh == INITIAL_SSTHRESH {
            cwnd = initial_window(mss);
        }
        self.set_windows(cwnd.max(mss), ssthresh.max(2 * mss), mss);
    }

    /// Whether fast recovery (RFC 6582) is in progress.
    pub(crate) fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    /// Duplicate ACKs counted since the last advancing ACK.
    #[cfg(test)]
    pub(crate) fn dup_acks(&self) -> u32 {
        u32::from(self.dup_acks)
    }

    /// Whether cwnd < ssthresh (RFC 5681 §3.1).
    #[cfg(test)]
    pub(crate) fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// The RFC 6582 `recover` point (SND.MAX - 1 when recovery or the last
    /// RTO began), while SND.UNA has not passed it.
    pub(crate) fn recover(&self) -> Option<SeqNumber> {
        self.recover
    }

    /// An ACK advanced SND.UNA to `ack`, acknowledging `bytes_acked` new
    /// bytes. `rtt` is the current RTT estimate (SRTT, or the sample this
    /// ACK gave; CUBIC needs it), `flight_size` the bytes still outstanding
    /// after this ACK (SND.MAX - SND.UNA).
    ///
    /// In fast recovery this is RFC 6582 §3.2 steps 3 and 4 (full ACK exit,
    /// partial ACK deflation); otherwise slow start with appropriate byte
    /// counting (RFC 3465) or the algorithm's congestion avoidance.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        bytes_acked: usize,
        rtt: Option<Duration>,
        flight_size: usize,
    ) -> AckOutcome {
        self.dup_acks = 0;
        if bytes_acked > 0 {
            self.rto_pending = false;
        }
        let past_recover = self.recover.is_none_or(|r| ack > r);
        let (mut cwnd, ssthresh, mss) = self.windows();
        if self.in_recovery {
            if past_recover {
                // Full ACK, option (1) of RFC 6582 §3.2 step 3.
                self.in_recovery = false;
                self.recover = None;
                self.set_cwnd(ssthresh.min(flight_size.max(mss) + mss).max(mss));
                return AckOutcome::RecoveryExited;
            }
            // Partial ACK: deflate by the amount acknowledged, add back one
            // SMSS when at least one SMSS was acknowledged.
            cwnd = cwnd.saturating_sub(bytes_acked);
            if bytes_acked >= mss {
                cwnd += mss;
            }
            self.set_cwnd(cwnd.max(mss));
            return AckOutcome::PartialAck;
        }
        if past_recover {
            self.recover = None;
        }
        if bytes_acked == 0 {
            return AckOutcome::Normal;
        }
        if cwnd < ssthresh {
            let limit = if self.slow_start_after_rto {
                1
            } else {
                ABC_LIMIT
            };
            cwnd = cwnd.saturating_add(bytes_acked.min(limit * mss));
        } else {
            self.slow_start_after_rto = false;
            match &mut self.algo {
                Algo::NewReno(r) => r.on_ack_ca(&mut cwnd, mss, bytes_acked),
                Algo::Cubic(c) => c.on_ack_ca(&mut cwnd, mss, now, bytes_acked, rtt),
            }
        }
        self.set_cwnd(cwnd.min(INITIAL_SSTHRESH));
        AckOutcome::Normal
    }

    /// A duplicate ACK (RFC 5681 §2 definition, checked by the caller)
    /// arrived; SND.UNA is `snd_una`, SND.MAX is `snd_max`. Returns `true`
    /// when the caller must fast-retransmit the segment at SND.UNA now.
    ///
    /// In fast recovery, each duplicate ACK inflates cwnd by SMSS (RFC 6582
    /// §3.2 step 3). Otherwise the third one enters fast recovery (step 2) —
    /// unless SND.UNA does not cover more than `recover`, in which case the
    /// duplicates belong to a loss already handled (e.g. by an RTO) and are
    /// ignored.
    pub(crate) fn on_duplicate_ack(
        &mut self,
        now: Instant,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
    ) -> bool {
        self.dup_acks = self.dup_acks.saturating_add(1);
        let (cwnd, _, mss) = self.windows();
        if self.in_recovery {
            self.set_cwnd(cwnd.saturating_add(mss).min(INITIAL_SSTHRESH));
            return false;
        }
        if u32::from(self.dup_acks) != DUP_THRESH {
            return false;
        }
        if self.recover.is_some_and(|r| snd_una <= r) {
            return false;
        }
        let flight = if snd_max >= snd_una {
            snd_max - snd_una
        } else {
            0
        };
        self.enter_recovery(now, snd_max, flight);
        // RFC 5681 §3.2 step 3: inflate by the three segments that left.
        self.set_cwnd((self.ssthresh as usize).saturating_add(3 * mss));
        true
    }

    /// Enters fast recovery without the duplicate-ACK count (for RFC 6675
    /// SACK-based loss detection): ssthresh is reduced by the algorithm,
    /// cwnd set to ssthresh and `recover` to SND.MAX - 1. Does nothing when
    /// already in recovery.
    pub(crate) fn enter_recovery(&mut self, now: Instant, snd_max: SeqNumber, flight_size: usize) {
        if self.in_recovery {
            return;
        }
        let ssthresh = self.reduce(now, flight_size);
        self.set_windows(ssthresh, ssthresh, self.mss as usize);
        self.in_recovery = true;
        self.recover = Some(snd_max - 1);
        self.slow_start_after_rto = false;
    }

    /// Leaves fast recovery early (e.g. when the connection decides the
    /// loss was spurious), setting cwnd to ssthresh.
    #[cfg(test)]
    pub(crate) fn exit_recovery(&mut self) {
        if self.in_recovery {
            self.in_recovery = false;
            self.cwnd = self.ssthresh;
        }
    }

    /// The retransmission timer expired (RFC 5681 §3.1 equation 4, RFC 6582
    /// §3.2 step 4, RFC 9438 §4.8): ssthresh is reduced — only on the first
    /// timeout of a run, it is held for later ones — cwnd collapses to the
    /// loss window (1 SMSS), fast recovery ends and `recover` becomes
    /// SND.MAX - 1.
    pub(crate) fn on_rto(&mut self, now: Instant, snd_max: SeqNumber, flight_size: usize) {
        if !self.rto_pending {
            let ssthresh = self.reduce(now, flight_size);
            self.ssthresh = narrow(ssthresh);
            if let Some(c) = self.cubic_mut() {
                c.on_timeout();
            }
        }
        self.rto_pending = true;
        self.cwnd = self.mss;
        self.in_recovery = false;
        self.dup_acks = 0;
        self.recover = Some(snd_max - 1);
        self.slow_start_after_rto = true;
    }

    /// Nothing was sent for longer than the RTO (RFC 5681 §4.1): cwnd is
    /// reduced to at most the restart window (the initial window) so that a
    /// stale window is not dumped into the network at once. For CUBIC the
    /// current epoch ends too, so growth restarts from the new cwnd.
    pub(crate) fn restart_after_idle(&mut self) {
        let (cwnd, _, mss) = self.windows();
        self.set_cwnd(cwnd.min(initial_window(mss)));
        if let Some(c) = self.cubic_mut() {
            c.end_epoch();
        }
    }

    /// The algorithm's new ssthresh after a loss, at least 2 SMSS.
    fn reduce(&mut self, now: Instant, flight_size: usize) -> usize {
        let (cwnd, _, mss) = self.windows();
        let ssthresh = match &mut self.algo {
            Algo::NewReno(r) => r.ssthresh_after_loss(flight_size),
            Algo::Cubic(c) => c.on_congestion_event(now, cwnd, mss, flight_size),
        };
        ssthresh.max(2 * mss)
    }

    /// CUBIC's state, when CUBIC is in use.
    #[inline]
    fn cubic_mut(&mut self) -> Option<&mut Cubic> {
        match &mut self.algo {
            Algo::Cubic(c) => Some(c),
            Algo::NewReno(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    #[test]
    fn a_connection_holds_its_congestion_state_in_88_bytes() {
        // CUBIC's included: see the module docs.
        assert!(
            core::mem::size_of::<Cubic>() <= 64,
            "{}",
            core::mem::size_of::<Cubic>()
        );
        assert!(
            core::mem::size_of::<Congestion>() <= 88,
            "{}",
            core::mem::size_of::<Congestion>()
        );
    }

    #[test]
    fn initial_window_rfc5681() {
        assert_eq!(initial_window(536), 4 * 536);
        assert_eq!(initial_window(1095), 4 * 1095);
        assert_eq!(initial_window(1460), 4380);
        assert_eq!(initial_window(2190), 4380);
        assert_eq!(initial_window(4000), 8000);
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(Algorithm::NewReno.to_string(), "newreno");
        assert_eq!(Algorithm::Cubic.to_string(), "cubic");
        assert_eq!(Algorithm::default(), Algorithm::NewReno);
        assert_eq!(
            Congestion::new(Algorithm::Cubic, MSS).algorithm(),
            Algorithm::Cubic
        );
        assert!(Congestion::new(Algorithm::Cubic, MSS).cubic().is_some());
        assert!(Congestion::new(Algorithm::NewReno, MSS).cubic().is_none());
    }

    #[test]
    fn set_mss_recomputes_initial_window() {
        let mut cc = Congestion::new(Algorithm::NewReno, 536);
        assert_eq!(cc.cwnd(), 2144);
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 4380);
        assert_eq!(cc.mss(), 1460);
        // After growth, cwnd is kept.
        cc.on_ack(Instant::ZERO, SeqNumber(2000), 1460, None, 0);
        let w = cc.cwnd();
        cc.set_mss(1000);
        assert_eq!(cc.cwnd(), w);
        // A zero MSS is treated as 1.
        cc.set_mss(0);
        assert_eq!(cc.mss(), 1);
    }

    #[test]
    fn restart_after_idle_caps_at_initial_window() {
        for alg in [Algorithm::NewReno, Algorithm::Cubic] {
            let mut cc = Congestion::new(alg, MSS);
            for i in 1..=20u32 {
                cc.on_ack(Instant::ZERO, SeqNumber(i * 1000), MSS, None, 0);
            }
            assert_eq!(cc.cwnd(), 24 * MSS);
            cc.restart_after_idle();
            assert_eq!(cc.cwnd(), initial_window(MSS));
            assert_eq!(cc.ssthresh(), INITIAL_SSTHRESH);
            // A window already below the restart window is kept.
            cc.on_rto(Instant::ZERO, SeqNumber(50_000), 10 * MSS);
            cc.restart_after_idle();
            assert_eq!(cc.cwnd(), MSS);
        }
    }

    /// Both algorithms share the recovery bookkeeping.
    #[test]
    fn recovery_works_for_both() {
        for alg in [Algorithm::NewReno, Algorithm::Cubic] {
            let mut cc = Congestion::new(alg, MSS);
            let now = Instant::ZERO;
            let una = SeqNumber(0);
            let max = SeqNumber(20 * MSS as u32);
            for _ in 0..2 {
                assert!(!cc.on_duplicate_ack(now, una, max));
            }
            assert!(cc.on_duplicate_ack(now, una, max), "{alg}");
            assert!(cc.in_recovery());
            assert_eq!(cc.recover(), Some(max - 1));
            let out = cc.on_ack(now, max, 20 * MSS, None, 0);
            assert_eq!(out, AckOutcome::RecoveryExited);
            assert!(!cc.in_recovery());
        }
    }
}

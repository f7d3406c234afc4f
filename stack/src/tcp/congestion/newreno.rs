//! NewReno's own rules (RFC 5681 §3.1): congestion avoidance grows cwnd by
//! one SMSS per window of acknowledged bytes (appropriate byte counting,
//! RFC 3465 §2.1), and a loss sets ssthresh = max(FlightSize / 2, 2 SMSS)
//! (equation 4). Slow start, fast recovery (RFC 6582) and the RTO response
//! are shared with CUBIC and live in [`super::Congestion`].

/// NewReno congestion-avoidance state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NewReno {
    /// Bytes acknowledged in congestion avoidance not yet turned into
    /// window growth (RFC 3465 `bytes_acked`); at most one cwnd, so a
    /// `u32` holds it.
    bytes_acked: u32,
}

impl NewReno {
    /// Fresh state.
    pub(crate) const fn new() -> NewReno {
        NewReno { bytes_acked: 0 }
    }

    /// RFC 3465 §2.1: count acknowledged bytes; each time a full cwnd has
    /// been acknowledged, grow cwnd by one SMSS.
    pub(super) fn on_ack_ca(&mut self, cwnd: &mut usize, mss: usize, bytes_acked: usize) {
        let mut credit = (self.bytes_acked as usize).saturating_add(bytes_acked);
        if credit >= *cwnd {
            credit -= *cwnd;
            *cwnd = cwnd.saturating_add(mss);
            // Never carry more than one window's worth of credit.
            credit = credit.min(*cwnd);
        }
        self.bytes_acked = u32::try_from(credit).unwrap_or(u32::MAX);
    }

    /// RFC 5681 equation 4: FlightSize / 2 (the caller applies the 2 SMSS
    /// floor).
    pub(super) fn ssthresh_after_loss(&mut self, flight_size: usize) -> usize {
        self.bytes_acked = 0;
        flight_size / 2
    }
}

#[cfg(test)]
mod tests {
    use super::super::{initial_window, AckOutcome, Algorithm, Congestion, INITIAL_SSTHRESH};
    use crate::time::{Duration, Instant};
    use crate::wire::SeqNumber;

    const MSS: usize = 1000;

    fn reno() -> Congestion {
        Congestion::new(Algorithm::NewReno, MSS)
    }

    /// Acknowledges one full window, one SMSS per ACK, starting at `una`.
    /// Returns the new SND.UNA.
    fn ack_window(cc: &mut Congestion, una: &mut SeqNumber) {
        let segs = cc.cwnd() / MSS;
        for _ in 0..segs {
            *una += MSS;
            cc.on_ack(Instant::ZERO, *una, MSS, Some(Duration::from_millis(10)), 0);
        }
    }

    mod slow_start {
        use super::*;

        #[test]
        fn doubles_per_rtt() {
            let mut cc = reno();
            let mut una = SeqNumber(0);
            assert_eq!(cc.cwnd(), 4 * MSS);
            assert!(cc.in_slow_start());
            for round in 1..=5 {
                ack_window(&mut cc, &mut una);
                assert_eq!(cc.cwnd(), (4 * MSS) << round);
            }
        }

        #[test]
        fn abc_limits_growth_per_ack_to_two_smss() {
            let mut cc = reno();
            // A stretch ACK covering 10 segments grows cwnd by 2 SMSS only.
            cc.on_ack(Instant::ZERO, SeqNumber(10_000), 10 * MSS, None, 0);
            assert_eq!(cc.cwnd(), 6 * MSS);
            // A small ACK grows cwnd by what it acknowledges.
            cc.on_ack(Instant::ZERO, SeqNumber(10_100), 100, None, 0);
            assert_eq!(cc.cwnd(), 6 * MSS + 100);
        }

        #[test]
        fn zero_byte_ack_does_not_grow() {
            let mut cc = reno();
            assert_eq!(
                cc.on_ack(Instant::ZERO, SeqNumber(0), 0, None, 0),
                AckOutcome::Normal
            );
            assert_eq!(cc.cwnd(), initial_window(MSS));
            assert_eq!(cc.ssthresh(), INITIAL_SSTHRESH);
        }
    }

    mod avoidance {
        use super::*;

        fn in_ca(cwnd_segs: usize) -> Congestion {
            let mut cc = reno();
            // A loss with 2*cwnd in flight puts ssthresh at cwnd_segs SMSS,
            // then recovery ends with cwnd = ssthresh.
            let max = SeqNumber((2 * cwnd_segs * MSS) as u32);
            cc.enter_recovery(Instant::ZERO, max, 2 * cwnd_segs * MSS);
            cc.on_ack(
                Instant::ZERO,
                max,
                2 * cwnd_segs * MSS,
                None,
                4 * cwnd_segs * MSS,
            );
            assert_eq!(cc.cwnd(), cwnd_segs * MSS);
            assert!(!cc.in_slow_start());
            cc
        }

        #[test]
        fn grows_one_smss_per_rtt() {
            let mut cc = in_ca(10);
            let mut una = SeqNumber(100_000);
            for round in 1..=10 {
                ack_window(&mut cc, &mut una);
                assert_eq!(cc.cwnd(), (10 + round) * MSS);
            }
        }

        #[test]
        fn growth_independent_of_ack_size() {
            // Delayed ACKs (2 SMSS each) still give 1 SMSS per window.
            let mut cc = in_ca(10);
            let mut una = SeqNumber(0);
            for _ in 0..5 {
                una += 2 * MSS;
                cc.on_ack(Instant::ZERO, una, 2 * MSS, None, 0);
            }
            assert_eq!(cc.cwnd(), 11 * MSS);
        }

        #[test]
        fn partial_window_does_not_grow() {
            let mut cc = in_ca(10);
            cc.on_ack(Instant::ZERO, SeqNumber(9 * MSS as u32), 9 * MSS, None, 0);
            assert_eq!(cc.cwnd(), 10 * MSS);
            cc.on_ack(Instant::ZERO, SeqNumber(10 * MSS as u32), MSS, None, 0);
            assert_eq!(cc.cwnd(), 11 * MSS);
        }
    }

    mod loss {
        use super::*;

        #[test]
        fn fast_retransmit_halves() {
            let mut cc = reno();
            let una = SeqNumber(5000);
            let max = una + 16 * MSS;
            assert!(!cc.on_duplicate_ack(Instant::ZERO, una, max));
            assert!(!cc.on_duplicate_ack(Instant::ZERO, una, max));
            assert!(cc.on_duplicate_ack(Instant::ZERO, una, max));
            assert_eq!(cc.ssthresh(), 8 * MSS);
            assert_eq!(cc.cwnd(), 11 * MSS);
            assert_eq!(cc.dup_acks(), 3);
        }

        #[test]
        fn ssthresh_floor_is_two_smss() {
            let mut cc = reno();
            let una = SeqNumber(0);
            let max = una + MSS;
            for _ in 0..3 {
                cc.on_duplicate_ack(Instant::ZERO, una, max);
            }
            assert_eq!(cc.ssthresh(), 2 * MSS);
        }

        #[test]
        fn dup_acks_inflate_in_recovery() {
            let mut cc = reno();
            let una = SeqNumber(0);
            let max = una + 10 * MSS;
            for _ in 0..3 {
                cc.on_duplicate_ack(Instant::ZERO, una, max);
            }
            let w = cc.cwnd();
            assert!(!cc.on_duplicate_ack(Instant::ZERO, una, max));
            assert!(!cc.on_duplicate_ack(Instant::ZERO, una, max));
            assert_eq!(cc.cwnd(), w + 2 * MSS);
        }

        #[test]
        fn fourth_dup_ack_does_not_retransmit_again() {
            let mut cc = reno();
            let una = SeqNumber(0);
            let max = una + 10 * MSS;
            let fired: Vec<bool> = (0..6)
                .map(|_| cc.on_duplicate_ack(Instant::ZERO, una, max))
                .collect();
            assert_eq!(fired, [false, false, true, false, false, false]);
        }

        #[test]
        fn new_ack_resets_dup_count() {
            let mut cc = reno();
            let una = SeqNumber(0);
            let max = una + 10 * MSS;
            cc.on_duplicate_ack(Instant::ZERO, una, max);
            cc.on_duplicate_ack(Instant::ZERO, una, max);
            cc.on_ack(Instant::ZERO, una + MSS, MSS, None, 9 * MSS);
            assert_eq!(cc.dup_acks(), 0);
            assert!(!cc.on_duplicate_ack(Instant::ZERO, una + MSS, max));
            assert!(!cc.in_recovery());
        }

        #[test]
        fn rto_collapses_to_loss_window() {
            let mut cc = reno();
            let mut una = SeqNumber(0);
            for _ in 0..3 {
                ack_window(&mut cc, &mut una);
            }
            assert_eq!(cc.cwnd(), 32 * MSS);
            cc.on_rto(Instant::ZERO, una + 32 * MSS, 32 * MSS);
            assert_eq!(cc.cwnd(), MSS);
            assert_eq!(cc.ssthresh(), 16 * MSS);
            // A second timeout for the same data keeps ssthresh.
            cc.on_rto(Instant::ZERO, una + 32 * MSS, 32 * MSS);
            assert_eq!(cc.ssthresh(), 16 * MSS);
            assert_eq!(cc.cwnd(), MSS);
        }

        #[test]
        fn slow_start_after_rto_uses_l_equal_one() {
            let mut cc = reno();
            cc.on_rto(Instant::ZERO, SeqNumber(20_000), 20 * MSS);
            // A stretch ACK of 3 SMSS grows cwnd by one SMSS only.
            cc.on_ack(Instant::ZERO, SeqNumber(3000), 3 * MSS, None, 17 * MSS);
            assert_eq!(cc.cwnd(), 2 * MSS);
        }

        #[test]
        fn rto_exits_recovery_and_blocks_stale_dup_acks() {
            let mut cc = reno();
            let una = SeqNumber(0);
            let max = una + 10 * MSS;
            for _ in 0..3 {
                cc.on_duplicate_ack(Instant::ZERO, una, max);
            }
            cc.on_rto(Instant::ZERO, max, 10 * MSS);
            assert!(!cc.in_recovery());
            // Go-back-N retransmissions produce dup ACKs below recover:
            // RFC 6582 says not to fast-retransmit again.
            let una2 = una + 4 * MSS;
            cc.on_ack(Instant::ZERO, una2, 4 * MSS, None, 6 * MSS);
            for _ in 0..3 {
                assert!(!cc.on_duplicate_ack(Instant::ZERO, una2, max));
            }
            // Once SND.UNA passes recover, dup ACKs count again.
            cc.on_ack(Instant::ZERO, max, 6 * MSS, None, 0);
            assert_eq!(cc.recover(), None);
            let max2 = max + 10 * MSS;
            for _ in 0..2 {
                assert!(!cc.on_duplicate_ack(Instant::ZERO, max, max2));
            }
            assert!(cc.on_duplicate_ack(Instant::ZERO, max, max2));
        }
    }

    mod recovery {
        use super::*;

        fn recovering() -> (Congestion, SeqNumber, SeqNumber) {
            let mut cc = reno();
            let una = SeqNumber(1_000_000);
            let max = una + 20 * MSS;
            for _ in 0..3 {
                cc.on_duplicate_ack(Instant::ZERO, una, max);
            }
            assert_eq!(cc.ssthresh(), 10 * MSS);
            assert_eq!(cc.cwnd(), 13 * MSS);
            (cc, una, max)
        }

        #[test]
        fn partial_ack_deflates_and_adds_back_smss() {
            let (mut cc, una, _) = recovering();
            let out = cc.on_ack(Instant::ZERO, una + 3 * MSS, 3 * MSS, None, 17 * MSS);
            assert_eq!(out, AckOutcome::PartialAck);
            assert_eq!(cc.cwnd(), 13 * MSS - 3 * MSS + MSS);
            assert!(cc.in_recovery());
        }

        #[test]
        fn small_partial_ack_does_not_add_back() {
            let (mut cc, una, _) = recovering();
            let out = cc.on_ack(Instant::ZERO, una + 500, 500, None, 20 * MSS - 500);
            assert_eq!(out, AckOutcome::PartialAck);
            assert_eq!(cc.cwnd(), 13 * MSS - 500);
        }

        #[test]
        fn full_ack_exits_with_min_ssthresh_flight_plus_smss() {
            let (mut cc, _, max) = recovering();
            // Plenty outstanding after the ACK (new data sent in recovery):
            // cwnd = ssthresh.
            let out = cc.on_ack(Instant::ZERO, max, 20 * MSS, None, 15 * MSS);
            assert_eq!(out, AckOutcome::RecoveryExited);
            assert_eq!(cc.cwnd(), 10 * MSS);
            assert!(!cc.in_recovery());

            // Little outstanding: cwnd = FlightSize + SMSS.
            let (mut cc, _, max) = recovering();
            cc.on_ack(Instant::ZERO, max, 20 * MSS, None, 2 * MSS);
            assert_eq!(cc.cwnd(), 3 * MSS);
            // Nothing outstanding: max(FlightSize, SMSS) + SMSS.
            let (mut cc, _, max) = recovering();
            cc.on_ack(Instant::ZERO, max, 20 * MSS, None, 0);
            assert_eq!(cc.cwnd(), 2 * MSS);
        }

        #[test]
        fn ack_just_below_recover_is_partial() {
            let (mut cc, _, max) = recovering();
            let out = cc.on_ack(Instant::ZERO, max - 1, 20 * MSS - 1, None, 1);
            assert_eq!(out, AckOutcome::PartialAck);
        }

        #[test]
        fn enter_recovery_is_idempotent() {
            let (mut cc, _, max) = recovering();
            let (w, s) = (cc.cwnd(), cc.ssthresh());
            cc.enter_recovery(Instant::ZERO, max + 10 * MSS, 30 * MSS);
            assert_eq!((cc.cwnd(), cc.ssthresh()), (w, s));
            assert_eq!(cc.recover(), Some(max - 1));
        }

        #[test]
        fn exit_recovery_sets_cwnd_to_ssthresh() {
            let (mut cc, _, _) = recovering();
            cc.exit_recovery();
            assert!(!cc.in_recovery());
            assert_eq!(cc.cwnd(), 10 * MSS);
        }

        #[test]
        fn recovery_across_sequence_wrap() {
            let mut cc = reno();
            let una = SeqNumber(u32::MAX - 5000);
            let max = una + 10 * MSS;
            for _ in 0..3 {
                cc.on_duplicate_ack(Instant::ZERO, una, max);
            }
            assert!(cc.in_recovery());
            assert_eq!(
                cc.on_ack(Instant::ZERO, una + 6000, 6000, None, 4000),
                AckOutcome::PartialAck
            );
            assert_eq!(
                cc.on_ack(Instant::ZERO, max, 4000, None, 0),
                AckOutcome::RecoveryExited
            );
        }
    }
}

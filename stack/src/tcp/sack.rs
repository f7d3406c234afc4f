//! The sender's SACK scoreboard and the RFC 6675 loss-recovery routines:
//! `Update()`, `IsLost()`, `SetPipe()` and `NextSeg()` (§4).
//!
//! ```text
//!   HighACK (SND.UNA)                        HighSACK          HighData (SND.MAX)
//!     |                                          |                 |
//!     [ hole ][##SACKed##][ hole ][##SACKed##]---[    un-SACKed    ]
//!              range 0             range 1
//! ```
//!
//! The scoreboard records the SACKed ranges above SND.UNA as a sorted list
//! of disjoint, non-adjacent `[left, right)` ranges with a fixed capacity.
//! When a new range would exceed it, the **lowest** range is forgotten:
//! those bytes are then treated as not SACKed, which at worst causes a
//! spurious retransmission of data the receiver already holds (the
//! receiver reports it again, RFC 2018 §8), never the wrong belief that it
//! holds data it does not. The lowest range is chosen because the highest
//! ranges carry HighSACK and decide `IsLost()` for every hole.
//!
//! Sequence numbers here follow our half-open convention: `high_sacked()`
//! and the high-retransmit mark are one *past* the RFC's HighSACK and
//! HighRxt octets.

use crate::wire::tcp::SackBlock;
use crate::wire::SeqNumber;

/// RFC 6675 §2: DupThresh.
pub(crate) const DUP_THRESH: usize = 3;

/// Which NextSeg() rule produced a segment (RFC 6675 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegKind {
    /// Rule 1: retransmit a hole that IsLost() says is lost.
    Lost,
    /// Rule 2: send new data starting at SND.MAX.
    New,
    /// Rule 3: retransmit a hole below HighSACK not (yet) deemed lost.
    Unsacked,
    /// Rule 4: the one rescue retransmission per recovery, covering the
    /// highest outstanding un-SACKed octet. After sending it, call
    /// [`Scoreboard::mark_rescue`] (and not `mark_retransmitted`).
    Rescue,
}

/// A segment chosen by [`Scoreboard::next_seg`]: send `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NextSeg {
    /// First sequence number to send.
    pub start: SeqNumber,
    /// One past the last sequence number to send.
    pub end: SeqNumber,
    /// The rule that chose it.
    pub kind: SegKind,
}

impl NextSeg {
    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    /// Always false: NextSeg never returns an empty segment.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// A hole (un-SACKed run) and what lies above it.
#[derive(Debug, Clone, Copy)]
struct Hole {
    start: SeqNumber,
    end: SeqNumber,
    /// SACKed bytes above the hole.
    sacked_above: usize,
    /// Discontiguous SACKed ranges above the hole.
    ranges_above: usize,
}

fn lost_by(sacked_above: usize, ranges_above: usize, mss: usize) -> bool {
    ranges_above >= DUP_THRESH || sacked_above > (DUP_THRESH - 1) * mss
}

/// The sender's record of SACKed data (RFC 6675 §3 "scoreboard").
#[derive(Debug, Clone)]
pub(crate) struct Scoreboard {
    ranges: Vec<SackBlock>,
    /// One past HighRxt: the end of the highest retransmission (valid with
    /// [`HIGH_RXT`] in `marks`).
    high_rxt: SeqNumber,
    /// RescueRxt (valid with [`RESCUE_RXT`] in `marks`).
    rescue_rxt: SeqNumber,
    max_blocks: u16,
    /// Which of the two marks are set: two `Option`s would take 16 bytes
    /// where this takes one (40 bytes in all, where it took 48).
    marks: u8,
}

/// `Scoreboard::marks`: HighRxt is set.
const HIGH_RXT: u8 = 1;
/// `Scoreboard::marks`: RescueRxt is set.
const RESCUE_RXT: u8 = 2;

impl Scoreboard {
    /// An empty scoreboard holding at most `max_blocks` ranges (saturated
    /// at `u16::MAX`). It holds no memory until a block is recorded: then
    /// it allocates room for all `max_blocks` at once, its only
    /// allocation. (A connection holds none at all until the peer first
    /// SACKs: see `Connection::sb`.)
    pub(crate) const fn new(max_blocks: usize) -> Scoreboard {
        Scoreboard {
            ranges: Vec::new(),
            high_rxt: SeqNumber(0),
            rescue_rxt: SeqNumber(0),
            max_blocks: if max_blocks > u16::MAX as usize {
                u16::MAX
            } else {
                max_blocks as u16
            },
            marks: 0,
        }
    }

    /// A mark, when set.
    #[inline]
    fn mark(&self, bit: u8, at: SeqNumber) -> Option<SeqNumber> {
        (self.marks & bit != 0).then_some(at)
    }

    /// HighRxt, when set.
    #[inline]
    fn high(&self) -> Option<SeqNumber> {
        self.mark(HIGH_RXT, self.high_rxt)
    }

    /// Sets HighRxt.
    #[inline]
    fn set_high(&mut self, at: SeqNumber) {
        self.high_rxt = at;
        self.marks |= HIGH_RXT;
    }

    /// The SACKed ranges, lowest first.
    #[cfg(test)]
    pub(crate) fn ranges(&self) -> &[SackBlock] {
        &self.ranges
    }

    /// Forgets all SACK information and retransmission marks (e.g. after an
    /// RTO, RFC 6675 §5.1, or when the peer reneges).
    pub(crate) fn clear(&mut self) {
        self.ranges.clear();
        self.marks = 0;
    }

    /// Whether nothing is SACKed.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The cumulative ACK advanced to `snd_una`: discards SACK state below it.
    pub(crate) fn on_ack(&mut self, snd_una: SeqNumber) {
        let keep_from = self
            .ranges
            .iter()
            .position(|r| r.right > snd_una)
            .unwrap_or(self.ranges.len());
        self.ranges.drain(..keep_from);
        if let Some(first) = self.ranges.first_mut() {
            if first.left < snd_una {
                first.left = snd_una;
            }
        }
        if self.high().is_some_and(|h| h <= snd_una) {
            self.marks &= !HIGH_RXT;
        }
    }

    /// RFC 6675 Update(): applies the cumulative ACK `snd_una` and the SACK
    /// `blocks` of one ACK, for data up to `snd_max`. Returns how many bytes
    /// were newly SACKed (the "DupAck" test of RFC 6675 §2 needs it).
    ///
    /// Blocks that are empty, reach above `snd_max` or lie entirely at or
    /// below `snd_una` (a D-SACK, RFC 2883, or a stale block) are ignored;
    /// a block straddling `snd_una` is trimmed to start there.
    pub(crate) fn update(
        &mut self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        blocks: &[SackBlock],
    ) -> usize {
        self.on_ack(snd_una);
        let mut newly = 0;
        for b in blocks {
            if b.left >= b.right || b.right > snd_max || b.right <= snd_una {
                continue;
            }
            let left = b.left.max(snd_una);
            newly += self.insert(left, b.right);
        }
        newly
    }

    /// Inserts `[left, right)`; returns the bytes not already SACKed.
    fn insert(&mut self, left: SeqNumber, right: SeqNumber) -> usize {
        let first = self.ranges.partition_point(|r| r.right < left);
        let last = self.ranges.partition_point(|r| r.left <= right);
        if first == last {
            let max = usize::from(self.max_blocks);
            if self.ranges.len() >= max {
                if first == 0 || max == 0 {
                    // The new range would itself be the lowest: forget it.
                    return 0;
                }
                self.ranges.remove(0);
                self.ranges.insert(first - 1, SackBlock { left, right });
            } else {
                if self.ranges.capacity() == 0 {
                    self.ranges.reserve_exact(max);
                }
                self.ranges.insert(first, SackBlock { left, right });
            }
            return right - left;
        }
        let covered: usize = self.ranges[first..last]
            .iter()
            .map(|r| {
                let lo = r.left.max(left);
                let hi = r.right.min(right);
                if lo < hi {
                    hi - lo
                } else {
                    0
                }
            })
            .sum();
        let merged = SackBlock {
            left: self.ranges[first].left.min(left),
            right: self.ranges[last - 1].right.max(right),
        };
        self.ranges[first] = merged;
        self.ranges.drain(first + 1..last);
        (right - left) - covered
    }

    /// Whether `seq` has been SACKed.
    #[cfg(test)]
    pub(crate) fn is_sacked(&self, seq: SeqNumber) -> bool {
        self.ranges.iter().any(|r| seq.in_range(r.left, r.right))
    }

    /// One past the highest SACKed octet (RFC 6675 HighSACK + 1), if any.
    pub(crate) fn highest_sacked(&self) -> Option<SeqNumber> {
        self.ranges.last().map(|r| r.right)
    }

    /// Total SACKed bytes held.
    #[cfg(test)]
    pub(crate) fn sacked_bytes(&self) -> usize {
        self.ranges.iter().map(|r| r.right - r.left).sum()
    }

    /// RFC 6675 IsLost(seq): true when DupThresh discontiguous SACKed ranges
    /// lie above `seq`, or more than (DupThresh - 1) * SMSS bytes above
    /// `seq` are SACKed.
    pub(crate) fn is_lost(&self, seq: SeqNumber, mss: usize) -> bool {
        let mut bytes = 0;
        let mut count = 0;
        for r in &self.ranges {
            if r.left > seq {
                count += 1;
                bytes += r.right - r.left;
            } else if r.right > seq + 1 {
                bytes += r.right - (seq + 1);
            }
        }
        lost_by(bytes, count, mss)
    }

    /// Visits the holes in `[snd_una, snd_max)` from low to high until `f`
    /// returns `Some`.
    fn find_hole<T>(
        &self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        mut f: impl FnMut(&Hole) -> Option<T>,
    ) -> Option<T> {
        let clip = |r: &SackBlock| {
            let l = r.left.max(snd_una);
            let h = r.right.min(snd_max);
            (l < h).then_some((l, h))
        };
        let mut above: usize = self
            .ranges
            .iter()
            .filter_map(clip)
            .map(|(l, h)| h - l)
            .sum();
        let mut count = self.ranges.iter().filter_map(clip).count();
        let mut cursor = snd_una;
        for (l, h) in self.ranges.iter().filter_map(clip) {
            if cursor < l {
                let hole = Hole {
                    start: cursor,
                    end: l,
                    sacked_above: above,
                    ranges_above: count,
                };
                if let Some(t) = f(&hole) {
                    return Some(t);
                }
            }
            above -= h - l;
            count -= 1;
            cursor = cursor.max(h);
        }
        if cursor < snd_max {
            let hole = Hole {
                start: cursor,
                end: snd_max,
                sacked_above: 0,
                ranges_above: 0,
            };
            return f(&hole);
        }
        None
    }

    /// RFC 6675 SetPipe(): the sender's estimate of bytes in flight in
    /// `[snd_una, snd_max)`. Each un-SACKed octet counts once unless
    /// IsLost() says it is lost, and once more if it was retransmitted
    /// (lies below HighRxt).
    pub(crate) fn pipe(&self, snd_una: SeqNumber, snd_max: SeqNumber, mss: usize) -> usize {
        if snd_max <= snd_una {
            return 0;
        }
        let mut pipe = 0;
        let high_rxt = self.high();
        self.find_hole(snd_una, snd_max, |h| {
            let len = h.end - h.start;
            if !lost_by(h.sacked_above, h.ranges_above, mss) {
                pipe += len;
            }
            if let Some(rx) = high_rxt {
                if rx > h.start {
                    pipe += rx.min(h.end) - h.start;
                }
            }
            None::<()>
        });
        pipe
    }

    /// RFC 6675 NextSeg(): what to send next during loss recovery.
    ///
    /// `sendable_new` is how many bytes of new data beyond `snd_max` the
    /// application has queued and the peer's window allows (0 if none).
    /// Rules in order: (1) the lowest lost hole above HighRxt and below
    /// HighSACK, (2) new data, (3) the lowest un-SACKed hole above HighRxt
    /// and below HighSACK, (4) one rescue retransmission per recovery of
    /// the highest outstanding un-SACKed data. Segments are at most `mss`
    /// bytes and never cover SACKed data.
    ///
    /// After sending a rule 1 or 3 segment, call
    /// [`mark_retransmitted`](Self::mark_retransmitted); after rule 4,
    /// [`mark_rescue`](Self::mark_rescue).
    pub(crate) fn next_seg(
        &self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        mss: usize,
        sendable_new: usize,
    ) -> Option<NextSeg> {
        let mss = mss.max(1);
        if snd_max < snd_una {
            return None;
        }
        let from = self.high().map_or(snd_una, |h| h.max(snd_una));
        let high_sack = self.highest_sacked();
        // The first un-SACKed octet S2 >= HighRxt, below HighSACK.
        let candidate = high_sack.and_then(|hs| {
            self.find_hole(snd_una, hs.min(snd_max), |h| {
                if h.end <= from {
                    return None;
                }
                let start = h.start.max(from);
                let end = if h.end - start > mss {
                    start + mss
                } else {
                    h.end
                };
                Some((start, end, lost_by(h.sacked_above, h.ranges_above, mss)))
            })
        });
        if let Some((start, end, true)) = candidate {
            return Some(NextSeg {
                start,
                end,
                kind: SegKind::Lost,
            });
        }
        if sendable_new > 0 {
            return Some(NextSeg {
                start: snd_max,
                end: snd_max + sendable_new.min(mss),
                kind: SegKind::New,
            });
        }
        if let Some((start, end, false)) = candidate {
            return Some(NextSeg {
                start,
                end,
                kind: SegKind::Unsacked,
            });
        }
        // Rule 4: a rescue retransmission, once per recovery.
        if self
            .mark(RESCUE_RXT, self.rescue_rxt)
            .is_some_and(|r| snd_una <= r)
        {
            return None;
        }
        let mut top = None;
        self.find_hole(snd_una, snd_max, |h| {
            top = Some((h.start, h.end));
            None::<()>
        });
        let (hole_start, hole_end) = top?;
        let start = if hole_end - hole_start > mss {
            hole_end - mss
        } else {
            hole_start
        };
        Some(NextSeg {
            start,
            end: hole_end,
            kind: SegKind::Rescue,
        })
    }

    /// Starts a loss-recovery episode: HighRxt = HighACK (`snd_una`) and a
    /// rescue retransmission is allowed again once SND.UNA has passed the
    /// previous one.
    pub(crate) fn start_recovery(&mut self, snd_una: SeqNumber) {
        self.set_high(snd_una);
    }

    /// A segment ending just before `end` was retransmitted (NextSeg rule 1
    /// or 3): raises HighRxt (RFC 6675 §5 step C.3).
    pub(crate) fn mark_retransmitted(&mut self, end: SeqNumber) {
        let high = self.high().map_or(end, |h| h.max(end));
        self.set_high(high);
    }

    /// The rescue retransmission (NextSeg rule 4) was sent: RescueRxt =
    /// `recovery_point` (SND.MAX when recovery began).
    pub(crate) fn mark_rescue(&mut self, recovery_point: SeqNumber) {
        self.rescue_rxt = recovery_point;
        self.marks |= RESCUE_RXT;
    }

    /// One past HighRxt, if anything was retransmitted in this recovery.
    pub(crate) fn high_rxt(&self) -> Option<SeqNumber> {
        self.high()
    }

    /// Ends the recovery episode's retransmission accounting.
    pub(crate) fn end_recovery(&mut self) {
        self.marks &= !HIGH_RXT;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    fn s(n: usize) -> SeqNumber {
        SeqNumber(10_000) + n
    }

    /// A block of whole segments `[from, to)` (segment numbers).
    fn seg(from: usize, to: usize) -> SackBlock {
        SackBlock {
            left: s(from * MSS),
            right: s(to * MSS),
        }
    }

    fn ranges(sb: &Scoreboard) -> Vec<(usize, usize)> {
        sb.ranges()
            .iter()
            .map(|r| ((r.left - s(0)) / MSS, (r.right - s(0)) / MSS))
            .collect()
    }

    mod update {
        use super::*;

        #[test]
        fn allocates_once_at_the_first_sack() {
            let mut sb = Scoreboard::new(4);
            assert_eq!(sb.ranges.capacity(), 0, "no SACK, no memory");
            sb.update(s(0), s(10 * MSS), &[]);
            assert_eq!(sb.ranges.capacity(), 0);
            sb.update(s(0), s(100 * MSS), &[seg(2, 3)]);
            let cap = sb.ranges.capacity();
            assert!(cap >= 4, "{cap}");
            for i in 0..200 {
                sb.update(s(0), s(100 * MSS), &[seg(i % 90 + 4, i % 90 + 5)]);
            }
            assert_eq!(sb.ranges.capacity(), cap, "never again");
            sb.clear();
            assert_eq!(
                sb.ranges.capacity(),
                cap,
                "kept for the slot's next connection"
            );
        }

        #[test]
        fn records_and_merges() {
            let mut sb = Scoreboard::new(8);
            assert_eq!(sb.update(s(0), s(10 * MSS), &[seg(2, 3)]), MSS);
            assert_eq!(sb.update(s(0), s(10 * MSS), &[seg(4, 5), seg(2, 3)]), MSS);
            assert_eq!(ranges(&sb), [(2, 3), (4, 5)]);
            // Filling the gap merges; only the new segment is counted.
            assert_eq!(sb.update(s(0), s(10 * MSS), &[seg(2, 5)]), MSS);
            assert_eq!(ranges(&sb), [(2, 5)]);
            // Adjacent blocks merge.
            sb.update(s(0), s(10 * MSS), &[seg(5, 6)]);
            assert_eq!(ranges(&sb), [(2, 6)]);
            assert_eq!(sb.sacked_bytes(), 4 * MSS);
            assert_eq!(sb.highest_sacked(), Some(s(6 * MSS)));
        }

        #[test]
        fn ignores_invalid_blocks() {
            let mut sb = Scoreboard::new(8);
            let una = s(2 * MSS);
            let max = s(10 * MSS);
            let bad = [
                seg(0, 2),  // D-SACK below SND.UNA
                seg(1, 2),  // ends at SND.UNA
                seg(9, 11), // above SND.MAX
                seg(5, 5),  // empty
                SackBlock {
                    left: s(6 * MSS),
                    right: s(5 * MSS),
                }, // reversed
                SackBlock {
                    left: SeqNumber(s(0).0.wrapping_add(1 << 31)),
                    right: s(3 * MSS),
                }, // garbage
            ];
            assert_eq!(sb.update(una, max, &bad), 0);
            assert!(sb.is_empty());
            assert_eq!(sb.highest_sacked(), None);
        }

        #[test]
        fn trims_block_straddling_snd_una() {
            let mut sb = Scoreboard::new(8);
            assert_eq!(sb.update(s(2 * MSS), s(10 * MSS), &[seg(1, 4)]), 2 * MSS);
            assert_eq!(ranges(&sb), [(2, 4)]);
        }

        #[test]
        fn dsack_first_block_then_valid() {
            let mut sb = Scoreboard::new(8);
            // RFC 2883 D-SACK: first block reports a duplicate below the ACK.
            let n = sb.update(s(3 * MSS), s(10 * MSS), &[seg(1, 2), seg(5, 6)]);
            assert_eq!(n, MSS);
            assert_eq!(ranges(&sb), [(5, 6)]);
        }

        #[test]
        fn cumulative_ack_discards_below() {
            let mut sb = Scoreboard::new(8);
            sb.update(s(0), s(10 * MSS), &[seg(2, 3), seg(5, 7)]);
            sb.on_ack(s(3 * MSS));
            assert_eq!(ranges(&sb), [(5, 7)]);
            sb.on_ack(s(6 * MSS));
            assert_eq!(ranges(&sb), [(6, 7)]);
            sb.update(s(8 * MSS), s(10 * MSS), &[]);
            assert!(sb.is_empty());
        }

        #[test]
        fn full_scoreboard_drops_lowest() {
            let mut sb = Scoreboard::new(2);
            sb.update(s(0), s(20 * MSS), &[seg(2, 3), seg(5, 6)]);
            // A higher range evicts the lowest one.
            assert_eq!(sb.update(s(0), s(20 * MSS), &[seg(8, 9)]), MSS);
            assert_eq!(ranges(&sb), [(5, 6), (8, 9)]);
            // A range that would be the lowest is itself dropped.
            assert_eq!(sb.update(s(0), s(20 * MSS), &[seg(1, 2)]), 0);
            assert_eq!(ranges(&sb), [(5, 6), (8, 9)]);
            // One in the middle evicts the lowest.
            sb.update(s(0), s(20 * MSS), &[seg(7, 7)]);
            sb.update(
                s(0),
                s(20 * MSS),
                &[SackBlock {
                    left: s(6500),
                    right: s(6600),
                }],
            );
            assert_eq!(sb.ranges().len(), 2);
            assert_eq!(sb.ranges()[1], seg(8, 9));
            // Merging still works when full.
            assert_eq!(sb.update(s(0), s(20 * MSS), &[seg(8, 12)]), 3 * MSS);
            assert_eq!(sb.highest_sacked(), Some(s(12 * MSS)));
        }

        #[test]
        fn zero_capacity_holds_nothing() {
            let mut sb = Scoreboard::new(0);
            assert_eq!(sb.update(s(0), s(10 * MSS), &[seg(2, 3)]), 0);
            assert!(sb.is_empty());
        }

        #[test]
        fn clear_forgets_everything() {
            let mut sb = Scoreboard::new(4);
            sb.update(s(0), s(10 * MSS), &[seg(2, 3)]);
            sb.mark_retransmitted(s(MSS));
            sb.mark_rescue(s(10 * MSS));
            sb.clear();
            assert!(sb.is_empty());
            assert_eq!(sb.high_rxt(), None);
            assert!(sb.next_seg(s(0), s(10 * MSS), MSS, 0).is_some());
        }

        #[test]
        fn is_sacked_boundaries() {
            let mut sb = Scoreboard::new(4);
            sb.update(s(0), s(10 * MSS), &[seg(2, 3)]);
            assert!(!sb.is_sacked(s(2 * MSS) - 1));
            assert!(sb.is_sacked(s(2 * MSS)));
            assert!(sb.is_sacked(s(3 * MSS) - 1));
            assert!(!sb.is_sacked(s(3 * MSS)));
        }

        #[test]
        fn works_across_wrap() {
            let mut sb = Scoreboard::new(4);
            let una = SeqNumber(u32::MAX - 1500);
            let max = una + 10 * MSS;
            let b = SackBlock {
                left: una + 2 * MSS,
                right: una + 5 * MSS,
            };
            assert_eq!(sb.update(una, max, &[b]), 3 * MSS);
            assert!(sb.is_lost(una, MSS));
            assert!(!sb.is_lost(una + 5 * MSS, MSS));
            // Lost hole 0..2 and SACKed 2..5 are out of the pipe.
            assert_eq!(sb.pipe(una, max, MSS), 5 * MSS);
        }
    }

    mod is_lost {
        use super::*;

        #[test]
        fn three_discontiguous_segments_above() {
            let mut sb = Scoreboard::new(8);
            sb.update(s(0), s(10 * MSS), &[seg(1, 2), seg(3, 4)]);
            assert!(!sb.is_lost(s(0), MSS));
            sb.update(s(0), s(10 * MSS), &[seg(5, 6)]);
            assert!(sb.is_lost(s(0), MSS));
            // Segment 2 has only two ranges and 2 SMSS above it.
            assert!(!sb.is_lost(s(2 * MSS), MSS));
        }

        #[test]
        fn more_than_two_smss_bytes_above() {
            let mut sb = Scoreboard::new(8);
            sb.update(s(0), s(10 * MSS), &[seg(1, 3)]);
            assert!(!sb.is_lost(s(0), MSS)); // exactly 2 SMSS: not more
            sb.update(
                s(0),
                s(10 * MSS),
                &[SackBlock {
                    left: s(3 * MSS),
                    right: s(3 * MSS + 1),
                }],
            );
            assert!(sb.is_lost(s(0), MSS));
        }

        #[test]
        fn counts_only_bytes_above_seq() {
            let mut sb = Scoreboard::new(8);
            sb.update(s(0), s(10 * MSS), &[seg(1, 4)]);
            // From inside the range, bytes above are fewer.
            assert!(sb.is_lost(s(0), MSS));
            assert!(!sb.is_lost(s(2 * MSS), MSS));
            assert!(!sb.is_lost(s(5 * MSS), MSS));
        }
    }

    mod pipe {
        use super::*;

        #[test]
        fn no_sack_counts_everything() {
            let sb = Scoreboard::new(8);
            assert_eq!(sb.pipe(s(0), s(10 * MSS), MSS), 10 * MSS);
            assert_eq!(sb.pipe(s(0), s(0), MSS), 0);
        }

        /// 10 segments out, segment 0 lost, segments 1..4 SACKed: segment 0
        /// is lost (4 SMSS above), 4..9 are in flight.
        #[test]
        fn lost_and_sacked_excluded() {
            let mut sb = Scoreboard::new(8);
            sb.update(s(0), s(10 * MSS), &[seg(1, 4)]);
            assert_eq!(sb.pipe(s(0), s(10 * MSS), MSS), 6 * MSS);
        }

        #[test]
        fn retransmitted_counts_again() {
            let mut sb = Scoreboard::new(8);
            sb.update(s(0), s(10 * MSS), &[seg(1, 4)]);
            sb.start_recovery(s(0));
            sb.mark_retransmitted(s(MSS));
            // Segment 0: lost (0) + retransmitted (1).
            assert_eq!(sb.pipe(s(0), s(10 * MSS), MSS), 7 * MSS);
        }

        /// Holes 0, 2, 4 with SACKed 1, 3, 5: holes 0 and 2 have >= 3
        /// ranges or > 2 SMSS above and are lost; hole 4 is not; 6..9 in
        /// flight.
        #[test]
        fn mixed_holes() {
            let mut sb = Scoreboard::new(8);
            sb.update(s(0), s(10 * MSS), &[seg(1, 2), seg(3, 4), seg(5, 6)]);
            assert!(sb.is_lost(s(0), MSS));
            assert!(!sb.is_lost(s(2 * MSS), MSS));
            assert_eq!(sb.pipe(s(0), s(10 * MSS), MSS), MSS + MSS + 4 * MSS);
        }
    }

    mod next_seg {
        use super::*;

        #[test]
        fn rule1_lost_hole_first() {
            let mut sb = Scoreboard::new(8);
            sb.update(s(0), s(10 * MSS), &[seg(1, 4)]);
            sb.start_recovery(s(0));
            let n = sb.next_seg(s(0), s(10 * MSS), MSS, 5000).unwrap();
            assert_eq!((n.start, n.end, n.kind), (s(0), s(MSS), SegKind::Lost));
            assert_eq!(n.len(), MSS);
            assert!(!n.is_empty());
        }

        #[test]
        fn rule1_respects_high_rxt_and_splits_by_mss() {
            let mut sb = Scoreboard::new(8);
            // Segments 0..3 lost, 3..6 SACKed.
            sb.update(s(0), s(10 * MSS), &[seg(3, 6)]);
            sb.start_recovery(s(0));
            let mut sent = Vec::new();
            while let Some(n) = sb.next_seg(s(0), s(10 * MSS), MSS, 0) {
                if n.kind != SegKind::Lost {
                    break;
                }
                sent.push(((n.start - s(0)) / MSS, n.len()));
                sb.mark_retransmitted(n.end);
            }
            assert_eq!(sent, [(0, MSS), (1, MSS), (2, MSS)]);
        }

        #[test]
        fn rule1_segment_stops_at_sacked_range() {
            let mut sb = Scoreboard::new(8);
            sb.update(
                s(0),
                s(10 * MSS),
                &[SackBlock {
                    left: s(500),
                    right: s(4 * MSS),
                }],
            );
            let n = sb.next_seg(s(0), s(10 * MSS), MSS, 0).unwrap();
            assert_eq!((n.start, n.end, n.kind), (s(0), s(500), SegKind::Lost));
        }

        #[test]
        fn rule2_new_data_when_nothing_lost() {
            let mut sb = Scoreboard::new(8);
            // One SACKed segment: hole 0 is not lost yet.
            sb.update(s(0), s(10 * MSS), &[seg(1, 2)]);
            let n = sb.next_seg(s(0), s(10 * MSS), MSS, 300).unwrap();
            assert_eq!(
                (n.start, n.end, n.kind),
                (s(10 * MSS), s(10 * MSS + 300), SegKind::New)
            );
            let n = sb.next_seg(s(0), s(10 * MSS), MSS, 50_000).unwrap();
            assert_eq!(n.len(), MSS);
        }

        #[test]
        fn rule3_unsacked_hole_when_no_new_data() {
            let mut sb = Scoreboard::new(8);
            sb.update(s(0), s(10 * MSS), &[seg(1, 2)]);
            sb.start_recovery(s(0));
            let n = sb.next_seg(s(0), s(10 * MSS), MSS, 0).unwrap();
            assert_eq!((n.start, n.end, n.kind), (s(0), s(MSS), SegKind::Unsacked));
            sb.mark_retransmitted(n.end);
            // Nothing below HighSACK is left: rule 4.
            let n = sb.next_seg(s(0), s(10 * MSS), MSS, 0).unwrap();
            assert_eq!(n.kind, SegKind::Rescue);
        }

        #[test]
        fn rule4_rescue_once_per_recovery() {
            let mut sb = Scoreboard::new(8);
            sb.update(s(0), s(10 * MSS), &[seg(1, 4)]);
            sb.start_recovery(s(0));
            sb.mark_retransmitted(s(MSS));
            // Holes above HighSACK (4..10) only: rescue the highest octets.
            let n = sb.next_seg(s(0), s(10 * MSS), MSS, 0).unwrap();
            assert_eq!(
                (n.start, n.end, n.kind),
                (s(9 * MSS), s(10 * MSS), SegKind::Rescue)
            );
            sb.mark_rescue(s(10 * MSS));
            assert_eq!(sb.next_seg(s(0), s(10 * MSS), MSS, 0), None);
            // After SND.UNA passes RescueRxt a new rescue is allowed.
            // RFC 6675 rule 4 requires HighACK > RescueRxt, strictly.
            sb.on_ack(s(10 * MSS));
            assert_eq!(sb.next_seg(s(10 * MSS), s(12 * MSS), MSS, 0), None);
            sb.on_ack(s(11 * MSS));
            assert_eq!(
                sb.next_seg(s(11 * MSS), s(12 * MSS), MSS, 0)
                    .map(|n| n.kind),
                Some(SegKind::Rescue)
            );
        }

        #[test]
        fn rescue_short_tail_hole() {
            let mut sb = Scoreboard::new(8);
            // SACKed up to just below SND.MAX: the top hole is 200 bytes.
            sb.update(
                s(0),
                s(10 * MSS),
                &[SackBlock {
                    left: s(MSS),
                    right: s(10 * MSS - 200),
                }],
            );
            sb.mark_retransmitted(s(MSS));
            let n = sb.next_seg(s(0), s(10 * MSS), MSS, 0).unwrap();
            assert_eq!(
                (n.start, n.end, n.kind),
                (s(10 * MSS - 200), s(10 * MSS), SegKind::Rescue)
            );
        }

        #[test]
        fn nothing_outstanding_nothing_to_send() {
            let sb = Scoreboard::new(8);
            assert_eq!(sb.next_seg(s(0), s(0), MSS, 0), None);
            let n = sb.next_seg(s(0), s(0), MSS, 10).unwrap();
            assert_eq!(n.kind, SegKind::New);
        }

        /// An RFC 6675-style episode: 20 segments out; 2 and 7 dropped; the
        /// others SACKed as they arrive.
        #[test]
        fn recovery_episode() {
            let una = s(2 * MSS);
            let max = s(20 * MSS);
            let mut sb = Scoreboard::new(8);
            // ACKs for 3, 4, 5 (dupacks) SACK segments 3..6.
            sb.update(una, max, &[seg(3, 4)]);
            sb.update(una, max, &[seg(3, 5)]);
            assert!(!sb.is_lost(una, MSS));
            sb.update(una, max, &[seg(3, 6)]);
            assert!(sb.is_lost(una, MSS)); // 3 SMSS above: enter recovery
            sb.start_recovery(una);
            assert_eq!(sb.pipe(una, max, MSS), 18 * MSS - 3 * MSS - MSS);
            let n = sb.next_seg(una, max, MSS, 0).unwrap();
            assert_eq!((n.start, n.kind), (una, SegKind::Lost));
            sb.mark_retransmitted(n.end);
            assert_eq!(sb.pipe(una, max, MSS), 15 * MSS);
            // 8..20 SACKed: segment 7 becomes lost.
            sb.update(una, max, &[seg(8, 20), seg(3, 7)]);
            assert_eq!(ranges(&sb), [(3, 7), (8, 20)]);
            let n = sb.next_seg(una, max, MSS, 0).unwrap();
            assert_eq!(
                (n.start, n.end, n.kind),
                (s(7 * MSS), s(8 * MSS), SegKind::Lost)
            );
            sb.mark_retransmitted(n.end);
            // Both retransmissions are in flight.
            assert_eq!(sb.pipe(una, max, MSS), 2 * MSS);
            // The retransmission of 2 is acknowledged: 2..7 cumulative.
            let una = s(7 * MSS);
            sb.update(una, max, &[seg(8, 20)]);
            assert_eq!(sb.pipe(una, max, MSS), MSS);
            assert_eq!(
                sb.next_seg(una, max, MSS, 0).map(|n| n.kind),
                Some(SegKind::Rescue)
            );
            sb.on_ack(max);
            sb.end_recovery();
            assert!(sb.is_empty());
            assert_eq!(sb.high_rxt(), None);
        }
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// The scoreboard never holds more than its capacity, its ranges
            /// stay sorted and disjoint inside (SND.UNA, SND.MAX], and every
            /// byte it calls SACKed was reported in some block.
            #[test]
            fn invariants(cap in 1usize..6, acks in proptest::collection::vec(
                (0usize..40, proptest::collection::vec((0usize..60, 1usize..10), 0..4)), 1..30)) {
                let base = SeqNumber(u32::MAX - 20_000);
                let max = base + 60 * MSS;
                let mut sb = Scoreboard::new(cap);
                let mut reported = [false; 60];
                let mut una_seg = 0usize;
                for (ack, blocks) in acks {
                    una_seg = una_seg.max(ack);
                    let una = base + una_seg * MSS;
                    let blocks: Vec<SackBlock> = blocks.iter().map(|&(l, n)| SackBlock {
                        left: base + l * MSS,
                        right: base + (l + n).min(60) * MSS,
                    }).collect();
                    for b in &blocks {
                        let l = (b.left - base) / MSS;
                        let r = (b.right - base) / MSS;
                        for x in reported.iter_mut().take(r).skip(l.max(una_seg)) {
                            *x = true;
                        }
                    }
                    sb.update(una, max, &blocks);
                    prop_assert!(sb.ranges().len() <= cap);
                    for w in sb.ranges().windows(2) {
                        prop_assert!(w[0].right < w[1].left);
                    }
                    for r in sb.ranges() {
                        prop_assert!(r.left >= una && r.right <= max && r.left < r.right);
                        let l = (r.left - base) / MSS;
                        let h = (r.right - base) / MSS;
                        prop_assert!(reported[l..h].iter().all(|x| *x));
                    }
                    let pipe = sb.pipe(una, max, MSS);
                    prop_assert!(pipe <= (max - una) - sb.sacked_bytes());
                    if let Some(n) = sb.next_seg(una, max, MSS, 0) {
                        prop_assert!(n.len() <= MSS && !n.is_empty());
                        prop_assert!(n.start >= una && n.end <= max);
                        prop_assert!(!sb.is_sacked(n.start));
                        prop_assert!(!sb.is_sacked(n.end - 1));
                    }
                }
            }
        }
    }
}

//! Out-of-order bookkeeping for the receive side: which bytes beyond
//! RCV.NXT have arrived (RFC 9293 §3.10.7.4 "segment text" processing keeps
//! out-of-order data "for later processing"), and the SACK blocks that
//! report them (RFC 2018 §4).
//!
//! The [`Assembler`] only tracks *offsets*; the bytes themselves live in the
//! socket's receive buffer at the same offsets. Offsets are relative to the
//! current RCV.NXT:
//!
//! ```text
//!   RCV.NXT
//!     |  offset 0
//!     v
//!     [ hole ][ range 0 ][ hole ][ range 1 ]...      (at most max_ranges)
//! ```
//!
//! Ranges are kept sorted, non-overlapping and non-adjacent (touching
//! ranges are merged). The list has a fixed capacity chosen at creation and
//! never allocates afterwards; a segment that would need one range too many
//! is refused ([`TooManyRanges`]) and the state is left unchanged, so the
//! caller simply drops that segment (the peer retransmits it).

use core::fmt;

use crate::wire::tcp::{SackBlock, MAX_SACK_BLOCKS};
use crate::wire::SeqNumber;

/// [`Assembler::add`] would need more ranges than the assembler holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyRanges;

impl fmt::Display for TooManyRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too many out-of-order ranges")
    }
}

impl std::error::Error for TooManyRanges {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: usize,
    end: usize,
    /// When the range last grew: a counter, higher is more recent.
    stamp: u32,
}

/// A bounded set of received byte ranges beyond RCV.NXT.
///
/// # Examples
///
/// ```ignore
/// use mtcp_stack::tcp::reassembly::Assembler;
///
/// let mut asm = Assembler::new(4);
/// asm.add(100, 50).unwrap();        // bytes 100..150 arrived early
/// assert_eq!(asm.remove_front(), 0); // nothing contiguous yet
/// // The in-order segment 0..100 fills the hole: RCV.NXT advances by 150.
/// assert_eq!(asm.advance(100), 150);
/// assert!(asm.is_empty());
/// ```
#[derive(Debug, Clone)]
pub(crate) struct Assembler {
    ranges: Vec<Range>,
    /// At most this many ranges (a `u32`, like the clock: 32 bytes in all).
    max_ranges: u32,
    /// The last stamp handed out; restarts when it would reach
    /// `u32::MAX` (see [`Assembler::restamp`]).
    clock: u32,
}

impl Assembler {
    /// An empty assembler holding at most `max_ranges` disjoint ranges
    /// (saturated at `u32::MAX`). It holds no memory until the first range
    /// is added: then it allocates room for all `max_ranges` at once, its
    /// only allocation. (A connection holds no assembler at all until its
    /// first out-of-order segment: see `Connection::ooo`.)
    pub(crate) const fn new(max_ranges: usize) -> Assembler {
        Assembler {
            ranges: Vec::new(),
            max_ranges: if max_ranges > u32::MAX as usize {
                u32::MAX
            } else {
                max_ranges as u32
            },
            clock: 0,
        }
    }

    /// Whether no out-of-order data is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of disjoint ranges held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// The ranges held, as half-open `(start, end)` offsets, in order.
    #[cfg(test)]
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.ranges.iter().map(|r| (r.start, r.end))
    }

    /// Forgets everything (e.g. on connection reset).
    pub(crate) fn clear(&mut self) {
        self.ranges.clear();
        self.clock = 0;
    }

    /// Records that bytes `offset..offset + len` have arrived, merging with
    /// overlapping or adjacent ranges. The range becomes the most recent one
    /// for [`sack_blocks`](Self::sack_blocks). An empty range is a no-op.
    ///
    /// # Errors
    ///
    /// [`TooManyRanges`] when the bytes touch no held range and all
    /// `max_ranges` slots are in use; nothing is changed then. For in-order
    /// data (offset 0) use [`advance`](Self::advance), which cannot fail.
    pub(crate) fn add(&mut self, offset: usize, len: usize) -> Result<(), TooManyRanges> {
        if len == 0 {
            return Ok(());
        }
        let end = offset.saturating_add(len);
        // First range that ends at or after `offset`: the first candidate
        // to merge with (touching counts).
        let first = self.ranges.partition_point(|r| r.end < offset);
        // First range that starts after `end`: one past the last to merge.
        let last = self.ranges.partition_point(|r| r.start <= end);
        let max = self.max_ranges as usize;
        if first == last && self.ranges.len() >= max {
            return Err(TooManyRanges);
        }
        if self.clock >= u32::MAX - 1 {
            self.restamp();
        }
        self.clock += 1;
        let stamp = self.clock;
        if first == last {
            if self.ranges.capacity() == 0 {
                self.ranges.reserve_exact(max);
            }
            self.ranges.insert(
                first,
                Range {
                    start: offset,
                    end,
                    stamp,
                },
            );
        } else {
            let merged = Range {
                start: self.ranges[first].start.min(offset),
                end: self.ranges[last - 1].end.max(end),
                stamp,
            };
            self.ranges[first] = merged;
            self.ranges.drain(first + 1..last);
        }
        Ok(())
    }

    /// The clock is about to run out (after four billion out-of-order
    /// segments with data held all along): the ranges get stamps 1..=n in
    /// sequence order and the clock restarts from n. The range that grows
    /// next is stamped newest at once, so the first SACK block stays the
    /// one RFC 2018 §4 requires; only the order of the others may differ,
    /// once.
    #[cold]
    fn restamp(&mut self) {
        for (i, r) in self.ranges.iter_mut().enumerate() {
            r.stamp = i as u32 + 1;
        }
        self.clock = self.ranges.len() as u32;
    }

    /// When bytes are present at offset 0, removes that range, shifts the
    /// others down by its length and returns it: the number of bytes by
    /// which RCV.NXT may advance. Otherwise returns 0.
    #[cfg(test)]
    pub(crate) fn remove_front(&mut self) -> usize {
        match self.ranges.first() {
            Some(r) if r.start == 0 => {
                let n = r.end;
                self.ranges.remove(0);
                self.shift(n);
                n
            }
            _ => 0,
        }
    }

    /// An in-order segment of `len` bytes arrived at offset 0: consumes it
    /// together with every held range it reaches (overlapping or adjacent),
    /// shifts the rest down, and returns how far RCV.NXT advances (at least
    /// `len`). Never fails, whatever the number of ranges held.
    pub(crate) fn advance(&mut self, len: usize) -> usize {
        let reached = self.ranges.partition_point(|r| r.start <= len);
        let total = if reached == 0 {
            len
        } else {
            len.max(self.ranges[reached - 1].end)
        };
        self.ranges.drain(..reached);
        self.shift(total);
        total
    }

    fn shift(&mut self, n: usize) {
        for r in &mut self.ranges {
            r.start -= n;
            r.end -= n;
        }
    }

    /// SACK blocks for the data held, in RFC 2018 §4 order: the block that
    /// grew most recently (holding the segment that triggered this ACK)
    /// first, then the others from most to least recently updated; at most
    /// [`MAX_SACK_BLOCKS`]. Take fewer (e.g. 3 when timestamps are on) with
    /// `Iterator::take`.
    ///
    /// Offsets are mapped onto sequence space from `rcv_nxt` with wrapping
    /// arithmetic; they are at most the receive window, so this is exact.
    pub(crate) fn sack_blocks(&self, rcv_nxt: SeqNumber) -> SackBlocks {
        let mut out = SackBlocks {
            blocks: [SackBlock {
                left: rcv_nxt,
                right: rcv_nxt,
            }; MAX_SACK_BLOCKS],
            len: 0,
            pos: 0,
        };
        // Selection by decreasing stamp: at most MAX_SACK_BLOCKS passes over
        // at most max_ranges entries. Stamps are unique.
        let mut below = u32::MAX;
        while out.len < MAX_SACK_BLOCKS {
            let best = self
                .ranges
                .iter()
                .filter(|r| r.stamp < below)
                .max_by_key(|r| r.stamp);
            let Some(r) = best else { break };
            below = r.stamp;
            out.blocks[out.len] = SackBlock {
                left: SeqNumber(rcv_nxt.0.wrapping_add(r.start as u32)),
                right: SeqNumber(rcv_nxt.0.wrapping_add(r.end as u32)),
            };
            out.len += 1;
        }
        out
    }
}

/// Iterator over the SACK blocks from [`Assembler::sack_blocks`]; holds
/// them by value, so it borrows nothing and allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct SackBlocks {
    blocks: [SackBlock; MAX_SACK_BLOCKS],
    len: usize,
    pos: usize,
}

impl Iterator for SackBlocks {
    type Item = SackBlock;

    fn next(&mut self) -> Option<SackBlock> {
        if self.pos < self.len {
            self.pos += 1;
            Some(self.blocks[self.pos - 1])
        } else {
            None
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len - self.pos;
        (n, Some(n))
    }
}

impl ExactSizeIterator for SackBlocks {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(a: &Assembler) -> Vec<(usize, usize)> {
        a.ranges().collect()
    }

    #[test]
    fn a_clock_that_runs_out_restarts_and_keeps_the_newest_first() {
        let mut a = Assembler::new(4);
        a.clock = u32::MAX - 3;
        a.add(300, 10).unwrap(); // stamp MAX - 2
        a.add(100, 10).unwrap(); // stamp MAX - 1: the clock is used up
        a.add(200, 10).unwrap(); // restamped 1, 2, then this one 4
        assert!(a.clock < 10, "{}", a.clock);
        let first = a.sack_blocks(SeqNumber(0)).next().unwrap();
        assert_eq!((first.left, first.right), (SeqNumber(200), SeqNumber(210)));
        assert_eq!(a.sack_blocks(SeqNumber(0)).len(), 3);
        // Growing an old range makes it the newest again.
        a.add(110, 5).unwrap();
        let first = a.sack_blocks(SeqNumber(0)).next().unwrap();
        assert_eq!((first.left, first.right), (SeqNumber(100), SeqNumber(115)));
        assert_eq!(ranges(&a), vec![(100, 115), (200, 210), (300, 310)]);
    }

    mod add {
        use super::*;

        #[test]
        fn disjoint_ranges_sorted() {
            let mut a = Assembler::new(8);
            a.add(50, 10).unwrap();
            a.add(10, 5).unwrap();
            a.add(30, 5).unwrap();
            assert_eq!(ranges(&a), [(10, 15), (30, 35), (50, 60)]);
            assert_eq!(a.len(), 3);
        }

        #[test]
        fn overlap_and_adjacency_merge() {
            let mut a = Assembler::new(8);
            a.add(10, 10).unwrap(); // 10..20
            a.add(20, 5).unwrap(); // adjacent after
            assert_eq!(ranges(&a), [(10, 25)]);
            a.add(5, 5).unwrap(); // adjacent before
            assert_eq!(ranges(&a), [(5, 25)]);
            a.add(20, 10).unwrap(); // overlapping tail
            assert_eq!(ranges(&a), [(5, 30)]);
            a.add(7, 3).unwrap(); // contained
            assert_eq!(ranges(&a), [(5, 30)]);
        }

        #[test]
        fn bridging_merges_many() {
            let mut a = Assembler::new(8);
            for i in 0..5 {
                a.add(10 + i * 10, 5).unwrap();
            }
            assert_eq!(a.len(), 5);
            a.add(12, 40).unwrap();
            assert_eq!(ranges(&a), [(10, 55)]);
        }

        #[test]
        fn full_rejects_without_change() {
            let mut a = Assembler::new(2);
            a.add(10, 5).unwrap();
            a.add(30, 5).unwrap();
            let before = ranges(&a);
            assert_eq!(a.add(50, 5), Err(TooManyRanges));
            assert_eq!(a.add(20, 5), Err(TooManyRanges));
            assert_eq!(ranges(&a), before);
            // Merging needs no new slot, so it still works when full.
            a.add(15, 15).unwrap();
            assert_eq!(ranges(&a), [(10, 35)]);
            a.add(50, 5).unwrap();
        }

        #[test]
        fn zero_capacity_and_zero_length() {
            let mut a = Assembler::new(0);
            assert_eq!(a.add(1, 1), Err(TooManyRanges));
            assert_eq!(a.add(1, 0), Ok(()));
            assert!(a.is_empty());
            assert_eq!(a.advance(10), 10);
        }

        #[test]
        fn huge_offset_saturates() {
            let mut a = Assembler::new(2);
            a.add(usize::MAX - 1, 10).unwrap();
            assert_eq!(ranges(&a), [(usize::MAX - 1, usize::MAX)]);
        }

        #[test]
        fn allocates_once_at_the_first_out_of_order_range() {
            let mut a = Assembler::new(4);
            assert_eq!(a.ranges.capacity(), 0, "in-order data needs no memory");
            assert_eq!(a.advance(100), 100);
            assert_eq!(a.ranges.capacity(), 0);
            a.add(200, 10).unwrap();
            let cap = a.ranges.capacity();
            assert!(cap >= 4, "{cap}");
            for i in 0..1000 {
                let _ = a.add((i * 37) % 300, 3);
                if i % 7 == 0 {
                    a.remove_front();
                }
            }
            assert_eq!(a.ranges.capacity(), cap);
        }

        #[test]
        fn error_displays() {
            assert_eq!(TooManyRanges.to_string(), "too many out-of-order ranges");
        }
    }

    mod front {
        use super::*;

        #[test]
        fn remove_front_needs_offset_zero() {
            let mut a = Assembler::new(4);
            a.add(5, 5).unwrap();
            assert_eq!(a.remove_front(), 0);
            a.add(0, 5).unwrap();
            assert_eq!(a.remove_front(), 10);
            assert!(a.is_empty());
            assert_eq!(a.remove_front(), 0);
        }

        #[test]
        fn remove_front_shifts_rest() {
            let mut a = Assembler::new(4);
            a.add(0, 10).unwrap();
            a.add(20, 10).unwrap();
            a.add(40, 5).unwrap();
            assert_eq!(a.remove_front(), 10);
            assert_eq!(ranges(&a), [(10, 20), (30, 35)]);
        }

        #[test]
        fn advance_fills_holes() {
            let mut a = Assembler::new(4);
            a.add(10, 10).unwrap();
            a.add(30, 10).unwrap();
            // Not reaching the first range.
            assert_eq!(a.advance(5), 5);
            assert_eq!(ranges(&a), [(5, 15), (25, 35)]);
            // Exactly adjacent to the first range.
            assert_eq!(a.advance(5), 15);
            assert_eq!(ranges(&a), [(10, 20)]);
            // Past the whole range.
            assert_eq!(a.advance(30), 30);
            assert!(a.is_empty());
        }

        #[test]
        fn advance_works_when_full() {
            let mut a = Assembler::new(1);
            a.add(10, 10).unwrap();
            assert_eq!(a.add(0, 5), Err(TooManyRanges));
            assert_eq!(a.advance(5), 5);
            assert_eq!(a.advance(5), 15);
        }
    }

    mod sack {
        use super::*;

        fn blocks(a: &Assembler, nxt: u32) -> Vec<(u32, u32)> {
            a.sack_blocks(SeqNumber(nxt))
                .map(|b| (b.left.0, b.right.0))
                .collect()
        }

        #[test]
        fn most_recent_first() {
            let mut a = Assembler::new(8);
            a.add(10, 5).unwrap();
            a.add(30, 5).unwrap();
            a.add(50, 5).unwrap();
            assert_eq!(blocks(&a, 1000), [(1050, 1055), (1030, 1035), (1010, 1015)]);
            // Growing the oldest block makes it the first.
            a.add(15, 2).unwrap();
            assert_eq!(blocks(&a, 1000), [(1010, 1017), (1050, 1055), (1030, 1035)]);
        }

        #[test]
        fn at_most_four_and_take() {
            let mut a = Assembler::new(8);
            for i in 0..6 {
                a.add(10 + i * 10, 5).unwrap();
            }
            let all = blocks(&a, 0);
            assert_eq!(all.len(), MAX_SACK_BLOCKS);
            assert_eq!(all[0], (60, 65));
            assert_eq!(all[3], (30, 35));
            let it = a.sack_blocks(SeqNumber(0));
            assert_eq!(it.len(), 4);
            assert_eq!(it.take(3).count(), 3);
        }

        #[test]
        fn wraps_sequence_space() {
            let mut a = Assembler::new(4);
            a.add(10, 10).unwrap();
            assert_eq!(blocks(&a, u32::MAX - 4), [(5, 15)]);
        }

        #[test]
        fn empty_has_none() {
            let a = Assembler::new(4);
            assert_eq!(a.sack_blocks(SeqNumber(7)).count(), 0);
        }

        #[test]
        fn merge_of_recent_into_old_keeps_block_first() {
            let mut a = Assembler::new(4);
            a.add(40, 5).unwrap();
            a.add(10, 5).unwrap();
            a.add(15, 25).unwrap(); // bridges 10..15 and 40..45
            assert_eq!(blocks(&a, 0), [(10, 45)]);
        }
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        const SPACE: usize = 256;

        #[derive(Debug, Clone)]
        enum Op {
            Add(usize, usize),
            RemoveFront,
            Advance(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (0..SPACE - 40, 0usize..40).prop_map(|(o, l)| Op::Add(o, l)),
                1 => Just(Op::RemoveFront),
                1 => (0usize..30).prop_map(Op::Advance),
            ]
        }

        fn runs(bits: &[bool]) -> Vec<(usize, usize)> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < bits.len() {
                if bits[i] {
                    let s = i;
                    while i < bits.len() && bits[i] {
                        i += 1;
                    }
                    out.push((s, i));
                } else {
                    i += 1;
                }
            }
            out
        }

        fn shift(bits: &mut Vec<bool>, n: usize) {
            bits.drain(..n);
            bits.resize(2 * SPACE, false);
        }

        proptest! {
            /// The assembler equals a naive bitmap, refuses exactly when the
            /// bitmap would need too many runs, and reports the most recent
            /// arrival in the first SACK block.
            #[test]
            fn matches_bitmap(cap in 1usize..6, ops in proptest::collection::vec(op(), 1..60)) {
                let mut a = Assembler::new(cap);
                let mut bits = vec![false; 2 * SPACE];
                for op in ops {
                    match op {
                        Op::Add(o, l) => {
                            let mut next = bits.clone();
                            next[o..o + l].iter_mut().for_each(|b| *b = true);
                            let fits = runs(&next).len() <= cap;
                            let r = a.add(o, l);
                            prop_assert_eq!(r.is_ok(), fits || l == 0);
                            if r.is_ok() {
                                bits = next;
                                if l > 0 {
                                    let first = a.sack_blocks(SeqNumber(0)).next().unwrap();
                                    prop_assert!(first.left.0 as usize <= o);
                                    prop_assert!(first.right.0 as usize >= o + l);
                                }
                            }
                        }
                        Op::RemoveFront => {
                            let want = bits.iter().take_while(|b| **b).count();
                            prop_assert_eq!(a.remove_front(), want);
                            shift(&mut bits, want);
                        }
                        Op::Advance(n) => {
                            bits[..n].iter_mut().for_each(|b| *b = true);
                            let want = bits.iter().take_while(|b| **b).count();
                            prop_assert_eq!(a.advance(n), want);
                            shift(&mut bits, want);
                        }
                    }
                    prop_assert_eq!(ranges(&a), runs(&bits));
                    prop_assert!(a.len() <= cap);
                }
            }
        }
    }
}

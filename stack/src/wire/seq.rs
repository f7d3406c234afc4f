//! TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 §3.4).
//!
//! This is the one place where sequence arithmetic and comparison live.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence number. Ordering is the wrapping order of RFC 9293 §3.4:
/// `a < b` when `b - a`, as a signed 32-bit value, is positive.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// The larger of two sequence numbers in wrapping order.
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self > other {
            self
        } else {
            other
        }
    }

    /// The smaller of two sequence numbers in wrapping order.
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if self < other {
            self
        } else {
            other
        }
    }

    /// True when `lo <= self < hi` in wrapping order.
    pub fn in_range(self, lo: SeqNumber, hi: SeqNumber) -> bool {
        lo <= self && self < hi
    }
}

impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    /// # Panics
    /// Panics when `rhs` does not fit in 31 bits: such a distance has no
    /// meaning in sequence space.
    fn add(self, rhs: usize) -> SeqNumber {
        assert!(
            rhs <= i32::MAX as usize,
            "sequence distance {rhs} too large"
        );
        SeqNumber(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<usize> for SeqNumber {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl Sub<usize> for SeqNumber {
    type Output = SeqNumber;
    /// # Panics
    /// Panics when `rhs` does not fit in 31 bits.
    fn sub(self, rhs: usize) -> SeqNumber {
        assert!(
            rhs <= i32::MAX as usize,
            "sequence distance {rhs} too large"
        );
        SeqNumber(self.0.wrapping_sub(rhs as u32))
    }
}

impl Sub<SeqNumber> for SeqNumber {
    type Output = usize;
    /// The distance from `rhs` up to `self`.
    ///
    /// # Panics
    /// Panics when `rhs` is after `self` (a negative distance is a bug in the
    /// caller, who must compare first).
    fn sub(self, rhs: SeqNumber) -> usize {
        let d = self.0.wrapping_sub(rhs.0) as i32;
        assert!(d >= 0, "sequence {self:?} is before {rhs:?}");
        d as usize
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SeqNumber {
    /// Wrapping order. Not a total order over all of `u32` (two numbers
    /// exactly 2^31 apart compare by the sign bit), which is inherent to
    /// sequence space; callers only compare numbers within a window.
    fn cmp(&self, other: &SeqNumber) -> Ordering {
        (self.0.wrapping_sub(other.0) as i32).cmp(&0)
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_order() {
        let a = SeqNumber(u32::MAX - 5);
        let b = a + 10;
        assert_eq!(b.0, 4);
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b - a, 10);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        assert!(SeqNumber(0).in_range(a, b));
        assert!(!b.in_range(a, b));
        assert_eq!(b - 10, a);
    }

    #[test]
    #[should_panic]
    fn negative_distance_panics() {
        let _ = SeqNumber(1) - SeqNumber(2);
    }
}

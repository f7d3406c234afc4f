//! Path MTU per destination (RFC 1191): a small, bounded, set-associative
//! table filled by ICMP "fragmentation needed" and read when a connection
//! sizes its segments.
//!
//! An entry holds a PMTU lower than the interface MTU; it ages out after
//! [`PmtuConfig::timeout`] (RFC 1191 §6.3 suggests 10 minutes), after which
//! the destination is back at the interface MTU and a smaller path shows
//! itself again with the next Frag-Needed. A reported MTU is clamped to
//! [`PmtuConfig::min_pmtu`] (Linux's `min_pmtu`, 552) so that a forged ICMP
//! cannot shrink segments to nothing, and never below 68 (RFC 791). Every
//! lookup and insert touches one set of [`WAYS`] entries: bounded, no
//! allocation after [`PmtuCache::new`].

use crate::time::{Duration, Instant};
use crate::wire::ipv4::Ipv4Address;

/// Entries per set.
pub(crate) const WAYS: usize = 4;

/// The smallest MTU any IPv4 link has (RFC 791): no PMTU goes below it.
pub(crate) const IPV4_MIN_MTU: u16 = 68;

/// Sizes and timers of a [`PmtuCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmtuConfig {
    /// Sets in the table (total entries: `sets * WAYS`).
    pub sets: usize,
    /// How long a learned PMTU holds (RFC 1191 §6.3).
    pub timeout: Duration,
    /// The lowest PMTU accepted from an ICMP message (raised to it).
    pub min_pmtu: u16,
}

impl Default for PmtuConfig {
    fn default() -> PmtuConfig {
        PmtuConfig {
            sets: 64,
            timeout: Duration::from_secs(600),
            min_pmtu: 552,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    addr: Ipv4Address,
    mtu: u16,
    expires: Instant,
    used: bool,
}

const EMPTY: Entry = Entry {
    addr: Ipv4Address::UNSPECIFIED,
    mtu: 0,
    expires: Instant::ZERO,
    used: false,
};

/// The per-core path MTU table. See the module docs.
#[derive(Debug, Clone)]
pub struct PmtuCache {
    config: PmtuConfig,
    entries: Box<[Entry]>,
}

/// RFC 1191 §7: plateaus to guess from when a router sends no MTU.
const PLATEAUS: [u16; 10] = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/// The MTU to assume when a Frag-Needed carries `reported` for a datagram
/// of `sent_len` bytes: the reported value, or (old routers send 0, or a
/// value not below what was sent) the next plateau below `sent_len`.
pub(crate) fn guess_mtu(reported: u16, sent_len: u16) -> u16 {
    if reported >= IPV4_MIN_MTU && reported < sent_len {
        return reported;
    }
    PLATEAUS
        .iter()
        .copied()
        .find(|&p| p < sent_len)
        .unwrap_or(IPV4_MIN_MTU)
}

impl PmtuCache {
    /// An empty table (allocated here, once).
    ///
    /// # Panics
    /// Panics when `config.sets` is zero.
    pub fn new(config: PmtuConfig) -> PmtuCache {
        assert!(config.sets > 0, "a PMTU table needs at least one set");
        PmtuCache {
            config,
            entries: vec![EMPTY; config.sets * WAYS].into_boxed_slice(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PmtuConfig {
        &self.config
    }

    fn set(&self, addr: Ipv4Address) -> core::ops::Range<usize> {
        // Fibonacci hashing of the address spreads neighbours.
        let h = u32::from(addr).wrapping_mul(0x9e37_79b9);
        let s = (h as usize >> 8) % self.config.sets;
        s * WAYS..(s + 1) * WAYS
    }

    /// The path MTU learned for `addr`, if one holds at `now`.
    pub fn lookup(&self, addr: Ipv4Address, now: Instant) -> Option<u16> {
        self.entries[self.set(addr)]
            .iter()
            .find(|e| e.used && e.addr == addr && e.expires > now)
            .map(|e| e.mtu)
    }

    /// `mtu` clamped to the configured minimum (and to 68).
    pub fn clamp(&self, mtu: u16) -> u16 {
        mtu.max(self.config.min_pmtu).max(IPV4_MIN_MTU)
    }

    /// Records that the path to `addr` carries at most `mtu` bytes (clamped
    /// by [`clamp`](Self::clamp)); a value not below the one already held
    /// changes nothing but the PMTU never rises through this call (RFC 1191
    /// §3: a host must not raise its estimate in answer to a Frag-Needed).
    /// Returns the PMTU now in force.
    pub fn update(&mut self, addr: Ipv4Address, mtu: u16, now: Instant) -> u16 {
        let mtu = self.clamp(mtu);
        let expires = now + self.config.timeout;
        let range = self.set(addr);
        let set = &mut self.entries[range];
        if let Some(e) = set.iter_mut().find(|e| e.used && e.addr == addr) {
            if e.expires <= now || mtu < e.mtu {
                e.mtu = mtu;
                e.expires = expires;
            }
            return e.mtu;
        }
        // A free or expired way, else the one closest to expiring.
        let mut victim = 0;
        for (i, e) in set.iter().enumerate() {
            if !e.used || e.expires <= now {
                victim = i;
                break;
            }
            if e.expires < set[victim].expires {
                victim = i;
            }
        }
        set[victim] = Entry {
            addr,
            mtu,
            expires,
            used: true,
        };
        mtu
    }

    /// Entries holding a PMTU at `now`.
    pub fn len(&self, now: Instant) -> usize {
        self.entries
            .iter()
            .filter(|e| e.used && e.expires > now)
            .count()
    }

    /// True when no entry holds at `now`.
    pub fn is_empty(&self, now: Instant) -> bool {
        self.len(now) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    #[test]
    fn learns_and_only_shrinks() {
        let mut c = PmtuCache::new(PmtuConfig::default());
        let t = Instant::from_secs(1);
        assert_eq!(c.lookup(A, t), None);
        assert_eq!(c.update(A, 1000, t), 1000);
        assert_eq!(c.lookup(A, t), Some(1000));
        assert_eq!(c.lookup(B, t), None);
        // A larger report does not raise it; a smaller one lowers it.
        assert_eq!(c.update(A, 1400, t), 1000);
        assert_eq!(c.update(A, 800, t), 800);
        assert_eq!(c.lookup(A, t), Some(800));
    }

    #[test]
    fn clamped_to_the_minimum_pmtu() {
        let mut c = PmtuCache::new(PmtuConfig::default());
        let t = Instant::ZERO;
        assert_eq!(c.update(A, 100, t), 552);
        assert_eq!(c.update(B, 0, t), 552);
        let mut low = PmtuCache::new(PmtuConfig {
            min_pmtu: 0,
            ..PmtuConfig::default()
        });
        // Never below 68, whatever the configuration.
        assert_eq!(low.update(A, 10, t), 68);
    }

    #[test]
    fn ages_out_after_the_timeout() {
        let mut c = PmtuCache::new(PmtuConfig::default());
        let t = Instant::from_secs(5);
        c.update(A, 1000, t);
        assert_eq!(c.lookup(A, t + Duration::from_secs(599)), Some(1000));
        let later = t + Duration::from_secs(600);
        assert_eq!(c.lookup(A, later), None);
        assert!(c.is_empty(later));
        // After ageing a larger value is taken again.
        assert_eq!(c.update(A, 1200, later), 1200);
    }

    #[test]
    fn bounded_replaces_the_oldest_in_a_set() {
        let mut c = PmtuCache::new(PmtuConfig {
            sets: 1,
            ..PmtuConfig::default()
        });
        for i in 0..10u8 {
            c.update(
                Ipv4Address::new(10, 1, 0, i),
                1000,
                Instant::from_secs(u64::from(i)),
            );
        }
        let now = Instant::from_secs(10);
        assert_eq!(c.len(now), WAYS);
        // The newest four survive.
        for i in 6..10u8 {
            assert_eq!(c.lookup(Ipv4Address::new(10, 1, 0, i), now), Some(1000));
        }
        assert_eq!(c.lookup(Ipv4Address::new(10, 1, 0, 0), now), None);
    }

    #[test]
    fn plateau_guess_for_old_routers() {
        assert_eq!(guess_mtu(1000, 1500), 1000);
        assert_eq!(guess_mtu(0, 1500), 1492);
        assert_eq!(guess_mtu(0, 1492), 1006);
        assert_eq!(guess_mtu(1500, 1500), 1492);
        assert_eq!(guess_mtu(0, 60), 68);
    }
}

//! SYN cookies: a listener under SYN flood answers SYNs without keeping
//! state, encoding what it needs in its initial sequence number (RFC 4987
//! §3.6 describes the technique). The layout is Linux's
//! (`net/ipv4/syncookies.c`), keyed with SipHash-2-4 instead of SHA-1:
//!
//! ```text
//! cookie = H1(tuple) + ISN_client + (count << 24)
//!        + ((H2(tuple, count, ISN_client) + mss_index) mod 2^24)  (mod 2^32)
//! ```
//!
//! (Linux leaves the client's ISN out of H2; hashing it too means a wrong
//! ISN cannot decode to a different valid MSS index.)
//!
//! `count` is a coarse clock (one tick per [`COUNTER_PERIOD_SECS`] seconds)
//! of which the cookie carries the low 8 bits; `mss_index` picks one of the
//! four [`MSS_TABLE`] entries. Decoding subtracts H1 and the client's ISN,
//! recovers `count` from the top byte (accepting the current and the
//! previous tick: a cookie lives 64 to 128 seconds), subtracts H2 and checks
//! that what remains is a valid index. A random ACK passes with probability
//! about `2/256 * 4/2^24`, i.e. 2e-9.
//!
//! What a cookie cannot carry (window scale, SACK-permitted, timestamps)
//! is lost, as in Linux without timestamp-encoded options.

use crate::tcp::isn::{siphash24, FourTuple};
use crate::time::Instant;
use crate::wire::SeqNumber;

/// The MSS values a cookie can encode (Linux's IPv4 table). The client's
/// MSS is rounded down to an entry; one below the first entry is encoded as
/// the first (536, the IPv4 default of RFC 9293 §3.7.1).
pub(crate) const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// Length of one counter tick in seconds.
pub(crate) const COUNTER_PERIOD_SECS: u64 = 64;

/// Cookies from this many ticks (the current one and the one before) are
/// accepted.
pub(crate) const MAX_AGE: u32 = 2;

const LOW24: u32 = 0x00ff_ffff;

/// A SYN-cookie encoder/decoder keyed with a per-run secret.
#[derive(Clone)]
pub(crate) struct SynCookies {
    secret: [u8; 16],
}

impl core::fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret.
        f.debug_struct("SynCookies").finish_non_exhaustive()
    }
}

impl SynCookies {
    /// Cookies keyed with `secret` (chosen once per run; use a different
    /// secret than the ISN generator's).
    pub(crate) const fn new(secret: [u8; 16]) -> SynCookies {
        SynCookies { secret }
    }

    /// The coarse clock at `now`.
    pub(crate) fn counter(now: Instant) -> u32 {
        (now.total_micros() / 1_000_000 / COUNTER_PERIOD_SECS) as u32
    }

    /// Index into [`MSS_TABLE`] of the largest entry not above `mss`
    /// (0 when `mss` is below every entry).
    pub(crate) fn mss_index(mss: u16) -> usize {
        MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0)
    }

    /// The MSS a cookie for a client offering `mss` will carry.
    #[cfg(test)]
    pub(crate) fn encoded_mss(mss: u16) -> u16 {
        MSS_TABLE[Self::mss_index(mss)]
    }

    fn h1(&self, tuple: &FourTuple) -> u32 {
        let mut msg = [0u8; 13];
        msg[..12].copy_from_slice(&tuple.to_bytes());
        msg[12] = 1;
        siphash24(&self.secret, &msg) as u32
    }

    fn h2(&self, tuple: &FourTuple, count: u32, client_isn: SeqNumber) -> u32 {
        let mut msg = [0u8; 21];
        msg[..12].copy_from_slice(&tuple.to_bytes());
        msg[12..16].copy_from_slice(&count.to_be_bytes());
        msg[16..20].copy_from_slice(&client_isn.0.to_be_bytes());
        msg[20] = 2;
        siphash24(&self.secret, &msg) as u32
    }

    /// The cookie to use as our ISN in the SYN-ACK answering a SYN from
    /// `tuple` (seen from us) with sequence number `client_isn` and MSS
    /// option `mss` (536 when absent).
    pub(crate) fn encode(
        &self,
        now: Instant,
        tuple: &FourTuple,
        client_isn: SeqNumber,
        mss: u16,
    ) -> SeqNumber {
        let count = Self::counter(now);
        let index = Self::mss_index(mss) as u32;
        let cookie = self
            .h1(tuple)
            .wrapping_add(client_isn.0)
            .wrapping_add(count << 24)
            .wrapping_add(self.h2(tuple, count, client_isn).wrapping_add(index) & LOW24);
        SeqNumber(cookie)
    }

    /// Checks the cookie carried by the handshake's final ACK: `cookie` is
    /// SEG.ACK - 1 and `client_isn` is SEG.SEQ - 1. Returns the encoded MSS
    /// when the cookie was made by us for this tuple and ISN within the
    /// last [`MAX_AGE`] counter ticks, `None` otherwise.
    pub(crate) fn decode(
        &self,
        now: Instant,
        tuple: &FourTuple,
        cookie: SeqNumber,
        client_isn: SeqNumber,
    ) -> Option<u16> {
        let count = Self::counter(now);
        let c = cookie
            .0
            .wrapping_sub(self.h1(tuple))
            .wrapping_sub(client_isn.0);
        let age = count.wrapping_sub(c >> 24) & 0xff;
        if age >= MAX_AGE {
            return None;
        }
        let then = count.wrapping_sub(age);
        let index = c.wrapping_sub(self.h2(tuple, then, client_isn)) & LOW24;
        MSS_TABLE.get(index as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rng;
    use crate::wire::ipv4::Ipv4Address;

    const SECRET: [u8; 16] = *b"0123456789abcdef";

    fn tuple() -> FourTuple {
        FourTuple {
            local_ip: Ipv4Address::new(10, 0, 0, 1),
            local_port: 80,
            remote_ip: Ipv4Address::new(10, 0, 0, 2),
            remote_port: 40_000,
        }
    }

    fn t(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    #[test]
    fn round_trip_every_table_entry() {
        let sc = SynCookies::new(SECRET);
        for (i, &mss) in MSS_TABLE.iter().enumerate() {
            let isn = SeqNumber(0xdead_0000 + i as u32);
            let c = sc.encode(t(1000), &tuple(), isn, mss);
            assert_eq!(sc.decode(t(1000), &tuple(), c, isn), Some(mss));
        }
    }

    #[test]
    fn mss_rounds_down_to_table() {
        assert_eq!(SynCookies::encoded_mss(1460), 1460);
        assert_eq!(SynCookies::encoded_mss(9000), 1460);
        assert_eq!(SynCookies::encoded_mss(1459), 1440);
        assert_eq!(SynCookies::encoded_mss(1300), 1300);
        assert_eq!(SynCookies::encoded_mss(1299), 536);
        assert_eq!(SynCookies::encoded_mss(100), 536);
        let sc = SynCookies::new(SECRET);
        let isn = SeqNumber(7);
        let c = sc.encode(t(5), &tuple(), isn, 1400);
        assert_eq!(sc.decode(t(5), &tuple(), c, isn), Some(1300));
    }

    #[test]
    fn valid_for_current_and_previous_tick() {
        let sc = SynCookies::new(SECRET);
        let isn = SeqNumber(12345);
        // Made at the very end of tick 10.
        let made = t(11 * COUNTER_PERIOD_SECS - 1);
        let c = sc.encode(made, &tuple(), isn, 1460);
        assert_eq!(sc.decode(made, &tuple(), c, isn), Some(1460));
        // Still valid through the whole next tick...
        assert_eq!(
            sc.decode(t(12 * COUNTER_PERIOD_SECS - 1), &tuple(), c, isn),
            Some(1460)
        );
        // ...and expired after it.
        assert_eq!(
            sc.decode(t(12 * COUNTER_PERIOD_SECS), &tuple(), c, isn),
            None
        );
        assert_eq!(
            sc.decode(t(100 * COUNTER_PERIOD_SECS), &tuple(), c, isn),
            None
        );
    }

    #[test]
    fn cookie_from_the_future_rejected() {
        let sc = SynCookies::new(SECRET);
        let isn = SeqNumber(1);
        let c = sc.encode(t(10 * COUNTER_PERIOD_SECS), &tuple(), isn, 1460);
        assert_eq!(
            sc.decode(t(9 * COUNTER_PERIOD_SECS), &tuple(), c, isn),
            None
        );
    }

    #[test]
    fn counter_wrap_of_top_byte() {
        // The cookie carries 8 bits of the counter; tick 256 follows 255.
        let sc = SynCookies::new(SECRET);
        let isn = SeqNumber(99);
        let c = sc.encode(t(255 * COUNTER_PERIOD_SECS), &tuple(), isn, 536);
        assert_eq!(
            sc.decode(t(256 * COUNTER_PERIOD_SECS), &tuple(), c, isn),
            Some(536)
        );
        // 256 ticks later the top byte matches again, but H2 differs.
        assert_eq!(
            sc.decode(t(511 * COUNTER_PERIOD_SECS), &tuple(), c, isn),
            None
        );
    }

    #[test]
    fn wrong_tuple_rejected() {
        let sc = SynCookies::new(SECRET);
        let isn = SeqNumber(555);
        let c = sc.encode(t(100), &tuple(), isn, 1460);
        let variants = [
            FourTuple {
                remote_port: 40_001,
                ..tuple()
            },
            FourTuple {
                local_port: 81,
                ..tuple()
            },
            FourTuple {
                remote_ip: Ipv4Address::new(10, 0, 0, 3),
                ..tuple()
            },
            FourTuple {
                local_ip: Ipv4Address::new(10, 0, 0, 9),
                ..tuple()
            },
        ];
        for v in variants {
            assert_eq!(sc.decode(t(100), &v, c, isn), None, "{v:?}");
        }
    }

    #[test]
    fn wrong_client_isn_or_secret_rejected() {
        let sc = SynCookies::new(SECRET);
        let isn = SeqNumber(555);
        let c = sc.encode(t(100), &tuple(), isn, 1460);
        assert_eq!(sc.decode(t(100), &tuple(), c, SeqNumber(556)), None);
        assert_eq!(
            sc.decode(t(100), &tuple(), c, SeqNumber(555 + (1 << 24))),
            None
        );
        let other = SynCookies::new([9; 16]);
        assert_eq!(other.decode(t(100), &tuple(), c, isn), None);
    }

    #[test]
    fn flipped_bits_rejected() {
        let sc = SynCookies::new(SECRET);
        let isn = SeqNumber(0x1234_5678);
        let c = sc.encode(t(100), &tuple(), isn, 1300);
        for bit in 0..32 {
            let forged = SeqNumber(c.0 ^ (1 << bit));
            let got = sc.decode(t(100), &tuple(), forged, isn);
            // Flipping the low two bits can only move between table
            // entries; every other flip must be rejected.
            if bit < 2 {
                assert_ne!(got, Some(1300), "bit {bit}");
            } else {
                assert_eq!(got, None, "bit {bit}");
            }
        }
    }

    #[test]
    fn random_acks_rejected() {
        let sc = SynCookies::new(SECRET);
        let mut rng = Rng::new(42);
        let mut accepted = 0;
        for _ in 0..200_000 {
            let c = SeqNumber(rng.next_u32());
            let isn = SeqNumber(rng.next_u32());
            if sc.decode(t(1000), &tuple(), c, isn).is_some() {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 0);
    }

    #[test]
    fn cookies_look_random() {
        // Different clients get unrelated cookies (no shared offset).
        let sc = SynCookies::new(SECRET);
        let a = sc.encode(t(100), &tuple(), SeqNumber(0), 1460);
        let b = sc.encode(
            t(100),
            &FourTuple {
                remote_port: 40_001,
                ..tuple()
            },
            SeqNumber(0),
            1460,
        );
        assert_ne!(a, b);
        assert!((a.0 ^ b.0).count_ones() > 4);
    }

    #[test]
    fn debug_hides_secret() {
        let s = format!("{:?}", SynCookies::new(SECRET));
        assert!(!s.contains("48"), "{s}");
    }
}

//! Initial sequence numbers (RFC 6528) and the SipHash-2-4 keyed hash.
//!
//! RFC 6528 §3: `ISN = M + F(localip, localport, remoteip, remoteport,
//! secretkey)`, where M is a timer ticking every 4 microseconds and F is a
//! pseudo-random function keyed with a secret chosen once per run. Our F is
//! SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
//! 2012), as in Linux. [`siphash24`] is public so that SYN cookies and the
//! flow table hasher share the same implementation.

use crate::time::Instant;
use crate::wire::ipv4::Ipv4Address;
use crate::wire::SeqNumber;

/// The four values that name a TCP connection, seen from this host.
pub(crate) use crate::wire::FourTuple;

/// One SipRound: the ARX mixing step of SipHash.
#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-2-4 of `data` under the 128-bit `key` (2 compression rounds per
/// 8-byte word, 4 finalization rounds; words are little-endian, the last
/// word carries the message length in its top byte).
///
/// # Examples
///
/// ```ignore
/// use mtcp_stack::tcp::isn::siphash24;
///
/// let key: [u8; 16] = core::array::from_fn(|i| i as u8);
/// let msg: [u8; 15] = core::array::from_fn(|i| i as u8);
/// // The example in appendix A of the SipHash paper.
/// assert_eq!(siphash24(&key, &msg), 0xa129ca6149be45e5);
/// ```
pub(crate) fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let mut k0b = [0u8; 8];
    let mut k1b = [0u8; 8];
    k0b.copy_from_slice(&key[..8]);
    k1b.copy_from_slice(&key[8..]);
    let k0 = u64::from_le_bytes(k0b);
    let k1 = u64::from_le_bytes(k1b);
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575, // "somepseu"
        k1 ^ 0x646f_7261_6e64_6f6d, // "dorandom"
        k0 ^ 0x6c79_6765_6e65_7261, // "lygenera"
        k1 ^ 0x7465_6462_7974_6573, // "tedbytes"
    ];
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let m = u64::from_le_bytes(w);
        v[3] ^= m;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= m;
    }
    let tail = chunks.remainder();
    let mut last = [0u8; 8];
    last[..tail.len()].copy_from_slice(tail);
    last[7] = data.len() as u8; // length mod 256
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    sip_round(&mut v);
    sip_round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// RFC 6528 initial sequence number generator.
///
/// The secret must be unpredictable and chosen once per run (the caller
/// seeds it, e.g. from the OS random source at start-up); with a fixed
/// secret the generator is deterministic, which tests rely on.
#[derive(Clone)]
pub(crate) struct IsnGenerator {
    secret: [u8; 16],
}

impl core::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret.
        f.debug_struct("IsnGenerator").finish_non_exhaustive()
    }
}

impl IsnGenerator {
    /// A generator keyed with `secret`.
    pub(crate) const fn new(secret: [u8; 16]) -> IsnGenerator {
        IsnGenerator { secret }
    }

    /// M of RFC 6528 §3: a 32-bit timer incremented every 4 µs.
    pub(crate) fn clock(now: Instant) -> u32 {
        (now.total_micros() / 4) as u32
    }

    /// ISN = M + F(4-tuple, secret) (RFC 6528 §3), F being the low 32 bits
    /// of SipHash-2-4 over the tuple's bytes.
    pub(crate) fn isn(
        &self,
        now: Instant,
        local_ip: Ipv4Address,
        local_port: u16,
        remote_ip: Ipv4Address,
        remote_port: u16,
    ) -> SeqNumber {
        self.isn_for(
            now,
            &FourTuple {
                local_ip,
                local_port,
                remote_ip,
                remote_port,
            },
        )
    }

    /// [`isn`](Self::isn) for a [`FourTuple`].
    pub(crate) fn isn_for(&self, now: Instant, tuple: &FourTuple) -> SeqNumber {
        let f = siphash24(&self.secret, &tuple.to_bytes()) as u32;
        SeqNumber(Self::clock(now).wrapping_add(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    /// `vectors_sip64` of the reference implementation (key 00..0f, message
    /// 00..n-1 for n = 0..16), as little-endian bytes.
    const VECTORS: [[u8; 8]; 16] = [
        [0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72],
        [0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74],
        [0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d],
        [0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85],
        [0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf],
        [0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18],
        [0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb],
        [0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab],
        [0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93],
        [0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e],
        [0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a],
        [0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4],
        [0xfb, 0xe5, 0x0e, 0x86, 0xbc, 0x8f, 0x1e, 0x75],
        [0x90, 0x3d, 0x84, 0xc0, 0x27, 0x56, 0xea, 0x14],
        [0xee, 0xf2, 0x7a, 0x8e, 0x90, 0xca, 0x23, 0xf7],
        [0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1],
    ];

    mod siphash {
        use super::*;

        #[test]
        fn reference_vectors() {
            let msg: [u8; 16] = core::array::from_fn(|i| i as u8);
            for (n, want) in VECTORS.iter().enumerate() {
                assert_eq!(
                    siphash24(&KEY, &msg[..n]).to_le_bytes(),
                    *want,
                    "message length {n}"
                );
            }
        }

        #[test]
        fn paper_appendix_example() {
            let msg: [u8; 15] = core::array::from_fn(|i| i as u8);
            assert_eq!(siphash24(&KEY, &msg), 0xa129_ca61_49be_45e5);
        }

        proptest::proptest! {
            /// Cross-check against the standard library's SipHash-2-4 (which
            /// is deprecated as an API but is the same function).
            #[test]
            fn matches_std(key in proptest::array::uniform16(0u8..), data in proptest::collection::vec(0u8.., 0..100)) {
                #[allow(deprecated)]
                let mut h = std::hash::SipHasher::new_with_keys(
                    u64::from_le_bytes(key[..8].try_into().unwrap()),
                    u64::from_le_bytes(key[8..].try_into().unwrap()),
                );
                std::hash::Hasher::write(&mut h, &data);
                proptest::prop_assert_eq!(siphash24(&key, &data), std::hash::Hasher::finish(&h));
            }
        }

        #[test]
        fn key_changes_output() {
            let mut other = KEY;
            other[15] ^= 1;
            assert_ne!(siphash24(&KEY, b"abc"), siphash24(&other, b"abc"));
        }
    }

    mod isn {
        use super::*;

        fn ip(a: u8) -> Ipv4Address {
            Ipv4Address::new(10, 0, 0, a)
        }

        #[test]
        fn clock_ticks_every_4us() {
            assert_eq!(IsnGenerator::clock(Instant::from_micros(0)), 0);
            assert_eq!(IsnGenerator::clock(Instant::from_micros(3)), 0);
            assert_eq!(IsnGenerator::clock(Instant::from_micros(4)), 1);
            assert_eq!(IsnGenerator::clock(Instant::from_secs(1)), 250_000);
        }

        #[test]
        fn same_tuple_advances_with_time() {
            let g = IsnGenerator::new(KEY);
            let a = g.isn(Instant::from_secs(10), ip(1), 80, ip(2), 5000);
            let b = g.isn(Instant::from_secs(11), ip(1), 80, ip(2), 5000);
            assert_eq!(b.0.wrapping_sub(a.0), 250_000);
            assert!(b > a);
        }

        #[test]
        fn offset_is_keyed_hash_of_tuple() {
            let g = IsnGenerator::new(KEY);
            let t = FourTuple {
                local_ip: ip(1),
                local_port: 80,
                remote_ip: ip(2),
                remote_port: 5000,
            };
            let want = siphash24(&KEY, &t.to_bytes()) as u32;
            assert_eq!(g.isn_for(Instant::ZERO, &t), SeqNumber(want));
            assert_eq!(
                g.isn(Instant::ZERO, ip(1), 80, ip(2), 5000),
                SeqNumber(want)
            );
        }

        #[test]
        fn different_tuples_and_secrets_differ() {
            let g = IsnGenerator::new(KEY);
            let now = Instant::from_secs(3);
            let base = g.isn(now, ip(1), 80, ip(2), 5000);
            assert_ne!(base, g.isn(now, ip(1), 80, ip(2), 5001));
            assert_ne!(base, g.isn(now, ip(1), 80, ip(3), 5000));
            assert_ne!(base, g.isn(now, ip(1), 81, ip(2), 5000));
            // Swapping the ends gives a different tuple.
            assert_ne!(base, g.isn(now, ip(2), 5000, ip(1), 80));
            let h = IsnGenerator::new([7; 16]);
            assert_ne!(base, h.isn(now, ip(1), 80, ip(2), 5000));
        }

        #[test]
        fn tuple_bytes_layout() {
            let t = FourTuple {
                local_ip: Ipv4Address::new(1, 2, 3, 4),
                local_port: 0x0506,
                remote_ip: Ipv4Address::new(7, 8, 9, 10),
                remote_port: 0x0b0c,
            };
            assert_eq!(t.to_bytes(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        }

        #[test]
        fn debug_hides_secret() {
            let g = IsnGenerator::new([0xab; 16]);
            let s = format!("{g:?}");
            assert!(!s.contains("171"), "{s}");
        }
    }
}

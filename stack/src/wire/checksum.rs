//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! [`data`] returns the ones' complement sum of a buffer folded to 16 bits,
//! *not* inverted; partial sums are joined with [`combine`] and the value to
//! store in a header is [`finish`] of the total. A received header verifies
//! when the sum over it (checksum field included) is `0xffff`.

use super::ipv4::Ipv4Address;

/// Folds a 64-bit end-around-carry accumulator into 16 bits.
#[inline]
fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Adds `w` to `acc` with end-around carry.
#[inline(always)]
fn add_carry(acc: u64, w: u64) -> u64 {
    let (s, c) = acc.overflowing_add(w);
    s + u64::from(c)
}

/// The ones' complement sum of `bytes` taken as big-endian 16-bit words,
/// folded to 16 bits and not inverted. An odd final byte is padded with a
/// zero byte on the right, so when a message is summed in pieces every piece
/// but the last must have even length.
///
/// Sums native-endian 64-bit words into a 128-bit accumulator (an add and
/// an add-with-carry per eight bytes, no byte swaps) and swaps the folded
/// result to network order at the end: the ones' complement sum is
/// independent of byte order (RFC 1071 §2(B)), and 2^64 additions cannot
/// overflow 128 bits.
#[inline]
pub fn data(bytes: &[u8]) -> u16 {
    let mut acc: u128 = 0;
    let mut chunks = bytes.chunks_exact(32);
    for c in &mut chunks {
        let w = |i: usize| {
            u128::from(u64::from_ne_bytes([
                c[i],
                c[i + 1],
                c[i + 2],
                c[i + 3],
                c[i + 4],
                c[i + 5],
                c[i + 6],
                c[i + 7],
            ]))
        };
        acc += w(0) + w(8) + w(16) + w(24);
    }
    let mut rest = chunks.remainder();
    while rest.len() >= 8 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&rest[..8]);
        acc += u128::from(u64::from_ne_bytes(w));
        rest = &rest[8..];
    }
    if !rest.is_empty() {
        // Up to seven bytes at an even offset, zero padded on the right.
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        acc += u128::from(u64::from_ne_bytes(w));
    }
    let folded = add_carry(acc as u64, (acc >> 64) as u64);
    u16::from_be(fold(folded))
}

/// The reference byte-by-byte sum, kept for tests of [`data`].
#[cfg(test)]
fn data_slow(bytes: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for pair in bytes.chunks(2) {
        let w = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        acc += u32::from(w);
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The ones' complement sum of several partial sums, folded, not inverted.
pub fn combine(sums: &[u16]) -> u16 {
    let mut acc: u64 = 0;
    for &s in sums {
        acc += u64::from(s);
    }
    fold(acc)
}

/// The ones' complement sum of the IPv4 pseudo-header (RFC 9293 §3.1):
/// source, destination, zero + protocol, and the upper-layer length.
pub fn pseudo_header_v4(src: Ipv4Address, dst: Ipv4Address, protocol: u8, length: u32) -> u16 {
    let s = u32::from(src);
    let d = u32::from(dst);
    let acc = u64::from(s >> 16)
        + u64::from(s & 0xffff)
        + u64::from(d >> 16)
        + u64::from(d & 0xffff)
        + u64::from(protocol)
        + u64::from(length >> 16)
        + u64::from(length & 0xffff);
    fold(acc)
}

/// The value to store in a checksum field: the inverted sum.
#[inline]
pub fn finish(sum: u16) -> u16 {
    !sum
}

/// The stored checksum after one 16-bit word of the covered data changed
/// from `old_word` to `new_word`: RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`.
pub fn update(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    !combine(&[!old_checksum, !old_word, new_word])
}

/// [`update`] for a 32-bit field (an IPv4 address, a sequence number).
pub fn update_u32(old_checksum: u16, old: u32, new: u32) -> u16 {
    !combine(&[
        !old_checksum,
        !((old >> 16) as u16),
        !(old as u16),
        (new >> 16) as u16,
        new as u16,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rng;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
        assert_eq!(finish(data(&bytes)), 0x220d);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic header whose checksum is b861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(finish(data(&hdr)), 0xb861);
        let mut with = hdr;
        with[10] = 0xb8;
        with[11] = 0x61;
        assert_eq!(data(&with), 0xffff);
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(data(&[0xab]), 0xab00);
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(data(&[]), 0);
    }

    #[test]
    fn fast_equals_slow_for_all_lengths() {
        let mut rng = Rng::new(1);
        let mut buf = [0u8; 300];
        rng.fill(&mut buf);
        for len in 0..buf.len() {
            for start in 0..4 {
                if start > len {
                    continue;
                }
                assert_eq!(
                    data(&buf[start..len]),
                    data_slow(&buf[start..len]),
                    "{start}..{len}"
                );
            }
        }
        let ones = [0xffu8; 1000];
        assert_eq!(data(&ones), data_slow(&ones));
    }

    #[test]
    fn combine_matches_concatenation() {
        let mut rng = Rng::new(2);
        let mut buf = [0u8; 128];
        rng.fill(&mut buf);
        for cut in (0..128).step_by(2) {
            assert_eq!(combine(&[data(&buf[..cut]), data(&buf[cut..])]), data(&buf));
        }
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let src = Ipv4Address::new(10, 0, 0, 1);
        let dst = Ipv4Address::new(192, 168, 200, 254);
        let mut ph = [0u8; 12];
        ph[0..4].copy_from_slice(&src.octets());
        ph[4..8].copy_from_slice(&dst.octets());
        ph[9] = 6;
        ph[10..12].copy_from_slice(&1480u16.to_be_bytes());
        assert_eq!(pseudo_header_v4(src, dst, 6, 1480), data(&ph));
    }

    #[test]
    fn incremental_update_equals_recompute() {
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            let mut buf = [0u8; 40];
            rng.fill(&mut buf);
            let ck = finish(data(&buf));
            let i = (rng.next_u32() as usize % 20) * 2;
            let old = u16::from_be_bytes([buf[i], buf[i + 1]]);
            let new = rng.next_u32() as u16;
            buf[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let recomputed = finish(data(&buf));
            let inc = update(ck, old, new);
            // Ones' complement has two zeros; compare as sums.
            assert!(
                inc == recomputed
                    || (inc == 0xffff && recomputed == 0)
                    || (inc == 0 && recomputed == 0xffff),
                "{inc:04x} vs {recomputed:04x}"
            );
        }
    }

    #[test]
    fn incremental_update_u32_equals_recompute() {
        let mut rng = Rng::new(4);
        for _ in 0..2000 {
            let mut buf = [0u8; 20];
            rng.fill(&mut buf);
            let ck = finish(data(&buf));
            let i = (rng.next_u32() as usize % 5) * 4;
            let old = u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
            let new = rng.next_u32();
            buf[i..i + 4].copy_from_slice(&new.to_be_bytes());
            let recomputed = finish(data(&buf));
            let inc = update_u32(ck, old, new);
            assert!(
                inc == recomputed || (inc ^ recomputed == 0xffff && (inc == 0 || recomputed == 0)),
                "{inc:04x} vs {recomputed:04x}"
            );
        }
    }

    #[test]
    fn verified_header_sums_to_ffff_after_update() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        // Decrement the TTL as a router would and patch the checksum.
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] -= 1;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let ck = update(0xb861, old, new);
        hdr[10..12].copy_from_slice(&ck.to_be_bytes());
        assert_eq!(data(&hdr), 0xffff);
    }
}

//! UDP (RFC 768): a checked view over a datagram and its checksum.
//!
//! ```text
//!  0      7 8     15 16    23 24    31
//! +--------+--------+--------+--------+
//! |   Source Port   | Destination Port|
//! +--------+--------+--------+--------+
//! |     Length      |    Checksum     |
//! +--------+--------+--------+--------+
//! |          data octets ...
//! ```
//!
//! A zero checksum on receive means the sender computed none (RFC 768) and
//! is accepted; on send the checksum is always computed, and a computed
//! zero is sent as 0xffff.

use super::checksum;
use super::ipv4::Ipv4Address;
use super::{Error, Result};

mod field {
    use core::ops::Range;
    pub(super) const SRC_PORT: Range<usize> = 0..2;
    pub(super) const DST_PORT: Range<usize> = 2..4;
    pub(super) const LENGTH: Range<usize> = 4..6;
    pub(super) const CHECKSUM: Range<usize> = 6..8;
}

/// The UDP header's length.
pub const HEADER_LEN: usize = 8;

/// Where the checksum field ends: the bytes a checksum fix-up needs.
pub const CHECKSUM_END: usize = field::CHECKSUM.end;

/// The IP protocol number of UDP.
const PROTOCOL: u8 = 17;

/// A view over a UDP datagram (header and data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// A view without checks (for emitting).
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// A view whose Length field is at least the header and at most the
    /// buffer; after this no accessor panics.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than the header or
    /// the Length field; [`Error::Malformed`] when Length is below 8.
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>> {
        let p = UdpPacket { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(p.len());
        if l < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if l > len {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }

    /// The Length field (header and data).
    pub fn len(&self) -> u16 {
        self.u16_at(field::LENGTH)
    }

    /// True when the Length field says no data (never for a checked view's
    /// header alone; present for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The Checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// The data, as long as the Length field says (bytes past it, such as
    /// Ethernet padding, are not data).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// True when the checksum verifies, or is zero (none computed).
    pub fn verify_checksum(&self, src: Ipv4Address, dst: Ipv4Address) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let len = usize::from(self.len());
        let sum = checksum::combine(&[
            checksum::pseudo_header_v4(src, dst, PROTOCOL, len as u32),
            checksum::data(&self.buffer.as_ref()[..len]),
        ]);
        sum == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    fn set_u16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16(field::CHECKSUM, v);
    }

    /// Writes the header for `data_len` bytes of data (already in place
    /// after the header) and its checksum.
    pub fn emit(
        &mut self,
        src: (Ipv4Address, u16),
        dst: (Ipv4Address, u16),
        data_len: usize,
        fill_checksum: bool,
    ) {
        let len = HEADER_LEN + data_len;
        self.set_u16(field::SRC_PORT, src.1);
        self.set_u16(field::DST_PORT, dst.1);
        self.set_u16(field::LENGTH, len as u16);
        self.set_u16(field::CHECKSUM, 0);
        if !fill_checksum {
            // The device fills it from the pseudo-header sum.
            let pseudo = checksum::pseudo_header_v4(src.0, dst.0, PROTOCOL, len as u32);
            self.set_u16(field::CHECKSUM, pseudo);
            return;
        }
        let sum = checksum::combine(&[
            checksum::pseudo_header_v4(src.0, dst.0, PROTOCOL, len as u32),
            checksum::data(&self.buffer.as_ref()[..len]),
        ]);
        let c = checksum::finish(sum);
        // RFC 768: a computed zero is sent as all ones.
        self.set_u16(field::CHECKSUM, if c == 0 { 0xffff } else { c });
    }

    /// The data, mutable (for building a datagram in place).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    fn datagram(data: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER_LEN + data.len()];
        buf[HEADER_LEN..].copy_from_slice(data);
        UdpPacket::new_unchecked(&mut buf[..]).emit((A, 1000), (B, 53), data.len(), true);
        buf
    }

    #[test]
    fn emit_then_parse_round_trips() {
        let buf = datagram(b"hello");
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (1000, 53, 13));
        assert_eq!(p.payload(), b"hello");
        assert!(p.verify_checksum(A, B));
        // The pseudo-header covers the addresses.
        assert!(!p.verify_checksum(A, Ipv4Address::new(10, 0, 0, 3)));
    }

    #[test]
    fn a_corrupted_byte_fails_but_zero_checksum_is_accepted() {
        let mut buf = datagram(b"hello");
        buf[9] ^= 1;
        assert!(!UdpPacket::new_checked(&buf[..])
            .unwrap()
            .verify_checksum(A, B));
        buf[6] = 0;
        buf[7] = 0;
        assert!(UdpPacket::new_checked(&buf[..])
            .unwrap()
            .verify_checksum(A, B));
    }

    #[test]
    fn length_field_is_checked_and_padding_ignored() {
        let mut buf = datagram(b"hi");
        buf.extend_from_slice(&[0; 6]);
        assert_eq!(UdpPacket::new_checked(&buf[..]).unwrap().payload(), b"hi");
        assert_eq!(
            UdpPacket::new_checked(&buf[..7]).unwrap_err(),
            Error::Truncated
        );
        buf[4..6].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&buf[..]).unwrap_err(),
            Error::Truncated
        );
        buf[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&buf[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn computed_zero_is_sent_as_all_ones() {
        // Search a payload word that makes the sum come out as zero.
        for w in 0..=u16::MAX {
            let buf = datagram(&w.to_be_bytes());
            let c = UdpPacket::new_checked(&buf[..]).unwrap().checksum();
            assert_ne!(c, 0);
            if c == 0xffff {
                assert!(UdpPacket::new_checked(&buf[..])
                    .unwrap()
                    .verify_checksum(A, B));
                return;
            }
        }
        panic!("no payload word gives a zero checksum");
    }
}

//! ICMPv4 (RFC 792): echo request and reply, and the two error messages a
//! host sends and acts on: Destination Unreachable (with RFC 1191's
//! next-hop MTU for "fragmentation needed") and Time Exceeded.
//!
//! [`Icmpv4Packet`] is a view over any ICMP message (the 8-byte header);
//! [`Icmpv4Repr`] understands those four types and reports other types as
//! `Unsupported`. An error message quotes the offending datagram (its IP
//! header and at least 8 bytes of data, RFC 792); the quote is kept as
//! bytes for the interface to match against its own packets.

use super::checksum;
use super::{Error, Result};

mod field {
    use core::ops::{Range, RangeFrom};

    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: Range<usize> = 2..4;
    pub(super) const ECHO_IDENT: Range<usize> = 4..6;
    pub(super) const ECHO_SEQNO: Range<usize> = 6..8;
    /// RFC 1191 §4: the next-hop MTU of a "fragmentation needed" message.
    pub(super) const NEXT_HOP_MTU: Range<usize> = 6..8;
    pub(super) const UNUSED: Range<usize> = 4..8;
    pub(super) const DATA: RangeFrom<usize> = 8..;

    pub(super) const TYPE_ECHO_REPLY: u8 = 0;
    pub(super) const TYPE_DST_UNREACHABLE: u8 = 3;
    pub(super) const TYPE_ECHO_REQUEST: u8 = 8;
    pub(super) const TYPE_TIME_EXCEEDED: u8 = 11;
}

/// Destination Unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812).
pub mod unreachable {
    /// Net unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set (RFC 1191).
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited (RFC 1812).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Time Exceeded codes (RFC 792).
pub mod time_exceeded {
    /// Time to live exceeded in transit.
    pub const TTL: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// The ICMPv4 header length (type, code, checksum, 4 bytes of rest).
pub const HEADER_LEN: usize = field::DATA.start;

/// A checked zero-copy view of an ICMPv4 message. The buffer is the whole
/// message (the IPv4 payload): the checksum covers all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer and checks that the 8-byte header fits.
    ///
    /// # Errors
    /// [`Error::Truncated`] when it does not.
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the 8-byte header fits.
    ///
    /// # Errors
    /// [`Error::Truncated`] when it does not.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The echo identifier (bytes 4..6).
    pub fn echo_ident(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    /// The echo sequence number (bytes 6..8).
    pub fn echo_seq_no(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }

    /// The next-hop MTU of a Destination Unreachable, fragmentation needed
    /// (bytes 6..8, RFC 1191 §4; zero from routers older than RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::NEXT_HOP_MTU])
    }

    /// True when the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv4Packet<&'a T> {
    /// The data after the 8-byte header.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::DATA]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        self.buffer.as_mut()[field::ECHO_IDENT].copy_from_slice(&v.to_be_bytes());
    }

    /// Zeroes bytes 4..8 (unused in error messages).
    pub fn clear_unused(&mut self) {
        self.buffer.as_mut()[field::UNUSED].fill(0);
    }

    /// Sets the next-hop MTU (bytes 6..8).
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        self.buffer.as_mut()[field::NEXT_HOP_MTU].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.buffer.as_mut()[field::ECHO_SEQNO].copy_from_slice(&v.to_be_bytes());
    }

    /// The data after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let ck = checksum::finish(checksum::data(self.buffer.as_ref()));
        self.set_checksum(ck);
    }
}

/// A parsed ICMPv4 message: an echo, or an error quoting a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Type 8.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Type 0.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Type 3.
    DstUnreachable {
        /// The code (see [`unreachable`](mod@unreachable)).
        code: u8,
        /// The next-hop MTU (meaningful for [`unreachable::FRAG_NEEDED`]
        /// only; zero otherwise).
        next_hop_mtu: u16,
        /// The quoted datagram: its IP header and leading data.
        quoted: &'a [u8],
    },
    /// Type 11.
    TimeExceeded {
        /// The code (see [`time_exceeded`]).
        code: u8,
        /// The quoted datagram: its IP header and leading data.
        quoted: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses an echo request or reply, a Destination Unreachable or a Time
    /// Exceeded.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 8 bytes; [`Error::BadChecksum`]
    /// (when `verify_checksum`); [`Error::Malformed`] for an echo with a
    /// non-zero code, or an error message with an unknown code;
    /// [`Error::Unsupported`] for other types.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&'a T>,
        verify_checksum: bool,
    ) -> Result<Icmpv4Repr<'a>> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let (ident, seq_no, data) = (packet.echo_ident(), packet.echo_seq_no(), packet.payload());
        match (packet.msg_type(), packet.msg_code()) {
            (field::TYPE_ECHO_REQUEST, 0) => Ok(Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }),
            (field::TYPE_ECHO_REPLY, 0) => Ok(Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            }),
            (field::TYPE_ECHO_REQUEST | field::TYPE_ECHO_REPLY, _) => Err(Error::Malformed),
            (field::TYPE_DST_UNREACHABLE, code @ 0..=15) => Ok(Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu: if code == unreachable::FRAG_NEEDED {
                    packet.next_hop_mtu()
                } else {
                    0
                },
                quoted: data,
            }),
            (field::TYPE_TIME_EXCEEDED, code @ 0..=1) => {
                Ok(Icmpv4Repr::TimeExceeded { code, quoted: data })
            }
            (field::TYPE_DST_UNREACHABLE | field::TYPE_TIME_EXCEEDED, _) => Err(Error::Malformed),
            _ => Err(Error::Unsupported),
        }
    }

    /// The message length: 8 plus the data.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Icmpv4Repr::DstUnreachable { quoted, .. } | Icmpv4Repr::TimeExceeded { quoted, .. } => {
                HEADER_LEN + quoted.len()
            }
        }
    }

    /// Writes the message and, when `fill_checksum`, its checksum (else 0).
    ///
    /// # Panics
    /// Panics when the buffer's length is not [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Icmpv4Packet<T>,
        fill_checksum: bool,
    ) {
        match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let ty = if matches!(self, Icmpv4Repr::EchoRequest { .. }) {
                    field::TYPE_ECHO_REQUEST
                } else {
                    field::TYPE_ECHO_REPLY
                };
                packet.set_msg_type(ty);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                packet.payload_mut().copy_from_slice(data);
            }
            Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu,
                quoted,
            } => {
                packet.set_msg_type(field::TYPE_DST_UNREACHABLE);
                packet.set_msg_code(code);
                packet.clear_unused();
                packet.set_next_hop_mtu(next_hop_mtu);
                packet.payload_mut().copy_from_slice(quoted);
            }
            Icmpv4Repr::TimeExceeded { code, quoted } => {
                packet.set_msg_type(field::TYPE_TIME_EXCEEDED);
                packet.set_msg_code(code);
                packet.clear_unused();
                packet.payload_mut().copy_from_slice(quoted);
            }
        }
        if fill_checksum {
            packet.fill_checksum();
        } else {
            packet.set_checksum(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ping` echo request: ident 0x1234, seq 1, data "abcd".
    fn request_bytes() -> [u8; 12] {
        let mut b = [8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd'];
        let ck = checksum::finish(checksum::data(&b));
        b[2..4].copy_from_slice(&ck.to_be_bytes());
        b
    }

    #[test]
    fn parse_request() {
        let b = request_bytes();
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&p, true).unwrap(),
            Icmpv4Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"abcd"
            }
        );
    }

    #[test]
    fn emit_matches_bytes_and_round_trips() {
        let r = Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data: b"abcd",
        };
        let mut buf = [0u8; 12];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
        assert_eq!(buf, request_bytes());
        let reply = Icmpv4Repr::EchoReply {
            ident: 7,
            seq_no: 65535,
            data: &[],
        };
        let mut buf = [0u8; 8];
        reply.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&p, true).unwrap(), reply);
        assert_eq!(reply.buffer_len(), 8);
    }

    #[test]
    fn bad_checksum() {
        let mut b = request_bytes();
        b[11] ^= 0x40;
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, true).unwrap_err(), Error::BadChecksum);
        assert!(Icmpv4Repr::parse(&p, false).is_ok());
    }

    #[test]
    fn truncated() {
        let b = request_bytes();
        for len in 0..8 {
            assert_eq!(
                Icmpv4Packet::new_checked(&b[..len]).unwrap_err(),
                Error::Truncated
            );
        }
    }

    #[test]
    fn other_types_unsupported_but_viewable() {
        // Timestamp request (type 13).
        let mut b = [13u8, 0, 0, 0, 0, 0, 0, 0, 0x45, 0];
        let ck = checksum::finish(checksum::data(&b));
        b[2..4].copy_from_slice(&ck.to_be_bytes());
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), 13);
        assert!(p.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&p, true).unwrap_err(), Error::Unsupported);
    }

    #[test]
    fn port_unreachable_parses_with_its_quote() {
        let mut b = [3u8, 3, 0, 0, 0, 0, 0x05, 0xdc, 0x45, 0];
        let ck = checksum::finish(checksum::data(&b));
        b[2..4].copy_from_slice(&ck.to_be_bytes());
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        // The MTU field means something only for code 4.
        assert_eq!(
            Icmpv4Repr::parse(&p, true).unwrap(),
            Icmpv4Repr::DstUnreachable {
                code: unreachable::PORT,
                next_hop_mtu: 0,
                quoted: &[0x45, 0]
            }
        );
    }

    #[test]
    fn frag_needed_round_trip_carries_the_mtu() {
        let quoted = [0x45u8, 0, 0, 40, 1, 2, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1];
        let r = Icmpv4Repr::DstUnreachable {
            code: unreachable::FRAG_NEEDED,
            next_hop_mtu: 1000,
            quoted: &quoted,
        };
        let mut buf = vec![0xffu8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
        assert_eq!(&buf[..2], &[3, 4]);
        assert_eq!(&buf[4..8], &[0, 0, 0x03, 0xe8]);
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.next_hop_mtu(), 1000);
        assert_eq!(Icmpv4Repr::parse(&p, true).unwrap(), r);
    }

    #[test]
    fn time_exceeded_round_trip_and_bad_codes() {
        let r = Icmpv4Repr::TimeExceeded {
            code: time_exceeded::REASSEMBLY,
            quoted: b"12345678",
        };
        let mut buf = vec![0xffu8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
        assert_eq!(&buf[..8], &[11, 1, buf[2], buf[3], 0, 0, 0, 0]);
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, true).unwrap(), r);
        buf[1] = 2;
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, false).unwrap_err(), Error::Malformed);
        buf[0] = 3;
        buf[1] = 16;
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, false).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn echo_with_code_malformed() {
        let mut b = request_bytes();
        b[1] = 1;
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, false).unwrap_err(), Error::Malformed);
    }
}

//! ICMPv4 (RFC 792): echo request and reply.
//!
//! [`Icmpv4Packet`] is a view over any ICMP message (the 8-byte header);
//! [`Icmpv4Repr`] understands echo request/reply and reports other types as
//! `Unsupported`.

use super::checksum;
use super::{Error, Result};

mod field {
    use core::ops::{Range, RangeFrom};

    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: Range<usize> = 2..4;
    pub(super) const ECHO_IDENT: Range<usize> = 4..6;
    pub(super) const ECHO_SEQNO: Range<usize> = 6..8;
    pub(super) const DATA: RangeFrom<usize> = 8..;

    pub(super) const TYPE_ECHO_REPLY: u8 = 0;
    pub(super) const TYPE_ECHO_REQUEST: u8 = 8;
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

/// A parsed ICMPv4 echo message.
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
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses an echo request or reply.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 8 bytes; [`Error::BadChecksum`]
    /// (when `verify_checksum`); [`Error::Malformed`] for an echo with a
    /// non-zero code; [`Error::Unsupported`] for other types.
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
            _ => Err(Error::Unsupported),
        }
    }

    /// The message length: 8 plus the data.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
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
        let (ty, ident, seq_no, data) = match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (field::TYPE_ECHO_REQUEST, ident, seq_no, data),
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (field::TYPE_ECHO_REPLY, ident, seq_no, data),
        };
        packet.set_msg_type(ty);
        packet.set_msg_code(0);
        packet.set_echo_ident(ident);
        packet.set_echo_seq_no(seq_no);
        packet.payload_mut().copy_from_slice(data);
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
        // Destination unreachable, port unreachable.
        let mut b = [3u8, 3, 0, 0, 0, 0, 0, 0, 0x45, 0];
        let ck = checksum::finish(checksum::data(&b));
        b[2..4].copy_from_slice(&ck.to_be_bytes());
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), 3);
        assert_eq!(p.msg_code(), 3);
        assert!(p.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&p, true).unwrap_err(), Error::Unsupported);
    }

    #[test]
    fn echo_with_code_malformed() {
        let mut b = request_bytes();
        b[1] = 1;
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, false).unwrap_err(), Error::Malformed);
    }
}

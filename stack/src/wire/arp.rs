//! ARP (RFC 826) for IPv4 over Ethernet.
//!
//! [`ArpPacket`] is a checked view that works for any hardware/protocol
//! length; [`ArpRepr`] accepts only Ethernet (htype 1, hlen 6) and IPv4
//! (ptype 0x0800, plen 4) and reports anything else as `Unsupported`.

use super::ethernet::EthernetAddress;
use super::ipv4::Ipv4Address;
use super::{Error, Result};

mod field {
    use core::ops::Range;

    pub(super) const HTYPE: Range<usize> = 0..2;
    pub(super) const PTYPE: Range<usize> = 2..4;
    pub(super) const HLEN: usize = 4;
    pub(super) const PLEN: usize = 5;
    pub(super) const OPER: Range<usize> = 6..8;
    /// Start of the variable-length addresses.
    pub(super) const ADDRS: usize = 8;

    pub(super) const fn sha(hlen: u8, _plen: u8) -> Range<usize> {
        ADDRS..ADDRS + hlen as usize
    }
    pub(super) const fn spa(hlen: u8, plen: u8) -> Range<usize> {
        let s = ADDRS + hlen as usize;
        s..s + plen as usize
    }
    pub(super) const fn tha(hlen: u8, plen: u8) -> Range<usize> {
        let s = ADDRS + hlen as usize + plen as usize;
        s..s + hlen as usize
    }
    pub(super) const fn tpa(hlen: u8, plen: u8) -> Range<usize> {
        let s = ADDRS + 2 * hlen as usize + plen as usize;
        s..s + plen as usize
    }

    pub(super) const HTYPE_ETHERNET: u16 = 1;
    pub(super) const PTYPE_IPV4: u16 = 0x0800;
}

/// The length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = field::tpa(6, 4).end;

/// The ARP operation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// 1: who has TPA?
    Request,
    /// 2: SPA is at SHA.
    Reply,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> ArpOperation {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(v: ArpOperation) -> u16 {
        match v {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

/// A checked zero-copy view of an ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wraps a buffer and checks that the fixed part and all four addresses
    /// (as sized by HLEN and PLEN) fit.
    ///
    /// # Errors
    /// [`Error::Truncated`] when they do not.
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the buffer length against HLEN and PLEN.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the packet does not fit.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < field::ADDRS {
            return Err(Error::Truncated);
        }
        if b.len() < field::tpa(self.hardware_len(), self.protocol_len()).end {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// HTYPE.
    pub fn hardware_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::HTYPE])
    }

    /// PTYPE.
    pub fn protocol_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::PTYPE])
    }

    /// HLEN.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// PLEN.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// OPER.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(be16(&self.buffer.as_ref()[field::OPER]))
    }

    /// SHA, HLEN bytes.
    pub fn source_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::sha(self.hardware_len(), self.protocol_len())]
    }

    /// SPA, PLEN bytes.
    pub fn source_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::spa(self.hardware_len(), self.protocol_len())]
    }

    /// THA, HLEN bytes.
    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::tha(self.hardware_len(), self.protocol_len())]
    }

    /// TPA, PLEN bytes.
    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::tpa(self.hardware_len(), self.protocol_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets HTYPE.
    pub fn set_hardware_type(&mut self, v: u16) {
        self.buffer.as_mut()[field::HTYPE].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets PTYPE.
    pub fn set_protocol_type(&mut self, v: u16) {
        self.buffer.as_mut()[field::PTYPE].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets HLEN.
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    /// Sets PLEN.
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    /// Sets OPER.
    pub fn set_operation(&mut self, v: ArpOperation) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&u16::from(v).to_be_bytes());
    }

    /// Sets SHA (HLEN bytes of `v`).
    pub fn set_source_hardware_addr(&mut self, v: &[u8]) {
        let r = field::sha(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r.clone()].copy_from_slice(&v[..r.len()]);
    }

    /// Sets SPA (PLEN bytes of `v`).
    pub fn set_source_protocol_addr(&mut self, v: &[u8]) {
        let r = field::spa(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r.clone()].copy_from_slice(&v[..r.len()]);
    }

    /// Sets THA (HLEN bytes of `v`).
    pub fn set_target_hardware_addr(&mut self, v: &[u8]) {
        let r = field::tha(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r.clone()].copy_from_slice(&v[..r.len()]);
    }

    /// Sets TPA (PLEN bytes of `v`).
    pub fn set_target_protocol_addr(&mut self, v: &[u8]) {
        let r = field::tpa(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r.clone()].copy_from_slice(&v[..r.len()]);
    }
}

/// A parsed ARP packet. Only Ethernet/IPv4 is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpRepr {
    /// ARP for IPv4 over Ethernet.
    EthernetIpv4 {
        /// OPER.
        operation: ArpOperation,
        /// SHA.
        source_hardware_addr: EthernetAddress,
        /// SPA.
        source_protocol_addr: Ipv4Address,
        /// THA.
        target_hardware_addr: EthernetAddress,
        /// TPA.
        target_protocol_addr: Ipv4Address,
    },
}

fn ipv4(b: &[u8]) -> Ipv4Address {
    Ipv4Address::new(b[0], b[1], b[2], b[3])
}

impl ArpRepr {
    /// Parses an ARP packet.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is short; [`Error::Unsupported`]
    /// for anything but htype 1, ptype 0x0800, hlen 6, plen 4.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.hardware_type() != field::HTYPE_ETHERNET
            || packet.protocol_type() != field::PTYPE_IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(ArpRepr::EthernetIpv4 {
            operation: packet.operation(),
            source_hardware_addr: EthernetAddress::from_bytes(packet.source_hardware_addr()),
            source_protocol_addr: ipv4(packet.source_protocol_addr()),
            target_hardware_addr: EthernetAddress::from_bytes(packet.target_hardware_addr()),
            target_protocol_addr: ipv4(packet.target_protocol_addr()),
        })
    }

    /// The packet length: 28.
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Writes the packet.
    ///
    /// # Panics
    /// Panics when the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        match *self {
            ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_hardware_addr,
                target_protocol_addr,
            } => {
                packet.set_hardware_type(field::HTYPE_ETHERNET);
                packet.set_protocol_type(field::PTYPE_IPV4);
                packet.set_hardware_len(6);
                packet.set_protocol_len(4);
                packet.set_operation(operation);
                packet.set_source_hardware_addr(&source_hardware_addr.0);
                packet.set_source_protocol_addr(&source_protocol_addr.octets());
                packet.set_target_hardware_addr(&target_hardware_addr.0);
                packet.set_target_protocol_addr(&target_protocol_addr.octets());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A request from 10.0.0.1 (02:..:01) for 10.0.0.2, as on the wire.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0,
        0, 0, 0, 10, 0, 0, 2,
    ];

    fn request() -> ArpRepr {
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            source_protocol_addr: Ipv4Address::new(10, 0, 0, 1),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Address::new(10, 0, 0, 2),
        }
    }

    #[test]
    fn parse_request_bytes() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p).unwrap(), request());
    }

    #[test]
    fn emit_matches_bytes() {
        let mut buf = [0xaau8; 28];
        request().emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);
        assert_eq!(request().buffer_len(), 28);
    }

    #[test]
    fn reply_round_trip() {
        let r = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 9]),
            source_protocol_addr: Ipv4Address::new(192, 168, 1, 9),
            target_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            target_protocol_addr: Ipv4Address::new(192, 168, 1, 1),
        };
        let mut buf = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap(),
            r
        );
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..28 {
            assert_eq!(
                ArpPacket::new_checked(&REQUEST[..len]).unwrap_err(),
                Error::Truncated,
                "{len}"
            );
        }
    }

    #[test]
    fn other_hardware_or_protocol_unsupported() {
        for (i, v) in [(1usize, 6u8), (3, 0xdd), (4, 8), (5, 16)] {
            let mut buf = [0u8; 64];
            buf[..28].copy_from_slice(&REQUEST);
            buf[i] = v;
            let p = ArpPacket::new_checked(&buf[..]).unwrap();
            assert_eq!(ArpRepr::parse(&p).unwrap_err(), Error::Unsupported, "{i}");
        }
    }

    #[test]
    fn variable_lengths_do_not_panic() {
        // hlen 255, plen 255 in a short buffer: truncated, not a panic.
        let mut buf = [0u8; 100];
        buf[4] = 255;
        buf[5] = 255;
        assert_eq!(
            ArpPacket::new_checked(&buf[..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn unknown_operation_kept() {
        let mut buf = REQUEST;
        buf[7] = 9;
        match ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap() {
            ArpRepr::EthernetIpv4 { operation, .. } => {
                assert_eq!(operation, ArpOperation::Unknown(9))
            }
        }
    }
}

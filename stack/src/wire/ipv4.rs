//! IPv4 packets.
//!
//! [`Ipv4Packet`] is a checked zero-copy view; [`Ipv4Repr`] the parsed
//! header. Options (IHL > 5) are skipped; bytes after Total Length
//! (Ethernet padding) are ignored. [`Ipv4Repr::parse`] refuses fragments
//! (`Unsupported`): only the interface's reassembly, through
//! [`Ipv4Repr::parse_fragment`], sees them, so a lone fragment is never
//! taken for a whole datagram.

pub use std::net::Ipv4Addr as Ipv4Address;

/// An IPv4 address with a prefix length, e.g. `10.99.0.2/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The address.
    pub address: Ipv4Address,
    /// The prefix length, 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// The network mask of this prefix.
    pub fn netmask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len.min(32)))
        }
    }

    /// True when `addr` is on this subnet.
    pub fn contains(&self, addr: Ipv4Address) -> bool {
        let m = self.netmask();
        u32::from(addr) & m == u32::from(self.address) & m
    }

    /// The subnet's directed broadcast address.
    pub fn broadcast(&self) -> Ipv4Address {
        Ipv4Address::from(u32::from(self.address) | !self.netmask())
    }
}

use super::checksum;
use super::{Error, Result};

mod field {
    use core::ops::Range;

    pub(super) const VER_IHL: usize = 0;
    pub(super) const DSCP_ECN: usize = 1;
    pub(super) const LENGTH: Range<usize> = 2..4;
    pub(super) const IDENT: Range<usize> = 4..6;
    pub(super) const FLG_OFF: Range<usize> = 6..8;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: Range<usize> = 10..12;
    pub(super) const SRC_ADDR: Range<usize> = 12..16;
    pub(super) const DST_ADDR: Range<usize> = 16..20;

    pub(super) const FLAG_DF: u16 = 0x4000;
    pub(super) const FLAG_MF: u16 = 0x2000;
    pub(super) const OFFSET_MASK: u16 = 0x1fff;
}

/// The length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// The protocol carried by an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// 1.
    Icmp,
    /// 6.
    Tcp,
    /// 17.
    Udp,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> IpProtocol {
        match v {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(v: IpProtocol) -> u8 {
        match v {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(other) => other,
        }
    }
}

impl core::fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IpProtocol::Icmp => f.write_str("ICMP"),
            IpProtocol::Tcp => f.write_str("TCP"),
            IpProtocol::Udp => f.write_str("UDP"),
            IpProtocol::Unknown(v) => write!(f, "proto {v}"),
        }
    }
}

/// A checked zero-copy view of an IPv4 packet.
///
/// After [`new_checked`](Self::new_checked) succeeds, the header (with its
/// options) and Total Length both fit in the buffer, and Total Length is at
/// least the header length, so no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer and checks its lengths (see [`check_len`](Self::check_len)).
    ///
    /// # Errors
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the length fields against the buffer.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 20 bytes, than
    /// the IHL, or than Total Length; [`Error::Malformed`] when IHL < 5 or
    /// Total Length is shorter than the header.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if hl > len {
            return Err(Error::Truncated);
        }
        let total = usize::from(self.total_len());
        if total < hl {
            return Err(Error::Malformed);
        }
        if total > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Checks that the header (with its options) fits, without looking at
    /// Total Length: for packets whose length field is not to be trusted (a
    /// GSO super-frame over 64 KiB) or not needed (RSS reads addresses and
    /// ports only). After it succeeds every header accessor and
    /// [`after_header`](Ipv4Packet::after_header) are safe; the payload
    /// accessors need [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 20 bytes or
    /// than the IHL; [`Error::Malformed`] when IHL < 5.
    pub fn check_header_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if hl > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The header (with its options) as bytes.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// DSCP and ECN as one byte.
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total Length.
    pub fn total_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::IDENT])
    }

    /// Don't Fragment.
    pub fn dont_frag(&self) -> bool {
        be16(&self.buffer.as_ref()[field::FLG_OFF]) & field::FLAG_DF != 0
    }

    /// More Fragments.
    pub fn more_frags(&self) -> bool {
        be16(&self.buffer.as_ref()[field::FLG_OFF]) & field::FLAG_MF != 0
    }

    /// True for a fragment: More Fragments set or a non-zero offset.
    pub fn is_fragment(&self) -> bool {
        be16(&self.buffer.as_ref()[field::FLG_OFF]) & (field::FLAG_MF | field::OFFSET_MASK) != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(&self.buffer.as_ref()[field::FLG_OFF]) & field::OFFSET_MASK) << 3
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol field.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Address {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Address::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Address {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Address::new(b[0], b[1], b[2], b[3])
    }

    /// True when the header checksum (options included) verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload: exactly Total Length minus the header, borrowed for the
    /// buffer's lifetime (trailing padding is excluded).
    pub fn payload(&self) -> &'a [u8] {
        let b = self.buffer.as_ref();
        &b[self.header_len()..usize::from(self.total_len())]
    }

    /// Every byte after the header to the end of the buffer, whatever Total
    /// Length says (padding included). Needs only
    /// [`check_header_len`](Ipv4Packet::check_header_len).
    pub fn after_header(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version and IHL from a header length in bytes.
    pub fn set_version_and_header_len(&mut self, version: u8, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = (version << 4) | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets DSCP and ECN.
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Sets Total Length.
    pub fn set_total_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets Identification.
    pub fn set_ident(&mut self, v: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets flags (DF, MF) and the fragment offset in bytes (a multiple of 8).
    pub fn set_flags_and_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & field::OFFSET_MASK;
        if dont_frag {
            v |= field::FLAG_DF;
        }
        if more_frags {
            v |= field::FLAG_MF;
        }
        self.buffer.as_mut()[field::FLG_OFF].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the TTL.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = u8::from(v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Address) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Address) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Computes and stores the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let ck = checksum::finish(checksum::data(&self.buffer.as_ref()[..hl]));
        self.set_checksum(ck);
    }

    /// The payload, mutable: Total Length minus the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[hl..total]
    }
}

/// Where a fragment sits in its datagram (RFC 791).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fragment {
    /// Fragment Offset, in bytes (a multiple of 8).
    pub offset: u16,
    /// More Fragments.
    pub more: bool,
}

impl Fragment {
    /// A whole datagram: offset 0, no more fragments.
    pub const WHOLE: Fragment = Fragment {
        offset: 0,
        more: false,
    };

    /// True unless this is a whole datagram.
    pub const fn is_fragment(&self) -> bool {
        self.offset != 0 || self.more
    }
}

/// A parsed IPv4 header (without options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Address,
    /// Destination address.
    pub dst_addr: Ipv4Address,
    /// The carried protocol.
    pub protocol: IpProtocol,
    /// Payload length (Total Length minus the header).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// DSCP and ECN as one byte.
    pub dscp_ecn: u8,
}

impl Ipv4Repr {
    /// Parses a packet. With `verify_checksum` false (RX checksum offload
    /// already verified it) the header checksum is not checked.
    ///
    /// # Errors
    /// [`Error::Truncated`] / [`Error::Malformed`] as in
    /// [`Ipv4Packet::check_len`]; [`Error::Malformed`] when the version is
    /// not 4; [`Error::BadChecksum`]; [`Error::Unsupported`] for a fragment.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Ipv4Packet<T>,
        verify_checksum: bool,
    ) -> Result<Ipv4Repr> {
        let (repr, frag) = Self::parse_fragment(packet, verify_checksum)?;
        if frag.is_fragment() {
            return Err(Error::Unsupported);
        }
        Ok(repr)
    }

    /// Parses a packet that may be a fragment: the header, and where the
    /// fragment sits. `payload_len` is this fragment's payload.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), but a fragment is no error.
    pub fn parse_fragment<T: AsRef<[u8]>>(
        packet: &Ipv4Packet<T>,
        verify_checksum: bool,
    ) -> Result<(Ipv4Repr, Fragment)> {
        if packet.buffer.as_ref().is_empty() {
            return Err(Error::Truncated);
        }
        if packet.version() != 4 {
            return Err(Error::Malformed);
        }
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let frag = Fragment {
            offset: packet.frag_offset(),
            more: packet.more_frags(),
        };
        let repr = Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            dscp_ecn: packet.dscp_ecn(),
        };
        Ok((repr, frag))
    }

    /// The emitted header length: 20 (no options are emitted).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The whole packet length: header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header. With `fill_checksum` false (TX checksum
    /// offload) the checksum field is left zero for the device to fill.
    ///
    /// # Panics
    /// Panics when the buffer is shorter than 20 bytes or when
    /// `payload_len + 20` exceeds 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Ipv4Packet<T>,
        fill_checksum: bool,
    ) {
        self.emit_fragment(packet, Fragment::WHOLE, fill_checksum);
    }

    /// Writes a 20-byte header for one fragment of this datagram:
    /// `payload_len` is then the fragment's payload (RFC 791 §3.2).
    ///
    /// # Panics
    /// As [`emit`](Self::emit).
    pub fn emit_fragment<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Ipv4Packet<T>,
        frag: Fragment,
        fill_checksum: bool,
    ) {
        let total = u16::try_from(self.buffer_len()).expect("IPv4 packet longer than 65535 bytes");
        packet.set_version_and_header_len(4, HEADER_LEN);
        packet.set_dscp_ecn(self.dscp_ecn);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        packet.set_flags_and_offset(self.dont_frag, frag.more, frag.offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
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

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Address::new(10, 0, 0, 1),
            dst_addr: Ipv4Address::new(10, 0, 0, 2),
            protocol: IpProtocol::Tcp,
            payload_len: 8,
            ttl: 64,
            ident: 0x1234,
            dont_frag: true,
            dscp_ecn: 0x02,
        }
    }

    fn packet_bytes() -> [u8; 28] {
        let mut buf = [0u8; 28];
        repr().emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
        buf[20..].copy_from_slice(b"abcdefgh");
        buf
    }

    #[test]
    fn round_trip() {
        let buf = packet_bytes();
        assert_eq!(buf[0], 0x45);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap(), repr());
        assert_eq!(p.payload(), b"abcdefgh");
    }

    #[test]
    fn known_header_bytes() {
        let buf = packet_bytes();
        assert_eq!(
            &buf[..12],
            &[0x45, 0x02, 0x00, 28, 0x12, 0x34, 0x40, 0x00, 64, 6, buf[10], buf[11]]
        );
        assert_eq!(checksum::data(&buf[..20]), 0xffff);
    }

    #[test]
    fn tx_offload_leaves_checksum_zero() {
        let mut buf = [0u8; 28];
        repr().emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), false);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.checksum(), 0);
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap_err(), Error::BadChecksum);
        assert_eq!(Ipv4Repr::parse(&p, false).unwrap(), repr());
    }

    #[test]
    fn truncated_at_every_length() {
        let buf = packet_bytes();
        for len in 0..28 {
            let p = Ipv4Packet::new_unchecked(&buf[..len]);
            assert_eq!(
                Ipv4Repr::parse(&p, true).unwrap_err(),
                Error::Truncated,
                "{len}"
            );
            if len > 0 {
                assert_eq!(p.check_len().unwrap_err(), Error::Truncated, "{len}");
            }
        }
    }

    #[test]
    fn ihl_below_five_malformed() {
        for ihl in 0..5u8 {
            let mut buf = packet_bytes();
            buf[0] = 0x40 | ihl;
            assert_eq!(
                Ipv4Packet::new_checked(&buf[..]).unwrap_err(),
                Error::Malformed
            );
        }
    }

    #[test]
    fn version_not_four_malformed() {
        let mut buf = packet_bytes();
        buf[0] = 0x65;
        let p = Ipv4Packet::new_unchecked(&buf[..]);
        assert_eq!(Ipv4Repr::parse(&p, false).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn total_len_beyond_buffer_truncated() {
        let mut buf = packet_bytes();
        buf[3] = 29;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn total_len_below_header_malformed() {
        let mut buf = packet_bytes();
        buf[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn ihl_beyond_buffer_truncated() {
        let mut buf = [0u8; 40];
        buf[0] = 0x4f; // 60-byte header in a 40-byte buffer
        buf[3] = 40;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn bad_checksum() {
        let mut buf = packet_bytes();
        buf[8] ^= 1;
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap_err(), Error::BadChecksum);
        // The checksum covers only the header.
        let mut buf = packet_bytes();
        buf[25] ^= 1;
        assert!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap(), true).is_ok());
    }

    #[test]
    fn fragments_unsupported() {
        for (mf, off) in [(true, 0u16), (false, 8), (true, 1480)] {
            let mut buf = packet_bytes();
            let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
            p.set_flags_and_offset(false, mf, off);
            p.fill_checksum();
            let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(p.frag_offset(), off);
            assert_eq!(Ipv4Repr::parse(&p, true).unwrap_err(), Error::Unsupported);
            let (r, frag) = Ipv4Repr::parse_fragment(&p, true).unwrap();
            assert_eq!(
                frag,
                Fragment {
                    offset: off,
                    more: mf
                }
            );
            assert!(frag.is_fragment());
            assert_eq!(r.payload_len, 8);
        }
    }

    #[test]
    fn fragment_emit_round_trip() {
        let mut buf = [0u8; 28];
        let frag = Fragment {
            offset: 1480,
            more: true,
        };
        let r = Ipv4Repr {
            dont_frag: false,
            ..repr()
        };
        r.emit_fragment(&mut Ipv4Packet::new_unchecked(&mut buf[..]), frag, true);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Ipv4Repr::parse_fragment(&p, true).unwrap(), (r, frag));
        assert!(!Fragment::WHOLE.is_fragment());
    }

    #[test]
    fn options_skipped() {
        // A 24-byte header (one NOP-padded option word) before 4 payload bytes.
        let mut buf = [0u8; 28];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_version_and_header_len(4, 24);
        p.set_total_len(28);
        p.set_ttl(5);
        p.set_protocol(IpProtocol::Icmp);
        p.set_src_addr(Ipv4Address::new(1, 2, 3, 4));
        p.set_dst_addr(Ipv4Address::new(5, 6, 7, 8));
        p.payload_mut().copy_from_slice(b"wxyz");
        buf[20..24].copy_from_slice(&[1, 1, 1, 0]);
        Ipv4Packet::new_unchecked(&mut buf[..]).fill_checksum();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(r.payload_len, 4);
        assert_eq!(r.protocol, IpProtocol::Icmp);
        assert_eq!(p.payload(), b"wxyz");
    }

    #[test]
    fn ethernet_padding_ignored() {
        let mut buf = [0u8; 46];
        buf[..28].copy_from_slice(&packet_bytes());
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), b"abcdefgh");
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap().payload_len, 8);
    }

    #[test]
    fn protocol_conversions() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
    }

    #[test]
    fn cidr() {
        let c = Ipv4Cidr {
            address: Ipv4Address::new(10, 99, 0, 2),
            prefix_len: 24,
        };
        assert!(c.contains(Ipv4Address::new(10, 99, 0, 200)));
        assert!(!c.contains(Ipv4Address::new(10, 98, 0, 2)));
        assert_eq!(c.broadcast(), Ipv4Address::new(10, 99, 0, 255));
    }
}

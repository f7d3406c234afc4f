//! Ethernet II frames, with VLAN tag recognition.
//!
//! [`EthernetFrame`] is a checked zero-copy view; [`EthernetRepr`] is the
//! parsed header. A single tag is recognised, 802.1Q (TPID 0x8100) and
//! 802.1ad (TPID 0x88a8) alike: the header is then 18 bytes, the inner
//! EtherType is reported and the tag ([`VlanTag`]) kept.
//!
//! ```text
//!   untagged: [ dst (6) | src (6) | type (2) | payload ]
//!   tagged:   [ dst (6) | src (6) | TPID (2) | TCI (2) | type (2) | payload ]
//! ```
//!
//! [`copy_with_vlan_tag`] and [`strip_vlan_tag`] put a tag into a frame and
//! take it out again (Linux packet sockets hand frames over with the tag
//! removed and reported beside them).

use core::fmt;

/// A 48-bit Ethernet (MAC) address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// True for ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// True when the group bit is set (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for a unicast address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// True when the locally-administered bit is set.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl EthernetAddress {
    /// The address from its first six bytes.
    ///
    /// # Panics
    /// Panics when `bytes` is shorter than six bytes.
    pub fn from_bytes(bytes: &[u8]) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&bytes[..6]);
        EthernetAddress(a)
    }

    /// The six bytes of the address.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }
}

/// The EtherType of a frame (IEEE 802.3 Length/Type above 0x0600).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// IPv4, 0x0800.
    Ipv4,
    /// ARP, 0x0806.
    Arp,
    /// An 802.1Q VLAN tag, 0x8100.
    Vlan,
    /// An 802.1ad service tag (the outer tag of Q-in-Q), 0x88a8.
    QinQ,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> EtherType {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::QinQ,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(v: EtherType) -> u16 {
        match v {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::Unknown(other) => other,
        }
    }
}

impl EtherType {
    /// True for the TPIDs of a VLAN tag: 802.1Q (0x8100) and 802.1ad
    /// (0x88a8).
    pub const fn is_vlan_tag(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }
}

/// A VLAN tag: its TPID (the EtherType that announces it) and its tag
/// control information (PCP, DEI, VLAN id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// [`EtherType::Vlan`] (802.1Q) or [`EtherType::QinQ`] (802.1ad).
    pub tpid: EtherType,
    /// Priority (3 bits), drop eligible (1 bit), VLAN id (12 bits).
    pub tci: u16,
}

impl VlanTag {
    /// An 802.1Q tag for VLAN `vid` (12 bits kept), priority and DEI zero.
    pub const fn dot1q(vid: u16) -> VlanTag {
        VlanTag {
            tpid: EtherType::Vlan,
            tci: vid & field::VID_MASK,
        }
    }

    /// An 802.1ad tag for VLAN `vid` (12 bits kept), priority and DEI zero.
    pub const fn dot1ad(vid: u16) -> VlanTag {
        VlanTag {
            tpid: EtherType::QinQ,
            tci: vid & field::VID_MASK,
        }
    }

    /// The VLAN id (the low 12 bits of the TCI).
    pub const fn vid(&self) -> u16 {
        self.tci & field::VID_MASK
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Vlan => f.write_str("802.1Q"),
            EtherType::QinQ => f.write_str("802.1ad"),
            EtherType::Unknown(v) => write!(f, "0x{v:04x}"),
        }
    }
}

mod field {
    use core::ops::{Range, RangeFrom};

    pub(super) const DESTINATION: Range<usize> = 0..6;
    pub(super) const SOURCE: Range<usize> = 6..12;
    pub(super) const ETHERTYPE: Range<usize> = 12..14;
    pub(super) const PAYLOAD: RangeFrom<usize> = 14..;
    /// The tag control information (PCP, DEI, VID), after a tag's TPID
    /// (which sits where the EtherType of an untagged frame does).
    pub(super) const VLAN_TCI: Range<usize> = 14..16;
    /// The whole tag: TPID and TCI.
    pub(super) const VLAN_TAG: Range<usize> = 12..16;
    /// The EtherType after the tag.
    pub(super) const INNER_ETHERTYPE: Range<usize> = 16..18;
    pub(super) const TAGGED_PAYLOAD: RangeFrom<usize> = 18..;
    pub(super) const VID_MASK: u16 = 0x0fff;
}

/// The length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;
/// The length of an Ethernet header with one VLAN tag.
pub const VLAN_HEADER_LEN: usize = field::TAGGED_PAYLOAD.start;
/// The length of a VLAN tag (TPID and TCI).
pub const VLAN_TAG_LEN: usize = field::VLAN_TAG.end - field::VLAN_TAG.start;
/// The length of the two addresses that precede the EtherType or tag.
pub const ADDRS_LEN: usize = field::ETHERTYPE.start;

/// A checked zero-copy view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer and checks that the header (with its tag, if any) fits.
    ///
    /// # Errors
    /// [`Error::Truncated`](super::Error::Truncated) when it does not.
    pub fn new_checked(buffer: T) -> super::Result<EthernetFrame<T>> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the header, including a VLAN tag, fits in the buffer.
    ///
    /// # Errors
    /// [`Error::Truncated`](super::Error::Truncated) when it does not.
    pub fn check_len(&self) -> super::Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(super::Error::Truncated);
        }
        if self.outer_ethertype().is_vlan_tag() && b.len() < VLAN_HEADER_LEN {
            return Err(super::Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// True when the frame carries a VLAN tag (802.1Q or 802.1ad).
    pub fn is_tagged(&self) -> bool {
        self.outer_ethertype().is_vlan_tag()
    }

    /// 14, or 18 with a VLAN tag.
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The destination address.
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// The source address.
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The EtherType at offset 12 (the TPID for a tagged frame).
    pub fn outer_ethertype(&self) -> EtherType {
        EtherType::from(be16(&self.buffer.as_ref()[field::ETHERTYPE]))
    }

    /// The EtherType of the payload: after the tag when there is one.
    pub fn ethertype(&self) -> EtherType {
        if self.is_tagged() {
            EtherType::from(be16(&self.buffer.as_ref()[field::INNER_ETHERTYPE]))
        } else {
            self.outer_ethertype()
        }
    }

    /// The VLAN id (12 bits) of a tagged frame.
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tag().map(|t| t.vid())
    }

    /// The tag of a tagged frame.
    pub fn vlan_tag(&self) -> Option<VlanTag> {
        let tpid = self.outer_ethertype();
        tpid.is_vlan_tag().then(|| VlanTag {
            tpid,
            tci: be16(&self.buffer.as_ref()[field::VLAN_TCI]),
        })
    }

    /// The payload, after the tag when there is one.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a.0);
    }

    /// Sets the EtherType at offset 12 (untagged frame).
    pub fn set_ethertype(&mut self, t: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(t).to_be_bytes());
    }

    /// Writes an 802.1Q tag with VLAN id `vid` (PCP and DEI zero) and the
    /// inner EtherType `inner`.
    ///
    /// # Panics
    /// Panics when the buffer is shorter than 18 bytes.
    pub fn set_vlan(&mut self, vid: u16, inner: EtherType) {
        self.set_vlan_tag(VlanTag::dot1q(vid), inner);
    }

    /// Writes `tag` (its TPID and TCI as they are) and the inner EtherType
    /// `inner`.
    ///
    /// # Panics
    /// Panics when the buffer is shorter than 18 bytes.
    pub fn set_vlan_tag(&mut self, tag: VlanTag, inner: EtherType) {
        let b = self.buffer.as_mut();
        b[field::VLAN_TAG].copy_from_slice(&tag_bytes(tag));
        b[field::INNER_ETHERTYPE].copy_from_slice(&u16::from(inner).to_be_bytes());
    }

    /// The payload, mutable, after the tag when there is one.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        &mut self.buffer.as_mut()[h..]
    }
}

fn tag_bytes(tag: VlanTag) -> [u8; VLAN_TAG_LEN] {
    let [a, b] = u16::from(tag.tpid).to_be_bytes();
    let [c, d] = tag.tci.to_be_bytes();
    [a, b, c, d]
}

/// Copies the untagged frame `untagged` into `dst` with `tag` inserted
/// after the addresses, and returns the tagged frame's length: what was the
/// EtherType follows the tag. `None`, leaving `dst` alone, when `untagged`
/// is shorter than the two addresses or `dst` cannot hold the result.
pub fn copy_with_vlan_tag(dst: &mut [u8], untagged: &[u8], tag: VlanTag) -> Option<usize> {
    let len = untagged.len().checked_add(VLAN_TAG_LEN)?;
    if untagged.len() < ADDRS_LEN || dst.len() < len {
        return None;
    }
    dst[..ADDRS_LEN].copy_from_slice(&untagged[..ADDRS_LEN]);
    dst[field::VLAN_TAG].copy_from_slice(&tag_bytes(tag));
    dst[field::VLAN_TAG.end..len].copy_from_slice(&untagged[ADDRS_LEN..]);
    Some(len)
}

/// Removes the VLAN tag of a tagged frame in place: the bytes after the tag
/// move up four bytes. Returns the tag and the untagged frame's length (the
/// first bytes of `frame`); `None`, leaving `frame` alone, when it carries
/// no tag or the tagged header does not fit.
pub fn strip_vlan_tag(frame: &mut [u8]) -> Option<(VlanTag, usize)> {
    let tag = EthernetFrame::new_checked(&*frame).ok()?.vlan_tag()?;
    frame.copy_within(field::VLAN_TAG.end.., ADDRS_LEN);
    Some((tag, frame.len() - VLAN_TAG_LEN))
}

/// A parsed Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source MAC.
    pub src_addr: EthernetAddress,
    /// Destination MAC.
    pub dst_addr: EthernetAddress,
    /// The payload's EtherType (the inner one for a tagged frame).
    pub ethertype: EtherType,
    /// The VLAN tag when the frame carries one (802.1Q or 802.1ad).
    pub vlan: Option<VlanTag>,
}

impl EthernetRepr {
    /// Parses the header of a checked frame.
    ///
    /// # Errors
    /// [`Error::Truncated`](super::Error::Truncated) when the header does not
    /// fit (the view was not checked).
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> super::Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
            vlan: frame.vlan_tag(),
        })
    }

    /// The header length: 14, or 18 with a VLAN tag.
    pub const fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The frame length for a payload of `payload_len` bytes (no FCS).
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        self.header_len() + payload_len
    }

    /// Writes the header.
    ///
    /// # Panics
    /// Panics when the buffer is shorter than [`header_len`](Self::header_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        match self.vlan {
            Some(tag) => frame.set_vlan_tag(tag, self.ethertype),
            None => frame.set_ethertype(self.ethertype),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    const SRC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
    const DST: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);

    #[test]
    fn untagged_round_trip() {
        let repr = EthernetRepr {
            src_addr: SRC,
            dst_addr: DST,
            ethertype: EtherType::Ipv4,
            vlan: None,
        };
        let mut buf = [0u8; 20];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[0..6], &DST.0);
        assert_eq!(&buf[6..12], &SRC.0);
        assert_eq!(&buf[12..14], &[0x08, 0x00]);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(EthernetRepr::parse(&f).unwrap(), repr);
        assert_eq!(f.payload().len(), 6);
        assert_eq!(repr.buffer_len(6), 20);
    }

    #[test]
    fn vlan_round_trip_and_payload() {
        let repr = EthernetRepr {
            src_addr: SRC,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EtherType::Arp,
            vlan: Some(VlanTag::dot1q(42)),
        };
        let mut buf = [0u8; 22];
        buf[18..].copy_from_slice(&[1, 2, 3, 4]);
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[12..18], &[0x81, 0x00, 0x00, 42, 0x08, 0x06]);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.outer_ethertype(), EtherType::Vlan);
        assert_eq!(f.payload(), &[1, 2, 3, 4]);
        assert_eq!(EthernetRepr::parse(&f).unwrap(), repr);
    }

    #[test]
    fn vlan_id_masks_priority_bits() {
        let mut buf = [0u8; 18];
        buf[12..18].copy_from_slice(&[0x81, 0x00, 0xe1, 0x23, 0x08, 0x00]);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(f.vlan_id(), Some(0x123));
        assert_eq!(f.ethertype(), EtherType::Ipv4);
    }

    #[test]
    fn dot1ad_is_a_tag_like_dot1q() {
        let mut buf = [0u8; 22];
        buf[12..18].copy_from_slice(&[0x88, 0xa8, 0xa0, 0x07, 0x08, 0x00]);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert!(f.is_tagged());
        assert_eq!(f.outer_ethertype(), EtherType::QinQ);
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.header_len(), VLAN_HEADER_LEN);
        assert_eq!(
            f.vlan_tag(),
            Some(VlanTag {
                tpid: EtherType::QinQ,
                tci: 0xa007
            })
        );
        assert_eq!(f.vlan_id(), Some(7));
        assert_eq!(f.payload().len(), 4);
        // The repr keeps the TPID and the priority bits: emit gives the
        // same bytes back.
        let repr = EthernetRepr::parse(&f).unwrap();
        let mut out = [0u8; 22];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
        assert_eq!(out[..18], buf[..18]);
        assert_eq!(
            EthernetFrame::new_checked(&buf[..17]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(VlanTag::dot1ad(0x1005).vid(), 5);
        assert_eq!(VlanTag::dot1q(9).tpid, EtherType::Vlan);
    }

    #[test]
    fn tag_insert_and_strip_are_inverse() {
        let mut untagged = [0u8; 30];
        for (i, b) in untagged.iter_mut().enumerate() {
            *b = i as u8;
        }
        untagged[12..14].copy_from_slice(&[0x08, 0x00]);
        for tag in [VlanTag::dot1q(100), VlanTag::dot1ad(4095)] {
            let mut tagged = [0u8; 34];
            assert_eq!(copy_with_vlan_tag(&mut tagged, &untagged, tag), Some(34));
            let f = EthernetFrame::new_checked(&tagged[..]).unwrap();
            assert_eq!(f.vlan_tag(), Some(tag));
            assert_eq!(f.ethertype(), EtherType::Ipv4);
            assert_eq!(f.src_addr().0, untagged[6..12]);
            assert_eq!(f.payload(), &untagged[14..]);
            assert_eq!(strip_vlan_tag(&mut tagged), Some((tag, 30)));
            assert_eq!(tagged[..30], untagged);
        }
        // Too small a destination, too short a frame, nothing to strip.
        assert_eq!(
            copy_with_vlan_tag(&mut [0u8; 33], &untagged, VlanTag::dot1q(1)),
            None
        );
        assert_eq!(
            copy_with_vlan_tag(&mut [0u8; 33], &untagged[..11], VlanTag::dot1q(1)),
            None
        );
        let before = untagged;
        assert_eq!(strip_vlan_tag(&mut untagged), None);
        assert_eq!(untagged, before);
        let mut short = [0u8; 16];
        short[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(strip_vlan_tag(&mut short), None);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]).unwrap_err(),
            Error::Truncated
        );
        let mut buf = [0u8; 17];
        buf[12] = 0x81;
        assert_eq!(
            EthernetFrame::new_checked(&buf[..]).unwrap_err(),
            Error::Truncated
        );
        assert!(EthernetFrame::new_checked(&[0u8; 14][..]).is_ok());
    }

    #[test]
    fn ethertype_conversions() {
        for v in [0x0800u16, 0x0806, 0x8100, 0x88a8, 0x86dd, 0] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x86dd), EtherType::Unknown(0x86dd));
        assert_eq!(EtherType::Unknown(0x86dd).to_string(), "0x86dd");
        assert!(EtherType::Vlan.is_vlan_tag() && EtherType::QinQ.is_vlan_tag());
        assert!(!EtherType::Ipv4.is_vlan_tag() && !EtherType::Unknown(0x9100).is_vlan_tag());
    }

    #[test]
    fn address_kinds() {
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(SRC.is_unicast() && SRC.is_local());
        assert_eq!(SRC.to_string(), "02:00:00:00:00:01");
    }
}

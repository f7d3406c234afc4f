//! Receive-side offload metadata of Linux packet and TAP devices: the
//! `struct virtio_net_hdr` the kernel puts in front of each frame
//! (`PACKET_VNET_HDR`, `IFF_VNET_HDR`), partial-checksum completion, and
//! software segmentation of TCPv4 GSO super-frames into MSS-sized frames.
//!
//! A kernel peer with TSO/GSO on hands a veth (or a TAP) unsegmented TCP
//! frames of up to 64 KiB; the header tells us it is one (`gso_type`
//! TCPV4) and the MSS to cut it at (`gso_size`). [`TcpSegments`] cuts it
//! the way the kernel's own `tcp_gso_segment` would:
//!
//! ```text
//!   super-frame: [ eth | ip (id N, len L) | tcp (seq S, flags F) | p0 p1 … pk ]
//!   segment i:   [ eth | ip (id N+i, len) | tcp (seq S+i·mss)     | pi ]
//!                FIN, PSH only on the last segment; CWR only on the first;
//!                IPv4 header checksum and full TCP checksum recomputed.
//! ```

use crate::wire::checksum;
use crate::wire::ethernet::{EtherType, EthernetFrame};
use crate::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet};
use crate::wire::tcp::{TcpFlags, TcpPacket};
use crate::wire::SeqNumber;

/// Bytes in a `struct virtio_net_hdr`.
pub(crate) const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_*`: what the kernel says about a frame's checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct VnetFlags(pub u8);

bitflags::bitflags! {
    impl VnetFlags: u8 {
        /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the L4 checksum is partial.
        const NEEDS_CSUM = 1;
        /// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksums were verified.
        const DATA_VALID = 2;
        /// Bits we do not interpret are kept as they came.
        const _ = !0;
    }
}

/// `VIRTIO_NET_HDR_GSO_NONE`.
pub(crate) const VNET_GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub(crate) const VNET_GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_ECN`: a flag on `gso_type`.
pub(crate) const VNET_GSO_ECN: u8 = 0x80;

/// A decoded `struct virtio_net_hdr` (native byte order: the legacy
/// virtio layout Linux packet sockets and TAP devices use by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct VnetHdr {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: VnetFlags,
    /// `VIRTIO_NET_HDR_GSO_*`, with [`VNET_GSO_ECN`] possibly set.
    pub gso_type: u8,
    /// Length of the headers (as the kernel reports it: not relied upon).
    pub hdr_len: u16,
    /// The MSS to segment at.
    pub gso_size: u16,
    /// Where the checksummed region starts, from the Ethernet header.
    pub csum_start: u16,
    /// Where the checksum field is, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Decodes the first [`VNET_HDR_LEN`] bytes of `b`; `None` when
    /// shorter.
    pub(crate) fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b = b.get(..VNET_HDR_LEN)?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: VnetFlags(b[0]),
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// Encodes into the first [`VNET_HDR_LEN`] bytes of `b`.
    ///
    /// # Panics
    /// When `b` is shorter than [`VNET_HDR_LEN`] (a caller bug).
    #[cfg(test)]
    pub(crate) fn emit(&self, b: &mut [u8]) {
        b[0] = self.flags.bits();
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
    }

    /// The GSO type without the ECN flag.
    pub(crate) fn gso(&self) -> u8 {
        self.gso_type & !VNET_GSO_ECN
    }
}

/// Completes a partial checksum as `VIRTIO_NET_HDR_F_NEEDS_CSUM` describes
/// it: the ones' complement sum from `csum_start` to the end of `frame`
/// (the field, holding the pseudo-header sum, included) is stored at
/// `csum_start + csum_offset`. Returns false, leaving the frame alone,
/// when the offsets do not fit.
pub(crate) fn complete_checksum_at(
    frame: &mut [u8],
    csum_start: usize,
    csum_offset: usize,
) -> bool {
    let field = csum_start.saturating_add(csum_offset);
    if field.saturating_add(2) > frame.len() {
        return false;
    }
    let value = checksum::finish(checksum::data(&frame[csum_start..]));
    frame[field..field + 2].copy_from_slice(&value.to_be_bytes());
    true
}

/// Why a frame cannot be segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GsoError {
    /// Not Ethernet + IPv4 + TCP, or a header is malformed or truncated.
    Malformed,
    /// `gso_size` is zero.
    BadSegmentSize,
}

impl core::fmt::Display for GsoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GsoError::Malformed => f.write_str("not a well-formed Ethernet/IPv4/TCP frame"),
            GsoError::BadSegmentSize => f.write_str("GSO segment size is zero"),
        }
    }
}

/// A TCPv4 GSO super-frame, validated, to be cut into segments of at most
/// `gso_size` payload bytes each. See the module documentation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpSegments<'a> {
    /// The link-layer header as each segment carries it (Ethernet, or
    /// Ethernet with an 802.1Q tag), ending in the IPv4 ethertype.
    l2: &'a [u8],
    /// The IPv4 packet: header, TCP header, payload.
    ip: &'a [u8],
    ip_hl: usize,
    tcp_hl: usize,
    payload: usize,
    mss: usize,
    ident: u16,
    seq: SeqNumber,
    src: Ipv4Address,
    dst: Ipv4Address,
}

impl<'a> TcpSegments<'a> {
    /// Validates a super-frame whose link-layer header is `l2` and whose
    /// IPv4 packet is `ip` (its total length field is not trusted to be
    /// right for a GSO frame larger than 64 KiB; the slice length is).
    ///
    /// # Errors
    /// [`GsoError::Malformed`] when `l2` does not end in the IPv4
    /// ethertype or the IPv4/TCP headers are not well formed;
    /// [`GsoError::BadSegmentSize`] for a zero `gso_size`.
    pub(crate) fn new(
        l2: &'a [u8],
        ip: &'a [u8],
        gso_size: usize,
    ) -> Result<TcpSegments<'a>, GsoError> {
        if gso_size == 0 {
            return Err(GsoError::BadSegmentSize);
        }
        let eth = EthernetFrame::new_checked(l2).map_err(|_| GsoError::Malformed)?;
        if eth.header_len() != l2.len() || eth.ethertype() != EtherType::Ipv4 {
            return Err(GsoError::Malformed);
        }
        let packet = Ipv4Packet::new_unchecked(ip);
        packet.check_header_len().map_err(|_| GsoError::Malformed)?;
        // Fragments are never GSO frames.
        if packet.version() != 4 || packet.protocol() != IpProtocol::Tcp || packet.is_fragment() {
            return Err(GsoError::Malformed);
        }
        let ip_hl = packet.header_len();
        let tcp = TcpPacket::new_checked(packet.after_header()).map_err(|_| GsoError::Malformed)?;
        let tcp_hl = tcp.header_len();
        // The kernel may pad a frame; trust the IP length when it is
        // shorter than the slice, else the slice (a >64 KiB GSO frame).
        let total = usize::from(packet.total_len());
        let len = if total >= ip_hl + tcp_hl && total <= ip.len() {
            total
        } else {
            ip.len()
        };
        Ok(TcpSegments {
            l2,
            ip: &ip[..len],
            ip_hl,
            tcp_hl,
            payload: len - ip_hl - tcp_hl,
            mss: gso_size,
            ident: packet.ident(),
            seq: tcp.seq_number(),
            src: packet.src_addr(),
            dst: packet.dst_addr(),
        })
    }

    /// How many segments: at least one (a super-frame without payload
    /// becomes one frame).
    pub(crate) fn count(&self) -> usize {
        self.payload.div_ceil(self.mss).max(1)
    }

    /// Bytes of headers in every segment (link, IPv4, TCP).
    pub(crate) fn header_len(&self) -> usize {
        self.l2.len() + self.ip_hl + self.tcp_hl
    }

    /// The largest segment's length in bytes.
    pub(crate) fn max_segment_len(&self) -> usize {
        self.header_len() + self.mss.min(self.payload)
    }

    /// Writes segment `i` (`< count()`) into `dst` and returns its length;
    /// `None` when `i` is out of range or `dst` is too short.
    pub(crate) fn write(&self, i: usize, dst: &mut [u8]) -> Option<usize> {
        if i >= self.count() {
            return None;
        }
        let off = i * self.mss;
        let seg = self.mss.min(self.payload - off);
        let (l2n, ihl, thl) = (self.l2.len(), self.ip_hl, self.tcp_hl);
        let total = l2n + ihl + thl + seg;
        let dst = dst.get_mut(..total)?;
        let hdrs = ihl + thl;
        dst[..l2n].copy_from_slice(self.l2);
        dst[l2n..l2n + hdrs].copy_from_slice(&self.ip[..hdrs]);
        dst[l2n + hdrs..].copy_from_slice(&self.ip[hdrs + off..hdrs + off + seg]);

        let mut ip = Ipv4Packet::new_unchecked(&mut dst[l2n..]);
        ip.set_total_len((hdrs + seg) as u16);
        ip.set_ident(self.ident.wrapping_add(i as u16));
        ip.fill_checksum();

        let mut tcp = TcpPacket::new_unchecked(&mut dst[l2n + ihl..]);
        tcp.set_seq_number(SeqNumber(self.seq.0.wrapping_add(off as u32)));
        let mut flags = tcp.flags();
        if i + 1 < self.count() {
            flags.remove(TcpFlags::FIN | TcpFlags::PSH);
        }
        if i > 0 {
            flags.remove(TcpFlags::CWR);
        }
        tcp.set_flags(flags);
        tcp.fill_checksum(self.src, self.dst);
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::Ipv4Packet;
    use crate::wire::tcp::TcpPacket;

    const SRC: Ipv4Address = Ipv4Address::new(10, 99, 0, 1);
    const DST: Ipv4Address = Ipv4Address::new(10, 99, 0, 2);

    /// An Ethernet/IPv4/TCP super-frame with `payload`, a 12-byte option
    /// block (timestamps), `flags`, and the checksum field holding only
    /// the pseudo-header sum, as the kernel leaves a GSO frame.
    fn super_frame(payload: &[u8], flags: u8) -> Vec<u8> {
        let tcp_len = 32 + payload.len();
        let mut f = vec![0u8; 14 + 20 + tcp_len];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&0xfffeu16.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&SRC.octets());
        ip[16..20].copy_from_slice(&DST.octets());
        let tcp = &mut f[34..];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&7u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&0xffff_fc00u32.to_be_bytes());
        tcp[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        tcp[12] = 8 << 4;
        tcp[13] = flags;
        tcp[14..16].copy_from_slice(&502u16.to_be_bytes());
        // NOP NOP TS val ecr
        tcp[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7]);
        tcp[32..].copy_from_slice(payload);
        let ph = checksum::pseudo_header_v4(SRC, DST, 6, tcp_len as u32);
        tcp[16..18].copy_from_slice(&ph.to_be_bytes());
        f
    }

    fn split(f: &[u8], mss: usize) -> Vec<Vec<u8>> {
        let s = TcpSegments::new(&f[..14], &f[14..], mss).unwrap();
        (0..s.count())
            .map(|i| {
                let mut b = vec![0u8; 2048];
                let n = s.write(i, &mut b).unwrap();
                b.truncate(n);
                b
            })
            .collect()
    }

    #[test]
    fn three_segments() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7 + 3) as u8).collect();
        // ACK PSH FIN CWR ECE
        let flags =
            (TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN | TcpFlags::CWR | TcpFlags::ECE).bits();
        let f = super_frame(&payload, flags);
        let segs = split(&f, 1200);
        assert_eq!(segs.len(), 3);
        let mut data = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert_eq!(&s[..14], &f[..14]);
            let ip = Ipv4Packet::new_checked(&s[14..]).unwrap();
            assert!(ip.verify_checksum(), "segment {i}: IPv4 checksum");
            assert_eq!(usize::from(ip.total_len()), s.len() - 14);
            assert_eq!(ip.ident(), 0xfffeu16.wrapping_add(i as u16));
            assert!(ip.dont_frag());
            assert_eq!(ip.ttl(), 64);
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(SRC, DST), "segment {i}: TCP checksum");
            assert_eq!(
                tcp.seq_number(),
                crate::wire::SeqNumber(0xffff_fc00u32.wrapping_add(1200 * i as u32))
            );
            assert_eq!(tcp.ack_number(), crate::wire::SeqNumber(0x1234_5678));
            assert_eq!(tcp.header_len(), 32);
            assert_eq!(tcp.options(), &f[54..66]);
            assert_eq!(tcp.window_len(), 502);
            let fl = tcp.flags();
            assert!(fl.contains(crate::wire::tcp::TcpFlags::ACK));
            assert!(fl.contains(crate::wire::tcp::TcpFlags::ECE));
            assert_eq!(fl.contains(crate::wire::tcp::TcpFlags::CWR), i == 0);
            assert_eq!(fl.contains(crate::wire::tcp::TcpFlags::FIN), i == 2);
            assert_eq!(fl.contains(crate::wire::tcp::TcpFlags::PSH), i == 2);
            assert_eq!(tcp.payload().len(), if i < 2 { 1200 } else { 600 });
            data.extend_from_slice(tcp.payload());
        }
        assert_eq!(data, payload);
    }

    #[test]
    fn a_tagged_link_header_is_carried_by_every_segment() {
        use crate::wire::ethernet::{copy_with_vlan_tag, VlanTag};
        let f = super_frame(&[7u8; 2500], 0x10);
        for tag in [VlanTag::dot1q(10), VlanTag::dot1ad(11)] {
            let mut l2 = [0u8; 18];
            assert_eq!(copy_with_vlan_tag(&mut l2, &f[..14], tag), Some(18));
            let s = TcpSegments::new(&l2, &f[14..], 1000).unwrap();
            assert_eq!((s.count(), s.header_len()), (3, 18 + 20 + 32));
            let mut b = [0u8; 2048];
            let n = s.write(2, &mut b).unwrap();
            let eth = crate::wire::ethernet::EthernetFrame::new_checked(&b[..n]).unwrap();
            assert_eq!(eth.vlan_tag(), Some(tag));
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            assert!(ip.verify_checksum());
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(SRC, DST));
            assert_eq!(tcp.payload().len(), 500);
        }
        // The untagged header must end the link layer: a tagged EtherType
        // in 14 bytes is not one.
        let mut l2 = [0u8; 14];
        l2.copy_from_slice(&f[..14]);
        l2[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(
            TcpSegments::new(&l2, &f[14..], 1000).err(),
            Some(GsoError::Malformed)
        );
    }

    #[test]
    fn exact_multiple_and_single() {
        let f = super_frame(&[9u8; 2400], 0x10);
        let segs = split(&f, 1200);
        assert_eq!(segs.len(), 2);
        assert!(segs.iter().all(|s| s.len() == 14 + 20 + 32 + 1200));
        // Smaller than the MSS: one frame, with a full checksum.
        let f = super_frame(b"hi", 0x18);
        let segs = split(&f, 1448);
        assert_eq!(segs.len(), 1);
        let ip = Ipv4Packet::new_checked(&segs[0][14..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(SRC, DST));
        assert_eq!(tcp.payload(), b"hi");
    }

    #[test]
    fn rejects_malformed() {
        let f = super_frame(&[1u8; 100], 0x10);
        assert_eq!(
            TcpSegments::new(&f[..14], &f[14..], 0).err(),
            Some(GsoError::BadSegmentSize)
        );
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(TcpSegments::new(&arp[..14], &arp[14..], 50).is_err());
        let mut udp = f.clone();
        udp[14 + 9] = 17;
        assert!(TcpSegments::new(&udp[..14], &udp[14..], 50).is_err());
        let mut bad_off = f.clone();
        bad_off[34 + 12] = 15 << 4; // a 60-byte TCP header in a 40-byte tail
        assert!(TcpSegments::new(&bad_off[..14], &bad_off[14..54], 50).is_err());
        assert!(TcpSegments::new(&f[..14], &f[14..40], 50).is_err());
        // Too small a destination.
        let s = TcpSegments::new(&f[..14], &f[14..], 50).unwrap();
        assert_eq!(s.count(), 2);
        assert!(s.write(0, &mut [0u8; 60]).is_none());
        assert!(s.write(2, &mut [0u8; 2048]).is_none());
    }

    #[test]
    fn vnet_header_round_trip_and_checksum() {
        let h = VnetHdr {
            flags: VnetFlags::NEEDS_CSUM,
            gso_type: VNET_GSO_TCPV4 | VNET_GSO_ECN,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut b = [0u8; VNET_HDR_LEN];
        h.emit(&mut b);
        assert_eq!(VnetHdr::parse(&b), Some(h));
        assert_eq!(h.gso(), VNET_GSO_TCPV4);
        assert_eq!(VnetHdr::parse(&b[..9]), None);

        let mut f = super_frame(b"partial checksum", 0x18);
        assert!(complete_checksum_at(&mut f, 34, 16));
        let tcp = TcpPacket::new_checked(&f[34..]).unwrap();
        assert!(tcp.verify_checksum(SRC, DST));
        let before = f.clone();
        assert!(!complete_checksum_at(&mut f, 34, 4000));
        assert!(!complete_checksum_at(&mut f, usize::MAX, 16));
        assert_eq!(f, before);
    }
}

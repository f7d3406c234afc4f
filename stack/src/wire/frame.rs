//! Whole Ethernet + IPv4 + TCP frames in one call, for the TX and RX paths.
//!
//! [`emit_tcp_frame`] writes the three headers, the options and the payload
//! into a caller's buffer in one pass; [`parse_tcp_frame`] goes the other
//! way. Neither allocates.

use super::ethernet::{EtherType, EthernetFrame, EthernetRepr};
use super::ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
use super::tcp::{TcpPacket, TcpRepr};
use super::{Error, Result};

/// The frame length (without FCS) for this Ethernet header and segment.
pub fn tcp_frame_len(eth: &EthernetRepr, tcp: &TcpRepr<'_>) -> usize {
    eth.header_len() + super::ipv4::HEADER_LEN + tcp.buffer_len()
}

/// Writes an Ethernet + IPv4 + TCP frame into the front of `buf` and
/// returns its length.
///
/// The EtherType is forced to IPv4, the IP protocol to TCP and the IP
/// payload length to the segment's length; the other fields come from `eth`
/// and `ip`. With `fill_checksums` both checksums are computed; without it
/// (TX checksum offload) the IPv4 checksum is zero and the TCP checksum
/// holds the pseudo-header sum (see [`TcpRepr::emit`]).
///
/// # Errors
/// [`Error::Truncated`] when `buf` is too short; [`Error::Malformed`] when
/// the IP packet would exceed 65535 bytes. Nothing useful is written then.
pub fn emit_tcp_frame(
    buf: &mut [u8],
    eth: &EthernetRepr,
    ip: &Ipv4Repr,
    tcp: &TcpRepr<'_>,
    fill_checksums: bool,
) -> Result<usize> {
    let len = tcp_frame_len(eth, tcp);
    if len > buf.len() {
        return Err(Error::Truncated);
    }
    let ip = Ipv4Repr {
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ..*ip
    };
    if ip.buffer_len() > usize::from(u16::MAX) {
        return Err(Error::Malformed);
    }
    let eth = EthernetRepr {
        ethertype: EtherType::Ipv4,
        ..*eth
    };
    let buf = &mut buf[..len];
    let mut frame = EthernetFrame::new_unchecked(&mut *buf);
    eth.emit(&mut frame);
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet, fill_checksums);
    let mut segment = TcpPacket::new_unchecked(packet.payload_mut());
    tcp.emit(&mut segment, ip.src_addr, ip.dst_addr, fill_checksums);
    Ok(len)
}

/// Parses an Ethernet + IPv4 + TCP frame. Bytes after the IP Total Length
/// (Ethernet padding) are ignored. With `verify_checksums` false (RX
/// checksum offload) neither checksum is checked.
///
/// # Errors
/// Any error of the three parsers; [`Error::Unsupported`] when the frame is
/// not IPv4 or the packet not TCP (or a fragment).
pub fn parse_tcp_frame(
    frame: &[u8],
    verify_checksums: bool,
) -> Result<(EthernetRepr, Ipv4Repr, TcpRepr<'_>)> {
    let frame = EthernetFrame::new_checked(frame)?;
    let eth = EthernetRepr::parse(&frame)?;
    if eth.ethertype != EtherType::Ipv4 {
        return Err(Error::Unsupported);
    }
    let header_len = frame.header_len();
    let bytes = &frame.into_inner()[header_len..];
    let packet = Ipv4Packet::new_checked(bytes)?;
    let ip = Ipv4Repr::parse(&packet, verify_checksums)?;
    if ip.protocol != IpProtocol::Tcp {
        return Err(Error::Unsupported);
    }
    let segment = TcpPacket::new_checked(packet.payload())?;
    let tcp = TcpRepr::parse(&segment, ip.src_addr, ip.dst_addr, verify_checksums)?;
    Ok((eth, ip, tcp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EthernetAddress, VlanTag};
    use crate::wire::ipv4::Ipv4Address;
    use crate::wire::tcp::{TcpFlags, TcpOptions};
    use crate::wire::SeqNumber;

    fn headers() -> (EthernetRepr, Ipv4Repr) {
        (
            EthernetRepr {
                src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
                dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
                ethertype: EtherType::Unknown(0),
                vlan: None,
            },
            Ipv4Repr {
                src_addr: Ipv4Address::new(10, 0, 0, 1),
                dst_addr: Ipv4Address::new(10, 0, 0, 2),
                protocol: IpProtocol::Udp,
                payload_len: 0,
                ttl: 64,
                ident: 9,
                dont_frag: true,
                dscp_ecn: 0,
            },
        )
    }

    fn segment(payload: &[u8]) -> TcpRepr<'_> {
        let options = TcpOptions {
            timestamp: Some((100, 200)),
            ..TcpOptions::default()
        };
        TcpRepr {
            src_port: 1234,
            dst_port: 80,
            seq: SeqNumber(1),
            ack: SeqNumber(2),
            flags: TcpFlags::ACK,
            window: 1000,
            urgent: 0,
            options,
            payload,
        }
    }

    #[test]
    fn round_trip() {
        let (eth, ip) = headers();
        let tcp = segment(&[7u8; 64]);
        let mut buf = [0u8; 1514];
        let n = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, true).unwrap();
        assert_eq!(n, 14 + 20 + 32 + 64);
        let (e, i, t) = parse_tcp_frame(&buf[..n], true).unwrap();
        assert_eq!(e.ethertype, EtherType::Ipv4);
        assert_eq!(e.src_addr, eth.src_addr);
        assert_eq!(i.protocol, IpProtocol::Tcp);
        assert_eq!(i.payload_len, 32 + 64);
        assert_eq!(i.src_addr, ip.src_addr);
        assert_eq!(t, tcp);
    }

    #[test]
    fn vlan_and_padding() {
        let (mut eth, ip) = headers();
        eth.vlan = Some(VlanTag::dot1q(100));
        let tcp = segment(&[]);
        let mut buf = [0u8; 80];
        let n = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, true).unwrap();
        assert_eq!(n, 18 + 20 + 32);
        // Padded to the Ethernet minimum plus garbage: still parses.
        buf[n..].fill(0xee);
        let (e, _, t) = parse_tcp_frame(&buf[..], true).unwrap();
        assert_eq!(e.vlan, Some(VlanTag::dot1q(100)));
        assert_eq!(t, tcp);
    }

    #[test]
    fn short_buffer_is_an_error() {
        let (eth, ip) = headers();
        let tcp = segment(b"abc");
        let need = tcp_frame_len(&eth, &tcp);
        let mut buf = [0u8; 200];
        assert_eq!(
            emit_tcp_frame(&mut buf[..need - 1], &eth, &ip, &tcp, true).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            emit_tcp_frame(&mut buf[..need], &eth, &ip, &tcp, true).unwrap(),
            need
        );
    }

    #[test]
    fn offload_leaves_partial_checksums() {
        let (eth, ip) = headers();
        let tcp = segment(b"abc");
        let mut buf = [0u8; 200];
        let n = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, false).unwrap();
        assert_eq!(
            parse_tcp_frame(&buf[..n], true).unwrap_err(),
            Error::BadChecksum
        );
        assert_eq!(parse_tcp_frame(&buf[..n], false).unwrap().2, tcp);
    }

    #[test]
    fn non_tcp_unsupported() {
        let (eth, ip) = headers();
        let tcp = segment(&[]);
        let mut buf = [0u8; 200];
        let n = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, true).unwrap();
        let mut arp = buf;
        arp[13] = 0x06;
        assert_eq!(
            parse_tcp_frame(&arp[..n], true).unwrap_err(),
            Error::Unsupported
        );
        let mut udp = buf;
        let mut p = Ipv4Packet::new_unchecked(&mut udp[14..n]);
        p.set_protocol(IpProtocol::Udp);
        p.fill_checksum();
        assert_eq!(
            parse_tcp_frame(&udp[..n], true).unwrap_err(),
            Error::Unsupported
        );
    }

    #[test]
    fn truncated_frames() {
        let (eth, ip) = headers();
        let tcp = segment(b"data");
        let mut buf = [0u8; 200];
        let n = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, true).unwrap();
        for len in 0..n {
            assert_eq!(
                parse_tcp_frame(&buf[..len], true).unwrap_err(),
                Error::Truncated,
                "{len}"
            );
        }
    }
}

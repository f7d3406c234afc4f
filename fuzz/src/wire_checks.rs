//! The `wire_parse` invariants: every parser on arbitrary bytes.
//!
//! For each protocol: the checked view (`new_checked`) either refuses the
//! bytes or every accessor answers without panicking and agrees with the
//! length fields; `Repr::parse` either refuses or gives a repr that, emitted
//! into a fresh buffer and parsed again (checksums verified), is the same
//! repr. The layered parse and [`parse_tcp_frame`] must agree.

use mtcp_stack::wire::arp::{ArpPacket, ArpRepr};
use mtcp_stack::wire::ethernet::{EtherType, EthernetFrame, EthernetRepr};
use mtcp_stack::wire::frame::{emit_tcp_frame, parse_tcp_frame, tcp_frame_len};
use mtcp_stack::wire::icmp::{Icmpv4Packet, Icmpv4Repr};
use mtcp_stack::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr};
use mtcp_stack::wire::tcp::{self, TcpPacket, TcpRepr, MAX_OPTIONS_LEN};

/// Pseudo-header addresses for a bare TCP segment (no IPv4 around it).
const SRC: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const DST: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);

/// Runs every parser on `data`, then on the Ethernet payload and the IPv4
/// payload found in it, so one input reaches as deep as its bytes allow.
pub fn check_all(data: &[u8]) {
    check_arp(data);
    check_ipv4(data);
    check_icmp(data);
    check_tcp(data, SRC, DST);
    let _ = tcp::parse_options(data);
    if let Some(eth_payload) = check_ethernet(data) {
        check_arp(eth_payload);
        if let Some((ip, ip_payload)) = check_ipv4(eth_payload) {
            match ip.protocol {
                IpProtocol::Icmp => check_icmp(ip_payload),
                _ => check_tcp(ip_payload, ip.src_addr, ip.dst_addr),
            }
        }
    }
    check_frame(data);
}

/// Ethernet: returns the payload when the frame is accepted.
fn check_ethernet(data: &[u8]) -> Option<&[u8]> {
    let frame = EthernetFrame::new_checked(data).ok()?;
    let hl = frame.header_len();
    assert!(hl == 14 || hl == 18);
    assert!(hl <= data.len());
    let _ = (frame.dst_addr(), frame.src_addr(), frame.outer_ethertype());
    // 802.1Q and 802.1ad tags alike.
    let tagged = frame.outer_ethertype().is_vlan_tag();
    assert_eq!(frame.vlan_tag().is_some(), tagged);
    assert_eq!(frame.vlan_id().is_some(), tagged);
    assert_eq!(hl == 18, tagged);
    if let Some(vid) = frame.vlan_id() {
        assert!(vid <= 0x0fff);
    }
    let _ = frame.ethertype();
    assert_eq!(frame.payload().len(), data.len() - hl);
    let repr = EthernetRepr::parse(&frame).expect("a checked frame parses");
    assert_eq!(repr.header_len(), hl);
    assert_eq!(repr.ethertype, frame.ethertype());
    // Round trip.
    let payload = frame.payload();
    let mut buf = vec![0u8; repr.buffer_len(payload.len())];
    let mut out = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut out);
    out.payload_mut().copy_from_slice(payload);
    let again = EthernetFrame::new_checked(&buf[..]).expect("emitted frame is checked");
    assert_eq!(EthernetRepr::parse(&again).unwrap(), repr);
    assert_eq!(again.payload(), payload);
    Some(&data[hl..])
}

fn check_arp(data: &[u8]) {
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        packet.hardware_type(),
        packet.protocol_type(),
        packet.operation(),
    );
    let (hlen, plen) = (
        usize::from(packet.hardware_len()),
        usize::from(packet.protocol_len()),
    );
    assert_eq!(packet.source_hardware_addr().len(), hlen);
    assert_eq!(packet.source_protocol_addr().len(), plen);
    assert_eq!(packet.target_hardware_addr().len(), hlen);
    assert_eq!(packet.target_protocol_addr().len(), plen);
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    let again = ArpPacket::new_checked(&buf[..]).expect("emitted ARP is checked");
    assert_eq!(ArpRepr::parse(&again).unwrap(), repr);
}

/// IPv4: returns the header and the payload when the packet parses.
fn check_ipv4(data: &[u8]) -> Option<(Ipv4Repr, &[u8])> {
    let packet = Ipv4Packet::new_checked(data).ok()?;
    let hl = packet.header_len();
    let total = usize::from(packet.total_len());
    assert!(20 <= hl && hl <= total && total <= data.len());
    let _ = (
        packet.version(),
        packet.dscp_ecn(),
        packet.ident(),
        packet.dont_frag(),
        packet.more_frags(),
        packet.frag_offset(),
        packet.ttl(),
        packet.protocol(),
        packet.checksum(),
        packet.src_addr(),
        packet.dst_addr(),
    );
    let verified = packet.verify_checksum();
    assert_eq!(packet.payload().len(), total - hl);
    let loose = Ipv4Repr::parse(&packet, false);
    let strict = Ipv4Repr::parse(&packet, true);
    match (&loose, &strict) {
        (Ok(a), Ok(b)) => {
            assert!(verified);
            assert_eq!(a, b);
        }
        (Ok(_), Err(e)) => assert!(!verified, "{e:?} with a good checksum"),
        // Checksum first, then fragments: a bad fragment says BadChecksum.
        (Err(a), Err(b)) => assert!(a == b || !verified, "{a:?} / {b:?}"),
        (Err(_), Ok(_)) => panic!("checksum verification accepted more"),
    }
    let repr = loose.ok()?;
    assert!(!packet.more_frags() && packet.frag_offset() == 0);
    assert_eq!(repr.payload_len, total - hl);
    let payload = packet.payload();
    let mut buf = vec![0u8; repr.buffer_len()];
    let mut out = Ipv4Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut out, true);
    out.payload_mut().copy_from_slice(payload);
    let again = Ipv4Packet::new_checked(&buf[..]).expect("emitted IPv4 is checked");
    assert_eq!(Ipv4Repr::parse(&again, true).unwrap(), repr);
    assert_eq!(again.payload(), payload);
    Some((repr, payload))
}

fn check_icmp(data: &[u8]) {
    let Ok(packet) = Icmpv4Packet::new_checked(data) else {
        return;
    };
    let _ = (
        packet.msg_type(),
        packet.msg_code(),
        packet.checksum(),
        packet.echo_ident(),
        packet.echo_seq_no(),
        packet.verify_checksum(),
    );
    assert_eq!(packet.payload().len(), data.len() - 8);
    let Ok(repr) = Icmpv4Repr::parse(&packet, false) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
    let again = Icmpv4Packet::new_checked(&buf[..]).expect("emitted ICMP is checked");
    assert_eq!(Icmpv4Repr::parse(&again, true).unwrap(), repr);
}

/// TCP: `emit` writes as many SACK blocks as fit next to the other options
/// (documented), so the re-parsed repr may carry a prefix of the blocks,
/// and only when one more would not have fit.
fn assert_tcp_round_trip(orig: &TcpRepr<'_>, again: &TcpRepr<'_>, emitted_options: usize) {
    let (a, b) = (orig.options.sack(), again.options.sack());
    assert!(
        b.len() <= a.len() && a[..b.len()] == *b,
        "{orig:?} -> {again:?}"
    );
    if b.len() < a.len() {
        assert!(
            emitted_options + 8 > MAX_OPTIONS_LEN,
            "{orig:?} -> {again:?}"
        );
    }
    let mut want = *orig;
    want.options.sack_len = again.options.sack_len;
    want.options.sack_blocks = again.options.sack_blocks;
    assert_eq!(&want, again);
}

fn check_tcp(data: &[u8], src: Ipv4Address, dst: Ipv4Address) {
    let Ok(packet) = TcpPacket::new_checked(data) else {
        return;
    };
    let hl = packet.header_len();
    assert!(20 <= hl && hl <= data.len() && hl <= 60);
    let _ = (
        packet.src_port(),
        packet.dst_port(),
        packet.seq_number(),
        packet.ack_number(),
        packet.flags(),
        packet.window_len(),
        packet.checksum(),
        packet.urgent_at(),
        packet.verify_checksum(src, dst),
    );
    assert_eq!(packet.options().len(), hl - 20);
    assert_eq!(packet.payload().len(), data.len() - hl);
    let options = tcp::parse_options(packet.options());
    let Ok(repr) = TcpRepr::parse(&packet, src, dst, false) else {
        assert!(options.is_err());
        return;
    };
    assert_eq!(repr.options, options.unwrap());
    assert!(repr.options.sack().len() <= tcp::MAX_SACK_BLOCKS);
    let opt_len = repr.options_len();
    assert!(opt_len <= MAX_OPTIONS_LEN && opt_len % 4 == 0);
    assert_eq!(tcp::options_len(&repr.options), opt_len);
    let mut buf = vec![0u8; repr.buffer_len()];
    let mut out = TcpPacket::new_unchecked(&mut buf[..]);
    repr.emit(&mut out, src, dst, true);
    let again = TcpPacket::new_checked(&buf[..]).expect("emitted TCP is checked");
    assert_eq!(again.header_len(), repr.header_len());
    let again = TcpRepr::parse(&again, src, dst, true).expect("emitted TCP parses");
    assert_tcp_round_trip(&repr, &again, opt_len);
}

/// The one-call frame parser agrees with the layered parsers, and what
/// `emit_tcp_frame` writes parses back.
fn check_frame(data: &[u8]) {
    for verify in [false, true] {
        let Ok((eth, ip, seg)) = parse_tcp_frame(data, verify) else {
            continue;
        };
        assert_eq!(eth.ethertype, EtherType::Ipv4);
        assert_eq!(ip.protocol, IpProtocol::Tcp);
        assert!(ip.payload_len >= 20 + seg.payload.len());
        let mut buf = vec![0u8; tcp_frame_len(&eth, &seg)];
        let len = emit_tcp_frame(&mut buf, &eth, &ip, &seg, true).expect("fits");
        assert_eq!(len, buf.len());
        let (e2, i2, s2) = parse_tcp_frame(&buf, true).expect("emitted frame parses");
        assert_eq!(e2, eth);
        assert_eq!(i2.payload_len, seg.buffer_len());
        assert_eq!(
            Ipv4Repr {
                payload_len: ip.payload_len,
                ..i2
            },
            ip
        );
        assert_tcp_round_trip(&seg, &s2, seg.options_len());
    }
}

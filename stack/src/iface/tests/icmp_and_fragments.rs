//! Interface tests: ICMP errors sent and received, IPv4 reassembly and
//! fragmentation on send.

use super::*;
use crate::iface::reassembly::Reassembled;
use crate::wire::tcp::TcpPacket;
use crate::wire::SeqNumber;

/// `payload` as a datagram from `src` cut into fragments of `step` bytes
/// (a multiple of 8), in order.
fn fragments(
    src: Ipv4Address,
    protocol: IpProtocol,
    ident: u16,
    payload: &[u8],
    step: usize,
) -> Vec<Vec<u8>> {
    payload
        .chunks(step)
        .enumerate()
        .map(|(k, chunk)| {
            let ip = Ipv4Repr {
                src_addr: src,
                dst_addr: OUR_IP,
                protocol,
                payload_len: chunk.len(),
                ttl: 64,
                ident,
                dont_frag: false,
                dscp_ecn: 0,
            };
            let frag = Fragment {
                offset: (k * step) as u16,
                more: (k + 1) * step < payload.len(),
            };
            let mut buf = vec![0u8; IP_OFFSET + ip.buffer_len()];
            let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
            EthernetRepr {
                src_addr: PEER_MAC,
                dst_addr: OUR_MAC,
                ethertype: EtherType::Ipv4,
                vlan: None,
            }
            .emit(&mut f);
            let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
            ip.emit_fragment(&mut p, frag, true);
            p.payload_mut().copy_from_slice(chunk);
            buf
        })
        .collect()
}

/// The ICMP message of an IPv4 frame we sent: (ip, type, code, rest).
fn icmp_of(frame: &[u8]) -> (Ipv4Repr, u8, u8, Vec<u8>) {
    let (eth, ip, payload) = parse_ip(frame);
    assert_eq!(eth.dst_addr, PEER_MAC);
    assert_eq!(ip.protocol, IpProtocol::Icmp);
    let p = Icmpv4Packet::new_checked(payload).unwrap();
    assert!(p.verify_checksum());
    (ip, p.msg_type(), p.msg_code(), p.payload().to_vec())
}

fn segment(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + 1) as u8).collect()
}

// ---- ICMP errors sent ----

#[test]
fn udp_to_a_closed_port_gets_port_unreachable_quoting_header_and_data() {
    let mut i = iface();
    let mut out = VecSink::default();
    let udp = segment(12);
    let f = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Udp, &udp);
    assert_eq!(
        i.receive(t(1), &f, &mut out),
        Received::Dropped(DropReason::NoUdpSocket)
    );
    assert_eq!(out.frames.len(), 1);
    let (ip, ty, code, quote) = icmp_of(&out.frames[0]);
    assert_eq!((ty, code), (3, 3));
    assert_eq!(ip.dst_addr, PEER_IP);
    assert!(!ip.dont_frag);
    // The quoted IP header, then the datagram's data.
    let q = Ipv4Packet::new_unchecked(&quote[..]);
    assert_eq!(q.src_addr(), PEER_IP);
    assert_eq!(q.dst_addr(), OUR_IP);
    assert_eq!(q.protocol(), IpProtocol::Udp);
    assert_eq!(usize::from(q.total_len()), 20 + udp.len());
    assert_eq!(&quote[20..], &udp[..]);
    assert_eq!(i.stats().icmp_errors_sent, 1);
}

#[test]
fn unknown_protocol_gets_protocol_unreachable() {
    let mut i = iface();
    let mut out = VecSink::default();
    let f = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Unknown(99), &[1; 8]);
    assert_eq!(
        i.receive(t(1), &f, &mut out),
        Received::Dropped(DropReason::UnsupportedProtocol)
    );
    let (_, ty, code, quote) = icmp_of(&out.frames[0]);
    assert_eq!((ty, code), (3, 2));
    assert_eq!(quote.len(), 28);
}

#[test]
fn quote_keeps_the_error_within_576_bytes() {
    let mut i = iface();
    let mut out = VecSink::default();
    let f = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Udp, &segment(1200));
    i.receive(t(1), &f, &mut out);
    let (ip, _, _, quote) = icmp_of(&out.frames[0]);
    assert_eq!(ip.buffer_len(), 576);
    assert_eq!(&quote[20..], &segment(1200)[..576 - 48]);
}

#[test]
fn no_error_about_broadcasts_errors_or_odd_sources() {
    let mut i = iface();
    let mut out = VecSink::default();
    let bcast = Ipv4Address::new(10, 0, 0, 255);
    let cases = [
        // To the subnet broadcast, and to us in a link-layer broadcast.
        ipv4_frame(
            PEER_IP,
            bcast,
            EthernetAddress::BROADCAST,
            IpProtocol::Udp,
            &[0; 8],
        ),
        ipv4_frame(
            PEER_IP,
            OUR_IP,
            EthernetAddress::BROADCAST,
            IpProtocol::Udp,
            &[0; 8],
        ),
        // From no single host.
        ipv4_frame(
            Ipv4Address::UNSPECIFIED,
            OUR_IP,
            OUR_MAC,
            IpProtocol::Udp,
            &[0; 8],
        ),
        ipv4_frame(
            Ipv4Address::new(127, 0, 0, 1),
            OUR_IP,
            OUR_MAC,
            IpProtocol::Unknown(200),
            &[0; 8],
        ),
    ];
    for f in &cases {
        i.receive(t(1), f, &mut out);
    }
    assert!(out.frames.is_empty(), "{} errors", out.frames.len());
    assert_eq!(i.stats().icmp_errors_sent, 0);
}

#[test]
fn errors_are_rate_limited_by_a_token_bucket() {
    let mut cfg = config();
    cfg.icmp_error_rate = 10;
    cfg.icmp_error_burst = 2;
    let mut i = Interface::new(cfg);
    let mut out = VecSink::default();
    let f = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Udp, &[0; 8]);
    for _ in 0..5 {
        i.receive(t(1), &f, &mut out);
    }
    assert_eq!(out.frames.len(), 2);
    assert_eq!(i.stats().icmp_errors_rate_limited, 3);
    // 100 ms later, one more token.
    i.receive(t(1) + Duration::from_millis(100), &f, &mut out);
    assert_eq!(out.frames.len(), 3);
}

// ---- ICMP errors received ----

/// An ICMP error from a router about a TCP segment we sent to PEER_IP.
fn error_about_our_segment(ty: u8, code: u8, mtu: u16, src: Ipv4Address) -> Vec<u8> {
    let sent = Ipv4Repr {
        src_addr: src,
        dst_addr: PEER_IP,
        protocol: IpProtocol::Tcp,
        payload_len: 1480,
        ttl: 64,
        ident: 5,
        dont_frag: true,
        dscp_ecn: 0,
    };
    let mut quote = vec![0u8; 28];
    sent.emit(&mut Ipv4Packet::new_unchecked(&mut quote[..20]), true);
    {
        let mut tcp = TcpPacket::new_unchecked(&mut quote[20..]);
        tcp.set_src_port(40000);
        tcp.set_dst_port(80);
        tcp.set_seq_number(SeqNumber(1234));
    }
    let mut msg = vec![0u8; 8 + quote.len()];
    msg[0] = ty;
    msg[1] = code;
    msg[6..8].copy_from_slice(&mtu.to_be_bytes());
    msg[8..].copy_from_slice(&quote);
    let ck = checksum::finish(checksum::data(&msg));
    msg[2..4].copy_from_slice(&ck.to_be_bytes());
    ipv4_frame(GW_IP, OUR_IP, OUR_MAC, IpProtocol::Icmp, &msg)
}

#[test]
fn frag_needed_about_our_segment_goes_to_the_caller() {
    let mut i = iface();
    let mut out = VecSink::default();
    let f = error_about_our_segment(3, 4, 1000, OUR_IP);
    let expected = TcpIcmpError {
        kind: IcmpErrorKind::FragNeeded { mtu: 1000 },
        local: OUR_IP,
        remote: PEER_IP,
        local_port: 40000,
        remote_port: 80,
        seq: SeqNumber(1234),
        sent_len: 1500,
    };
    assert_eq!(i.receive(t(1), &f, &mut out), Received::IcmpError(expected));
    // An old router gives no MTU: the next plateau below 1500.
    let f = error_about_our_segment(3, 4, 0, OUR_IP);
    match i.receive(t(1), &f, &mut out) {
        Received::IcmpError(e) => assert_eq!(e.kind, IcmpErrorKind::FragNeeded { mtu: 1492 }),
        other => panic!("{other:?}"),
    }
    // Port unreachable and TTL exceeded come through too.
    let f = error_about_our_segment(3, 3, 0, OUR_IP);
    match i.receive(t(1), &f, &mut out) {
        Received::IcmpError(e) => assert_eq!(e.kind, IcmpErrorKind::Unreachable { code: 3 }),
        other => panic!("{other:?}"),
    }
    let f = error_about_our_segment(11, 0, 0, OUR_IP);
    match i.receive(t(1), &f, &mut out) {
        Received::IcmpError(e) => assert_eq!(e.kind, IcmpErrorKind::TimeExceeded { code: 0 }),
        other => panic!("{other:?}"),
    }
    assert_eq!(i.stats().icmp_errors_received, 4);
    // Never answered with an error.
    assert!(out.frames.is_empty());
}

#[test]
fn error_about_someone_elses_segment_is_dropped_and_counted() {
    let mut i = iface();
    let mut out = VecSink::default();
    let f = error_about_our_segment(3, 4, 1000, Ipv4Address::new(10, 0, 0, 77));
    assert_eq!(
        i.receive(t(1), &f, &mut out),
        Received::Dropped(DropReason::IcmpErrorNotOurs)
    );
    assert_eq!(i.stats().drops(DropReason::IcmpErrorNotOurs), 1);
}

// ---- reassembly ----

#[test]
fn tcp_segment_in_three_fragments_any_order_is_delivered() {
    let seg = segment(60);
    for order in [[0usize, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let mut i = iface();
        let mut out = VecSink::default();
        let frags = fragments(PEER_IP, IpProtocol::Tcp, 9, &seg, 24);
        assert_eq!(frags.len(), 3);
        for (k, &n) in order.iter().enumerate() {
            match i.receive(t(1), &frags[n], &mut out) {
                Received::Tcp { ip, tcp_bytes } => {
                    assert_eq!(k, 2, "whole only with the last piece");
                    assert_eq!(ip.payload_len, 60);
                    assert_eq!(ip.src_addr, PEER_IP);
                    assert_eq!(tcp_bytes, &seg[..]);
                }
                Received::Nothing => assert!(k < 2),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(i.stats().reassembled, 1);
        assert_eq!(i.stats().fragments_received, 3);
        assert_eq!(i.reassembly().in_use(), 0);
    }
}

#[test]
fn overlapping_fragments_drop_the_datagram() {
    let mut i = iface();
    let mut out = VecSink::default();
    let seg = segment(48);
    let a = fragments(PEER_IP, IpProtocol::Tcp, 3, &seg, 24);
    // The second piece again at offset 16, other bytes: an overlap.
    let b = fragments(PEER_IP, IpProtocol::Tcp, 3, &segment(40), 8);
    assert_eq!(i.receive(t(1), &a[0], &mut out), Received::Nothing);
    // Identical duplicate: tolerated.
    assert_eq!(i.receive(t(1), &a[0], &mut out), Received::Nothing);
    assert_eq!(
        i.receive(t(1), &b[2], &mut out),
        Received::Dropped(DropReason::FragmentOverlap)
    );
    // The rest of the first set no longer completes anything.
    assert_eq!(i.receive(t(1), &a[1], &mut out), Received::Nothing);
    assert_eq!(i.stats().reassembled, 0);
    assert_eq!(i.stats().drops(DropReason::FragmentOverlap), 1);
}

#[test]
fn timeout_frees_the_context_and_sends_time_exceeded() {
    let mut i = iface();
    let mut out = VecSink::default();
    i.arp_cache_mut().insert(PEER_IP, PEER_MAC, t(0));
    let udp = segment(64);
    let frags = fragments(PEER_IP, IpProtocol::Udp, 11, &udp, 32);
    assert_eq!(i.receive(t(1), &frags[0], &mut out), Received::Nothing);
    // A second datagram without its first fragment: freed silently.
    let other = fragments(PEER_IP, IpProtocol::Udp, 12, &udp, 32);
    assert_eq!(i.receive(t(1), &other[1], &mut out), Received::Nothing);
    assert_eq!(i.reassembly().in_use(), 2);
    assert_eq!(i.next_poll_at(), Some(t(31)));
    i.poll(t(30), &mut out);
    assert_eq!(i.reassembly().in_use(), 2);
    i.poll(t(31), &mut out);
    assert_eq!(i.reassembly().in_use(), 0);
    assert_eq!(i.stats().reassembly_timeouts, 2);
    assert_eq!(out.frames.len(), 1);
    let (_, ty, code, quote) = icmp_of(&out.frames[0]);
    assert_eq!((ty, code), (11, 1));
    let q = Ipv4Packet::new_unchecked(&quote[..]);
    assert_eq!(q.ident(), 11);
    assert!(q.more_frags());
    assert_eq!(&quote[20..], &udp[..32]);
}

#[test]
fn pool_exhaustion_drops_and_counts() {
    let mut cfg = config();
    cfg.reassembly.contexts = 2;
    let mut i = Interface::new(cfg);
    let mut out = VecSink::default();
    let seg = segment(48);
    for ident in 0..2 {
        let f = fragments(PEER_IP, IpProtocol::Tcp, ident, &seg, 24);
        assert_eq!(i.receive(t(1), &f[0], &mut out), Received::Nothing);
    }
    let f = fragments(PEER_IP, IpProtocol::Tcp, 7, &seg, 24);
    assert_eq!(
        i.receive(t(1), &f[0], &mut out),
        Received::Dropped(DropReason::ReassemblyFull)
    );
    assert_eq!(i.stats().drops(DropReason::ReassemblyFull), 1);
    // The held ones still complete.
    let f = fragments(PEER_IP, IpProtocol::Tcp, 1, &seg, 24);
    assert!(matches!(
        i.receive(t(1), &f[1], &mut out),
        Received::Tcp { .. }
    ));
}

#[test]
fn large_ping_is_reassembled_and_answered_in_fragments() {
    let mut i = iface();
    let mut out = VecSink::default();
    let data = segment(3000);
    let req = echo_request(0x77, 1, &data);
    let frags = fragments(PEER_IP, IpProtocol::Icmp, 21, &req, 1480);
    assert_eq!(frags.len(), 3);
    for f in &frags {
        assert_eq!(i.receive(t(1), f, &mut out), Received::Nothing);
    }
    assert_eq!(i.stats().icmp_echo_replies, 1);
    assert_eq!(out.frames.len(), 3);
    assert_eq!(i.stats().fragments_sent, 3);
    // Every fragment fits the MTU; put together they are the reply.
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut whole = None;
    for f in &out.frames {
        assert!(f.len() - 14 <= 1500);
        let p = Ipv4Packet::new_checked(&f[14..]).unwrap();
        let (ip, frag) = Ipv4Repr::parse_fragment(&p, true).unwrap();
        assert!(!ip.dont_frag);
        if let Reassembled::Complete(_, bytes) = r.push(t(1), &ip, frag, p.payload()) {
            whole = Some(bytes.to_vec());
        }
    }
    let whole = whole.expect("the reply reassembles");
    let p = Icmpv4Packet::new_checked(&whole[..]).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&p, true).unwrap(),
        Icmpv4Repr::EchoReply {
            ident: 0x77,
            seq_no: 1,
            data: &data
        }
    );
}

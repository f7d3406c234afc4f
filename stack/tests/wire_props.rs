//! Property tests for `mtcp_stack::wire`: arbitrary bytes never panic any
//! view or parser, and emit∘parse∘emit is stable for random reprs.

use mtcp_stack::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use mtcp_stack::wire::ethernet::{
    EtherType, EthernetAddress, EthernetFrame, EthernetRepr, VlanTag,
};
use mtcp_stack::wire::frame::{emit_tcp_frame, parse_tcp_frame};
use mtcp_stack::wire::icmp::{Icmpv4Packet, Icmpv4Repr};
use mtcp_stack::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr};
use mtcp_stack::wire::tcp::{parse_options, SackBlock, TcpFlags, TcpOptions, TcpPacket, TcpRepr};
use mtcp_stack::wire::SeqNumber;
use proptest::prelude::*;

const SRC: Ipv4Address = Ipv4Address::new(192, 168, 0, 1);
const DST: Ipv4Address = Ipv4Address::new(192, 168, 0, 2);

/// Calls every accessor of every view; any panic fails the property.
fn touch_all(bytes: &[u8]) {
    if let Ok(f) = EthernetFrame::new_checked(bytes) {
        let _ = (
            f.src_addr(),
            f.dst_addr(),
            f.ethertype(),
            f.vlan_id(),
            f.payload().len(),
        );
        let _ = EthernetRepr::parse(&f);
    }
    if let Ok(p) = ArpPacket::new_checked(bytes) {
        let _ = (
            p.operation(),
            p.source_hardware_addr(),
            p.target_protocol_addr(),
        );
        let _ = (p.source_protocol_addr(), p.target_hardware_addr());
        let _ = ArpRepr::parse(&p);
    }
    let _ = ArpRepr::parse(&ArpPacket::new_unchecked(bytes));
    if let Ok(p) = Ipv4Packet::new_checked(bytes) {
        let _ = (
            p.version(),
            p.src_addr(),
            p.dst_addr(),
            p.protocol(),
            p.frag_offset(),
        );
        let _ = (p.verify_checksum(), p.payload().len());
    }
    let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(bytes), true);
    let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(bytes), false);
    if let Ok(p) = Icmpv4Packet::new_checked(bytes) {
        let _ = (
            p.msg_type(),
            p.echo_ident(),
            p.echo_seq_no(),
            p.payload().len(),
        );
        let _ = Icmpv4Repr::parse(&p, true);
        let _ = Icmpv4Repr::parse(&p, false);
    }
    if let Ok(p) = TcpPacket::new_checked(bytes) {
        let _ = (
            p.seq_number(),
            p.ack_number(),
            p.flags(),
            p.options(),
            p.payload().len(),
        );
        let _ = p.verify_checksum(SRC, DST);
        let _ = TcpRepr::parse(&p, SRC, DST, true);
        let _ = TcpRepr::parse(&p, SRC, DST, false);
    }
    let _ = TcpRepr::parse(&TcpPacket::new_unchecked(bytes), SRC, DST, false);
    let _ = parse_options(bytes);
    let _ = parse_tcp_frame(bytes, true);
    let _ = parse_tcp_frame(bytes, false);
}

fn arb_options() -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
        proptest::option::of((any::<u32>(), any::<u32>())),
    )
        .prop_map(|(mss, ws, sp, sacks, ts)| {
            let mut o = TcpOptions {
                mss,
                window_scale: ws,
                sack_permitted: sp,
                timestamp: ts,
                ..TcpOptions::default()
            };
            for (l, r) in sacks {
                o.push_sack(SackBlock {
                    left: SeqNumber(l),
                    right: SeqNumber(r),
                });
            }
            o
        })
}

prop_compose! {
    fn arb_tcp()(
        src_port in any::<u16>(), dst_port in any::<u16>(), seq in any::<u32>(),
        ack in any::<u32>(), flags in any::<u8>(), window in any::<u16>(),
        urgent in any::<u16>(), options in arb_options(),
        payload in proptest::collection::vec(any::<u8>(), 0..100),
    ) -> (TcpRepr<'static>, Vec<u8>) {
        (TcpRepr {
            src_port, dst_port, seq: SeqNumber(seq), ack: SeqNumber(ack),
            flags: TcpFlags(flags), window, urgent, options, payload: &[],
        }, payload)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        touch_all(&bytes);
        // Also as a frame body behind a plausible Ethernet + IPv4 prefix.
        let mut framed = vec![0u8; 14];
        framed[12] = 0x08;
        framed.extend_from_slice(&bytes);
        touch_all(&framed);
    }

    #[test]
    fn tcp_emit_parse_emit_stable((repr, payload) in arb_tcp()) {
        let repr = TcpRepr { payload: &payload, ..repr };
        let mut a = vec![0u8; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut a[..]), SRC, DST, true);
        let pa = TcpPacket::new_checked(&a[..]).unwrap();
        let parsed = TcpRepr::parse(&pa, SRC, DST, true).unwrap();
        prop_assert_eq!(parsed.options.mss, repr.options.mss);
        prop_assert_eq!(parsed.options.timestamp, repr.options.timestamp);
        prop_assert_eq!(parsed.payload, &payload[..]);
        prop_assert!(parsed.options.sack_len <= repr.options.sack_len);
        let mut b = vec![0u8; parsed.buffer_len()];
        parsed.emit(&mut TcpPacket::new_unchecked(&mut b[..]), SRC, DST, true);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn ipv4_emit_parse_emit_stable(
        ttl in any::<u8>(), ident in any::<u16>(), df in any::<bool>(), dscp in any::<u8>(),
        proto in any::<u8>(), len in 0usize..64, src in any::<u32>(), dst in any::<u32>(),
    ) {
        let repr = Ipv4Repr {
            src_addr: Ipv4Address::from(src), dst_addr: Ipv4Address::from(dst),
            protocol: IpProtocol::from(proto), payload_len: len, ttl, ident,
            dont_frag: df, dscp_ecn: dscp,
        };
        let mut a = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut a[..]), true);
        let parsed = Ipv4Repr::parse(&Ipv4Packet::new_checked(&a[..]).unwrap(), true).unwrap();
        prop_assert_eq!(parsed, repr);
        let mut b = vec![0u8; parsed.buffer_len()];
        parsed.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]), true);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn ethernet_arp_icmp_round_trip(
        mac in any::<[u8; 6]>(), ip in any::<u32>(), vlan in proptest::option::of((any::<bool>(), any::<u16>())),
        op in any::<u16>(), ident in any::<u16>(), seq in any::<u16>(),
        data in proptest::collection::vec(any::<u8>(), 0..64), reply in any::<bool>(),
    ) {
        let eth = EthernetRepr {
            src_addr: EthernetAddress(mac), dst_addr: EthernetAddress::BROADCAST,
            ethertype: EtherType::from(0x0806),
            vlan: vlan.map(|(ad, tci)| VlanTag {
                tpid: if ad { EtherType::QinQ } else { EtherType::Vlan },
                tci,
            }),
        };
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::from(op),
            source_hardware_addr: EthernetAddress(mac),
            source_protocol_addr: Ipv4Address::from(ip),
            target_hardware_addr: EthernetAddress::default(),
            target_protocol_addr: Ipv4Address::from(!ip),
        };
        let mut buf = vec![0u8; eth.buffer_len(arp.buffer_len())];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut f);
        arp.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&f).unwrap(), eth);
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(f.payload()).unwrap()).unwrap(), arp);

        let icmp = if reply {
            Icmpv4Repr::EchoReply { ident, seq_no: seq, data: &data }
        } else {
            Icmpv4Repr::EchoRequest { ident, seq_no: seq, data: &data }
        };
        let mut m = vec![0u8; icmp.buffer_len()];
        icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut m[..]), true);
        let p = Icmpv4Packet::new_checked(&m[..]).unwrap();
        prop_assert_eq!(Icmpv4Repr::parse(&p, true).unwrap(), icmp);
    }

    #[test]
    fn frame_round_trip_and_bit_flips_never_panic(
        (repr, payload) in arb_tcp(), flip in any::<usize>(), bit in 0u8..8,
    ) {
        let repr = TcpRepr { payload: &payload, ..repr };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Ipv4, vlan: None,
        };
        let ip = Ipv4Repr {
            src_addr: SRC, dst_addr: DST, protocol: IpProtocol::Tcp, payload_len: 0,
            ttl: 64, ident: 1, dont_frag: true, dscp_ecn: 0,
        };
        let mut buf = [0u8; 1514];
        let n = emit_tcp_frame(&mut buf, &eth, &ip, &repr, true).unwrap();
        let (_, _, t) = parse_tcp_frame(&buf[..n], true).unwrap();
        prop_assert_eq!(t.payload, &payload[..]);
        prop_assert_eq!(t.seq, repr.seq);
        let mut bad = buf;
        bad[flip % n] ^= 1 << bit;
        touch_all(&bad[..n]);
        // A flip inside the IP or TCP part is caught (checksum or parse
        // error) unless it hits a field outside every check (Ethernet).
        if flip % n >= 14 {
            prop_assert!(parse_tcp_frame(&bad[..n], true).is_err()
                || parse_tcp_frame(&bad[..n], true).unwrap().2 != t);
        }
    }
}

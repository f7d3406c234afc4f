//! Writes (or, with `--check`, verifies) the seed corpus under
//! `fuzz/corpus/<target>/`: real frames and segments made with the stack's
//! own `emit` functions, wrapped in each target's input format.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds            # write
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds -- --check # verify
//! ```
//!
//! Files this generator does not know (inputs that crashed once, minimised
//! and kept as regressions: `regress-*`) are left alone.

use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use mtcp_fuzz::frames::{tcp_frame, PEER_MAC};
use mtcp_fuzz::model::{encode, Record, HEADER_LEN, LISTEN_PORT, LOCAL, PEER_PORT, REMOTE};
use mtcp_fuzz::tcp_harness::Op;
use mtcp_stack::nic::memory::DEFAULT_MAC_A;
use mtcp_stack::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use mtcp_stack::wire::ethernet::{
    EtherType, EthernetAddress, EthernetFrame, EthernetRepr, VlanTag,
};
use mtcp_stack::wire::icmp::{Icmpv4Packet, Icmpv4Repr};
use mtcp_stack::wire::ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
use mtcp_stack::wire::tcp::{SackBlock, TcpFlags, TcpOptions, TcpPacket, TcpRepr};
use mtcp_stack::wire::SeqNumber;

/// The stack's MAC in `iface_receive` (the memory NIC's port A).
const OURS: EthernetAddress = DEFAULT_MAC_A;
/// The peer ISN the TCP harness handshakes with.
const PEER_ISN: u32 = 0x1000_0000;

fn seg(flags: TcpFlags, seq: u32, ack: u32, options: TcpOptions, payload: &[u8]) -> TcpRepr<'_> {
    TcpRepr {
        src_port: PEER_PORT,
        dst_port: LISTEN_PORT,
        seq: SeqNumber(seq),
        ack: SeqNumber(ack),
        flags,
        window: 65535,
        urgent: 0,
        options,
        payload,
    }
}

fn all_options() -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamp: Some((1000, 0)),
        ..TcpOptions::default()
    }
}

fn sack_options() -> TcpOptions {
    let mut o = TcpOptions {
        timestamp: Some((2000, 1)),
        ..TcpOptions::default()
    };
    for (l, r) in [(100, 200), (300, 400), (500, 600)] {
        o.push_sack(SackBlock {
            left: SeqNumber(l),
            right: SeqNumber(r),
        });
    }
    o
}

/// The TCP segments every seed set uses.
fn segments() -> Vec<(&'static str, TcpRepr<'static>)> {
    static DATA: [u8; 100] = [b'm'; 100];
    vec![
        ("syn", seg(TcpFlags::SYN, PEER_ISN, 0, all_options(), &[])),
        (
            "ack_data",
            seg(
                TcpFlags::ACK | TcpFlags::PSH,
                PEER_ISN + 1,
                1,
                TcpOptions::default(),
                &DATA,
            ),
        ),
        (
            "ack_sack",
            seg(TcpFlags::ACK, PEER_ISN + 1, 1, sack_options(), &[]),
        ),
        (
            "fin",
            seg(
                TcpFlags::FIN | TcpFlags::ACK,
                PEER_ISN + 1,
                1,
                TcpOptions::default(),
                &[],
            ),
        ),
        (
            "rst",
            seg(TcpFlags::RST, PEER_ISN + 1, 0, TcpOptions::default(), &[]),
        ),
    ]
}

fn tcp_bytes(r: &TcpRepr<'_>) -> Vec<u8> {
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(
        &mut TcpPacket::new_unchecked(&mut b[..]),
        REMOTE,
        LOCAL,
        true,
    );
    b
}

fn eth(dst: EthernetAddress, ethertype: EtherType, vlan: Option<u16>, body: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: PEER_MAC,
        dst_addr: dst,
        ethertype,
        vlan: vlan.map(VlanTag::dot1q),
    };
    let mut b = vec![0u8; repr.buffer_len(body.len())];
    let mut f = EthernetFrame::new_unchecked(&mut b[..]);
    repr.emit(&mut f);
    f.payload_mut().copy_from_slice(body);
    b
}

fn arp_request() -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: PEER_MAC,
        source_protocol_addr: REMOTE,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: LOCAL,
    };
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut b[..]));
    eth(EthernetAddress::BROADCAST, EtherType::Arp, None, &b)
}

fn icmp_echo() -> Vec<u8> {
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 1,
        data: b"mtcp fuzz seed ping",
    };
    let ip = Ipv4Repr {
        src_addr: REMOTE,
        dst_addr: LOCAL,
        protocol: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        ttl: 64,
        ident: 7,
        dont_frag: false,
        dscp_ecn: 0,
    };
    let mut b = vec![0u8; ip.buffer_len()];
    let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
    ip.emit(&mut p, true);
    icmp.emit(&mut Icmpv4Packet::new_unchecked(p.payload_mut()), true);
    eth(OURS, EtherType::Ipv4, None, &b)
}

/// The SYN in an 802.1Q-tagged frame.
fn vlan_syn() -> Vec<u8> {
    let f = tcp_frame(OURS, &segments()[0].1);
    eth(OURS, EtherType::Ipv4, Some(42), &f[14..])
}

/// Header bytes: every `bool` of the settings true (odd bytes), the rest 1.
const ALL_ON: [u8; HEADER_LEN] = [1; HEADER_LEN];

/// A structured record of `tcp_*` ops, checked to decode as `want`.
fn ops_record(bytes: &'static [u8], want: fn(&[Op]) -> bool) -> &'static [u8] {
    let ops = Vec::<Op>::arbitrary_take_rest(Unstructured::new(bytes)).expect("decodes");
    assert!(want(&ops), "ops record decodes as {ops:?}");
    bytes
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let segs = segments();
    // wire_parse: bare frames.
    for (name, s) in &segs {
        out.push((format!("wire_parse/{name}"), tcp_frame(OURS, s)));
    }
    out.push(("wire_parse/arp_request".into(), arp_request()));
    out.push(("wire_parse/icmp_echo".into(), icmp_echo()));
    out.push(("wire_parse/vlan_syn".into(), vlan_syn()));
    out.push(("wire_parse/tcp_all_options".into(), tcp_bytes(&segs[0].1)));
    // iface_receive: the frames as raw records, one conversation.
    let frames: Vec<Vec<u8>> = [arp_request(), icmp_echo()]
        .into_iter()
        .chain(segs.iter().map(|(_, s)| tcp_frame(OURS, s)))
        .collect();
    let recs: Vec<Record<'_>> = frames.iter().map(|f| Record::Raw(f)).collect();
    out.push(("iface_receive/conversation".into(), encode(ALL_ON, &recs)));
    for (name, f) in [("arp_request", arp_request()), ("icmp_echo", icmp_echo())] {
        out.push((
            format!("iface_receive/{name}"),
            encode(ALL_ON, &[Record::Raw(&f)]),
        ));
    }
    out.push((
        "iface_receive/syn".into(),
        encode(ALL_ON, &[Record::Raw(&tcp_frame(OURS, &segs[0].1))]),
    ));
    // tcp_listener / tcp_established: bare segments as raw records.
    let bytes: Vec<Vec<u8>> = segs.iter().map(|(_, s)| tcp_bytes(s)).collect();
    let recs: Vec<Record<'_>> = bytes.iter().map(|b| Record::Raw(b)).collect();
    for target in ["tcp_listener", "tcp_established"] {
        out.push((format!("{target}/conversation"), encode(ALL_ON, &recs)));
        for ((name, _), b) in segs.iter().zip(&bytes) {
            out.push((
                format!("{target}/{name}"),
                encode(ALL_ON, &[Record::Raw(b)]),
            ));
        }
    }
    // The first crash `tcp_established` found: the peer's handshake
    // advertises a zero window, we write 255 bytes, the peer goes silent;
    // the socket probed forever after close (fixed in tcp/timeout.rs).
    let header = [
        0, 1, 1, 1, 1, 1, // timestamps off, SACK, wscale, cookies, NewReno, tiny pool
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // passive, no options, window 0
    ];
    // Continue (1), variant 3 of 11 (u32 0x4800_0000 LE), socket 5, 255 LE.
    let write = ops_record(&[1, 0, 0, 0, 0x48, 5, 0xff, 0], |ops| {
        matches!(ops, [Op::Write(5, 255)])
    });
    out.push((
        "tcp_established/regress-silent-zero-window".into(),
        encode(header, &[Record::Structured(write)]),
    ));
    // ipv4_reassembly: raw records are fragments (see
    // `reassembly_harness::run`): byte 0 = ident << 1 | source, then the
    // offset in 8-byte units with MF in the top bit, then the payload (its
    // first byte seeds the pattern).
    let frag = |ident: u8, offset: u16, more: bool, len: usize| {
        let word = offset | if more { 0x8000 } else { 0 };
        let mut v = vec![ident << 1];
        v.extend_from_slice(&word.to_be_bytes());
        v.extend(std::iter::repeat_n(0x5a, len));
        v
    };
    let in_order = [
        frag(1, 0, true, 16),
        frag(1, 2, true, 16),
        frag(1, 4, false, 10),
    ];
    let reversed: Vec<Vec<u8>> = in_order.iter().rev().cloned().collect();
    let overlap = [
        frag(2, 0, true, 16),
        frag(2, 1, true, 16),
        frag(2, 4, false, 8),
    ];
    let duplicate = [
        frag(3, 0, true, 8),
        frag(3, 0, true, 8),
        frag(3, 1, false, 3),
    ];
    let lone_first = [frag(4, 0, true, 64)];
    let interleaved = [
        frag(5, 0, true, 8),
        frag(6, 0, true, 8),
        frag(5, 1, false, 8),
        frag(6, 1, false, 8),
    ];
    for (name, frags) in [
        ("in_order", &in_order[..]),
        ("reversed", &reversed[..]),
        ("overlap", &overlap[..]),
        ("duplicate", &duplicate[..]),
        ("lone_first", &lone_first[..]),
        ("interleaved", &interleaved[..]),
    ] {
        let recs: Vec<Record<'_>> = frags.iter().map(|f| Record::Raw(f)).collect();
        out.push((format!("ipv4_reassembly/{name}"), encode(ALL_ON, &recs)));
    }
    // icmp_input: raw records are Fragmentation Needed MTUs (big-endian
    // pairs) quoting SND.UNA after a 4000-byte write.
    let mtus: &[u8] = &[0x05, 0xdc, 0x04, 0x00, 0x02, 0x28, 0x01, 0x00, 0x00, 0x00];
    // Timestamps, SACK, wscale, cookies, CUBIC, normal pool; passive, MSS
    // 1460, wscale 7, SACK, timestamps, window 65535.
    let header = [1, 1, 1, 1, 0, 0, 0, 1, 0xb4, 0x05, 1, 7, 1, 1, 0xff, 0xff];
    out.push((
        "icmp_input/frag_needed".into(),
        encode(header, &[Record::Raw(mtus)]),
    ));
    out.push((
        "icmp_input/frag_needed_all_on".into(),
        encode(ALL_ON, &[Record::Raw(mtus)]),
    ));
    out.push((
        "icmp_input/write_only".into(),
        encode(header, &[Record::Raw(&[])]),
    ));
    out
}

fn main() {
    let check = std::env::args().any(|a| a == "--check");
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut stale = 0;
    for (name, bytes) in seeds() {
        let path = root.join(&name);
        if check {
            match std::fs::read(&path) {
                Ok(b) if b == bytes => {}
                _ => {
                    eprintln!("seeds: {} is missing or stale", path.display());
                    stale += 1;
                }
            }
        } else {
            std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write seed");
            println!("{} ({} bytes)", path.display(), bytes.len());
        }
    }
    if stale > 0 {
        eprintln!(
            "seeds: {stale} stale; run `cargo run --manifest-path fuzz/Cargo.toml --example seeds`"
        );
        std::process::exit(1);
    }
}

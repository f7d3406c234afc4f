//! Fuzzer-described Ethernet frames: raw bytes, or a valid-ish Ethernet /
//! ARP / IPv4 prefix (correct lengths and checksums unless the fuzzer asks
//! otherwise) in front of raw, TCP or ICMP bodies, so inputs get past the
//! parsers into ARP, IPv4 (fragments included), ICMP and TCP.

use arbitrary::Arbitrary;
use mtcp_stack::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use mtcp_stack::wire::checksum;
use mtcp_stack::wire::ethernet::{
    EtherType, EthernetAddress, EthernetFrame, EthernetRepr, VlanTag,
};
use mtcp_stack::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet};
use mtcp_stack::wire::tcp::TcpPacket;

use crate::model::{Rel, SegSpec, Tracker, LISTEN_PORT, LOCAL, OTHER, PEERS, PEER_PORT, REMOTE};

/// The peer's MAC.
pub const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
/// The subnet is LOCAL/24.
pub const SUBNET_BROADCAST: Ipv4Address = Ipv4Address::new(10, 0, 0, 255);

/// An IPv4 address, biased toward the interesting ones.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Addr {
    /// The stack's address.
    Us,
    /// The peer.
    Peer,
    /// Another host on the subnet.
    Other,
    /// 255.255.255.255.
    Broadcast,
    /// The subnet broadcast.
    SubnetBroadcast,
    /// 127.0.0.1.
    Loopback,
    /// 0.0.0.0.
    Zero,
    /// Anything.
    Raw([u8; 4]),
}

impl Addr {
    fn ip(self) -> Ipv4Address {
        match self {
            Addr::Us => LOCAL,
            Addr::Peer => REMOTE,
            Addr::Other => OTHER,
            Addr::Broadcast => Ipv4Address::BROADCAST,
            Addr::SubnetBroadcast => SUBNET_BROADCAST,
            Addr::Loopback => Ipv4Address::LOCALHOST,
            Addr::Zero => Ipv4Address::UNSPECIFIED,
            Addr::Raw(b) => Ipv4Address::from(b),
        }
    }
}

/// An ARP operation.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ArpOp {
    /// 1.
    Request,
    /// 2.
    Reply,
    /// Anything.
    Other(u16),
}

/// An ARP packet for Ethernet/IPv4.
#[derive(Arbitrary, Debug, Clone)]
pub struct ArpSpec {
    op: ArpOp,
    /// SHA is the peer's MAC (else `sha`).
    from_peer: bool,
    sha: [u8; 6],
    spa: Addr,
    tpa: Addr,
    /// Sent to the broadcast MAC (else to ours).
    broadcast: bool,
}

/// The IP protocol field.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Proto {
    /// 6.
    Tcp,
    /// 1.
    Icmp,
    /// 17.
    Udp,
    /// Anything.
    Raw(u8),
}

/// An ICMP type, biased toward the ones a host handles.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum IcmpType {
    /// 8.
    EchoRequest,
    /// 0.
    EchoReply,
    /// 3 (code 4 is Fragmentation Needed).
    DestUnreachable,
    /// 11.
    TimeExceeded,
    /// 12.
    ParameterProblem,
    /// Anything.
    Other(u8),
}

/// An ICMP error's quote of one of the stack's TCP segments (RFC 792: the
/// IPv4 header and the first 8 bytes of the segment).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Quote {
    /// Which peer flow.
    peer: u8,
    /// The quoted SEG.SEQ relative to the stack's first unacked byte.
    seq: Rel,
    /// Keep only this many bytes of the 28 (when below 28).
    keep: u8,
}

/// An ICMP message.
#[derive(Arbitrary, Debug, Clone)]
pub struct IcmpSpec {
    ty: IcmpType,
    code: u8,
    /// Bytes 4..8 (echo id/seq, unused, or next-hop MTU in 6..8).
    rest: [u8; 4],
    quote: Option<Quote>,
    data: Vec<u8>,
    bad_checksum: bool,
}

/// What follows the IPv4 header.
#[derive(Arbitrary, Debug, Clone)]
pub enum Body {
    /// Raw bytes.
    Raw(Vec<u8>),
    /// A TCP segment with a correct checksum unless `bad_checksum`.
    Tcp {
        /// The segment.
        seg: SegSpec,
        /// Corrupt the checksum.
        bad_checksum: bool,
    },
    /// An ICMP message.
    Icmp(IcmpSpec),
}

/// An IPv4 packet, lengths and checksum right unless asked otherwise.
#[derive(Arbitrary, Debug, Clone)]
pub struct Ipv4Spec {
    src: Addr,
    dst: Addr,
    proto: Proto,
    ttl: u8,
    ident: u16,
    dont_frag: bool,
    more_frags: bool,
    /// Fragment offset in 8-byte units (13 bits).
    frag_offset: u16,
    /// Biases the offset to 0 (so MF alone is common).
    first_fragment: bool,
    dscp_ecn: u8,
    /// IP options (padded to 4, at most 40).
    options: Vec<u8>,
    bad_checksum: bool,
    /// Override Total Length.
    total_len: Option<u16>,
    /// Override the version nibble.
    version: Option<u8>,
    /// Sent to the broadcast MAC.
    broadcast_mac: bool,
    body: Body,
}

/// One frame.
#[derive(Arbitrary, Debug, Clone)]
pub enum FrameSpec {
    /// Exactly these bytes.
    Raw(Vec<u8>),
    /// An Ethernet header (to our MAC or broadcast) and raw bytes.
    Ether {
        /// To the broadcast MAC.
        broadcast: bool,
        /// EtherType.
        ethertype: u16,
        /// An 802.1Q tag.
        vlan: Option<u16>,
        /// The payload.
        body: Vec<u8>,
    },
    /// An ARP packet.
    Arp(ArpSpec),
    /// An IPv4 packet.
    Ipv4(Ipv4Spec),
}

fn ethernet(dst: EthernetAddress, ethertype: EtherType, vlan: Option<u16>, body: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: PEER_MAC,
        dst_addr: dst,
        ethertype,
        vlan: vlan.map(VlanTag::dot1q),
    };
    let mut buf = vec![0u8; repr.buffer_len(body.len())];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut f);
    f.payload_mut().copy_from_slice(body);
    buf
}

/// An IPv4 header (no options) + 8 bytes of TCP header from LOCAL to
/// REMOTE, as the stack would have sent it.
fn quote(q: &Quote, tracker: &Tracker) -> Vec<u8> {
    let i = usize::from(q.peer) % PEERS;
    let v = tracker.peers[i];
    let mut b = vec![0u8; 28];
    {
        let mut p = Ipv4Packet::new_unchecked(&mut b[..20]);
        p.set_version_and_header_len(4, 20);
        p.set_total_len(40);
        p.set_flags_and_offset(true, false, 0);
        p.set_ttl(64);
        p.set_protocol(IpProtocol::Tcp);
        p.set_src_addr(LOCAL);
        p.set_dst_addr(REMOTE);
        p.fill_checksum();
    }
    let seq = q.seq.apply(v.our_first);
    b[20..22].copy_from_slice(&v.local_port.unwrap_or(LISTEN_PORT).to_be_bytes());
    b[22..24].copy_from_slice(&(PEER_PORT + i as u16).to_be_bytes());
    b[24..28].copy_from_slice(&seq.0.to_be_bytes());
    if usize::from(q.keep) < b.len() {
        b.truncate(usize::from(q.keep));
    }
    b
}

fn icmp(spec: &IcmpSpec, tracker: &Tracker) -> Vec<u8> {
    let ty = match spec.ty {
        IcmpType::EchoRequest => 8,
        IcmpType::EchoReply => 0,
        IcmpType::DestUnreachable => 3,
        IcmpType::TimeExceeded => 11,
        IcmpType::ParameterProblem => 12,
        IcmpType::Other(t) => t,
    };
    let mut b = vec![ty, spec.code, 0, 0];
    b.extend_from_slice(&spec.rest);
    if let Some(q) = &spec.quote {
        b.extend_from_slice(&quote(q, tracker));
    }
    b.extend_from_slice(&spec.data[..spec.data.len().min(1400)]);
    let mut ck = checksum::finish(checksum::data(&b));
    if spec.bad_checksum {
        ck ^= 0x5a5a;
    }
    b[2..4].copy_from_slice(&ck.to_be_bytes());
    b
}

fn ipv4(spec: &Ipv4Spec, tracker: &Tracker) -> Vec<u8> {
    let (src, dst) = (spec.src.ip(), spec.dst.ip());
    let proto = match spec.proto {
        Proto::Tcp => 6,
        Proto::Icmp => 1,
        Proto::Udp => 17,
        Proto::Raw(p) => p,
    };
    let body = match &spec.body {
        Body::Raw(b) => b.clone(),
        Body::Icmp(i) => icmp(i, tracker),
        Body::Tcp { seg, bad_checksum } => {
            let r = seg.build(tracker);
            let mut b = vec![0u8; r.buffer_len()];
            let mut p = TcpPacket::new_unchecked(&mut b[..]);
            r.emit(&mut p, src, dst, true);
            if *bad_checksum {
                let ck = p.checksum() ^ 0x00ff;
                p.set_checksum(ck);
            }
            b
        }
    };
    let mut opts = spec.options.clone();
    opts.truncate(40);
    while !opts.len().is_multiple_of(4) {
        opts.push(0);
    }
    let hl = 20 + opts.len();
    let mut buf = vec![0u8; hl + body.len()];
    let total = spec
        .total_len
        .unwrap_or(u16::try_from(buf.len()).unwrap_or(u16::MAX));
    {
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_version_and_header_len(spec.version.unwrap_or(4), hl);
        p.set_dscp_ecn(spec.dscp_ecn);
        p.set_total_len(total);
        p.set_ident(spec.ident);
        let off = if spec.first_fragment {
            0
        } else {
            spec.frag_offset & 0x1fff
        };
        p.set_flags_and_offset(spec.dont_frag, spec.more_frags, off);
        p.set_ttl(spec.ttl);
        p.set_protocol(IpProtocol::from(proto));
        p.set_src_addr(src);
        p.set_dst_addr(dst);
    }
    buf[20..hl].copy_from_slice(&opts);
    buf[hl..].copy_from_slice(&body);
    let ck = checksum::finish(checksum::data(&buf[..hl]));
    let ck = if spec.bad_checksum { ck ^ 0x0101 } else { ck };
    buf[10..12].copy_from_slice(&ck.to_be_bytes());
    buf
}

impl FrameSpec {
    /// The frame bytes, for a stack whose MAC is `ours`.
    pub fn build(&self, ours: EthernetAddress, tracker: &Tracker) -> Vec<u8> {
        let to = |broadcast: bool| {
            if broadcast {
                EthernetAddress::BROADCAST
            } else {
                ours
            }
        };
        match self {
            FrameSpec::Raw(b) => b.clone(),
            FrameSpec::Ether {
                broadcast,
                ethertype,
                vlan,
                body,
            } => ethernet(to(*broadcast), EtherType::from(*ethertype), *vlan, body),
            FrameSpec::Arp(a) => {
                let repr = ArpRepr::EthernetIpv4 {
                    operation: match a.op {
                        ArpOp::Request => ArpOperation::Request,
                        ArpOp::Reply => ArpOperation::Reply,
                        ArpOp::Other(v) => ArpOperation::from(v),
                    },
                    source_hardware_addr: if a.from_peer {
                        PEER_MAC
                    } else {
                        EthernetAddress(a.sha)
                    },
                    source_protocol_addr: a.spa.ip(),
                    target_hardware_addr: EthernetAddress([0; 6]),
                    target_protocol_addr: a.tpa.ip(),
                };
                let mut body = vec![0u8; repr.buffer_len()];
                repr.emit(&mut ArpPacket::new_unchecked(&mut body[..]));
                ethernet(to(a.broadcast), EtherType::Arp, None, &body)
            }
            FrameSpec::Ipv4(spec) => {
                let body = ipv4(spec, tracker);
                ethernet(to(spec.broadcast_mac), EtherType::Ipv4, None, &body)
            }
        }
    }
}

/// A plain IPv4 + TCP frame from the peer (for seeds).
pub fn tcp_frame(ours: EthernetAddress, seg: &mtcp_stack::wire::tcp::TcpRepr<'_>) -> Vec<u8> {
    let mut b = vec![0u8; seg.buffer_len()];
    seg.emit(
        &mut TcpPacket::new_unchecked(&mut b[..]),
        REMOTE,
        LOCAL,
        true,
    );
    let mut ip = vec![0u8; 20 + b.len()];
    {
        let mut p = Ipv4Packet::new_unchecked(&mut ip[..]);
        p.set_version_and_header_len(4, 20);
        p.set_total_len(u16::try_from(20 + b.len()).expect("small"));
        p.set_flags_and_offset(true, false, 0);
        p.set_ttl(64);
        p.set_protocol(IpProtocol::Tcp);
        p.set_src_addr(REMOTE);
        p.set_dst_addr(LOCAL);
        p.fill_checksum();
    }
    ip[20..].copy_from_slice(&b);
    ethernet(ours, EtherType::Ipv4, None, &ip)
}

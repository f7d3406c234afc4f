//! The network interface layer: Ethernet in and out, ARP, IPv4 (with
//! fragment reassembly and, for datagrams without DF, fragmentation) and
//! ICMP (echo, and errors both ways).
//!
//! [`Interface`] is sans-IO and deterministic: it reads frames from byte
//! slices handed to [`Interface::receive`], writes frames through a
//! caller-supplied [`FrameSink`], and takes `now` in every call. Whole
//! datagrams (reassembled when they came in fragments, `reassembly.rs`) go
//! to one protocol dispatch: TCP segments addressed to us are returned to
//! the caller ([`Received::Tcp`]), who parses them, and so are ICMP errors
//! about our TCP segments ([`Received::IcmpError`], `icmp_error.rs`);
//! everything else is handled here: ARP, ICMP echo, and ICMP Destination
//! Unreachable for UDP (no UDP sockets: port unreachable) and for unknown
//! protocols (protocol unreachable), rate limited. Outgoing IPv4 packets go
//! through [`Interface::send_ipv4`], which resolves the next hop and either
//! writes the frame at once or queues it until ARP answers; datagrams
//! without DF over the MTU (echo replies) leave in fragments.
//!
//! Frames are emitted at their natural length (an ARP reply is 42 bytes);
//! padding to the 60-byte Ethernet minimum is the device's job.

mod arp_cache;
pub(crate) mod icmp_error;
pub(crate) mod pmtu;
pub(crate) mod reassembly;
mod stats;

pub use arp_cache::{ArpCache, ArpConfig, NeighborState};
pub(crate) use arp_cache::{Enqueued, PollAction, QueueError};
pub(crate) use icmp_error::RateLimit;
pub use icmp_error::{IcmpErrorKind, TcpIcmpError, UdpIcmpError};
pub use pmtu::{PmtuCache, PmtuConfig};
pub use reassembly::{Expired, Reassembled, Reassembler, ReassemblyConfig, ReassemblyDrop};
pub use stats::{DropReason, IfaceStats};

use core::fmt;

use crate::time::Instant;
use crate::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use crate::wire::ethernet::{self, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use crate::wire::icmp::{self, time_exceeded, unreachable, Icmpv4Packet, Icmpv4Repr};
use crate::wire::ipv4::{self, Fragment, IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Packet, Ipv4Repr};
use crate::wire::Error;

/// Where the interface writes outgoing frames (a TX ring, a test vector).
pub trait FrameSink {
    /// Provides a writable buffer of exactly `len` bytes to `fill` and sends
    /// it. Returns false, without calling `fill`, when no buffer is free.
    fn with_frame<F: FnOnce(&mut [u8])>(&mut self, len: usize, fill: F) -> bool;
}

/// Configuration of an [`Interface`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Our MAC address.
    pub mac: EthernetAddress,
    /// Our IPv4 address and subnet.
    pub cidr: Ipv4Cidr,
    /// The default gateway for off-link destinations.
    pub gateway: Option<Ipv4Address>,
    /// The IP MTU: the largest IPv4 packet sent.
    pub mtu: usize,
    /// TTL of packets we originate.
    pub ttl: u8,
    /// Verify IPv4 and ICMP checksums on receive (false when the device
    /// verified them).
    pub verify_rx_checksums: bool,
    /// Compute the IPv4 header checksum on transmit (false when the device
    /// fills it).
    pub fill_tx_checksums: bool,
    /// ARP cache sizes and timers.
    pub arp: ArpConfig,
    /// IPv4 reassembly pool sizes and timeout.
    pub reassembly: ReassemblyConfig,
    /// ICMP errors sent per second (token bucket rate, RFC 1812 §4.3.2.8;
    /// Linux's `icmp_msgs_per_sec` is 1000).
    pub icmp_error_rate: u32,
    /// ICMP errors sent back to back (token bucket depth; Linux's
    /// `icmp_msgs_burst` is 50).
    pub icmp_error_burst: u32,
}

impl InterfaceConfig {
    /// A configuration with defaults: MTU 1500, TTL 64, software checksums,
    /// default ARP and reassembly settings, 1000 ICMP errors a second in
    /// bursts of 50.
    pub fn new(mac: EthernetAddress, cidr: Ipv4Cidr, gateway: Option<Ipv4Address>) -> Self {
        InterfaceConfig {
            mac,
            cidr,
            gateway,
            mtu: 1500,
            ttl: 64,
            verify_rx_checksums: true,
            fill_tx_checksums: true,
            arp: ArpConfig::default(),
            reassembly: ReassemblyConfig::default(),
            icmp_error_rate: 1000,
            icmp_error_burst: 50,
        }
    }
}

/// What [`Interface::receive`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    /// A TCP segment for us: the IPv4 header and the segment bytes (exactly
    /// the IP payload, reassembled when it came in fragments). The caller
    /// parses it with the addresses in `ip`.
    Tcp {
        /// The IPv4 header.
        ip: Ipv4Repr,
        /// The TCP segment.
        tcp_bytes: &'a [u8],
    },
    /// An ICMP error about a TCP segment we sent, for the TCP engine
    /// (which checks it against the connection, RFC 5927).
    IcmpError(TcpIcmpError),
    /// A UDP datagram for a port some socket holds (see
    /// [`Interface::set_udp_port`]): the IPv4 header, whether it came as a
    /// broadcast (IP or link layer), the source MAC, and the datagram (the
    /// IP payload, reassembled when it came in fragments). The caller
    /// parses it and, when no socket takes it after all, answers with
    /// [`Interface::send_port_unreachable`].
    Udp {
        /// The IPv4 header.
        ip: Ipv4Repr,
        /// Sent to a broadcast address (IP or Ethernet).
        broadcast: bool,
        /// The sender's MAC.
        src_mac: EthernetAddress,
        /// The UDP datagram.
        udp_bytes: &'a [u8],
    },
    /// An ICMP error about a UDP datagram we sent.
    UdpIcmpError(UdpIcmpError),
    /// A TCP segment or UDP datagram reassembled from fragments whose flow
    /// another queue owns (see [`Interface::set_flow_owner`]): the NIC
    /// steers fragments by the address pair alone (their ports are not in
    /// every fragment), so the caller hands the datagram to the core of
    /// `queue`, which takes it with [`Interface::receive_handoff`].
    Foreign {
        /// The queue (core) that owns the flow.
        queue: usize,
        /// The IPv4 header of the whole datagram.
        ip: Ipv4Repr,
        /// The sender's MAC.
        src_mac: EthernetAddress,
        /// The IP payload (a TCP segment or a UDP datagram).
        bytes: &'a [u8],
    },
    /// Consumed here (ARP, ICMP echo), nothing for the caller.
    Nothing,
    /// Dropped and counted.
    Dropped(DropReason),
}

/// Why [`Interface::send_ipv4`] did not send or queue a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Off-link destination and no gateway.
    Unreachable,
    /// The next hop is unresolved and the ARP queue is full.
    QueueFull,
    /// The sink had no buffer.
    NoTxBuffer,
    /// The payload exceeds the MTU.
    TooLarge,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Unreachable => "destination unreachable",
            SendError::QueueFull => "ARP queue full",
            SendError::NoTxBuffer => "no TX buffer",
            SendError::TooLarge => "packet larger than the MTU",
        })
    }
}

impl std::error::Error for SendError {}

/// What [`Interface::send_ipv4`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Written to the sink.
    Sent,
    /// Waiting for ARP resolution of the next hop.
    Queued,
}

/// The ICMP errors the interface originates.
#[derive(Debug, Clone, Copy)]
enum IcmpMsg {
    /// Destination Unreachable with this code.
    Unreachable(u8),
    /// Time Exceeded, fragment reassembly time exceeded.
    ReassemblyTimeout,
}

impl IcmpMsg {
    fn type_code(self) -> (u8, u8, u16) {
        match self {
            IcmpMsg::Unreachable(code) => (3, code, 0),
            IcmpMsg::ReassemblyTimeout => (11, time_exceeded::REASSEMBLY, 0),
        }
    }

    /// How the quoted header's flags read: the first fragment of a
    /// datagram never completed, or a whole datagram.
    fn quoted_fragment(self) -> Fragment {
        match self {
            IcmpMsg::Unreachable(_) => Fragment::WHOLE,
            IcmpMsg::ReassemblyTimeout => Fragment {
                offset: 0,
                more: true,
            },
        }
    }
}

/// One Ethernet interface with ARP, IPv4 and ICMP. See the module docs.
#[derive(Debug)]
pub struct Interface {
    config: InterfaceConfig,
    arp: ArpCache,
    stats: IfaceStats,
    next_ident: u16,
    reassembly: Reassembler,
    icmp_limit: RateLimit,
    /// A whole datagram built before it is cut into fragments (an echo
    /// reply over the MTU); allocated once.
    scratch: Box<[u8]>,
    /// UDP ports held by a socket, one bit each: datagrams to the others
    /// are answered here with port unreachable.
    udp_ports: Box<[u64]>,
    /// Which queue owns a flow, when the NIC has several.
    flow_owner: Option<FlowOwner>,
}

/// Which of several NIC queues owns a flow: a function of (local address,
/// local port, remote address, remote port) that gives the queue the NIC's
/// RSS steers the flow's packets to, and this interface's own queue.
pub struct FlowOwner {
    /// The owning queue of a 4-tuple.
    pub owner: Box<dyn Fn(Ipv4Address, u16, Ipv4Address, u16) -> usize + Send>,
    /// This interface's queue.
    pub queue: usize,
}

impl fmt::Debug for FlowOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowOwner")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

const IP_OFFSET: usize = ethernet::HEADER_LEN;
const L4_OFFSET: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
const ARP_FRAME_LEN: usize = ethernet::HEADER_LEN + crate::wire::arp::ETHERNET_IPV4_LEN;

fn map_error(e: Error) -> DropReason {
    match e {
        Error::Truncated => DropReason::Truncated,
        Error::BadChecksum => DropReason::BadChecksum,
        Error::Malformed => DropReason::Malformed,
        Error::Unsupported => DropReason::UnsupportedProtocol,
    }
}

impl Interface {
    /// An interface with an empty ARP cache (allocated here, once).
    pub fn new(config: InterfaceConfig) -> Interface {
        Interface {
            arp: ArpCache::new(config.arp),
            reassembly: Reassembler::new(config.reassembly),
            icmp_limit: RateLimit::new(config.icmp_error_rate, config.icmp_error_burst),
            scratch: vec![0u8; usize::from(u16::MAX)].into_boxed_slice(),
            udp_ports: vec![0u64; 1024].into_boxed_slice(),
            flow_owner: None,
            config,
            stats: IfaceStats::default(),
            next_ident: 1,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &InterfaceConfig {
        &self.config
    }

    /// Our IPv4 address.
    pub fn ipv4_addr(&self) -> Ipv4Address {
        self.config.cidr.address
    }

    /// Counters.
    pub fn stats(&self) -> &IfaceStats {
        &self.stats
    }

    /// The ARP cache.
    pub fn arp_cache(&self) -> &ArpCache {
        &self.arp
    }

    /// The ARP cache, mutable (static entries, tests).
    pub fn arp_cache_mut(&mut self) -> &mut ArpCache {
        &mut self.arp
    }

    /// The reassembly pool.
    pub fn reassembly(&self) -> &Reassembler {
        &self.reassembly
    }

    fn drop_frame<'a>(&mut self, reason: DropReason) -> Received<'a> {
        self.stats.count_drop(reason);
        Received::Dropped(reason)
    }

    /// Handles one received frame. ARP and ICMP echo are answered through
    /// `out`; a TCP segment for us (or an ICMP error about one of ours) is
    /// returned; a fragment is kept until its datagram is whole; anything
    /// else is dropped and counted (with an ICMP error where RFC 1122 asks
    /// for one). The returned bytes borrow the frame or, for a reassembled
    /// datagram, the interface. Never panics, whatever the bytes.
    pub fn receive<'a, S: FrameSink>(
        &'a mut self,
        now: Instant,
        frame: &'a [u8],
        out: &mut S,
    ) -> Received<'a> {
        self.stats.rx_frames += 1;
        let eth_frame = match EthernetFrame::new_checked(frame) {
            Ok(f) => f,
            Err(e) => return self.drop_frame(map_error(e)),
        };
        let eth = match EthernetRepr::parse(&eth_frame) {
            Ok(r) => r,
            Err(e) => return self.drop_frame(map_error(e)),
        };
        if eth.dst_addr != self.config.mac && !eth.dst_addr.is_broadcast() {
            return self.drop_frame(DropReason::NotForUsMac);
        }
        if eth.vlan.is_some() {
            // This interface is not on a VLAN.
            return self.drop_frame(DropReason::UnsupportedProtocol);
        }
        let payload = &frame[eth_frame.header_len()..];
        match eth.ethertype {
            EtherType::Arp => self.receive_arp(now, payload, out),
            EtherType::Ipv4 => self.receive_ipv4(now, &eth, payload, out),
            _ => self.drop_frame(DropReason::UnsupportedProtocol),
        }
    }

    fn receive_arp<'a, S: FrameSink>(
        &mut self,
        now: Instant,
        bytes: &[u8],
        out: &mut S,
    ) -> Received<'a> {
        let repr = match ArpPacket::new_checked(bytes).and_then(|p| ArpRepr::parse(&p)) {
            Ok(r) => r,
            Err(e) => return self.drop_frame(map_error(e)),
        };
        let ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_protocol_addr: tpa,
            ..
        } = repr;
        if !matches!(operation, ArpOperation::Request | ArpOperation::Reply) {
            return self.drop_frame(DropReason::UnsupportedProtocol);
        }
        if !sha.is_unicast() || sha == self.config.mac {
            return self.drop_frame(DropReason::Malformed);
        }
        let ours = self.ipv4_addr();
        let for_us = tpa == ours;
        let usable = !spa.is_unspecified() && !spa.is_broadcast() && spa != ours;
        // RFC 826: update an existing entry from any packet. New entries
        // (as Linux does): a reply we asked for is REACHABLE; a request
        // addressed to us is STALE (it proves only that the sender can
        // reach us). A reply nobody asked for, or an announcement of an
        // address we never talked to, creates nothing. A probe (SPA
        // 0.0.0.0) teaches nothing.
        if usable {
            let reply = operation == ArpOperation::Reply;
            if reply && (self.arp.is_pending(spa) || self.arp.is_probing(spa)) {
                self.arp.insert(spa, sha, now);
                self.stats.arp_learned += 1;
                self.flush_queue(spa, sha, out);
            } else if self.arp.contains(spa, now)
                || (!reply && (for_us || self.arp.is_pending(spa)))
            {
                self.arp.learn_stale(spa, sha, now);
                self.stats.arp_learned += 1;
                // A request from an address we are resolving answers too.
                self.flush_queue(spa, sha, out);
            } else if reply || spa == tpa {
                self.stats.arp_unsolicited_ignored += 1;
            }
        }
        if !for_us {
            return Received::Nothing;
        }
        if operation == ArpOperation::Request {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: self.config.mac,
                source_protocol_addr: ours,
                target_hardware_addr: sha,
                target_protocol_addr: spa,
            };
            if self.send_arp(&reply, sha, out) {
                self.stats.arp_replies_sent += 1;
            }
        }
        Received::Nothing
    }

    /// Sends the frames queued for `ip`, now known to be at `mac`.
    fn flush_queue<S: FrameSink>(&mut self, ip: Ipv4Address, mac: EthernetAddress, out: &mut S) {
        let stats = &mut self.stats;
        self.arp.flush(ip, |frame| {
            EthernetFrame::new_unchecked(&mut *frame).set_dst_addr(mac);
            if out.with_frame(frame.len(), |buf| buf.copy_from_slice(frame)) {
                stats.tx_frames += 1;
                stats.arp_flushed += 1;
            } else {
                stats.count_drop(DropReason::NoTxBuffer);
            }
        });
    }

    fn send_arp<S: FrameSink>(
        &mut self,
        repr: &ArpRepr,
        dst: EthernetAddress,
        out: &mut S,
    ) -> bool {
        let eth = EthernetRepr {
            src_addr: self.config.mac,
            dst_addr: dst,
            ethertype: EtherType::Arp,
            vlan: None,
        };
        let sent = out.with_frame(ARP_FRAME_LEN, |buf| {
            let mut f = EthernetFrame::new_unchecked(buf);
            eth.emit(&mut f);
            repr.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
        });
        if sent {
            self.stats.tx_frames += 1;
        } else {
            self.stats.count_drop(DropReason::NoTxBuffer);
        }
        sent
    }

    fn send_arp_request<S: FrameSink>(&mut self, target: Ipv4Address, out: &mut S) {
        let req = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: self.config.mac,
            source_protocol_addr: self.ipv4_addr(),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target,
        };
        if self.send_arp(&req, EthernetAddress::BROADCAST, out) {
            self.stats.arp_requests_sent += 1;
        }
    }

    /// A unicast request to `target` at the MAC it had (re-confirming a
    /// STALE neighbour, RFC 1122 §2.3.2.1).
    fn send_arp_probe<S: FrameSink>(
        &mut self,
        target: Ipv4Address,
        mac: EthernetAddress,
        out: &mut S,
    ) {
        let req = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: self.config.mac,
            source_protocol_addr: self.ipv4_addr(),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target,
        };
        if self.send_arp(&req, mac, out) {
            self.stats.arp_probes_sent += 1;
        }
    }

    /// Forward progress (an ACK that advanced SND.UNA) confirms that `ip`
    /// is reachable: its entry is REACHABLE again and no probe is sent.
    pub fn confirm(&mut self, ip: Ipv4Address, now: Instant) {
        if let Ok(hop) = self.route(ip) {
            if self.arp.confirm(hop, now) {
                self.stats.arp_confirmed += 1;
            }
        }
    }

    /// True for the addresses whose packets we accept: ours, the subnet
    /// broadcast and the limited broadcast.
    fn accepts(&self, dst: Ipv4Address) -> bool {
        dst == self.ipv4_addr() || dst.is_broadcast() || dst == self.config.cidr.broadcast()
    }

    /// RFC 1122 §3.2.1.3: a source that no packet from the wire may carry:
    /// 0.0.0.0 ("this host", legal only while a host learns its address,
    /// which no protocol here does), 127/8 ("MUST NOT appear outside a
    /// host"), a broadcast or multicast address, and our own address (a
    /// LAND attack: answered, it would loop through the internal loopback).
    /// Frames the stack sends to itself never come through here.
    fn is_martian(&self, src: Ipv4Address) -> bool {
        src.is_unspecified()
            || src.is_loopback()
            || src.is_broadcast()
            || src.is_multicast()
            || (self.config.cidr.prefix_len < 31 && src == self.config.cidr.broadcast())
            || src == self.ipv4_addr()
    }

    fn receive_ipv4<'a, S: FrameSink>(
        &'a mut self,
        now: Instant,
        eth: &EthernetRepr,
        bytes: &'a [u8],
        out: &mut S,
    ) -> Received<'a> {
        let packet = match Ipv4Packet::new_checked(bytes) {
            Ok(p) => p,
            Err(e) => return self.drop_frame(map_error(e)),
        };
        let (ip, frag) = match Ipv4Repr::parse_fragment(&packet, self.config.verify_rx_checksums) {
            Ok(r) => r,
            Err(e) => return self.drop_frame(map_error(e)),
        };
        if !self.accepts(ip.dst_addr) {
            return self.drop_frame(DropReason::NotForUsIp);
        }
        if self.is_martian(ip.src_addr) {
            return self.drop_frame(DropReason::Martian);
        }
        if !frag.is_fragment() {
            return self.dispatch(now, eth, ip, packet.payload(), out);
        }
        // RFC 1122 §3.3.2: reassemble; only a whole datagram goes on.
        self.stats.fragments_received += 1;
        let whole = match self.reassembly.push(now, &ip, frag, packet.payload()) {
            Reassembled::Held => return Received::Nothing,
            Reassembled::Dropped(why) => {
                return self.drop_frame(match why {
                    ReassemblyDrop::Overlap => DropReason::FragmentOverlap,
                    ReassemblyDrop::PoolFull => DropReason::ReassemblyFull,
                    ReassemblyDrop::TooLarge => DropReason::FragmentTooLarge,
                    ReassemblyDrop::Malformed => DropReason::Fragment,
                });
            }
            Reassembled::Complete(whole, _) => whole,
        };
        self.stats.reassembled += 1;
        if let Some(queue) = self.foreign_owner(&whole, self.reassembly.last_complete()) {
            self.stats.handoffs_out += 1;
            return Received::Foreign {
                queue,
                ip: whole,
                src_mac: eth.src_addr,
                bytes: self.reassembly.last_complete(),
            };
        }
        if whole.protocol == IpProtocol::Tcp {
            if !self.tcp_for_us(&whole) {
                return self.drop_frame(DropReason::NotForUsIp);
            }
            // Delivered straight from the pool's slot, valid until the
            // next call.
            return Received::Tcp {
                ip: whole,
                tcp_bytes: self.reassembly.last_complete(),
            };
        }
        if whole.protocol == IpProtocol::Udp && self.udp_port_held(self.reassembly.last_complete())
        {
            let broadcast = self.udp_count_delivered(eth, &whole);
            return Received::Udp {
                ip: whole,
                broadcast,
                src_mac: eth.src_addr,
                udp_bytes: self.reassembly.last_complete(),
            };
        }
        // Anything else is answered here, with the pool's bytes lent out
        // for the call (no copy, no allocation).
        let arena = self.reassembly.take_arena();
        let r = self.dispatch_local(now, eth, whole, self.reassembly.slice(&arena), out);
        self.reassembly.put_arena(arena);
        r
    }

    /// Sets who owns which flow when the NIC has several queues: a
    /// reassembled TCP or UDP datagram of another queue's flow is returned
    /// as [`Received::Foreign`] instead of being delivered here.
    pub fn set_flow_owner(&mut self, owner: FlowOwner) {
        self.flow_owner = Some(owner);
    }

    /// The queue owning a reassembled datagram's flow, if not ours.
    fn foreign_owner(&self, ip: &Ipv4Repr, payload: &[u8]) -> Option<usize> {
        let owner = self.flow_owner.as_ref()?;
        if !matches!(ip.protocol, IpProtocol::Tcp | IpProtocol::Udp) || payload.len() < 4 {
            return None;
        }
        let sport = u16::from_be_bytes([payload[0], payload[1]]);
        let dport = u16::from_be_bytes([payload[2], payload[3]]);
        let queue = (owner.owner)(ip.dst_addr, dport, ip.src_addr, sport);
        (queue != owner.queue).then_some(queue)
    }

    /// A datagram another queue reassembled for a flow of ours
    /// ([`Received::Foreign`] there), taken as if it had arrived here
    /// whole: TCP for our address goes to the caller, UDP to a held port
    /// too, and UDP to a free port is answered with port unreachable.
    pub fn receive_handoff<'a, S: FrameSink>(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        ip: Ipv4Repr,
        bytes: &'a [u8],
        out: &mut S,
    ) -> Received<'a> {
        self.stats.handoffs_in += 1;
        let eth = EthernetRepr {
            src_addr: src_mac,
            dst_addr: self.config.mac,
            ethertype: EtherType::Ipv4,
            vlan: None,
        };
        self.dispatch(now, &eth, ip, bytes, out)
    }

    /// The protocol dispatch of a whole datagram for us.
    #[inline]
    fn dispatch<'a, S: FrameSink>(
        &mut self,
        now: Instant,
        eth: &EthernetRepr,
        ip: Ipv4Repr,
        payload: &'a [u8],
        out: &mut S,
    ) -> Received<'a> {
        if ip.protocol == IpProtocol::Tcp {
            return self.dispatch_tcp(ip, payload);
        }
        if ip.protocol == IpProtocol::Udp && self.udp_port_held(payload) {
            return self.udp_received(eth, &ip, payload);
        }
        self.dispatch_local(now, eth, ip, payload, out)
    }

    /// Marks a UDP port as held by a socket (`true`) or free: datagrams to
    /// a held port go to the caller ([`Received::Udp`]), the others are
    /// answered with port unreachable here.
    pub fn set_udp_port(&mut self, port: u16, held: bool) {
        let (w, b) = (usize::from(port) / 64, port % 64);
        if held {
            self.udp_ports[w] |= 1 << b;
        } else {
            self.udp_ports[w] &= !(1 << b);
        }
    }

    /// The UDP hook: is the datagram's destination port held by a socket?
    fn udp_port_held(&self, payload: &[u8]) -> bool {
        let (Some(&hi), Some(&lo)) = (payload.get(2), payload.get(3)) else {
            return false;
        };
        let port = u16::from_be_bytes([hi, lo]);
        self.udp_ports[usize::from(port) / 64] & (1 << (port % 64)) != 0
    }

    /// Counts a UDP datagram handed to the caller; true when it came as a
    /// broadcast.
    fn udp_count_delivered(&mut self, eth: &EthernetRepr, ip: &Ipv4Repr) -> bool {
        self.stats.udp_delivered += 1;
        ip.dst_addr != self.ipv4_addr() || eth.dst_addr.is_broadcast()
    }

    /// A datagram for a held port, handed to the caller.
    fn udp_received<'a>(
        &mut self,
        eth: &EthernetRepr,
        ip: &Ipv4Repr,
        payload: &'a [u8],
    ) -> Received<'a> {
        let broadcast = self.udp_count_delivered(eth, ip);
        Received::Udp {
            ip: *ip,
            broadcast,
            src_mac: eth.src_addr,
            udp_bytes: payload,
        }
    }

    /// ICMP port unreachable about a UDP datagram the caller had no socket
    /// for (RFC 1122 §3.2.2.1), when RFC 1122 §3.2.2 allows it and the
    /// rate limit has a token. `payload` is the datagram's leading bytes
    /// (as many are quoted as fit a 576-byte error, RFC 1812 §4.3.2.3).
    pub fn send_port_unreachable<S: FrameSink>(
        &mut self,
        now: Instant,
        src_mac: EthernetAddress,
        link_broadcast: bool,
        ip: &Ipv4Repr,
        payload: &[u8],
        out: &mut S,
    ) {
        let eth = EthernetRepr {
            src_addr: src_mac,
            dst_addr: if link_broadcast {
                EthernetAddress::BROADCAST
            } else {
                self.config.mac
            },
            ethertype: EtherType::Ipv4,
            vlan: None,
        };
        self.send_unreachable(now, &eth, ip, payload, unreachable::PORT, out);
    }

    fn dispatch_tcp<'a>(&mut self, ip: Ipv4Repr, payload: &'a [u8]) -> Received<'a> {
        if !self.tcp_for_us(&ip) {
            return self.drop_frame(DropReason::NotForUsIp);
        }
        Received::Tcp {
            ip,
            tcp_bytes: payload,
        }
    }

    /// True (and counted as delivered) when a TCP datagram is for our
    /// unicast address: TCP to a broadcast address has no connection to
    /// reach.
    fn tcp_for_us(&mut self, ip: &Ipv4Repr) -> bool {
        if ip.dst_addr != self.ipv4_addr() {
            return false;
        }
        self.stats.tcp_delivered += 1;
        true
    }

    /// Protocols handled inside the interface: ICMP, and the answers owed
    /// for UDP and unknown protocols.
    fn dispatch_local<'a, S: FrameSink>(
        &mut self,
        now: Instant,
        eth: &EthernetRepr,
        ip: Ipv4Repr,
        payload: &[u8],
        out: &mut S,
    ) -> Received<'a> {
        let unicast = ip.dst_addr == self.ipv4_addr();
        match ip.protocol {
            IpProtocol::Icmp => self.receive_icmp(eth, &ip, payload, unicast, out),
            IpProtocol::Udp => {
                // The UDP hook: no UDP socket takes this datagram (there
                // are none yet), so RFC 1122 §3.2.2.1: port unreachable.
                self.send_unreachable(now, eth, &ip, payload, unreachable::PORT, out);
                self.drop_frame(DropReason::NoUdpSocket)
            }
            IpProtocol::Tcp => self.drop_frame(DropReason::NotForUsIp),
            IpProtocol::Unknown(_) => {
                self.send_unreachable(now, eth, &ip, payload, unreachable::PROTOCOL, out);
                self.drop_frame(DropReason::UnsupportedProtocol)
            }
        }
    }

    /// Destination Unreachable about a datagram received on `eth`, when
    /// RFC 1122 §3.2.2 allows it and the token bucket has a token.
    fn send_unreachable<S: FrameSink>(
        &mut self,
        now: Instant,
        eth: &EthernetRepr,
        ip: &Ipv4Repr,
        payload: &[u8],
        code: u8,
        out: &mut S,
    ) {
        let dst_broadcast =
            ip.dst_addr.is_broadcast() || ip.dst_addr == self.config.cidr.broadcast();
        // A reassembled datagram counts as its first fragment.
        if !icmp_error::may_answer(
            ip.src_addr,
            ip.dst_addr,
            dst_broadcast,
            eth.dst_addr.is_broadcast(),
            ip.protocol,
            payload,
            0,
        ) {
            return;
        }
        let msg = IcmpMsg::Unreachable(code);
        self.send_icmp_error(now, eth.src_addr, ip, payload, msg, out);
    }

    /// Writes an ICMP error quoting `ip` (header rebuilt, options dropped)
    /// and as much of `payload` as keeps it within 576 bytes, to the MAC it
    /// came from.
    fn send_icmp_error<S: FrameSink>(
        &mut self,
        now: Instant,
        dst_mac: EthernetAddress,
        ip: &Ipv4Repr,
        payload: &[u8],
        msg: IcmpMsg,
        out: &mut S,
    ) {
        if !self.icmp_limit.allow(now) {
            self.stats.icmp_errors_rate_limited += 1;
            return;
        }
        let data = &payload[..payload.len().min(icmp_error::MAX_QUOTE - ipv4::HEADER_LEN)];
        let quote_len = ipv4::HEADER_LEN + data.len();
        let icmp_len = icmp::HEADER_LEN + quote_len;
        let reply_ip = Ipv4Repr {
            src_addr: self.ipv4_addr(),
            dst_addr: ip.src_addr,
            protocol: IpProtocol::Icmp,
            payload_len: icmp_len,
            ttl: self.config.ttl,
            ident: self.take_ident(),
            dont_frag: false,
            dscp_ecn: 0,
        };
        let reply_eth = EthernetRepr {
            src_addr: self.config.mac,
            dst_addr: dst_mac,
            ethertype: EtherType::Ipv4,
            vlan: None,
        };
        // The quoted header: as the datagram arrived (its whole length).
        let quoted_ip = *ip;
        let fill_ip = self.config.fill_tx_checksums;
        let sent = out.with_frame(IP_OFFSET + reply_ip.buffer_len(), |buf| {
            let mut f = EthernetFrame::new_unchecked(buf);
            reply_eth.emit(&mut f);
            let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
            reply_ip.emit(&mut p, fill_ip);
            let m = p.payload_mut();
            // Quote first, then the ICMP header over it and the checksum.
            {
                let q = &mut m[icmp::HEADER_LEN..];
                let mut qp = Ipv4Packet::new_unchecked(&mut q[..ipv4::HEADER_LEN]);
                // `emit` writes Total Length from payload_len: the length
                // of the datagram quoted, not of the quote.
                quoted_ip.emit_fragment(&mut qp, msg.quoted_fragment(), true);
                q[ipv4::HEADER_LEN..].copy_from_slice(data);
            }
            let mut icmp_p = Icmpv4Packet::new_unchecked(m);
            let (ty, code, mtu) = msg.type_code();
            icmp_p.set_msg_type(ty);
            icmp_p.set_msg_code(code);
            icmp_p.clear_unused();
            icmp_p.set_next_hop_mtu(mtu);
            icmp_p.fill_checksum();
        });
        if sent {
            self.stats.tx_frames += 1;
            self.stats.icmp_errors_sent += 1;
        } else {
            self.stats.count_drop(DropReason::NoTxBuffer);
        }
    }

    fn receive_icmp<'a, S: FrameSink>(
        &mut self,
        eth: &EthernetRepr,
        ip: &Ipv4Repr,
        bytes: &[u8],
        unicast: bool,
        out: &mut S,
    ) -> Received<'a> {
        let repr = match Icmpv4Packet::new_checked(bytes)
            .and_then(|p| Icmpv4Repr::parse(&p, self.config.verify_rx_checksums))
        {
            Ok(r) => r,
            Err(e) => return self.drop_frame(map_error(e)),
        };
        match repr {
            // Like Linux (icmp_echo_ignore_broadcasts), ignore broadcast pings.
            Icmpv4Repr::EchoRequest { .. } if !unicast => Received::Nothing,
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                let reply = Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                let reply_ip = Ipv4Repr {
                    src_addr: self.ipv4_addr(),
                    dst_addr: ip.src_addr,
                    protocol: IpProtocol::Icmp,
                    payload_len: reply.buffer_len(),
                    ttl: self.config.ttl,
                    ident: self.take_ident(),
                    dont_frag: false,
                    dscp_ecn: 0,
                };
                let reply_eth = EthernetRepr {
                    src_addr: self.config.mac,
                    dst_addr: eth.src_addr,
                    ethertype: EtherType::Ipv4,
                    vlan: None,
                };
                let sent = if reply_ip.buffer_len() > self.config.mtu {
                    // The request came in fragments: so does the reply
                    // (RFC 791 §3.2, no DF on an echo reply).
                    let mut scratch = core::mem::take(&mut self.scratch);
                    let msg = &mut scratch[..reply.buffer_len()];
                    reply.emit(&mut Icmpv4Packet::new_unchecked(&mut *msg), true);
                    let sent = self.send_fragmented(&reply_eth, &reply_ip, msg, out);
                    self.scratch = scratch;
                    sent
                } else {
                    let fill_ip = self.config.fill_tx_checksums;
                    let sent = out.with_frame(IP_OFFSET + reply_ip.buffer_len(), |buf| {
                        let mut f = EthernetFrame::new_unchecked(buf);
                        reply_eth.emit(&mut f);
                        let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
                        reply_ip.emit(&mut p, fill_ip);
                        // The ICMP checksum is always computed: devices
                        // offload TCP/UDP checksums, not ICMP.
                        reply.emit(&mut Icmpv4Packet::new_unchecked(p.payload_mut()), true);
                    });
                    if sent {
                        self.stats.tx_frames += 1;
                    } else {
                        self.stats.count_drop(DropReason::NoTxBuffer);
                    }
                    sent
                };
                if sent {
                    self.stats.icmp_echo_replies += 1;
                }
                Received::Nothing
            }
            Icmpv4Repr::EchoReply { .. } => Received::Nothing,
            // RFC 1122 §3.2.2: an error about a broadcast is none of ours.
            Icmpv4Repr::DstUnreachable { .. } | Icmpv4Repr::TimeExceeded { .. } if !unicast => {
                self.drop_frame(DropReason::IcmpErrorNotOurs)
            }
            Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu,
                quoted,
            } => {
                let Some(q) = icmp_error::quoted_tcp(quoted, self.ipv4_addr()) else {
                    if let Some((local, remote)) = icmp_error::quoted_udp(quoted, self.ipv4_addr())
                    {
                        self.stats.icmp_errors_received += 1;
                        let kind = if code == unreachable::FRAG_NEEDED {
                            IcmpErrorKind::FragNeeded {
                                mtu: pmtu::guess_mtu(next_hop_mtu, 0),
                            }
                        } else {
                            IcmpErrorKind::Unreachable { code }
                        };
                        return Received::UdpIcmpError(UdpIcmpError {
                            kind,
                            local,
                            remote,
                        });
                    }
                    return self.drop_frame(DropReason::IcmpErrorNotOurs);
                };
                let kind = if code == unreachable::FRAG_NEEDED {
                    IcmpErrorKind::FragNeeded {
                        mtu: pmtu::guess_mtu(next_hop_mtu, q.4),
                    }
                } else {
                    IcmpErrorKind::Unreachable { code }
                };
                self.icmp_error_for_tcp(kind, q)
            }
            Icmpv4Repr::TimeExceeded { code, quoted } => {
                let Some(q) = icmp_error::quoted_tcp(quoted, self.ipv4_addr()) else {
                    return self.drop_frame(DropReason::IcmpErrorNotOurs);
                };
                self.icmp_error_for_tcp(IcmpErrorKind::TimeExceeded { code }, q)
            }
        }
    }

    fn icmp_error_for_tcp<'a>(
        &mut self,
        kind: IcmpErrorKind,
        (remote, local_port, remote_port, seq, sent_len): (
            Ipv4Address,
            u16,
            u16,
            crate::wire::SeqNumber,
            u16,
        ),
    ) -> Received<'a> {
        self.stats.icmp_errors_received += 1;
        Received::IcmpError(TcpIcmpError {
            kind,
            local: self.ipv4_addr(),
            remote,
            local_port,
            remote_port,
            seq,
            sent_len,
        })
    }

    /// Sends the datagram `ip` (without DF) with `payload` in as many
    /// fragments as the MTU needs (RFC 791 §3.2: every fragment but the
    /// last carries a multiple of 8 bytes). True when every fragment went.
    fn send_fragmented<S: FrameSink>(
        &mut self,
        eth: &EthernetRepr,
        ip: &Ipv4Repr,
        payload: &[u8],
        out: &mut S,
    ) -> bool {
        // Never below 8 bytes, whatever the configured MTU.
        let step = (self.config.mtu.saturating_sub(ipv4::HEADER_LEN) & !7).max(8);
        let fill_ip = self.config.fill_tx_checksums;
        // At most 65535 / 8 fragments, whatever the MTU.
        for (k, chunk) in payload.chunks(step).enumerate() {
            let offset = (k * step) as u16;
            let frag = Fragment {
                offset,
                more: usize::from(offset) + chunk.len() < payload.len(),
            };
            let piece = Ipv4Repr {
                payload_len: chunk.len(),
                ..*ip
            };
            let sent = out.with_frame(IP_OFFSET + piece.buffer_len(), |buf| {
                let mut f = EthernetFrame::new_unchecked(buf);
                eth.emit(&mut f);
                let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
                piece.emit_fragment(&mut p, frag, fill_ip);
                p.payload_mut().copy_from_slice(chunk);
            });
            if !sent {
                self.stats.count_drop(DropReason::NoTxBuffer);
                return false;
            }
            self.stats.tx_frames += 1;
            self.stats.fragments_sent += 1;
        }
        true
    }

    fn take_ident(&mut self) -> u16 {
        let id = self.next_ident;
        self.next_ident = self.next_ident.wrapping_add(1);
        id
    }

    /// The next hop for `dst`: itself when on-link (or a broadcast), else
    /// the gateway.
    ///
    /// # Errors
    /// [`SendError::Unreachable`] when off-link without a gateway.
    pub fn route(&self, dst: Ipv4Address) -> Result<Ipv4Address, SendError> {
        if self.config.cidr.contains(dst) || dst.is_broadcast() {
            Ok(dst)
        } else {
            self.config.gateway.ok_or(SendError::Unreachable)
        }
    }

    /// Sends an IPv4 packet of `payload_len` bytes to `dst`. The Ethernet
    /// and IPv4 headers are written here; `fill` writes the payload (the L4
    /// header and data) in place, into exactly `payload_len` bytes, and is
    /// called at most once. When the next hop's MAC is unknown the whole
    /// frame is queued and an ARP request is sent (one per resolution, then
    /// retried by [`poll`](Self::poll)).
    ///
    /// # Errors
    /// [`SendError::Unreachable`] (no route), [`SendError::TooLarge`] (over
    /// the MTU), [`SendError::QueueFull`] (waiting frames overflow),
    /// [`SendError::NoTxBuffer`] (the sink is full); `fill` is not called
    /// then. All but `TooLarge` (a caller bug) are counted as drops.
    pub fn send_ipv4<S: FrameSink>(
        &mut self,
        now: Instant,
        dst: Ipv4Address,
        protocol: IpProtocol,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8]),
        out: &mut S,
    ) -> Result<Sent, SendError> {
        let ttl = self.config.ttl;
        self.send_ipv4_ttl(now, dst, protocol, ttl, payload_len, fill, out)
    }

    /// [`send_ipv4`](Self::send_ipv4) with the TTL given (a socket's
    /// `IP_TTL`).
    ///
    /// # Errors
    /// As [`send_ipv4`](Self::send_ipv4).
    #[allow(clippy::too_many_arguments)]
    pub fn send_ipv4_ttl<S: FrameSink>(
        &mut self,
        now: Instant,
        dst: Ipv4Address,
        protocol: IpProtocol,
        ttl: u8,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8]),
        out: &mut S,
    ) -> Result<Sent, SendError> {
        let (next_hop, dst_mac) = self.next_hop_mac(dst, now)?;
        if payload_len + ipv4::HEADER_LEN > self.config.mtu {
            return Err(SendError::TooLarge);
        }
        let ip = Ipv4Repr {
            src_addr: self.ipv4_addr(),
            dst_addr: dst,
            protocol,
            payload_len,
            ttl,
            ident: self.take_ident(),
            dont_frag: true,
            dscp_ecn: 0,
        };
        let eth = EthernetRepr {
            src_addr: self.config.mac,
            dst_addr: dst_mac.unwrap_or(EthernetAddress([0; 6])),
            ethertype: EtherType::Ipv4,
            vlan: None,
        };
        let fill_ip = self.config.fill_tx_checksums;
        let len = L4_OFFSET + payload_len;
        let write = |buf: &mut [u8]| {
            let mut f = EthernetFrame::new_unchecked(&mut *buf);
            eth.emit(&mut f);
            ip.emit(&mut Ipv4Packet::new_unchecked(f.payload_mut()), fill_ip);
            fill(&mut buf[L4_OFFSET..]);
        };
        if dst_mac.is_some() {
            if out.with_frame(len, write) {
                self.stats.tx_frames += 1;
                return Ok(Sent::Sent);
            }
            self.stats.count_drop(DropReason::NoTxBuffer);
            return Err(SendError::NoTxBuffer);
        }
        let queued = self.arp.enqueue(now, next_hop, len, write);
        if self.count_enqueued(queued)? {
            self.send_arp_request(next_hop, out);
        }
        Ok(Sent::Queued)
    }

    /// The next hop toward `dst` and its MAC when known (broadcast for a
    /// broadcast destination); a send is a use of the neighbour entry, so a
    /// STALE one starts its re-confirmation. No route: counted, `Err`.
    fn next_hop_mac(
        &mut self,
        dst: Ipv4Address,
        now: Instant,
    ) -> Result<(Ipv4Address, Option<EthernetAddress>), SendError> {
        let next_hop = self.route(dst).inspect_err(|_| {
            self.stats.count_drop(DropReason::Unreachable);
        })?;
        let broadcast = dst.is_broadcast() || dst == self.config.cidr.broadcast();
        let mac = if broadcast {
            Some(EthernetAddress::BROADCAST)
        } else {
            self.arp.resolve(next_hop, now)
        };
        Ok((next_hop, mac))
    }

    /// Counts the outcome of queueing a packet behind an ARP resolution:
    /// `Ok(true)` when it started a new resolution (send the request).
    fn count_enqueued(&mut self, r: Result<Enqueued, QueueError>) -> Result<bool, SendError> {
        match r {
            Ok(e) => {
                self.stats.arp_queued += 1;
                let Enqueued::NewResolution { evicted } = e else {
                    return Ok(false);
                };
                if evicted > 0 {
                    self.stats.arp_pending_evicted += 1;
                    for _ in 0..evicted {
                        self.stats.count_drop(DropReason::ArpEvicted);
                    }
                }
                Ok(true)
            }
            Err(QueueError::RateLimited) => {
                self.stats.arp_requests_limited += 1;
                self.stats.count_drop(DropReason::ArpRateLimited);
                Err(SendError::QueueFull)
            }
            Err(QueueError::Full | QueueError::TooLarge) => {
                self.stats.count_drop(DropReason::ArpQueueOverflow);
                Err(SendError::QueueFull)
            }
        }
    }

    /// Sends the whole IP payload `payload` (a UDP datagram over the MTU)
    /// to `dst` in fragments without DF (RFC 791 §3.2); with the next hop
    /// unresolved every fragment waits in the ARP queue.
    ///
    /// # Errors
    /// As [`send_ipv4`](Self::send_ipv4), but never `TooLarge` (the
    /// caller keeps a datagram within 65 535 bytes).
    pub fn send_ipv4_fragmented<S: FrameSink>(
        &mut self,
        now: Instant,
        dst: Ipv4Address,
        protocol: IpProtocol,
        ttl: u8,
        payload: &[u8],
        out: &mut S,
    ) -> Result<Sent, SendError> {
        let (next_hop, dst_mac) = self.next_hop_mac(dst, now)?;
        let ip = Ipv4Repr {
            src_addr: self.ipv4_addr(),
            dst_addr: dst,
            protocol,
            payload_len: payload.len(),
            ttl,
            ident: self.take_ident(),
            dont_frag: false,
            dscp_ecn: 0,
        };
        let mut eth = EthernetRepr {
            src_addr: self.config.mac,
            dst_addr: EthernetAddress([0; 6]),
            ethertype: EtherType::Ipv4,
            vlan: None,
        };
        if let Some(mac) = dst_mac {
            eth.dst_addr = mac;
            return if self.send_fragmented(&eth, &ip, payload, out) {
                Ok(Sent::Sent)
            } else {
                Err(SendError::NoTxBuffer)
            };
        }
        // Unresolved: every fragment waits for the answer.
        let step = (self.config.mtu.saturating_sub(ipv4::HEADER_LEN) & !7).max(8);
        let fill_ip = self.config.fill_tx_checksums;
        let mut fresh = false;
        for (k, chunk) in payload.chunks(step).enumerate() {
            let offset = (k * step) as u16;
            let frag = Fragment {
                offset,
                more: usize::from(offset) + chunk.len() < payload.len(),
            };
            let piece = Ipv4Repr {
                payload_len: chunk.len(),
                ..ip
            };
            let r = self
                .arp
                .enqueue(now, next_hop, IP_OFFSET + piece.buffer_len(), |buf| {
                    let mut f = EthernetFrame::new_unchecked(buf);
                    eth.emit(&mut f);
                    let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
                    piece.emit_fragment(&mut p, frag, fill_ip);
                    p.payload_mut().copy_from_slice(chunk);
                });
            match self.count_enqueued(r) {
                Ok(new_resolution) => {
                    fresh |= new_resolution;
                    self.stats.fragments_sent += 1;
                }
                Err(e) => {
                    if fresh {
                        self.send_arp_request(next_hop, out);
                    }
                    return Err(e);
                }
            }
        }
        if fresh {
            self.send_arp_request(next_hop, out);
        }
        Ok(Sent::Queued)
    }

    /// Sends a gratuitous ARP request announcing our address (at start-up,
    /// or after an address or MAC change).
    ///
    /// `_now` is taken for symmetry with the other calls; an announcement
    /// starts no timer.
    pub fn announce<S: FrameSink>(&mut self, _now: Instant, out: &mut S) {
        let ours = self.ipv4_addr();
        self.send_arp_request(ours, out);
    }

    /// Runs the ARP timers: retries broadcast requests that went
    /// unanswered and gives up (dropping the waiting frames, counted as
    /// `Unreachable`) after `max_tries`; moves STALE neighbours in use from
    /// DELAY to PROBE, sends their unicast probes and marks them FAILED
    /// after `max_probes`.
    pub fn poll<S: FrameSink>(&mut self, now: Instant, out: &mut S) {
        self.expire_fragments(now, out);
        // Each pending resolution and each probe yields at most one action
        // per pass (the bound holds even with a zero retry interval).
        let bound = self.arp.config().max_pending + self.arp.config().max_probing;
        for _ in 0..bound {
            match self.arp.poll(now) {
                Some(PollAction::Request(ip)) => self.send_arp_request(ip, out),
                Some(PollAction::Probe(ip, mac)) => self.send_arp_probe(ip, mac, out),
                Some(PollAction::GaveUp(_, dropped)) => {
                    for _ in 0..dropped {
                        self.stats.count_drop(DropReason::Unreachable);
                    }
                }
                Some(PollAction::Failed(_)) => self.stats.arp_failed += 1,
                None => break,
            }
        }
    }

    /// Gives up datagrams whose reassembly timed out; for those whose
    /// first fragment came, ICMP Time Exceeded (RFC 792 code 1, RFC 1122
    /// §3.3.2), rate limited, to the source's MAC when the ARP cache knows
    /// it.
    fn expire_fragments<S: FrameSink>(&mut self, now: Instant, out: &mut S) {
        if self.reassembly.next_expiry().is_none_or(|at| at > now) {
            return;
        }
        // A few per call (the rest at the next poll, which is due at
        // once): each one's quote is copied out so that the error can be
        // sent after the pool lets go.
        const PER_POLL: usize = 4;
        const QUOTE: usize = icmp_error::MAX_QUOTE - ipv4::HEADER_LEN;
        let mut expired = [(None::<Ipv4Repr>, [0u8; QUOTE], 0usize); PER_POLL];
        let mut n = 0;
        let freed = self.reassembly.expire(now, PER_POLL, |e| {
            let len = e.data.len().min(QUOTE);
            expired[n].0 = Some(e.first);
            expired[n].1[..len].copy_from_slice(&e.data[..len]);
            expired[n].2 = len;
            n += 1;
        });
        self.stats.reassembly_timeouts += freed as u64;
        for (first, data, len) in &expired[..n] {
            let Some(first) = first else { continue };
            let data = &data[..*len];
            if !icmp_error::may_answer(
                first.src_addr,
                first.dst_addr,
                first.dst_addr.is_broadcast() || first.dst_addr == self.config.cidr.broadcast(),
                false,
                first.protocol,
                data,
                0,
            ) {
                continue;
            }
            let mac = self
                .route(first.src_addr)
                .ok()
                .and_then(|hop| self.arp.lookup(hop, now));
            if let Some(mac) = mac {
                self.send_icmp_error(now, mac, first, data, IcmpMsg::ReassemblyTimeout, out);
            }
        }
    }

    /// When [`poll`](Self::poll) next has work, if ever.
    pub fn next_poll_at(&self) -> Option<Instant> {
        match (self.arp.next_poll_at(), self.reassembly.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests;

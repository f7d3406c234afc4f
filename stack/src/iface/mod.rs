//! The network interface layer: Ethernet in and out, ARP, IPv4 and ICMP echo.
//!
//! [`Interface`] is sans-IO and deterministic: it reads frames from byte
//! slices handed to [`Interface::receive`], writes frames through a
//! caller-supplied [`FrameSink`], and takes `now` in every call. TCP
//! segments addressed to us are returned to the caller
//! ([`Received::Tcp`]), who parses them; everything else (ARP, ICMP echo)
//! is handled here. Outgoing IPv4 packets go through
//! [`Interface::send_ipv4`], which resolves the next hop and either writes
//! the frame at once or queues it until ARP answers.
//!
//! Frames are emitted at their natural length (an ARP reply is 42 bytes);
//! padding to the 60-byte Ethernet minimum is the device's job.

mod arp_cache;
mod stats;

pub use arp_cache::{ArpCache, ArpConfig, Enqueued, NeighborState, PollAction, QueueError, WAYS};
pub use stats::{DropReason, IfaceStats};

use core::fmt;

use crate::time::Instant;
use crate::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use crate::wire::ethernet::{self, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use crate::wire::icmp::{Icmpv4Packet, Icmpv4Repr};
use crate::wire::ipv4::{self, IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Packet, Ipv4Repr};
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
}

impl InterfaceConfig {
    /// A configuration with defaults: MTU 1500, TTL 64, software checksums,
    /// default ARP settings.
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
        }
    }
}

/// What [`Interface::receive`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    /// A TCP segment for us: the IPv4 header and the segment bytes (exactly
    /// the IP payload). The caller parses it with the addresses in `ip`.
    Tcp {
        /// The IPv4 header.
        ip: Ipv4Repr,
        /// The TCP segment.
        tcp_bytes: &'a [u8],
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

/// One Ethernet interface with ARP, IPv4 and ICMP echo. See the module docs.
#[derive(Debug)]
pub struct Interface {
    config: InterfaceConfig,
    arp: ArpCache,
    stats: IfaceStats,
    next_ident: u16,
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

    fn drop_frame<'a>(&mut self, reason: DropReason) -> Received<'a> {
        self.stats.count_drop(reason);
        Received::Dropped(reason)
    }

    /// Handles one received frame. ARP and ICMP echo are answered through
    /// `out`; a TCP segment for us is returned; anything else is dropped
    /// and counted. Never panics, whatever the bytes.
    pub fn receive<'a, S: FrameSink>(
        &mut self,
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
            EtherType::Ipv4 => self.receive_ipv4(&eth, payload, out),
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

    fn receive_ipv4<'a, S: FrameSink>(
        &mut self,
        eth: &EthernetRepr,
        bytes: &'a [u8],
        out: &mut S,
    ) -> Received<'a> {
        let packet = match Ipv4Packet::new_checked(bytes) {
            Ok(p) => p,
            Err(e) => return self.drop_frame(map_error(e)),
        };
        let ip = match Ipv4Repr::parse(&packet, self.config.verify_rx_checksums) {
            Ok(r) => r,
            Err(Error::Unsupported) => return self.drop_frame(DropReason::Fragment),
            Err(e) => return self.drop_frame(map_error(e)),
        };
        if !self.accepts(ip.dst_addr) {
            return self.drop_frame(DropReason::NotForUsIp);
        }
        // RFC 1122 §3.2.1.3: a datagram whose source is a broadcast or
        // multicast address is discarded.
        let src = ip.src_addr;
        if src.is_broadcast() || src.is_multicast() || src == self.config.cidr.broadcast() {
            return self.drop_frame(DropReason::Malformed);
        }
        let unicast = ip.dst_addr == self.ipv4_addr();
        match ip.protocol {
            IpProtocol::Tcp if unicast => {
                self.stats.tcp_delivered += 1;
                Received::Tcp {
                    ip,
                    tcp_bytes: packet.payload(),
                }
            }
            // TCP to a broadcast address has no connection to reach.
            IpProtocol::Tcp => self.drop_frame(DropReason::NotForUsIp),
            IpProtocol::Icmp => self.receive_icmp(eth, &ip, packet.payload(), unicast, out),
            _ => self.drop_frame(DropReason::UnsupportedProtocol),
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
                let fill_ip = self.config.fill_tx_checksums;
                let sent = out.with_frame(IP_OFFSET + reply_ip.buffer_len(), |buf| {
                    let mut f = EthernetFrame::new_unchecked(buf);
                    reply_eth.emit(&mut f);
                    let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
                    reply_ip.emit(&mut p, fill_ip);
                    // The ICMP checksum is always computed: devices offload
                    // TCP/UDP checksums, not ICMP.
                    reply.emit(&mut Icmpv4Packet::new_unchecked(p.payload_mut()), true);
                });
                if sent {
                    self.stats.tx_frames += 1;
                    self.stats.icmp_echo_replies += 1;
                } else {
                    self.stats.count_drop(DropReason::NoTxBuffer);
                }
                Received::Nothing
            }
            Icmpv4Repr::EchoReply { .. } => Received::Nothing,
        }
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
        let next_hop = match self.route(dst) {
            Ok(h) => h,
            Err(e) => {
                self.stats.count_drop(DropReason::Unreachable);
                return Err(e);
            }
        };
        if payload_len + ipv4::HEADER_LEN > self.config.mtu {
            return Err(SendError::TooLarge);
        }
        let broadcast = dst.is_broadcast() || dst == self.config.cidr.broadcast();
        let dst_mac = if broadcast {
            Some(EthernetAddress::BROADCAST)
        } else {
            self.arp.resolve(next_hop, now)
        };
        let ip = Ipv4Repr {
            src_addr: self.ipv4_addr(),
            dst_addr: dst,
            protocol,
            payload_len,
            ttl: self.config.ttl,
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
        match self.arp.enqueue(now, next_hop, len, write) {
            Ok(Enqueued::NewResolution { evicted }) => {
                self.stats.arp_queued += 1;
                if evicted > 0 {
                    self.stats.arp_pending_evicted += 1;
                    for _ in 0..evicted {
                        self.stats.count_drop(DropReason::ArpEvicted);
                    }
                }
                self.send_arp_request(next_hop, out);
                Ok(Sent::Queued)
            }
            Ok(Enqueued::Waiting) => {
                self.stats.arp_queued += 1;
                Ok(Sent::Queued)
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

    /// When [`poll`](Self::poll) next has work, if ever.
    pub fn next_poll_at(&self) -> Option<Instant> {
        self.arp.next_poll_at()
    }
}

#[cfg(test)]
mod tests;

//! One core's whole stack: a NIC queue, the frame pool, the interface (ARP,
//! IPv4, ICMP) and the TCP engine, driven by the reactor in two calls per
//! tick.
//!
//! ```text
//!   poll(now)  : loopback frames, RX burst → iface → TCP input,
//!                TCP timers, ARP timers, one batch of flow-event wake-ups
//!   flush(now) : TCP control → ACK → data lists into frames, one TX burst
//! ```
//!
//! Segments to one of our own addresses (or to 127.0.0.0/8) never reach the
//! device: they are built into frames on a loopback list and received at the
//! next `poll`, as the kernel's loopback does, so one process can be its own
//! client.

use core::fmt;
use core::task::Waker;

use crate::handoff::{Handoff, HANDOFF_MAX};
use crate::iface::{self, FlowOwner, FrameSink, Interface, InterfaceConfig, Received};
use crate::nic::rss::Rss;
use crate::nic::{Frame, FramePool, NicQueue};
use crate::stats::{DropReason, Stats};
use crate::tcp::stack::{TcpConfig, TcpStack};
use crate::tcp::ConfigError as TcpConfigError;
use crate::time::{Duration, Instant};
use crate::udp::{Delivered, UdpConfig, UdpError, UdpId, UdpTable};
use crate::wire::ethernet::{EthernetAddress, EthernetRepr};
use crate::wire::frame::{emit_tcp_frame, parse_tcp_frame};
use crate::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Repr};
use crate::wire::tcp::{TcpPacket, TcpRepr};
use crate::wire::udp::{self as udp_wire, UdpPacket};
use std::net::SocketAddrV4;

/// Everything a [`Stack`] needs besides its NIC queue.
#[derive(Debug, Clone, PartialEq)]
pub struct StackConfig {
    /// Our address and subnet.
    pub addr: Ipv4Cidr,
    /// The default gateway.
    pub gateway: Option<Ipv4Address>,
    /// Our MAC; `None` takes the device's, else a locally administered one
    /// derived from the address.
    pub mac: Option<EthernetAddress>,
    /// The TCP engine's settings.
    pub tcp: TcpConfig,
    /// The UDP table's sizes.
    pub udp: UdpConfig,
    /// Frames in this core's pool (RX, TX and loopback together).
    pub frames: usize,
    /// The most frames taken from the device per RX burst (a burst takes
    /// half of a backlog the device can count: see [`Stack::poll`]).
    pub rx_batch: usize,
}

/// How many frames the next RX burst takes: `rx_batch` from a device that
/// cannot count its backlog; from one that can, half the backlog (rounded
/// up, so at least one frame) and at most `rx_batch`.
///
/// Why half: the answers to a burst leave at the end of its tick. A tick
/// that takes everything waiting sends everything back at once, and two
/// stacks that talk to each other (two cores over the in-memory NIC) fall
/// into step: each works while the other waits for its answers, a convoy
/// that halves the throughput of a closed loop of requests. Leaving half
/// for the next tick lets the first half's answers reach the peer while
/// this core works on the rest, so both cores stay busy. 64-byte echo, one
/// core per side (`compare echo`, same run): 50 connections 0.84 M
/// transactions/s with bursts of up to 64, 1.8 M with half the backlog; 2
/// connections 0.77 M and 1.2 M. A floor on the burst (16 frames, say)
/// brings the convoy back whenever fewer than twice the floor wait.
pub(crate) fn rx_burst_size(backlog: Option<usize>, rx_batch: usize) -> usize {
    match backlog {
        None => rx_batch,
        Some(n) => n.div_ceil(2).clamp(1, rx_batch.max(1)),
    }
}

impl Default for StackConfig {
    fn default() -> StackConfig {
        StackConfig {
            addr: Ipv4Cidr {
                address: Ipv4Address::new(10, 0, 0, 1),
                prefix_len: 24,
            },
            gateway: None,
            mac: None,
            tcp: TcpConfig::default(),
            udp: UdpConfig::default(),
            frames: 4096,
            rx_batch: 64,
        }
    }
}

/// Why a [`Stack`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackError {
    /// The TCP configuration is invalid (the error names the field).
    Tcp(TcpConfigError),
    /// The frame pool or batch size is zero.
    InvalidArgument(&'static str),
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::Tcp(e) => write!(f, "invalid TCP configuration: {e}"),
            StackError::InvalidArgument(what) => write!(f, "invalid stack configuration: {what}"),
        }
    }
}

impl std::error::Error for StackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StackError::Tcp(e) => Some(e),
            StackError::InvalidArgument(_) => None,
        }
    }
}

impl From<TcpConfigError> for StackError {
    fn from(e: TcpConfigError) -> StackError {
        StackError::Tcp(e)
    }
}

/// The MAC used when neither the configuration nor the device gives one:
/// locally administered, derived from the IPv4 address so that two stacks
/// with different addresses differ.
pub fn default_mac(addr: Ipv4Address) -> EthernetAddress {
    let o = addr.octets();
    EthernetAddress([0x02, 0x6d, o[0], o[1], o[2], o[3]])
}

/// One core's stack. See the module docs.
pub struct Stack {
    nic: Box<dyn NicQueue>,
    pool: FramePool,
    rx: Vec<Frame>,
    tx: Vec<Frame>,
    loopback: Vec<Frame>,
    loopback_next: Vec<Frame>,
    iface: Interface,
    tcp: TcpStack,
    udp: UdpTable,
    /// Reassembled datagrams for other cores' flows ([`crate::handoff`]).
    handoffs: Vec<Handoff>,
    /// A UDP datagram over the MTU is built here before it is cut into
    /// fragments; allocated once.
    udp_scratch: Box<[u8]>,
    stats: Stats,
    rx_batch: usize,
    verify_tcp: bool,
    fill_tcp: bool,
    announced: bool,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("addr", &self.iface.config().cidr)
            .field("mac", &self.iface.config().mac)
            .field("queue", &self.nic.info().queue)
            .field("flows", &self.tcp.flows())
            .finish_non_exhaustive()
    }
}

/// What one received datagram asks of the engines, with the parts of the
/// [`Stack`] it may touch (the interface stays free for the reply).
struct Deliver<'s> {
    tcp: &'s mut TcpStack,
    udp: &'s mut UdpTable,
    stats: &'s mut Stats,
    handoffs: &'s mut Vec<Handoff>,
    verify_tcp: bool,
}

/// Where a datagram for [`Stack::input`] comes from: a frame off the NIC,
/// or a datagram another core reassembled.
enum Input<'f> {
    Frame(&'f [u8]),
    Handoff(&'f Handoff),
}

/// A port unreachable owed for a UDP datagram, sent once the interface's
/// bytes are no longer borrowed.
struct Unreachable {
    src_mac: EthernetAddress,
    broadcast: bool,
    ip: Ipv4Repr,
    quote: [u8; iface::icmp_error::MAX_QUOTE],
    len: usize,
}

impl Unreachable {
    fn send(&self, now: Instant, iface: &mut Interface, sink: &mut TxSink<'_>) {
        iface.send_port_unreachable(
            now,
            self.src_mac,
            self.broadcast,
            &self.ip,
            &self.quote[..self.len],
            sink,
        );
    }
}

impl Deliver<'_> {
    /// Hands what the interface received to TCP or UDP; returns the port
    /// unreachable owed, if any. Always inlined into
    /// [`Stack::input`]'s two callers, as the received-frame match was
    /// before it moved here (outlined, it cost 67 instructions a segment).
    #[inline(always)]
    fn deliver(&mut self, now: Instant, received: Received<'_>) -> Option<Unreachable> {
        match received {
            Received::Tcp { ip, tcp_bytes } => {
                let seg = TcpPacket::new_checked(tcp_bytes)
                    .and_then(|p| TcpRepr::parse(&p, ip.src_addr, ip.dst_addr, self.verify_tcp));
                match seg {
                    Ok(seg) => self.tcp.input(now, ip.src_addr, ip.dst_addr, &seg),
                    Err(e) => self.stats.record_drop(DropReason::from(e)),
                }
            }
            Received::IcmpError(err) => self.tcp.icmp_error(now, &err),
            Received::Udp {
                ip,
                broadcast,
                src_mac,
                udp_bytes,
            } => return self.udp(ip, broadcast, src_mac, udp_bytes),
            Received::UdpIcmpError(err) => {
                self.udp.icmp_error(err.kind, err.local, err.remote);
            }
            Received::Foreign {
                queue,
                ip,
                src_mac,
                bytes,
            } => {
                if self.handoffs.len() >= HANDOFF_MAX {
                    self.stats.record_drop(DropReason::ReassemblyFull);
                } else {
                    self.handoffs.push(Handoff {
                        queue,
                        src_mac,
                        ip,
                        bytes: bytes.to_vec(),
                    });
                }
            }
            Received::Nothing => {}
            Received::Dropped(reason) => self.stats.record_drop(reason.into()),
        }
        None
    }

    fn udp(
        &mut self,
        ip: Ipv4Repr,
        broadcast: bool,
        src_mac: EthernetAddress,
        udp_bytes: &[u8],
    ) -> Option<Unreachable> {
        let packet = match UdpPacket::new_checked(udp_bytes) {
            Ok(p) => p,
            Err(e) => {
                self.udp.count_bad();
                self.stats.record_drop(DropReason::from(e));
                return None;
            }
        };
        if self.verify_tcp && !packet.verify_checksum(ip.src_addr, ip.dst_addr) {
            self.udp.count_bad();
            self.stats.record_drop(DropReason::BadChecksum);
            return None;
        }
        let from = SocketAddrV4::new(ip.src_addr, packet.src_port());
        let to = SocketAddrV4::new(ip.dst_addr, packet.dst_port());
        match self.udp.input(from, to, broadcast, packet.payload()) {
            Delivered::Queued => None,
            Delivered::QueueFull => {
                self.stats.record_drop(DropReason::UdpQueueFull);
                None
            }
            Delivered::NoSocket => {
                // The port is held, but by sockets connected elsewhere:
                // RFC 1122 §4.1.3.1, port unreachable. The quote is copied
                // out of the interface's bytes first.
                self.stats.record_drop(DropReason::NoSocket);
                let mut quote = [0u8; iface::icmp_error::MAX_QUOTE];
                let len = udp_bytes.len().min(quote.len());
                quote[..len].copy_from_slice(&udp_bytes[..len]);
                Some(Unreachable {
                    src_mac,
                    broadcast,
                    ip,
                    quote,
                    len,
                })
            }
        }
    }
}

/// Writes frames into pool buffers appended to a TX list.
struct TxSink<'a> {
    pool: &'a mut FramePool,
    tx: &'a mut Vec<Frame>,
}

impl FrameSink for TxSink<'_> {
    fn with_frame<F: FnOnce(&mut [u8])>(&mut self, len: usize, fill: F) -> bool {
        let Some(mut frame) = self.pool.alloc() else {
            return false;
        };
        if len > frame.capacity() {
            self.pool.free(frame);
            return false;
        }
        frame.set_len(len);
        fill(frame.as_mut_slice());
        self.tx.push(frame);
        true
    }
}

impl Stack {
    /// Builds a stack over `nic`, allocating every pool now.
    ///
    /// # Errors
    /// [`StackError`] when the configuration is invalid.
    pub fn new(config: StackConfig, nic: Box<dyn NicQueue>) -> Result<Stack, StackError> {
        if config.frames == 0 {
            return Err(StackError::InvalidArgument("frames must be at least 1"));
        }
        if config.rx_batch == 0 {
            return Err(StackError::InvalidArgument("rx_batch must be at least 1"));
        }
        let info = *nic.info();
        let mac = config
            .mac
            .or(info.mac)
            .unwrap_or_else(|| default_mac(config.addr.address));
        let mut icfg = InterfaceConfig::new(mac, config.addr, config.gateway);
        icfg.mtu = info.mtu;
        icfg.verify_rx_checksums = !info.caps.rx_checksum;
        icfg.fill_tx_checksums = !info.caps.tx_checksum;
        let mut tcfg = config.tcp.clone();
        tcfg.mtu = tcfg.mtu.min(info.mtu);
        let locals = [config.addr.address, Ipv4Address::LOCALHOST];
        let mut tcp = TcpStack::new(tcfg, &locals)?;
        if config.addr.prefix_len < 31 {
            tcp.set_broadcast_addrs(&[config.addr.broadcast()]);
        }
        let mut udp = UdpTable::new(
            config.udp,
            &locals,
            icfg.ttl,
            config.tcp.seed ^ info.queue as u64,
        );
        if info.queues > 1 {
            // Active opens (and connected UDP sockets) pick ports whose
            // replies hash back to this queue.
            let filter = |queues: usize, queue: usize| -> crate::tcp::stack::PortFilter {
                let rss = Rss::symmetric(queues);
                Box::new(move |lip, lport, rip, rport| {
                    rip == lip
                        || rip.is_loopback()
                        || rss.queue_for_reply(lip, lport, rip, rport) == queue
                })
            };
            tcp.set_port_filter(filter(info.queues, info.queue));
            udp.set_port_filter(filter(info.queues, info.queue));
        }
        let mut iface = Interface::new(icfg);
        if info.queues > 1 {
            // Reassembled datagrams go to the core of their 4-tuple.
            let rss = Rss::symmetric(info.queues);
            iface.set_flow_owner(FlowOwner {
                owner: Box::new(move |lip, lport, rip, rport| {
                    if rip == lip || rip.is_loopback() {
                        info.queue
                    } else {
                        rss.queue_for_reply(lip, lport, rip, rport)
                    }
                }),
                queue: info.queue,
            });
        }
        let batch = config.rx_batch;
        Ok(Stack {
            nic,
            pool: FramePool::new(config.frames),
            rx: Vec::with_capacity(batch),
            tx: Vec::with_capacity(config.frames),
            loopback: Vec::with_capacity(config.frames),
            loopback_next: Vec::with_capacity(config.frames),
            iface,
            tcp,
            udp,
            handoffs: Vec::with_capacity(HANDOFF_MAX),
            udp_scratch: vec![0u8; usize::from(u16::MAX)].into_boxed_slice(),
            stats: Stats::default(),
            rx_batch: batch,
            verify_tcp: !info.caps.rx_checksum,
            fill_tcp: !info.caps.tx_checksum,
            announced: false,
        })
    }

    /// The TCP engine: the socket API lives here.
    pub fn tcp(&self) -> &TcpStack {
        &self.tcp
    }

    /// The TCP engine, mutable.
    pub fn tcp_mut(&mut self) -> &mut TcpStack {
        &mut self.tcp
    }

    /// The UDP table (options, receive, counters).
    pub fn udp(&self) -> &UdpTable {
        &self.udp
    }

    /// The UDP table, mutable. Binding, connecting, closing and sending go
    /// through the stack ([`udp_bind`](Self::udp_bind) and the others),
    /// which keeps the interface's port map in step.
    pub fn udp_mut(&mut self) -> &mut UdpTable {
        &mut self.udp
    }

    /// Opens a UDP socket bound to `local` (port 0: ephemeral).
    ///
    /// # Errors
    /// As [`UdpTable::bind`].
    pub fn udp_bind(&mut self, local: SocketAddrV4) -> Result<UdpId, UdpError> {
        let id = self.udp.bind(local)?;
        let port = self.udp.local_addr(id)?.port();
        self.iface.set_udp_port(port, true);
        Ok(id)
    }

    /// Connects a UDP socket to `remote`.
    ///
    /// # Errors
    /// As [`UdpTable::connect`].
    pub fn udp_connect(&mut self, id: UdpId, remote: SocketAddrV4) -> Result<(), UdpError> {
        let old = self.udp.local_addr(id)?.port();
        let r = self.udp.connect(id, remote);
        let new = self.udp.local_addr(id)?.port();
        self.iface.set_udp_port(old, self.udp.port_bound(old));
        self.iface.set_udp_port(new, true);
        r
    }

    /// Closes a UDP socket.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn udp_close(&mut self, id: UdpId) -> Result<(), UdpError> {
        let port = self.udp.local_addr(id)?.port();
        self.udp.close(id)?;
        self.iface.set_udp_port(port, self.udp.port_bound(port));
        Ok(())
    }

    /// Sends `data` as one datagram to `to` (or the connected remote):
    /// built in place in a frame when it fits the MTU, else in fragments
    /// (RFC 791); to one of our addresses it is delivered at once. The
    /// frames leave at the next [`flush`](Self::flush).
    ///
    /// # Errors
    /// As [`UdpTable::prepare_send`]; `WouldBlock` when the frame pool has
    /// not enough buffers (register a write waker); `NetworkUnreachable`
    /// without a route; `AddrNotAvailable` from a socket bound to 127.0.0.1
    /// to another host. A datagram dropped on a full ARP queue counts as
    /// sent (and as an interface drop), as on Linux.
    pub fn udp_send_to(
        &mut self,
        now: Instant,
        id: UdpId,
        to: Option<SocketAddrV4>,
        data: &[u8],
    ) -> Result<usize, UdpError> {
        let ours = self.iface.ipv4_addr();
        let cidr = self.iface.config().cidr;
        let subnet_bcast = (cidr.prefix_len < 31).then(|| cidr.broadcast());
        let (src, sport, dst, ttl) =
            self.udp
                .prepare_send(id, to, data.len(), ours, subnet_bcast)?;
        let from = SocketAddrV4::new(src, sport);
        if *dst.ip() == ours || dst.ip().is_loopback() {
            // The loopback: straight into the receiver's queue.
            self.udp.sent(id);
            if self.udp.input(from, dst, false, data) == Delivered::NoSocket {
                // What the ICMP port unreachable would tell the sender.
                let port = crate::wire::icmp::unreachable::PORT;
                self.udp.icmp_error(
                    crate::iface::IcmpErrorKind::Unreachable { code: port },
                    from,
                    dst,
                );
            }
            return Ok(data.len());
        }
        if src.is_loopback() {
            return Err(UdpError::AddrNotAvailable);
        }
        let len = udp_wire::HEADER_LEN + data.len();
        let mtu = self.iface.config().mtu;
        let Stack {
            iface,
            pool,
            tx,
            udp_scratch,
            fill_tcp,
            ..
        } = self;
        let mut sink = TxSink {
            pool: &mut *pool,
            tx: &mut *tx,
        };
        let r = if len + crate::wire::ipv4::HEADER_LEN <= mtu {
            let fill = *fill_tcp;
            iface.send_ipv4_ttl(
                now,
                *dst.ip(),
                IpProtocol::Udp,
                ttl,
                len,
                |buf| {
                    buf[udp_wire::HEADER_LEN..].copy_from_slice(data);
                    UdpPacket::new_unchecked(buf).emit(
                        (src, sport),
                        (*dst.ip(), dst.port()),
                        data.len(),
                        fill,
                    );
                },
                &mut sink,
            )
        } else {
            let step = (mtu.saturating_sub(crate::wire::ipv4::HEADER_LEN) & !7).max(8);
            if sink.pool.available() < len.div_ceil(step) {
                self.udp.stats_mut().tx_no_buffer += 1;
                return Err(UdpError::WouldBlock);
            }
            let buf = &mut udp_scratch[..len];
            buf[udp_wire::HEADER_LEN..].copy_from_slice(data);
            // A checksum over fragments cannot be offloaded: always here.
            UdpPacket::new_unchecked(&mut *buf).emit(
                (src, sport),
                (*dst.ip(), dst.port()),
                data.len(),
                true,
            );
            iface.send_ipv4_fragmented(now, *dst.ip(), IpProtocol::Udp, ttl, buf, &mut sink)
        };
        match r {
            Ok(_) => {
                self.udp.sent(id);
                Ok(data.len())
            }
            // Lost waiting for ARP, as a datagram may be: counted, and
            // reported sent.
            Err(iface::SendError::QueueFull) => {
                self.stats.record_drop(DropReason::ArpQueueFull);
                self.udp.sent(id);
                Ok(data.len())
            }
            Err(iface::SendError::NoTxBuffer) => {
                self.udp.stats_mut().tx_no_buffer += 1;
                Err(UdpError::WouldBlock)
            }
            Err(iface::SendError::Unreachable) => Err(UdpError::NetworkUnreachable),
            Err(iface::SendError::TooLarge) => Err(UdpError::MessageTooLong),
        }
    }

    /// The interface (ARP cache, IPv4 address, counters).
    pub fn iface(&self) -> &Interface {
        &self.iface
    }

    /// The interface, mutable (static ARP entries, tests).
    pub fn iface_mut(&mut self) -> &mut Interface {
        &mut self.iface
    }

    /// The NIC queue this stack drives.
    pub fn nic(&self) -> &dyn NicQueue {
        &*self.nic
    }

    /// Frame-level counters (frames and bytes in and out, drops by reason).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Frames free in the pool.
    pub fn frames_available(&self) -> usize {
        self.pool.available()
    }

    /// The frame pool's size.
    pub fn frames_capacity(&self) -> usize {
        self.pool.capacity()
    }

    /// The first half of a tick: loopback frames, one RX burst through the
    /// interface into TCP, TCP and ARP timers, then one batch of flow-event
    /// wake-ups. Returns whether anything happened.
    ///
    /// The burst takes half of what waits in the device (at least one frame,
    /// at most `rx_batch`) when the device can count it, else `rx_batch`;
    /// the rest waits for the next tick. Taking everything would
    /// send every answer at the end of one tick and let two stacks that
    /// talk to each other fall into step, each idle while the other works.
    pub fn poll(&mut self, now: Instant) -> bool {
        let mut work = false;
        if !self.announced {
            self.announced = true;
            let mut sink = TxSink {
                pool: &mut self.pool,
                tx: &mut self.tx,
            };
            self.iface.announce(now, &mut sink);
        }

        // Loopback frames sent last tick.
        core::mem::swap(&mut self.loopback, &mut self.loopback_next);
        for frame in self.loopback_next.drain(..) {
            work = true;
            self.stats.record_rx(frame.len());
            match parse_tcp_frame(frame.as_slice(), false) {
                Ok((_, ip, seg)) => self.tcp.input(now, ip.src_addr, ip.dst_addr, &seg),
                Err(e) => self.stats.record_drop(DropReason::from(e)),
            }
            self.pool.free(frame);
        }

        // One RX burst, sized by the backlog ([`rx_burst_size`]).
        let max = rx_burst_size(self.nic.rx_backlog(), self.rx_batch);
        let n = self.nic.rx_burst(&mut self.pool, &mut self.rx, max);
        if n > 0 {
            work = true;
            let mut frames = core::mem::take(&mut self.rx);
            for frame in frames.drain(..) {
                self.input_frame(now, &frame);
                self.pool.free(frame);
            }
            self.rx = frames;
        }

        // Forward progress confirms neighbours (no ARP probe for them).
        for peer in self.tcp.take_progress() {
            self.iface.confirm(peer, now);
        }

        // Timers.
        self.tcp.poll_timers(now);
        let mut sink = TxSink {
            pool: &mut self.pool,
            tx: &mut self.tx,
        };
        self.iface.poll(now, &mut sink);

        // One batch of flow events: the wakers become due, and the caller
        // wakes them once its borrow of the stack ends (`take_wakes`).
        if self.tcp.collect_wakes() > 0 {
            work = true;
        }
        self.wake_udp_writers();
        work
    }

    /// True when some waker is due: after [`poll`](Self::poll),
    /// [`flush`](Self::flush) or a socket call.
    pub fn has_wakes(&self) -> bool {
        self.tcp.has_wakes() || self.udp.has_wakes()
    }

    /// Moves every due waker (TCP flow events, freed sockets, UDP readers
    /// and writers) to the end of `out`. The stack never wakes from inside:
    /// a waker may run code at once, and code that makes a socket call must
    /// find the stack free, so the caller wakes `out` after its borrow of
    /// the stack ends. A caller that registers wakers must call this after
    /// every `poll`, `flush` and socket call, or they are never woken.
    pub fn take_wakes(&mut self, out: &mut Vec<Waker>) {
        self.tcp.take_wakes(out);
        self.udp.take_wakes(out);
    }

    /// UDP senders that found no frame buffer try again once some are free.
    fn wake_udp_writers(&mut self) {
        if self.udp.has_write_waiters() && self.pool.available() > 0 {
            self.udp.wake_writers();
        }
    }

    fn input_frame(&mut self, now: Instant, frame: &Frame) {
        self.stats.record_rx(frame.len());
        self.input(now, Input::Frame(frame.as_slice()));
    }

    /// One received datagram through the interface (ARP and ICMP answered
    /// there), then to TCP or UDP, then the port unreachable it is owed.
    /// [`input_frame`](Self::input_frame) and
    /// [`input_handoff`](Self::input_handoff) differ only in `input`.
    #[inline(always)]
    fn input(&mut self, now: Instant, input: Input<'_>) {
        let Stack {
            iface,
            tcp,
            udp,
            stats,
            pool,
            tx,
            handoffs,
            verify_tcp,
            ..
        } = self;
        let mut sink = TxSink { pool, tx };
        let received = match input {
            Input::Frame(frame) => iface.receive(now, frame, &mut sink),
            Input::Handoff(h) => iface.receive_handoff(now, h.src_mac, h.ip, &h.bytes, &mut sink),
        };
        let mut to = Deliver {
            tcp,
            udp,
            stats,
            handoffs,
            verify_tcp: *verify_tcp,
        };
        if let Some(u) = to.deliver(now, received) {
            u.send(now, iface, &mut sink);
        }
    }

    /// Reassembled datagrams of flows that other cores own, taken out for
    /// the runtime to carry there (see [`crate::handoff`]).
    pub fn take_handoffs(&mut self) -> std::vec::Drain<'_, Handoff> {
        self.handoffs.drain(..)
    }

    /// Whether [`take_handoffs`](Self::take_handoffs) has anything.
    pub fn has_handoffs(&self) -> bool {
        !self.handoffs.is_empty()
    }

    /// A datagram another core reassembled for one of this core's flows,
    /// taken as if it had arrived here whole.
    pub fn input_handoff(&mut self, now: Instant, h: Handoff) {
        self.input(now, Input::Handoff(&h));
    }

    /// The second half of a tick: the TCP control, ACK and data lists turned
    /// into frames (within the engine's budget), then one TX burst. Returns
    /// whether anything was sent.
    pub fn flush(&mut self, now: Instant) -> bool {
        let budget = self.tcp.config().tx_budget;
        let Stack {
            tcp,
            iface,
            pool,
            tx,
            loopback,
            stats,
            fill_tcp,
            ..
        } = self;
        let fill = *fill_tcp;
        let mac = iface.config().mac;
        let ours = iface.ipv4_addr();
        let mut emit = |src: Ipv4Address, dst: Ipv4Address, seg: &TcpRepr| -> bool {
            if dst == ours || dst.is_loopback() {
                // Loopback: build the whole frame, received next tick.
                let Some(mut frame) = pool.alloc() else {
                    stats.record_drop(DropReason::NoBuffer);
                    return false;
                };
                let eth = EthernetRepr {
                    src_addr: mac,
                    dst_addr: mac,
                    ethertype: crate::wire::ethernet::EtherType::Ipv4,
                    vlan: None,
                };
                let ip = Ipv4Repr {
                    src_addr: src,
                    dst_addr: dst,
                    protocol: IpProtocol::Tcp,
                    payload_len: seg.buffer_len(),
                    ttl: 64,
                    ident: 0,
                    dont_frag: true,
                    dscp_ecn: 0,
                };
                match emit_tcp_frame(frame.buffer_mut(), &eth, &ip, seg, true) {
                    Ok(len) => {
                        frame.set_len(len);
                        loopback.push(frame);
                        true
                    }
                    Err(_) => {
                        pool.free(frame);
                        stats.record_drop(DropReason::NoBuffer);
                        false
                    }
                }
            } else {
                let mut sink = TxSink {
                    pool: &mut *pool,
                    tx: &mut *tx,
                };
                let len = seg.buffer_len();
                let r = iface.send_ipv4(
                    now,
                    dst,
                    IpProtocol::Tcp,
                    len,
                    |buf| {
                        let mut p = TcpPacket::new_unchecked(buf);
                        seg.emit(&mut p, src, dst, fill);
                    },
                    &mut sink,
                );
                match r {
                    Ok(_) => true,
                    // No frame buffer: stop, the engine keeps the rest.
                    Err(iface::SendError::NoTxBuffer) => false,
                    // Larger than the MTU: the engine sized it wrong;
                    // counted, never hidden.
                    Err(iface::SendError::TooLarge) => {
                        stats.record_drop(DropReason::TooLarge);
                        true
                    }
                    // Refused by a full ARP queue: this segment is lost
                    // (retransmission recovers), counted, go on.
                    Err(iface::SendError::QueueFull) => {
                        stats.record_drop(DropReason::ArpQueueFull);
                        true
                    }
                    // Unroutable: lost and counted the same way.
                    Err(iface::SendError::Unreachable) => {
                        stats.record_drop(DropReason::Unsupported);
                        true
                    }
                }
            }
        };
        let sent = tcp.dispatch(now, budget, &mut emit);
        let mut work = sent > 0;
        if !self.tx.is_empty() {
            work = true;
            let bytes_before: usize = self.tx.iter().map(Frame::len).sum();
            let taken = self.nic.tx_burst(&mut self.tx, &mut self.pool);
            // Frames the device did not take stay queued for the next tick
            // (bounded by the pool).
            let bytes_after: usize = self.tx.iter().map(Frame::len).sum();
            self.stats.tx_frames += taken as u64;
            self.stats.tx_bytes += (bytes_before - bytes_after) as u64;
        }
        self.wake_udp_writers();
        work
    }

    /// When the next timer is due (TCP or ARP), if any; loopback frames
    /// waiting count as due now.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.loopback.is_empty() || !self.tx.is_empty() {
            return Some(Instant::ZERO);
        }
        match (self.tcp.next_deadline(), self.iface.next_poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when work is waiting that needs no device input: loopback
    /// frames, unsent frames, or TCP output queued by the application.
    pub fn has_pending_work(&self) -> bool {
        !self.loopback.is_empty() || !self.tx.is_empty() || self.tcp.has_output()
    }

    /// Starts closing everything, as a process exit does on the kernel:
    /// see [`TcpStack::close_all`]. Keep calling [`poll`](Self::poll) and
    /// [`flush`](Self::flush) until [`closed_all`](Self::closed_all), or
    /// [`abort_closing`](Self::abort_closing) at a deadline. Returns how
    /// many sockets were closed.
    pub fn close_all(&mut self) -> usize {
        self.tcp.close_all()
    }

    /// Connections still unfinished (see [`TcpStack::closing`]).
    pub fn closing(&self) -> usize {
        self.tcp.closing()
    }

    /// True when a [`close_all`](Self::close_all) has nothing left to do:
    /// every connection is finished and every frame has gone to the device.
    pub fn closed_all(&self) -> bool {
        !self.has_pending_work() && self.tcp.closing() == 0
    }

    /// Resets every unfinished connection (see
    /// [`TcpStack::abort_closing`]); the RSTs go out at the next
    /// [`flush`](Self::flush). Returns how many were reset.
    pub fn abort_closing(&mut self) -> usize {
        self.tcp.abort_closing()
    }

    /// True when the device has frames waiting.
    pub fn rx_pending(&self) -> bool {
        self.nic.rx_pending()
    }

    /// Parks the thread on the device until frames may be waiting or
    /// `timeout` passes.
    pub fn wait_rx(&self, timeout: Duration) {
        self.nic.wait_rx(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::rx_burst_size;

    #[test]
    fn a_burst_takes_half_of_a_counted_backlog_within_its_bounds() {
        // A device that cannot count: the configured batch.
        assert_eq!(rx_burst_size(None, 64), 64);
        // Half, rounded up: a single frame is taken, and a hint of an
        // empty queue still lets one frame through.
        assert_eq!(rx_burst_size(Some(0), 64), 1);
        assert_eq!(rx_burst_size(Some(1), 64), 1);
        assert_eq!(rx_burst_size(Some(2), 64), 1);
        assert_eq!(rx_burst_size(Some(3), 64), 2);
        assert_eq!(rx_burst_size(Some(50), 64), 25);
        assert_eq!(rx_burst_size(Some(51), 64), 26);
        // Never more than the batch.
        assert_eq!(rx_burst_size(Some(500), 64), 64);
        assert_eq!(rx_burst_size(Some(500), 4), 4);
    }
}

//! UDP (RFC 768, RFC 1122 §4.1): one core's socket table.
//!
//! Sockets live in a slab; a map from local port to the sockets bound on
//! it finds the receiver of a datagram: a *connected* socket whose remote
//! matches the source wins over an unconnected one bound to the port
//! (wildcard or the destination address). Each socket has a bounded
//! receive queue (`queue.rs`); a full queue drops the datagram and counts
//! it (`UdpStats::rx_queue_full`).
//!
//! Ports: `bind` to port 0 picks an ephemeral port; `connect` of such a
//! socket that has not sent yet re-picks one that the port filter accepts
//! for the remote, so that with RSS the replies come back to this core (the
//! same symmetric-Toeplitz filter as TCP's active opens).
//!
//! Errors: an ICMP port unreachable quoting a datagram of a connected
//! socket (or a loopback send to a port nobody holds) is kept on the socket
//! and returned by its next operation, as Linux does (`ConnectionRefused`).
//!
//! Sending and receiving frames is the [`Stack`](crate::stack::Stack)'s
//! job; this table only decides who gets what.

mod queue;

use core::fmt;
use core::task::Waker;
use std::collections::HashMap;
use std::net::SocketAddrV4;

use crate::iface::IcmpErrorKind;
use crate::tcp::stack::PortFilter;
use crate::wake_list::WakeList;
use crate::wire::icmp::unreachable;
use crate::wire::ipv4::Ipv4Address;
use queue::RecvQueue;

/// The largest UDP payload in one IPv4 datagram (65535 - 20 - 8).
pub const MAX_PAYLOAD: usize = 65_507;

/// Sizes of the UDP table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConfig {
    /// Most sockets per core.
    pub max_sockets: usize,
    /// Most datagrams waiting in one socket's receive queue.
    pub recv_datagrams: usize,
    /// Most bytes waiting in one socket's receive queue (Linux's default
    /// `rmem_default` is 212 992).
    pub recv_bytes: usize,
    /// Ephemeral ports, inclusive (Linux's `ip_local_port_range`).
    pub ephemeral_ports: (u16, u16),
}

impl Default for UdpConfig {
    fn default() -> UdpConfig {
        UdpConfig {
            max_sockets: 1024,
            recv_datagrams: 1024,
            recv_bytes: 212_992,
            ephemeral_ports: (32768, 60999),
        }
    }
}

/// Why a UDP call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpError {
    /// Nothing to receive, or no frame buffer to send from, right now.
    WouldBlock,
    /// An ICMP port unreachable came back (connected sockets).
    ConnectionRefused,
    /// ICMP host unreachable came back (connected sockets).
    HostUnreachable,
    /// No route, or ICMP net unreachable came back.
    NetworkUnreachable,
    /// The address is taken.
    AddrInUse,
    /// Not one of our addresses, or no ephemeral port is free.
    AddrNotAvailable,
    /// `send`/`recv` on a socket without a remote.
    NotConnected,
    /// A broadcast destination without `set_broadcast(true)`.
    PermissionDenied,
    /// Larger than a UDP datagram can carry.
    MessageTooLong,
    /// The socket table is full.
    NoResources,
    /// A handle to a socket that is gone.
    InvalidSocket,
}

impl UdpError {
    /// The matching `std::io::ErrorKind`.
    pub fn kind(self) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match self {
            UdpError::WouldBlock => K::WouldBlock,
            UdpError::ConnectionRefused => K::ConnectionRefused,
            UdpError::HostUnreachable => K::HostUnreachable,
            UdpError::NetworkUnreachable => K::NetworkUnreachable,
            UdpError::AddrInUse => K::AddrInUse,
            UdpError::AddrNotAvailable => K::AddrNotAvailable,
            UdpError::NotConnected | UdpError::InvalidSocket => K::NotConnected,
            UdpError::PermissionDenied => K::PermissionDenied,
            UdpError::MessageTooLong => K::InvalidInput,
            UdpError::NoResources => K::OutOfMemory,
        }
    }
}

impl fmt::Display for UdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UdpError::WouldBlock => "operation would block",
            UdpError::ConnectionRefused => "connection refused (ICMP port unreachable)",
            UdpError::HostUnreachable => "host unreachable",
            UdpError::NetworkUnreachable => "network unreachable",
            UdpError::AddrInUse => "address in use",
            UdpError::AddrNotAvailable => "address not available",
            UdpError::NotConnected => "socket not connected",
            UdpError::PermissionDenied => "broadcast not enabled on this socket",
            UdpError::MessageTooLong => "message too long for a UDP datagram",
            UdpError::NoResources => "UDP socket table full",
            UdpError::InvalidSocket => "invalid UDP socket",
        })
    }
}

impl std::error::Error for UdpError {}

/// Results of the UDP calls.
pub type Result<T> = core::result::Result<T, UdpError>;

/// A handle to a UDP socket of one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpId {
    index: u32,
    generation: u32,
}

/// UDP counters of one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpStats {
    /// Datagrams queued to a socket.
    pub rx_datagrams: u64,
    /// Datagrams handed to the interface (or the loopback).
    pub tx_datagrams: u64,
    /// Datagrams dropped: the socket's receive queue was full.
    pub rx_queue_full: u64,
    /// Datagrams dropped: no socket (ICMP port unreachable sent, rate
    /// permitting).
    pub no_socket: u64,
    /// Datagrams dropped: bad checksum or malformed header.
    pub bad_datagrams: u64,
    /// ICMP errors kept on a connected socket.
    pub icmp_errors: u64,
    /// Sends refused for want of a frame buffer.
    pub tx_no_buffer: u64,
}

impl fmt::Display for UdpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "udp rx {} tx {} drops: queue_full {} no_socket {} bad {} tx_no_buffer {}; icmp errors {}",
            self.rx_datagrams,
            self.tx_datagrams,
            self.rx_queue_full,
            self.no_socket,
            self.bad_datagrams,
            self.tx_no_buffer,
            self.icmp_errors
        )
    }
}

#[derive(Debug)]
struct Socket {
    local: SocketAddrV4,
    remote: Option<SocketAddrV4>,
    /// Bound to port 0 and nothing sent: `connect` may re-pick the port.
    auto_port: bool,
    broadcast: bool,
    ttl: u8,
    error: Option<UdpError>,
    queue: RecvQueue,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

struct Slot {
    generation: u32,
    socket: Option<Socket>,
}

/// One core's UDP sockets. See the module docs.
pub struct UdpTable {
    cfg: UdpConfig,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_port: HashMap<u16, Vec<u32>>,
    next_port: u16,
    port_filter: Option<PortFilter>,
    locals: Vec<Ipv4Address>,
    default_ttl: u8,
    write_blocked: usize,
    stats: UdpStats,
    /// Wakers due, woken by the caller after its borrow ends
    /// ([`take_wakes`](UdpTable::take_wakes)).
    due: WakeList,
}

impl fmt::Debug for UdpTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpTable")
            .field("sockets", &self.sockets_in_use())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Where a received datagram went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Queued to a socket.
    Queued,
    /// The socket's queue was full: dropped and counted.
    QueueFull,
    /// No socket: the caller owes an ICMP port unreachable.
    NoSocket,
}

impl UdpTable {
    /// An empty table for a core whose addresses are `locals`; `seed`
    /// spreads the first ephemeral port.
    pub fn new(cfg: UdpConfig, locals: &[Ipv4Address], default_ttl: u8, seed: u64) -> UdpTable {
        let (lo, hi) = cfg.ephemeral_ports;
        let span = u64::from(hi.saturating_sub(lo)) + 1;
        UdpTable {
            cfg,
            slots: Vec::with_capacity(cfg.max_sockets),
            free: Vec::with_capacity(cfg.max_sockets),
            by_port: HashMap::new(),
            next_port: lo + (seed % span) as u16,
            port_filter: None,
            locals: locals.to_vec(),
            default_ttl,
            write_blocked: 0,
            stats: UdpStats::default(),
            due: WakeList::with_capacity(16),
        }
    }

    /// Installs the filter that ephemeral ports of connected sockets must
    /// pass (RSS: replies hash back to this core's queue).
    pub fn set_port_filter(&mut self, filter: PortFilter) {
        self.port_filter = Some(filter);
    }

    /// The counters.
    pub fn stats(&self) -> &UdpStats {
        &self.stats
    }

    /// The counters, mutable (the stack counts sends here).
    pub fn stats_mut(&mut self) -> &mut UdpStats {
        &mut self.stats
    }

    /// Sockets open.
    pub fn sockets_in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn get(&self, id: UdpId) -> Result<&Socket> {
        match self.slots.get(id.index as usize) {
            Some(s) if s.generation == id.generation => {
                s.socket.as_ref().ok_or(UdpError::InvalidSocket)
            }
            _ => Err(UdpError::InvalidSocket),
        }
    }

    fn get_mut(&mut self, id: UdpId) -> Result<&mut Socket> {
        match self.slots.get_mut(id.index as usize) {
            Some(s) if s.generation == id.generation => {
                s.socket.as_mut().ok_or(UdpError::InvalidSocket)
            }
            _ => Err(UdpError::InvalidSocket),
        }
    }

    fn conflicts(&self, ip: Ipv4Address, port: u16) -> bool {
        self.by_port.get(&port).is_some_and(|list| {
            list.iter().any(|&i| {
                let l = self.slots[i as usize]
                    .socket
                    .as_ref()
                    .map(|s| *s.local.ip());
                l.is_some_and(|l| l.is_unspecified() || ip.is_unspecified() || l == ip)
            })
        })
    }

    fn pick_port(&mut self, ip: Ipv4Address, remote: Option<SocketAddrV4>) -> Result<u16> {
        let (lo, hi) = self.cfg.ephemeral_ports;
        let span = u32::from(hi - lo) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port >= hi { lo } else { port + 1 };
            if let (Some(f), Some(r)) = (&self.port_filter, remote) {
                let lip = if ip.is_unspecified() {
                    self.locals[0]
                } else {
                    ip
                };
                if !f(lip, port, *r.ip(), r.port()) {
                    continue;
                }
            }
            if !self.conflicts(ip, port) {
                return Ok(port);
            }
        }
        Err(UdpError::AddrNotAvailable)
    }

    /// Opens a socket bound to `local` (port 0: an ephemeral port; address
    /// 0.0.0.0: every local address).
    ///
    /// # Errors
    /// `AddrNotAvailable` (not our address, no free port), `AddrInUse`,
    /// `NoResources` (table full).
    pub fn bind(&mut self, local: SocketAddrV4) -> Result<UdpId> {
        let ip = *local.ip();
        if !ip.is_unspecified() && !self.locals.contains(&ip) {
            return Err(UdpError::AddrNotAvailable);
        }
        if self.free.is_empty() && self.slots.len() >= self.cfg.max_sockets {
            return Err(UdpError::NoResources);
        }
        let auto_port = local.port() == 0;
        let port = if auto_port {
            self.pick_port(ip, None)?
        } else if self.conflicts(ip, local.port()) {
            return Err(UdpError::AddrInUse)?;
        } else {
            local.port()
        };
        let socket = Socket {
            local: SocketAddrV4::new(ip, port),
            remote: None,
            auto_port,
            broadcast: false,
            ttl: self.default_ttl,
            error: None,
            queue: RecvQueue::new(self.cfg.recv_datagrams, self.cfg.recv_bytes),
            read_waker: None,
            write_waker: None,
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize].socket = Some(socket);
                i
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    socket: Some(socket),
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.by_port.entry(port).or_default().push(index);
        Ok(UdpId {
            index,
            generation: self.slots[index as usize].generation,
        })
    }

    fn unlink(&mut self, index: u32, port: u16) {
        if let Some(list) = self.by_port.get_mut(&port) {
            list.retain(|&i| i != index);
            if list.is_empty() {
                self.by_port.remove(&port);
            }
        }
    }

    /// Sets the remote: only its datagrams are received, and `send` goes
    /// there. An auto-bound socket that has not sent yet moves to a port
    /// whose replies reach this core.
    ///
    /// # Errors
    /// `InvalidSocket`; `AddrNotAvailable` when no such port is free.
    pub fn connect(&mut self, id: UdpId, remote: SocketAddrV4) -> Result<()> {
        let s = self.get(id)?;
        let (auto, local) = (s.auto_port, s.local);
        if auto && self.port_filter.is_some() {
            let old = local.port();
            self.unlink(id.index, old);
            let port = match self.pick_port(*local.ip(), Some(remote)) {
                Ok(p) => p,
                Err(e) => {
                    self.by_port.entry(old).or_default().push(id.index);
                    return Err(e);
                }
            };
            self.by_port.entry(port).or_default().push(id.index);
            self.get_mut(id)?.local.set_port(port);
        }
        let s = self.get_mut(id)?;
        s.remote = Some(remote);
        s.error = None;
        Ok(())
    }

    /// Closes the socket; waiting datagrams are dropped.
    pub fn close(&mut self, id: UdpId) -> Result<()> {
        let port = self.get(id)?.local.port();
        self.unlink(id.index, port);
        let slot = &mut self.slots[id.index as usize];
        if let Some(s) = slot.socket.take() {
            if s.write_waker.is_some() {
                self.write_blocked = self.write_blocked.saturating_sub(1);
            }
        }
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        Ok(())
    }

    /// The bound address (0.0.0.0 when bound to every address).
    pub fn local_addr(&self, id: UdpId) -> Result<SocketAddrV4> {
        Ok(self.get(id)?.local)
    }

    /// The connected remote.
    ///
    /// # Errors
    /// `NotConnected` when there is none.
    pub fn peer_addr(&self, id: UdpId) -> Result<SocketAddrV4> {
        self.get(id)?.remote.ok_or(UdpError::NotConnected)
    }

    /// `SO_BROADCAST`.
    pub fn set_broadcast(&mut self, id: UdpId, on: bool) -> Result<()> {
        self.get_mut(id)?.broadcast = on;
        Ok(())
    }

    /// Whether broadcast sends are allowed.
    pub fn broadcast(&self, id: UdpId) -> Result<bool> {
        Ok(self.get(id)?.broadcast)
    }

    /// `IP_TTL` of the datagrams sent.
    pub fn set_ttl(&mut self, id: UdpId, ttl: u8) -> Result<()> {
        self.get_mut(id)?.ttl = ttl;
        Ok(())
    }

    /// The TTL of the datagrams sent.
    pub fn ttl(&self, id: UdpId) -> Result<u8> {
        Ok(self.get(id)?.ttl)
    }

    /// Takes the pending error (an ICMP error on a connected socket).
    pub fn take_error(&mut self, id: UdpId) -> Result<Option<UdpError>> {
        Ok(self.get_mut(id)?.error.take())
    }

    /// Receives (or with `peek`, looks at) the oldest datagram: bytes
    /// copied (the rest of a longer datagram is lost, as with `recv` on
    /// Linux, unless peeking), its whole length, its source.
    ///
    /// # Errors
    /// A pending ICMP error first; `WouldBlock` when the queue is empty.
    pub fn recv_from(
        &mut self,
        id: UdpId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<(usize, usize, SocketAddrV4)> {
        let s = self.get_mut(id)?;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        s.queue.pop(buf, peek).ok_or(UdpError::WouldBlock)
    }

    /// Datagrams waiting.
    pub fn recv_queue(&self, id: UdpId) -> Result<usize> {
        Ok(self.get(id)?.queue.len())
    }

    /// True when a receive would not block (a datagram or an error).
    pub fn is_readable(&self, id: UdpId) -> bool {
        self.get(id)
            .map_or(true, |s| !s.queue.is_empty() || s.error.is_some())
    }

    /// Registers the waker woken by the next datagram or error.
    pub fn register_read_waker(&mut self, id: UdpId, waker: &Waker) -> Result<()> {
        let s = self.get_mut(id)?;
        match &mut s.read_waker {
            Some(w) if w.will_wake(waker) => {}
            w => *w = Some(waker.clone()),
        }
        Ok(())
    }

    /// Registers the waker woken when frame buffers free up after a send
    /// found none.
    pub fn register_write_waker(&mut self, id: UdpId, waker: &Waker) -> Result<()> {
        let s = self.get_mut(id)?;
        let first = s.write_waker.is_none();
        s.write_waker = Some(waker.clone());
        if first {
            self.write_blocked += 1;
        }
        Ok(())
    }

    /// True when some sender waits for frame buffers.
    pub fn has_write_waiters(&self) -> bool {
        self.write_blocked > 0
    }

    /// Makes every sender waiting for frame buffers due (bounded by the
    /// table): see [`take_wakes`](Self::take_wakes).
    pub fn wake_writers(&mut self) {
        if self.write_blocked == 0 {
            return;
        }
        for slot in &mut self.slots {
            if let Some(w) = slot.socket.as_mut().and_then(|s| s.write_waker.take()) {
                self.due.push(w);
            }
        }
        self.write_blocked = 0;
    }

    /// Moves every due waker (readers with a datagram or an error, writers
    /// with buffers again) to the end of `out`, to be woken after the
    /// caller's borrow of the table ends.
    pub fn take_wakes(&mut self, out: &mut Vec<Waker>) {
        self.due.move_into(out);
    }

    /// True when some waker is due.
    pub fn has_wakes(&self) -> bool {
        !self.due.is_empty()
    }

    /// Where a datagram from the socket goes and from which address:
    /// `(source address, source port, destination, ttl)`.
    ///
    /// # Errors
    /// A pending ICMP error; `NotConnected` (no `to` and no remote);
    /// `PermissionDenied` (broadcast not enabled); `MessageTooLong`.
    pub fn prepare_send(
        &mut self,
        id: UdpId,
        to: Option<SocketAddrV4>,
        len: usize,
        ours: Ipv4Address,
        subnet_broadcast: Option<Ipv4Address>,
    ) -> Result<(Ipv4Address, u16, SocketAddrV4, u8)> {
        let s = self.get_mut(id)?;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let dst = match to.or(s.remote) {
            Some(d) => d,
            None => return Err(UdpError::NotConnected),
        };
        if len > MAX_PAYLOAD {
            return Err(UdpError::MessageTooLong);
        }
        let bcast = dst.ip().is_broadcast() || Some(*dst.ip()) == subnet_broadcast;
        if bcast && !s.broadcast {
            return Err(UdpError::PermissionDenied);
        }
        if dst.port() == 0 {
            return Err(UdpError::AddrNotAvailable);
        }
        let src = if !s.local.ip().is_unspecified() {
            *s.local.ip()
        } else if dst.ip().is_loopback() {
            Ipv4Address::LOCALHOST
        } else {
            ours
        };
        Ok((src, s.local.port(), dst, s.ttl))
    }

    /// Marks that the socket has sent (its port is now fixed).
    pub fn sent(&mut self, id: UdpId) {
        if let Ok(s) = self.get_mut(id) {
            s.auto_port = false;
        }
        self.stats.tx_datagrams += 1;
    }

    fn lookup(
        &self,
        src: Ipv4Address,
        sport: u16,
        dst: Ipv4Address,
        dport: u16,
        broadcast: bool,
    ) -> Option<u32> {
        let list = self.by_port.get(&dport)?;
        let mut wildcard = None;
        for &i in list {
            let Some(s) = self.slots[i as usize].socket.as_ref() else {
                continue;
            };
            let ip = *s.local.ip();
            if !(ip.is_unspecified() || ip == dst || broadcast) {
                continue;
            }
            match s.remote {
                Some(r) if *r.ip() == src && r.port() == sport => return Some(i),
                Some(_) => {}
                None => wildcard = wildcard.or(Some(i)),
            }
        }
        wildcard
    }

    /// Delivers a datagram (already checked) to its socket's queue and
    /// wakes the reader.
    pub fn input(
        &mut self,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        broadcast: bool,
        data: &[u8],
    ) -> Delivered {
        let Some(i) = self.lookup(*src.ip(), src.port(), *dst.ip(), dst.port(), broadcast) else {
            self.stats.no_socket += 1;
            return Delivered::NoSocket;
        };
        let s = self.slots[i as usize]
            .socket
            .as_mut()
            .expect("indexed sockets are open");
        if !s.queue.push(src, data) {
            self.stats.rx_queue_full += 1;
            return Delivered::QueueFull;
        }
        self.stats.rx_datagrams += 1;
        if let Some(w) = s.read_waker.take() {
            self.due.push(w);
        }
        Delivered::Queued
    }

    /// Counts a datagram dropped for a bad checksum or header.
    pub fn count_bad(&mut self) {
        self.stats.bad_datagrams += 1;
    }

    /// An ICMP error about a datagram we sent from `local` to `remote`:
    /// kept on the connected socket of that 4-tuple (if any) for its next
    /// operation. Returns whether a socket took it.
    pub fn icmp_error(
        &mut self,
        kind: IcmpErrorKind,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> bool {
        let err = match kind {
            IcmpErrorKind::Unreachable { code } => match code {
                unreachable::PORT | unreachable::PROTOCOL => UdpError::ConnectionRefused,
                0 | 6 | 9 | 11 => UdpError::NetworkUnreachable,
                _ => UdpError::HostUnreachable,
            },
            // Not reported to UDP sockets (no IP_RECVERR here).
            IcmpErrorKind::FragNeeded { .. } | IcmpErrorKind::TimeExceeded { .. } => return false,
        };
        let Some(list) = self.by_port.get(&local.port()) else {
            return false;
        };
        for &i in list {
            let Some(s) = self.slots[i as usize].socket.as_mut() else {
                continue;
            };
            let ip = *s.local.ip();
            if s.remote == Some(remote) && (ip.is_unspecified() || ip == *local.ip()) {
                s.error = Some(err);
                self.stats.icmp_errors += 1;
                if let Some(w) = s.read_waker.take() {
                    self.due.push(w);
                }
                return true;
            }
        }
        false
    }

    /// True when some socket holds `port` (the interface answers
    /// datagrams to other ports with port unreachable itself).
    pub fn port_bound(&self, port: u16) -> bool {
        self.by_port.contains_key(&port)
    }
}

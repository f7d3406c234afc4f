//! The sans-IO socket API the runtime calls on a [`TcpStack`]: listen,
//! accept, connect, send, recv, shutdown, close, abort, options, wakers.
//!
//! Every call is a plain function call on the core's stack: `send` appends
//! to the send buffer and queues the TCB on the send list, `recv` copies out
//! of the receive buffer; neither touches the device. Errors are the small
//! [`TcpError`] enum, which the runtime maps to `std::io::ErrorKind`.

use super::accept_queue::NIL;
use super::effects::Effects;
use super::events::FlowEvents;
use super::flow_table::FlowKey;
use super::stack::{PortFilter, TcpConfig, TcpStack};
use super::state::State;
use super::tx_list::TxKind;
/// Re-exported from [`types`](super::types), where they live.
pub(crate) use super::types::{Result, TcpError};
use super::types::{SocketId, TcbFlags};
use crate::time::{Duration, Instant};
use crate::wire::ipv4::Ipv4Address;
use core::task::Waker;
use std::net::SocketAddrV4;

impl TcpStack {
    fn index_of(&self, id: SocketId) -> Result<u32> {
        self.tcbs
            .get(id)
            .map(|_| id.index())
            .ok_or(TcpError::InvalidSocket)
    }

    /// The directed broadcast addresses of our subnets, which the engine
    /// cannot derive from its addresses alone: `connect` refuses them
    /// (RFC 9293 MUST-46).
    pub fn set_broadcast_addrs(&mut self, addrs: &[Ipv4Address]) {
        self.broadcasts.clear();
        self.broadcasts.extend_from_slice(addrs);
    }

    /// Installs the filter that active opens use to pick ephemeral ports
    /// (RSS-aware: accept only tuples whose replies reach this core).
    pub fn set_port_filter(&mut self, filter: PortFilter) {
        self.port_filter = Some(filter);
    }

    /// Opens a listener on `local` (0.0.0.0 for every local address).
    ///
    /// # Errors
    /// `AddrNotAvailable` (not a local address), `InvalidInput` (port 0),
    /// `AddrInUse`, `NoResources`.
    pub fn listen(&mut self, local: SocketAddrV4, backlog: usize) -> Result<SocketId> {
        let ip = *local.ip();
        if !ip.is_unspecified() && !self.is_local(ip) {
            return Err(TcpError::AddrNotAvailable);
        }
        if local.port() == 0 {
            return Err(TcpError::InvalidInput);
        }
        if self.listeners.conflicts(ip, local.port()) {
            return Err(TcpError::AddrInUse);
        }
        let id = self.tcbs.alloc().ok_or(TcpError::NoResources)?;
        let t = self.tcbs.at_mut(id.index());
        t.key = FlowKey::new(ip, local.port(), Ipv4Address::UNSPECIFIED, 0);
        t.head.state = State::Listen;
        t.head.flags.insert(TcbFlags::USER_OWNED);
        let backlog = u32::try_from(backlog.clamp(1, self.cfg.max_connections)).unwrap_or(u32::MAX);
        t.listen.queue = self.queues.open(backlog);
        self.listeners.insert(ip, local.port(), id);
        Ok(id)
    }

    /// Takes the next established connection from a listener's queue.
    ///
    /// # Errors
    /// `WouldBlock` when none is ready; `InvalidSocket`; `InvalidInput`
    /// when `listener` is not listening.
    pub fn accept(&mut self, listener: SocketId) -> Result<SocketId> {
        let li = self.index_of(listener)?;
        let l = self.tcbs.at(li);
        if l.head.state != State::Listen {
            return Err(TcpError::InvalidInput);
        }
        let head = l.listen.next;
        if head == NIL {
            return Err(TcpError::WouldBlock);
        }
        let queue = l.listen.queue;
        let c = self.tcbs.at_mut(head);
        let next = c.listen.next;
        c.listen.next = NIL;
        c.head.flags.remove(TcbFlags::IN_ACCEPT_QUEUE);
        c.head.flags.insert(TcbFlags::USER_OWNED);
        let id = c.id(head);
        let closed = c.head.state == State::Closed;
        self.tcbs.at_mut(li).listen.next = next;
        let q = self.queues.get_mut(queue);
        if next == NIL {
            q.tail = NIL;
        }
        q.len -= 1;
        if closed {
            // Reset before it was accepted: the user sees the error.
            self.event(head, FlowEvents::CLOSED | FlowEvents::ERROR);
        }
        Ok(id)
    }

    /// Opens a connection to `remote` (active open). Without `local`, the
    /// first local address and an ephemeral port that the port filter
    /// accepts (and that is not in use) are chosen.
    ///
    /// # Errors
    /// `InvalidInput` (unspecified remote, port 0), `AddrNotAvailable`
    /// (no port left, or `local` is not ours), `AddrInUse`, `NoResources`.
    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local: Option<SocketAddrV4>,
    ) -> Result<SocketId> {
        self.now = now;
        let rip = *remote.ip();
        // MUST-46 (RFC 9293 §3.9.1.1): no connection to a broadcast or
        // multicast address.
        if rip.is_unspecified()
            || rip.is_broadcast()
            || rip.is_multicast()
            || self.broadcasts.contains(&rip)
            || remote.port() == 0
        {
            return Err(TcpError::InvalidInput);
        }
        let lip = match local {
            Some(l) if !l.ip().is_unspecified() => {
                if !self.is_local(*l.ip()) {
                    return Err(TcpError::AddrNotAvailable);
                }
                *l.ip()
            }
            // To a loopback address, from the loopback address (as the
            // kernel's source address selection does).
            _ if rip.is_loopback() && self.is_local(Ipv4Address::LOCALHOST) => {
                Ipv4Address::LOCALHOST
            }
            _ => self.local_addrs[0],
        };
        let mut min_iss = None;
        let key = match local.map(|l| l.port()).filter(|&p| p != 0) {
            Some(port) => {
                let key = FlowKey::new(lip, port, rip, remote.port());
                if self.flow(&key).is_some() {
                    return Err(TcpError::AddrInUse);
                }
                if self.tw.get(&key).is_some() {
                    match self.reusable_time_wait(&key, now) {
                        Some(iss) => min_iss = Some(iss),
                        None => return Err(TcpError::AddrInUse),
                    }
                }
                key
            }
            None => {
                let (key, m) = self.pick_port(lip, rip, remote.port(), now)?;
                min_iss = m;
                key
            }
        };
        if self.tcbs.in_use() >= self.tcbs.capacity() {
            return Err(TcpError::NoResources);
        }
        if min_iss.is_some() {
            self.take_over_time_wait(&key);
        }
        let id = self.tcbs.alloc().ok_or(TcpError::NoResources)?;
        let index = id.index();
        if self.add_flow(key, index).is_err() {
            self.tcbs.free(id);
            return Err(TcpError::NoResources);
        }
        self.init_connection(index, key, now);
        let mut iss = self.isn.isn(
            now,
            key.local_ip,
            key.local_port,
            key.remote_ip,
            key.remote_port,
        );
        if let Some(m) = min_iss {
            if iss <= m {
                iss = m + 65536 * 2;
            }
        }
        let t = self.tcbs.at_mut(index);
        t.head.flags.insert(TcbFlags::USER_OWNED);
        t.head.flags.insert(TcbFlags::SYN_PENDING);
        if !self.cfg.window_scaling {
            t.receive.wscale = 0;
        }
        t.send.iss = iss;
        t.head.snd.una = iss;
        t.head.snd.nxt = iss;
        t.head.snd.max = iss;
        t.head.state = State::SynSent;
        self.queue(index, TxKind::Control);
        Ok(id)
    }

    /// A TIME-WAIT flow at `key` that a new active open may take over:
    /// returns the old SND.MAX (the new ISS must be above it).
    fn reusable_time_wait(&self, key: &FlowKey, now: Instant) -> Option<crate::wire::SeqNumber> {
        if !self.cfg.time_wait_reuse {
            return None;
        }
        let e = self.tw.get(key)?;
        // As Linux's tcp_tw_reuse: only with timestamps (PAWS protects the
        // new incarnation) and after one second in TIME-WAIT.
        let entered = e.deadline - self.cfg.msl * 2;
        if !e.timestamps || now.saturating_duration_since(entered) < Duration::from_secs(1) {
            return None;
        }
        Some(e.snd_nxt)
    }

    fn pick_port(
        &mut self,
        lip: Ipv4Address,
        rip: Ipv4Address,
        rport: u16,
        now: Instant,
    ) -> Result<(FlowKey, Option<crate::wire::SeqNumber>)> {
        let (lo, hi) = self.cfg.ephemeral_ports;
        let span = u32::from(hi - lo) + 1;
        let mut fallback = None;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port >= hi { lo } else { port + 1 };
            if let Some(f) = &self.port_filter {
                if !f(lip, port, rip, rport) {
                    continue;
                }
            }
            if self.listeners.conflicts(lip, port) {
                continue;
            }
            let key = FlowKey::new(lip, port, rip, rport);
            if self.flow(&key).is_some() {
                continue;
            }
            if self.tw.get(&key).is_none() {
                return Ok((key, None));
            }
            if fallback.is_none() {
                if let Some(iss) = self.reusable_time_wait(&key, now) {
                    fallback = Some((key, Some(iss)));
                }
            }
        }
        fallback.ok_or(TcpError::AddrNotAvailable)
    }

    /// Queues `data` for sending; returns how many bytes were taken.
    ///
    /// # Errors
    /// `WouldBlock` when the send buffer (or the pool) is full;
    /// `BrokenPipe` after shutdown or close; the connection's error once it
    /// failed; `NotConnected` on a listener.
    pub fn send(&mut self, id: SocketId, data: &[u8]) -> Result<usize> {
        let index = self.index_of(id)?;
        let (t, mut cx) = self.split(index);
        let mut fx = Effects::default();
        let r = t.send(&mut cx, data, &mut fx);
        self.apply(index, fx);
        r
    }

    /// Copies received bytes into `buf`.
    ///
    /// # Errors
    /// `WouldBlock` when nothing is buffered and the peer has not closed;
    /// the connection's error after a reset or timeout; `NotConnected` on a
    /// listener. `Ok(0)` is end of stream (the peer's FIN).
    pub fn recv(&mut self, id: SocketId, buf: &mut [u8]) -> Result<usize> {
        let index = self.index_of(id)?;
        if let Some(r) = self.tcbs.at(index).nothing_to_read() {
            return r;
        }
        let (t, mut cx) = self.split(index);
        let mut fx = Effects::default();
        let n = t.recv(&mut cx, buf, &mut fx);
        self.apply(index, fx);
        Ok(n)
    }

    /// Copies received bytes into `buf` without consuming them: the next
    /// [`recv`](Self::recv) returns them again. Opens no window (nothing is
    /// consumed).
    ///
    /// # Errors
    /// As [`recv`](Self::recv): `WouldBlock` when nothing is buffered and
    /// the peer has not closed; the connection's error; `NotConnected` on a
    /// listener. `Ok(0)` is end of stream.
    pub fn peek(&self, id: SocketId, buf: &mut [u8]) -> Result<usize> {
        let t = self.tcbs.get(id).ok_or(TcpError::InvalidSocket)?;
        t.peek(&self.pool, buf)
    }

    /// Bytes ready to read.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn recv_queue(&self, id: SocketId) -> Result<usize> {
        Ok(self
            .tcbs
            .get(id)
            .ok_or(TcpError::InvalidSocket)?
            .rcvbuf
            .len())
    }

    /// Bytes queued for sending (unacknowledged included).
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn send_queue(&self, id: SocketId) -> Result<usize> {
        Ok(self
            .tcbs
            .get(id)
            .ok_or(TcpError::InvalidSocket)?
            .sndbuf
            .len())
    }

    /// True when `recv` would not return `WouldBlock`.
    pub fn is_readable(&self, id: SocketId) -> bool {
        self.tcbs.get(id).is_some_and(|t| t.readable())
    }

    /// True when `send` would not return `WouldBlock`.
    pub fn is_writable(&self, id: SocketId) -> bool {
        self.tcbs.get(id).is_some_and(|t| t.writable())
    }

    /// Closes the sending direction: a FIN follows the queued data.
    ///
    /// # Errors
    /// `InvalidSocket`; `NotConnected` on a listener.
    pub fn shutdown_write(&mut self, id: SocketId) -> Result<()> {
        let index = self.index_of(id)?;
        let mut fx = Effects::default();
        let r = self.tcbs.at_mut(index).shutdown_write(&mut fx);
        self.apply(index, fx);
        r
    }

    /// Closes the socket gracefully; its slot is released once the
    /// connection has fully ended. A listener drops its queued
    /// connections (with RSTs). Unread received data makes this an abort
    /// (RFC 2525 §2.17), as in Linux.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn close(&mut self, id: SocketId) -> Result<()> {
        let index = self.index_of(id)?;
        let t = self.tcbs.at_mut(index);
        match t.head.state {
            State::Listen => {
                t.let_go();
                let mut c = t.listen.next;
                let half_open = self.queues.get(t.listen.queue).syn_count;
                self.listeners.remove(id);
                // Un-accepted children (established, in the accept queue):
                // RST each, as Linux's `inet_csk_listen_stop`.
                while c != NIL {
                    let ct = self.tcbs.at_mut(c);
                    let next = ct.listen.next;
                    ct.listen.next = NIL;
                    ct.head.flags.remove(TcbFlags::IN_ACCEPT_QUEUE);
                    ct.head.flags.insert(TcbFlags::USER_CLOSED);
                    if ct.head.state == State::Closed {
                        self.free_socket(c);
                    } else {
                        self.stats.listener_children_reset += 1;
                        self.abort_index(c);
                    }
                    c = next;
                }
                // Half-open children (SYN-RECEIVED) hold no list of their
                // own: one pass over the slab, done at close only.
                if half_open > 0 {
                    let children: Vec<u32> = self
                        .tcbs
                        .ids()
                        .map(|c| c.index())
                        .filter(|&c| {
                            let ct = self.tcbs.at(c);
                            ct.listen.parent == Some(id) && ct.head.state == State::SynReceived
                        })
                        .collect();
                    for c in children {
                        self.tcbs.at_mut(c).head.flags.insert(TcbFlags::USER_CLOSED);
                        self.stats.listener_children_reset += 1;
                        self.abort_index(c);
                    }
                }
                self.free_socket(index);
            }
            State::Closed => {
                t.let_go();
                self.free_socket(index);
            }
            _ => {
                let now = self.now;
                let (t, mut cx) = self.split(index);
                let mut fx = Effects::default();
                t.close(&mut cx, now, &mut fx);
                self.apply(index, fx);
            }
        }
        Ok(())
    }

    /// Resets the connection (RST) and releases the socket at once.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn abort(&mut self, id: SocketId) -> Result<()> {
        let index = self.index_of(id)?;
        if self.tcbs.at(index).head.state == State::Listen {
            return self.close(id);
        }
        self.abort_and_free(index);
        Ok(())
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn set_nodelay(&mut self, id: SocketId, nodelay: bool) -> Result<()> {
        let index = self.index_of(id)?;
        let t = self.tcbs.at_mut(index);
        if nodelay {
            t.head.flags.insert(TcbFlags::NODELAY);
            if !t.sndbuf.is_empty() && t.head.state.is_synchronized() {
                self.queue(index, TxKind::Send);
            }
        } else {
            t.head.flags.remove(TcbFlags::NODELAY);
        }
        Ok(())
    }

    /// Nagle's algorithm is off.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn nodelay(&self, id: SocketId) -> Result<bool> {
        Ok(self
            .tcbs
            .get(id)
            .ok_or(TcpError::InvalidSocket)?
            .has(TcbFlags::NODELAY))
    }

    /// The MSS the connection sends with now (the peer's MSS, lowered by
    /// a learned path MTU).
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn send_mss(&self, id: SocketId) -> Result<u16> {
        Ok(self.tcbs.get(id).ok_or(TcpError::InvalidSocket)?.send.mss)
    }

    /// Turns keepalive on or off (timing from [`TcpConfig::keepalive`]).
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn set_keepalive(&mut self, id: SocketId, on: bool) -> Result<()> {
        let index = self.index_of(id)?;
        let now = self.now;
        let t = self.tcbs.at_mut(index);
        if on {
            t.head.flags.insert(TcbFlags::KEEPALIVE);
            if !t.opts.has_keepalive_timing() {
                t.opts.set_keepalive(&self.cfg.keepalive);
            }
            if matches!(t.head.state, State::Established | State::CloseWait) {
                self.arm_keepalive(index, now);
            }
        } else {
            t.head.flags.remove(TcbFlags::KEEPALIVE);
        }
        Ok(())
    }

    /// Keepalive is on.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn keepalive(&self, id: SocketId) -> Result<bool> {
        Ok(self
            .tcbs
            .get(id)
            .ok_or(TcpError::InvalidSocket)?
            .has(TcbFlags::KEEPALIVE))
    }

    /// This socket's keepalive timing.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn keepalive_timing(&self, id: SocketId) -> Result<super::stack::KeepaliveConfig> {
        let t = self.tcbs.get(id).ok_or(TcpError::InvalidSocket)?;
        if !t.opts.has_keepalive_timing() {
            return Ok(self.cfg.keepalive);
        }
        Ok(t.opts.keepalive())
    }

    /// Sets this socket's keepalive timing (idle time, probe interval, probe
    /// count); [`set_keepalive`](Self::set_keepalive) turns it on. Times are
    /// kept in whole milliseconds, rounded up, and at most `u32::MAX` ms
    /// (about 49.7 days; Linux caps `TCP_KEEPIDLE` at about 9 hours).
    ///
    /// # Errors
    /// `InvalidSocket`; `InvalidInput` for a zero idle time, interval or
    /// count.
    pub fn set_keepalive_timing(
        &mut self,
        id: SocketId,
        timing: super::stack::KeepaliveConfig,
    ) -> Result<()> {
        if timing.idle.is_zero() || timing.interval.is_zero() || timing.count == 0 {
            return Err(TcpError::InvalidInput);
        }
        let index = self.index_of(id)?;
        let t = self.tcbs.at_mut(index);
        t.opts.set_keepalive(&timing);
        Ok(())
    }

    /// Sets the send buffer limit, bytes.
    ///
    /// # Errors
    /// `InvalidSocket`; `InvalidInput` for 0.
    pub fn set_send_buffer(&mut self, id: SocketId, bytes: usize) -> Result<()> {
        if bytes == 0 || bytes > (1 << 30) {
            return Err(TcpError::InvalidInput);
        }
        let index = self.index_of(id)?;
        self.tcbs.at_mut(index).send.limit = bytes as u32;
        Ok(())
    }

    /// Sets the receive buffer limit, bytes (before connecting, it also
    /// sets the window scale we offer).
    ///
    /// # Errors
    /// `InvalidSocket`; `InvalidInput` below 1024.
    pub fn set_recv_buffer(&mut self, id: SocketId, bytes: usize) -> Result<()> {
        if !(1024..=(1 << 30)).contains(&bytes) {
            return Err(TcpError::InvalidInput);
        }
        let index = self.index_of(id)?;
        let t = self.tcbs.at_mut(index);
        t.receive.limit = bytes as u32;
        if t.head.state == State::SynSent && t.has(TcbFlags::SYN_PENDING) && self.cfg.window_scaling
        {
            t.receive.wscale = TcpConfig::wscale_for(bytes);
        }
        Ok(())
    }

    /// Our address.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn local_addr(&self, id: SocketId) -> Result<SocketAddrV4> {
        let t = self.tcbs.get(id).ok_or(TcpError::InvalidSocket)?;
        Ok(SocketAddrV4::new(t.key.local_ip, t.key.local_port))
    }

    /// The peer's address.
    ///
    /// # Errors
    /// `InvalidSocket`; `NotConnected` on a listener.
    pub fn peer_addr(&self, id: SocketId) -> Result<SocketAddrV4> {
        let t = self.tcbs.get(id).ok_or(TcpError::InvalidSocket)?;
        if t.head.state == State::Listen {
            return Err(TcpError::NotConnected);
        }
        Ok(SocketAddrV4::new(t.key.remote_ip, t.key.remote_port))
    }

    /// The connection state.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn state(&self, id: SocketId) -> Result<State> {
        Ok(self.tcbs.get(id).ok_or(TcpError::InvalidSocket)?.head.state)
    }

    /// Registers the waker to wake on readable / acceptable / connected /
    /// closed / error.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn register_read_waker(&mut self, id: SocketId, waker: &Waker) -> Result<()> {
        let index = self.index_of(id)?;
        self.tcbs.at_mut(index).wakers.register_read(waker);
        Ok(())
    }

    /// Registers the waker to wake on writable / connected / closed / error.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn register_write_waker(&mut self, id: SocketId, waker: &Waker) -> Result<()> {
        let index = self.index_of(id)?;
        self.tcbs.at_mut(index).wakers.register_write(waker);
        Ok(())
    }

    /// Takes the pending error of the connection, if any.
    ///
    /// # Errors
    /// `InvalidSocket`.
    pub fn take_error(&mut self, id: SocketId) -> Result<Option<TcpError>> {
        let index = self.index_of(id)?;
        Ok(self.tcbs.at_mut(index).error.take())
    }
}

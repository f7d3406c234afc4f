//! ICMP errors delivered to TCP (RFC 1122 §4.2.3.9, RFC 1191, RFC 5927),
//! the Linux way.
//!
//! The interface hands over a [`TcpIcmpError`]: the quoted 4-tuple and
//! sequence number. The error is acted on only when the 4-tuple is a
//! connection and the sequence number lies in SND.UNA..SND.MAX (RFC 5927
//! §4.1: a blind attacker cannot guess it), else it is dropped and
//! counted. Then:
//!
//! * Fragmentation Needed (RFC 1191): the path MTU to the peer is lowered
//!   in the per-core [`PmtuCache`](crate::iface::PmtuCache) (clamped to its
//!   minimum; only ever lowered by ICMP; aged out after its timeout), the
//!   connection's send MSS shrinks to fit, and what was in flight is sent
//!   again in segments of the new size (Linux's `tcp_simple_retransmit`,
//!   without a congestion response: the loss was no congestion). New
//!   connections to that peer start with the smaller MSS.
//! * A hard error (port or protocol unreachable, administratively
//!   prohibited, …; see [`IcmpErrorKind::is_hard`]) aborts a connection in
//!   SYN-SENT (port and protocol unreachable give ECONNREFUSED, others
//!   EHOSTUNREACH or ENETUNREACH), as Linux does.
//! * Everything else is a soft error: remembered, reported instead of
//!   "timed out" should the connection time out.

use super::effects::{Cx, Effects, End};
use super::flow_table::FlowKey;
use super::stack::TcpStack;
use super::state::State;
use super::tcb::Connection;
use super::tx_list::TxKind;
use super::types::TcbFlags;
use super::types::TcpError;
use super::types::MIN_MSS;
use crate::iface::icmp_error::{IcmpErrorKind, TcpIcmpError};
use crate::time::Instant;
use crate::wire::icmp::unreachable;
use crate::wire::ipv4::Ipv4Address;

/// IPv4 and TCP headers without options.
const HEADERS: usize = 40;

/// The send MSS a path MTU of `pmtu` allows a connection using `t`'s
/// options (timestamps take 12 bytes of every segment).
fn mss_for(t: &Connection, pmtu: u16) -> u16 {
    let ts = if t.has(TcbFlags::TIMESTAMPS) { 12 } else { 0 };
    let mss = usize::from(pmtu).saturating_sub(HEADERS + ts);
    (mss as u16).max(MIN_MSS)
}

/// Lowers `t`'s send MSS to what a known path MTU allows (a new
/// connection, once the peer's MSS is known).
pub(crate) fn clamp_mss(t: &mut Connection, pmtu: Option<u16>) {
    if let Some(pmtu) = pmtu {
        let mss = mss_for(t, pmtu);
        if mss < t.send.mss {
            t.send.mss = mss;
            t.cc.set_mss(usize::from(mss));
        }
    }
}

impl TcpStack {
    /// Handles an ICMP error about one of our segments (see the module
    /// docs). Never panics; every error not acted on is counted.
    pub fn icmp_error(&mut self, now: Instant, err: &TcpIcmpError) {
        self.now = now;
        let key = FlowKey::new(err.local, err.local_port, err.remote, err.remote_port);
        let Some(index) = self.flow(&key) else {
            self.stats.drops.icmp_no_socket += 1;
            return;
        };
        let t = self.tcbs.at(index);
        let state = t.head.state;
        if matches!(state, State::Closed | State::Listen | State::TimeWait) {
            self.stats.drops.icmp_no_socket += 1;
            return;
        }
        // RFC 5927 §4.1: only an error about data in flight.
        if !err.seq.in_range(t.head.snd.una, t.head.snd.max) {
            self.stats.drops.icmp_out_of_window += 1;
            return;
        }
        self.stats.icmp_errors += 1;
        // The per-core cache learns the path MTU whatever the connection
        // makes of it.
        let pmtu = match err.kind {
            IcmpErrorKind::FragNeeded { mtu } => Some(self.pmtu.update(err.remote, mtu, now)),
            _ => None,
        };
        let (t, mut cx) = self.split(index);
        let mut fx = Effects::default();
        t.icmp_error(&mut cx, err.kind, pmtu, &mut fx);
        self.apply(index, fx);
    }

    /// The path MTU this core knows for `remote`, if lower than the
    /// interface's and not aged out.
    pub fn path_mtu(&self, remote: Ipv4Address, now: Instant) -> Option<u16> {
        self.pmtu.lookup(remote, now)
    }
}

/// The error a soft ICMP error reports if the connection later times out
/// (Linux's `sk_err_soft`).
fn soft_error(kind: IcmpErrorKind) -> TcpError {
    match kind {
        IcmpErrorKind::Unreachable {
            code: unreachable::NET,
        } => TcpError::NetworkUnreachable,
        IcmpErrorKind::Unreachable {
            code: unreachable::PORT | unreachable::PROTOCOL,
        } => TcpError::ConnectionRefused,
        _ => TcpError::HostUnreachable,
    }
}

impl Connection {
    /// An ICMP error about data of ours in flight (the stack checked the
    /// 4-tuple and the sequence number), with the path MTU the cache now
    /// holds for a Fragmentation Needed. See the module docs.
    fn icmp_error(
        &mut self,
        cx: &mut Cx<'_>,
        kind: IcmpErrorKind,
        pmtu: Option<u16>,
        fx: &mut Effects,
    ) {
        match kind {
            IcmpErrorKind::FragNeeded { .. } => {
                if let Some(pmtu) = pmtu {
                    self.path_mtu_lowered(cx, pmtu, fx);
                }
            }
            IcmpErrorKind::Unreachable { code }
                if kind.is_hard() && self.head.state == State::SynSent =>
            {
                let e = match code {
                    unreachable::PORT | unreachable::PROTOCOL => TcpError::ConnectionRefused,
                    // Network unknown, network administratively prohibited.
                    6 | 9 => TcpError::NetworkUnreachable,
                    _ => TcpError::HostUnreachable,
                };
                cx.stats.icmp_aborts += 1;
                fx.end(End::Closed(Some(e)));
            }
            kind => {
                cx.stats.icmp_soft_errors += 1;
                self.soft_error = Some(soft_error(kind));
            }
        }
    }

    /// RFC 1191 §6.4: the path to the peer carries at most `pmtu` bytes.
    fn path_mtu_lowered(&mut self, cx: &mut Cx<'_>, pmtu: u16, fx: &mut Effects) {
        let mss = mss_for(self, pmtu);
        if mss >= self.send.mss {
            // Already this small (an error about a segment sent before the
            // last shrink), or clamped up to what we use.
            return;
        }
        self.send.mss = mss;
        self.cc.set_mss(usize::from(mss));
        cx.stats.pmtu_shrinks += 1;
        if self.head.snd.una != self.head.snd.max && self.head.state != State::SynSent {
            // Every segment in flight may have been too large: send it all
            // again, cut to the new size (go back to SND.UNA; no RTT
            // sample from a retransmission, no congestion response).
            self.head.snd.nxt = self.head.snd.una;
            self.sampler.on_retransmit();
            fx.queue(TxKind::Send);
        }
    }
}

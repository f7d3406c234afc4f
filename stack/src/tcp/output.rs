//! Output: turning queued TCBs into segments (mTCP's `FlushTCPSendingBuffer`
//! and friends).
//!
//! [`TcpStack::dispatch`] drains, in priority order, the stateless replies
//! (RSTs to closed ports, cookie SYN-ACKs), the control list, the ACK list
//! and the send list, within a segment budget. Each TCB taken from a list
//! sends everything it may right now: SYN or SYN-ACK, a probe, a fast
//! retransmission, new data within min(SND.WND, cwnd) subject to Nagle and
//! sender SWS avoidance, the FIN, and a pure ACK only when an ACK is still
//! owed after that (a data segment carries the ACK otherwise).

use super::buffer::PoolView;
use super::effects::{Cx, Effects};
use super::sack::SegKind;
use super::stack::TcpConfig;
use super::stack::{Reply, TcpStack};
use super::state::State;
use super::tcb::Connection;
use super::timer::{Timer, WheelUpdate};
use super::tx_list::{ListFlags, TxKind};
use super::types::TcbFlags;
use crate::time::Instant;
use crate::wire::ipv4::Ipv4Address;
use crate::wire::tcp::{options_len, TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;

/// `emit` had no frame buffer left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocked;

/// The emit callback of [`TcpStack::dispatch`]: (source address,
/// destination address, segment) → whether a frame was available.
pub type Emit<'e> = dyn FnMut(Ipv4Address, Ipv4Address, &TcpRepr) -> bool + 'e;

/// The receive window we may offer now, in bytes from RCV.NXT.
pub(crate) fn rcv_space(t: &Connection, pool: PoolView) -> usize {
    let limit = t.receive.limit as usize;
    limit
        .saturating_sub(t.rcvbuf.len())
        .min(pool.window_bytes(t.rcvbuf.chunks()))
}

/// Works out the window field of an outgoing segment and records the right
/// edge it advertises (never moved left, RFC 9293 §3.8.6.2.2; opened only
/// by at least min(MSS, buffer/2), receiver SWS avoidance, §3.8.6.2.2).
pub(crate) fn advertise(t: &mut Connection, space: usize) -> u16 {
    let nxt = t.head.rcv.nxt;
    let cur = if t.receive.adv_edge > nxt {
        t.receive.adv_edge - nxt
    } else {
        0
    };
    let shift = if t.has(TcbFlags::WSCALE) {
        t.receive.wscale
    } else {
        0
    };
    let space = space.min(65535 << shift);
    let step = usize::from(t.receive.mss)
        .min(t.receive.limit as usize / 2)
        .max(1);
    let field = if space > cur && space - cur >= step {
        (space >> shift).min(65535)
    } else {
        // Keep the current edge (rounded up so it never moves left).
        cur.div_ceil(1 << shift).min(65535)
    };
    let real = field << shift;
    t.head.rcv.wnd = real as u32;
    let edge = nxt + real.min(i32::MAX as usize);
    if edge > t.receive.adv_edge {
        t.receive.adv_edge = edge;
    }
    field as u16
}

impl Connection {
    /// Builds the options of a non-SYN segment: timestamps and SACK blocks.
    fn data_options(&self, now: Instant) -> TcpOptions {
        let t = self;
        let mut o = TcpOptions::default();
        if t.has(TcbFlags::TIMESTAMPS) {
            o.timestamp = Some((TcpStack::ts_val(now, t.opts.ts_offset), t.receive.ts_recent));
        }
        if t.has(TcbFlags::SACK) && t.has_ooo() {
            let n = if o.timestamp.is_some() { 3 } else { 4 };
            for b in t.ooo().sack_blocks(t.head.rcv.nxt).take(n) {
                o.push_sack(b);
            }
        }
        o
    }

    /// Builds the options of our SYN or SYN-ACK.
    fn syn_options(&self, cfg: &TcpConfig, now: Instant) -> TcpOptions {
        let t = self;
        let mut o = TcpOptions {
            mss: Some(t.receive.mss),
            ..TcpOptions::default()
        };
        // An active opener offers what is configured; a passive one answers
        // with what was negotiated.
        let (ws, sack, ts) = if t.head.state == State::SynSent {
            (cfg.window_scaling, cfg.sack, cfg.timestamps)
        } else {
            (
                t.has(TcbFlags::WSCALE),
                t.has(TcbFlags::SACK),
                t.has(TcbFlags::TIMESTAMPS),
            )
        };
        if ws {
            o.window_scale = Some(t.receive.wscale);
        }
        o.sack_permitted = sack;
        if ts {
            let ecr = if t.head.state == State::SynSent {
                0
            } else {
                t.receive.ts_recent
            };
            o.timestamp = Some((TcpStack::ts_val(now, t.opts.ts_offset), ecr));
        }
        o
    }

    /// Sends what this connection may send now, within `budget`
    /// segments. Returns the segments emitted and whether `emit` ran out
    /// of frames.
    pub(crate) fn poll_output(
        &mut self,
        cx: &mut Cx<'_>,
        now: Instant,
        budget: usize,
        emit: &mut Emit<'_>,
        fx: &mut Effects,
    ) -> (usize, bool) {
        let pool_free = cx.pool.view();
        let mut n = 0;
        let state = self.head.state;
        let (src, dst) = {
            let k = &self.key;
            (k.local_ip, k.remote_ip)
        };

        // SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED).
        if matches!(state, State::SynSent | State::SynReceived) {
            let t = &mut *self;
            if state == State::SynReceived && t.has(TcbFlags::ACK_NOW) {
                // An ACK owed in SYN-RECEIVED is our SYN-ACK again.
                t.head.flags.remove(TcbFlags::ACK_NOW);
                t.head.flags.insert(TcbFlags::SYN_PENDING);
            }
            let t = &*self;
            if !t.has(TcbFlags::SYN_PENDING) {
                return (0, false);
            }
            let options = t.syn_options(cx.cfg, now);
            let t = &mut *self;
            let space = rcv_space(t, pool_free);
            let window = space.min(65535) as u16;
            if t.receive.adv_edge < t.head.rcv.nxt + usize::from(window) {
                t.receive.adv_edge = t.head.rcv.nxt + usize::from(window);
            }
            let syn_ack = state == State::SynReceived;
            let repr = TcpRepr {
                src_port: t.key.local_port,
                dst_port: t.key.remote_port,
                seq: t.send.iss,
                ack: if syn_ack {
                    t.head.rcv.nxt
                } else {
                    SeqNumber(0)
                },
                flags: if syn_ack {
                    TcpFlags::SYN | TcpFlags::ACK
                } else {
                    TcpFlags::SYN
                },
                window,
                urgent: 0,
                options,
                payload: &[],
            };
            if !emit(src, dst, &repr) {
                return (0, true);
            }
            if t.head.snd.max > t.send.iss + 1 || t.timers.retries > 0 {
                cx.stats.retransmits += 1;
            }
            t.head.flags.remove(TcbFlags::SYN_PENDING);
            t.head.snd.nxt = t.send.iss + 1;
            t.head.snd.max = t.head.snd.max.max(t.send.iss + 1);
            if syn_ack {
                t.receive.last_ack_sent = t.head.rcv.nxt;
            }
            if t.timers.deadline(Timer::Rto).is_none() {
                t.timers
                    .set(Timer::Rto, Some(now + t.rtt.rto()), &mut fx.wheel);
            }
            cx.stats.segs_out += 1;
            return (1, false);
        }
        if !state.is_synchronized() {
            return (0, false);
        }

        // A zero-window or keepalive probe: SEG.SEQ = SND.UNA - 1, no data,
        // which the peer finds unacceptable and answers with an ACK.
        if self.has(TcbFlags::PROBE) {
            let t = &mut *self;
            let options = t.data_options(now);
            let window = advertise(t, rcv_space(t, pool_free));
            let repr = TcpRepr {
                src_port: t.key.local_port,
                dst_port: t.key.remote_port,
                seq: t.head.snd.una - 1,
                ack: t.head.rcv.nxt,
                flags: TcpFlags::ACK,
                window,
                urgent: 0,
                options,
                payload: &[],
            };
            if !emit(src, dst, &repr) {
                return (n, true);
            }
            t.head.flags.remove(TcbFlags::PROBE);
            cx.stats.segs_out += 1;
            n += 1;
        }

        // Fast retransmission / partial ACK: the segment at SND.UNA, once.
        if self.has(TcbFlags::REXMIT_ONE) && n < budget {
            let t = &mut *self;
            t.head.flags.remove(TcbFlags::REXMIT_ONE);
            let una = t.head.snd.una;
            // What was sent, never topped up with new data past SND.MAX
            // (nor past the peer's right edge).
            let len = usize::from(t.send.mss).min(t.head.snd.max - una);
            match self.send_segment(cx, now, una, len, emit, fx) {
                Err(Blocked) => {
                    self.head.flags.insert(TcbFlags::REXMIT_ONE);
                    return (n, true);
                }
                Ok(Some(end)) => {
                    n += 1;
                    let t = &mut *self;
                    t.sampler.on_retransmit();
                    if t.has(TcbFlags::SACK) {
                        t.sb_mut().mark_retransmitted(end);
                    }
                }
                Ok(None) => {}
            }
        }

        let t = &*self;
        if t.has(TcbFlags::SACK) && t.cc.in_recovery() {
            // RFC 6675 §5 (C): while cwnd - pipe >= 1 SMSS, send what
            // NextSeg() picks: lost holes, new data, other holes, rescue.
            loop {
                if n >= budget {
                    fx.queue(TxKind::Send);
                    break;
                }
                let t = &*self;
                let (una, max) = (t.head.snd.una, t.head.snd.max);
                let mss = usize::from(t.send.mss);
                let pipe = t.sb().pipe(una, max, mss);
                if pipe + mss > t.cc.cwnd() {
                    break;
                }
                let in_flight = max - una;
                let unsent = t.sndbuf.len().saturating_sub(in_flight);
                let wnd_edge = una + (t.head.snd.wnd as usize).min(i32::MAX as usize);
                let room = if wnd_edge > max { wnd_edge - max } else { 0 };
                let fin_unsent = self.fin_allowed() && !t.has(TcbFlags::FIN_SENT);
                let sendable_new = unsent.min(room) + usize::from(fin_unsent && unsent < room);
                let Some(next) = t.sb().next_seg(una, max, mss, sendable_new) else {
                    break;
                };
                if next.kind == SegKind::Rescue && t.sb().high_rxt().is_some_and(|h| next.end <= h)
                {
                    // The rescue would resend what this recovery already
                    // retransmitted: spend it without sending.
                    let rp = t.send.recovery_point;
                    self.sb_mut().mark_rescue(rp);
                    break;
                }
                match self.send_segment(cx, now, next.start, next.len(), emit, fx) {
                    Err(Blocked) => return (n, true),
                    Ok(None) => break,
                    Ok(Some(end)) => {
                        n += 1;
                        let t = &mut *self;
                        match next.kind {
                            SegKind::Lost | SegKind::Unsacked => t.sb_mut().mark_retransmitted(end),
                            SegKind::Rescue => {
                                let rp = t.send.recovery_point;
                                t.sb_mut().mark_rescue(rp);
                            }
                            SegKind::New => {}
                        }
                    }
                }
            }
        } else {
            // New data (or go-back-N retransmission after an RTO), then FIN.
            loop {
                if n >= budget {
                    fx.queue(TxKind::Send);
                    break;
                }
                let fin_allowed = self.fin_allowed();
                let t = &mut *self;
                let buffered = t.sndbuf.len();
                let una = t.head.snd.una;
                let nxt = t.head.snd.nxt;
                let off = nxt - una;
                let unsent = buffered.saturating_sub(off);
                let wnd = (t.head.snd.wnd as usize).min(t.cc.cwnd());
                let limit_seq = una + wnd.min(i32::MAX as usize);
                let usable = if limit_seq > nxt { limit_seq - nxt } else { 0 };
                let mss = usize::from(t.send.mss);
                let len = unsent.min(mss).min(usable);
                // The FIN takes a sequence number inside the peer's window
                // (unless it is resent): SND.MAX, the sequence number of
                // every pure ACK, must never pass the right edge, or the
                // peer drops our ACKs as out of window.
                let fin_room =
                    nxt + len < t.head.snd.max || nxt + len < una + t.head.snd.wnd as usize;
                let fin_waits = fin_allowed && off + len == buffered && !fin_room;
                let fin = fin_allowed && off <= buffered && off + len == buffered && fin_room;
                if len == 0 && !fin {
                    // Zero window with data (or the FIN) waiting and nothing
                    // in flight: the persist timer probes for the window.
                    if (unsent > 0 || fin_waits)
                        && t.head.snd.wnd == 0
                        && t.head.snd.max == una
                        && t.timers.deadline(Timer::Persist).is_none()
                    {
                        let d = t.rtt.rto() * (1u32 << t.timers.persist_shift.min(10));
                        t.timers.set(
                            Timer::Persist,
                            Some(now + d.min(cx.cfg.rto_max)),
                            &mut fx.wheel,
                        );
                        t.head.flags.insert(TcbFlags::PROBE_ANSWERED);
                    }
                    break;
                }
                let retransmission = nxt < t.head.snd.max;
                if len < mss && !fin && !retransmission {
                    // Nagle (RFC 9293 §3.7.4): hold a small segment while
                    // data is unacknowledged, unless NODELAY.
                    let unacked = t.head.snd.max > una;
                    if unacked && !t.has(TcbFlags::NODELAY) {
                        break;
                    }
                    // Sender SWS avoidance: a window-limited small segment
                    // only when it is at least half the largest window seen,
                    // or when the override (persist) timer said so.
                    if len < unsent
                        && len < (t.send.max_wnd as usize / 2).max(1)
                        && !t.has(TcbFlags::SWS_OVERRIDE)
                    {
                        if t.head.snd.max == una && t.timers.deadline(Timer::Persist).is_none() {
                            t.timers
                                .set(Timer::Persist, Some(now + t.rtt.rto()), &mut fx.wheel);
                        }
                        break;
                    }
                }
                if !retransmission
                    && t.head.snd.max == una
                    && now.saturating_duration_since(t.timers.last_tx) > t.rtt.rto()
                {
                    // RFC 5681 §4.1: restart after an idle period.
                    t.cc.restart_after_idle();
                }
                match self.send_segment(cx, now, nxt, len, emit, fx) {
                    Err(Blocked) => return (n, true),
                    Ok(None) => break,
                    Ok(Some(_)) => {
                        n += 1;
                        self.head.flags.remove(TcbFlags::SWS_OVERRIDE);
                    }
                }
                if fin {
                    break;
                }
            }
        }

        // An ACK still owed goes out alone. Its sequence number is SND.MAX
        // (Linux's snd_nxt, which never rewinds): after a go-back-N rewind,
        // SND.NXT may be below the peer's RCV.NXT, and an ACK the peer finds
        // unacceptable would only make it answer with another ACK.
        // Several out-of-order segments in one tick each owe the peer a
        // duplicate ACK (its fast retransmit counts them), as mTCP's
        // `ack_cnt`: data segments sent meanwhile do not count as
        // duplicates.
        let t = &mut *self;
        let copies = usize::from(t.receive.dupacks_owed).max(1);
        let owed = t.has(TcbFlags::ACK_NOW) || t.receive.dupacks_owed > 0;
        for _ in 0..if owed { copies } else { 0 } {
            let t = &mut *self;
            let options = t.data_options(now);
            let window = advertise(t, rcv_space(t, pool_free));
            let repr = TcpRepr {
                src_port: t.key.local_port,
                dst_port: t.key.remote_port,
                seq: t.head.snd.max,
                ack: t.head.rcv.nxt,
                flags: TcpFlags::ACK,
                window,
                urgent: 0,
                options,
                payload: &[],
            };
            if !emit(src, dst, &repr) {
                return (n, true);
            }
            t.after_ack_sent(&mut fx.wheel);
            t.receive.dupacks_owed = t.receive.dupacks_owed.saturating_sub(1);
            cx.stats.segs_out += 1;
            n += 1;
        }
        self.receive.dupacks_owed = 0;
        (n, false)
    }

    /// May our FIN go out (after the queued data)?
    fn fin_allowed(&self) -> bool {
        let t = self;
        t.has(TcbFlags::FIN_QUEUED)
            && matches!(
                t.head.state,
                State::FinWait1 | State::Closing | State::LastAck
            )
    }

    /// Emits one segment of this connection starting at `seq`
    /// (SND.UNA <= seq), with up to `len` bytes of data from the send
    /// buffer and the FIN when it ends the stream. Returns the sequence
    /// number just past what was sent, `None` when there was nothing to
    /// send at `seq`, or `Blocked` when `emit` had no frame.
    fn send_segment(
        &mut self,
        cx: &mut Cx<'_>,
        now: Instant,
        seq: SeqNumber,
        len: usize,
        emit: &mut Emit<'_>,
        fx: &mut Effects,
    ) -> Result<Option<SeqNumber>, Blocked> {
        let pool_free = cx.pool.view();
        let fin_allowed = self.fin_allowed();
        let t = &mut *self;
        let (src, dst) = (t.key.local_ip, t.key.remote_ip);
        let una = t.head.snd.una;
        if seq < una {
            return Ok(None);
        }
        let off = seq - una;
        let buffered = t.sndbuf.len();
        let options = t.data_options(now);
        // MUST-16 (RFC 9293 §3.7.1): the data fits the effective send MSS
        // less the options this segment carries. `send.mss` already allows
        // for the timestamp option; SACK blocks take more room.
        let ts_room = if t.has(TcbFlags::TIMESTAMPS) { 12 } else { 0 };
        let room = (usize::from(t.send.mss) + ts_room).saturating_sub(options_len(&options));
        let data = if off < buffered {
            len.min(buffered - off).min(room).min(cx.scratch.len())
        } else {
            0
        };
        let wnd_edge = una + t.head.snd.wnd as usize;
        let fin = fin_allowed
            && off + data == buffered
            && (seq + data < t.head.snd.max || seq + data < wnd_edge);
        if data == 0 && !fin {
            return Ok(None);
        }
        debug_assert!(
            within_right_edge(seq, data, fin, t.send.max_edge),
            "segment seq {seq} len {data} fin {fin} past the peer's largest right edge {} \
             (SND.UNA {una} SND.WND {} SND.MAX {})",
            t.send.max_edge,
            t.head.snd.wnd,
            t.head.snd.max,
        );
        let data = t.sndbuf.read_at(&*cx.pool, off, &mut cx.scratch[..data]);
        let window = advertise(t, rcv_space(t, pool_free));
        let mut flags = TcpFlags::ACK;
        if data > 0 && off + data == buffered {
            flags |= TcpFlags::PSH;
        }
        if fin {
            flags |= TcpFlags::FIN;
        }
        let repr = TcpRepr {
            src_port: t.key.local_port,
            dst_port: t.key.remote_port,
            seq,
            ack: t.head.rcv.nxt,
            flags,
            window,
            urgent: 0,
            options,
            payload: &cx.scratch[..data],
        };
        if !emit(src, dst, &repr) {
            return Err(Blocked);
        }
        // The retransmission timer first: stopping the delayed ACK then
        // leaves a timer armed, and the wheel entry in place.
        if t.timers.deadline(Timer::Rto).is_none() {
            t.timers
                .set(Timer::Rto, Some(now + t.rtt.rto()), &mut fx.wheel);
        }
        t.after_ack_sent(&mut fx.wheel);
        let end = seq + data + usize::from(fin);
        if seq < t.head.snd.max {
            cx.stats.retransmits += 1;
        } else if !t.has(TcbFlags::TIMESTAMPS) && data > 0 {
            t.sampler.start(end, now);
        }
        if seq == t.head.snd.nxt || end > t.head.snd.nxt && seq <= t.head.snd.nxt {
            t.head.snd.nxt = end;
        }
        t.head.snd.max = t.head.snd.max.max(end);
        if fin {
            t.head.flags.insert(TcbFlags::FIN_SENT);
        }
        t.timers.set(Timer::Persist, None, &mut fx.wheel);
        t.timers.last_tx = now;
        cx.stats.segs_out += 1;
        cx.stats.bytes_out += data as u64;
        Ok(Some(end))
    }

    /// Bookkeeping after any segment that carries our current ACK.
    fn after_ack_sent(&mut self, wheel: &mut WheelUpdate) {
        let t = self;
        t.head.flags.remove(TcbFlags::ACK_NOW);
        t.head.flags.remove(TcbFlags::ACK_DELAYED);
        t.timers.set(Timer::DelayedAck, None, wheel);
        t.receive.unacked_bytes = 0;
        t.receive.last_ack_sent = t.head.rcv.nxt;
    }
}

impl TcpStack {
    /// Sends what the connection at `index` may send now. Returns the
    /// segments emitted and whether `emit` ran out of frames.
    fn output(
        &mut self,
        index: u32,
        now: Instant,
        budget: usize,
        emit: &mut Emit<'_>,
    ) -> (usize, bool) {
        let (t, mut cx) = self.split(index);
        let mut fx = Effects::default();
        let r = t.poll_output(&mut cx, now, budget, emit, &mut fx);
        self.apply(index, fx);
        r
    }

    /// Turns queued work into segments, within `budget` segments: the
    /// stateless replies and the control list first, then the ACK list,
    /// then the send list (mTCP's priority order). `emit(src, dst, seg)`
    /// returns false when no frame buffer is left: dispatch stops and keeps
    /// the rest queued. Returns the number of segments emitted.
    pub fn dispatch(&mut self, now: Instant, budget: usize, emit: &mut Emit<'_>) -> usize {
        self.now = now;
        let mut sent = 0;
        while sent < budget {
            let Some(r) = self.replies.front().copied() else {
                break;
            };
            let repr = reply_repr(&r);
            if !emit(r.src, r.dst, &repr) {
                return sent;
            }
            self.replies.pop_front();
            self.stats.segs_out += 1;
            sent += 1;
        }
        for kind in [TxKind::Control, TxKind::Ack, TxKind::Send] {
            while sent < budget {
                let Some(id) = self.lists.get(kind).pop() else {
                    break;
                };
                let Some(t) = self.tcbs.get_mut(id) else {
                    continue;
                };
                t.head.lists.0 &= !kind.bit();
                if kind == TxKind::Ack && t.head.lists.has(ListFlags::ON_SEND_LIST) {
                    // The data segment will carry this ACK (or send it alone
                    // when no data can go).
                    continue;
                }
                let (n, blocked) = self.output(id.index(), now, budget - sent, emit);
                sent += n;
                if blocked {
                    let t = self.tcbs.at_mut(id.index());
                    self.lists.get(kind).push_front(id, &mut t.head.lists);
                    return sent;
                }
            }
        }
        sent
    }
}

/// The sender's invariant (RFC 9293 §3.8.6): a segment ends at or before
/// the largest right edge the peer advertised, but for one sequence number
/// beyond it when that is all the segment carries (a one-octet zero-window
/// probe, §3.8.6.1, or a lone FIN).
pub(crate) fn within_right_edge(seq: SeqNumber, data: usize, fin: bool, edge: SeqNumber) -> bool {
    let end = seq + data + usize::from(fin);
    end <= edge || (end == edge + 1 && data + usize::from(fin) == 1)
}

fn reply_repr(r: &Reply) -> TcpRepr<'static> {
    TcpRepr {
        src_port: r.src_port,
        dst_port: r.dst_port,
        seq: r.seq,
        ack: r.ack,
        flags: r.flags,
        window: r.window,
        urgent: 0,
        options: r.options,
        payload: &[],
    }
}

//! Input: RFC 9293 §3.10.7 "SEGMENT ARRIVES", step by step.
//!
//! [`TcpStack::input`] looks the 4-tuple up in the flow table (a hash
//! lookup, never a scan), then the listener table, and otherwise answers
//! with a RST (§3.10.7.1). Each arm below names the RFC step it implements.
//! RFC 5961 (challenge ACKs, RST and SYN checks, ACK acceptability) and
//! RFC 7323 (PAWS, TS.Recent) are folded into the steps where they apply.

use super::congestion::AckOutcome;
use super::effects::{Cx, Effects, End, Given};
use super::events::FlowEvents;
use super::flow_table::FlowKey;
use super::isn::FourTuple;
use super::output::rcv_space;
use super::stack::{Reply, TcpConfig, TcpStack};
use super::state::State;
use super::tcb::Connection;
use super::time_wait::TimeWaitEntry;
use super::timer::Timer;
use super::tx_list::TxKind;
use super::types::TcpError;
use super::types::{SocketId, TcbFlags, DEFAULT_MSS, MIN_MSS};
use crate::time::Instant;
use crate::wire::ipv4::Ipv4Address;
use crate::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;

/// Most duplicate ACKs one connection sends in one tick.
const MAX_DUPACKS_PER_TICK: u8 = 16;

/// RFC 6298 (5.7): the RTO after a handshake whose SYN timed out.
const SYN_TIMEOUT_RTO: crate::time::Duration = crate::time::Duration::from_secs(3);

/// §3.10.7.1: the RST that answers `seg`: "If the ACK bit is off,
/// sequence number zero is used, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>;
/// if the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>". None for a RST: never a
/// RST in reply to a RST.
fn rst_answer(seg: &TcpRepr) -> Option<Rst> {
    if seg.flags.rst() {
        return None;
    }
    Some(if seg.flags.ack() {
        Rst {
            seq: seg.ack,
            ack: SeqNumber(0),
            flags: TcpFlags::RST,
        }
    } else {
        let len = seg.segment_len().min(i32::MAX as usize);
        Rst {
            seq: SeqNumber(0),
            ack: seg.seq + len,
            flags: TcpFlags::RST | TcpFlags::ACK,
        }
    })
}

/// The fields of a RST that answers a segment.
struct Rst {
    /// SEG.ACK of the answered segment, or zero.
    seq: SeqNumber,
    /// SEG.SEQ+SEG.LEN of the answered segment when it had no ACK.
    ack: SeqNumber,
    /// RST, or RST and ACK.
    flags: TcpFlags,
}

/// `a < b` for 32-bit timestamps (wrapping, RFC 7323 §5.2).
fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `now` in whole seconds, as `RecvVars::ts_recent_secs` keeps it
/// (wrapping after 136 years; compared with `wrapping_sub`).
#[inline]
fn secs(now: Instant) -> u32 {
    (now.total_micros() / 1_000_000) as u32
}

/// RFC 7323 §5.5: TS.Recent is invalid once the connection has been idle
/// for 24 days (the peer's timestamp clock may have wrapped its sign bit
/// since), so PAWS must not reject against it then: Linux's
/// `TCP_PAWS_24DAYS`.
const PAWS_IDLE_SECS: u32 = 24 * 24 * 3600;

/// RFC 7323 §5.3 with §5.5: a segment with timestamp `tsval` is an old
/// duplicate (TSval before TS.Recent), unless TS.Recent, set at
/// `ts_recent_secs`, is 24 days old.
#[inline]
fn paws_rejects(tsval: u32, ts_recent: u32, ts_recent_secs: u32, now: Instant) -> bool {
    ts_before(tsval, ts_recent) && secs(now).wrapping_sub(ts_recent_secs) < PAWS_IDLE_SECS
}

impl TcpStack {
    /// Processes one TCP segment from `src` to `dst` at `now`.
    ///
    /// Lookup order: the flow table (established and embryonic
    /// connections, TIME-WAIT), then listeners, then a RST reply.
    pub fn input(&mut self, now: Instant, src: Ipv4Address, dst: Ipv4Address, seg: &TcpRepr) {
        self.now = now;
        self.stats.segs_in += 1;
        if !self.is_local(dst) {
            self.stats.drops.not_local += 1;
            return;
        }
        // MUST-63 (RFC 9293 §3.9.2.3, RFC 1122 §4.2.3.10): a segment from a
        // broadcast, multicast or unspecified source is silently dropped
        // (no SYN-ACK, no RST).
        if src.is_broadcast() || src.is_multicast() || src.is_unspecified() {
            self.stats.drops.bad_source += 1;
            return;
        }
        // Sixth step, URG: urgent data is not supported; it is delivered
        // as ordinary data and counted.
        if seg.flags.contains(TcpFlags::URG) {
            self.stats.urgent_ignored += 1;
        }
        let key = FlowKey::new(dst, seg.dst_port, src, seg.src_port);
        let mut min_iss = None;
        if let Some(index) = self.flow(&key) {
            self.process(now, index, seg);
            return;
        }
        if let Some(e) = self.tw.get(&key).copied() {
            let reuse = self.listeners.lookup(dst, seg.dst_port).is_some()
                && seg.flags.syn()
                && !seg.flags.ack()
                && !seg.flags.rst()
                && self.cfg.time_wait_reuse
                && tw_syn_acceptable(&e, seg);
            if !reuse {
                self.time_wait_input(now, &e, seg);
                return;
            }
            // RFC 6191 spirit: a SYN with a higher sequence number (or a
            // newer timestamp) starts a new incarnation of a TIME-WAIT flow.
            min_iss = self.take_over_time_wait(&key);
        }
        if let Some(l) = self.listeners.lookup(dst, seg.dst_port) {
            self.listen_input(now, l, key, seg, min_iss);
            return;
        }
        self.stats.drops.no_socket += 1;
        self.reset_for(dst, src, seg);
    }

    /// §3.10.7.1 (CLOSED): the RST that answers `seg` ([`rst_answer`]),
    /// from `local` to `remote`.
    pub(crate) fn reset_for(&mut self, local: Ipv4Address, remote: Ipv4Address, seg: &TcpRepr) {
        let Some(rst) = rst_answer(seg) else { return };
        self.stats.resets_sent += 1;
        self.reply(Reply {
            src: local,
            dst: remote,
            src_port: seg.dst_port,
            dst_port: seg.src_port,
            seq: rst.seq,
            ack: rst.ack,
            flags: rst.flags,
            window: 0,
            options: TcpOptions::default(),
        });
    }

    /// A SYN found every TCB slot (or flow-table entry) in use: counted, and
    /// answered with `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
    fn table_full(&mut self, key: FlowKey, seg: &TcpRepr) {
        self.stats.drops.no_tcb += 1;
        self.stats.table_full_resets += 1;
        self.reset_for(key.local_ip, key.remote_ip, seg);
    }

    /// Applies the options of the peer's SYN (or SYN-ACK).
    pub(crate) fn apply_syn_options(
        cfg: &TcpConfig,
        t: &mut Connection,
        o: &TcpOptions,
        now: Instant,
    ) {
        let ts = cfg.timestamps && o.timestamp.is_some();
        if ts {
            t.head.flags.insert(TcbFlags::TIMESTAMPS);
            t.receive.ts_recent = o.timestamp.map_or(0, |(v, _)| v);
            t.receive.ts_recent_secs = secs(now);
        } else {
            t.head.flags.remove(TcbFlags::TIMESTAMPS);
        }
        match o.window_scale {
            Some(ws) if cfg.window_scaling => {
                t.head.flags.insert(TcbFlags::WSCALE);
                // RFC 7323 §2.3: a shift above 14 is used as 14.
                t.send.wscale = ws.min(14);
            }
            _ => {
                t.head.flags.remove(TcbFlags::WSCALE);
                t.send.wscale = 0;
                t.receive.wscale = 0;
            }
        }
        if cfg.sack && o.sack_permitted {
            t.head.flags.insert(TcbFlags::SACK);
        } else {
            t.head.flags.remove(TcbFlags::SACK);
        }
        let peer = o.mss.unwrap_or(DEFAULT_MSS).max(MIN_MSS);
        let mss = peer.min(cfg.mss()) - if ts { 12 } else { 0 };
        t.send.mss = mss;
        t.cc.set_mss(usize::from(mss));
    }

    /// §3.10.7.2 LISTEN.
    fn listen_input(
        &mut self,
        now: Instant,
        listener: SocketId,
        key: FlowKey,
        seg: &TcpRepr,
        min_iss: Option<SeqNumber>,
    ) {
        // "First, check for a RST: an incoming RST should be ignored."
        if seg.flags.rst() {
            return;
        }
        // "Second, check for an ACK: any acknowledgment is bad if it
        // arrives on a connection still in the LISTEN state. An acceptable
        // reset segment should be formed for any arriving ACK-bearing
        // segment: <SEQ=SEG.ACK><CTL=RST>." A SYN cookie ACK is the
        // exception: it creates the connection.
        if seg.flags.ack() {
            if !seg.flags.syn() && self.cfg.syn_cookies && self.cookie_ack(now, listener, key, seg)
            {
                return;
            }
            self.reset_for(key.local_ip, key.remote_ip, seg);
            return;
        }
        // "Third, check for a SYN."
        if !seg.flags.syn() {
            self.stats.drops.ignored += 1;
            return;
        }
        let q = *self.queue_of(listener.index());
        if !q.has_room() {
            self.stats.drops.accept_queue_full += 1;
            return;
        }
        if q.syn_count as usize >= self.cfg.syn_backlog {
            if self.cfg.syn_cookies {
                // The half-open queue is the limit: a cookie keeps no state.
                self.stats.syn_queue_cookies += 1;
                self.send_cookie(now, key, seg);
            } else {
                self.stats.drops.syn_queue_full += 1;
            }
            return;
        }
        // The table is the limit: refuse with a RST, never a silent drop
        // (a client then fails at once instead of timing out).
        let Some(id) = self.tcbs.alloc() else {
            self.table_full(key, seg);
            return;
        };
        let index = id.index();
        if self.add_flow(key, index).is_err() {
            self.tcbs.free(id);
            self.table_full(key, seg);
            return;
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
        self.queue_of_mut(listener.index()).syn_count += 1;
        let cfg = &self.cfg;
        let t = self.tcbs.at_mut(index);
        t.listen.parent = Some(listener);
        t.head.flags.insert(TcbFlags::IN_SYN_QUEUE);
        t.head.flags.insert(TcbFlags::PASSIVE);
        // "Set RCV.NXT to SEG.SEQ+1, IRS is set to SEG.SEQ, and any other
        // control or text should be queued for processing later. ISS
        // should be selected and a SYN segment sent of the form
        // <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>. SND.NXT is set to ISS+1 and
        // SND.UNA to ISS. The connection state should be changed to
        // SYN-RECEIVED." (Data on the SYN is not queued: the peer resends.)
        Self::apply_syn_options(cfg, t, &seg.options, now);
        super::icmp::clamp_mss(t, self.pmtu.lookup(t.key.remote_ip, now));
        t.receive.irs = seg.seq;
        t.head.rcv.nxt = seg.seq + 1;
        t.receive.adv_edge = t.head.rcv.nxt;
        t.send.iss = iss;
        t.head.snd.una = iss;
        t.head.snd.nxt = iss;
        t.head.snd.max = iss;
        t.head.snd.wnd = u32::from(seg.window);
        t.send.max_wnd = t.head.snd.wnd;
        t.send.max_edge = iss + usize::from(seg.window);
        t.send.wl1 = seg.seq;
        t.send.wl2 = iss;
        t.head.state = State::SynReceived;
        t.head.flags.insert(TcbFlags::SYN_PENDING);
        self.queue(index, TxKind::Control);
    }

    /// The segment belongs to the connection at `index`: the stack looks
    /// up what the connection's state needs from the rest of it, the
    /// connection processes the segment, and what it asked for is applied
    /// once.
    fn process(&mut self, now: Instant, index: u32, seg: &TcpRepr) {
        let t = self.tcbs.at(index);
        let given = match t.head.state {
            State::SynSent => Given {
                pmtu: self.pmtu.lookup(t.key.remote_ip, now),
                ..Given::default()
            },
            State::SynReceived if t.has(TcbFlags::PASSIVE) => Given {
                accept_room: self.accept_room(index),
                ..Given::default()
            },
            _ => Given::default(),
        };
        let (t, mut cx) = self.split(index);
        let mut fx = Effects::default();
        t.process(&mut cx, now, seg, given, &mut fx);
        if fx.resets_segment() {
            let key = self.tcbs.at(index).key;
            self.reset_for(key.local_ip, key.remote_ip, seg);
        }
        self.apply(index, fx);
    }

    /// The RTT sample of a completed handshake.
    fn rtt_on_handshake(cfg: &TcpConfig, t: &mut Connection, seg: &TcpRepr, now: Instant) {
        if t.timers.retries > 0 {
            // Karn: no sample after a retransmitted SYN. RFC 6298 (5.7):
            // "the RTO MUST be re-initialized to 3 seconds when data
            // transmission begins" (when it was less).
            if !t.rtt.has_sample() {
                let initial = cfg.rto_initial.max(SYN_TIMEOUT_RTO);
                t.rtt = super::rtt::RttEstimator::new(initial, cfg.rto_min, cfg.rto_max);
            }
            return;
        }
        if let (true, Some((_, ecr))) = (t.has(TcbFlags::TIMESTAMPS), seg.options.timestamp) {
            if let Some(rtt) = echo_rtt(now, ecr, t.opts.ts_offset) {
                t.rtt.sample(rtt);
            }
        }
    }

    /// The receive window the connection at `index` could offer now.
    pub(crate) fn rcv_space_of(&self, index: u32) -> usize {
        rcv_space(self.tcbs.at(index), self.pool.view())
    }
}

/// What is left of an acceptable segment after the connection's first
/// checks ([`Connection::check_segment`]): its text trimmed to the window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accepted<'s> {
    /// The sequence number of the first octet of `payload`.
    pub(crate) seq: SeqNumber,
    /// The text inside the window.
    pub(crate) payload: &'s [u8],
    /// The FIN is inside the window too.
    pub(crate) fin: bool,
}

impl Connection {
    /// A segment of this connection arrives (RFC 9293 §3.10.7.3 SYN-SENT,
    /// §3.10.7.4 the other states), with what the stack looked up for it.
    pub(crate) fn process(
        &mut self,
        cx: &mut Cx<'_>,
        now: Instant,
        seg: &TcpRepr,
        given: Given,
        fx: &mut Effects,
    ) {
        match self.head.state {
            State::SynSent => self.syn_sent(cx, now, seg, given, fx),
            State::Closed | State::Listen => cx.stats.drops.ignored += 1,
            _ => self.synchronized(cx, now, seg, given, fx),
        }
    }

    /// §3.10.7.3 SYN-SENT.
    fn syn_sent(
        &mut self,
        cx: &mut Cx<'_>,
        now: Instant,
        seg: &TcpRepr,
        given: Given,
        fx: &mut Effects,
    ) {
        // "First, check the ACK bit: if SEG.ACK =< ISS or SEG.ACK > SND.NXT,
        // send a reset (unless the RST bit is set, if so drop the segment
        // and return) <SEQ=SEG.ACK><CTL=RST>."
        if seg.flags.ack() && (seg.ack <= self.send.iss || seg.ack > self.head.snd.max) {
            cx.stats.drops.bad_ack += 1;
            // The answer to an unacceptable SYN-ACK shares the challenge
            // ACK rate limit (RFC 5961 §7), so a flood of them cannot make
            // us send a flood of RSTs.
            if !seg.flags.syn() || cx.challenge_allowed(now) {
                fx.reset_segment();
            }
            return;
        }
        // "Second, check the RST bit: if the ACK was acceptable, signal to
        // the user 'error: connection reset', drop the segment, enter
        // CLOSED state, delete TCB. Otherwise (no ACK) drop the segment."
        if seg.flags.rst() {
            if seg.flags.ack() {
                cx.stats.resets_received += 1;
                fx.end(End::Closed(Some(TcpError::ConnectionRefused)));
            }
            return;
        }
        // "Third, check the security" — skipped.
        // "Fourth, check the SYN bit."
        if !seg.flags.syn() {
            cx.stats.drops.ignored += 1;
            return;
        }
        self.syn_in_syn_sent(cx, now, seg, given.pmtu, fx);
        // "If there are other controls or text in the segment, continue
        // processing at the sixth step": data or FIN on the SYN-ACK.
        if self.head.state == State::Established && (!seg.payload.is_empty() || seg.flags.fin()) {
            let rest = TcpRepr {
                seq: seg.seq + 1,
                flags: seg.flags.without(TcpFlags::SYN),
                ..*seg
            };
            self.synchronized(cx, now, &rest, given, fx);
        }
    }

    /// §3.10.7.4 "Otherwise" (SYN-RECEIVED and the synchronized states).
    fn synchronized(
        &mut self,
        cx: &mut Cx<'_>,
        now: Instant,
        seg: &TcpRepr,
        given: Given,
        fx: &mut Effects,
    ) {
        let t = self;
        let state = t.head.state;

        // Simultaneous open (RFC 9293 Figure 8): the peer's SYN-ACK repeats
        // its SYN, now before RCV.NXT; its ACK completes our handshake.
        if state == State::SynReceived
            && seg.flags.syn()
            && seg.flags.ack()
            && !seg.flags.rst()
            && seg.seq == t.receive.irs
        {
            let rest = TcpRepr {
                seq: seg.seq + 1,
                flags: seg.flags.without(TcpFlags::SYN),
                ..*seg
            };
            t.synchronized(cx, now, &rest, given, fx);
            return;
        }

        // Steps one to four, and the fifth's ACK-bit check.
        let Some(Accepted { seq, payload, fin }) = t.check_segment(cx, now, seg, fx) else {
            return;
        };

        if state == State::SynReceived {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED
            // state and continue processing with the variables below set
            // to: SND.WND <- SEG.WND, SND.WL1 <- SEG.SEQ, SND.WL2 <-
            // SEG.ACK. If the segment acknowledgment is not acceptable,
            // form a reset segment <SEQ=SEG.ACK><CTL=RST> and send it."
            if !t.handshake_acked(cx.cfg, now, seg, fx) {
                cx.stats.drops.bad_ack += 1;
                fx.reset_segment();
                return;
            }
            if !t.has(TcbFlags::PASSIVE) {
                // Simultaneous open: our own connect completed.
                cx.stats.active_opens += 1;
                fx.event(FlowEvents::CONNECTED | FlowEvents::WRITABLE);
            } else if given.accept_room {
                fx.accepted();
            } else {
                // The listener is gone or its accept queue is full: reset.
                cx.stats.drops.accept_queue_full += 1;
                fx.end(End::Abort);
                return;
            }
        }
        if !t.process_ack(cx, now, seg, payload.is_empty(), fx) {
            return;
        }
        t.our_fin_acked(cx.cfg, now, fx);
        if fx.ended() {
            return;
        }

        // "Sixth, check the URG bit" — counted in `input`, data delivered
        // as ordinary bytes.

        // "Seventh, process the segment text" (ESTABLISHED, FIN-WAIT-1,
        // FIN-WAIT-2 only).
        let state = t.head.state;
        if !payload.is_empty() {
            if !state.accepts_data() {
                cx.stats.drops.ignored += 1;
            } else if t.has(TcbFlags::USER_CLOSED) {
                t.data_after_close(cx, fx);
                return;
            } else {
                t.receive_data(cx, now, seq, payload, fx);
            }
        }

        // "Eighth, check the FIN bit."
        let fin_at = fin.then(|| seq + payload.len());
        t.check_fin(now, state, fin_at, fx);
    }

    /// New data (at or after RCV.NXT) for a connection the application has
    /// closed: nobody will ever read it, so the connection is reset
    /// (RFC 1122 §4.2.2.13, RFC 9293 §3.10.4 SHLD-3, as Linux does:
    /// `<SEQ=SEG.ACK><CTL=RST>`) and the peer learns that what it sent was
    /// not read, instead of a clean close. A half-closed socket
    /// (`shutdown_write`) is still open for reading and is not affected.
    fn data_after_close(&mut self, cx: &mut Cx<'_>, fx: &mut Effects) {
        cx.stats.aborts_on_data += 1;
        fx.reset_segment();
        fx.end(End::Closed(None));
    }

    /// Challenge ACK (RFC 5961 §3.2, §4.2, §5.2), rate limited per core.
    fn challenge_ack(&mut self, cx: &mut Cx<'_>, now: Instant, fx: &mut Effects) {
        if cx.challenge_allowed(now) {
            self.ack_now(fx);
        }
    }

    /// SYN-SENT, fourth step, the SYN bit set (the ACK, if any, checked
    /// acceptable): "RCV.NXT is set to SEG.SEQ+1, IRS is set to SEG.SEQ.
    /// SND.UNA should be advanced to equal SEG.ACK (if there is an ACK)";
    /// with an ACK, ESTABLISHED and an ACK sent; without, SYN-RECEIVED and
    /// a SYN-ACK (simultaneous open). `pmtu` is the path MTU known for the
    /// peer, if any. The segment's text, if any, is the caller's.
    pub(crate) fn syn_in_syn_sent(
        &mut self,
        cx: &mut Cx<'_>,
        now: Instant,
        seg: &TcpRepr,
        pmtu: Option<u16>,
        fx: &mut Effects,
    ) {
        let t = self;
        // The window our SYN offered (SYN windows are never scaled).
        let offered = rcv_space(t, cx.pool.view()).min(65535);
        TcpStack::apply_syn_options(cx.cfg, t, &seg.options, now);
        super::icmp::clamp_mss(t, pmtu);
        t.receive.irs = seg.seq;
        t.head.rcv.nxt = seg.seq + 1;
        t.receive.adv_edge = t.head.rcv.nxt + offered;
        t.head.snd.wnd = u32::from(seg.window);
        t.send.max_wnd = t.head.snd.wnd;
        t.send.max_edge = seg.ack + usize::from(seg.window);
        t.send.wl1 = seg.seq;
        t.send.wl2 = seg.ack;
        if seg.flags.ack() {
            // "If SND.UNA > ISS (our SYN has been ACKed), change the
            // connection state to ESTABLISHED, form an ACK segment
            // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it."
            t.head.snd.una = seg.ack;
            if t.head.snd.nxt < seg.ack {
                t.head.snd.nxt = seg.ack;
            }
            t.head.state = State::Established;
            t.receive.last_ack_sent = t.head.rcv.nxt;
            TcpStack::rtt_on_handshake(cx.cfg, t, seg, now);
            t.timers.set(Timer::Rto, None, &mut fx.wheel);
            t.timers.retries = 0;
            t.head.flags.insert(TcbFlags::ACK_NOW);
            cx.stats.active_opens += 1;
            if t.has(TcbFlags::KEEPALIVE) {
                let at = now + t.opts.ka_idle();
                t.timers.set(Timer::Keepalive, Some(at), &mut fx.wheel);
            }
            fx.queue(TxKind::Ack);
            if !t.sndbuf.is_empty() {
                fx.queue(TxKind::Send);
            }
            fx.event(FlowEvents::CONNECTED | FlowEvents::WRITABLE);
        } else {
            // "Otherwise, enter SYN-RECEIVED, form a SYN,ACK segment
            // <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it."
            // (Simultaneous open.)
            t.head.state = State::SynReceived;
            t.head.flags.insert(TcbFlags::SYN_PENDING);
            fx.queue(TxKind::Control);
        }
    }

    /// SYN-RECEIVED, fifth step: "If SND.UNA < SEG.ACK =< SND.NXT, then
    /// enter ESTABLISHED state and continue processing with the variables
    /// below set to: SND.WND <- SEG.WND, SND.WL1 <- SEG.SEQ, SND.WL2 <-
    /// SEG.ACK." Returns false when the acknowledgment is not acceptable
    /// (the stack answers it with `<SEQ=SEG.ACK><CTL=RST>`), changing
    /// nothing.
    pub(crate) fn handshake_acked(
        &mut self,
        cfg: &TcpConfig,
        now: Instant,
        seg: &TcpRepr,
        fx: &mut Effects,
    ) -> bool {
        let t = self;
        if !(t.head.snd.una < seg.ack && seg.ack <= t.head.snd.max) {
            return false;
        }
        t.head.state = State::Established;
        t.head.snd.wnd = u32::from(seg.window) << t.send.wscale;
        t.send.max_wnd = t.send.max_wnd.max(t.head.snd.wnd);
        t.send.max_edge = seg.ack + t.head.snd.wnd as usize;
        t.send.wl1 = seg.seq;
        t.send.wl2 = seg.ack;
        TcpStack::rtt_on_handshake(cfg, t, seg, now);
        // The SYN is acknowledged.
        t.head.snd.una = t.send.iss + 1;
        if t.head.snd.nxt < t.head.snd.una {
            t.head.snd.nxt = t.head.snd.una;
        }
        t.timers.set(Timer::Rto, None, &mut fx.wheel);
        t.timers.retries = 0;
        t.rtt.reset_backoff();
        if t.has(TcbFlags::FIN_QUEUED) {
            // The user shut down during the handshake.
            t.head.state = State::FinWait1;
            fx.queue(TxKind::Control);
        }
        if t.has(TcbFlags::KEEPALIVE) {
            let at = now + t.opts.ka_idle();
            t.timers.set(Timer::Keepalive, Some(at), &mut fx.wheel);
        }
        true
    }

    /// After the ACK field was processed: FIN-WAIT-1 "if the FIN segment
    /// is now acknowledged, then enter FIN-WAIT-2"; CLOSING "if the ACK
    /// acknowledges our FIN, then enter the TIME-WAIT state"; LAST-ACK "if
    /// our FIN is now acknowledged, delete the TCB, enter the CLOSED state".
    /// An orphaned FIN-WAIT-2 (user closed) waits `fin_timeout` at most.
    pub(crate) fn our_fin_acked(&mut self, cfg: &TcpConfig, now: Instant, fx: &mut Effects) {
        let fin_acked = self.has(TcbFlags::FIN_SENT)
            && self.head.snd.una == self.head.snd.max
            && self.sndbuf.is_empty();
        if !fin_acked {
            return;
        }
        match self.head.state {
            State::FinWait1 => {
                self.head.state = State::FinWait2;
                if self.has(TcbFlags::USER_CLOSED) {
                    self.timers
                        .set(Timer::Keepalive, Some(now + cfg.fin_timeout), &mut fx.wheel);
                }
            }
            State::Closing => fx.end(End::TimeWait {
                now,
                ack_fin: false,
            }),
            State::LastAck => fx.end(End::Closed(None)),
            _ => {}
        }
    }

    /// "Eighth, check the FIN bit" of a segment that arrived in `state`:
    /// `fin_at` is the sequence number of its FIN inside the window, if it
    /// has one. A FIN at RCV.NXT is processed; one beyond it waits for the
    /// gap to fill (and is ACKed now); a FIN remembered earlier is
    /// processed once the data before it has all arrived.
    pub(crate) fn check_fin(
        &mut self,
        now: Instant,
        state: State,
        fin_at: Option<SeqNumber>,
        fx: &mut Effects,
    ) {
        let takes_fin = matches!(
            state,
            State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
                | State::Closing
                | State::LastAck
        );
        match fin_at {
            Some(fin_seq) if takes_fin => {
                if fin_seq == self.head.rcv.nxt {
                    self.process_fin(now, fx);
                } else if fin_seq > self.head.rcv.nxt {
                    // Out of order: remembered until the gap is filled.
                    self.set_ooo_fin(Some(fin_seq));
                    self.ack_now(fx);
                }
            }
            _ => {
                if self.ooo_fin() == Some(self.head.rcv.nxt) && !self.has(TcbFlags::FIN_RECEIVED) {
                    self.process_fin(now, fx);
                }
            }
        }
    }

    /// The first steps of "SEGMENT ARRIVES" in a synchronized state
    /// (§3.10.7.4) that the connection decides alone: a repeated SYN in
    /// SYN-RECEIVED, PAWS (RFC 7323 §5.3), the sequence check and trimming
    /// to the window, TS.Recent, the RST bit (RFC 5961 §3.2), the SYN bit
    /// (§4.2) and the ACK bit being off. Returns what is left of an
    /// acceptable segment, or `None` when the segment is done with (dropped,
    /// answered or ending the connection: see `fx`).
    pub(crate) fn check_segment<'s>(
        &mut self,
        cx: &mut Cx<'_>,
        now: Instant,
        seg: &TcpRepr<'s>,
        fx: &mut Effects,
    ) -> Option<Accepted<'s>> {
        let t = self;
        let state = t.head.state;
        let rcv_nxt = t.head.rcv.nxt;

        // A retransmitted SYN in SYN-RECEIVED: our SYN-ACK was lost.
        if state == State::SynReceived
            && seg.flags.syn()
            && !seg.flags.ack()
            && !seg.flags.rst()
            && seg.seq == t.receive.irs
        {
            t.head.flags.insert(TcbFlags::SYN_PENDING);
            fx.queue(TxKind::Control);
            return None;
        }

        // RFC 7323 §5.3 (PAWS), before the sequence check: a segment whose
        // TSval is older than TS.Recent is a duplicate; ACK it and drop it
        // (never for a RST; not against a TS.Recent 24 days old, §5.5).
        if t.has(TcbFlags::TIMESTAMPS) && !seg.flags.rst() {
            if let Some((tsval, _)) = seg.options.timestamp {
                let r = &t.receive;
                if paws_rejects(tsval, r.ts_recent, r.ts_recent_secs, now) {
                    cx.stats.drops.paws += 1;
                    t.ack_now(fx);
                    return None;
                }
            }
        }

        // "First, check sequence number." The four cases of the
        // acceptability table (§3.10.7.4, Table 6).
        let seg_len = seg.segment_len();
        let rcv_wnd = if t.receive.adv_edge > rcv_nxt {
            t.receive.adv_edge - rcv_nxt
        } else {
            0
        };
        let wnd_end = rcv_nxt + rcv_wnd;
        let in_wnd = |s: SeqNumber| s >= rcv_nxt && s < wnd_end;
        let mut acceptable = match (seg_len, rcv_wnd) {
            (0, 0) => seg.seq == rcv_nxt,
            (0, _) => in_wnd(seg.seq),
            (_, 0) => false,
            (l, _) => in_wnd(seg.seq) || in_wnd(seg.seq + (l - 1).min(i32::MAX as usize)),
        };
        // "If the RCV.WND is zero, no segments will be acceptable, but
        // special allowance should be made to accept valid ACKs, URGs, and
        // RSTs": keep the control part of an in-sequence segment.
        let mut strip_text = false;
        if !acceptable && rcv_wnd == 0 && seg.seq == rcv_nxt {
            acceptable = true;
            strip_text = true;
        }
        if !acceptable {
            // "If an incoming segment is not acceptable, an acknowledgment
            // should be sent in reply (unless the RST bit is set, if so drop
            // the segment and return)."
            cx.stats.drops.out_of_window += 1;
            if !seg.flags.rst() {
                // Answering every out-of-window pure ACK can make two
                // endpoints ping-pong ACKs forever; like Linux
                // (tcp_invalid_ratelimit), answer those at most every
                // 500 ms per connection. Old data always gets its ACK.
                if seg.flags.syn() {
                    // RFC 5961 §4: an out-of-window SYN or SYN-ACK is
                    // answered by a challenge ACK under the per-core rate
                    // limit (§7). Unlimited, a half-open connection that
                    // receives its own SYN-ACK (a LAND SYN, through the
                    // loopback) would answer itself forever.
                    t.challenge_ack(cx, now, fx);
                } else if seg_len > 0 || t.timers.oow_ack_allowed(now) {
                    t.ack_now(fx);
                }
            }
            return None;
        }

        // Trim the segment to the window: drop what is before RCV.NXT and
        // what is beyond the right edge.
        let mut seq = seg.seq;
        let mut payload = seg.payload;
        let mut fin = seg.flags.fin();
        if strip_text {
            // The text does not fit the zero window: tell the peer so.
            if !seg.payload.is_empty() || seg.flags.fin() {
                t.ack_now(fx);
            }
            payload = &[];
            fin = false;
        }
        if seq < rcv_nxt {
            let mut cut = rcv_nxt - seq;
            if seg.flags.syn() {
                cut -= 1;
                seq += 1;
            }
            let c = cut.min(payload.len());
            payload = &payload[c..];
            seq += c;
            if cut > c {
                // The FIN too was a duplicate.
                fin = false;
            }
        }
        if !payload.is_empty() && seq + payload.len() > wnd_end {
            let keep = if wnd_end > seq { wnd_end - seq } else { 0 };
            payload = &payload[..keep.min(payload.len())];
            fin = false;
        }

        // RFC 7323 §4.3: "If SEG.TSval >= TS.Recent and SEG.SEQ <=
        // Last.ACK.sent then SEG.TSval is copied to TS.Recent" (and any
        // TSval is, once TS.Recent is 24 days old: §5.5, as Linux).
        if t.has(TcbFlags::TIMESTAMPS) {
            if let Some((tsval, _)) = seg.options.timestamp {
                let r = &t.receive;
                if !paws_rejects(tsval, r.ts_recent, r.ts_recent_secs, now)
                    && seg.seq <= r.last_ack_sent
                {
                    t.receive.ts_recent = tsval;
                    t.receive.ts_recent_secs = secs(now);
                }
            }
        }
        t.timers.last_rx = now;
        t.head.flags.insert(TcbFlags::PROBE_ANSWERED);
        t.timers.ka_probes = 0;

        // "Second, check the RST bit." RFC 5961 §3.2: reset only when
        // SEG.SEQ exactly equals RCV.NXT; otherwise (in the window) send a
        // challenge ACK.
        if seg.flags.rst() {
            if seg.seq != rcv_nxt {
                t.challenge_ack(cx, now, fx);
                return None;
            }
            cx.stats.resets_received += 1;
            let err = match state {
                // "If this connection was initiated with a passive OPEN,
                // then return this connection to the LISTEN state" (the
                // child is simply freed); active: "connection refused".
                State::SynReceived if t.has(TcbFlags::PASSIVE) => None,
                State::SynReceived => Some(TcpError::ConnectionRefused),
                // "Any outstanding RECEIVEs and SEND should receive 'reset'
                // responses ... enter the CLOSED state, delete the TCB."
                State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                    cx.stats.conns_reset += 1;
                    Some(TcpError::ConnectionReset)
                }
                // CLOSING, LAST-ACK, TIME-WAIT: "enter the CLOSED state,
                // delete the TCB, and return."
                _ => None,
            };
            fx.end(End::Closed(err));
            return None;
        }

        // "Third, check security" — skipped.

        // "Fourth, check the SYN bit." RFC 5961 §4.2: a SYN in a
        // synchronized state, whatever its sequence number, gets a
        // challenge ACK. In SYN-RECEIVED after a passive OPEN, "return
        // this connection to the LISTEN state".
        if seg.flags.syn() {
            if state == State::SynReceived && t.has(TcbFlags::PASSIVE) {
                fx.end(End::Closed(None));
                return None;
            }
            t.challenge_ack(cx, now, fx);
            return None;
        }

        // "Fifth, check the ACK field: if the ACK bit is off drop the
        // segment and return."
        if !seg.flags.ack() {
            cx.stats.drops.ignored += 1;
            return None;
        }
        Some(Accepted { seq, payload, fin })
    }

    /// The ACK field of an acceptable segment (fifth step, ESTABLISHED and
    /// later). Returns false when the segment must be dropped.
    pub(crate) fn process_ack(
        &mut self,
        cx: &mut Cx<'_>,
        now: Instant,
        seg: &TcpRepr,
        no_text: bool,
        fx: &mut Effects,
    ) -> bool {
        let t = self;
        let una = t.head.snd.una;
        let max = t.head.snd.max;
        // RFC 5961 §5.2: acceptable when SND.UNA - MAX.SND.WND <= SEG.ACK
        // <= SND.NXT (SND.MAX here, since SND.NXT rewinds on RTO).
        if seg.ack > max {
            // "If the ACK acks something not yet sent (SEG.ACK > SND.NXT)
            // then send an ACK, drop the segment, and return."
            cx.stats.drops.bad_ack += 1;
            t.challenge_ack(cx, now, fx);
            return false;
        }
        let max_wnd = (t.send.max_wnd as usize).min(i32::MAX as usize);
        if seg.ack < una - max_wnd {
            // "If SEG.ACK < SND.UNA - MAX.SND.WND then ... send an ACK,
            // drop the segment, and return": a challenge ACK, rate limited
            // like the others (§7).
            cx.stats.drops.bad_ack += 1;
            t.challenge_ack(cx, now, fx);
            return false;
        }
        let seg_wnd = u32::from(seg.window) << t.send.wscale;
        if seg.ack > una {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then set SND.UNA <- SEG.ACK.
            // Any segments on the retransmission queue that are thereby
            // entirely acknowledged are removed."
            let acked = seg.ack - una;
            let data = acked.min(t.sndbuf.len());
            t.sndbuf.consume(cx.pool, data);
            t.head.snd.una = seg.ack;
            // Forward progress confirms the neighbour (ARP reachability).
            fx.progress();
            if t.head.snd.nxt < seg.ack {
                t.head.snd.nxt = seg.ack;
            }
            // RTT (RFC 6298 / RFC 7323 §4.1).
            if t.has(TcbFlags::TIMESTAMPS) {
                if let Some((_, ecr)) = seg.options.timestamp {
                    let floor = t.opts.rto_ts_floor;
                    let stale = floor != 0 && ts_before(ecr, floor);
                    if let Some(rtt) = echo_rtt(now, ecr, t.opts.ts_offset).filter(|_| !stale) {
                        t.rtt.sample(rtt);
                    }
                }
            } else if let Some(rtt) = t.sampler.on_ack(seg.ack, now) {
                t.rtt.sample(rtt);
            }
            t.timers.retries = 0;
            t.rtt.reset_backoff();
            t.timers.persist_shift = 0;
            // SACK scoreboard (RFC 6675 Update()) and congestion control.
            if t.has(TcbFlags::SACK) {
                t.sb_update(seg.ack, t.head.snd.max, seg.options.sack());
            }
            let flight = t.head.snd.max - seg.ack;
            let outcome = t.cc.on_ack(now, seg.ack, acked, t.rtt.srtt(), flight);
            match outcome {
                AckOutcome::PartialAck if !t.has(TcbFlags::SACK) => {
                    // RFC 6582 §3.2 step 4: retransmit the first unacked
                    // segment.
                    t.head.flags.insert(TcbFlags::REXMIT_ONE);
                }
                AckOutcome::RecoveryExited => {
                    // Without SACK (or before the peer's first block) there
                    // is no scoreboard to end a recovery on: build none.
                    if let Some(sb) = t.sb_if_built() {
                        sb.end_recovery();
                    }
                }
                _ => {}
            }
            // RFC 6298 (5.2)/(5.3): stop the timer when all is acked,
            // otherwise restart it.
            let rto_at = if t.head.snd.una == t.head.snd.max {
                None
            } else {
                Some(now + t.rtt.rto())
            };
            t.timers.set(Timer::Rto, rto_at, &mut fx.wheel);
            let writable = t.head.state.can_send()
                && !t.has(TcbFlags::FIN_QUEUED)
                && (t.sndbuf.len() as u32) < t.send.limit;
            let more =
                !t.sndbuf.is_empty() || t.has(TcbFlags::FIN_QUEUED) || t.has(TcbFlags::REXMIT_ONE);
            if writable {
                fx.event(FlowEvents::WRITABLE);
            }
            if more {
                fx.queue(TxKind::Send);
            }
        } else if seg.ack == una {
            let newly_sacked = if t.has(TcbFlags::SACK) {
                t.sb_update(una, t.head.snd.max, seg.options.sack())
            } else {
                0
            };
            // RFC 5681 §2 (and RFC 6675 §2 with SACK): a duplicate ACK.
            let dup = t.head.snd.max > una
                && no_text
                && !seg.flags.fin()
                && (seg_wnd == t.head.snd.wnd || newly_sacked > 0);
            // With SACK, loss is read off the scoreboard (RFC 6675 §5
            // IsLost), which an ACK riding on data updates too: a peer that
            // is sending (an echo) piggybacks every duplicate ACK, and none
            // of those counts as a duplicate (RFC 5681 §2 (b)).
            let sack_news = t.head.snd.max > una && newly_sacked > 0;
            if dup || sack_news {
                if dup {
                    cx.stats.dup_acks += 1;
                }
                let mss = usize::from(t.send.mss);
                let mut fast = dup && t.cc.on_duplicate_ack(now, una, t.head.snd.max);
                if !fast
                    && t.has(TcbFlags::SACK)
                    && !t.cc.in_recovery()
                    && t.sb().is_lost(una, mss)
                    && t.cc.recover().is_none_or(|r| una > r)
                {
                    // RFC 6675 §5: loss detected by SACK before three
                    // duplicate ACKs.
                    t.cc.enter_recovery(now, t.head.snd.max, t.head.snd.max - una);
                    fast = true;
                }
                if fast {
                    // Fast retransmit (RFC 5681 §3.2, RFC 6675 §5).
                    if t.has(TcbFlags::SACK) {
                        t.sb_mut().start_recovery(una);
                        t.send.recovery_point = t.head.snd.max;
                    }
                    t.head.flags.insert(TcbFlags::REXMIT_ONE);
                    t.sampler.on_retransmit();
                    cx.stats.fast_retransmits += 1;
                    fx.queue(TxKind::Send);
                } else if t.cc.in_recovery() {
                    // cwnd inflated (or pipe shrank): more may go.
                    fx.queue(TxKind::Send);
                }
            }
        }
        // Window update: "If SND.UNA =< SEG.ACK =< SND.NXT, the send window
        // should be updated. If (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and
        // SND.WL2 =< SEG.ACK)), set SND.WND <- SEG.WND, set SND.WL1 <-
        // SEG.SEQ, and set SND.WL2 <- SEG.ACK." SND.WND counts from
        // SND.UNA, so an ACK that moves SND.UNA always updates it too (as
        // Linux does): the peer's retransmission of its own data (SEG.SEQ <
        // SND.WL1) carries its current ACK and window, and keeping the old
        // SND.WND would move the right edge past anything the peer offered.
        let edge = seg.ack + seg_wnd as usize;
        if edge > t.send.max_edge {
            t.send.max_edge = edge;
        }
        let newer = t.send.wl1 < seg.seq || (t.send.wl1 == seg.seq && t.send.wl2 <= seg.ack);
        if seg.ack >= una && (seg.ack > una || newer) {
            let opened = seg_wnd > t.head.snd.wnd;
            t.head.snd.wnd = seg_wnd;
            t.send.wl1 = seg.seq;
            t.send.wl2 = seg.ack;
            t.send.max_wnd = t.send.max_wnd.max(seg_wnd);
            // Only a window that opened ends the persist timer (the send
            // it queues arms it again if the window is still too small):
            // a duplicate ACK repeating a small window must not, or data
            // held back by sender SWS avoidance with nothing in flight
            // would wait forever once the peer's window update is lost.
            if seg_wnd > 0 && opened {
                t.timers.set(Timer::Persist, None, &mut fx.wheel);
                t.timers.persist_shift = 0;
            }
            let fin_waits = t.has(TcbFlags::FIN_QUEUED) && !t.has(TcbFlags::FIN_SENT);
            if opened && (t.sndbuf.len() > t.head.snd.nxt - t.head.snd.una || fin_waits) {
                fx.queue(TxKind::Send);
            }
        }
        true
    }

    /// Queues an immediate ACK.
    fn ack_now(&mut self, fx: &mut Effects) {
        self.head.flags.insert(TcbFlags::ACK_NOW);
        fx.queue(TxKind::Ack);
    }

    /// Seventh step: stores `payload` (starting at `seq`, at or after
    /// RCV.NXT and inside the window), advances RCV.NXT over what became
    /// contiguous and decides how to ACK.
    pub(crate) fn receive_data(
        &mut self,
        cx: &mut Cx<'_>,
        now: Instant,
        seq: SeqNumber,
        payload: &[u8],
        fx: &mut Effects,
    ) {
        let cs = cx.pool.chunk_size();
        let t = self;
        let off = seq - t.head.rcv.nxt;
        let base = t.rcvbuf.len();
        let had_ooo = t.has_ooo();
        let before = t.rcvbuf.ooo_chunks(cx.pool);
        if off > 0 {
            // Out of order: bounded per connection (Assembler ranges) and
            // per core (chunks holding out-of-order data).
            if *cx.ooo_chunks + payload.len().div_ceil(cs) + 1 > cx.cfg.ooo_max_chunks {
                cx.stats.drops.ooo_limit += 1;
                t.ack_now(fx);
                return;
            }
            if t.rcvbuf.write_at(cx.pool, base + off, payload).is_err() {
                cx.stats.drops.pool_exhausted += 1;
            } else if t
                .ooo_mut(cx.cfg.ooo_max_ranges)
                .add(off, payload.len())
                .is_err()
            {
                cx.stats.drops.ooo_limit += 1;
            }
            let after = t.rcvbuf.ooo_chunks(cx.pool);
            *cx.ooo_chunks = (*cx.ooo_chunks + after).saturating_sub(before);
            // RFC 5681 §4.2: an out-of-order segment is ACKed at once (a
            // duplicate ACK, with SACK blocks when negotiated), one ACK per
            // segment.
            t.receive.dupacks_owed = t
                .receive
                .dupacks_owed
                .saturating_add(1)
                .min(MAX_DUPACKS_PER_TICK);
            t.ack_now(fx);
            return;
        }
        if t.rcvbuf.write_at(cx.pool, base, payload).is_err() {
            cx.stats.drops.pool_exhausted += 1;
            t.ack_now(fx);
            return;
        }
        let adv = t.ooo_advance(payload.len());
        t.rcvbuf.commit(adv);
        t.head.rcv.nxt += adv;
        let after = t.rcvbuf.ooo_chunks(cx.pool);
        *cx.ooo_chunks = (*cx.ooo_chunks + after).saturating_sub(before);
        cx.stats.bytes_in += adv as u64;
        if t.has(TcbFlags::USER_CLOSED) {
            // Nobody will read: drop it (still acknowledged).
            let n = t.rcvbuf.len();
            t.rcvbuf.discard(cx.pool, n);
        }
        t.receive.unacked_bytes = t.receive.unacked_bytes.saturating_add(adv as u32);
        let seen = payload.len().min(usize::from(t.receive.mss)) as u16;
        t.receive.seg_size = t
            .receive
            .seg_size
            .max(seen)
            .max(DEFAULT_MSS.min(t.receive.mss));
        let full = 2 * u32::from(t.receive.seg_size);
        if had_ooo || t.receive.unacked_bytes >= full {
            // Gap filled, or a second full-sized segment (RFC 5681 §4.2).
            t.ack_now(fx);
        } else {
            t.head.flags.insert(TcbFlags::ACK_DELAYED);
            if t.timers.deadline(Timer::DelayedAck).is_none() {
                t.timers.set(
                    Timer::DelayedAck,
                    Some(now + cx.cfg.delayed_ack),
                    &mut fx.wheel,
                );
            }
        }
        fx.event(FlowEvents::READABLE);
    }

    /// Eighth step: the peer's FIN is in sequence.
    pub(crate) fn process_fin(&mut self, now: Instant, fx: &mut Effects) {
        let t = self;
        // "Advance RCV.NXT over the FIN, and send an acknowledgment for
        // the FIN."
        t.head.rcv.nxt += 1;
        t.set_ooo_fin(None);
        t.head.flags.insert(TcbFlags::FIN_RECEIVED);
        let fin_acked = t.has(TcbFlags::FIN_SENT) && t.head.snd.una == t.head.snd.max;
        let state = t.head.state;
        t.ack_now(fx);
        fx.event(FlowEvents::READABLE);
        match state {
            // "SYN-RECEIVED / ESTABLISHED: Enter the CLOSE-WAIT state."
            State::SynReceived | State::Established => {
                t.head.state = State::CloseWait;
            }
            // "FIN-WAIT-1: If our FIN has been ACKed, then enter TIME-WAIT,
            // start the time-wait timer, turn off the other timers;
            // otherwise, enter the CLOSING state."
            State::FinWait1 => {
                if fin_acked {
                    fx.end(End::TimeWait { now, ack_fin: true });
                } else {
                    t.head.state = State::Closing;
                }
            }
            // "FIN-WAIT-2: Enter the TIME-WAIT state."
            State::FinWait2 => fx.end(End::TimeWait { now, ack_fin: true }),
            // TIME-WAIT is not a TCB state here (see `time_wait_input`).
            // Others remain.
            _ => {}
        }
    }
}

impl TcpStack {
    /// A segment for a 4-tuple in TIME-WAIT (RFC 9293 §3.10.7.4, TIME-WAIT
    /// rows), other than a SYN that reopens it (see `input`):
    ///
    /// - PAWS (RFC 7323 §5.3): an old TSval is answered with an ACK and
    ///   dropped (never for a RST).
    /// - RST: with SEG.SEQ = RCV.NXT (RFC 5961 §3.2) it ends TIME-WAIT at
    ///   once, as Linux does by default (`tcp_rfc1337 = 0`); any other RST
    ///   is dropped. (RFC 1337's hazard: an old RST can end TIME-WAIT
    ///   early; PAWS and the exact-sequence rule narrow it.)
    /// - SYN: a challenge ACK (RFC 5961 §4), rate-limited per core.
    /// - FIN: "the only thing that can arrive in this state is a
    ///   retransmission of the remote FIN. Acknowledge it, and restart the
    ///   2 MSL timeout" (restarted at most once a second).
    /// - Data: old by definition; acknowledged.
    /// - A pure ACK: nothing to answer (counted as ignored).
    pub(crate) fn time_wait_input(&mut self, now: Instant, e: &TimeWaitEntry, seg: &TcpRepr) {
        if e.timestamps && !seg.flags.rst() {
            if let Some((tsval, _)) = seg.options.timestamp {
                if paws_rejects(tsval, e.ts_recent, e.ts_recent_secs, now) {
                    self.stats.drops.paws += 1;
                    self.time_wait_ack(e, now);
                    return;
                }
            }
        }
        if seg.flags.rst() {
            if seg.seq == e.rcv_nxt {
                self.stats.resets_received += 1;
                self.stats.time_wait_reset += 1;
                self.tw.remove(&e.key);
            } else {
                self.stats.drops.out_of_window += 1;
            }
            return;
        }
        if seg.flags.syn() {
            if self.challenge_allowed(now) {
                self.time_wait_ack(e, now);
            }
            return;
        }
        if seg.flags.fin() {
            if let (true, Some((tsval, _))) = (e.timestamps, seg.options.timestamp) {
                if let Some(m) = self.tw.get_mut(&e.key) {
                    m.ts_recent = tsval;
                    m.ts_recent_secs = secs(now);
                }
            }
            self.restart_time_wait(&e.key, now);
            let e = self.tw.get(&e.key).copied().unwrap_or(*e);
            self.time_wait_ack(&e, now);
            return;
        }
        if !seg.payload.is_empty() {
            self.stats.drops.out_of_window += 1;
            self.time_wait_ack(e, now);
            return;
        }
        self.stats.drops.ignored += 1;
    }
}

impl TcpStack {
    /// The SYN queue is full: answer with a SYN-ACK whose ISN is a cookie
    /// and keep no state.
    fn send_cookie(&mut self, now: Instant, key: FlowKey, seg: &TcpRepr) {
        let tuple = four_tuple(&key);
        let iss = self
            .cookies
            .encode(now, &tuple, seg.seq, seg.options.mss.unwrap_or(DEFAULT_MSS));
        self.stats.syn_cookies_sent += 1;
        self.reply(Reply {
            src: key.local_ip,
            dst: key.remote_ip,
            src_port: key.local_port,
            dst_port: key.remote_port,
            seq: iss,
            ack: seg.seq + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: self.cfg.recv_buffer.min(65535) as u16,
            options: TcpOptions {
                mss: Some(self.cfg.mss()),
                ..TcpOptions::default()
            },
        });
    }

    /// An ACK to a listener: when it carries a valid cookie, the connection
    /// is created directly in ESTABLISHED. Returns true when it did.
    fn cookie_ack(
        &mut self,
        now: Instant,
        listener: SocketId,
        key: FlowKey,
        seg: &TcpRepr,
    ) -> bool {
        if !self.queue_of(listener.index()).has_room() {
            return false;
        }
        let tuple = four_tuple(&key);
        let Some(mss) = self.cookies.decode(now, &tuple, seg.ack - 1, seg.seq - 1) else {
            self.stats.drops.bad_cookie += 1;
            return false;
        };
        // At the table's limit the caller answers with a RST.
        let Some(id) = self.tcbs.alloc() else {
            self.stats.drops.no_tcb += 1;
            self.stats.table_full_resets += 1;
            return false;
        };
        let index = id.index();
        if self.add_flow(key, index).is_err() {
            self.tcbs.free(id);
            self.stats.drops.no_tcb += 1;
            self.stats.table_full_resets += 1;
            return false;
        }
        self.init_connection(index, key, now);
        let space = self.rcv_space_of(index).min(65535);
        let cfg = &self.cfg;
        let t = self.tcbs.at_mut(index);
        t.listen.parent = Some(listener);
        t.head.flags.insert(TcbFlags::PASSIVE);
        t.head.flags.insert(TcbFlags::FROM_COOKIE);
        // The cookie carried only the MSS: no window scaling, SACK or
        // timestamps on this connection.
        Self::apply_syn_options(
            cfg,
            t,
            &TcpOptions {
                mss: Some(mss),
                ..TcpOptions::default()
            },
            now,
        );
        super::icmp::clamp_mss(t, self.pmtu.lookup(t.key.remote_ip, now));
        t.receive.irs = seg.seq - 1;
        t.head.rcv.nxt = seg.seq;
        t.receive.adv_edge = seg.seq + space;
        t.receive.last_ack_sent = seg.seq;
        t.send.iss = seg.ack - 1;
        t.head.snd.una = seg.ack;
        t.head.snd.nxt = seg.ack;
        t.head.snd.max = seg.ack;
        t.head.snd.wnd = u32::from(seg.window);
        t.send.max_wnd = t.head.snd.wnd;
        t.send.max_edge = seg.ack + usize::from(seg.window);
        t.send.wl1 = seg.seq;
        t.send.wl2 = seg.ack;
        t.head.state = State::Established;
        self.stats.syn_cookies_accepted += 1;
        self.arm_keepalive(index, now);
        if !self.child_established(index) {
            return true;
        }
        // Data or FIN riding on the ACK.
        if !seg.payload.is_empty() || seg.flags.fin() {
            self.process(now, index, seg);
        }
        true
    }
}

fn four_tuple(key: &FlowKey) -> FourTuple {
    FourTuple {
        local_ip: key.local_ip,
        local_port: key.local_port,
        remote_ip: key.remote_ip,
        remote_port: key.remote_port,
    }
}

/// The RTT measured by a timestamp echo (RFC 7323 §4.1): our clock now
/// minus the TSval we sent, echoed in `ecr`. A zero, future or implausibly
/// old echo (over [`MAX_ECHO_RTT_MS`]) gives no sample, so a forged echo
/// cannot inflate the RTO.
fn echo_rtt(now: Instant, ecr: u32, offset: u32) -> Option<crate::time::Duration> {
    if ecr == 0 {
        return None;
    }
    let now_ms = (now.total_millis() as u32).wrapping_add(offset);
    let rtt = now_ms.wrapping_sub(ecr);
    (rtt <= MAX_ECHO_RTT_MS).then(|| crate::time::Duration::from_millis(u64::from(rtt)))
}

/// Longest RTT a timestamp echo may report.
const MAX_ECHO_RTT_MS: u32 = 60_000;

/// RFC 6191 (and RFC 9293 §3.6.1 note): may a SYN reopen this TIME-WAIT
/// connection? With timestamps, when its TSval is newer than TS.Recent;
/// otherwise when its sequence number is beyond RCV.NXT.
fn tw_syn_acceptable(e: &TimeWaitEntry, seg: &TcpRepr) -> bool {
    match (e.timestamps, seg.options.timestamp) {
        (true, Some((tsval, _))) => ts_before(e.ts_recent, tsval),
        _ => seg.seq > e.rcv_nxt,
    }
}

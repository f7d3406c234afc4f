//! Input: RFC 9293 §3.10.7 "SEGMENT ARRIVES", step by step.
//!
//! [`TcpStack::input`] looks the 4-tuple up in the flow table (a hash
//! lookup, never a scan), then the listener table, and otherwise answers
//! with a RST (§3.10.7.1). Each arm below names the RFC step it implements.
//! RFC 5961 (challenge ACKs, RST and SYN checks, ACK acceptability) and
//! RFC 7323 (PAWS, TS.Recent) are folded into the steps where they apply.

use super::congestion::{AckOutcome, Congestion};
use super::events::FlowEvents;
use super::flow_table::FlowKey;
use super::isn::{siphash24, FourTuple};
use super::output::rcv_space;
use super::socket::TcpError;
use super::stack::{Reply, TcpConfig, TcpStack};
use super::state::State;
use super::tcb::{SocketId, Tcb, TcbFlags};
use super::time_wait::TimeWaitEntry;
use super::tx_list::TxKind;
use crate::time::Instant;
use crate::wire::ipv4::Ipv4Address;
use crate::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;

/// The MSS assumed when the peer sends none (RFC 9293 §3.7.1).
pub(crate) const DEFAULT_MSS: u16 = 536;
/// The smallest MSS we accept from a peer (smaller values are raised).
pub(crate) const MIN_MSS: u16 = 64;

/// Most duplicate ACKs one connection sends in one tick.
const MAX_DUPACKS_PER_TICK: u8 = 16;

/// RFC 6298 (5.7): the RTO after a handshake whose SYN timed out.
const SYN_TIMEOUT_RTO: crate::time::Duration = crate::time::Duration::from_secs(3);

/// Least time between two ACKs answering out-of-window pure ACKs.
const OOW_ACK_INTERVAL: crate::time::Duration = crate::time::Duration::from_millis(500);

/// `a < b` for 32-bit timestamps (wrapping, RFC 7323 §5.2).
fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
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
        if let Some(id) = self.flows.get(&key) {
            self.process(now, id.index(), seg);
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

    /// §3.10.7.1 (CLOSED): "If the ACK bit is off, sequence number zero is
    /// used, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; if the ACK bit is
    /// on, <SEQ=SEG.ACK><CTL=RST>". Never a RST in reply to a RST.
    pub(crate) fn reset_for(&mut self, local: Ipv4Address, remote: Ipv4Address, seg: &TcpRepr) {
        if seg.flags.rst() {
            return;
        }
        let (seq, ack, flags) = if seg.flags.ack() {
            (seg.ack, SeqNumber(0), TcpFlags::RST)
        } else {
            let len = seg.segment_len().min(i32::MAX as usize);
            (SeqNumber(0), seg.seq + len, TcpFlags::RST | TcpFlags::ACK)
        };
        self.stats.resets_sent += 1;
        self.reply(Reply {
            src: local,
            dst: remote,
            src_port: seg.dst_port,
            dst_port: seg.src_port,
            seq,
            ack,
            flags,
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

    /// Sets up the per-connection settings shared by active and passive
    /// opens.
    pub(crate) fn init_connection(&mut self, index: u32, key: FlowKey, now: Instant) {
        // RFC 7323 §5.4: a random timestamp offset, the same for every
        // connection between two addresses (as Linux), so that a new
        // connection's TSvals continue the old one's and PAWS / TIME-WAIT
        // reuse (RFC 6191) can rely on them.
        let mut pair = [0u8; 8];
        pair[..4].copy_from_slice(&key.local_ip.octets());
        pair[4..].copy_from_slice(&key.remote_ip.octets());
        let ts_offset = siphash24(&self.ts_secret, &pair) as u32;
        let cfg = &self.cfg;
        let t = self.tcbs.at_mut(index);
        t.key = key;
        t.send.limit = cfg.send_buffer as u32;
        t.receive.limit = cfg.recv_buffer as u32;
        t.receive.mss = cfg.mss();
        t.receive.wscale = TcpConfig::wscale_for(cfg.recv_buffer);
        t.send.mss = DEFAULT_MSS;
        t.rtt = super::rtt::RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max);
        t.opts.ts_offset = ts_offset;
        t.opts.ka_idle = cfg.keepalive.idle;
        t.opts.ka_interval = cfg.keepalive.interval;
        t.opts.ka_count = cfg.keepalive.count;
        if cfg.keepalive_default {
            t.hot.flags.set(TcbFlags::KEEPALIVE);
        }
        t.cc = Congestion::new(cfg.congestion, usize::from(DEFAULT_MSS));
        t.timers.last_rx = now;
    }

    /// Applies the options of the peer's SYN (or SYN-ACK).
    pub(crate) fn apply_syn_options(cfg: &TcpConfig, t: &mut Tcb, o: &TcpOptions, now: Instant) {
        let ts = cfg.timestamps && o.timestamp.is_some();
        if ts {
            t.hot.flags.set(TcbFlags::TIMESTAMPS);
            t.receive.ts_recent = o.timestamp.map_or(0, |(v, _)| v);
            t.receive.ts_recent_at = now;
        } else {
            t.hot.flags.clear(TcbFlags::TIMESTAMPS);
        }
        match o.window_scale {
            Some(ws) if cfg.window_scaling => {
                t.hot.flags.set(TcbFlags::WSCALE);
                // RFC 7323 §2.3: a shift above 14 is used as 14.
                t.send.wscale = ws.min(14);
            }
            _ => {
                t.hot.flags.clear(TcbFlags::WSCALE);
                t.send.wscale = 0;
                t.receive.wscale = 0;
            }
        }
        if cfg.sack && o.sack_permitted {
            t.hot.flags.set(TcbFlags::SACK);
        } else {
            t.hot.flags.clear(TcbFlags::SACK);
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
        let l = self.tcbs.at(listener.index());
        if l.listen.accept_len >= l.listen.backlog {
            self.stats.drops.accept_queue_full += 1;
            return;
        }
        if l.listen.syn_count as usize >= self.cfg.syn_backlog {
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
        if self.flows.insert(key, id).is_err() {
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
        let l = self.tcbs.at_mut(listener.index());
        l.listen.syn_count += 1;
        let cfg = &self.cfg;
        let t = self.tcbs.at_mut(index);
        t.listen.parent = Some(listener);
        t.listen.in_syn_queue = true;
        t.hot.flags.set(TcbFlags::PASSIVE);
        // "Set RCV.NXT to SEG.SEQ+1, IRS is set to SEG.SEQ, and any other
        // control or text should be queued for processing later. ISS
        // should be selected and a SYN segment sent of the form
        // <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>. SND.NXT is set to ISS+1 and
        // SND.UNA to ISS. The connection state should be changed to
        // SYN-RECEIVED." (Data on the SYN is not queued: the peer resends.)
        Self::apply_syn_options(cfg, t, &seg.options, now);
        super::icmp::clamp_mss(t, self.pmtu.lookup(t.key.remote_ip, now));
        t.receive.irs = seg.seq;
        t.hot.rcv.nxt = seg.seq + 1;
        t.receive.adv_edge = t.hot.rcv.nxt;
        t.send.iss = iss;
        t.hot.snd.una = iss;
        t.hot.snd.nxt = iss;
        t.send.max = iss;
        t.hot.snd.wnd = u32::from(seg.window);
        t.send.max_wnd = t.hot.snd.wnd;
        t.send.max_edge = iss + usize::from(seg.window);
        t.send.wl1 = seg.seq;
        t.send.wl2 = iss;
        t.hot.state = State::SynReceived;
        t.hot.flags.set(TcbFlags::SYN_PENDING);
        self.queue(index, TxKind::Control);
    }

    /// The segment belongs to the connection at `index`.
    fn process(&mut self, now: Instant, index: u32, seg: &TcpRepr) {
        match self.tcbs.at(index).hot.state {
            State::SynSent => self.syn_sent_input(now, index, seg),
            State::Closed | State::Listen => {
                self.stats.drops.ignored += 1;
            }
            _ => self.synchronized_input(now, index, seg),
        }
    }

    /// §3.10.7.3 SYN-SENT.
    fn syn_sent_input(&mut self, now: Instant, index: u32, seg: &TcpRepr) {
        let t = self.tcbs.at(index);
        let (iss, max) = (t.send.iss, t.send.max);
        // "First, check the ACK bit: if SEG.ACK =< ISS or SEG.ACK > SND.NXT,
        // send a reset (unless the RST bit is set, if so drop the segment
        // and return) <SEQ=SEG.ACK><CTL=RST>."
        if seg.flags.ack() && (seg.ack <= iss || seg.ack > max) {
            let key = t.key;
            self.stats.drops.bad_ack += 1;
            // The answer to an unacceptable SYN-ACK shares the challenge
            // ACK rate limit (RFC 5961 §7), so a flood of them cannot make
            // us send a flood of RSTs.
            if !seg.flags.syn() || self.challenge_allowed(now) {
                self.reset_for(key.local_ip, key.remote_ip, seg);
            }
            return;
        }
        // "Second, check the RST bit: if the ACK was acceptable, signal to
        // the user 'error: connection reset', drop the segment, enter
        // CLOSED state, delete TCB. Otherwise (no ACK) drop the segment."
        if seg.flags.rst() {
            if seg.flags.ack() {
                self.stats.resets_received += 1;
                self.enter_closed(index, Some(TcpError::ConnectionRefused));
            }
            return;
        }
        // "Third, check the security" — skipped.
        // "Fourth, check the SYN bit."
        if !seg.flags.syn() {
            self.stats.drops.ignored += 1;
            return;
        }
        // The window our SYN offered (SYN windows are never scaled).
        let offered = self.rcv_space_of(index).min(65535);
        let cfg = &self.cfg;
        let t = self.tcbs.at_mut(index);
        // "RCV.NXT is set to SEG.SEQ+1, IRS is set to SEG.SEQ. SND.UNA
        // should be advanced to equal SEG.ACK (if there is an ACK)."
        Self::apply_syn_options(cfg, t, &seg.options, now);
        super::icmp::clamp_mss(t, self.pmtu.lookup(t.key.remote_ip, now));
        t.receive.irs = seg.seq;
        t.hot.rcv.nxt = seg.seq + 1;
        t.receive.adv_edge = t.hot.rcv.nxt + offered;
        t.hot.snd.wnd = u32::from(seg.window);
        t.send.max_wnd = t.hot.snd.wnd;
        t.send.max_edge = seg.ack + usize::from(seg.window);
        t.send.wl1 = seg.seq;
        t.send.wl2 = seg.ack;
        if seg.flags.ack() {
            // "If SND.UNA > ISS (our SYN has been ACKed), change the
            // connection state to ESTABLISHED, form an ACK segment
            // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it."
            t.hot.snd.una = seg.ack;
            if t.hot.snd.nxt < seg.ack {
                t.hot.snd.nxt = seg.ack;
            }
            t.hot.state = State::Established;
            t.receive.last_ack_sent = t.hot.rcv.nxt;
            Self::rtt_on_handshake(cfg, t, seg, now);
            t.timers.rto_at = None;
            t.timers.retries = 0;
            t.hot.flags.set(TcbFlags::ACK_NOW);
            self.stats.active_opens += 1;
            self.arm_keepalive(index, now);
            self.queue(index, TxKind::Ack);
            if !self.tcbs.at(index).sndbuf.is_empty() {
                self.queue(index, TxKind::Send);
            }
            self.event(index, FlowEvents::CONNECTED | FlowEvents::WRITABLE);
            self.rearm(index);
            // "If there are other controls or text in the segment, continue
            // processing at the sixth step": data or FIN on the SYN-ACK.
            if !seg.payload.is_empty() || seg.flags.fin() {
                let rest = TcpRepr {
                    seq: seg.seq + 1,
                    flags: seg.flags.without(TcpFlags::SYN),
                    ..*seg
                };
                self.synchronized_input(now, index, &rest);
            }
        } else {
            // "Otherwise, enter SYN-RECEIVED, form a SYN,ACK segment
            // <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it."
            // (Simultaneous open.)
            t.hot.state = State::SynReceived;
            t.hot.flags.set(TcbFlags::SYN_PENDING);
            self.queue(index, TxKind::Control);
        }
    }

    /// The RTT sample of a completed handshake.
    fn rtt_on_handshake(cfg: &TcpConfig, t: &mut Tcb, seg: &TcpRepr, now: Instant) {
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

    /// Challenge ACK (RFC 5961 §3.2, §4.2, §5.2), rate limited per core.
    fn challenge_ack(&mut self, index: u32, now: Instant) {
        if self.challenge_allowed(now) {
            self.tcbs.at_mut(index).hot.flags.set(TcbFlags::ACK_NOW);
            self.queue(index, TxKind::Ack);
        }
    }

    /// Queues an immediate ACK.
    fn ack_now(&mut self, index: u32) {
        self.tcbs.at_mut(index).hot.flags.set(TcbFlags::ACK_NOW);
        self.queue(index, TxKind::Ack);
    }

    /// §3.10.7.4 "Otherwise" (SYN-RECEIVED and the synchronized states).
    fn synchronized_input(&mut self, now: Instant, index: u32, seg: &TcpRepr) {
        let t = self.tcbs.at(index);
        let state = t.hot.state;
        let rcv_nxt = t.hot.rcv.nxt;

        // A retransmitted SYN in SYN-RECEIVED: our SYN-ACK was lost.
        if state == State::SynReceived
            && seg.flags.syn()
            && !seg.flags.ack()
            && !seg.flags.rst()
            && seg.seq == t.receive.irs
        {
            self.tcbs.at_mut(index).hot.flags.set(TcbFlags::SYN_PENDING);
            self.queue(index, TxKind::Control);
            return;
        }

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
            self.synchronized_input(now, index, &rest);
            return;
        }

        // RFC 7323 §5.3 (PAWS), before the sequence check: a segment whose
        // TSval is older than TS.Recent is a duplicate; ACK it and drop it
        // (never for a RST).
        if t.has(TcbFlags::TIMESTAMPS) && !seg.flags.rst() {
            if let Some((tsval, _)) = seg.options.timestamp {
                if ts_before(tsval, t.receive.ts_recent) {
                    self.stats.drops.paws += 1;
                    self.ack_now(index);
                    return;
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
            self.stats.drops.out_of_window += 1;
            if !seg.flags.rst() {
                // Answering every out-of-window pure ACK can make two
                // endpoints ping-pong ACKs forever; like Linux
                // (tcp_invalid_ratelimit), answer those at most every
                // 500 ms per connection. Old data always gets its ACK.
                let t = self.tcbs.at_mut(index);
                if seg.flags.syn() {
                    // RFC 5961 §4: an out-of-window SYN or SYN-ACK is
                    // answered by a challenge ACK under the per-core rate
                    // limit (§7). Unlimited, a half-open connection that
                    // receives its own SYN-ACK (a LAND SYN, through the
                    // loopback) would answer itself forever.
                    self.challenge_ack(index, now);
                } else if seg_len > 0 || now >= t.timers.oow_ack_at {
                    t.timers.oow_ack_at = now + OOW_ACK_INTERVAL;
                    self.ack_now(index);
                }
            }
            return;
        }

        // Trim the segment to the window: drop what is before RCV.NXT and
        // what is beyond the right edge.
        let mut seq = seg.seq;
        let mut payload = seg.payload;
        let mut fin = seg.flags.fin();
        if strip_text {
            // The text does not fit the zero window: tell the peer so.
            if !seg.payload.is_empty() || seg.flags.fin() {
                self.ack_now(index);
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
        // Last.ACK.sent then SEG.TSval is copied to TS.Recent."
        {
            let t = self.tcbs.at_mut(index);
            if t.has(TcbFlags::TIMESTAMPS) {
                if let Some((tsval, _)) = seg.options.timestamp {
                    if !ts_before(tsval, t.receive.ts_recent) && seg.seq <= t.receive.last_ack_sent
                    {
                        t.receive.ts_recent = tsval;
                        t.receive.ts_recent_at = now;
                    }
                }
            }
            t.timers.last_rx = now;
            t.timers.ka_probes = 0;
        }

        // "Second, check the RST bit." RFC 5961 §3.2: reset only when
        // SEG.SEQ exactly equals RCV.NXT; otherwise (in the window) send a
        // challenge ACK.
        if seg.flags.rst() {
            if seg.seq != rcv_nxt {
                self.challenge_ack(index, now);
                return;
            }
            self.stats.resets_received += 1;
            match state {
                // "If this connection was initiated with a passive OPEN,
                // then return this connection to the LISTEN state" (the
                // child is simply freed); active: "connection refused".
                State::SynReceived => {
                    if self.tcbs.at(index).has(TcbFlags::PASSIVE) {
                        self.enter_closed(index, None);
                    } else {
                        self.enter_closed(index, Some(TcpError::ConnectionRefused));
                    }
                }
                // "Any outstanding RECEIVEs and SEND should receive 'reset'
                // responses ... enter the CLOSED state, delete the TCB."
                State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                    self.stats.conns_reset += 1;
                    self.enter_closed(index, Some(TcpError::ConnectionReset));
                }
                // CLOSING, LAST-ACK, TIME-WAIT: "enter the CLOSED state,
                // delete the TCB, and return."
                _ => self.enter_closed(index, None),
            }
            return;
        }

        // "Third, check security" — skipped.

        // "Fourth, check the SYN bit." RFC 5961 §4.2: a SYN in a
        // synchronized state, whatever its sequence number, gets a
        // challenge ACK. In SYN-RECEIVED after a passive OPEN, "return
        // this connection to the LISTEN state".
        if seg.flags.syn() {
            if state == State::SynReceived && self.tcbs.at(index).has(TcbFlags::PASSIVE) {
                self.enter_closed(index, None);
                return;
            }
            self.challenge_ack(index, now);
            return;
        }

        // "Fifth, check the ACK field: if the ACK bit is off drop the
        // segment and return."
        if !seg.flags.ack() {
            self.stats.drops.ignored += 1;
            return;
        }
        if state == State::SynReceived {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED
            // state and continue processing with the variables below set
            // to: SND.WND <- SEG.WND, SND.WL1 <- SEG.SEQ, SND.WL2 <-
            // SEG.ACK. If the segment acknowledgment is not acceptable,
            // form a reset segment <SEQ=SEG.ACK><CTL=RST> and send it."
            let cfg = &self.cfg;
            let t = self.tcbs.at_mut(index);
            if !(t.hot.snd.una < seg.ack && seg.ack <= t.send.max) {
                let key = t.key;
                self.stats.drops.bad_ack += 1;
                self.reset_for(key.local_ip, key.remote_ip, seg);
                return;
            }
            t.hot.state = State::Established;
            t.hot.snd.wnd = u32::from(seg.window) << t.send.wscale;
            t.send.max_wnd = t.send.max_wnd.max(t.hot.snd.wnd);
            t.send.max_edge = seg.ack + t.hot.snd.wnd as usize;
            t.send.wl1 = seg.seq;
            t.send.wl2 = seg.ack;
            Self::rtt_on_handshake(cfg, t, seg, now);
            // The SYN is acknowledged.
            t.hot.snd.una = t.send.iss + 1;
            if t.hot.snd.nxt < t.hot.snd.una {
                t.hot.snd.nxt = t.hot.snd.una;
            }
            t.timers.rto_at = None;
            t.timers.retries = 0;
            t.rtt.reset_backoff();
            if t.has(TcbFlags::FIN_QUEUED) {
                // The user shut down during the handshake.
                t.hot.state = State::FinWait1;
                self.queue(index, TxKind::Control);
            }
            self.arm_keepalive(index, now);
            if !self.child_established(index) {
                return;
            }
        }
        if !self.process_ack(now, index, seg, payload.is_empty()) {
            return;
        }

        // FIN-WAIT-1: "if the FIN segment is now acknowledged, then enter
        // FIN-WAIT-2". CLOSING: "if the ACK acknowledges our FIN, then enter
        // the TIME-WAIT state". LAST-ACK: "if our FIN is now acknowledged,
        // delete the TCB, enter the CLOSED state".
        let t = self.tcbs.at(index);
        let fin_acked =
            t.has(TcbFlags::FIN_SENT) && t.hot.snd.una == t.send.max && t.sndbuf.is_empty();
        match (t.hot.state, fin_acked) {
            (State::FinWait1, true) => {
                self.tcbs.at_mut(index).hot.state = State::FinWait2;
                self.arm_fin_wait_2(index, now);
            }
            (State::Closing, true) => {
                self.enter_time_wait(index, now, false);
                return;
            }
            (State::LastAck, true) => {
                self.enter_closed(index, None);
                return;
            }
            _ => {}
        }

        // "Sixth, check the URG bit" — counted in `input`, data delivered
        // as ordinary bytes.

        // "Seventh, process the segment text" (ESTABLISHED, FIN-WAIT-1,
        // FIN-WAIT-2 only).
        let state = self.tcbs.at(index).hot.state;
        if !payload.is_empty() {
            if state.accepts_data() {
                if self.data_after_close(index, seg) {
                    return;
                }
                self.receive_data(now, index, seq, payload);
            } else {
                self.stats.drops.ignored += 1;
            }
        }

        // "Eighth, check the FIN bit."
        if fin
            && matches!(
                state,
                State::Established
                    | State::FinWait1
                    | State::FinWait2
                    | State::CloseWait
                    | State::Closing
                    | State::LastAck
            )
        {
            let fin_seq = seq + payload.len();
            let t = self.tcbs.at_mut(index);
            if fin_seq == t.hot.rcv.nxt {
                self.process_fin(now, index);
            } else if fin_seq > t.hot.rcv.nxt {
                // Out of order: remembered until the gap is filled.
                t.receive.fin_seq = Some(fin_seq);
                self.ack_now(index);
            }
        } else {
            let t = self.tcbs.at(index);
            if t.receive.fin_seq == Some(t.hot.rcv.nxt) && !t.has(TcbFlags::FIN_RECEIVED) {
                self.process_fin(now, index);
            }
        }
    }

    /// The handshake of a passive child completed: hand it to its
    /// listener's accept queue. Returns false when the child was dropped.
    fn child_established(&mut self, index: u32) -> bool {
        let t = self.tcbs.at(index);
        if !t.has(TcbFlags::PASSIVE) {
            // Simultaneous open: our own connect completed.
            self.stats.active_opens += 1;
            self.event(index, FlowEvents::CONNECTED | FlowEvents::WRITABLE);
            return true;
        }
        let parent = t.listen.parent;
        let from_syn_queue = t.listen.in_syn_queue;
        let ok = match parent.and_then(|p| self.tcbs.get(p)) {
            Some(l) => l.hot.state == State::Listen && l.listen.accept_len < l.listen.backlog,
            None => false,
        };
        if !ok {
            // The listener is gone or its accept queue is full: reset.
            self.stats.drops.accept_queue_full += 1;
            self.abort_index(index);
            return false;
        }
        let Some(p) = parent else { return false };
        let (c, l) = self.tcbs.pair_mut(index, p.index());
        if from_syn_queue {
            l.listen.syn_count = l.listen.syn_count.saturating_sub(1);
            c.listen.in_syn_queue = false;
        }
        c.listen.in_accept_queue = true;
        c.listen.accept_next = u32::MAX;
        if l.listen.accept_tail == u32::MAX {
            l.listen.accept_head = index;
        } else {
            let tail = l.listen.accept_tail;
            self.tcbs.at_mut(tail).listen.accept_next = index;
        }
        let l = self.tcbs.at_mut(p.index());
        l.listen.accept_tail = index;
        l.listen.accept_len += 1;
        self.stats.passive_opens += 1;
        self.event(p.index(), FlowEvents::ACCEPTABLE);
        true
    }

    /// The ACK field of an acceptable segment (fifth step, ESTABLISHED and
    /// later). Returns false when the segment must be dropped.
    fn process_ack(&mut self, now: Instant, index: u32, seg: &TcpRepr, no_text: bool) -> bool {
        let t = self.tcbs.at_mut(index);
        let una = t.hot.snd.una;
        let max = t.send.max;
        // RFC 5961 §5.2: acceptable when SND.UNA - MAX.SND.WND <= SEG.ACK
        // <= SND.NXT (SND.MAX here, since SND.NXT rewinds on RTO).
        if seg.ack > max {
            // "If the ACK acks something not yet sent (SEG.ACK > SND.NXT)
            // then send an ACK, drop the segment, and return."
            self.stats.drops.bad_ack += 1;
            self.challenge_ack(index, now);
            return false;
        }
        let max_wnd = (t.send.max_wnd as usize).min(i32::MAX as usize);
        if seg.ack < una - max_wnd {
            // "If SEG.ACK < SND.UNA - MAX.SND.WND then ... send an ACK,
            // drop the segment, and return": a challenge ACK, rate limited
            // like the others (§7).
            self.stats.drops.bad_ack += 1;
            self.challenge_ack(index, now);
            return false;
        }
        let seg_wnd = u32::from(seg.window) << t.send.wscale;
        if seg.ack > una {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then set SND.UNA <- SEG.ACK.
            // Any segments on the retransmission queue that are thereby
            // entirely acknowledged are removed."
            let acked = seg.ack - una;
            let data = acked.min(t.sndbuf.len());
            t.sndbuf.consume(&mut self.pool, data);
            t.hot.snd.una = seg.ack;
            // Forward progress confirms the neighbour (ARP reachability).
            let peer = t.key.remote_ip;
            self.note_progress(peer);
            let t = self.tcbs.at_mut(index);
            if t.hot.snd.nxt < seg.ack {
                t.hot.snd.nxt = seg.ack;
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
                t.sb.update(seg.ack, t.send.max, seg.options.sack());
            }
            let flight = t.send.max - seg.ack;
            let outcome = t.cc.on_ack(now, seg.ack, acked, t.rtt.srtt(), flight);
            match outcome {
                AckOutcome::PartialAck if !t.has(TcbFlags::SACK) => {
                    // RFC 6582 §3.2 step 4: retransmit the first unacked
                    // segment.
                    t.hot.flags.set(TcbFlags::REXMIT_ONE);
                }
                AckOutcome::RecoveryExited => t.sb.end_recovery(),
                _ => {}
            }
            // RFC 6298 (5.2)/(5.3): stop the timer when all is acked,
            // otherwise restart it.
            t.timers.rto_at = if t.hot.snd.una == t.send.max {
                None
            } else {
                Some(now + t.rtt.rto())
            };
            let writable = t.hot.state.can_send()
                && !t.has(TcbFlags::FIN_QUEUED)
                && (t.sndbuf.len() as u32) < t.send.limit;
            let more =
                !t.sndbuf.is_empty() || t.has(TcbFlags::FIN_QUEUED) || t.has(TcbFlags::REXMIT_ONE);
            if writable {
                self.event(index, FlowEvents::WRITABLE);
            }
            if more {
                self.queue(index, TxKind::Send);
            }
        } else if seg.ack == una {
            let newly_sacked = if t.has(TcbFlags::SACK) {
                t.sb.update(una, t.send.max, seg.options.sack())
            } else {
                0
            };
            // RFC 5681 §2 (and RFC 6675 §2 with SACK): a duplicate ACK.
            let dup = t.send.max > una
                && no_text
                && !seg.flags.fin()
                && (seg_wnd == t.hot.snd.wnd || newly_sacked > 0);
            // With SACK, loss is read off the scoreboard (RFC 6675 §5
            // IsLost), which an ACK riding on data updates too: a peer that
            // is sending (an echo) piggybacks every duplicate ACK, and none
            // of those counts as a duplicate (RFC 5681 §2 (b)).
            let sack_news = t.send.max > una && newly_sacked > 0;
            if dup || sack_news {
                if dup {
                    self.stats.dup_acks += 1;
                }
                let mss = usize::from(t.send.mss);
                let mut fast = dup && t.cc.on_duplicate_ack(now, una, t.send.max);
                if !fast
                    && t.has(TcbFlags::SACK)
                    && !t.cc.in_recovery()
                    && t.sb.is_lost(una, mss)
                    && t.cc.recover().is_none_or(|r| una > r)
                {
                    // RFC 6675 §5: loss detected by SACK before three
                    // duplicate ACKs.
                    t.cc.enter_recovery(now, t.send.max, t.send.max - una);
                    fast = true;
                }
                if fast {
                    // Fast retransmit (RFC 5681 §3.2, RFC 6675 §5).
                    if t.has(TcbFlags::SACK) {
                        t.sb.start_recovery(una);
                        t.send.recovery_point = t.send.max;
                    }
                    t.hot.flags.set(TcbFlags::REXMIT_ONE);
                    t.sampler.on_retransmit();
                    self.stats.fast_retransmits += 1;
                    self.queue(index, TxKind::Send);
                } else if t.cc.in_recovery() {
                    // cwnd inflated (or pipe shrank): more may go.
                    self.queue(index, TxKind::Send);
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
        let t = self.tcbs.at_mut(index);
        let edge = seg.ack + seg_wnd as usize;
        if edge > t.send.max_edge {
            t.send.max_edge = edge;
        }
        let newer = t.send.wl1 < seg.seq || (t.send.wl1 == seg.seq && t.send.wl2 <= seg.ack);
        if seg.ack >= una && (seg.ack > una || newer) {
            let opened = seg_wnd > t.hot.snd.wnd;
            t.hot.snd.wnd = seg_wnd;
            t.send.wl1 = seg.seq;
            t.send.wl2 = seg.ack;
            t.send.max_wnd = t.send.max_wnd.max(seg_wnd);
            if seg_wnd > 0 {
                t.timers.persist_at = None;
                t.timers.persist_shift = 0;
            }
            let fin_waits = t.has(TcbFlags::FIN_QUEUED) && !t.has(TcbFlags::FIN_SENT);
            if opened && (t.sndbuf.len() > t.hot.snd.nxt - t.hot.snd.una || fin_waits) {
                self.queue(index, TxKind::Send);
            }
        }
        self.rearm(index);
        true
    }

    /// New data (at or after RCV.NXT) for a connection the application has
    /// closed: nobody will ever read it, so the connection is reset
    /// (RFC 1122 §4.2.2.13, RFC 9293 §3.10.4 SHLD-3, as Linux does:
    /// `<SEQ=SEG.ACK><CTL=RST>`) and the peer learns that what it sent was
    /// not read, instead of a clean close. A half-closed socket
    /// (`shutdown_write`) is still open for reading and is not affected.
    /// Returns true when the connection was reset (and is gone).
    fn data_after_close(&mut self, index: u32, seg: &TcpRepr) -> bool {
        let t = self.tcbs.at(index);
        if !t.has(TcbFlags::USER_CLOSED) {
            return false;
        }
        let (local, remote) = (t.key.local_ip, t.key.remote_ip);
        self.stats.aborts_on_data += 1;
        self.reset_for(local, remote, seg);
        self.enter_closed(index, None);
        true
    }

    /// Seventh step: stores `payload` (starting at `seq`, at or after
    /// RCV.NXT and inside the window), advances RCV.NXT over what became
    /// contiguous and decides how to ACK.
    fn receive_data(&mut self, now: Instant, index: u32, seq: SeqNumber, payload: &[u8]) {
        let cs = self.pool.chunk_size();
        let t = self.tcbs.at_mut(index);
        let off = seq - t.hot.rcv.nxt;
        let base = t.rcvbuf.len();
        let had_ooo = !t.ooo.is_empty();
        let before = t.rcvbuf.ooo_chunks(&self.pool);
        if off > 0 {
            // Out of order: bounded per connection (Assembler ranges) and
            // per core (chunks holding out-of-order data).
            if self.ooo_chunks + payload.len().div_ceil(cs) + 1 > self.cfg.ooo_max_chunks {
                self.stats.drops.ooo_limit += 1;
                self.ack_now(index);
                return;
            }
            if t.rcvbuf
                .write_at(&mut self.pool, base + off, payload)
                .is_err()
            {
                self.stats.drops.pool_exhausted += 1;
            } else if t.ooo.add(off, payload.len()).is_err() {
                self.stats.drops.ooo_limit += 1;
            }
            let after = t.rcvbuf.ooo_chunks(&self.pool);
            self.ooo_chunks = (self.ooo_chunks + after).saturating_sub(before);
            // RFC 5681 §4.2: an out-of-order segment is ACKed at once (a
            // duplicate ACK, with SACK blocks when negotiated), one ACK per
            // segment.
            let t = self.tcbs.at_mut(index);
            t.receive.dupacks_owed = t
                .receive
                .dupacks_owed
                .saturating_add(1)
                .min(MAX_DUPACKS_PER_TICK);
            self.ack_now(index);
            return;
        }
        if t.rcvbuf.write_at(&mut self.pool, base, payload).is_err() {
            self.stats.drops.pool_exhausted += 1;
            self.ack_now(index);
            return;
        }
        let adv = t.ooo.advance(payload.len());
        t.rcvbuf.commit(adv);
        t.hot.rcv.nxt += adv;
        let after = t.rcvbuf.ooo_chunks(&self.pool);
        self.ooo_chunks = (self.ooo_chunks + after).saturating_sub(before);
        self.stats.bytes_in += adv as u64;
        if t.has(TcbFlags::USER_CLOSED) {
            // Nobody will read: drop it (still acknowledged).
            let n = t.rcvbuf.len();
            t.rcvbuf.discard(&mut self.pool, n);
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
            self.ack_now(index);
        } else {
            t.hot.flags.set(TcbFlags::ACK_DELAYED);
            if t.timers.delack_at.is_none() {
                t.timers.delack_at = Some(now + self.cfg.delayed_ack);
            }
            self.rearm(index);
        }
        self.event(index, FlowEvents::READABLE);
    }

    /// Eighth step: the peer's FIN is in sequence.
    fn process_fin(&mut self, now: Instant, index: u32) {
        let t = self.tcbs.at_mut(index);
        // "Advance RCV.NXT over the FIN, and send an acknowledgment for
        // the FIN."
        t.hot.rcv.nxt += 1;
        t.receive.fin_seq = None;
        t.hot.flags.set(TcbFlags::FIN_RECEIVED);
        let fin_acked = t.has(TcbFlags::FIN_SENT) && t.hot.snd.una == t.send.max;
        let state = t.hot.state;
        self.ack_now(index);
        self.event(index, FlowEvents::READABLE);
        match state {
            // "SYN-RECEIVED / ESTABLISHED: Enter the CLOSE-WAIT state."
            State::SynReceived | State::Established => {
                self.tcbs.at_mut(index).hot.state = State::CloseWait;
            }
            // "FIN-WAIT-1: If our FIN has been ACKed, then enter TIME-WAIT,
            // start the time-wait timer, turn off the other timers;
            // otherwise, enter the CLOSING state."
            State::FinWait1 => {
                if fin_acked {
                    self.enter_time_wait(index, now, true);
                } else {
                    self.tcbs.at_mut(index).hot.state = State::Closing;
                }
            }
            // "FIN-WAIT-2: Enter the TIME-WAIT state."
            State::FinWait2 => self.enter_time_wait(index, now, true),
            // TIME-WAIT is not a TCB state here (see `time_wait_input`).
            // Others remain.
            _ => {}
        }
    }

    /// Starts keepalive on a newly established connection when enabled.
    pub(crate) fn arm_keepalive(&mut self, index: u32, now: Instant) {
        let t = self.tcbs.at_mut(index);
        if t.has(TcbFlags::KEEPALIVE) {
            t.timers.keepalive_at = Some(now + t.opts.ka_idle);
            self.rearm(index);
        }
    }

    /// An orphaned FIN-WAIT-2 (user closed) does not wait forever.
    pub(crate) fn arm_fin_wait_2(&mut self, index: u32, now: Instant) {
        let t = self.tcbs.at_mut(index);
        if t.has(TcbFlags::USER_CLOSED) {
            t.timers.keepalive_at = Some(now + self.cfg.fin_timeout);
            self.rearm(index);
        }
    }

    /// Sends a RST for the connection at `index` and closes it at once
    /// (user abort, accept-queue overflow, close with unread data).
    pub(crate) fn abort_index(&mut self, index: u32) {
        let t = self.tcbs.at(index);
        if matches!(
            t.hot.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
                | State::Closing
                | State::LastAck
        ) {
            let r = Reply {
                src: t.key.local_ip,
                dst: t.key.remote_ip,
                src_port: t.key.local_port,
                dst_port: t.key.remote_port,
                seq: t.send.max,
                ack: t.hot.rcv.nxt,
                flags: TcpFlags::RST | TcpFlags::ACK,
                window: 0,
                options: TcpOptions::default(),
            };
            self.stats.resets_sent += 1;
            self.reply(r);
        }
        self.enter_closed(index, None);
    }

    /// The receive window the connection at `index` could offer now.
    pub(crate) fn rcv_space_of(&self, index: u32) -> usize {
        rcv_space(self.tcbs.at(index), self.pool.view())
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
        let l = self.tcbs.at(listener.index());
        if l.listen.accept_len >= l.listen.backlog {
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
        if self.flows.insert(key, id).is_err() {
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
        t.hot.flags.set(TcbFlags::PASSIVE);
        t.hot.flags.set(TcbFlags::FROM_COOKIE);
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
        t.hot.rcv.nxt = seg.seq;
        t.receive.adv_edge = seg.seq + space;
        t.receive.last_ack_sent = seg.seq;
        t.send.iss = seg.ack - 1;
        t.hot.snd.una = seg.ack;
        t.hot.snd.nxt = seg.ack;
        t.send.max = seg.ack;
        t.hot.snd.wnd = u32::from(seg.window);
        t.send.max_wnd = t.hot.snd.wnd;
        t.send.max_edge = seg.ack + usize::from(seg.window);
        t.send.wl1 = seg.seq;
        t.send.wl2 = seg.ack;
        t.hot.state = State::Established;
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

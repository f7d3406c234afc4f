//! Lifecycle transitions of a connection, in one place: set-up
//! ([`TcpStack::init_connection`]), a passive child joining its listener's
//! accept queue, the keepalive and orphaned FIN-WAIT-2 timers that start
//! with a state, abort (RST), CLOSED ([`TcpStack::enter_closed`]),
//! TIME-WAIT (the TCB becomes a compact [`TimeWaitEntry`]) and the release
//! of the slot ([`TcpStack::free_socket`]).

use super::accept_queue::{AcceptQueue, NIL};
use super::congestion::Congestion;
use super::events::FlowEvents;
use super::flow_table::FlowKey;
use super::isn::siphash24;
use super::stack::{Reply, TcpConfig, TcpStack};
use super::state::State;
use super::time_wait::TimeWaitEntry;
use super::timer::Timer;
use super::types::{TcbFlags, TcpError, DEFAULT_MSS};
use crate::time::{Duration, Instant};
use crate::wire::tcp::{TcpFlags, TcpOptions};
use crate::wire::SeqNumber;

impl TcpStack {
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
        t.opts.set_keepalive(&cfg.keepalive);
        if cfg.keepalive_default {
            t.head.flags.insert(TcbFlags::KEEPALIVE);
        }
        t.cc = Congestion::new(cfg.congestion, usize::from(DEFAULT_MSS));
        t.timers.start(now);
        t.head.flags.insert(TcbFlags::PROBE_ANSWERED);
    }

    /// The handshake of the connection at `index` completed (a SYN
    /// cookie's ACK): a passive child joins its listener's accept queue,
    /// or is reset when there is no room; our own connect (simultaneous
    /// open) is reported. Returns false when the child was dropped.
    ///
    /// Only the SYN-cookie path calls it, and its children are passive; a
    /// handshake in SYN-RECEIVED does the same through effects in
    /// `Connection::process`. The simultaneous-open branch stays: removing
    /// it moved LLVM's inlining and cost 95 instructions per echo
    /// transaction in stackbench (measured with callgrind).
    pub(crate) fn child_established(&mut self, index: u32) -> bool {
        if !self.tcbs.at(index).has(TcbFlags::PASSIVE) {
            // Simultaneous open: our own connect completed.
            self.stats.active_opens += 1;
            self.event(index, FlowEvents::CONNECTED | FlowEvents::WRITABLE);
            return true;
        }
        if !self.accept_room(index) {
            // The listener is gone or its accept queue is full: reset.
            self.stats.drops.accept_queue_full += 1;
            self.abort_index(index);
            return false;
        }
        self.join_accept_queue(index);
        true
    }

    /// The accept queue of the listener at `index`.
    #[inline]
    pub(crate) fn queue_of(&self, index: u32) -> &AcceptQueue {
        self.queues.get(self.tcbs.at(index).listen.queue)
    }

    /// The accept queue of the listener at `index`.
    #[inline]
    pub(crate) fn queue_of_mut(&mut self, index: u32) -> &mut AcceptQueue {
        self.queues.get_mut(self.tcbs.at(index).listen.queue)
    }

    /// The passive child at `index` has a listener that still listens and
    /// has room in its accept queue.
    pub(crate) fn accept_room(&self, index: u32) -> bool {
        let parent = self.tcbs.at(index).listen.parent;
        match parent.and_then(|p| self.tcbs.get(p)) {
            Some(l) => l.head.state == State::Listen && self.queues.get(l.listen.queue).has_room(),
            None => false,
        }
    }

    /// The passive child at `index`, established, joins the tail of its
    /// listener's accept queue (checked by [`accept_room`](Self::accept_room)
    /// in the same call) and the listener becomes acceptable.
    pub(crate) fn join_accept_queue(&mut self, index: u32) {
        debug_assert!(self.accept_room(index));
        let Some(p) = self.tcbs.at(index).listen.parent else {
            return;
        };
        let (c, l) = self.tcbs.pair_mut(index, p.index());
        let q = self.queues.get_mut(l.listen.queue);
        if c.has(TcbFlags::IN_SYN_QUEUE) {
            q.syn_count = q.syn_count.saturating_sub(1);
            c.head.flags.remove(TcbFlags::IN_SYN_QUEUE);
        }
        c.head.flags.insert(TcbFlags::IN_ACCEPT_QUEUE);
        c.listen.next = NIL;
        let tail = q.tail;
        q.tail = index;
        q.len += 1;
        if tail == NIL {
            l.listen.next = index;
        } else {
            self.tcbs.at_mut(tail).listen.next = index;
        }
        self.stats.passive_opens += 1;
        self.event(p.index(), FlowEvents::ACCEPTABLE);
    }

    /// Starts keepalive on a newly established connection when enabled.
    pub(crate) fn arm_keepalive(&mut self, index: u32, now: Instant) {
        let t = self.tcbs.at_mut(index);
        if t.has(TcbFlags::KEEPALIVE) {
            t.timers.set_on(
                Timer::Keepalive,
                Some(now + t.opts.ka_idle()),
                &mut self.wheel,
                index,
            );
        }
    }

    /// Resets the connection at `index` on the user's behalf (abort, a
    /// shutdown's last resort) and releases its slot at once: nobody will
    /// ask about it any more.
    pub(crate) fn abort_and_free(&mut self, index: u32) {
        let t = self.tcbs.at_mut(index);
        t.head.flags.insert(TcbFlags::USER_CLOSED);
        let id = t.id(index);
        self.abort_index(index);
        if self.tcbs.get(id).is_some() {
            self.free_socket(index);
        }
    }

    /// Sends a RST for the connection at `index` and closes it at once
    /// (user abort, accept-queue overflow, close with unread data).
    pub(crate) fn abort_index(&mut self, index: u32) {
        let t = self.tcbs.at(index);
        if matches!(
            t.head.state,
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
                seq: t.head.snd.max,
                ack: t.head.rcv.nxt,
                flags: TcpFlags::RST | TcpFlags::ACK,
                window: 0,
                options: TcpOptions::default(),
            };
            self.stats.resets_sent += 1;
            self.reply(r);
        }
        self.enter_closed(index, None);
    }

    /// The connection at `index` has ended (CLOSED): leaves the flow table
    /// and the timers, drops what is no longer needed, reports `err` and
    /// frees the slot when nobody will ask about it any more.
    pub(crate) fn enter_closed(&mut self, index: u32, err: Option<TcpError>) {
        let (key, was, parent, in_syn_queue, owned, user_closed) = {
            let t = self.tcbs.at_mut(index);
            let was = t.head.state;
            t.head.state = State::Closed;
            t.timers.stop_all(&mut self.wheel, index);
            t.sndbuf.clear(&mut self.pool);
            // A timeout reports the last soft ICMP error instead, as Linux
            // (RFC 1122 §4.2.3.9).
            let err = match err {
                Some(TcpError::TimedOut) => t.soft_error.or(err),
                e => e,
            };
            if err.is_some() {
                t.error = err;
            }
            (
                t.key,
                was,
                t.listen.parent,
                t.has(TcbFlags::IN_SYN_QUEUE),
                t.has(TcbFlags::USER_OWNED),
                t.has(TcbFlags::USER_CLOSED),
            )
        };
        if was == State::Closed {
            return;
        }
        self.flows.remove_if(&key, index);
        if was != State::Listen {
            self.stats.conns_closed += 1;
        }
        if in_syn_queue {
            if let Some(p) = parent.and_then(|p| self.tcbs.get(p)) {
                let q = self.queues.get_mut(p.listen.queue);
                q.syn_count = q.syn_count.saturating_sub(1);
            }
            self.tcbs
                .at_mut(index)
                .head
                .flags
                .remove(TcbFlags::IN_SYN_QUEUE);
        }
        let in_accept = self.tcbs.at(index).has(TcbFlags::IN_ACCEPT_QUEUE);
        if user_closed || (!owned && !in_accept) {
            self.free_socket(index);
        } else {
            let mut ev = FlowEvents::CLOSED | FlowEvents::READABLE | FlowEvents::WRITABLE;
            if err.is_some() {
                ev = ev | FlowEvents::ERROR;
            }
            self.event(index, ev);
        }
    }

    /// Gives the slot and every chunk back.
    pub(crate) fn free_socket(&mut self, index: u32) {
        let t = self.tcbs.at_mut(index);
        let id = t.id(index);
        let before = t.rcvbuf.ooo_chunks(&self.pool);
        self.ooo_chunks = self.ooo_chunks.saturating_sub(before);
        t.sndbuf.clear(&mut self.pool);
        t.rcvbuf.clear(&mut self.pool);
        t.clear_ooo();
        t.wakers.take_all(&mut self.due);
        let key = t.key;
        let was_listen = t.head.state == State::Listen;
        let queue = core::mem::replace(&mut t.listen.queue, NIL);
        self.flows.remove_if(&key, index);
        if was_listen {
            self.listeners.remove(id);
        }
        if queue != NIL {
            self.queues.close(queue);
        }
        self.wheel.cancel(index);
        self.tcbs.free(id);
    }

    /// Enters TIME-WAIT at `now`: the connection moves to a compact entry
    /// of the TIME-WAIT table and its TCB ends at once (freed unless the
    /// user still holds it, who then sees it CLOSED after the peer's FIN,
    /// as a Linux socket does). `ack_fin`: the peer's FIN was just
    /// received, so our ACK of it goes out from the entry. At the table's
    /// cap the connection closes without TIME-WAIT, counted.
    pub(crate) fn enter_time_wait(&mut self, index: u32, now: Instant, ack_fin: bool) {
        let t = self.tcbs.at(index);
        // The window we last advertised, from RCV.NXT (never moved left).
        let edge = if t.receive.adv_edge > t.head.rcv.nxt {
            t.receive.adv_edge - t.head.rcv.nxt
        } else {
            0
        };
        let shift = if t.has(TcbFlags::WSCALE) {
            t.receive.wscale
        } else {
            0
        };
        let window = (edge >> shift).min(65535);
        let entry = TimeWaitEntry {
            key: t.key,
            snd_nxt: t.head.snd.max,
            rcv_nxt: t.head.rcv.nxt,
            ts_recent: t.receive.ts_recent,
            ts_offset: t.opts.ts_offset,
            ts_recent_secs: t.receive.ts_recent_secs,
            deadline: now + self.cfg.msl * 2,
            window: window as u16,
            timestamps: t.has(TcbFlags::TIMESTAMPS),
        };
        // The TCB's pending ACK (if any) is answered by the entry below.
        self.tcbs
            .at_mut(index)
            .head
            .flags
            .remove(TcbFlags::ACK_NOW | TcbFlags::ACK_DELAYED);
        self.enter_closed(index, None);
        if self.tw.insert(entry).is_err() {
            self.stats.time_wait_overflow += 1;
        }
        if ack_fin {
            self.time_wait_ack(&entry, now);
        }
    }

    /// An ACK from a TIME-WAIT entry: `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`.
    pub(crate) fn time_wait_ack(&mut self, e: &TimeWaitEntry, now: Instant) {
        let mut options = TcpOptions::default();
        if e.timestamps {
            options.timestamp = Some((Self::ts_val(now, e.ts_offset), e.ts_recent));
        }
        self.reply(Reply {
            src: e.key.local_ip,
            dst: e.key.remote_ip,
            src_port: e.key.local_port,
            dst_port: e.key.remote_port,
            seq: e.snd_nxt,
            ack: e.rcv_nxt,
            flags: TcpFlags::ACK,
            window: e.window,
            options,
        });
    }

    /// Restarts the TIME-WAIT timer of `key` (a retransmitted FIN), at most
    /// once per second per entry so that FINs cannot grow the expiry list.
    pub(crate) fn restart_time_wait(&mut self, key: &FlowKey, now: Instant) {
        let full = now + self.cfg.msl * 2;
        let Some(e) = self.tw.get(key) else { return };
        if e.deadline + Duration::from_secs(1) > full {
            return;
        }
        self.tw.restart(key, full);
    }

    /// The flow key `key` is in TIME-WAIT and is taken over by a new
    /// connection: removes the entry and returns its SND.NXT (the new ISS
    /// must be above it).
    pub(crate) fn take_over_time_wait(&mut self, key: &FlowKey) -> Option<SeqNumber> {
        let e = self.tw.remove(key)?;
        self.stats.time_wait_reused += 1;
        Some(e.snd_nxt)
    }
}

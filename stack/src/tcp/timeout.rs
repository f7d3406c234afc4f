//! What each fine-grained timer does when it fires: retransmission (with
//! exponential backoff and a retry limit), delayed ACK, persist
//! (zero-window probe) and keepalive. The wheel holds one entry per socket
//! at its earliest deadline; [`TcpStack::on_timer`] checks every deadline
//! against `now` (lazy cancellation) and re-arms the socket for the rest.

use super::socket::TcpError;
use super::stack::TcpStack;
use super::state::State;
use super::tcb::TcbFlags;
use super::tx_list::TxKind;
use crate::time::Instant;

impl TcpStack {
    /// The wheel entry of socket `index` fired at `now`.
    pub(crate) fn on_timer(&mut self, index: u32, now: Instant) {
        let t = self.tcbs.at_mut(index);
        if !t.hot.in_use {
            return;
        }
        let due = |d: Option<Instant>| d.is_some_and(|d| d.total_millis() <= now.total_millis());
        if due(t.timers.rto_at) {
            t.timers.rto_at = None;
            self.on_rto(index, now);
            if !self.tcbs.at(index).hot.in_use || self.tcbs.at(index).hot.state == State::Closed {
                return;
            }
        }
        let t = self.tcbs.at_mut(index);
        if due(t.timers.delack_at) {
            t.timers.delack_at = None;
            if t.has(TcbFlags::ACK_DELAYED) {
                t.hot.flags.set(TcbFlags::ACK_NOW);
                self.queue(index, TxKind::Ack);
            }
        }
        let t = self.tcbs.at_mut(index);
        if due(t.timers.persist_at) {
            t.timers.persist_at = None;
            // Persist timer (RFC 9293 §3.8.6.1): probe the zero window,
            // backing off exponentially; never give up while the peer
            // answers.
            let fin_waits = t.has(TcbFlags::FIN_QUEUED) && !t.has(TcbFlags::FIN_SENT);
            let unsent = t.sndbuf.len() > t.hot.snd.nxt - t.hot.snd.una || fin_waits;
            if t.hot.snd.wnd > 0 && unsent {
                // A small window held back by SWS avoidance: send anyway.
                t.hot.flags.set(TcbFlags::SWS_OVERRIDE);
                self.queue(index, TxKind::Send);
            } else if t.hot.snd.wnd == 0
                && unsent
                && t.has(TcbFlags::USER_CLOSED)
                && t.timers.persist_shift >= self.cfg.orphan_retries
            {
                // An orphan the peer never opens its window to.
                self.reap_orphan(index);
                return;
            } else if t.hot.snd.wnd == 0 && unsent {
                // A peer that answers no probe at all is gone: unanswered
                // probes count as retransmissions (as the RTO path's
                // zero-window probes and Linux's tcp_probe_timer do), else
                // a closed socket behind a zero window lives forever.
                if t.timers.last_rx >= t.timers.persist_armed_at {
                    t.timers.retries = 0;
                } else if t.timers.retries >= self.cfg.data_retries {
                    self.stats.conns_timed_out += 1;
                    self.enter_closed(index, Some(TcpError::TimedOut));
                    return;
                } else {
                    t.timers.retries += 1;
                }
                t.hot.flags.set(TcbFlags::PROBE);
                t.timers.persist_shift = t.timers.persist_shift.saturating_add(1);
                let d = t.rtt.rto() * (1u32 << t.timers.persist_shift.min(10));
                t.timers.persist_at = Some(now + d.min(self.cfg.rto_max));
                t.timers.persist_armed_at = now;
                self.stats.window_probes += 1;
                self.queue(index, TxKind::Send);
            }
        }
        let t = self.tcbs.at_mut(index);
        if due(t.timers.keepalive_at) {
            t.timers.keepalive_at = None;
            self.on_keepalive(index, now);
            if !self.tcbs.at(index).hot.in_use || self.tcbs.at(index).hot.state == State::Closed {
                return;
            }
        }
        self.rearm(index);
    }

    /// Retransmission timeout (RFC 6298 §5.4–5.7, RFC 5681 §3.1).
    fn on_rto(&mut self, index: u32, now: Instant) {
        let t = self.tcbs.at_mut(index);
        match t.hot.state {
            State::SynSent | State::SynReceived => {
                if t.timers.retries >= self.cfg.syn_retries {
                    self.stats.conns_timed_out += 1;
                    self.enter_closed(index, Some(TcpError::TimedOut));
                    return;
                }
                t.timers.retries += 1;
                t.rtt.backoff();
                t.hot.flags.set(TcbFlags::SYN_PENDING);
                t.timers.rto_at = Some(now + t.rtt.rto());
                self.stats.rto_expired += 1;
                self.queue(index, TxKind::Control);
            }
            State::Closed | State::Listen | State::TimeWait => {}
            _ => {
                if t.hot.snd.una == t.send.max {
                    return;
                }
                if t.hot.snd.wnd == 0 {
                    // MUST-35, SHLD-17 (RFC 9293 §3.8.6.1): the peer shrank
                    // its window to zero under data in flight. Probe it as
                    // a zero window; while the peer answers (anything heard
                    // since the last timeout), the connection stays open.
                    // An orphan gets `orphan_retries` probes, answered or
                    // not (Linux `tcp_probe_timer`): nobody will read what
                    // the peer keeps refusing.
                    let orphan = t.has(TcbFlags::USER_CLOSED);
                    let answered = now.saturating_duration_since(t.timers.last_rx) <= t.rtt.rto();
                    if orphan && t.timers.retries >= self.cfg.orphan_retries {
                        self.reap_orphan(index);
                        return;
                    } else if answered && !orphan {
                        t.timers.retries = 0;
                    } else if t.timers.retries >= self.cfg.data_retries {
                        self.stats.conns_timed_out += 1;
                        self.enter_closed(index, Some(TcpError::TimedOut));
                        return;
                    } else {
                        t.timers.retries += 1;
                    }
                    t.rtt.backoff();
                    t.sampler.on_retransmit();
                    // Resend from SND.UNA once the window opens.
                    t.hot.snd.nxt = t.hot.snd.una;
                    t.hot.flags.set(TcbFlags::PROBE);
                    t.timers.rto_at = Some(now + t.rtt.rto());
                    self.stats.window_probes += 1;
                    self.queue(index, TxKind::Send);
                    return;
                }
                if t.has(TcbFlags::USER_CLOSED) && t.timers.retries >= self.cfg.orphan_retries {
                    self.reap_orphan(index);
                    return;
                }
                if t.timers.retries >= self.cfg.data_retries {
                    self.stats.conns_timed_out += 1;
                    self.enter_closed(index, Some(TcpError::TimedOut));
                    return;
                }
                t.timers.retries += 1;
                self.stats.rto_expired += 1;
                // Echoes of what was sent before this timeout give no RTT.
                t.opts.rto_ts_floor = Self::ts_val(now, t.opts.ts_offset).max(1);
                // (5.5) back off the timer; (5.4) retransmit the earliest
                // unacknowledged segment: go back to SND.UNA.
                t.rtt.backoff();
                t.sampler.on_retransmit();
                let flight = t.send.max - t.hot.snd.una;
                t.cc.on_rto(now, t.send.max, flight);
                // RFC 6675 §5.1: after an RTO the receiver may have reneged;
                // start over without SACK information.
                t.sb.clear();
                t.hot.flags.clear(TcbFlags::REXMIT_ONE);
                t.hot.snd.nxt = t.hot.snd.una;
                t.timers.rto_at = Some(now + t.rtt.rto());
                self.queue(index, TxKind::Send);
            }
        }
    }

    /// Keepalive (RFC 9293 §3.8.4) and the orphaned FIN-WAIT-2 timeout.
    fn on_keepalive(&mut self, index: u32, now: Instant) {
        let t = self.tcbs.at_mut(index);
        match t.hot.state {
            State::FinWait2 if t.has(TcbFlags::USER_CLOSED) => {
                // Linux `tcp_fin_timeout`: the peer had its chance to
                // send its FIN; nobody will read what it sends.
                self.stats.fin_timeout_reaped += 1;
                self.enter_closed(index, None);
            }
            State::Established | State::CloseWait if t.has(TcbFlags::KEEPALIVE) => {
                // MUST-26 (RFC 9293 §3.8.4): probe only when no sent data
                // is outstanding; retransmission handles a silent peer then.
                if t.hot.snd.una != t.send.max {
                    t.timers.ka_probes = 0;
                    t.timers.keepalive_at = Some(now + t.opts.ka_idle);
                    return;
                }
                let idle = now.saturating_duration_since(t.timers.last_rx);
                if idle < t.opts.ka_idle && t.timers.ka_probes == 0 {
                    t.timers.keepalive_at = Some(t.timers.last_rx + t.opts.ka_idle);
                    return;
                }
                if t.timers.ka_probes >= t.opts.ka_count {
                    self.stats.conns_timed_out += 1;
                    self.stats.keepalive_timeouts += 1;
                    self.enter_closed(index, Some(TcpError::TimedOut));
                    return;
                }
                t.timers.ka_probes += 1;
                t.hot.flags.set(TcbFlags::PROBE);
                t.timers.keepalive_at = Some(now + t.opts.ka_interval);
                self.stats.keepalive_probes += 1;
                self.queue(index, TxKind::Send);
            }
            _ => {}
        }
    }

    /// An orphaned connection (closed by the application) ran out of
    /// `orphan_retries`: reset it and free the slot.
    fn reap_orphan(&mut self, index: u32) {
        self.stats.orphans_reaped += 1;
        self.stats.conns_timed_out += 1;
        self.abort_index(index);
    }
}

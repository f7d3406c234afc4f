//! What each fine-grained timer does when it fires: retransmission (with
//! exponential backoff and a retry limit), delayed ACK, persist
//! (zero-window probe) and keepalive. The wheel holds one entry per socket
//! at its earliest deadline; [`Connection::on_timer`] checks every deadline
//! against `now` (lazy cancellation) and re-arms the socket for the rest.

use super::effects::{Cx, Effects, End};
use super::stack::TcpStack;
use super::state::State;
use super::tcb::Connection;
use super::timer::Timer;
use super::tx_list::TxKind;
use super::types::TcbFlags;
use super::types::TcpError;
use crate::time::Instant;

impl TcpStack {
    /// The wheel entry of socket `index` fired at `now`.
    pub(crate) fn on_timer(&mut self, index: u32, now: Instant) {
        let (t, mut cx) = self.split(index);
        if !t.head.in_use {
            return;
        }
        let mut fx = Effects::default();
        t.on_timer(&mut cx, now, &mut fx);
        self.apply(index, fx);
    }
}

impl Connection {
    /// This connection's wheel entry fired at `now`: runs the timers due.
    pub(crate) fn on_timer(&mut self, cx: &mut Cx<'_>, now: Instant, fx: &mut Effects) {
        let t = self;
        let due = |d: Option<Instant>| d.is_some_and(|d| d.total_millis() <= now.total_millis());
        if due(t.timers.deadline(Timer::Rto)) {
            t.timers.set(Timer::Rto, None, &mut fx.wheel);
            t.on_rto(cx, now, fx);
            if fx.ended() || t.head.state == State::Closed {
                return;
            }
        }
        if due(t.timers.deadline(Timer::DelayedAck)) {
            t.timers.set(Timer::DelayedAck, None, &mut fx.wheel);
            if t.has(TcbFlags::ACK_DELAYED) {
                t.head.flags.insert(TcbFlags::ACK_NOW);
                fx.queue(TxKind::Ack);
            }
        }
        if due(t.timers.deadline(Timer::Persist)) {
            t.timers.set(Timer::Persist, None, &mut fx.wheel);
            // Persist timer (RFC 9293 §3.8.6.1): probe the zero window,
            // backing off exponentially; never give up while the peer
            // answers.
            let fin_waits = t.has(TcbFlags::FIN_QUEUED) && !t.has(TcbFlags::FIN_SENT);
            let unsent = t.sndbuf.len() > t.head.snd.nxt - t.head.snd.una || fin_waits;
            if t.head.snd.wnd > 0 && unsent {
                // A small window held back by SWS avoidance: send anyway.
                t.head.flags.insert(TcbFlags::SWS_OVERRIDE);
                fx.queue(TxKind::Send);
            } else if t.head.snd.wnd == 0
                && unsent
                && t.has(TcbFlags::USER_CLOSED)
                && t.timers.persist_shift >= cx.cfg.orphan_retries
            {
                // An orphan the peer never opens its window to.
                reap_orphan(cx, fx);
                return;
            } else if t.head.snd.wnd == 0 && unsent {
                // A peer that answers no probe at all is gone: unanswered
                // probes count as retransmissions (as the RTO path's
                // zero-window probes and Linux's tcp_probe_timer do), else
                // a closed socket behind a zero window lives forever.
                if t.has(TcbFlags::PROBE_ANSWERED) {
                    t.timers.retries = 0;
                } else if t.timers.retries >= cx.cfg.data_retries {
                    cx.stats.conns_timed_out += 1;
                    fx.end(End::Closed(Some(TcpError::TimedOut)));
                    return;
                } else {
                    t.timers.retries += 1;
                }
                t.head.flags.insert(TcbFlags::PROBE);
                t.timers.persist_shift = t.timers.persist_shift.saturating_add(1);
                let d = t.rtt.rto() * (1u32 << t.timers.persist_shift.min(10));
                t.timers.set(
                    Timer::Persist,
                    Some(now + d.min(cx.cfg.rto_max)),
                    &mut fx.wheel,
                );
                t.head.flags.remove(TcbFlags::PROBE_ANSWERED);
                cx.stats.window_probes += 1;
                fx.queue(TxKind::Send);
            }
        }
        if due(t.timers.deadline(Timer::Keepalive)) {
            t.timers.set(Timer::Keepalive, None, &mut fx.wheel);
            t.on_keepalive(cx, now, fx);
            if fx.ended() || t.head.state == State::Closed {
                return;
            }
        }
        t.timers.rearm(&mut fx.wheel);
    }

    /// Retransmission timeout (RFC 6298 §5.4–5.7, RFC 5681 §3.1).
    fn on_rto(&mut self, cx: &mut Cx<'_>, now: Instant, fx: &mut Effects) {
        let t = self;
        match t.head.state {
            State::SynSent | State::SynReceived => {
                if t.timers.retries >= cx.cfg.syn_retries {
                    cx.stats.conns_timed_out += 1;
                    fx.end(End::Closed(Some(TcpError::TimedOut)));
                    return;
                }
                t.timers.retries += 1;
                t.rtt.backoff();
                t.head.flags.insert(TcbFlags::SYN_PENDING);
                t.timers
                    .set(Timer::Rto, Some(now + t.rtt.rto()), &mut fx.wheel);
                cx.stats.rto_expired += 1;
                fx.queue(TxKind::Control);
            }
            State::Closed | State::Listen | State::TimeWait => {}
            _ => {
                if t.head.snd.una == t.head.snd.max {
                    return;
                }
                if t.head.snd.wnd == 0 {
                    // MUST-35, SHLD-17 (RFC 9293 §3.8.6.1): the peer shrank
                    // its window to zero under data in flight. Probe it as
                    // a zero window; while the peer answers (anything heard
                    // since the last timeout), the connection stays open.
                    // An orphan gets `orphan_retries` probes, answered or
                    // not (Linux `tcp_probe_timer`): nobody will read what
                    // the peer keeps refusing.
                    let orphan = t.has(TcbFlags::USER_CLOSED);
                    let answered = now.saturating_duration_since(t.timers.last_rx) <= t.rtt.rto();
                    if orphan && t.timers.retries >= cx.cfg.orphan_retries {
                        reap_orphan(cx, fx);
                        return;
                    } else if answered && !orphan {
                        t.timers.retries = 0;
                    } else if t.timers.retries >= cx.cfg.data_retries {
                        cx.stats.conns_timed_out += 1;
                        fx.end(End::Closed(Some(TcpError::TimedOut)));
                        return;
                    } else {
                        t.timers.retries += 1;
                    }
                    t.rtt.backoff();
                    t.sampler.on_retransmit();
                    // Resend from SND.UNA once the window opens.
                    t.head.snd.nxt = t.head.snd.una;
                    t.head.flags.insert(TcbFlags::PROBE);
                    t.timers
                        .set(Timer::Rto, Some(now + t.rtt.rto()), &mut fx.wheel);
                    cx.stats.window_probes += 1;
                    fx.queue(TxKind::Send);
                    return;
                }
                if t.has(TcbFlags::USER_CLOSED) && t.timers.retries >= cx.cfg.orphan_retries {
                    reap_orphan(cx, fx);
                    return;
                }
                if t.timers.retries >= cx.cfg.data_retries {
                    cx.stats.conns_timed_out += 1;
                    fx.end(End::Closed(Some(TcpError::TimedOut)));
                    return;
                }
                t.timers.retries += 1;
                cx.stats.rto_expired += 1;
                // Echoes of what was sent before this timeout give no RTT.
                t.opts.rto_ts_floor = TcpStack::ts_val(now, t.opts.ts_offset).max(1);
                // (5.5) back off the timer; (5.4) retransmit the earliest
                // unacknowledged segment: go back to SND.UNA.
                t.rtt.backoff();
                t.sampler.on_retransmit();
                let flight = t.head.snd.max - t.head.snd.una;
                t.cc.on_rto(now, t.head.snd.max, flight);
                // RFC 6675 §5.1: after an RTO the receiver may have reneged;
                // start over without SACK information.
                t.clear_sb();
                t.head.flags.remove(TcbFlags::REXMIT_ONE);
                t.head.snd.nxt = t.head.snd.una;
                t.timers
                    .set(Timer::Rto, Some(now + t.rtt.rto()), &mut fx.wheel);
                fx.queue(TxKind::Send);
            }
        }
    }

    /// Keepalive (RFC 9293 §3.8.4) and the orphaned FIN-WAIT-2 timeout.
    fn on_keepalive(&mut self, cx: &mut Cx<'_>, now: Instant, fx: &mut Effects) {
        let t = self;
        match t.head.state {
            State::FinWait2 if t.has(TcbFlags::USER_CLOSED) => {
                // Linux `tcp_fin_timeout`: the peer had its chance to
                // send its FIN; nobody will read what it sends.
                cx.stats.fin_timeout_reaped += 1;
                fx.end(End::Closed(None));
            }
            State::Established | State::CloseWait if t.has(TcbFlags::KEEPALIVE) => {
                // MUST-26 (RFC 9293 §3.8.4): probe only when no sent data
                // is outstanding; retransmission handles a silent peer then.
                if t.head.snd.una != t.head.snd.max {
                    t.timers.ka_probes = 0;
                    t.timers.set(
                        Timer::Keepalive,
                        Some(now + t.opts.ka_idle()),
                        &mut fx.wheel,
                    );
                    return;
                }
                let idle = now.saturating_duration_since(t.timers.last_rx);
                if idle < t.opts.ka_idle() && t.timers.ka_probes == 0 {
                    t.timers.set(
                        Timer::Keepalive,
                        Some(t.timers.last_rx + t.opts.ka_idle()),
                        &mut fx.wheel,
                    );
                    return;
                }
                if t.timers.ka_probes >= t.opts.ka_count {
                    cx.stats.conns_timed_out += 1;
                    cx.stats.keepalive_timeouts += 1;
                    fx.end(End::Closed(Some(TcpError::TimedOut)));
                    return;
                }
                t.timers.ka_probes += 1;
                t.head.flags.insert(TcbFlags::PROBE);
                t.timers.set(
                    Timer::Keepalive,
                    Some(now + t.opts.ka_interval()),
                    &mut fx.wheel,
                );
                cx.stats.keepalive_probes += 1;
                fx.queue(TxKind::Send);
            }
            _ => {}
        }
    }
}

/// An orphaned connection (closed by the application) ran out of
/// `orphan_retries`: reset it and free the slot.
fn reap_orphan(cx: &mut Cx<'_>, fx: &mut Effects) {
    cx.stats.orphans_reaped += 1;
    cx.stats.conns_timed_out += 1;
    fx.end(End::Abort);
}

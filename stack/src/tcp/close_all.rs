//! Closing a whole stack at the end of a program, as the kernel does when a
//! process exits: every socket is closed, queued data and FINs still go
//! out, and whatever has not finished by a deadline is reset.
//!
//! The runtime calls, in order:
//!
//! 1. [`TcpStack::close_all`]: listeners close (their un-accepted children
//!    are reset), every other socket the user still holds is closed
//!    gracefully (`close`: a FIN follows the queued data; unread received
//!    data makes it a reset, RFC 2525 §2.17, as in Linux);
//! 2. ticks (input, timers, output) while [`TcpStack::closing`] is not 0;
//! 3. at the linger bound, [`TcpStack::abort_closing`]: every connection
//!    still unfinished is reset and counted in
//!    [`TcpStats::linger_resets`](super::TcpStats::linger_resets).
//!
//! A connection is finished when the kernel would have nothing left to do
//! for the application: CLOSED, TIME-WAIT, or FIN-WAIT-2 (our FIN is
//! acknowledged; only the peer's side is open).

use super::stack::TcpStack;
use super::state::State;
use super::types::TcbFlags;

/// True in the states where a closed connection still has work of its own:
/// data or a FIN to deliver, or an ACK of our FIN to wait for.
fn unfinished(state: State) -> bool {
    matches!(
        state,
        State::SynSent
            | State::SynReceived
            | State::Established
            | State::FinWait1
            | State::CloseWait
            | State::Closing
            | State::LastAck
    )
}

impl TcpStack {
    /// Closes every socket: listeners first (their queued and embryonic
    /// connections are reset), then every connection still held by the
    /// user, gracefully. Connections the user already closed go on as they
    /// were. Returns how many sockets this call closed.
    ///
    /// One pass over the TCB slab (bounded by `max_connections`); call it once,
    /// at shutdown.
    pub fn close_all(&mut self) -> usize {
        let mut closed = 0;
        let n = self.tcbs.built() as u32;
        // Listeners first, so that their children are reset, not closed.
        for index in 0..n {
            let t = self.tcbs.at(index);
            if t.head.in_use && t.head.state == State::Listen {
                let id = t.id(index);
                if self.close(id).is_ok() {
                    closed += 1;
                }
            }
        }
        for index in 0..n {
            let t = self.tcbs.at(index);
            if !t.head.in_use || t.has(TcbFlags::USER_CLOSED) {
                continue;
            }
            let id = t.id(index);
            if t.has(TcbFlags::USER_OWNED) {
                if self.close(id).is_ok() {
                    closed += 1;
                }
            } else {
                // An embryonic child whose listener is gone: nobody will
                // ever accept it.
                self.abort_and_free(index);
                closed += 1;
            }
        }
        closed
    }

    /// Connections that still have work before they are finished (see the
    /// module docs): the ones a shutdown waits for. One pass over the TCB
    /// slab.
    pub fn closing(&self) -> usize {
        let n = self.tcbs.built() as u32;
        (0..n)
            .filter(|&i| {
                let t = self.tcbs.at(i);
                t.head.in_use && unfinished(t.head.state)
            })
            .count()
    }

    /// Resets every connection still unfinished (the shutdown's linger
    /// bound passed) and releases it; each is counted in
    /// `linger_resets`. Returns how many were reset.
    pub fn abort_closing(&mut self) -> usize {
        let mut reset = 0;
        let n = self.tcbs.built() as u32;
        for index in 0..n {
            let t = self.tcbs.at(index);
            if !t.head.in_use || !unfinished(t.head.state) {
                continue;
            }
            self.abort_and_free(index);
            self.stats.linger_resets += 1;
            reset += 1;
        }
        reset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_states_are_the_kernels() {
        for s in [
            State::Closed,
            State::Listen,
            State::FinWait2,
            State::TimeWait,
        ] {
            assert!(!unfinished(s), "{s:?}");
        }
        for s in [
            State::SynSent,
            State::SynReceived,
            State::Established,
            State::FinWait1,
            State::CloseWait,
            State::Closing,
            State::LastAck,
        ] {
            assert!(unfinished(s), "{s:?}");
        }
    }
}

//! The user's calls on one connection (RFC 9293 §3.10): SEND, RECEIVE,
//! half of CLOSE, and what `poll_read`/`poll_write` ask. They are
//! [`Connection`] methods in the shape of the segment steps: they touch the
//! connection and its [`Cx`], and leave the rest to the [`Effects`] the
//! stack applies (`socket.rs` finds the connection, calls, applies).

use super::accept_queue::NIL;
use super::buffer::ChunkPool;
use super::effects::{Cx, Effects, End};
use super::output::rcv_space;
use super::state::State;
use super::tcb::Connection;
use super::timer::Timer;
use super::tx_list::TxKind;
use super::types::{Result, TcbFlags, TcpError};
use crate::time::Instant;

impl Connection {
    /// SEND (RFC 9293 §3.10.2): appends what fits in the send buffer and
    /// queues the connection on the send list once it is synchronized (in
    /// SYN-SENT and SYN-RECEIVED the data waits for the handshake).
    ///
    /// # Errors
    /// `WouldBlock` when the buffer (or the pool: then the connection
    /// waits for chunks, [`Effects::wait_pool`]) is full; `BrokenPipe`
    /// after shutdown or close; the connection's error once it failed;
    /// `NotConnected` on a listener.
    #[inline]
    pub(crate) fn send(&mut self, cx: &mut Cx<'_>, data: &[u8], fx: &mut Effects) -> Result<usize> {
        match self.head.state {
            State::Listen => return Err(TcpError::NotConnected),
            State::Closed => return Err(self.error.unwrap_or(TcpError::BrokenPipe)),
            s if !s.can_send() || self.has(TcbFlags::FIN_QUEUED) => {
                return Err(TcpError::BrokenPipe)
            }
            _ => {}
        }
        if data.is_empty() {
            return Ok(0);
        }
        let room = (self.send.limit as usize).saturating_sub(self.sndbuf.len());
        if room == 0 {
            return Err(TcpError::WouldBlock);
        }
        let Ok(n) = self.sndbuf.append(cx.pool, &data[..data.len().min(room)]) else {
            // The pool is empty: no ACK of ours may ever free a chunk, so
            // wait for chunks rather than for this socket's ACKs.
            if !self.has(TcbFlags::WAIT_POOL) {
                self.head.flags.insert(TcbFlags::WAIT_POOL);
                fx.wait_pool();
            }
            return Err(TcpError::WouldBlock);
        };
        if self.head.state.is_synchronized() {
            fx.queue(TxKind::Send);
        }
        Ok(n)
    }

    /// What a read returns when it can take nothing: `NotConnected` on a
    /// listener; with nothing buffered, end of stream after the peer's FIN
    /// or a clean close, the error after a failure, else `WouldBlock`.
    /// `None` when there are bytes to read. Changes nothing, so the stack
    /// asks it before [`recv`](Self::recv) and skips the call's `Effects`.
    #[inline]
    pub(crate) fn nothing_to_read(&self) -> Option<Result<usize>> {
        if self.head.state == State::Listen {
            return Some(Err(TcpError::NotConnected));
        }
        if self.rcvbuf.is_empty() {
            return Some(self.end_of_data());
        }
        None
    }

    /// RECEIVE (RFC 9293 §3.10.3) when [`nothing_to_read`](Self::nothing_to_read)
    /// is `None`: copies buffered bytes into `buf`; a read that opened the
    /// window noticeably (by two segments or half the buffer: receiver SWS
    /// avoidance, §3.8.6.2.2) sends a window update.
    #[inline]
    pub(crate) fn recv(&mut self, cx: &mut Cx<'_>, buf: &mut [u8], fx: &mut Effects) -> usize {
        debug_assert!(self.nothing_to_read().is_none());
        if buf.is_empty() {
            return 0;
        }
        let n = self.rcvbuf.read(cx.pool, buf);
        if self.head.state.accepts_data() {
            let shift = if self.has(TcbFlags::WSCALE) {
                self.receive.wscale
            } else {
                0
            };
            // No update can offer more than the window field holds.
            let space = rcv_space(self, cx.pool.view()).min(65535 << shift);
            let cur = if self.receive.adv_edge > self.head.rcv.nxt {
                self.receive.adv_edge - self.head.rcv.nxt
            } else {
                0
            };
            let step = (2 * usize::from(self.receive.mss)).min(self.receive.limit as usize / 2);
            if space >= cur + step {
                self.head.flags.insert(TcbFlags::ACK_NOW);
                fx.queue(TxKind::Ack);
            }
        }
        n
    }

    /// [`recv`](Self::recv) without consuming: the next `recv` returns the
    /// same bytes. Opens no window.
    ///
    /// # Errors
    /// As [`nothing_to_read`](Self::nothing_to_read).
    pub(crate) fn peek(&self, pool: &ChunkPool, buf: &mut [u8]) -> Result<usize> {
        match self.nothing_to_read() {
            Some(r) => r,
            None => Ok(self.rcvbuf.peek(pool, buf)),
        }
    }

    /// What a read of an empty buffer returns: end of stream after the
    /// peer's FIN or a clean close, the error after a failure, else
    /// `WouldBlock`.
    fn end_of_data(&self) -> Result<usize> {
        if self.has(TcbFlags::FIN_RECEIVED) {
            return Ok(0);
        }
        match self.head.state {
            State::Closed => match self.error {
                Some(e) => Err(e),
                None => Ok(0),
            },
            _ => Err(TcpError::WouldBlock),
        }
    }

    /// True when [`recv`](Self::recv) (or, on a listener, accept) would
    /// not return `WouldBlock`.
    pub(crate) fn readable(&self) -> bool {
        !self.rcvbuf.is_empty()
            || self.has(TcbFlags::FIN_RECEIVED)
            || self.head.state == State::Closed
            || (self.head.state == State::Listen && self.listen.next != NIL)
    }

    /// True when [`send`](Self::send) would not return `WouldBlock`.
    pub(crate) fn writable(&self) -> bool {
        !self.head.state.can_send()
            || self.head.state.is_synchronized() && (self.sndbuf.len() as u32) < self.send.limit
    }

    /// CLOSE of the sending direction (RFC 9293 §3.10.4): a FIN follows the
    /// queued data.
    ///
    /// # Errors
    /// `NotConnected` on a listener.
    pub(crate) fn shutdown_write(&mut self, fx: &mut Effects) -> Result<()> {
        let next = match self.head.state {
            State::Listen => return Err(TcpError::NotConnected),
            // SYN-SENT: "delete the TCB" — nothing was ever sent.
            State::SynSent => {
                fx.end(End::Closed(None));
                return Ok(());
            }
            // SYN-RECEIVED / ESTABLISHED: "form a FIN segment and send it,
            // and enter FIN-WAIT-1 state". (In SYN-RECEIVED the FIN waits
            // for the handshake, as queued data does.)
            State::SynReceived | State::Established => State::FinWait1,
            // CLOSE-WAIT: "send a FIN segment, enter LAST-ACK state".
            State::CloseWait => State::LastAck,
            _ => return Ok(()),
        };
        self.head.flags.insert(TcbFlags::FIN_QUEUED);
        if self.head.state != State::SynReceived {
            self.head.state = next;
            fx.queue(TxKind::Control);
        }
        Ok(())
    }

    /// CLOSE of a connection (not a listener, not CLOSED: those are the
    /// stack's, which owns the slot and the accept queue). The user lets
    /// go: no more wakes. Unread received data makes it an abort (RFC 2525
    /// §2.17, as Linux); in FIN-WAIT-2 the orphan gets `fin_timeout` to
    /// hear the peer's FIN (`tcp_fin_timeout`); otherwise a FIN follows the
    /// queued data.
    pub(crate) fn close(&mut self, cx: &mut Cx<'_>, now: Instant, fx: &mut Effects) {
        debug_assert!(!matches!(self.head.state, State::Listen | State::Closed));
        self.let_go();
        match self.head.state {
            State::SynSent => fx.end(End::Closed(None)),
            _ if !self.rcvbuf.is_empty() => fx.end(End::Abort),
            State::FinWait2 => {
                let at = now + cx.cfg.fin_timeout;
                self.timers.set(Timer::Keepalive, Some(at), &mut fx.wheel);
            }
            _ => {
                // Not a listener: cannot fail.
                let _ = self.shutdown_write(fx);
            }
        }
    }

    /// The user closed the socket: it is no longer theirs to wake.
    pub(crate) fn let_go(&mut self) {
        self.head.flags.insert(TcbFlags::USER_CLOSED);
        self.wakers.read = None;
        self.wakers.write = None;
    }
}

//! What a [`Connection`](super::tcb::Connection) call may touch besides
//! its own block ([`Cx`]), and what it asks the stack to do when it
//! returns ([`Effects`]), which [`TcpStack::apply`] does in one place.
//!
//! A connection never sees the tables, the TX lists, the timer wheel or
//! the other connections: it reads the configuration, takes and gives
//! chunks, counts, and says which lists to join, how its wheel entry
//! moves, whether it waits for chunks, whether its handshake completed (a
//! passive child then joins its listener's accept queue), whether a RST
//! answers the segment, and whether it ended.

use super::buffer::ChunkPool;
use super::events::FlowEvents;
use super::stack::{challenge_allowed, TcpConfig, TcpStack, TcpStats};
use super::tcb::Connection;
use super::timer::WheelUpdate;
use super::tx_list::TxKind;
use super::types::TcpError;
use crate::time::Instant;

/// What a connection may touch besides itself.
pub(crate) struct Cx<'a> {
    /// The configuration.
    pub(crate) cfg: &'a TcpConfig,
    /// The chunk pool.
    pub(crate) pool: &'a mut ChunkPool,
    /// The counters.
    pub(crate) stats: &'a mut TcpStats,
    /// Chunks holding out-of-order data, on this core.
    pub(crate) ooo_chunks: &'a mut usize,
    /// Room to copy one segment's payload into.
    pub(crate) scratch: &'a mut [u8],
    /// The challenge ACK limiter's (second, count) (RFC 5961 §7).
    pub(crate) challenge_window: &'a mut (u64, u32),
}

impl Cx<'_> {
    /// RFC 5961 §7: may a challenge ACK go out now? (Counted.)
    #[inline]
    pub(crate) fn challenge_allowed(&mut self, now: Instant) -> bool {
        challenge_allowed(
            self.challenge_window,
            self.cfg.challenge_ack_limit,
            self.stats,
            now,
        )
    }
}

/// What the stack looked up for a segment before the connection processes
/// it: facts about the rest of the stack, found only in the states that
/// need them (SYN-SENT, SYN-RECEIVED), so the ESTABLISHED path looks
/// nothing up.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Given {
    /// SYN-RECEIVED, passive: the listener is still listening and its
    /// accept queue has room for this child.
    pub(crate) accept_room: bool,
    /// SYN-SENT: the path MTU known for the peer, if any.
    pub(crate) pmtu: Option<u16>,
}

/// How a connection ended in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// CLOSED, reporting the error ([`TcpStack::enter_closed`]).
    Closed(Option<TcpError>),
    /// Reset and CLOSED ([`TcpStack::abort_index`]).
    Abort,
    /// TIME-WAIT from `now` ([`TcpStack::enter_time_wait`]).
    TimeWait {
        /// When the connection entered it.
        now: Instant,
        /// The peer's FIN was just received (our ACK goes out from the
        /// TIME-WAIT entry).
        ack_fin: bool,
    },
}

/// What the stack does for a connection when its call returns.
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub(crate) struct Effects {
    /// The TX lists to join ([`TxKind::bit`] bits).
    lists: u8,
    /// Flow events to record.
    events: FlowEvents,
    /// The change of its wheel entry.
    pub(crate) wheel: WheelUpdate,
    /// The connection ended: nothing else happens to it in this call.
    pub(crate) end: Option<End>,
    /// What few calls ask ([`Rare`] bits): one byte, so that the common
    /// case tests it once.
    rare: u8,
}

/// The [`Effects::rare`] bits.
struct Rare;

impl Rare {
    /// The connection waits for the chunk pool ([`TcpStack::pool_waiters`]).
    const WAIT_POOL: u8 = 1;
    /// A passive child's handshake completed: it joins its listener's
    /// accept queue ([`TcpStack::join_accept_queue`]).
    const ACCEPTED: u8 = 2;
    /// A RST answers the segment being processed (sent by
    /// `TcpStack::process`, which has the segment, before the rest).
    const RST: u8 = 4;
    /// The peer's ACK advanced SND.UNA ([`TcpStack::note_progress`]).
    const PROGRESS: u8 = 8;
}

impl Effects {
    /// Queue the connection on list `kind`.
    #[inline]
    pub(crate) fn queue(&mut self, kind: TxKind) {
        self.lists |= kind.bit();
    }

    /// Record flow events `ev`.
    #[inline]
    pub(crate) fn event(&mut self, ev: FlowEvents) {
        self.events = self.events | ev;
    }

    /// Wake the connection's writer when chunks are freed (its send found
    /// the pool empty).
    #[inline]
    pub(crate) fn wait_pool(&mut self) {
        self.rare |= Rare::WAIT_POOL;
    }

    /// The peer's ACK advanced SND.UNA: it confirms the neighbour (ARP
    /// reachability).
    #[inline]
    pub(crate) fn progress(&mut self) {
        self.rare |= Rare::PROGRESS;
    }

    /// The passive child is established: hand it to its listener.
    #[inline]
    pub(crate) fn accepted(&mut self) {
        self.rare |= Rare::ACCEPTED;
    }

    /// Answer the segment being processed with a RST (RFC 9293 §3.10.7.1's
    /// form for it).
    #[inline]
    pub(crate) fn reset_segment(&mut self) {
        self.rare |= Rare::RST;
    }

    /// True when a RST answers the segment.
    #[inline]
    pub(crate) fn resets_segment(&self) -> bool {
        self.rare & Rare::RST != 0
    }

    /// The connection ends.
    #[inline]
    pub(crate) fn end(&mut self, end: End) {
        self.end = Some(end);
    }

    /// True when the connection ended.
    #[inline]
    pub(crate) fn ended(&self) -> bool {
        self.end.is_some()
    }

    /// Nothing to do but join TX lists (if any): most socket calls.
    #[inline]
    fn lists_only(&self) -> bool {
        self.end.is_none() && self.events.is_empty() && self.wheel.is_empty() && self.rare == 0
    }
}

impl TcpStack {
    /// The connection at `index` and what it may touch.
    #[inline]
    pub(crate) fn split(&mut self, index: u32) -> (&mut Connection, Cx<'_>) {
        let TcpStack {
            tcbs,
            cfg,
            pool,
            stats,
            scratch,
            ooo_chunks,
            challenge_window,
            ..
        } = self;
        let cx = Cx {
            cfg,
            pool,
            stats,
            scratch,
            ooo_chunks,
            challenge_window,
        };
        (tcbs.at_mut(index), cx)
    }

    /// Does what a call of the connection at `index` asked: its wheel
    /// entry first, the progress note, the lists, the flow events, the
    /// accept queue, then its end (the order in which the stack did them
    /// when the steps ran inline). A RST that answers a segment is the
    /// segment's caller's ([`Effects::resets_segment`]).
    ///
    /// Inlined for its common cases, no effect or lists only (a `recv`
    /// that finds nothing, a `send`); the rest is one call.
    #[inline(always)]
    pub(crate) fn apply(&mut self, index: u32, fx: Effects) {
        if fx.lists_only() {
            if fx.lists != 0 {
                self.join_lists(index, fx.lists);
            }
            return;
        }
        self.apply_all(index, fx);
    }

    /// The TX lists in `lists` ([`TxKind::bit`] bits), in priority order.
    #[inline]
    fn join_lists(&mut self, index: u32, lists: u8) {
        let t = self.tcbs.at_mut(index);
        let id = t.id(index);
        self.lists.join(id, &mut t.head.lists, lists);
    }

    /// [`apply`](Self::apply) of an `Effects` with more than lists.
    fn apply_all(&mut self, index: u32, fx: Effects) {
        fx.wheel.apply(&mut self.wheel, index);
        if fx.rare & Rare::PROGRESS != 0 {
            let peer = self.tcbs.at(index).key.remote_ip;
            self.note_progress(peer);
        }
        if fx.lists != 0 {
            self.join_lists(index, fx.lists);
        }
        if !fx.events.is_empty() {
            self.event(index, fx.events);
        }
        if fx.rare & Rare::WAIT_POOL != 0 {
            let id = self.tcbs.at(index).id(index);
            self.pool_waiters.push_back(id);
        }
        if fx.rare & Rare::ACCEPTED != 0 {
            self.join_accept_queue(index);
        }
        match fx.end {
            None => {}
            Some(End::Closed(err)) => self.enter_closed(index, err),
            Some(End::Abort) => self.abort_index(index),
            Some(End::TimeWait { now, ack_fin }) => self.enter_time_wait(index, now, ack_fin),
        }
    }
}

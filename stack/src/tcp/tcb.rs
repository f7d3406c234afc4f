//! The transmission control block (TCB) and its per-core slab.
//!
//! As in mTCP, a TCB is split into a hot part ([`TcbHot`], what every
//! segment touches: state, SND.UNA/NXT/WND, RCV.NXT/WND, flags, list bits,
//! pending events — one cache line) and cold parts: the rest of the send
//! and receive variables ([`SendVars`], [`RecvVars`]), negotiated options,
//! timers, buffers, waker slots and the pending error. The slab
//! ([`TcbSlab`]) is preallocated to `max_sockets` at start-up (mTCP's
//! `max_concurrency`); sockets are named by a [`SocketId`], a slab index with
//! a generation, so a stale id can never reach a reused slot.
//!
//! Send sequence space (RFC 9293 §3.3.1, Figure 3):
//!
//! ```text
//!                    1         2          3          4
//!               ----------|----------|----------|----------
//!                      SND.UNA    SND.NXT    SND.UNA
//!                                           +SND.WND
//!
//!   1 - old sequence numbers that have been acknowledged
//!   2 - sequence numbers of unacknowledged data (in flight)
//!   3 - sequence numbers allowed for new data transmission
//!   4 - future sequence numbers that are not yet allowed
//!
//!   ISS      - initial send sequence number (our SYN)
//!   SND.UNA  - oldest unacknowledged sequence number
//!   SND.NXT  - next sequence number to send (rewound on RTO)
//!   SND.MAX  - highest sequence number sent plus one (not in the RFC;
//!              SND.NXT before any rewind, used for ACK acceptability)
//!   SND.WND  - the peer's window, scaled (bytes from SND.UNA)
//!   SND.WL1  - SEG.SEQ of the segment that last updated SND.WND
//!   SND.WL2  - SEG.ACK of the segment that last updated SND.WND
//! ```
//!
//! Receive sequence space (RFC 9293 §3.3.1, Figure 4):
//!
//! ```text
//!                        1          2          3
//!                    ----------|----------|----------
//!                           RCV.NXT    RCV.NXT
//!                                     +RCV.WND
//!
//!   1 - old sequence numbers that have been acknowledged
//!   2 - sequence numbers allowed for new reception
//!   3 - future sequence numbers that are not yet allowed
//!
//!   IRS      - initial receive sequence number (the peer's SYN)
//!   RCV.NXT  - next sequence number expected
//!   RCV.WND  - the window we offer (bytes from RCV.NXT)
//! ```

use super::buffer::{RecvBuffer, SendBuffer};
use super::congestion::{Algorithm, Congestion};
use super::events::{FlowEvents, WakerSlots};
use super::flow_table::FlowKey;
use super::reassembly::Assembler;
use super::rtt::{RttEstimator, RttSampler};
use super::sack::Scoreboard;
use super::socket::TcpError;
use super::state::State;
use super::tx_list::ListFlags;
use crate::time::{Duration, Instant};
use crate::wire::ipv4::Ipv4Address;
use crate::wire::SeqNumber;
use core::fmt;

/// SACKed ranges the sender remembers per connection.
pub const SCOREBOARD_RANGES: usize = 16;

/// Names a socket: a slab index plus the generation of that slot, checked on
/// every call so that an id kept after close never reaches a new socket.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    index: u32,
    generation: u32,
}

impl SocketId {
    /// An id from its parts.
    pub const fn new(index: u32, generation: u32) -> SocketId {
        SocketId { index, generation }
    }

    /// The slab index.
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The slot generation.
    pub const fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Per-connection flag bits (hot).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct TcbFlags(pub u32);

impl TcbFlags {
    /// An ACK must go out now.
    pub const ACK_NOW: u32 = 1 << 0;
    /// An ACK is owed but may be delayed.
    pub const ACK_DELAYED: u32 = 1 << 1;
    /// The user shut down writing: a FIN follows the queued data.
    pub const FIN_QUEUED: u32 = 1 << 2;
    /// Our FIN has been sent at least once.
    pub const FIN_SENT: u32 = 1 << 3;
    /// Nagle's algorithm is off.
    pub const NODELAY: u32 = 1 << 4;
    /// Timestamps negotiated (RFC 7323).
    pub const TIMESTAMPS: u32 = 1 << 5;
    /// SACK negotiated (RFC 2018).
    pub const SACK: u32 = 1 << 6;
    /// Window scaling negotiated (RFC 7323).
    pub const WSCALE: u32 = 1 << 7;
    /// The user closed the socket: free it when the connection ends.
    pub const USER_CLOSED: u32 = 1 << 8;
    /// Opened passively (child of a listener).
    pub const PASSIVE: u32 = 1 << 9;
    /// Keepalive on.
    pub const KEEPALIVE: u32 = 1 << 10;
    /// The peer's FIN was received (EOF after the buffered data).
    pub const FIN_RECEIVED: u32 = 1 << 11;
    /// A window update must go out (the user read and opened the window).
    pub const WINDOW_UPDATE: u32 = 1 << 12;
    /// The SYN (or SYN-ACK) must be (re)sent.
    pub const SYN_PENDING: u32 = 1 << 13;
    /// A zero-window or keepalive probe must be sent.
    pub const PROBE: u32 = 1 << 14;
    /// The user holds this socket (accepted, connected or listening).
    pub const USER_OWNED: u32 = 1 << 15;
    /// Retransmit the segment at SND.UNA once (fast retransmit, partial ACK).
    pub const REXMIT_ONE: u32 = 1 << 16;
    /// Created from a SYN cookie.
    pub const FROM_COOKIE: u32 = 1 << 17;
    /// The persist timer fired with a small non-zero window: send what
    /// fits, overriding sender SWS avoidance once (RFC 9293 §3.8.6.2.1).
    pub const SWS_OVERRIDE: u32 = 1 << 18;
    /// A write found the chunk pool empty: wake the writer when chunks
    /// are free again.
    pub const WAIT_POOL: u32 = 1 << 19;

    /// True when `bit` is set.
    #[inline]
    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    /// Sets `bit`.
    #[inline]
    pub fn set(&mut self, bit: u32) {
        self.0 |= bit;
    }

    /// Clears `bit`.
    #[inline]
    pub fn clear(&mut self, bit: u32) {
        self.0 &= !bit;
    }
}

impl fmt::Debug for TcbFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The hot send variables.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendSeq {
    /// SND.UNA: oldest unacknowledged sequence number.
    pub una: SeqNumber,
    /// SND.NXT: next sequence number to send.
    pub nxt: SeqNumber,
    /// SND.WND: the peer's window in bytes (already scaled).
    pub wnd: u32,
}

/// The hot receive variables.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecvSeq {
    /// RCV.NXT: next sequence number expected.
    pub nxt: SeqNumber,
    /// RCV.WND: the window we last advertised, in bytes.
    pub wnd: u32,
}

/// What every segment touches: kept in one cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct TcbHot {
    /// SND.UNA, SND.NXT, SND.WND.
    pub snd: SendSeq,
    /// RCV.NXT, RCV.WND.
    pub rcv: RecvSeq,
    /// Generation of this slab slot.
    pub generation: u32,
    /// Flag bits ([`TcbFlags`]).
    pub flags: TcbFlags,
    /// The connection state.
    pub state: State,
    /// `on_*_list` bits.
    pub lists: ListFlags,
    /// Events pending delivery this tick.
    pub events: FlowEvents,
    /// The slot holds a socket.
    pub in_use: bool,
}

/// The cold send variables (RFC names where they exist).
#[derive(Debug, Clone, Copy, Default)]
pub struct SendVars {
    /// ISS: our initial sequence number.
    pub iss: SeqNumber,
    /// SND.WL1: SEG.SEQ of the last window update.
    pub wl1: SeqNumber,
    /// SND.WL2: SEG.ACK of the last window update.
    pub wl2: SeqNumber,
    /// SND.MAX: highest sequence number sent, plus one.
    pub max: SeqNumber,
    /// Largest window the peer has offered (RFC 5961's MAX.SND.WND).
    pub max_wnd: u32,
    /// The largest right edge (SEG.ACK + SEG.WND) the peer has advertised:
    /// no segment may end past it (a one-octet zero-window probe aside).
    pub max_edge: SeqNumber,
    /// Effective send MSS: min(peer's MSS, our MTU limit).
    pub mss: u16,
    /// The peer's window shift (Snd.Wind.Shift).
    pub wscale: u8,
    /// Most bytes the user may queue.
    pub limit: u32,
    /// SND.MAX when the current SACK recovery began (RFC 6675 RecoveryPoint).
    pub recovery_point: SeqNumber,
}

/// The cold receive variables.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecvVars {
    /// IRS: the peer's initial sequence number.
    pub irs: SeqNumber,
    /// Our window shift (Rcv.Wind.Shift).
    pub wscale: u8,
    /// The MSS we advertised.
    pub mss: u16,
    /// The right edge we have advertised (RCV.NXT + RCV.WND when sent);
    /// never moved left (RFC 9293 §3.8.6.2.2).
    pub adv_edge: SeqNumber,
    /// Bytes received in order since the last ACK we sent.
    pub unacked_bytes: u32,
    /// TS.Recent (RFC 7323 §4.3).
    pub ts_recent: u32,
    /// When TS.Recent was last updated.
    pub ts_recent_at: Instant,
    /// Last ACK number sent (Last.ACK.sent of RFC 7323).
    pub last_ack_sent: SeqNumber,
    /// Most bytes buffered for the user.
    pub limit: u32,
    /// The peer's segment size as seen (largest payload received, at most
    /// our MSS): "full-sized" for delayed ACKs, like Linux's `rcv_mss`.
    pub seg_size: u16,
    /// Duplicate ACKs owed for out-of-order segments of this tick.
    pub dupacks_owed: u8,
    /// Sequence number of a FIN received out of order.
    pub fin_seq: Option<SeqNumber>,
}

/// Per-connection timers: the real deadlines (the wheel holds one entry at
/// the earliest of them) and retry counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timers {
    /// Retransmission (also SYN / SYN-ACK retries).
    pub rto_at: Option<Instant>,
    /// Delayed ACK.
    pub delack_at: Option<Instant>,
    /// Persist (zero-window probe).
    pub persist_at: Option<Instant>,
    /// Keepalive.
    pub keepalive_at: Option<Instant>,
    /// TIME-WAIT expiry (coarse list).
    pub time_wait_at: Option<Instant>,
    /// Consecutive retransmissions without progress.
    pub retries: u8,
    /// Persist backoff exponent.
    pub persist_shift: u8,
    /// When the persist timer was last armed (a probe sent, or the window
    /// found closed): a segment heard since then answers the probe.
    pub persist_armed_at: Instant,
    /// Keepalive probes sent without answer.
    pub ka_probes: u8,
    /// Last time a segment arrived (for keepalive idle).
    pub last_rx: Instant,
    /// Last time data was sent (restart after idle, RFC 5681 §4.1).
    pub last_tx: Instant,
    /// No ACK answers an out-of-window pure ACK before this time.
    pub oow_ack_at: Instant,
}

impl Timers {
    /// The earliest armed deadline.
    pub fn earliest(&self) -> Option<Instant> {
        // Branch-free: an unarmed timer counts as "never" (u64::MAX µs, far
        // beyond any real instant), then one minimum over four words.
        let at = |t: Option<Instant>| t.map_or(u64::MAX, Instant::total_micros);
        let m = at(self.rto_at)
            .min(at(self.delack_at))
            .min(at(self.persist_at).min(at(self.keepalive_at)));
        (m != u64::MAX).then(|| Instant::from_micros(m))
    }
}

/// Options negotiated on the SYN exchange, plus per-socket settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Negotiated {
    /// Our timestamp offset (RFC 7323 §5.4 suggests a random one).
    pub ts_offset: u32,
    /// Our TSval when the last retransmission timeout fired (0: none).
    /// An echo older than it times a segment sent before the timeout (a
    /// retransmission filling a hole echoes the TS.Recent of the segment
    /// before the hole, RFC 7323 §4.3) and must not inflate the RTT.
    pub rto_ts_floor: u32,
    /// Keepalive idle time.
    pub ka_idle: Duration,
    /// Keepalive interval.
    pub ka_interval: Duration,
    /// Keepalive probes before giving up.
    pub ka_count: u8,
}

/// Listener bookkeeping (LISTEN sockets and their children).
#[derive(Debug, Clone, Copy)]
pub struct ListenVars {
    /// For a child: the listener's id.
    pub parent: Option<SocketId>,
    /// Intrusive accept queue link (next child index).
    pub accept_next: u32,
    /// Accept queue head (listener).
    pub accept_head: u32,
    /// Accept queue tail (listener).
    pub accept_tail: u32,
    /// Children in the accept queue (listener).
    pub accept_len: u32,
    /// Accept queue limit (listener).
    pub backlog: u32,
    /// Children in SYN-RECEIVED (listener).
    pub syn_count: u32,
    /// The child has been counted in the listener's `syn_count`.
    pub in_syn_queue: bool,
    /// The child is in the listener's accept queue.
    pub in_accept_queue: bool,
}

impl Default for ListenVars {
    fn default() -> ListenVars {
        ListenVars {
            parent: None,
            accept_next: u32::MAX,
            accept_head: u32::MAX,
            accept_tail: u32::MAX,
            accept_len: 0,
            backlog: 0,
            syn_count: 0,
            in_syn_queue: false,
            in_accept_queue: false,
        }
    }
}

/// One transmission control block.
#[derive(Debug)]
pub struct Tcb {
    /// The hot part.
    pub hot: TcbHot,
    /// Cold send variables.
    pub send: SendVars,
    /// Cold receive variables.
    pub receive: RecvVars,
    /// The 4-tuple (for a listener: local part only).
    pub key: FlowKey,
    /// Timers.
    pub timers: Timers,
    /// Options and settings.
    pub opts: Negotiated,
    /// RTT and RTO (RFC 6298).
    pub rtt: RttEstimator,
    /// Segment timing when timestamps are off (Karn).
    pub sampler: RttSampler,
    /// Data queued by the user, from SND.UNA.
    pub sndbuf: SendBuffer,
    /// Data received, from the user's read point.
    pub rcvbuf: RecvBuffer,
    /// Out-of-order ranges beyond RCV.NXT.
    pub ooo: Assembler,
    /// Congestion control (NewReno or CUBIC) and fast-recovery state.
    pub cc: Congestion,
    /// The SACK scoreboard (RFC 6675).
    pub sb: Scoreboard,
    /// Read and write wakers.
    pub wakers: WakerSlots,
    /// The error to report to the user.
    pub error: Option<TcpError>,
    /// The last soft ICMP error (RFC 1122 §4.2.3.9), reported if the
    /// connection times out.
    pub soft_error: Option<TcpError>,
    /// Listener and child links.
    pub listen: ListenVars,
}

impl Tcb {
    fn empty(ooo_ranges: usize) -> Tcb {
        let any = Ipv4Address::UNSPECIFIED;
        Tcb {
            hot: TcbHot::default(),
            send: SendVars::default(),
            receive: RecvVars::default(),
            key: FlowKey::new(any, 0, any, 0),
            timers: Timers::default(),
            opts: Negotiated::default(),
            rtt: RttEstimator::default(),
            sampler: RttSampler::new(),
            sndbuf: SendBuffer::new(),
            rcvbuf: RecvBuffer::new(),
            ooo: Assembler::new(ooo_ranges),
            cc: Congestion::new(Algorithm::NewReno, 536),
            sb: Scoreboard::new(SCOREBOARD_RANGES),
            wakers: WakerSlots::default(),
            error: None,
            soft_error: None,
            listen: ListenVars::default(),
        }
    }

    /// Resets every field but the generation and the preallocated storage.
    pub(crate) fn reset(&mut self) {
        let gen = self.hot.generation;
        self.hot = TcbHot {
            generation: gen,
            ..TcbHot::default()
        };
        self.send = SendVars::default();
        self.receive = RecvVars::default();
        self.timers = Timers::default();
        self.opts = Negotiated::default();
        self.sampler = RttSampler::new();
        self.sndbuf = SendBuffer::new();
        self.rcvbuf = RecvBuffer::new();
        self.ooo.clear();
        self.sb.clear();
        self.wakers = WakerSlots::default();
        self.error = None;
        self.soft_error = None;
        self.listen = ListenVars::default();
    }

    /// This socket's id.
    pub fn id(&self, index: u32) -> SocketId {
        SocketId::new(index, self.hot.generation)
    }

    /// The connection state.
    #[inline]
    pub fn state(&self) -> State {
        self.hot.state
    }

    /// True when `bit` of [`TcbFlags`] is set.
    #[inline]
    pub fn has(&self, bit: u32) -> bool {
        self.hot.flags.has(bit)
    }
}

/// The slab of TCBs: address space for `capacity` blocks is reserved at
/// start (one `Vec::with_capacity`, which the kernel maps without committing
/// pages), and a block is constructed the first time a slot beyond the ones
/// built so far is needed. Freed slots are reused first, so the slab never
/// grows past the peak number of sockets, and never reallocates.
#[derive(Debug)]
pub struct TcbSlab {
    slots: Vec<Tcb>,
    free: Vec<u32>,
    capacity: usize,
    ooo_ranges: usize,
}

impl TcbSlab {
    /// Room for `capacity` TCBs, each with an assembler of `ooo_ranges`
    /// ranges; none is built yet.
    pub fn new(capacity: usize, ooo_ranges: usize) -> TcbSlab {
        TcbSlab {
            slots: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            capacity,
            ooo_ranges,
        }
    }

    /// Total slots.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slots built so far (the peak number of sockets).
    pub fn built(&self) -> usize {
        self.slots.len()
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// True when every slot is in use.
    pub fn is_full(&self) -> bool {
        self.free.is_empty() && self.slots.len() >= self.capacity
    }

    /// Takes a free slot, reset; `None` when all are in use.
    pub fn alloc(&mut self) -> Option<SocketId> {
        let i = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < self.capacity => {
                // Within the reserved capacity: no reallocation.
                self.slots.push(Tcb::empty(self.ooo_ranges));
                (self.slots.len() - 1) as u32
            }
            None => return None,
        };
        let t = &mut self.slots[i as usize];
        t.reset();
        t.hot.in_use = true;
        Some(SocketId::new(i, t.hot.generation))
    }

    /// Gives a slot back; its generation moves on so old ids go stale.
    /// The caller has already returned its buffers to the pool.
    pub fn free(&mut self, id: SocketId) {
        let t = &mut self.slots[id.index() as usize];
        if t.hot.in_use && t.hot.generation == id.generation() {
            t.hot.in_use = false;
            t.hot.state = State::Closed;
            t.hot.generation = t.hot.generation.wrapping_add(1);
            self.free.push(id.index());
        }
    }

    /// The TCB of `id` when the id is current.
    #[inline]
    pub fn get(&self, id: SocketId) -> Option<&Tcb> {
        let t = self.slots.get(id.index() as usize)?;
        (t.hot.in_use && t.hot.generation == id.generation()).then_some(t)
    }

    /// The TCB of `id` when the id is current.
    #[inline]
    pub fn get_mut(&mut self, id: SocketId) -> Option<&mut Tcb> {
        let t = self.slots.get_mut(id.index() as usize)?;
        (t.hot.in_use && t.hot.generation == id.generation()).then_some(t)
    }

    /// The TCB at `index`, whatever its state.
    #[inline]
    pub fn at(&self, index: u32) -> &Tcb {
        &self.slots[index as usize]
    }

    /// The TCB at `index`, whatever its state.
    #[inline]
    pub fn at_mut(&mut self, index: u32) -> &mut Tcb {
        &mut self.slots[index as usize]
    }

    /// Two distinct TCBs at once.
    ///
    /// # Panics
    /// Panics when `a == b`.
    pub fn pair_mut(&mut self, a: u32, b: u32) -> (&mut Tcb, &mut Tcb) {
        assert_ne!(a, b);
        let (a, b) = (a as usize, b as usize);
        if a < b {
            let (l, r) = self.slots.split_at_mut(b);
            (&mut l[a], &mut r[0])
        } else {
            let (l, r) = self.slots.split_at_mut(a);
            (&mut r[0], &mut l[b])
        }
    }

    /// Iterates over the ids of every socket in use.
    pub fn ids(&self) -> impl Iterator<Item = SocketId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, t)| t.hot.in_use)
            .map(|(i, t)| SocketId::new(i as u32, t.hot.generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_part_fits_one_cache_line() {
        assert!(
            core::mem::size_of::<TcbHot>() <= 64,
            "{}",
            core::mem::size_of::<TcbHot>()
        );
        assert_eq!(core::mem::size_of::<SocketId>(), 8);
        // An idle connection costs its TCB only (no buffer chunk): keep the
        // whole block, cold parts included, within 1 KiB.
        assert!(
            core::mem::size_of::<Tcb>() <= 1024,
            "{}",
            core::mem::size_of::<Tcb>()
        );
    }

    #[test]
    fn slab_generations_make_old_ids_stale() {
        let mut s = TcbSlab::new(2, 4);
        let a = s.alloc().unwrap();
        let b = s.alloc().unwrap();
        assert!(s.alloc().is_none());
        assert_eq!(s.in_use(), 2);
        s.free(a);
        assert!(s.get(a).is_none());
        let c = s.alloc().unwrap();
        assert_eq!(c.index(), a.index());
        assert_ne!(c.generation(), a.generation());
        assert!(s.get(c).is_some());
        assert!(s.get(b).is_some());
        // Freeing a stale id does nothing.
        s.free(a);
        assert_eq!(s.in_use(), 2);
        let (x, y) = s.pair_mut(0, 1);
        x.hot.rcv.wnd = 1;
        y.hot.rcv.wnd = 2;
        assert_eq!(s.ids().count(), 2);
    }

    #[test]
    fn earliest_timer() {
        let t = Timers {
            rto_at: Some(Instant::from_millis(30)),
            delack_at: Some(Instant::from_millis(10)),
            ..Timers::default()
        };
        assert_eq!(t.earliest(), Some(Instant::from_millis(10)));
        assert_eq!(Timers::default().earliest(), None);
    }
}

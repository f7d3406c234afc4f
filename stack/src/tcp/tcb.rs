//! The transmission control block (TCB) and its per-core slab.
//!
//! A TCB is one block, stored whole in the slab: there is no hot/cold
//! split. (One was claimed before, but never made: the block was stored
//! whole, its "hot" part was not cache-line aligned, and the per-segment
//! path of an ESTABLISHED connection reads the other send and receive
//! variables, the timers, the RTT estimator, congestion control, the
//! buffers and the 4-tuple as well: several cache lines whatever the
//! order; a real split would need most of them in its aligned part, and was
//! not built. Grouping the parts by use instead costs nothing: the benches
//! of `benches/benches/tcp.rs` under callgrind count the same or fewer
//! instructions per segment.) [`TcbHead`] holds
//! what lookups, the TX lists, the event queue and the socket API check
//! first (slot generation, state, flags, list bits, pending events) and the
//! sequence variables every segment reads (SND.UNA/NXT/MAX/WND,
//! RCV.NXT/WND); then the rest of the send and receive variables
//! ([`SendVars`], [`RecvVars`]), negotiated options, timers, buffers,
//! waker slots and the pending error. The slab
//! ([`TcbSlab`]) is preallocated to `max_connections` at start-up (mTCP's
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

use super::accept_queue::NIL;
use super::buffer::{RecvBuffer, SendBuffer};
use super::congestion::{Algorithm, Congestion};
use super::events::{FlowEvents, WakerSlots};
use super::flow_table::FlowKey;
use super::reassembly::Assembler;
use super::rtt::{RttEstimator, RttSampler};
use super::sack::Scoreboard;
use super::stack::KeepaliveConfig;
use super::state::State;
use super::timer::Timers;
use super::tx_list::ListFlags;
use super::types::TcpError;
/// Re-exported from [`types`](super::types), where they live.
pub(crate) use super::types::{SocketId, TcbFlags};
use crate::time::Duration;
use crate::wire::ipv4::Ipv4Address;
use crate::wire::SeqNumber;

/// SACKed ranges the sender remembers per connection.
pub(crate) const SCOREBOARD_RANGES: usize = 16;

/// What a connection without out-of-order data reads as its assembler.
static NO_OOO: Assembler = Assembler::new(0);

/// What a connection the peer never SACKed reads as its scoreboard.
static NO_SACK: Scoreboard = Scoreboard::new(0);

/// The send sequence variables every segment reads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SendSeq {
    /// SND.UNA: oldest unacknowledged sequence number.
    pub una: SeqNumber,
    /// SND.NXT: next sequence number to send.
    pub nxt: SeqNumber,
    /// SND.MAX: highest sequence number sent, plus one.
    pub max: SeqNumber,
    /// SND.WND: the peer's window in bytes (already scaled).
    pub wnd: u32,
}

/// The receive sequence variables every segment reads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RecvSeq {
    /// RCV.NXT: next sequence number expected.
    pub nxt: SeqNumber,
    /// RCV.WND: the window we last advertised, in bytes.
    pub wnd: u32,
}

/// The head of a TCB: the sequence variables every segment reads, and what
/// lookups, lists, events and the socket API check first. Grouped by use,
/// not stored apart (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct TcbHead {
    /// SND.UNA, SND.NXT, SND.MAX, SND.WND.
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

/// The other send variables (RFC names where they exist).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SendVars {
    /// ISS: our initial sequence number.
    pub iss: SeqNumber,
    /// SND.WL1: SEG.SEQ of the last window update.
    pub wl1: SeqNumber,
    /// SND.WL2: SEG.ACK of the last window update.
    pub wl2: SeqNumber,
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

/// The other receive variables.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RecvVars {
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
    /// When TS.Recent was last updated, in whole seconds of the stack's
    /// clock (`input.rs`' `secs`): RFC 7323 §5.5's 24-day rule needs no finer (Linux
    /// keeps seconds too).
    pub ts_recent_secs: u32,
    /// Last ACK number sent (Last.ACK.sent of RFC 7323).
    pub last_ack_sent: SeqNumber,
    /// Most bytes buffered for the user.
    pub limit: u32,
    /// The peer's segment size as seen (largest payload received, at most
    /// our MSS): "full-sized" for delayed ACKs, like Linux's `rcv_mss`.
    pub seg_size: u16,
    /// Duplicate ACKs owed for out-of-order segments of this tick.
    pub dupacks_owed: u8,
    /// Sequence number of a FIN received out of order, valid with the
    /// `OOO_FIN` flag bit (see [`Connection::ooo_fin`]).
    fin_seq: SeqNumber,
}

/// Options negotiated on the SYN exchange, plus per-socket settings.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Negotiated {
    /// Our timestamp offset (RFC 7323 §5.4 suggests a random one).
    pub ts_offset: u32,
    /// Our TSval when the last retransmission timeout fired (0: none).
    /// An echo older than it times a segment sent before the timeout (a
    /// retransmission filling a hole echoes the TS.Recent of the segment
    /// before the hole, RFC 7323 §4.3) and must not inflate the RTT.
    pub rto_ts_floor: u32,
    /// Keepalive idle time in whole milliseconds (0: not set yet), held
    /// as a `u32` (4 bytes where a `Duration` takes 16): see
    /// [`Negotiated::set_keepalive`].
    ka_idle_ms: u32,
    /// Keepalive interval in whole milliseconds.
    ka_interval_ms: u32,
    /// Keepalive probes before giving up.
    pub ka_count: u8,
}

impl Negotiated {
    /// Keepalive idle time.
    #[inline]
    pub(crate) fn ka_idle(&self) -> Duration {
        Duration::from_millis(u64::from(self.ka_idle_ms))
    }

    /// Keepalive interval.
    #[inline]
    pub(crate) fn ka_interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.ka_interval_ms))
    }

    /// Whether this socket's keepalive timing has been set.
    pub(crate) fn has_keepalive_timing(&self) -> bool {
        self.ka_idle_ms != 0
    }

    /// Sets the keepalive timing. Times are rounded up to whole
    /// milliseconds (the timer wheel's tick, so no deadline moves) and
    /// saturate at `u32::MAX` ms, about 49 days (Linux caps
    /// `TCP_KEEPIDLE` at 32 767 s).
    pub(crate) fn set_keepalive(&mut self, k: &KeepaliveConfig) {
        self.ka_idle_ms = ceil_millis(k.idle);
        self.ka_interval_ms = ceil_millis(k.interval);
        self.ka_count = k.count;
    }

    /// This socket's keepalive timing, as set.
    pub(crate) fn keepalive(&self) -> KeepaliveConfig {
        KeepaliveConfig {
            idle: self.ka_idle(),
            interval: self.ka_interval(),
            count: self.ka_count,
        }
    }
}

/// `d` in milliseconds, rounded up, saturated at `u32::MAX`.
fn ceil_millis(d: Duration) -> u32 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    u32::try_from(ms).unwrap_or(u32::MAX)
}

/// Listener and child links. A listener's queue counts (tail, length,
/// backlog, half-open children) live in the stack's
/// [`AcceptQueues`](super::accept_queue::AcceptQueues), not in every slot;
/// whether a child is in its listener's SYN or accept queue is a flag bit
/// (`IN_SYN_QUEUE`, `IN_ACCEPT_QUEUE`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListenVars {
    /// For a child: the listener's id.
    pub parent: Option<SocketId>,
    /// The intrusive accept queue: for a child in the queue, the next
    /// child's slot; for a listener, the first child's ([`NIL`]: none).
    pub next: u32,
    /// For a listener: its entry in the stack's accept queues ([`NIL`]
    /// for any other socket).
    pub queue: u32,
}

impl Default for ListenVars {
    fn default() -> ListenVars {
        ListenVars {
            parent: None,
            next: NIL,
            queue: NIL,
        }
    }
}

/// One connection: its transmission control block, and (in `timeout.rs`,
/// `output.rs`) the state machine over it, in the smoltcp shape: a call
/// gets what else it may touch as a `Cx` and returns what the stack must
/// do as `Effects` (both in `effects.rs`).
#[derive(Debug)]
pub(crate) struct Connection {
    /// State, flags and the sequence variables every segment reads.
    pub head: TcbHead,
    /// The other send variables.
    pub send: SendVars,
    /// The other receive variables.
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
    /// Out-of-order ranges beyond RCV.NXT: none until the slot's first
    /// out-of-order segment, then kept for the slot's later connections
    /// (8 bytes in the slot where the assembler takes 32: see
    /// [`Connection::ooo`]).
    ooo: Option<Box<Assembler>>,
    /// Congestion control (NewReno or CUBIC) and fast-recovery state.
    pub cc: Congestion,
    /// The SACK scoreboard (RFC 6675): none until the peer first SACKs
    /// on this slot, then kept (8 bytes where the scoreboard takes 40: see
    /// [`Connection::sb`]).
    sb: Option<Box<Scoreboard>>,
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

impl Connection {
    fn empty() -> Connection {
        let any = Ipv4Address::UNSPECIFIED;
        Connection {
            head: TcbHead::default(),
            send: SendVars::default(),
            receive: RecvVars::default(),
            key: FlowKey::new(any, 0, any, 0),
            timers: Timers::default(),
            opts: Negotiated::default(),
            rtt: RttEstimator::default(),
            sampler: RttSampler::new(),
            sndbuf: SendBuffer::new(),
            rcvbuf: RecvBuffer::new(),
            ooo: None,
            cc: Congestion::new(Algorithm::NewReno, 536),
            sb: None,
            wakers: WakerSlots::default(),
            error: None,
            soft_error: None,
            listen: ListenVars::default(),
        }
    }

    /// Resets every field but the generation and the preallocated storage.
    pub(crate) fn reset(&mut self) {
        let gen = self.head.generation;
        self.head = TcbHead {
            generation: gen,
            ..TcbHead::default()
        };
        self.send = SendVars::default();
        self.receive = RecvVars::default();
        self.timers = Timers::default();
        self.opts = Negotiated::default();
        self.sampler = RttSampler::new();
        self.sndbuf = SendBuffer::new();
        self.rcvbuf = RecvBuffer::new();
        self.clear_ooo();
        self.clear_sb();
        self.wakers = WakerSlots::default();
        self.error = None;
        self.soft_error = None;
        self.listen = ListenVars::default();
    }

    /// The sequence number of a FIN received out of order, if any.
    #[inline]
    pub(crate) fn ooo_fin(&self) -> Option<SeqNumber> {
        self.has(TcbFlags::OOO_FIN).then_some(self.receive.fin_seq)
    }

    /// Remembers (or forgets) a FIN received out of order.
    pub(crate) fn set_ooo_fin(&mut self, fin: Option<SeqNumber>) {
        match fin {
            Some(seq) => {
                self.receive.fin_seq = seq;
                self.head.flags.insert(TcbFlags::OOO_FIN);
            }
            None => self.head.flags.remove(TcbFlags::OOO_FIN),
        }
    }

    /// The out-of-order ranges (empty when the slot never held any).
    #[inline]
    pub(crate) fn ooo(&self) -> &Assembler {
        self.ooo.as_deref().unwrap_or(&NO_OOO)
    }

    /// Whether out-of-order data is held.
    #[inline]
    pub(crate) fn has_ooo(&self) -> bool {
        !self.ooo().is_empty()
    }

    /// The out-of-order ranges to add to: built (holding at most
    /// `max_ranges`) at the slot's first out-of-order segment.
    pub(crate) fn ooo_mut(&mut self, max_ranges: usize) -> &mut Assembler {
        self.ooo
            .get_or_insert_with(|| Box::new(Assembler::new(max_ranges)))
    }

    /// An in-order segment of `len` bytes arrived: [`Assembler::advance`],
    /// or `len` when nothing is held out of order.
    #[inline]
    pub(crate) fn ooo_advance(&mut self, len: usize) -> usize {
        match self.ooo.as_deref_mut() {
            Some(a) => a.advance(len),
            None => len,
        }
    }

    /// Forgets the out-of-order ranges (their room stays with the slot).
    pub(crate) fn clear_ooo(&mut self) {
        if let Some(a) = self.ooo.as_deref_mut() {
            a.clear();
        }
    }

    /// The SACK scoreboard (empty when the peer never SACKed on this slot).
    #[inline]
    pub(crate) fn sb(&self) -> &Scoreboard {
        self.sb.as_deref().unwrap_or(&NO_SACK)
    }

    /// The SACK scoreboard to change: built at the slot's first need.
    pub(crate) fn sb_mut(&mut self) -> &mut Scoreboard {
        self.sb
            .get_or_insert_with(|| Box::new(Scoreboard::new(SCOREBOARD_RANGES)))
    }

    /// RFC 6675 Update() ([`Scoreboard::update`]); an ACK with no SACK
    /// block builds no scoreboard.
    pub(crate) fn sb_update(
        &mut self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        blocks: &[crate::wire::tcp::SackBlock],
    ) -> usize {
        if self.sb.is_none() && blocks.is_empty() {
            return 0;
        }
        self.sb_mut().update(snd_una, snd_max, blocks)
    }

    /// The SACK scoreboard to change, only when it was built: a change
    /// that means nothing on an empty one builds none.
    pub(crate) fn sb_if_built(&mut self) -> Option<&mut Scoreboard> {
        self.sb.as_deref_mut()
    }

    /// Forgets all SACK information (the room stays with the slot).
    pub(crate) fn clear_sb(&mut self) {
        if let Some(sb) = self.sb_if_built() {
            sb.clear();
        }
    }

    /// This socket's id.
    pub(crate) fn id(&self, index: u32) -> SocketId {
        SocketId::new(index, self.head.generation)
    }

    /// True when `bit` of [`TcbFlags`] is set.
    #[inline]
    pub(crate) fn has(&self, bit: TcbFlags) -> bool {
        self.head.flags.has(bit)
    }
}

/// The slab of TCBs: address space for `capacity` blocks is reserved at
/// start (one `Vec::with_capacity`, which the kernel maps without committing
/// pages), and a block is constructed the first time a slot beyond the ones
/// built so far is needed. Freed slots are reused first, so the slab never
/// grows past the peak number of sockets, and never reallocates.
#[derive(Debug)]
pub(crate) struct TcbSlab {
    slots: Vec<Connection>,
    free: Vec<u32>,
    capacity: usize,
}

impl TcbSlab {
    /// Room for `capacity` TCBs; none is built yet.
    pub(crate) fn new(capacity: usize) -> TcbSlab {
        TcbSlab {
            slots: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Total slots.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slots built so far (the peak number of sockets).
    pub(crate) fn built(&self) -> usize {
        self.slots.len()
    }

    /// Slots in use.
    pub(crate) fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Takes a free slot, reset; `None` when all are in use.
    pub(crate) fn alloc(&mut self) -> Option<SocketId> {
        let i = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < self.capacity => {
                // Within the reserved capacity: no reallocation.
                self.slots.push(Connection::empty());
                (self.slots.len() - 1) as u32
            }
            None => return None,
        };
        let t = &mut self.slots[i as usize];
        t.reset();
        t.head.in_use = true;
        Some(SocketId::new(i, t.head.generation))
    }

    /// Gives a slot back; its generation moves on so old ids go stale.
    /// The caller has already returned its buffers to the pool.
    pub(crate) fn free(&mut self, id: SocketId) {
        let t = &mut self.slots[id.index() as usize];
        if t.head.in_use && t.head.generation == id.generation() {
            t.head.in_use = false;
            t.head.state = State::Closed;
            t.head.generation = t.head.generation.wrapping_add(1);
            self.free.push(id.index());
        }
    }

    /// The TCB of `id` when the id is current.
    #[inline]
    pub(crate) fn get(&self, id: SocketId) -> Option<&Connection> {
        let t = self.slots.get(id.index() as usize)?;
        (t.head.in_use && t.head.generation == id.generation()).then_some(t)
    }

    /// The TCB of `id` when the id is current.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: SocketId) -> Option<&mut Connection> {
        let t = self.slots.get_mut(id.index() as usize)?;
        (t.head.in_use && t.head.generation == id.generation()).then_some(t)
    }

    /// The 4-tuple of the TCB at `index` (the flow table keeps only the
    /// index and confirms the key here).
    #[inline]
    pub(crate) fn key_at(&self, index: u32) -> FlowKey {
        self.slots[index as usize].key
    }

    /// The TCB at `index`, whatever its state.
    #[inline]
    pub(crate) fn at(&self, index: u32) -> &Connection {
        &self.slots[index as usize]
    }

    /// The TCB at `index`, whatever its state.
    #[inline]
    pub(crate) fn at_mut(&mut self, index: u32) -> &mut Connection {
        &mut self.slots[index as usize]
    }

    /// Two distinct TCBs at once.
    ///
    /// # Panics
    /// Panics when `a == b`.
    pub(crate) fn pair_mut(&mut self, a: u32, b: u32) -> (&mut Connection, &mut Connection) {
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
    pub(crate) fn ids(&self) -> impl Iterator<Item = SocketId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, t)| t.head.in_use)
            .map(|(i, t)| SocketId::new(i as u32, t.head.generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes() {
        assert!(
            core::mem::size_of::<TcbHead>() <= 64,
            "{}",
            core::mem::size_of::<TcbHead>()
        );
        assert_eq!(core::mem::size_of::<SocketId>(), 8);
        // An idle connection costs its TCB only (no buffer chunk): keep the
        // whole block within the budget docs/benchmarks.md accounts for
        // (736 bytes before the compact timers, RTT, keepalive, congestion,
        // buffer, reassembly and scoreboard state).
        assert!(
            core::mem::size_of::<Connection>() <= 424,
            "{}",
            core::mem::size_of::<Connection>()
        );
    }

    #[test]
    fn keepalive_timing_is_kept_in_whole_milliseconds() {
        let mut o = Negotiated::default();
        assert!(!o.has_keepalive_timing());
        o.set_keepalive(&KeepaliveConfig {
            idle: Duration::from_micros(1_500),
            interval: Duration::from_secs(75),
            count: 9,
        });
        assert!(o.has_keepalive_timing());
        // Rounded up, so a deadline never comes early and a non-zero time
        // never reads as "not set".
        assert_eq!(o.ka_idle(), Duration::from_millis(2));
        assert_eq!(o.ka_interval(), Duration::from_secs(75));
        o.set_keepalive(&KeepaliveConfig {
            idle: Duration::from_nanos(1),
            interval: Duration::from_secs(u64::MAX),
            count: 1,
        });
        assert_eq!(o.ka_idle(), Duration::from_millis(1));
        assert_eq!(o.ka_interval(), Duration::from_millis(u64::from(u32::MAX)));
        assert_eq!(o.keepalive().count, 1);
    }

    #[test]
    fn slab_generations_make_old_ids_stale() {
        let mut s = TcbSlab::new(2);
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
        x.head.rcv.wnd = 1;
        y.head.rcv.wnd = 2;
        assert_eq!(s.ids().count(), 2);
    }
}

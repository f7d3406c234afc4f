//! The per-core TCP engine: [`TcpStack`], its configuration and counters.
//!
//! One `TcpStack` per core owns the flow table, the TCB slab, the chunk pool,
//! the timer wheel, the TX lists and the flow-event queue. The runtime calls,
//! once per tick and in this order (mTCP's `core.c` loop):
//!
//! 1. [`TcpStack::input`] for each received segment;
//! 2. [`TcpStack::poll_timers`];
//! 3. [`TcpStack::wake_pending`] (or [`TcpStack::drain_events`]);
//! 4. application calls (`send`, `recv`, `accept`, …, in `socket.rs`);
//! 5. [`TcpStack::dispatch`], which turns the control, ACK and data lists
//!    into segments within a budget.
//!
//! Nothing here reads a clock, touches a device or allocates per packet.

use super::accept_queue::AcceptQueues;
use super::buffer::ChunkPool;
use super::events::{EventQueue, FlowEvents};
use super::flow_table::{FlowKey, FlowTable, ListenerTable, TableFull};
use super::isn::IsnGenerator;
use super::syncookie::SynCookies;
use super::tcb::TcbSlab;
use super::time_wait::TimeWaitTable;
use super::timer::TimerWheel;
use super::tx_list::{TxKind, TxLists};
use super::types::{SocketId, TcbFlags};
use crate::iface::pmtu::{PmtuCache, PmtuConfig};
use crate::rand::Rng;
use crate::time::{Duration, Instant};
use crate::wake_list::WakeList;
use crate::wire::ipv4::Ipv4Address;
use crate::wire::tcp::{TcpFlags, TcpOptions};
use crate::wire::SeqNumber;
use core::fmt;
use core::task::Waker;
use std::collections::VecDeque;

/// Which congestion control algorithm new connections use (NewReno or
/// CUBIC).
pub use super::congestion::Algorithm as CongestionKind;

/// Keepalive timing (RFC 9293 §3.8.4; off unless enabled per socket or by
/// [`TcpConfig::keepalive_default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes before the connection times out.
    pub count: u8,
}

impl Default for KeepaliveConfig {
    fn default() -> KeepaliveConfig {
        KeepaliveConfig {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            count: 9,
        }
    }
}

/// The configuration of one core's TCP engine.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpConfig {
    /// Most connections per core, listeners included (each takes a TCB;
    /// TIME-WAIT is held apart, see `max_time_wait`), as
    /// `MTCP_MAX_CONNECTIONS` and `Builder::max_connections` name it. The TCB slab
    /// and the flow table are sized for it at start but their memory is
    /// committed only as sockets are used.
    pub max_connections: usize,
    /// Most TIME-WAIT entries per core (`MTCP_MAX_TIME_WAIT`, as Linux's
    /// `tcp_max_tw_buckets`); past it a connection closes without
    /// TIME-WAIT, counted in `time_wait_overflow`.
    pub max_time_wait: usize,
    /// Bytes per buffer chunk.
    pub chunk_size: usize,
    /// Chunks in the per-core pool (`chunk_size * chunk_count` bytes).
    pub chunk_count: usize,
    /// Default send buffer limit per socket, bytes.
    pub send_buffer: usize,
    /// Default receive buffer limit per socket, bytes (also sets our
    /// window scale).
    pub recv_buffer: usize,
    /// IP MTU; the MSS we advertise is `mtu - 40`.
    pub mtu: usize,
    /// Maximum segment lifetime; TIME-WAIT lasts 2×MSL.
    pub msl: Duration,
    /// Delayed-ACK timeout (at most 500 ms by RFC 9293; 40 ms default).
    pub delayed_ack: Duration,
    /// Congestion control for new connections.
    pub congestion: CongestionKind,
    /// Most half-open (SYN-RECEIVED) children per listener; past it, SYN
    /// cookies (when on) or drops.
    pub syn_backlog: usize,
    /// Answer SYN floods with SYN cookies.
    pub syn_cookies: bool,
    /// RTO before the first RTT sample. The RTO values are kept in u32 µs:
    /// above about 71 minutes they act as 71 minutes.
    pub rto_initial: Duration,
    /// Lower bound of the RTO.
    pub rto_min: Duration,
    /// Upper bound of the RTO (backoff included; at most about 71 minutes,
    /// see `rto_initial`).
    pub rto_max: Duration,
    /// SYN / SYN-ACK retransmissions before giving up. The default, 7,
    /// keeps retrying for about 3 minutes with the default RTOs (RFC 9293
    /// MUST-23; Linux's 6 gives up after about 2).
    pub syn_retries: u8,
    /// Data retransmissions without progress before giving up.
    pub data_retries: u8,
    /// Keepalive timing (each socket keeps it in whole milliseconds,
    /// rounded up, at most `u32::MAX` ms, about 49.7 days).
    pub keepalive: KeepaliveConfig,
    /// Keepalive on for every new socket.
    pub keepalive_default: bool,
    /// How long an orphaned connection (closed by the application) may sit
    /// in FIN-WAIT-2 waiting for the peer's FIN (Linux `tcp_fin_timeout`).
    pub fin_timeout: Duration,
    /// Retransmissions (or zero-window probes) an orphaned connection gets
    /// before it is reset and reaped (Linux `tcp_orphan_retries`; 8 keeps
    /// retrying for at least 100 s with the default RTOs).
    pub orphan_retries: u8,
    /// Most out-of-order ranges kept per connection.
    pub ooo_max_ranges: usize,
    /// Most chunks holding out-of-order data, per core.
    pub ooo_max_chunks: usize,
    /// Default segment budget of one `dispatch` call (for the runtime).
    pub tx_budget: usize,
    /// Challenge ACKs per second, per core (RFC 5961 §7).
    pub challenge_ack_limit: u32,
    /// Ephemeral ports for active opens, inclusive.
    pub ephemeral_ports: (u16, u16),
    /// Offer timestamps (RFC 7323).
    pub timestamps: bool,
    /// Offer SACK (RFC 2018).
    pub sack: bool,
    /// Offer window scaling (RFC 7323).
    pub window_scaling: bool,
    /// Let a new connection take over a 4-tuple in TIME-WAIT when that is
    /// safe (RFC 6191 spirit).
    pub time_wait_reuse: bool,
    /// The per-core path MTU table (RFC 1191): size, ageing, minimum PMTU.
    pub pmtu: PmtuConfig,
    /// Seed of the per-core random generator: the ISN and SYN-cookie
    /// secrets (RFC 6528), hash seeds, timestamp offsets. The default draws
    /// a fresh one from the operating system's randomness for every
    /// configuration (RFC 9293 MUST-9: the ISN function must not be
    /// computable from outside); set it for a reproducible run (tests,
    /// simulations).
    pub seed: u64,
}

/// A fresh secret seed: std's `RandomState` keys come from the operating
/// system's randomness (and differ per call), mixed with the wall clock.
fn secret_seed() -> u64 {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    std::collections::hash_map::RandomState::new().hash_one(nanos)
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig {
            max_connections: 65536,
            max_time_wait: 262_144,
            chunk_size: 2048,
            chunk_count: 16384,
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            mtu: 1500,
            msl: Duration::from_secs(30),
            delayed_ack: Duration::from_millis(40),
            congestion: CongestionKind::Cubic,
            syn_backlog: 1024,
            syn_cookies: true,
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(60),
            syn_retries: 7,
            data_retries: 15,
            keepalive: KeepaliveConfig::default(),
            keepalive_default: false,
            fin_timeout: Duration::from_secs(60),
            orphan_retries: 8,
            ooo_max_ranges: 8,
            ooo_max_chunks: 4096,
            tx_budget: 256,
            challenge_ack_limit: 1000,
            ephemeral_ports: (32768, 60999),
            timestamps: true,
            sack: true,
            window_scaling: true,
            time_wait_reuse: true,
            pmtu: PmtuConfig::default(),
            seed: secret_seed(),
        }
    }
}

/// A configuration value out of range: names the field, the value and what
/// was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// The value given.
    pub value: u64,
    /// What was expected.
    pub expected: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tcp config: {} = {} is invalid, expected {}",
            self.field, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

impl TcpConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, value: usize, expected| {
            Err(ConfigError {
                field,
                value: value as u64,
                expected,
            })
        };
        if self.max_connections == 0 || self.max_connections > (1 << 24) {
            return err("max_connections", self.max_connections, "1..=16777216");
        }
        if self.max_time_wait > (1 << 24) {
            return err("max_time_wait", self.max_time_wait, "0..=16777216");
        }
        if self.chunk_size < 64 || self.chunk_size > (1 << 20) {
            return err("chunk_size", self.chunk_size, "64..=1048576");
        }
        if self.chunk_count == 0 || self.chunk_count >= u32::MAX as usize {
            return err("chunk_count", self.chunk_count, "1..4294967295");
        }
        if self.mtu < 576 || self.mtu > 65535 {
            return err("mtu", self.mtu, "576..=65535");
        }
        if self.send_buffer == 0 || self.send_buffer > (1 << 30) {
            return err("send_buffer", self.send_buffer, "1..=1073741824");
        }
        if self.recv_buffer < 1024 || self.recv_buffer > (1 << 30) {
            return err("recv_buffer", self.recv_buffer, "1024..=1073741824");
        }
        if self.delayed_ack > Duration::from_millis(500) {
            return err(
                "delayed_ack",
                self.delayed_ack.as_millis() as usize,
                "at most 500 ms",
            );
        }
        if self.rto_min.is_zero() || self.rto_min > self.rto_max {
            return err(
                "rto_min",
                self.rto_min.as_millis() as usize,
                "positive and at most rto_max",
            );
        }
        if self.ephemeral_ports.0 == 0 || self.ephemeral_ports.0 > self.ephemeral_ports.1 {
            return err(
                "ephemeral_ports",
                usize::from(self.ephemeral_ports.0),
                "a non-empty range of non-zero ports",
            );
        }
        if self.ooo_max_ranges == 0 {
            return err("ooo_max_ranges", 0, "at least 1");
        }
        let ka = &self.keepalive;
        if ka.idle.is_zero() || ka.interval.is_zero() {
            return err("keepalive", 0, "a non-zero idle time and interval");
        }
        if ka.count == 0 {
            return err("keepalive.count", 0, "1..=255 probes");
        }
        if self.fin_timeout.is_zero() {
            return err("fin_timeout", 0, "a non-zero time");
        }
        Ok(())
    }

    /// The MSS we advertise: MTU minus the IPv4 and TCP headers.
    pub fn mss(&self) -> u16 {
        (self.mtu - 40).min(65535) as u16
    }

    /// Our window shift for a receive buffer of `limit` bytes.
    pub fn wscale_for(limit: usize) -> u8 {
        let mut s = 0u8;
        while s < 14 && (limit >> s) > 65535 {
            s += 1;
        }
        s
    }
}

/// Segments dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropStats {
    /// To an address that is not ours.
    pub not_local: u64,
    /// From a broadcast, multicast or unspecified source (RFC 1122 §4.2.3.10).
    pub bad_source: u64,
    /// To no socket (answered with RST unless it was a RST).
    pub no_socket: u64,
    /// Outside the receive window.
    pub out_of_window: u64,
    /// PAWS (old timestamp).
    pub paws: u64,
    /// Unacceptable ACK.
    pub bad_ack: u64,
    /// SYN queue full (no cookies).
    pub syn_queue_full: u64,
    /// Accept queue full.
    pub accept_queue_full: u64,
    /// No free TCB or flow-table slot.
    pub no_tcb: u64,
    /// Out-of-order data over the per-connection or per-core limit.
    pub ooo_limit: u64,
    /// Data the buffer pool could not hold.
    pub pool_exhausted: u64,
    /// Segments without ACK in a synchronized state, and other ignored ones.
    pub ignored: u64,
    /// Stateless replies dropped because their queue was full.
    pub reply_queue_full: u64,
    /// SYN cookies that did not verify.
    pub bad_cookie: u64,
    /// ICMP errors quoting no connection of ours.
    pub icmp_no_socket: u64,
    /// ICMP errors whose quoted sequence number is outside SND.UNA..SND.MAX
    /// (RFC 5927 §4.1).
    pub icmp_out_of_window: u64,
}

/// What one connection costs in the engine's fixed tables, for sizing a
/// stack ([`TcpStack::footprint`]); buffers are counted apart (chunks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Bytes of one TCB slot.
    pub tcb: usize,
    /// Bytes of flow-table buckets per connection (the table is kept at
    /// most half full: two buckets each).
    pub flow_buckets: usize,
    /// Bytes of one TIME-WAIT entry: its slot, its index buckets and its
    /// expiry record.
    pub time_wait_entry: usize,
}

/// Per-core TCP counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Segments received.
    pub segs_in: u64,
    /// Segments sent.
    pub segs_out: u64,
    /// Payload bytes received in order.
    pub bytes_in: u64,
    /// Payload bytes sent (retransmissions included).
    pub bytes_out: u64,
    /// Segments retransmitted.
    pub retransmits: u64,
    /// Retransmission timeouts.
    pub rto_expired: u64,
    /// Fast retransmits.
    pub fast_retransmits: u64,
    /// Duplicate ACKs received.
    pub dup_acks: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Challenge ACKs suppressed by the rate limit.
    pub challenge_acks_limited: u64,
    /// RSTs sent.
    pub resets_sent: u64,
    /// RSTs accepted.
    pub resets_received: u64,
    /// Connections reset because new data arrived after the application
    /// closed them (RFC 1122 §4.2.2.13; Linux `TCPAbortOnData`).
    pub aborts_on_data: u64,
    /// SYN cookies sent.
    pub syn_cookies_sent: u64,
    /// SYN cookies accepted.
    pub syn_cookies_accepted: u64,
    /// Connections opened actively (connect).
    pub active_opens: u64,
    /// Connections opened passively (accepted handshakes).
    pub passive_opens: u64,
    /// Connections that ended (any way).
    pub conns_closed: u64,
    /// Connections that timed out.
    pub conns_timed_out: u64,
    /// Connections reset by the peer.
    pub conns_reset: u64,
    /// TIME-WAIT 4-tuples taken over by a new connection.
    pub time_wait_reused: u64,
    /// TIME-WAIT entries ended early by the peer's RST with SEG.SEQ =
    /// RCV.NXT (RFC 9293, as Linux with `tcp_rfc1337 = 0`): a peer's
    /// answer to the ACK that refused its SYN, say.
    pub time_wait_reset: u64,
    /// Connections that closed without TIME-WAIT because the TIME-WAIT
    /// table was at its cap (`max_time_wait`).
    pub time_wait_overflow: u64,
    /// SYNs answered with a SYN cookie because the listener's SYN queue
    /// was full (`syn_backlog`).
    pub syn_queue_cookies: u64,
    /// SYNs (and cookie ACKs) answered with a RST because every TCB slot
    /// was in use (`max_connections`).
    pub table_full_resets: u64,
    /// Zero-window probes sent.
    pub window_probes: u64,
    /// Keepalive probes sent.
    pub keepalive_probes: u64,
    /// Connections closed because keepalive probes went unanswered.
    pub keepalive_timeouts: u64,
    /// Orphaned FIN-WAIT-2 connections reaped after `fin_timeout`.
    pub fin_timeout_reaped: u64,
    /// Orphaned connections reset after `orphan_retries` unanswered
    /// retransmissions or probes.
    pub orphans_reaped: u64,
    /// Children reset when their listener closed (un-accepted and
    /// half-open).
    pub listener_children_reset: u64,
    /// Segments with URG (urgent data is not supported; treated as data).
    pub urgent_ignored: u64,
    /// ICMP errors accepted for a connection (RFC 5927 checks passed).
    pub icmp_errors: u64,
    /// Send MSS reductions after ICMP Fragmentation Needed (RFC 1191).
    pub pmtu_shrinks: u64,
    /// Soft ICMP errors recorded (RFC 1122 §4.2.3.9).
    pub icmp_soft_errors: u64,
    /// Connections in SYN-SENT aborted by a hard ICMP error.
    pub icmp_aborts: u64,
    /// Connections reset at shutdown because they were still unfinished
    /// when the linger bound passed ([`TcpStack::abort_closing`]).
    pub linger_resets: u64,
    /// Times the chunk pool went under pressure (receive windows stop
    /// growing for the largest holders; refreshed once per tick).
    pub pool_pressure: u64,
    /// 1 while the chunk pool is under pressure, else 0.
    pub pool_under_pressure: u64,
    /// Chunk requests of large holders refused to keep the pool's reserve
    /// for new connections and small writes.
    pub pool_reserve_refused: u64,
    /// Drops by reason.
    pub drops: DropStats,
}

impl fmt::Display for TcpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.drops;
        let rows: [(&str, u64); 56] = [
            ("segs_in", self.segs_in),
            ("segs_out", self.segs_out),
            ("bytes_in", self.bytes_in),
            ("bytes_out", self.bytes_out),
            ("retransmits", self.retransmits),
            ("rto_expired", self.rto_expired),
            ("fast_retransmits", self.fast_retransmits),
            ("dup_acks", self.dup_acks),
            ("challenge_acks", self.challenge_acks),
            ("challenge_acks_limited", self.challenge_acks_limited),
            ("resets_sent", self.resets_sent),
            ("resets_received", self.resets_received),
            ("aborts_on_data", self.aborts_on_data),
            ("syn_cookies_sent", self.syn_cookies_sent),
            ("syn_cookies_accepted", self.syn_cookies_accepted),
            ("active_opens", self.active_opens),
            ("passive_opens", self.passive_opens),
            ("conns_closed", self.conns_closed),
            ("conns_timed_out", self.conns_timed_out),
            ("conns_reset", self.conns_reset),
            ("time_wait_reused", self.time_wait_reused),
            ("time_wait_reset", self.time_wait_reset),
            ("time_wait_overflow", self.time_wait_overflow),
            ("syn_queue_cookies", self.syn_queue_cookies),
            ("table_full_resets", self.table_full_resets),
            ("window_probes", self.window_probes),
            ("keepalive_probes", self.keepalive_probes),
            ("keepalive_timeouts", self.keepalive_timeouts),
            ("fin_timeout_reaped", self.fin_timeout_reaped),
            ("orphans_reaped", self.orphans_reaped),
            ("listener_children_reset", self.listener_children_reset),
            ("urgent_ignored", self.urgent_ignored),
            ("icmp_errors", self.icmp_errors),
            ("pmtu_shrinks", self.pmtu_shrinks),
            ("icmp_soft_errors", self.icmp_soft_errors),
            ("icmp_aborts", self.icmp_aborts),
            ("linger_resets", self.linger_resets),
            ("pool_pressure", self.pool_pressure),
            ("pool_under_pressure", self.pool_under_pressure),
            ("pool_reserve_refused", self.pool_reserve_refused),
            ("drop_not_local", d.not_local),
            ("drop_bad_source", d.bad_source),
            ("drop_no_socket", d.no_socket),
            ("drop_out_of_window", d.out_of_window),
            ("drop_paws", d.paws),
            ("drop_bad_ack", d.bad_ack),
            ("drop_syn_queue_full", d.syn_queue_full),
            ("drop_accept_queue_full", d.accept_queue_full),
            ("drop_no_tcb", d.no_tcb),
            ("drop_ooo_limit", d.ooo_limit),
            ("drop_pool_exhausted", d.pool_exhausted),
            ("drop_ignored", d.ignored),
            ("drop_reply_queue_full", d.reply_queue_full),
            ("drop_bad_cookie", d.bad_cookie),
            ("drop_icmp_no_socket", d.icmp_no_socket),
            ("drop_icmp_out_of_window", d.icmp_out_of_window),
        ];
        for (name, v) in rows {
            writeln!(f, "tcp.{name} {v}")?;
        }
        Ok(())
    }
}

/// A segment that belongs to no TCB (RST to a closed port, SYN-ACK with a
/// cookie, challenge ACK for a freed socket), queued for `dispatch`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reply {
    pub(crate) src: Ipv4Address,
    pub(crate) dst: Ipv4Address,
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) seq: SeqNumber,
    pub(crate) ack: SeqNumber,
    pub(crate) flags: TcpFlags,
    pub(crate) window: u16,
    pub(crate) options: TcpOptions,
}

/// Most stateless replies waiting for `dispatch`.
pub(crate) const REPLY_QUEUE: usize = 1024;

/// The port filter of active opens: (local ip, local port, remote ip,
/// remote port) → whether the flow's replies reach this core.
pub(crate) type PortFilter = Box<dyn Fn(Ipv4Address, u16, Ipv4Address, u16) -> bool + Send>;

/// Peers remembered per tick for neighbour confirmation.
const PROGRESS_BATCH: usize = 64;

/// RFC 5961 §7: may a challenge ACK go out now, `window` being (second,
/// challenge ACKs in it) and `limit` the most per second? Counts the answer.
pub(crate) fn challenge_allowed(
    window: &mut (u64, u32),
    limit: u32,
    stats: &mut TcpStats,
    now: Instant,
) -> bool {
    let sec = now.total_micros() / 1_000_000;
    if window.0 != sec {
        *window = (sec, 0);
    }
    if window.1 >= limit {
        stats.challenge_acks_limited += 1;
        return false;
    }
    window.1 += 1;
    stats.challenge_acks += 1;
    true
}

/// One core's TCP engine. See the module docs for the call order.
pub struct TcpStack {
    pub(crate) cfg: TcpConfig,
    pub(crate) local_addrs: Vec<Ipv4Address>,
    pub(crate) tcbs: TcbSlab,
    pub(crate) pool: ChunkPool,
    pub(crate) flows: FlowTable,
    pub(crate) listeners: ListenerTable,
    /// The listeners' accept and SYN queue counts.
    pub(crate) queues: AcceptQueues,
    pub(crate) wheel: TimerWheel,
    /// TIME-WAIT entries (outside the slab).
    pub(crate) tw: TimeWaitTable,
    /// Directed broadcast addresses of our subnets (`connect` refuses them).
    pub(crate) broadcasts: Vec<Ipv4Address>,
    pub(crate) lists: TxLists,
    pub(crate) events: EventQueue,
    pub(crate) replies: VecDeque<Reply>,
    pub(crate) isn: IsnGenerator,
    pub(crate) stats: TcpStats,
    pub(crate) port_filter: Option<PortFilter>,
    pub(crate) next_port: u16,
    pub(crate) scratch: Vec<u8>,
    pub(crate) expired: Vec<u32>,
    pub(crate) expired_tw: Vec<(SocketId, Instant)>,
    pub(crate) ooo_chunks: usize,
    pub(crate) challenge_window: (u64, u32),
    pub(crate) last_coarse: Instant,
    pub(crate) now: Instant,
    pub(crate) cookies: SynCookies,
    pub(crate) ts_secret: [u8; 16],
    pub(crate) pool_waiters: VecDeque<SocketId>,
    /// Path MTU per destination (RFC 1191).
    pub(crate) pmtu: PmtuCache,
    /// Peers whose ACKs advanced SND.UNA since the last
    /// [`take_progress`](TcpStack::take_progress) (ARP confirmations).
    pub(crate) progress: Vec<Ipv4Address>,
    /// Wakers due, woken by the caller after its borrow of the engine
    /// ends ([`take_wakes`](TcpStack::take_wakes)).
    pub(crate) due: WakeList,
}

impl fmt::Debug for TcpStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStack")
            .field("local_addrs", &self.local_addrs)
            .field("sockets", &self.tcbs.in_use())
            .field("flows", &self.flows.len())
            .field("chunks_in_use", &self.pool.in_use())
            .finish_non_exhaustive()
    }
}

impl TcpStack {
    /// A stack for the local addresses `addrs`, with every pool allocated.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn new(cfg: TcpConfig, addrs: &[Ipv4Address]) -> Result<TcpStack, ConfigError> {
        cfg.validate()?;
        if addrs.is_empty() {
            return Err(ConfigError {
                field: "local addresses",
                value: 0,
                expected: "at least one IPv4 address",
            });
        }
        let mut rng = Rng::new(cfg.seed);
        let mut secret = [0u8; 16];
        rng.fill(&mut secret);
        let mut cookie_secret = [0u8; 16];
        rng.fill(&mut cookie_secret);
        let hash_seed = rng.next_u64();
        let mut ts_secret = [0u8; 16];
        rng.fill(&mut ts_secret);
        let span = u64::from(cfg.ephemeral_ports.1 - cfg.ephemeral_ports.0) + 1;
        let next_port = cfg.ephemeral_ports.0 + rng.range(0, span) as u16;
        let n = cfg.max_connections;
        Ok(TcpStack {
            tcbs: TcbSlab::new(n),
            pool: ChunkPool::new(cfg.chunk_size, cfg.chunk_count),
            flows: FlowTable::new(n, hash_seed),
            listeners: ListenerTable::new(16),
            queues: AcceptQueues::default(),
            wheel: TimerWheel::new(n, Instant::ZERO),
            tw: TimeWaitTable::new(cfg.max_time_wait, hash_seed.rotate_left(17)),
            broadcasts: Vec::new(),
            lists: TxLists::new(n),
            events: EventQueue::new(n),
            replies: VecDeque::with_capacity(REPLY_QUEUE),
            isn: IsnGenerator::new(secret),
            stats: TcpStats::default(),
            port_filter: None,
            next_port,
            scratch: vec![0; 65536],
            expired: Vec::with_capacity(n),
            expired_tw: Vec::with_capacity(cfg.max_time_wait),
            ooo_chunks: 0,
            challenge_window: (0, 0),
            last_coarse: Instant::ZERO,
            now: Instant::ZERO,
            local_addrs: addrs.to_vec(),
            cookies: SynCookies::new(cookie_secret),
            ts_secret,
            pool_waiters: VecDeque::with_capacity(n),
            pmtu: PmtuCache::new(cfg.pmtu),
            progress: Vec::with_capacity(PROGRESS_BATCH),
            due: WakeList::with_capacity(64),
            cfg,
        })
    }

    /// Records that an ACK from `peer` advanced SND.UNA. A hint for the
    /// neighbour cache, batched per tick: repeats of the last peer are
    /// folded and a full batch drops the rest (the next tick confirms).
    pub(crate) fn note_progress(&mut self, peer: Ipv4Address) {
        if self.progress.last() != Some(&peer) && self.progress.len() < PROGRESS_BATCH {
            self.progress.push(peer);
        }
    }

    /// The peers that made forward progress since the last call (each at
    /// most a few times), for [`Interface::confirm`](crate::iface::Interface::confirm).
    pub fn take_progress(&mut self) -> std::vec::Drain<'_, Ipv4Address> {
        self.progress.drain(..)
    }

    /// The configuration.
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> &TcpStats {
        &self.stats
    }

    /// Chunks of the buffer pool in use (0 when every buffer is drained).
    pub fn chunks_in_use(&self) -> usize {
        self.pool.in_use()
    }

    /// Sockets (TCBs) in use, listeners included (TIME-WAIT is not: see
    /// [`TcpStack::time_wait_sockets`]).
    pub fn sockets_in_use(&self) -> usize {
        self.tcbs.in_use()
    }

    /// Flows in the flow table.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// The slab index of `key`'s connection, if the flow table has it.
    #[inline]
    pub(crate) fn flow(&self, key: &FlowKey) -> Option<u32> {
        let tcbs = &self.tcbs;
        self.flows.get(key, |i| tcbs.key_at(i))
    }

    /// Enters `key` → TCB `index` in the flow table.
    ///
    /// # Errors
    /// [`TableFull`] at the table's maximum.
    pub(crate) fn add_flow(&mut self, key: FlowKey, index: u32) -> Result<(), TableFull> {
        let tcbs = &self.tcbs;
        self.flows.insert(key, index, |i| tcbs.key_at(i))
    }

    /// Connections now in TIME-WAIT (each holds its 4-tuple for 2×MSL, or
    /// until a newer SYN reuses it).
    pub fn time_wait_sockets(&self) -> usize {
        self.tw.len()
    }

    /// The TIME-WAIT entry of a 4-tuple (local address and port, remote
    /// address and port), if one is held (for the unit tests and the
    /// script runner, which check what TIME-WAIT remembers).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn time_wait_entry(
        &self,
        local: (Ipv4Address, u16),
        remote: (Ipv4Address, u16),
    ) -> Option<super::time_wait::TimeWaitEntry> {
        self.tw
            .get(&super::flow_table::FlowKey::new(
                local.0, local.1, remote.0, remote.1,
            ))
            .copied()
    }

    /// What one connection and one TIME-WAIT entry cost in the fixed
    /// tables (the same for every configuration).
    pub const fn footprint() -> Footprint {
        Footprint {
            tcb: core::mem::size_of::<super::tcb::Connection>(),
            flow_buckets: 2 * FlowTable::BUCKET_BYTES,
            time_wait_entry: TimeWaitTable::entry_bytes(),
        }
    }

    /// TCB slots constructed so far (the peak of sockets in use; memory
    /// beyond them is reserved but not committed).
    pub fn sockets_built(&self) -> usize {
        self.tcbs.built()
    }

    /// True when `ip` is one of this stack's addresses.
    pub fn is_local(&self, ip: Ipv4Address) -> bool {
        self.local_addrs.contains(&ip)
    }

    // ----- small helpers shared by input, output, timers and the API -----

    /// Queues socket `index` on a TX list.
    pub(crate) fn queue(&mut self, index: u32, kind: TxKind) {
        let t = self.tcbs.at_mut(index);
        let id = t.id(index);
        self.lists.get(kind).push(id, &mut t.head.lists);
    }

    /// Records a flow event.
    pub(crate) fn event(&mut self, index: u32, ev: FlowEvents) {
        let t = self.tcbs.at_mut(index);
        let id = t.id(index);
        self.events.record(id, &mut t.head.events, ev);
    }

    /// Queues a stateless reply.
    pub(crate) fn reply(&mut self, r: Reply) {
        if self.replies.len() >= REPLY_QUEUE {
            self.stats.drops.reply_queue_full += 1;
            return;
        }
        self.replies.push_back(r);
    }

    /// RFC 5961 §7: may a challenge ACK go out now?
    pub(crate) fn challenge_allowed(&mut self, now: Instant) -> bool {
        challenge_allowed(
            &mut self.challenge_window,
            self.cfg.challenge_ack_limit,
            &mut self.stats,
            now,
        )
    }

    /// Our TSval at `now` for a connection with `offset`.
    pub(crate) fn ts_val(now: Instant, offset: u32) -> u32 {
        (now.total_millis() as u32).wrapping_add(offset)
    }

    // ----- timers -----

    /// Runs every timer due at `now`: retransmission, delayed ACK, persist,
    /// keepalive (wheel) and TIME-WAIT (coarse list, once per second).
    pub fn poll_timers(&mut self, now: Instant) {
        self.now = now;
        let mut expired = core::mem::take(&mut self.expired);
        expired.clear();
        self.wheel.expire(now, &mut expired);
        for &index in &expired {
            self.on_timer(index, now);
        }
        self.expired = expired;
        if now.saturating_duration_since(self.last_coarse) >= Duration::from_secs(1) {
            self.poll_coarse(now);
        }
    }

    fn poll_coarse(&mut self, now: Instant) {
        self.last_coarse = now;
        let mut tw = core::mem::take(&mut self.expired_tw);
        self.tw.expire(now, &mut tw);
        self.expired_tw = tw;
    }

    /// The earliest time at which `poll_timers` has work, for the runtime's
    /// idle policy.
    pub fn next_deadline(&self) -> Option<Instant> {
        let w = self.wheel.next_deadline();
        // The coarse list is looked at once per second.
        let c = self
            .tw
            .next_deadline()
            .map(|t| t.max(self.last_coarse + Duration::from_secs(1)));
        match (w, c) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when output is queued (any TX list or stateless reply).
    pub fn has_output(&self) -> bool {
        !self.replies.is_empty() || !self.lists.is_empty()
    }

    // ----- events -----

    /// Writers that found the chunk pool empty become writable once chunks
    /// are free again (they retry, and wait again if they lose the race).
    fn release_pool_waiters(&mut self) {
        self.stats.pool_pressure = self.pool.pressure_entered();
        self.stats.pool_under_pressure = u64::from(self.pool.under_pressure());
        self.stats.pool_reserve_refused = self.pool.reserve_refused();
        // In order; a large writer waits while only the reserve is left.
        while let Some(&id) = self.pool_waiters.front() {
            let held = self.tcbs.get_mut(id).map_or(0, |t| t.sndbuf.chunks());
            if !self.pool.can_alloc(held) {
                break;
            }
            self.pool_waiters.pop_front();
            if let Some(t) = self.tcbs.get_mut(id) {
                if t.has(TcbFlags::WAIT_POOL) {
                    t.head.flags.remove(TcbFlags::WAIT_POOL);
                    self.event(id.index(), FlowEvents::WRITABLE);
                }
            }
        }
    }

    /// Collects this tick's flow events: each registered waker with a
    /// pending event is moved, once, to the due list, which the caller
    /// empties with [`take_wakes`](Self::take_wakes) once it stops
    /// borrowing the engine. Returns the number of wakers due.
    pub fn collect_wakes(&mut self) -> usize {
        self.release_pool_waiters();
        let mut due = 0;
        while let Some(id) = self.events.pop() {
            if let Some(t) = self.tcbs.get_mut(id) {
                let ev = core::mem::take(&mut t.head.events);
                due += t.wakers.take_due(ev, &mut self.due);
            }
        }
        due
    }

    /// Moves every due waker (flow events collected, sockets freed) to the
    /// end of `out`, to be woken after the engine's borrow ends.
    pub fn take_wakes(&mut self, out: &mut Vec<Waker>) {
        self.due.move_into(out);
    }

    /// True when some waker is due.
    pub fn has_wakes(&self) -> bool {
        !self.due.is_empty()
    }

    /// [`collect_wakes`](Self::collect_wakes), then wakes every due waker
    /// at once, inside this borrow: for a caller that owns the engine
    /// outright (tests, benchmarks). Returns the number woken.
    pub fn wake_pending(&mut self) -> usize {
        self.collect_wakes();
        self.due.wake_all()
    }

    /// Drains this tick's flow events into `f(socket, events)` (for callers
    /// that do not use wakers).
    pub fn drain_events(&mut self, f: &mut dyn FnMut(SocketId, FlowEvents)) {
        self.release_pool_waiters();
        while let Some(id) = self.events.pop() {
            if let Some(t) = self.tcbs.get_mut(id) {
                let ev = core::mem::take(&mut t.head.events);
                if !ev.is_empty() {
                    f(id, ev);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        TcpConfig::default().validate().unwrap();
        assert_eq!(TcpConfig::default().mss(), 1460);
    }

    #[test]
    fn bad_config_names_the_field() {
        let cfg = TcpConfig {
            mtu: 100,
            ..TcpConfig::default()
        };
        let e = cfg.validate().unwrap_err();
        assert_eq!(e.field, "mtu");
        assert!(e.to_string().contains("mtu = 100"));
        let cfg = TcpConfig {
            ephemeral_ports: (5, 4),
            ..TcpConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field, "ephemeral_ports");
        assert!(TcpStack::new(TcpConfig::default(), &[]).is_err());
    }

    #[test]
    fn stack_can_move_to_its_core_thread() {
        fn is_send<T: Send>() {}
        is_send::<TcpStack>();
    }

    #[test]
    fn wscale_from_buffer() {
        assert_eq!(TcpConfig::wscale_for(65535), 0);
        assert_eq!(TcpConfig::wscale_for(65536), 1);
        assert_eq!(TcpConfig::wscale_for(256 * 1024), 3);
        assert_eq!(TcpConfig::wscale_for(1 << 30), 14);
    }

    #[test]
    fn stats_display_lists_counters() {
        let s = TcpStats {
            segs_in: 3,
            ..TcpStats::default()
        };
        let text = s.to_string();
        assert!(text.contains("tcp.segs_in 3"));
        assert!(text.contains("tcp.drop_paws 0"));
    }
}

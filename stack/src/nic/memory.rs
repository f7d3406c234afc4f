//! The in-memory NIC: two ports joined by lock-free rings, for tests,
//! simulations and benchmarks without a real device.
//!
//! [`MemoryNic::pair`] builds two ports, A and B, with N queues each. Every
//! queue of one port has its own SPSC ring to every queue of the other port,
//! in each direction (2·N² rings), so each queue is owned by one core and no
//! ring has two writers:
//!
//! ```text
//!   port A                                         port B
//!   queue 0 ── tx ──► ring[A0→B0], ring[A0→B1] ──► queue 0, queue 1 rx
//!   queue 1 ── tx ──► ring[A1→B0], ring[A1→B1] ──► queue 0, queue 1 rx
//!   (and the same from B to A)
//! ```
//!
//! The receiving side steers like a NIC with RSS on: an IPv4 TCP/UDP frame
//! goes to the queue picked by the symmetric Toeplitz hash of its 4-tuple,
//! other IPv4 by its address pair; a flow and its replies therefore meet on
//! the same queue index on both ports. ARP and every other non-IPv4 frame is
//! delivered to **every** queue of the peer: each core keeps its own ARP
//! cache, so each must see every request and reply (a core that does not need
//! it drops it). The port does not filter by destination MAC; the stack does.
//!
//! A frame for one queue crosses without a copy: its buffer is swapped with
//! the ring slot's on transmit and with a spare pool buffer on receive, so
//! buffers migrate between the two ports' pools one for one and no pool
//! shrinks. A frame for every queue (ARP with several queues) is copied
//! into each ring. A full ring drops the frame and counts it in the sender's
//! [`QueueCounters::ring_full_drops`] (a wire has no back-pressure), so
//! `tx_burst` always takes every frame. Order is kept per (sender queue,
//! receiver queue), hence per flow.

use core::fmt;
use core::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;

use super::rss::{Rss, RssKey, Steer, RETA_SIZE, SYMMETRIC_KEY};
use super::spsc::{self, Consumer, Producer};
use super::{Capabilities, DeviceInfo, Frame, FramePool, NicError, NicQueue, QueueCounters};
use crate::time::Duration;
use crate::wire::ethernet::EthernetAddress;

/// Port A's default MAC: locally administered, `02:6d:74:63:70:0a`.
pub const DEFAULT_MAC_A: EthernetAddress = EthernetAddress([0x02, 0x6d, 0x74, 0x63, 0x70, 0x0a]);
/// Port B's default MAC: locally administered, `02:6d:74:63:70:0b`.
pub const DEFAULT_MAC_B: EthernetAddress = EthernetAddress([0x02, 0x6d, 0x74, 0x63, 0x70, 0x0b]);

/// How to build a [`MemoryNic`] pair.
#[derive(Debug, Clone)]
pub struct MemoryNicConfig {
    /// Queues per port, `1..=128`.
    pub queues: usize,
    /// Slots per ring (rounded up to a power of two). Each slot holds a
    /// 2 KiB frame, and there are `2 · queues²` rings.
    pub ring_size: usize,
    /// The IP MTU reported by both ports.
    pub mtu: usize,
    /// MACs of port A and port B.
    pub macs: [EthernetAddress; 2],
    /// Offloads both ports report (the memory NIC performs none; setting
    /// these only changes what the stack believes).
    pub caps: Capabilities,
    /// The RSS key. Keep the symmetric default unless testing asymmetry.
    pub rss_key: RssKey,
}

impl Default for MemoryNicConfig {
    fn default() -> MemoryNicConfig {
        MemoryNicConfig {
            queues: 1,
            ring_size: 1024,
            mtu: 1500,
            macs: [DEFAULT_MAC_A, DEFAULT_MAC_B],
            caps: Capabilities::default(),
            rss_key: SYMMETRIC_KEY,
        }
    }
}

/// Builds in-memory NIC pairs.
#[derive(Debug, Clone, Copy)]
pub struct MemoryNic;

impl MemoryNic {
    /// Two ports with `queues` queues each, joined by rings of `ring_size`
    /// slots, default MACs and MTU 1500.
    ///
    /// # Panics
    /// Panics when `queues` is not in `1..=128` or `ring_size` is 0; use
    /// [`MemoryNic::pair_with`] to get an error instead.
    pub fn pair(queues: usize, ring_size: usize) -> (MemoryPort, MemoryPort) {
        let cfg = MemoryNicConfig {
            queues,
            ring_size,
            ..MemoryNicConfig::default()
        };
        match MemoryNic::pair_with(&cfg) {
            Ok(p) => p,
            Err(e) => panic!("MemoryNic::pair({queues}, {ring_size}): {e}"),
        }
    }

    /// Two ports built from `cfg`.
    ///
    /// # Errors
    /// [`NicError::InvalidArgument`] when `cfg.queues` is not in `1..=128`
    /// or `cfg.ring_size` is 0.
    pub fn pair_with(cfg: &MemoryNicConfig) -> Result<(MemoryPort, MemoryPort), NicError> {
        let n = cfg.queues;
        if n == 0 || n > RETA_SIZE || cfg.ring_size == 0 {
            return Err(NicError::InvalidArgument);
        }
        let notify_a: Vec<Arc<Notify>> = (0..n).map(|_| Arc::new(Notify::default())).collect();
        let notify_b: Vec<Arc<Notify>> = (0..n).map(|_| Arc::new(Notify::default())).collect();
        // a_to_b[i][j]: from A's queue i to B's queue j.
        let (a_tx, b_rx) = rings(n, cfg.ring_size);
        let (b_tx, a_rx) = rings(n, cfg.ring_size);
        let rss = Rss::new(&cfg.rss_key, n);
        let port_a = build_port(cfg, 0, a_tx, a_rx, &notify_a, &notify_b, &rss);
        let port_b = build_port(cfg, 1, b_tx, b_rx, &notify_b, &notify_a, &rss);
        Ok((port_a, port_b))
    }
}

/// `n × n` rings: `tx[i][j]` writes what `rx[j][i]` reads.
fn rings(n: usize, size: usize) -> (Vec<Vec<Producer>>, Vec<Vec<Consumer>>) {
    let mut tx: Vec<Vec<Producer>> = (0..n).map(|_| Vec::with_capacity(n)).collect();
    let mut rx: Vec<Vec<Consumer>> = (0..n).map(|_| Vec::with_capacity(n)).collect();
    for txq in tx.iter_mut() {
        for rxq in rx.iter_mut() {
            let (p, c) = spsc::channel(size);
            txq.push(p);
            rxq.push(c);
        }
    }
    (tx, rx)
}

fn build_port(
    cfg: &MemoryNicConfig,
    side: usize,
    tx: Vec<Vec<Producer>>,
    rx: Vec<Vec<Consumer>>,
    own_notify: &[Arc<Notify>],
    peer_notify: &[Arc<Notify>],
    rss: &Rss,
) -> MemoryPort {
    let n = cfg.queues;
    let queues = tx
        .into_iter()
        .zip(rx)
        .enumerate()
        .map(|(q, (tx, rx))| MemoryQueue {
            info: DeviceInfo {
                mac: Some(cfg.macs[side]),
                mtu: cfg.mtu,
                queue: q,
                queues: n,
                caps: cfg.caps,
            },
            tx,
            peer_notify: peer_notify.to_vec(),
            touched: vec![false; n],
            rx,
            notify: Arc::clone(&own_notify[q]),
            rss: rss.clone(),
            rx_next: 0,
            counters: QueueCounters::default(),
        })
        .collect();
    MemoryPort { queues }
}

/// Lets a consumer park until a producer publishes, at no cost to producers
/// while nobody is parked: a producer pays one fence and one relaxed load per
/// burst, and takes the lock only when the flag says a thread is parked.
#[derive(Debug, Default)]
struct Notify {
    parked: AtomicBool,
    thread: Mutex<Option<Thread>>,
}

impl Notify {
    /// Called by a producer after publishing.
    fn notify(&self) {
        // Pairs with the fence in `wait`: either the waiter sees our
        // published tail, or we see its `parked` flag (store→fence→load on
        // both sides).
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) {
            if let Ok(guard) = self.thread.lock() {
                if let Some(t) = guard.as_ref() {
                    t.unpark();
                }
            }
        }
    }

    /// Parks the current thread until notified or `timeout`, unless `ready`.
    fn wait(&self, ready: impl Fn() -> bool, timeout: Duration) {
        if let Ok(mut guard) = self.thread.lock() {
            let me = std::thread::current();
            if guard.as_ref().map(Thread::id) != Some(me.id()) {
                *guard = Some(me);
            }
        }
        self.parked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !ready() {
            std::thread::park_timeout(timeout);
        }
        self.parked.store(false, Ordering::Relaxed);
    }
}

/// One port of a [`MemoryNic`] pair, before it is split among cores.
#[derive(Debug)]
pub struct MemoryPort {
    queues: Vec<MemoryQueue>,
}

impl MemoryPort {
    /// The port's MAC address.
    pub fn mac(&self) -> EthernetAddress {
        self.queues[0].info.mac.unwrap_or(DEFAULT_MAC_A)
    }

    /// Sets the port's MAC address (seen by all its queues).
    pub fn set_mac(&mut self, mac: EthernetAddress) {
        for q in &mut self.queues {
            q.info.mac = Some(mac);
        }
    }

    /// The number of queues.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// The device properties (those of queue 0).
    pub fn info(&self) -> &DeviceInfo {
        &self.queues[0].info
    }

    /// Splits the port into its queues, queue `i` at index `i`, one per core.
    pub fn split(self) -> Vec<MemoryQueue> {
        self.queues
    }

    /// Splits the port into boxed queues.
    pub fn split_boxed(self) -> Vec<Box<dyn NicQueue>> {
        self.queues
            .into_iter()
            .map(|q| Box::new(q) as Box<dyn NicQueue>)
            .collect()
    }
}

/// One queue of a [`MemoryPort`], owned by one core.
pub struct MemoryQueue {
    info: DeviceInfo,
    /// `tx[j]`: the ring to the peer's queue `j`.
    tx: Vec<Producer>,
    peer_notify: Vec<Arc<Notify>>,
    /// Which of `tx` received frames in the current burst (preallocated).
    touched: Vec<bool>,
    /// `rx[i]`: the ring from the peer's queue `i`.
    rx: Vec<Consumer>,
    notify: Arc<Notify>,
    rss: Rss,
    /// The ring `rx_burst` starts with, rotated for fairness.
    rx_next: usize,
    counters: QueueCounters,
}

impl MemoryQueue {
    fn push_to(&mut self, q: usize, data: &[u8]) {
        match self.tx[q].push(data) {
            Ok(()) => self.touched[q] = true,
            Err(_) => self.counters.ring_full_drops += 1,
        }
    }
}

impl fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryQueue")
            .field("info", &self.info)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl NicQueue for MemoryQueue {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn rx_burst(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize) -> usize {
        let rings = self.rx.len();
        let mut got = 0;
        'rings: for k in 0..rings {
            let ring = &mut self.rx[(self.rx_next + k) % rings];
            while got < max && ring.has_pending() {
                let Some(spare) = pool.alloc() else {
                    self.counters.rx_no_buffer += 1;
                    ring.release();
                    break 'rings;
                };
                let frame = match ring.pop_exchange(spare) {
                    Ok(frame) => frame,
                    Err(spare) => {
                        pool.free(spare);
                        break;
                    }
                };
                self.counters.rx_bytes += frame.len() as u64;
                out.push(frame);
                got += 1;
            }
            ring.release();
            if got == max {
                break;
            }
        }
        self.rx_next = (self.rx_next + 1) % rings;
        self.counters.rx_frames += got as u64;
        got
    }

    fn tx_burst(&mut self, frames: &mut Vec<Frame>, pool: &mut FramePool) -> usize {
        let n = frames.len();
        for frame in frames.drain(..) {
            let data = frame.as_slice();
            self.counters.tx_bytes += data.len() as u64;
            // One queue: nothing to steer, as on a NIC without RSS.
            let steer = if self.tx.len() == 1 {
                Steer::Queue(0)
            } else {
                self.rss.steer(data)
            };
            match steer {
                Steer::Queue(q) => match self.tx[q].push_exchange(frame) {
                    Ok(empty) => {
                        self.touched[q] = true;
                        pool.free(empty);
                    }
                    Err(frame) => {
                        self.counters.ring_full_drops += 1;
                        pool.free(frame);
                    }
                },
                Steer::AllQueues => {
                    for q in 0..self.tx.len() {
                        self.push_to(q, data);
                    }
                    pool.free(frame);
                }
            }
        }
        for q in 0..self.tx.len() {
            if self.touched[q] {
                self.touched[q] = false;
                self.tx[q].publish();
                self.peer_notify[q].notify();
            }
        }
        self.counters.tx_frames += n as u64;
        n
    }

    fn rx_pending(&self) -> bool {
        self.rx.iter().any(Consumer::has_pending)
    }

    fn rx_backlog(&mut self) -> Option<usize> {
        Some(self.rx.iter_mut().map(Consumer::backlog).sum())
    }

    fn wait_rx(&self, timeout: Duration) {
        self.notify.wait(|| self.rx_pending(), timeout);
    }

    fn counters(&self) -> QueueCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rng;
    use std::net::Ipv4Addr;

    const ETH_ARP: [u8; 2] = [0x08, 0x06];

    /// An Ethernet/IPv4/TCP frame carrying `seq` in its payload (checksums
    /// are irrelevant to the NIC).
    fn tcp_frame(pool: &mut FramePool, t: ([u8; 4], [u8; 4], u16, u16), seq: u64) -> Frame {
        let (src, dst, sport, dport) = t;
        let mut f = pool.alloc().expect("pool");
        let b = f.buffer_mut();
        b[..64].fill(0);
        b[12..14].copy_from_slice(&[0x08, 0x00]);
        b[14] = 0x45;
        b[14 + 9] = 6;
        b[26..30].copy_from_slice(&src);
        b[30..34].copy_from_slice(&dst);
        b[34..36].copy_from_slice(&sport.to_be_bytes());
        b[36..38].copy_from_slice(&dport.to_be_bytes());
        b[54..62].copy_from_slice(&seq.to_be_bytes());
        f.set_len(62 + (seq % 50) as usize);
        f
    }

    fn seq_of(f: &Frame) -> u64 {
        u64::from_be_bytes(f.as_slice()[54..62].try_into().unwrap())
    }

    fn arp_frame(pool: &mut FramePool, tag: u8) -> Frame {
        let mut f = pool.alloc().unwrap();
        let b = f.buffer_mut();
        b[..42].fill(tag);
        b[12..14].copy_from_slice(&ETH_ARP);
        f.set_len(42);
        f
    }

    #[test]
    fn single_queue_order_and_no_loss() {
        let (a, b) = MemoryNic::pair(1, 64);
        let (mut a, mut b) = (a.split().remove(0), b.split().remove(0));
        let (mut pa, mut pb) = (FramePool::new(128), FramePool::new(128));
        let tuple = ([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80);
        let mut out = Vec::new();
        let (mut next_tx, mut next_rx) = (0u64, 0u64);
        for round in 0..2000u64 {
            let mut frames: Vec<Frame> = (0..(round % 33))
                .map(|_| {
                    next_tx += 1;
                    tcp_frame(&mut pa, tuple, next_tx - 1)
                })
                .collect();
            assert_eq!(a.tx_burst(&mut frames, &mut pa), (round % 33) as usize);
            assert!(frames.is_empty());
            while b.rx_burst(&mut pb, &mut out, 32) > 0 {}
            for f in out.drain(..) {
                assert_eq!(seq_of(&f), next_rx);
                next_rx += 1;
                pb.free(f);
            }
        }
        assert_eq!(next_tx, next_rx);
        assert_eq!(a.counters().ring_full_drops, 0);
        assert_eq!(a.counters().tx_frames, next_tx);
        assert_eq!(b.counters().rx_frames, next_rx);
        assert_eq!(pa.available(), 128);
        assert_eq!(pb.available(), 128);
    }

    #[test]
    fn rx_backlog_counts_what_waits_on_every_ring() {
        let (a, b) = MemoryNic::pair(2, 64);
        let (mut a, mut b) = (a.split(), b.split());
        let mut pool = FramePool::new(128);
        assert_eq!(b[0].rx_backlog(), Some(0));
        // One flow sent from both of a's queues: it is steered to one of
        // b's queues, through two rings (one from each sender).
        for (q, count) in [(0, 10), (1, 5)] {
            let mut frames: Vec<Frame> = (0..count)
                .map(|i| tcp_frame(&mut pool, ([1; 4], [2; 4], 1, 2), i))
                .collect();
            assert_eq!(a[q].tx_burst(&mut frames, &mut pool), count as usize);
        }
        let backlogs: Vec<usize> = b.iter_mut().map(|q| q.rx_backlog().unwrap()).collect();
        assert!(backlogs == [15, 0] || backlogs == [0, 15], "{backlogs:?}");
        let home = &mut b[usize::from(backlogs[0] == 0)];
        let mut out = Vec::new();
        assert_eq!(home.rx_burst(&mut pool, &mut out, 12), 12);
        assert_eq!(home.rx_backlog(), Some(3));
        assert_eq!(home.rx_burst(&mut pool, &mut out, 12), 3);
        assert_eq!(home.rx_backlog(), Some(0));
    }

    #[test]
    fn rx_burst_respects_max() {
        let (a, b) = MemoryNic::pair(1, 64);
        let (mut a, mut b) = (a.split().remove(0), b.split().remove(0));
        let mut pool = FramePool::new(128);
        let mut frames: Vec<Frame> = (0..10)
            .map(|i| tcp_frame(&mut pool, ([1; 4], [2; 4], 1, 2), i))
            .collect();
        a.tx_burst(&mut frames, &mut pool);
        let mut out = Vec::new();
        assert!(b.rx_pending());
        assert_eq!(b.rx_burst(&mut pool, &mut out, 3), 3);
        assert_eq!(b.rx_burst(&mut pool, &mut out, 0), 0);
        assert_eq!(b.rx_burst(&mut pool, &mut out, 100), 7);
        assert!(!b.rx_pending());
        let seqs: Vec<u64> = out.iter().map(seq_of).collect();
        assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn ring_full_drops_and_counts() {
        let (a, b) = MemoryNic::pair(1, 4);
        let (mut a, mut b) = (a.split().remove(0), b.split().remove(0));
        let mut pool = FramePool::new(64);
        let mut frames: Vec<Frame> = (0..10)
            .map(|i| tcp_frame(&mut pool, ([1; 4], [2; 4], 1, 2), i))
            .collect();
        assert_eq!(a.tx_burst(&mut frames, &mut pool), 10);
        assert_eq!(a.counters().ring_full_drops, 6);
        let mut out = Vec::new();
        assert_eq!(b.rx_burst(&mut pool, &mut out, 32), 4);
        assert_eq!(out.iter().map(seq_of).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        // Space again after reading.
        let mut frames = vec![tcp_frame(&mut pool, ([1; 4], [2; 4], 1, 2), 99)];
        a.tx_burst(&mut frames, &mut pool);
        assert_eq!(a.counters().ring_full_drops, 6);
        assert_eq!(b.rx_burst(&mut pool, &mut out, 32), 1);
    }

    #[test]
    fn empty_pool_leaves_frames_in_the_ring() {
        let (a, b) = MemoryNic::pair(1, 16);
        let (mut a, mut b) = (a.split().remove(0), b.split().remove(0));
        let mut pa = FramePool::new(8);
        let mut frames: Vec<Frame> = (0..5)
            .map(|i| tcp_frame(&mut pa, ([1; 4], [2; 4], 1, 2), i))
            .collect();
        a.tx_burst(&mut frames, &mut pa);
        let mut pb = FramePool::new(2);
        let mut out = Vec::new();
        assert_eq!(b.rx_burst(&mut pb, &mut out, 32), 2);
        assert_eq!(b.counters().rx_no_buffer, 1);
        assert!(b.rx_pending());
        for f in out.drain(..) {
            pb.free(f);
        }
        assert_eq!(b.rx_burst(&mut pb, &mut out, 32), 2);
        for f in out.drain(..) {
            pb.free(f);
        }
        assert_eq!(b.rx_burst(&mut pb, &mut out, 32), 1);
        assert_eq!(seq_of(&out[0]), 4);
    }

    #[test]
    fn steering_flow_and_reply_share_a_queue_index() {
        const Q: usize = 4;
        let (a, b) = MemoryNic::pair(Q, 256);
        let (mut a, mut b) = (a.split(), b.split());
        let mut pool = FramePool::new(1024);
        let mut rng = Rng::new(42);
        let mut out = Vec::new();
        let mut per_queue = [0usize; Q];
        for _ in 0..400 {
            let t = (
                rng.next_u32().to_be_bytes(),
                rng.next_u32().to_be_bytes(),
                rng.next_u32() as u16,
                rng.next_u32() as u16,
            );
            // The flow is sent from a random queue of A.
            let from = rng.range(0, Q as u64) as usize;
            let mut fr = vec![tcp_frame(&mut pool, t, 1)];
            a[from].tx_burst(&mut fr, &mut pool);
            let landed: Vec<usize> = (0..Q)
                .filter(|&q| b[q].rx_burst(&mut pool, &mut out, 32) > 0)
                .collect();
            assert_eq!(landed.len(), 1, "one frame, one queue");
            let q = landed[0];
            per_queue[q] += 1;
            for f in out.drain(..) {
                pool.free(f);
            }
            // The reply, from that queue of B, comes back to A's queue q.
            let reply = (t.1, t.0, t.3, t.2);
            let mut fr = vec![tcp_frame(&mut pool, reply, 2)];
            b[q].tx_burst(&mut fr, &mut pool);
            for (i, qa) in a.iter_mut().enumerate() {
                let n = qa.rx_burst(&mut pool, &mut out, 32);
                assert_eq!(n, usize::from(i == q), "reply on queue {i}, flow on {q}");
            }
            for f in out.drain(..) {
                pool.free(f);
            }
        }
        assert!(per_queue.iter().all(|&c| c > 60), "{per_queue:?}");
    }

    #[test]
    fn arp_fans_out_to_every_queue() {
        let (a, b) = MemoryNic::pair(3, 16);
        let (mut a, mut b) = (a.split(), b.split());
        let mut pool = FramePool::new(64);
        let mut fr = vec![arp_frame(&mut pool, 0x55)];
        a[1].tx_burst(&mut fr, &mut pool);
        let mut out = Vec::new();
        for q in b.iter_mut() {
            assert_eq!(q.rx_burst(&mut pool, &mut out, 8), 1);
        }
        assert!(out.iter().all(|f| f.len() == 42 && f.as_slice()[0] == 0x55));
        assert_eq!(a[1].counters().tx_frames, 1);
        for q in a.iter_mut() {
            assert!(!q.rx_pending());
        }
    }

    #[test]
    fn macs_are_distinct_and_configurable() {
        let (mut a, b) = MemoryNic::pair(2, 4);
        assert_ne!(a.mac(), b.mac());
        assert!(a.mac().is_local() && a.mac().is_unicast());
        assert!(b.mac().is_local() && b.mac().is_unicast());
        let m = EthernetAddress([0x02, 1, 2, 3, 4, 5]);
        a.set_mac(m);
        for q in a.split() {
            assert_eq!(q.info().mac, Some(m));
            assert_eq!(q.info().queues, 2);
            assert_eq!(q.info().mtu, 1500);
        }
        let qs = b.split();
        assert_eq!(qs[1].info().queue, 1);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let cfg = |queues, ring_size| MemoryNicConfig {
            queues,
            ring_size,
            ..MemoryNicConfig::default()
        };
        assert_eq!(
            MemoryNic::pair_with(&cfg(0, 8)).err(),
            Some(NicError::InvalidArgument)
        );
        assert_eq!(
            MemoryNic::pair_with(&cfg(129, 8)).err(),
            Some(NicError::InvalidArgument)
        );
        assert_eq!(
            MemoryNic::pair_with(&cfg(1, 0)).err(),
            Some(NicError::InvalidArgument)
        );
    }

    #[test]
    fn boxed_queues_work_as_trait_objects() {
        let (a, b) = MemoryNic::pair(1, 8);
        let mut a: Box<dyn NicQueue> = a.split_boxed().remove(0);
        let mut b: Box<dyn NicQueue> = b.split_boxed().remove(0);
        let mut pool = FramePool::new(8);
        let mut fr = vec![arp_frame(&mut pool, 1)];
        assert_eq!(a.tx_burst(&mut fr, &mut pool), 1);
        let mut out = Vec::new();
        assert_eq!(b.rx_burst(&mut pool, &mut out, 8), 1);
        assert!(b.raw_fd().is_none());
    }

    #[test]
    fn wait_rx_times_out_and_wakes_on_arrival() {
        let (a, b) = MemoryNic::pair(1, 8);
        let (mut a, b) = (a.split().remove(0), b.split().remove(0));
        let t0 = std::time::Instant::now();
        b.wait_rx(Duration::from_millis(20));
        assert!(!b.rx_pending());
        assert!(t0.elapsed() >= Duration::from_millis(1));

        let waiter = std::thread::spawn(move || {
            let t0 = std::time::Instant::now();
            while !b.rx_pending() && t0.elapsed() < Duration::from_secs(20) {
                b.wait_rx(Duration::from_secs(10));
            }
            (b.rx_pending(), t0.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        let mut pool = FramePool::new(4);
        let mut fr = vec![arp_frame(&mut pool, 9)];
        a.tx_burst(&mut fr, &mut pool);
        let (pending, waited) = waiter.join().unwrap();
        assert!(pending);
        assert!(waited < Duration::from_secs(5), "not woken: {waited:?}");
    }

    #[test]
    fn cores_on_threads_keep_per_flow_order_without_loss() {
        const Q: usize = 3;
        const PER_FLOW: u64 = 20_000;
        let (a, b) = MemoryNic::pair(Q, 128);
        let senders: Vec<_> = a
            .split()
            .into_iter()
            .enumerate()
            .map(|(i, mut q)| {
                std::thread::spawn(move || {
                    let mut pool = FramePool::new(64);
                    // Two flows per sending core.
                    let flows = [
                        ([10, 0, 0, i as u8], [10, 0, 1, 1], 1000 + i as u16, 80),
                        ([10, 0, 0, i as u8], [10, 0, 1, 2], 2000 + i as u16, 443),
                    ];
                    let mut batch = Vec::with_capacity(32);
                    let mut sent = 0;
                    while sent < PER_FLOW {
                        for _ in 0..8 {
                            for f in flows {
                                batch.push(tcp_frame(&mut pool, f, sent));
                            }
                            sent += 1;
                        }
                        // Back-pressure so that nothing is dropped: wait for room.
                        while q.tx.iter_mut().any(|p| p.free_slots() < 16) {
                            std::thread::yield_now();
                        }
                        q.tx_burst(&mut batch, &mut pool);
                    }
                    q.counters()
                })
            })
            .collect();
        let total = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let receivers: Vec<_> = b
            .split()
            .into_iter()
            .map(|mut q| {
                let total = Arc::clone(&total);
                std::thread::spawn(move || {
                    let mut pool = FramePool::new(64);
                    let mut out = Vec::with_capacity(32);
                    let mut next: std::collections::HashMap<([u8; 4], [u8; 4], u16), u64> =
                        Default::default();
                    let deadline = std::time::Instant::now() + Duration::from_secs(60);
                    while total.load(Ordering::Relaxed) < 2 * Q as u64 * PER_FLOW
                        && std::time::Instant::now() < deadline
                    {
                        if q.rx_burst(&mut pool, &mut out, 32) == 0 {
                            q.wait_rx(Duration::from_millis(1));
                        }
                        total.fetch_add(out.len() as u64, Ordering::Relaxed);
                        for f in out.drain(..) {
                            let s = f.as_slice();
                            let key = (
                                s[26..30].try_into().unwrap(),
                                s[30..34].try_into().unwrap(),
                                u16::from_be_bytes([s[34], s[35]]),
                            );
                            let e = next.entry(key).or_insert(0);
                            assert_eq!(seq_of(&f), *e, "flow {key:?} out of order");
                            *e += 1;
                            pool.free(f);
                        }
                    }
                    next
                })
            })
            .collect();
        for s in senders {
            assert_eq!(s.join().unwrap().ring_full_drops, 0);
        }
        let mut flows = 0;
        for r in receivers {
            let seen = r.join().unwrap();
            for v in seen.values() {
                assert_eq!(*v, PER_FLOW);
            }
            flows += seen.len();
        }
        assert_eq!(flows, 2 * Q, "every flow on exactly one queue");
    }

    #[test]
    fn ipv4_frames_without_ports_are_steered_by_address_pair() {
        let (a, b) = MemoryNic::pair(4, 16);
        let (mut a, mut b) = (a.split(), b.split());
        let mut pool = FramePool::new(64);
        let rss = Rss::symmetric(4);
        let (x, y) = (Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::new(10, 3, 2, 1));
        let want = rss.reta().queue_for(rss.hasher().hash_ipv4(x, y));
        let mut f = tcp_frame(&mut pool, (x.octets(), y.octets(), 7, 7), 0);
        f.as_mut_slice()[14 + 9] = 1; // ICMP
        a[0].tx_burst(&mut vec![f], &mut pool);
        let mut out = Vec::new();
        for (i, q) in b.iter_mut().enumerate() {
            assert_eq!(q.rx_burst(&mut pool, &mut out, 4), usize::from(i == want));
        }
    }
}

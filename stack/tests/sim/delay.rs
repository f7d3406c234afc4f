//! A delay line over any [`NicQueue`], in virtual time.
//!
//! Frames handed to `tx_burst` are copied out (their buffers go straight
//! back to the pool) and released to the inner queue once the shared
//! virtual clock passes `now + base + jitter`; with jitter, frames overtake
//! each other. Every `rx_burst` also releases what is due and pokes the
//! inner queue's TX path, so a wrapper below (a `FaultyQueue` holding a
//! frame back for reordering) lets go of it within a couple of ticks.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mtcp_stack::nic::{DeviceInfo, Frame, FramePool, NicQueue, QueueCounters};
use mtcp_stack::rand::Rng;
use mtcp_stack::time::Duration;

use crate::edge::EdgeCheck;

/// State shared between a [`DelayQueue`] and the simulator.
#[derive(Debug, Default)]
pub struct DelayShared {
    /// Virtual time now, microseconds (written by the simulator).
    pub now: AtomicU64,
    /// When the earliest held frame is due, microseconds (`u64::MAX`: none).
    pub next_due: AtomicU64,
    /// Frames held right now.
    pub held: AtomicU64,
    /// Print TCP segments to or from this port (0: off), for debugging.
    pub sniff_port: AtomicU64,
    /// A label for the sniffer's lines.
    pub label: AtomicU64,
    /// The right-edge invariant, checked on every transmitted frame.
    /// (One checker shared by every delay line of a simulation.)
    pub edges: Arc<Mutex<EdgeCheck>>,
}

/// One line about a TCP frame, when it is one to or from `port`.
fn sniff(label: u64, dir: &str, now: u64, f: &[u8], port: u64) {
    if f.len() < 54 || f[12..14] != [0x08, 0x00] || f[23] != 6 {
        return;
    }
    let ihl = usize::from(f[14] & 0xf) * 4;
    let t = &f[14 + ihl..];
    if t.len() < 20 {
        return;
    }
    let be16 = |b: &[u8]| u64::from(u16::from_be_bytes([b[0], b[1]]));
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let (sp, dp) = (be16(&t[0..]), be16(&t[2..]));
    if sp != port && dp != port {
        return;
    }
    let doff = usize::from(t[12] >> 4) * 4;
    let flags = t[13];
    let names = ["F", "S", "R", "P", "A"];
    let fl: String = (0..5)
        .filter(|i| flags & (1 << i) != 0)
        .map(|i| names[i])
        .collect();
    let ip_len = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let payload = ip_len.saturating_sub(ihl + doff);
    let mut ts = String::new();
    let mut o = 20;
    while o < doff.min(t.len()) {
        match t[o] {
            0 => break,
            1 => o += 1,
            8 if o + 10 <= t.len() => {
                ts = format!(" ts {} ecr {}", be32(&t[o + 2..]), be32(&t[o + 6..]));
                o += 10;
            }
            _ => {
                let l = usize::from(*t.get(o + 1).unwrap_or(&2)).max(2);
                o += l;
            }
        }
    }
    let start = (14 + ihl + doff).min(f.len());
    let end = (14 + ip_len).min(f.len()).max(start);
    let hash = f[start..end]
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    println!(
        "{}.{:06} q{label} {dir} {sp}>{dp} [{fl}] seq {} ack {} win {} len {payload}{ts} hash {hash:016x}",
        now / 1_000_000,
        now % 1_000_000,
        be32(&t[4..]),
        be32(&t[8..]),
        be16(&t[14..]),
    );
}

/// The delay line.
#[derive(Debug)]
pub struct DelayQueue<Q> {
    inner: Q,
    shared: Arc<DelayShared>,
    rng: Rng,
    base_us: u64,
    jitter_us: u64,
    seq: u64,
    held: BinaryHeap<Reverse<(u64, u64, usize)>>,
    slots: Vec<Vec<u8>>,
    free_slots: Vec<usize>,
    out: Vec<Frame>,
}

impl<Q: NicQueue> DelayQueue<Q> {
    /// Delays every transmitted frame by `base` plus a uniform `0..=jitter`.
    pub fn new(
        inner: Q,
        shared: Arc<DelayShared>,
        base: Duration,
        jitter: Duration,
        seed: u64,
    ) -> DelayQueue<Q> {
        shared.next_due.store(u64::MAX, Ordering::Relaxed);
        DelayQueue {
            inner,
            shared,
            rng: Rng::new(seed),
            base_us: base.as_micros() as u64,
            jitter_us: jitter.as_micros() as u64,
            seq: 0,
            held: BinaryHeap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            out: Vec::new(),
        }
    }

    fn now(&self) -> u64 {
        self.shared.now.load(Ordering::Relaxed)
    }

    fn hold(&mut self, frame: Frame, pool: &mut FramePool) {
        let due = self.now() + self.base_us + self.rng.range(0, self.jitter_us + 1);
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Vec::new());
                self.slots.len() - 1
            }
        };
        self.slots[slot].clear();
        self.slots[slot].extend_from_slice(frame.as_slice());
        pool.free(frame);
        self.seq += 1;
        self.held.push(Reverse((due, self.seq, slot)));
    }

    /// Moves due frames to `out` (as far as the pool allows), then pushes
    /// `out` to the inner queue.
    fn release(&mut self, pool: &mut FramePool) {
        let now = self.now();
        while let Some(Reverse((due, _, slot))) = self.held.peek().copied() {
            if due > now {
                break;
            }
            let Some(mut f) = pool.alloc() else { break };
            self.held.pop();
            let data = &self.slots[slot];
            f.buffer_mut()[..data.len()].copy_from_slice(data);
            f.set_len(data.len());
            self.free_slots.push(slot);
            self.out.push(f);
        }
        // An empty burst still lets a wrapper below flush what it holds.
        self.inner.tx_burst(&mut self.out, pool);
        let next = self.held.peek().map_or(u64::MAX, |r| r.0 .0);
        self.shared.next_due.store(next, Ordering::Relaxed);
        self.shared
            .held
            .store((self.held.len() + self.out.len()) as u64, Ordering::Relaxed);
    }
}

impl<Q: NicQueue> NicQueue for DelayQueue<Q> {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }

    fn rx_burst(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize) -> usize {
        self.release(pool);
        let start = out.len();
        let n = self.inner.rx_burst(pool, out, max);
        let port = self.shared.sniff_port.load(Ordering::Relaxed);
        if port != 0 {
            let label = self.shared.label.load(Ordering::Relaxed);
            for f in &out[start..] {
                sniff(label, "rx", self.now(), f.as_slice(), port);
            }
        }
        n
    }

    fn tx_burst(&mut self, frames: &mut Vec<Frame>, pool: &mut FramePool) -> usize {
        let n = frames.len();
        {
            let now = self.now();
            let mut edges = self.shared.edges.lock().unwrap();
            for f in frames.iter() {
                edges.on_tx(now, f.as_slice());
            }
        }
        let port = self.shared.sniff_port.load(Ordering::Relaxed);
        if port != 0 {
            let label = self.shared.label.load(Ordering::Relaxed);
            for f in frames.iter() {
                sniff(label, "tx", self.now(), f.as_slice(), port);
            }
        }
        if self.base_us == 0 && self.jitter_us == 0 {
            self.out.append(frames);
        } else {
            for f in frames.drain(..) {
                self.hold(f, pool);
            }
        }
        self.release(pool);
        n
    }

    fn rx_pending(&self) -> bool {
        !self.out.is_empty() || self.inner.rx_pending()
    }

    fn wait_rx(&self, timeout: Duration) {
        self.inner.wait_rx(timeout)
    }

    fn counters(&self) -> QueueCounters {
        self.inner.counters()
    }
}

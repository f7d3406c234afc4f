//! Device-level fault injection: seeded loss, duplication, reordering and
//! corruption on a queue's RX and TX paths.
//!
//! [`FaultConfig`] parses the `MTCP_FAULTS` grammar
//! (`drop=0.02,dup=0.01,reorder=0.05,corrupt=0.005,seed=7`, any subset, any
//! order). [`FaultyQueue`] wraps any [`NicQueue`] (boxed or not) and applies
//! the faults to every frame in both directions, with a random stream seeded
//! from the seed, the queue index and the direction, so a run is replayable.
//!
//! Per frame, in this order: drop with probability `drop`; otherwise flip one
//! random bit of one random byte with probability `corrupt`; send a copy as
//! well with probability `dup` (when the pool has a buffer); hold the frame
//! back with probability `reorder` and release it right after the next frame
//! (at most one frame is held per direction, and a held frame waits at most
//! until the end of the next burst call).

use core::fmt;
use core::str::FromStr;

use super::{DeviceInfo, Frame, FramePool, NicQueue, QueueCounters};
use crate::rand::Rng;
use crate::time::Duration;

/// Fault probabilities and the seed of the random stream.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultConfig {
    /// Probability that a frame is dropped.
    pub drop: f64,
    /// Probability that a frame is duplicated.
    pub dup: f64,
    /// Probability that a frame is held back behind the next one.
    pub reorder: f64,
    /// Probability that one bit of a frame is flipped.
    pub corrupt: f64,
    /// Seed of the random streams.
    pub seed: u64,
}

impl FaultConfig {
    /// True when no fault can happen.
    pub fn is_noop(&self) -> bool {
        self.drop == 0.0 && self.dup == 0.0 && self.reorder == 0.0 && self.corrupt == 0.0
    }
}

impl fmt::Display for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "drop={},dup={},reorder={},corrupt={},seed={}",
            self.drop, self.dup, self.reorder, self.corrupt, self.seed
        )
    }
}

/// A key of the `MTCP_FAULTS` grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKey {
    /// `drop=P`
    Drop,
    /// `dup=P`
    Dup,
    /// `reorder=P`
    Reorder,
    /// `corrupt=P`
    Corrupt,
    /// `seed=N`
    Seed,
}

impl FaultKey {
    fn parse(s: &str) -> Option<FaultKey> {
        Some(match s {
            "drop" => FaultKey::Drop,
            "dup" => FaultKey::Dup,
            "reorder" => FaultKey::Reorder,
            "corrupt" => FaultKey::Corrupt,
            "seed" => FaultKey::Seed,
            _ => return None,
        })
    }

    /// The key as written.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKey::Drop => "drop",
            FaultKey::Dup => "dup",
            FaultKey::Reorder => "reorder",
            FaultKey::Corrupt => "corrupt",
            FaultKey::Seed => "seed",
        }
    }
}

impl fmt::Display for FaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A short copy of an unrecognised key, kept inline so the error is `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyName {
    bytes: [u8; 16],
    len: u8,
}

impl KeyName {
    fn new(s: &str) -> KeyName {
        let mut end = s.len().min(16);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; 16];
        bytes[..end].copy_from_slice(&s.as_bytes()[..end]);
        KeyName {
            bytes,
            len: end as u8,
        }
    }

    /// The key (its first 16 bytes).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Why an `MTCP_FAULTS` value did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultConfigError {
    /// A key that is not `drop`, `dup`, `reorder`, `corrupt` or `seed`.
    UnknownKey(KeyName),
    /// An item without `=`.
    MissingValue(KeyName),
    /// A value out of range or not a number.
    BadValue(FaultKey),
    /// A key given twice.
    Duplicate(FaultKey),
}

impl FaultConfigError {
    /// What was expected, in words, with an example.
    pub fn expected(&self) -> &'static str {
        match self {
            FaultConfigError::UnknownKey(_) | FaultConfigError::MissingValue(_) => {
                "comma-separated key=value items with keys drop, dup, reorder, corrupt, seed, \
                 e.g. drop=0.02,dup=0.01,reorder=0.05,corrupt=0.005,seed=7"
            }
            FaultConfigError::BadValue(FaultKey::Drop) => {
                "drop=P with P a probability in [0, 1], e.g. drop=0.02"
            }
            FaultConfigError::BadValue(FaultKey::Dup) => {
                "dup=P with P a probability in [0, 1], e.g. dup=0.01"
            }
            FaultConfigError::BadValue(FaultKey::Reorder) => {
                "reorder=P with P a probability in [0, 1], e.g. reorder=0.05"
            }
            FaultConfigError::BadValue(FaultKey::Corrupt) => {
                "corrupt=P with P a probability in [0, 1], e.g. corrupt=0.005"
            }
            FaultConfigError::BadValue(FaultKey::Seed) => {
                "seed=N with N an unsigned 64-bit integer, e.g. seed=7"
            }
            FaultConfigError::Duplicate(_) => "each key at most once, e.g. drop=0.02,seed=7",
        }
    }
}

impl fmt::Display for FaultConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultConfigError::UnknownKey(k) => write!(f, "unknown key {k:?}")?,
            FaultConfigError::MissingValue(k) => write!(f, "no value for {k:?}")?,
            FaultConfigError::BadValue(k) => write!(f, "bad value for {k}")?,
            FaultConfigError::Duplicate(k) => write!(f, "{k} given twice")?,
        }
        write!(f, ": expected {}", self.expected())
    }
}

impl std::error::Error for FaultConfigError {}

impl FromStr for FaultConfig {
    type Err = FaultConfigError;

    fn from_str(s: &str) -> Result<FaultConfig, FaultConfigError> {
        let mut cfg = FaultConfig::default();
        let mut seen = [false; 5];
        for item in s.split(',').map(str::trim) {
            let Some((k, v)) = item.split_once('=') else {
                return Err(FaultConfigError::MissingValue(KeyName::new(item)));
            };
            let (k, v) = (k.trim(), v.trim());
            let key = FaultKey::parse(k).ok_or(FaultConfigError::UnknownKey(KeyName::new(k)))?;
            if core::mem::replace(&mut seen[key as usize], true) {
                return Err(FaultConfigError::Duplicate(key));
            }
            let prob = || {
                v.parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or(FaultConfigError::BadValue(key))
            };
            match key {
                FaultKey::Drop => cfg.drop = prob()?,
                FaultKey::Dup => cfg.dup = prob()?,
                FaultKey::Reorder => cfg.reorder = prob()?,
                FaultKey::Corrupt => cfg.corrupt = prob()?,
                FaultKey::Seed => {
                    cfg.seed = v.parse().map_err(|_| FaultConfigError::BadValue(key))?;
                }
            }
        }
        Ok(cfg)
    }
}

/// What a [`FaultyQueue`] did in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounters {
    /// Frames that went through the fault stage.
    pub frames: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// Frames duplicated (one extra copy each).
    pub duplicated: u64,
    /// Frames held back behind a later one.
    pub reordered: u64,
    /// Frames with one bit flipped.
    pub corrupted: u64,
}

/// The fault state of one direction.
#[derive(Debug)]
struct Faults {
    rng: Rng,
    held: Option<Frame>,
    /// Burst calls that ended with `held` still held.
    held_calls: u8,
    counters: FaultCounters,
}

impl Faults {
    fn new(seed: u64, queue: usize, direction: u64) -> Faults {
        let stream = (queue as u64)
            .wrapping_mul(2)
            .wrapping_add(direction)
            .wrapping_add(1)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Faults {
            rng: Rng::new(seed ^ stream),
            held: None,
            held_calls: 0,
            counters: FaultCounters::default(),
        }
    }

    /// Passes `frame` through the faults, appending what comes out to `out`.
    fn apply(
        &mut self,
        cfg: &FaultConfig,
        mut frame: Frame,
        pool: &mut FramePool,
        out: &mut Vec<Frame>,
    ) {
        self.counters.frames += 1;
        if self.rng.chance(cfg.drop) {
            self.counters.dropped += 1;
            pool.free(frame);
            return;
        }
        if self.rng.chance(cfg.corrupt) && !frame.is_empty() {
            let i = self.rng.range(0, frame.len() as u64) as usize;
            let bit = self.rng.range(0, 8) as u32;
            frame.as_mut_slice()[i] ^= 1 << bit;
            self.counters.corrupted += 1;
        }
        if self.rng.chance(cfg.dup) {
            if let Some(mut copy) = pool.alloc() {
                let n = frame.len();
                copy.buffer_mut()[..n].copy_from_slice(frame.as_slice());
                copy.set_len(n);
                self.counters.duplicated += 1;
                out.push(copy);
            }
        }
        if self.held.is_none() && self.rng.chance(cfg.reorder) {
            self.counters.reordered += 1;
            self.held = Some(frame);
            self.held_calls = 0;
            return;
        }
        out.push(frame);
        if let Some(h) = self.held.take() {
            out.push(h);
        }
    }

    /// Ends a burst call: a frame held through a whole call without a
    /// successor is released.
    fn end_call(&mut self, out: &mut Vec<Frame>) {
        if self.held.is_some() {
            self.held_calls += 1;
            if self.held_calls >= 2 {
                out.extend(self.held.take());
            }
        }
    }
}

/// A [`NicQueue`] wrapper that injects faults into RX and TX.
///
/// Faulted frames wait in small internal queues (bounded by about two
/// bursts) when the caller's `max` or the inner TX ring has no room; they go
/// out on the next `rx_burst` or `tx_burst`.
#[derive(Debug)]
pub struct FaultyQueue<Q> {
    inner: Q,
    cfg: FaultConfig,
    rx: Faults,
    tx: Faults,
    rx_scratch: Vec<Frame>,
    rx_ready: Vec<Frame>,
    tx_ready: Vec<Frame>,
}

impl<Q: NicQueue> FaultyQueue<Q> {
    /// Wraps `inner`; the random streams depend on `cfg.seed` and the queue
    /// index.
    pub fn new(inner: Q, cfg: FaultConfig) -> FaultyQueue<Q> {
        let queue = inner.info().queue;
        FaultyQueue {
            inner,
            cfg,
            rx: Faults::new(cfg.seed, queue, 0),
            tx: Faults::new(cfg.seed, queue, 1),
            rx_scratch: Vec::with_capacity(64),
            rx_ready: Vec::with_capacity(128),
            tx_ready: Vec::with_capacity(128),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.cfg
    }

    /// What the faults did to received frames.
    pub fn rx_faults(&self) -> FaultCounters {
        self.rx.counters
    }

    /// What the faults did to sent frames.
    pub fn tx_faults(&self) -> FaultCounters {
        self.tx.counters
    }

    /// The wrapped queue.
    pub fn inner(&self) -> &Q {
        &self.inner
    }

    /// The wrapped queue, writable.
    pub fn inner_mut(&mut self) -> &mut Q {
        &mut self.inner
    }

    fn flush_tx(&mut self, pool: &mut FramePool) {
        if !self.tx_ready.is_empty() {
            self.inner.tx_burst(&mut self.tx_ready, pool);
        }
    }
}

impl<Q: NicQueue> NicQueue for FaultyQueue<Q> {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }

    fn rx_burst(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize) -> usize {
        self.flush_tx(pool);
        let room = max.saturating_sub(self.rx_ready.len());
        if room > 0 {
            self.inner.rx_burst(pool, &mut self.rx_scratch, room);
            for f in self.rx_scratch.drain(..) {
                self.rx.apply(&self.cfg, f, pool, &mut self.rx_ready);
            }
        }
        self.rx.end_call(&mut self.rx_ready);
        let n = max.min(self.rx_ready.len());
        out.extend(self.rx_ready.drain(..n));
        n
    }

    fn tx_burst(&mut self, frames: &mut Vec<Frame>, pool: &mut FramePool) -> usize {
        self.flush_tx(pool);
        if !self.tx_ready.is_empty() {
            return 0;
        }
        let n = frames.len();
        for f in frames.drain(..) {
            self.tx.apply(&self.cfg, f, pool, &mut self.tx_ready);
        }
        self.tx.end_call(&mut self.tx_ready);
        self.flush_tx(pool);
        n
    }

    fn rx_pending(&self) -> bool {
        !self.rx_ready.is_empty() || self.rx.held.is_some() || self.inner.rx_pending()
    }

    fn rx_backlog(&mut self) -> Option<usize> {
        let here = self.rx_ready.len() + usize::from(self.rx.held.is_some());
        self.inner.rx_backlog().map(|n| n + here)
    }

    fn wait_rx(&self, timeout: Duration) {
        // Frames waiting here (received, or held back on either path) go
        // out only on the next burst call: do not park on them.
        if !self.rx_ready.is_empty()
            || self.rx.held.is_some()
            || self.tx.held.is_some()
            || !self.tx_ready.is_empty()
        {
            return;
        }
        self.inner.wait_rx(timeout)
    }

    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.inner.raw_fd()
    }

    fn counters(&self) -> QueueCounters {
        self.inner.counters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nic::memory::MemoryNic;

    #[test]
    fn parses_full_grammar_in_any_order() {
        let c: FaultConfig = "drop=0.02,dup=0.01,reorder=0.05,corrupt=0.005,seed=7"
            .parse()
            .unwrap();
        assert_eq!(
            c,
            FaultConfig {
                drop: 0.02,
                dup: 0.01,
                reorder: 0.05,
                corrupt: 0.005,
                seed: 7
            }
        );
        let d: FaultConfig = "seed=7, corrupt=0.005,reorder=0.05 ,dup=0.01,drop=0.02"
            .parse()
            .unwrap();
        assert_eq!(c, d);
        assert_eq!(c.to_string().parse::<FaultConfig>().unwrap(), c);
    }

    #[test]
    fn parses_subsets_and_bounds() {
        let c: FaultConfig = "drop=1".parse().unwrap();
        assert_eq!(c.drop, 1.0);
        assert_eq!(c.seed, 0);
        assert!(!c.is_noop());
        let c: FaultConfig = "reorder=0,seed=18446744073709551615".parse().unwrap();
        assert!(c.is_noop());
        assert_eq!(c.seed, u64::MAX);
    }

    #[test]
    fn rejects_bad_input_naming_the_key() {
        let err = |s: &str| s.parse::<FaultConfig>().unwrap_err();
        let e = err("drop=0.1,loss=0.2");
        assert!(matches!(e, FaultConfigError::UnknownKey(k) if k.as_str() == "loss"));
        assert!(e.to_string().contains("\"loss\""), "{e}");
        assert!(e.to_string().contains("drop=0.02,dup=0.01"), "{e}");
        assert_eq!(err("drop=1.5"), FaultConfigError::BadValue(FaultKey::Drop));
        assert!(err("drop=1.5").to_string().contains("drop=P"));
        assert_eq!(err("dup=-0.1"), FaultConfigError::BadValue(FaultKey::Dup));
        assert_eq!(
            err("reorder=NaN"),
            FaultConfigError::BadValue(FaultKey::Reorder)
        );
        assert_eq!(
            err("corrupt=x"),
            FaultConfigError::BadValue(FaultKey::Corrupt)
        );
        assert_eq!(
            err("corrupt="),
            FaultConfigError::BadValue(FaultKey::Corrupt)
        );
        assert_eq!(err("seed=1.5"), FaultConfigError::BadValue(FaultKey::Seed));
        assert_eq!(err("seed=-1"), FaultConfigError::BadValue(FaultKey::Seed));
        assert!(matches!(err("drop"), FaultConfigError::MissingValue(_)));
        assert!(matches!(err(""), FaultConfigError::MissingValue(_)));
        assert!(matches!(
            err("drop=0.1,"),
            FaultConfigError::MissingValue(_)
        ));
        assert_eq!(
            err("drop=0.1,drop=0.2"),
            FaultConfigError::Duplicate(FaultKey::Drop)
        );
        // A long unknown key is cut, not a panic (and not split inside a char).
        let e = err("ééééééééééé=1");
        assert!(e.to_string().len() < 300);
    }

    const N: u64 = 100_000;

    fn seq_frame(pool: &mut FramePool, seq: u64) -> Frame {
        let mut f = pool.alloc().unwrap();
        let b = f.buffer_mut();
        b[..14].fill(0xee);
        b[12..14].copy_from_slice(&[0x08, 0x06]); // non-IPv4: one queue anyway
        b[14..22].copy_from_slice(&seq.to_be_bytes());
        b[22..30].copy_from_slice(&check(seq).to_be_bytes());
        b[30..64].fill(seq as u8);
        f.set_len(64);
        f
    }

    fn check(seq: u64) -> u64 {
        seq.wrapping_mul(0x2545_f491_4f6c_dd1d).rotate_left(17) ^ 0xabcdef
    }

    /// The sequence number, or `None` when the frame was corrupted.
    fn decode(f: &Frame) -> Option<u64> {
        let s = f.as_slice();
        let seq = u64::from_be_bytes(s[14..22].try_into().unwrap());
        let ok = s[..12].iter().all(|&b| b == 0xee)
            && s[12..14] == [0x08, 0x06]
            && u64::from_be_bytes(s[22..30].try_into().unwrap()) == check(seq)
            && s[30..64].iter().all(|&b| b == seq as u8);
        ok.then_some(seq)
    }

    fn within(count: u64, p: f64, base: u64) -> bool {
        let expect = p * base as f64;
        let sigma = (base as f64 * p * (1.0 - p)).sqrt();
        (count as f64 - expect).abs() <= 5.0 * sigma + 2.0
    }

    #[test]
    fn tx_fault_rates_land_within_tolerance() {
        let cfg: FaultConfig = "drop=0.02,dup=0.01,reorder=0.05,corrupt=0.005,seed=7"
            .parse()
            .unwrap();
        let (a, b) = MemoryNic::pair(1, 1024);
        let mut a = FaultyQueue::new(a.split().remove(0), cfg);
        let mut b = b.split().remove(0);
        let (mut pa, mut pb) = (FramePool::new(256), FramePool::new(256));
        let mut got: Vec<Option<u64>> = Vec::with_capacity(N as usize * 2);
        let mut out = Vec::new();
        let mut batch = Vec::new();
        let mut seq = 0;
        while seq < N {
            for _ in 0..32.min(N - seq) {
                batch.push(seq_frame(&mut pa, seq));
                seq += 1;
            }
            let n = batch.len();
            assert_eq!(a.tx_burst(&mut batch, &mut pa), n);
            while b.rx_burst(&mut pb, &mut out, 64) > 0 {
                for f in out.drain(..) {
                    got.push(decode(&f));
                    pb.free(f);
                }
            }
        }
        // Release anything still held.
        a.tx_burst(&mut batch, &mut pa);
        a.tx_burst(&mut batch, &mut pa);
        while b.rx_burst(&mut pb, &mut out, 64) > 0 {
            for f in out.drain(..) {
                got.push(decode(&f));
                pb.free(f);
            }
        }
        let c = a.tx_faults();
        assert_eq!(c.frames, N);
        assert!(within(c.dropped, cfg.drop, N), "{c:?}");
        let kept = N - c.dropped;
        assert!(within(c.corrupted, cfg.corrupt, kept), "{c:?}");
        assert!(within(c.duplicated, cfg.dup, kept), "{c:?}");
        // A frame is held only when none is held already.
        assert!(
            within(c.reordered, cfg.reorder * (1.0 - cfg.reorder), kept),
            "{c:?}"
        );
        // What arrived agrees with the counters.
        assert_eq!(got.len() as u64, kept + c.duplicated);
        assert_eq!(b.counters().rx_frames, kept + c.duplicated);
        let bad = got.iter().filter(|g| g.is_none()).count() as u64;
        // A corrupted frame that is duplicated arrives twice corrupted.
        assert!(
            bad >= c.corrupted && bad <= c.corrupted * 2,
            "{bad} vs {c:?}"
        );
        let good: Vec<u64> = got.iter().flatten().copied().collect();
        let inversions = good.windows(2).filter(|w| w[1] < w[0]).count() as u64;
        assert!(
            inversions > c.reordered * 9 / 10 && inversions <= c.reordered,
            "{inversions} inversions, {c:?}"
        );
        let mut sorted = good.clone();
        sorted.sort_unstable();
        let dups = sorted.windows(2).filter(|w| w[0] == w[1]).count() as u64;
        assert!(
            dups <= c.duplicated && dups >= c.duplicated * 9 / 10,
            "{dups} {c:?}"
        );
        assert!(pa.available() == 256 && pb.available() == 256);
    }

    #[test]
    fn rx_faults_apply_and_respect_max() {
        let cfg: FaultConfig = "drop=0.1,dup=0.2,seed=3".parse().unwrap();
        let (a, b) = MemoryNic::pair(1, 1024);
        let mut a = a.split().remove(0);
        let mut b = FaultyQueue::new(b.split().remove(0), cfg);
        let mut pool = FramePool::new(512);
        let mut out = Vec::new();
        let mut received = 0u64;
        for round in 0..1000u64 {
            let mut batch: Vec<Frame> = (0..20)
                .map(|i| seq_frame(&mut pool, round * 20 + i))
                .collect();
            a.tx_burst(&mut batch, &mut pool);
            for _ in 0..4 {
                let n = b.rx_burst(&mut pool, &mut out, 8);
                assert!(n <= 8);
                assert_eq!(out.len(), n);
                received += n as u64;
                for f in out.drain(..) {
                    assert!(decode(&f).is_some());
                    pool.free(f);
                }
            }
        }
        while b.rx_pending() {
            received += b.rx_burst(&mut pool, &mut out, 8) as u64;
            for f in out.drain(..) {
                pool.free(f);
            }
        }
        let c = b.rx_faults();
        assert_eq!(c.frames, 20_000);
        assert!(within(c.dropped, 0.1, 20_000), "{c:?}");
        assert!(within(c.duplicated, 0.2, 20_000 - c.dropped), "{c:?}");
        assert_eq!(received, c.frames - c.dropped + c.duplicated);
        assert_eq!(b.tx_faults(), FaultCounters::default());
    }

    #[test]
    fn same_seed_same_faults_and_queues_differ() {
        let run = |queues: usize, q: usize| {
            let cfg: FaultConfig = "drop=0.3,corrupt=0.3,seed=99".parse().unwrap();
            let (a, b) = MemoryNic::pair(queues, 64);
            let mut a = FaultyQueue::new(a.split().remove(q), cfg);
            drop(b);
            let mut pool = FramePool::new(64);
            let mut pattern = Vec::new();
            for i in 0..200 {
                let mut batch = vec![seq_frame(&mut pool, i)];
                a.tx_burst(&mut batch, &mut pool);
                pattern.push(a.tx_faults());
            }
            pattern
        };
        assert_eq!(run(2, 1), run(2, 1));
        assert_ne!(run(2, 0), run(2, 1));
    }

    #[test]
    fn wraps_boxed_queues_and_noop_passes_everything() {
        let (a, b) = MemoryNic::pair(1, 64);
        let inner: Box<dyn NicQueue> = a.split_boxed().remove(0);
        let mut a: Box<dyn NicQueue> = Box::new(FaultyQueue::new(inner, FaultConfig::default()));
        let mut b = b.split().remove(0);
        let mut pool = FramePool::new(64);
        let mut batch: Vec<Frame> = (0..32).map(|i| seq_frame(&mut pool, i)).collect();
        assert_eq!(a.tx_burst(&mut batch, &mut pool), 32);
        let mut out = Vec::new();
        assert_eq!(b.rx_burst(&mut pool, &mut out, 64), 32);
        let seqs: Vec<u64> = out.iter().filter_map(decode).collect();
        assert_eq!(seqs, (0..32).collect::<Vec<_>>());
        assert_eq!(a.info().queues, 1);
    }

    #[test]
    fn held_frame_is_released_by_a_later_empty_call() {
        let cfg: FaultConfig = "reorder=1".parse().unwrap();
        let (a, b) = MemoryNic::pair(1, 64);
        let mut a = FaultyQueue::new(a.split().remove(0), cfg);
        let mut b = b.split().remove(0);
        let mut pool = FramePool::new(64);
        let mut out = Vec::new();
        a.tx_burst(&mut vec![seq_frame(&mut pool, 1)], &mut pool);
        assert_eq!(b.rx_burst(&mut pool, &mut out, 8), 0, "held");
        // Parking now would strand the held frame: wait_rx returns at once.
        let t0 = std::time::Instant::now();
        a.wait_rx(Duration::from_secs(5));
        assert!(t0.elapsed() < Duration::from_secs(2));
        a.tx_burst(&mut Vec::new(), &mut pool);
        assert_eq!(b.rx_burst(&mut pool, &mut out, 8), 1, "released");
        // Two frames: the first is held and goes out after the second.
        a.tx_burst(
            &mut vec![seq_frame(&mut pool, 2), seq_frame(&mut pool, 3)],
            &mut pool,
        );
        assert_eq!(b.rx_burst(&mut pool, &mut out, 8), 2);
        let seqs: Vec<u64> = out.iter().filter_map(decode).collect();
        assert_eq!(seqs, vec![1, 3, 2]);
    }
}

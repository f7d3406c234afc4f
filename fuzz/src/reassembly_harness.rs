//! `ipv4_reassembly`: the IPv4 reassembly pool driven directly with
//! fuzzer-chosen fragments and time jumps, checked against a reference
//! model of what was supplied.
//!
//! Invariants checked: a datagram is handed back only when every byte of
//! it was supplied by fragments the pool kept, pairwise disjoint, with the
//! same bytes, the last one without MF; a kept fragment never overlaps a
//! kept one (RFC 5722) and a datagram whose bytes are all there is never
//! left held; the byte cap and the context pool are never exceeded and
//! `bytes_held` is what the kept fragments add up to; `next_expiry` is the
//! oldest datagram's deadline; `expire` frees exactly the datagrams past
//! the timeout (reporting those whose first fragment arrived, with its
//! bytes), and after the last one every context is free.

use arbitrary::{Arbitrary, Unstructured};
use mtcp_stack::iface::{Reassembled, Reassembler, ReassemblyConfig, ReassemblyDrop};
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::ipv4::{Fragment, IpProtocol, Ipv4Address, Ipv4Repr};

use crate::model::{split, Record, LOCAL, OTHER, REMOTE};

/// The pool sizes the fuzzer picks (small, so every cap is reachable).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct PoolSpec {
    contexts: u8,
    /// In units of 8 bytes.
    max_datagram: u16,
    /// In units of 8 bytes.
    max_bytes: u16,
    timeout_secs: u8,
}

impl PoolSpec {
    /// Four contexts of 4 KiB, 8 KiB in all, 30 s.
    pub const DEFAULT: PoolSpec = PoolSpec {
        contexts: 4,
        max_datagram: 512,
        max_bytes: 1024,
        timeout_secs: 30,
    };

    fn config(self) -> ReassemblyConfig {
        ReassemblyConfig {
            contexts: 1 + usize::from(self.contexts % 8),
            max_datagram: 8 + 8 * usize::from(self.max_datagram % 1024),
            max_bytes: 8 + 8 * usize::from(self.max_bytes % 2048),
            timeout: Duration::from_secs(1 + u64::from(self.timeout_secs % 60)),
        }
    }
}

/// One step.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Op {
    /// A fragment: datagram `ident % IDENTS` from source `src % 2`, at
    /// `offset * 8`, `len` bytes, More Fragments, bytes
    /// `pattern(seed, position)`.
    Frag {
        src: u8,
        ident: u8,
        offset: u16,
        len: u16,
        more: bool,
        seed: u8,
    },
    /// The same, with the length rounded to whole 8-byte blocks (the
    /// shape real non-final fragments have).
    Block {
        src: u8,
        ident: u8,
        offset: u16,
        blocks: u8,
        more: bool,
        seed: u8,
    },
    /// Advance time by this many milliseconds, then expire up to `max`
    /// datagrams per call until none is left to expire.
    Advance(u16, u8),
    /// Advance time by this many seconds, then expire.
    AdvanceSecs(u8, u8),
}

/// Distinct identifications the fuzzer names per source.
const IDENTS: u8 = 6;
/// The most ops one structured record runs.
const MAX_OPS: usize = 128;
/// The largest fragment payload.
const MAX_FRAG: usize = 1500;

/// The byte a fragment carries at datagram position `pos`: fragments with
/// the same seed agree where they overlap, others (mostly) do not.
fn pattern(seed: u8, pos: usize) -> u8 {
    (pos as u8).wrapping_mul(31).wrapping_add(seed) ^ (pos >> 8) as u8
}

/// A fragment the pool kept.
#[derive(Debug, Clone)]
struct Kept {
    start: usize,
    bytes: Vec<u8>,
    more: bool,
}

impl Kept {
    fn end(&self) -> usize {
        self.start + self.bytes.len()
    }
}

/// The model of one datagram being reassembled.
#[derive(Debug, Clone)]
struct Datagram {
    src: u8,
    ident: u16,
    started: Instant,
    kept: Vec<Kept>,
}

impl Datagram {
    fn held(&self) -> usize {
        self.kept.iter().map(|k| k.bytes.len()).sum()
    }

    /// The payload length, when every byte from 0 to the final fragment's
    /// end is there.
    fn complete(&self) -> Option<usize> {
        let last = self.kept.iter().find(|k| !k.more)?;
        let total = last.end();
        let mut covered = vec![false; total];
        for k in &self.kept {
            for c in &mut covered[k.start..k.end()] {
                assert!(!*c, "kept fragments overlap: {:?}", self.kept);
                *c = true;
            }
        }
        covered.iter().all(|&c| c).then_some(total)
    }
}

/// The pool, the clock and the model.
struct Harness {
    pool: Reassembler,
    config: ReassemblyConfig,
    now: Instant,
    model: Vec<Datagram>,
    payload: Vec<u8>,
}

fn addr(src: u8) -> Ipv4Address {
    if src == 0 {
        REMOTE
    } else {
        OTHER
    }
}

impl Harness {
    fn new(spec: PoolSpec) -> Harness {
        let config = spec.config();
        Harness {
            pool: Reassembler::new(config),
            config,
            now: Instant::from_secs(1),
            model: Vec::new(),
            payload: vec![0; MAX_FRAG],
        }
    }

    fn find(&self, src: u8, ident: u16) -> Option<usize> {
        self.model
            .iter()
            .position(|d| d.src == src && d.ident == ident)
    }

    fn check_pool(&self) {
        assert!(self.pool.in_use() <= self.config.contexts);
        assert!(self.pool.bytes_held() <= self.config.max_bytes);
        assert_eq!(self.pool.in_use(), self.model.len(), "{:?}", self.model);
        let held: usize = self.model.iter().map(Datagram::held).sum();
        assert_eq!(self.pool.bytes_held(), held, "{:?}", self.model);
        let next = self
            .model
            .iter()
            .map(|d| d.started + self.config.timeout)
            .min();
        assert_eq!(self.pool.next_expiry(), next);
    }

    #[allow(clippy::too_many_arguments)]
    fn fragment(&mut self, src: u8, ident: u8, offset: u16, len: usize, more: bool, seed: u8) {
        let src = src % 2;
        let ident = u16::from(ident % IDENTS) * 0x0101;
        // Offsets up to 8 * 8191 (the field's whole range).
        let start = usize::from(offset % 8192) * 8;
        let len = len.min(MAX_FRAG);
        for (i, b) in self.payload[..len].iter_mut().enumerate() {
            *b = pattern(seed, start + i);
        }
        let ip = Ipv4Repr {
            src_addr: addr(src),
            dst_addr: LOCAL,
            protocol: IpProtocol::Udp,
            payload_len: len,
            ttl: 64,
            ident,
            dont_frag: false,
            dscp_ecn: 0,
        };
        let frag = Fragment {
            offset: start as u16,
            more,
        };
        let before = self.pool.in_use();
        let found = self.find(src, ident);
        let new = Kept {
            start,
            bytes: self.payload[..len].to_vec(),
            more,
        };
        // What the model says about the new fragment.
        let (overlaps, duplicate) = match found {
            Some(i) => {
                let d = &self.model[i];
                let o = d
                    .kept
                    .iter()
                    .any(|k| new.start < k.end() && k.start < new.end());
                // An empty fragment overlaps nothing (it is kept as a
                // range of its own).
                let dup = !new.bytes.is_empty()
                    && d.kept
                        .iter()
                        .any(|k| k.start == new.start && k.bytes == new.bytes);
                (o, dup)
            }
            None => (false, false),
        };
        let result = self.pool.push(self.now, &ip, frag, &new.bytes);
        match result {
            Reassembled::Complete(repr, data) => {
                let data = data.to_vec();
                let i = found.unwrap_or_else(|| {
                    self.model.push(Datagram {
                        src,
                        ident,
                        started: self.now,
                        kept: Vec::new(),
                    });
                    self.model.len() - 1
                });
                assert!(!overlaps, "completed with an overlapping fragment");
                let mut d = self.model.swap_remove(i);
                d.kept.push(new);
                let total = d
                    .complete()
                    .expect("complete only when every byte is there");
                assert_eq!(data.len(), total);
                assert_eq!(repr.payload_len, total);
                assert_eq!(repr.ident, ident);
                assert_eq!(repr.src_addr, addr(src));
                assert_eq!(repr.protocol, IpProtocol::Udp);
                for k in &d.kept {
                    assert_eq!(&data[k.start..k.end()], &k.bytes[..], "bytes changed");
                }
                assert_eq!(self.pool.last_complete(), &data[..]);
            }
            Reassembled::Held => {
                if duplicate {
                    // An identical duplicate is ignored.
                    assert!(overlaps);
                } else {
                    assert!(!overlaps, "an overlapping fragment was kept: {new:?}");
                    assert!(
                        !more || (len > 0 && len.is_multiple_of(8)),
                        "a ragged fragment kept"
                    );
                    match found {
                        Some(i) => self.model[i].kept.push(new),
                        None => self.model.push(Datagram {
                            src,
                            ident,
                            started: self.now,
                            kept: vec![new],
                        }),
                    }
                    let i = self.find(src, ident).expect("just added");
                    let d = &self.model[i];
                    assert!(d.held() <= self.config.max_datagram);
                    assert_eq!(d.complete(), None, "a whole datagram was held back");
                }
            }
            Reassembled::Dropped(why) => {
                match why {
                    ReassemblyDrop::Overlap => assert!(overlaps && !duplicate),
                    ReassemblyDrop::PoolFull => assert!(
                        (found.is_none() && before == self.config.contexts)
                            || self.pool.bytes_held() + len > self.config.max_bytes,
                        "PoolFull with room"
                    ),
                    ReassemblyDrop::TooLarge | ReassemblyDrop::Malformed => {}
                }
                // A drop frees the datagram or leaves it as it was.
                let after = self.pool.in_use();
                if let Some(i) = found {
                    if after < before {
                        self.model.swap_remove(i);
                    } else {
                        assert_eq!(after, before);
                    }
                } else {
                    assert_eq!(after, before, "a dropped fragment took a context");
                }
            }
        }
        self.check_pool();
    }

    fn advance(&mut self, d: Duration, max: u8) {
        self.now += d;
        let max = 1 + usize::from(max % 8);
        let timeout = self.config.timeout;
        let now = self.now;
        let due = self
            .model
            .iter()
            .filter(|d| d.started + timeout <= now)
            .count();
        let mut freed = 0;
        let mut reported = Vec::new();
        loop {
            let n = self.pool.expire(now, max, |e| {
                reported.push((e.first.src_addr, e.first.ident, e.data.to_vec()));
            });
            assert!(n <= max);
            if n == 0 {
                break;
            }
            freed += n;
        }
        assert_eq!(freed, due, "expired {freed}, due {due}");
        for (src_addr, ident, data) in reported {
            let i = self
                .model
                .iter()
                .position(|d| addr(d.src) == src_addr && d.ident == ident)
                .expect("reported an unknown datagram");
            let d = &self.model[i];
            assert!(d.started + timeout <= now, "reported before its timeout");
            let first = d.kept.iter().find(|k| k.start == 0).expect("had a first");
            assert_eq!(first.bytes, data);
        }
        self.model.retain(|d| d.started + timeout > now);
        self.check_pool();
    }

    fn op(&mut self, op: Op) {
        match op {
            Op::Frag {
                src,
                ident,
                offset,
                len,
                more,
                seed,
            } => self.fragment(src, ident, offset, usize::from(len), more, seed),
            Op::Block {
                src,
                ident,
                offset,
                blocks,
                more,
                seed,
            } => self.fragment(src, ident, offset, 8 * usize::from(blocks), more, seed),
            Op::Advance(ms, max) => self.advance(Duration::from_millis(u64::from(ms)), max),
            Op::AdvanceSecs(s, max) => self.advance(Duration::from_secs(u64::from(s)), max),
        }
    }
}

/// `ipv4_reassembly`: header = pool sizes; raw records are fragments
/// (byte 0: source and ident, bytes 1..3: offset in 8-byte units with MF
/// in the top bit, the rest the payload), structured ones [`Op`]s; then
/// time runs past the timeout and every context must be free.
pub fn run(data: &[u8]) {
    let (header, records) = split(data);
    let spec = PoolSpec::arbitrary(&mut Unstructured::new(&header)).unwrap_or(PoolSpec::DEFAULT);
    let mut h = Harness::new(spec);
    for r in records {
        match r {
            Record::Raw(bytes) => {
                if bytes.len() < 3 {
                    continue;
                }
                let word = u16::from_be_bytes([bytes[1], bytes[2]]);
                let payload = &bytes[3..];
                // Raw payload bytes: the seed is their first byte, and a
                // fragment whose bytes are not the pattern is built from
                // the pattern anyway (the model keeps what was pushed).
                let seed = payload.first().copied().unwrap_or(0);
                h.fragment(
                    bytes[0] & 1,
                    bytes[0] >> 1,
                    word & 0x1fff,
                    payload.len(),
                    word & 0x8000 != 0,
                    seed,
                );
            }
            Record::Structured(bytes) => {
                let Ok(ops) = Vec::<Op>::arbitrary_take_rest(Unstructured::new(bytes)) else {
                    continue;
                };
                for &op in ops.iter().take(MAX_OPS) {
                    h.op(op);
                }
            }
        }
    }
    let timeout = h.config.timeout;
    h.advance(timeout, 0);
    assert_eq!(h.pool.in_use(), 0, "a context outlived the timeout");
    assert_eq!(h.pool.bytes_held(), 0);
}

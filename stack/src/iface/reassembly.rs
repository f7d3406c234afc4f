//! IPv4 fragment reassembly (RFC 791 §3.2, RFC 1122 §3.3.2), in bounded
//! memory.
//!
//! A fixed pool of contexts, each with its own slot of one preallocated
//! arena (so no allocation per fragment, and fragments never draw on the
//! TCP buffer pool), keyed by (source, destination, protocol,
//! identification). Limits, each answered by a counted drop:
//!
//! * a datagram larger than [`ReassemblyConfig::max_datagram`];
//! * more fragments than [`MAX_FRAGMENTS`] for one datagram;
//! * more than [`ReassemblyConfig::max_bytes`] held in all contexts;
//! * no free context;
//! * a datagram still incomplete after [`ReassemblyConfig::timeout`]
//!   (Linux: 30 s), freed by [`Reassembler::expire`], which reports those
//!   whose first fragment arrived so that the interface can send ICMP Time
//!   Exceeded (RFC 792, code 1).
//!
//! Overlaps, in RFC 5722's spirit: a fragment overlapping one already held
//! drops the whole datagram, unless it is an identical duplicate (same
//! place, same bytes), which is ignored. Only a complete datagram is ever
//! handed back; a lone fragment never is.

use crate::time::{Duration, Instant};
use crate::wire::ipv4::{Fragment, IpProtocol, Ipv4Address, Ipv4Repr};

/// Most fragments one datagram may come in.
pub(crate) const MAX_FRAGMENTS: usize = 64;

/// Sizes and timers of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Datagrams reassembled at once.
    pub contexts: usize,
    /// Largest reassembled payload, bytes (at most 65515: 65535 less the
    /// header).
    pub max_datagram: usize,
    /// Most fragment bytes held in all contexts together.
    pub max_bytes: usize,
    /// How long an incomplete datagram is kept.
    pub timeout: Duration,
}

impl Default for ReassemblyConfig {
    fn default() -> ReassemblyConfig {
        ReassemblyConfig {
            contexts: 64,
            max_datagram: 65515,
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why a fragment was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReassemblyDrop {
    /// It overlapped a fragment already held: the datagram is dropped.
    Overlap,
    /// No free context, or the byte cap is reached.
    PoolFull,
    /// The datagram would exceed the size cap, or comes in too many
    /// fragments: the datagram is dropped.
    TooLarge,
    /// Inconsistent: a non-final fragment whose length is not a multiple
    /// of 8, data past the end the last fragment set, two different ends.
    Malformed,
}

/// What [`Reassembler::push`] did with a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled<'a> {
    /// The datagram is complete: its header (of the first fragment, with
    /// the whole payload length) and payload.
    Complete(Ipv4Repr, &'a [u8]),
    /// Kept (or an identical duplicate, ignored); the datagram is not
    /// complete yet.
    Held,
    /// Dropped and to be counted.
    Dropped(ReassemblyDrop),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    src: Ipv4Address,
    dst: Ipv4Address,
    protocol: IpProtocol,
    ident: u16,
}

#[derive(Debug, Clone, Copy)]
struct Context {
    key: Option<Key>,
    started: Instant,
    /// The header of the fragment at offset 0, once it arrived, with that
    /// fragment's payload length.
    first: Option<Ipv4Repr>,
    /// The payload length, once the last fragment arrived.
    total: Option<usize>,
    /// Bytes held.
    held: usize,
    /// Received ranges [start, end), unordered.
    ranges: [(u16, u16); MAX_FRAGMENTS],
    count: usize,
}

const FREE: Context = Context {
    key: None,
    started: Instant::ZERO,
    first: None,
    total: None,
    held: 0,
    ranges: [(0, 0); MAX_FRAGMENTS],
    count: 0,
};

/// A datagram given up by [`Reassembler::expire`] whose first fragment had
/// arrived: what an ICMP Time Exceeded quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired<'a> {
    /// The first fragment's header (`payload_len` is that fragment's).
    pub first: Ipv4Repr,
    /// The first fragment's payload.
    pub data: &'a [u8],
}

/// The per-core reassembly pool. See the module docs.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    contexts: Box<[Context]>,
    /// Contexts in use: when none is, the per-tick expiry check reads no
    /// context (the pool is a few hundred bytes per context).
    active: usize,
    arena: Box<[u8]>,
    held: usize,
    /// Where the last completed datagram lies in the arena.
    last: (usize, usize),
}

impl Reassembler {
    /// A pool with every context and the whole arena allocated now.
    pub fn new(config: ReassemblyConfig) -> Reassembler {
        let config = ReassemblyConfig {
            max_datagram: config.max_datagram.min(65515),
            ..config
        };
        Reassembler {
            contexts: vec![FREE; config.contexts].into_boxed_slice(),
            active: 0,
            arena: vec![0u8; config.contexts * config.max_datagram].into_boxed_slice(),
            held: 0,
            last: (0, 0),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// Datagrams being reassembled.
    pub fn in_use(&self) -> usize {
        self.active
    }

    /// Fragment bytes held.
    pub fn bytes_held(&self) -> usize {
        self.held
    }

    fn free(&mut self, i: usize) {
        if self.contexts[i].key.is_some() {
            self.active -= 1;
        }
        self.held -= self.contexts[i].held;
        self.contexts[i] = FREE;
    }

    /// Takes one fragment (`ip` and `frag` from
    /// [`Ipv4Repr::parse_fragment`], `payload` its bytes).
    pub fn push(
        &mut self,
        now: Instant,
        ip: &Ipv4Repr,
        frag: Fragment,
        payload: &[u8],
    ) -> Reassembled<'_> {
        let start = usize::from(frag.offset);
        let end = start + payload.len();
        if frag.more && (payload.is_empty() || payload.len() % 8 != 0) {
            return Reassembled::Dropped(ReassemblyDrop::Malformed);
        }
        let key = Key {
            src: ip.src_addr,
            dst: ip.dst_addr,
            protocol: ip.protocol,
            ident: ip.ident,
        };
        let found = self.contexts.iter().position(|c| c.key == Some(key));
        if end > self.config.max_datagram {
            if let Some(i) = found {
                self.free(i);
            }
            return Reassembled::Dropped(ReassemblyDrop::TooLarge);
        }
        let i = match found {
            Some(i) => i,
            None => {
                let Some(i) = self.contexts.iter().position(|c| c.key.is_none()) else {
                    return Reassembled::Dropped(ReassemblyDrop::PoolFull);
                };
                self.contexts[i] = Context {
                    key: Some(key),
                    started: now,
                    ..FREE
                };
                self.active += 1;
                i
            }
        };
        let c = &self.contexts[i];
        let slot = i * self.config.max_datagram;
        // Duplicates and overlaps (RFC 5722 spirit).
        for &(s, e) in &c.ranges[..c.count] {
            let (s, e) = (usize::from(s), usize::from(e));
            if start < e && s < end {
                if s == start && e == end && self.arena[slot + s..slot + e] == *payload {
                    return Reassembled::Held;
                }
                self.free(i);
                return Reassembled::Dropped(ReassemblyDrop::Overlap);
            }
        }
        // The end of the datagram: set once, and nothing past it.
        let max_end = c.ranges[..c.count]
            .iter()
            .map(|r| usize::from(r.1))
            .max()
            .unwrap_or(0);
        let consistent = match (frag.more, c.total) {
            (false, Some(t)) => t == end,
            (false, None) => max_end <= end,
            (true, Some(t)) => end < t,
            (true, None) => true,
        };
        if !consistent {
            self.free(i);
            return Reassembled::Dropped(ReassemblyDrop::Malformed);
        }
        if c.count == MAX_FRAGMENTS {
            self.free(i);
            return Reassembled::Dropped(ReassemblyDrop::TooLarge);
        }
        if self.held + payload.len() > self.config.max_bytes {
            // The byte cap: this fragment is dropped, the datagram may
            // still complete from a retransmission, or it times out.
            if c.count == 0 {
                self.free(i);
            }
            return Reassembled::Dropped(ReassemblyDrop::PoolFull);
        }
        self.arena[slot + start..slot + end].copy_from_slice(payload);
        self.held += payload.len();
        let c = &mut self.contexts[i];
        c.ranges[c.count] = (start as u16, end as u16);
        c.count += 1;
        c.held += payload.len();
        if !frag.more {
            c.total = Some(end);
        }
        if start == 0 {
            c.first = Some(*ip);
        }
        match (c.total, c.first) {
            (Some(total), Some(first)) if c.held == total => {
                // No overlaps and `held` bytes within [0, total): every
                // byte is there.
                self.free(i);
                let repr = Ipv4Repr {
                    payload_len: total,
                    ..first
                };
                self.last = (slot, total);
                Reassembled::Complete(repr, &self.arena[slot..slot + total])
            }
            _ => Reassembled::Held,
        }
    }

    /// The payload of the datagram [`push`](Self::push) last completed
    /// (valid until the next push into that slot).
    pub fn last_complete(&self) -> &[u8] {
        self.slice(&self.arena)
    }

    /// Lends the arena out (the pool is unusable until
    /// [`put_arena`](Self::put_arena)): lets the interface read the last
    /// datagram while it answers it.
    pub(crate) fn take_arena(&mut self) -> Box<[u8]> {
        core::mem::take(&mut self.arena)
    }

    /// Takes the arena back.
    pub(crate) fn put_arena(&mut self, arena: Box<[u8]>) {
        self.arena = arena;
    }

    /// The last completed datagram within a lent-out `arena`.
    pub(crate) fn slice<'b>(&self, arena: &'b [u8]) -> &'b [u8] {
        &arena[self.last.0..self.last.0 + self.last.1]
    }

    /// When the oldest incomplete datagram times out, if any.
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.active == 0 {
            return None;
        }
        self.contexts
            .iter()
            .filter(|c| c.key.is_some())
            .map(|c| c.started + self.config.timeout)
            .min()
    }

    /// Frees up to `max` datagrams that timed out by `now` (one pass over
    /// the pool at most); `on_expired` sees those whose first fragment
    /// arrived. Returns how many were freed.
    pub fn expire(
        &mut self,
        now: Instant,
        max: usize,
        mut on_expired: impl FnMut(Expired<'_>),
    ) -> usize {
        let mut n = 0;
        for i in 0..self.contexts.len() {
            if n == max {
                break;
            }
            let c = &self.contexts[i];
            if c.key.is_none() || c.started + self.config.timeout > now {
                continue;
            }
            if let Some(first) = c.first {
                let slot = i * self.config.max_datagram;
                // The first fragment is the range starting at 0.
                let len = c.ranges[..c.count]
                    .iter()
                    .find(|r| r.0 == 0)
                    .map_or(0, |r| usize::from(r.1));
                on_expired(Expired {
                    first: Ipv4Repr {
                        payload_len: len,
                        ..first
                    },
                    data: &self.arena[slot..slot + len],
                });
            }
            self.free(i);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(ident: u16) -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Address::new(10, 0, 0, 2),
            dst_addr: Ipv4Address::new(10, 0, 0, 1),
            protocol: IpProtocol::Tcp,
            payload_len: 0,
            ttl: 64,
            ident,
            dont_frag: false,
            dscp_ecn: 0,
        }
    }

    fn frag(offset: u16, more: bool) -> Fragment {
        Fragment { offset, more }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    fn small() -> ReassemblyConfig {
        ReassemblyConfig {
            contexts: 2,
            max_datagram: 4096,
            max_bytes: 8192,
            timeout: Duration::from_secs(30),
        }
    }

    /// The contexts in use, counted the slow way.
    fn counted(r: &Reassembler) -> usize {
        r.contexts.iter().filter(|c| c.key.is_some()).count()
    }

    #[test]
    fn the_count_in_use_follows_every_path_that_takes_or_frees_a_context() {
        let mut rng = crate::rand::Rng::new(5);
        let mut r = Reassembler::new(ReassemblyConfig {
            contexts: 4,
            max_datagram: 256,
            max_bytes: 600,
            timeout: Duration::from_secs(1),
        });
        let d = data(256);
        let mut now = Instant::ZERO;
        let mut seen = [0u32; 6];
        let mut expired = 0;
        for _ in 0..20_000 {
            // Few idents, offsets that overlap, fragments past the
            // datagram's limit, odd lengths, and time passing: every
            // outcome of `push` and of `expire`.
            let ident = (rng.next_u32() % 6) as u16;
            let offset = (rng.next_u32() % 40) as u16 * 8;
            let len = match rng.next_u32() % 4 {
                0 => 7,
                _ => 8 * (1 + rng.next_u32() as usize % 4),
            };
            let more = rng.next_u32() % 3 != 0;
            let len = len.min(d.len().saturating_sub(usize::from(offset)));
            let outcome = match r.push(now, &ip(ident), frag(offset, more), &d[..len]) {
                Reassembled::Complete(..) => 0,
                Reassembled::Held => 1,
                Reassembled::Dropped(ReassemblyDrop::Overlap) => 2,
                Reassembled::Dropped(ReassemblyDrop::Malformed) => 3,
                Reassembled::Dropped(ReassemblyDrop::TooLarge) => 4,
                Reassembled::Dropped(ReassemblyDrop::PoolFull) => 5,
            };
            seen[outcome] += 1;
            assert_eq!(r.in_use(), counted(&r));
            if rng.next_u32() % 8 == 0 {
                now += Duration::from_millis(300);
                expired += r.expire(now, 2, |_| {});
                assert_eq!(r.in_use(), counted(&r));
            }
            assert_eq!(r.next_expiry().is_some(), r.in_use() > 0);
        }
        assert!(seen.iter().all(|&n| n > 0), "every outcome: {seen:?}");
        assert!(expired > 0);
    }

    #[test]
    fn three_fragments_in_any_order() {
        let d = data(60);
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let mut r = Reassembler::new(small());
            let parts = [(0usize, 24usize, true), (24, 48, true), (48, 60, false)];
            let mut done = None;
            for (k, &p) in order.iter().enumerate() {
                let (s, e, more) = parts[p];
                match r.push(Instant::ZERO, &ip(7), frag(s as u16, more), &d[s..e]) {
                    Reassembled::Complete(h, bytes) => {
                        assert_eq!(k, 2, "complete only with the last piece");
                        done = Some((h, bytes.to_vec()));
                    }
                    Reassembled::Held => assert!(k < 2),
                    Reassembled::Dropped(why) => panic!("{why:?}"),
                }
            }
            let (h, bytes) = done.expect("reassembled");
            assert_eq!(h.payload_len, 60);
            assert_eq!(bytes, d);
            assert_eq!(r.in_use(), 0);
            assert_eq!(r.bytes_held(), 0);
        }
    }

    #[test]
    fn a_lone_fragment_is_never_complete() {
        let mut r = Reassembler::new(small());
        let d = data(16);
        assert_eq!(
            r.push(Instant::ZERO, &ip(1), frag(0, true), &d),
            Reassembled::Held
        );
        assert_eq!(
            r.push(Instant::ZERO, &ip(2), frag(16, false), &d),
            Reassembled::Held
        );
        assert_eq!(r.in_use(), 2);
    }

    #[test]
    fn overlap_drops_the_datagram_identical_duplicate_tolerated() {
        let mut r = Reassembler::new(small());
        let d = data(48);
        let now = Instant::ZERO;
        assert_eq!(
            r.push(now, &ip(1), frag(0, true), &d[..24]),
            Reassembled::Held
        );
        // Identical duplicate: ignored.
        assert_eq!(
            r.push(now, &ip(1), frag(0, true), &d[..24]),
            Reassembled::Held
        );
        assert_eq!(r.bytes_held(), 24);
        // Same place, other bytes: an overlap.
        let mut other = d[..24].to_vec();
        other[3] ^= 1;
        assert_eq!(
            r.push(now, &ip(1), frag(0, true), &other),
            Reassembled::Dropped(ReassemblyDrop::Overlap)
        );
        assert_eq!(r.in_use(), 0);
        // A partial overlap drops it too.
        r.push(now, &ip(2), frag(0, true), &d[..24]);
        assert_eq!(
            r.push(now, &ip(2), frag(16, false), &d[16..48]),
            Reassembled::Dropped(ReassemblyDrop::Overlap)
        );
        assert_eq!(r.in_use(), 0);
        assert_eq!(r.bytes_held(), 0);
    }

    #[test]
    fn timeout_frees_the_context_and_reports_the_first_fragment() {
        let mut r = Reassembler::new(small());
        let d = data(32);
        r.push(Instant::ZERO, &ip(1), frag(0, true), &d[..16]);
        r.push(Instant::from_secs(1), &ip(2), frag(16, false), &d[16..]);
        assert_eq!(r.next_expiry(), Some(Instant::from_secs(30)));
        let mut seen = Vec::new();
        assert_eq!(r.expire(Instant::from_secs(29), 8, |_| panic!("early")), 0);
        let n = r.expire(Instant::from_secs(30), 8, |e| {
            seen.push((e.first.ident, e.data.to_vec()))
        });
        assert_eq!(n, 1);
        assert_eq!(seen, vec![(1, d[..16].to_vec())]);
        assert_eq!(r.in_use(), 1);
        // The second had no first fragment: freed without a report.
        let n = r.expire(Instant::from_secs(31), 8, |_| panic!("no first fragment"));
        assert_eq!(n, 1);
        assert_eq!(r.in_use(), 0);
        assert_eq!(r.next_expiry(), None);
    }

    #[test]
    fn pool_exhaustion_and_byte_cap_drop() {
        let mut r = Reassembler::new(ReassemblyConfig {
            max_bytes: 8180,
            ..small()
        });
        let d = data(4096);
        let now = Instant::ZERO;
        r.push(now, &ip(1), frag(0, true), &d[..8]);
        r.push(now, &ip(2), frag(0, true), &d[..8]);
        assert_eq!(
            r.push(now, &ip(3), frag(0, true), &d[..8]),
            Reassembled::Dropped(ReassemblyDrop::PoolFull)
        );
        // The byte cap (8192) across both contexts.
        assert_eq!(
            r.push(now, &ip(1), frag(8, true), &d[..4080]),
            Reassembled::Held
        );
        assert_eq!(
            r.push(now, &ip(2), frag(8, true), &d[..4080]),
            Reassembled::Held
        );
        assert_eq!(
            r.push(now, &ip(2), frag(4088, false), &d[..8]),
            Reassembled::Dropped(ReassemblyDrop::PoolFull)
        );
        assert_eq!(r.bytes_held(), 8176);
    }

    #[test]
    fn size_and_consistency_limits() {
        let mut r = Reassembler::new(small());
        let d = data(64);
        let now = Instant::ZERO;
        // Past the per-datagram cap.
        assert_eq!(
            r.push(now, &ip(1), frag(4088, false), &d[..16]),
            Reassembled::Dropped(ReassemblyDrop::TooLarge)
        );
        // A middle fragment not a multiple of 8.
        assert_eq!(
            r.push(now, &ip(1), frag(0, true), &d[..12]),
            Reassembled::Dropped(ReassemblyDrop::Malformed)
        );
        // Data past the end set by the last fragment.
        r.push(now, &ip(1), frag(16, false), &d[..8]);
        assert_eq!(
            r.push(now, &ip(1), frag(24, true), &d[..8]),
            Reassembled::Dropped(ReassemblyDrop::Malformed)
        );
        assert_eq!(r.in_use(), 0);
        // Too many fragments.
        let mut r = Reassembler::new(small());
        for k in 0..MAX_FRAGMENTS {
            assert_eq!(
                r.push(now, &ip(9), frag((k * 8) as u16, true), &d[..8]),
                Reassembled::Held
            );
        }
        assert_eq!(
            r.push(now, &ip(9), frag(4000, false), &d[..8]),
            Reassembled::Dropped(ReassemblyDrop::TooLarge)
        );
        assert_eq!(r.in_use(), 0);
    }

    proptest::proptest! {
        /// Arbitrary fragments: no panic, the caps hold, a completed
        /// datagram is exactly what was sent, and the timeout frees all.
        #[test]
        fn arbitrary_fragments_keep_the_bounds(
            frags in proptest::collection::vec((0u8..4, 0u16..600, 0usize..200, proptest::bool::ANY), 1..60)
        ) {
            let cfg = ReassemblyConfig {
                contexts: 3,
                max_datagram: 4096,
                max_bytes: 2048,
                timeout: Duration::from_secs(30),
            };
            let mut r = Reassembler::new(cfg);
            let d = data(5000);
            for (ident, off8, len, more) in frags {
                let offset = off8 * 8;
                let start = usize::from(offset);
                let payload = &d[start..start + len];
                let res = r.push(Instant::ZERO, &ip(u16::from(ident)), frag(offset, more), payload);
                if let Reassembled::Complete(h, bytes) = res {
                    proptest::prop_assert_eq!(h.payload_len, bytes.len());
                    proptest::prop_assert_eq!(bytes, &d[..bytes.len()]);
                }
                proptest::prop_assert!(r.bytes_held() <= cfg.max_bytes);
                proptest::prop_assert!(r.in_use() <= cfg.contexts);
            }
            r.expire(Instant::from_secs(60), usize::MAX, |_| {});
            proptest::prop_assert_eq!(r.in_use(), 0);
            proptest::prop_assert_eq!(r.bytes_held(), 0);
        }
    }
}

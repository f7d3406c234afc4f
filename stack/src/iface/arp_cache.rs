//! The ARP cache: neighbours and their reachability (Linux's NUD states),
//! pending resolutions and the packets waiting on them.
//!
//! * Neighbours live in a fixed-size set-associative hash table (buckets of
//!   [`WAYS`] entries): a lookup hashes the address and scans one bucket, so
//!   it is O(1) whatever the table holds.
//! * Reachability follows Linux (RFC 4861 §7.3.2 applied to ARP): an entry
//!   is REACHABLE for `reachable_time` after a confirmation (an ARP reply to
//!   our request, or forward progress seen by TCP: [`ArpCache::confirm`]),
//!   then STALE. A STALE entry is still used for sending; the first send
//!   through it starts DELAY (`delay_first_probe`), and when no
//!   confirmation came by then, PROBE: up to `max_probes` unicast requests
//!   `retry_interval` apart, then FAILED (the MAC is no longer used; the
//!   next send resolves again by broadcast). Entries are never expired by
//!   age alone; a full bucket replaces a FAILED entry first, then the
//!   stalest one.
//! * Pending resolutions (at most `max_pending`) remember when the next
//!   broadcast request is due and how many were sent; after `max_tries`
//!   requests with no answer the resolution gives up and its packets are
//!   dropped. Each holds at most `queue_per_dest` frames. The table is
//!   shared fairly: a resolution of an address we have never resolved is
//!   evicted (oldest first) to make room for a new one, while one for an
//!   address that resolved before (a FAILED entry) is never evicted, and
//!   its requests bypass the global request limit (`requests_per_sec`,
//!   burst `request_burst`), so a flood of packets for addresses that never
//!   answer cannot starve a neighbour that did.
//! * Waiting packets are whole frames kept in preallocated slots
//!   (`queue_slots` × `slot_size` bytes, allocated once), chained per
//!   pending address in arrival order, so a resolution flushes them in order.
//!
//! Nothing here allocates after construction.

use crate::time::{Duration, Instant};
use crate::wire::ethernet::EthernetAddress;
use crate::wire::ipv4::Ipv4Address;

/// Entries per hash bucket.
pub(crate) const WAYS: usize = 4;

/// Sizes and timers of an [`ArpCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpConfig {
    /// Entries the table can hold (rounded up to a power of two, at least
    /// 4: one bucket).
    pub capacity: usize,
    /// How long a confirmed entry stays REACHABLE (Linux's
    /// `base_reachable_time`, 30 s).
    pub reachable_time: Duration,
    /// How long a STALE entry in use waits for a confirmation before it is
    /// probed (Linux's `delay_first_probe_time`, 5 s).
    pub delay_first_probe: Duration,
    /// Time between requests (broadcast resolutions and unicast probes;
    /// Linux's `retrans_time`).
    pub retry_interval: Duration,
    /// Broadcast requests sent before a resolution gives up.
    pub max_tries: u8,
    /// Unicast probes of a STALE entry before it is FAILED (Linux's
    /// `ucast_solicit`).
    pub max_probes: u8,
    /// Resolutions in progress at once.
    pub max_pending: usize,
    /// Entries being re-confirmed (DELAY or PROBE) at once.
    pub max_probing: usize,
    /// Frames that can wait for resolution, over all addresses.
    pub queue_slots: usize,
    /// Frames that can wait for one address (Linux's `unres_qlen`).
    pub queue_per_dest: usize,
    /// Bytes per waiting frame (a whole Ethernet frame).
    pub slot_size: usize,
    /// Broadcast requests per second for addresses never resolved, over
    /// the whole interface.
    pub requests_per_sec: u32,
    /// Burst of such requests allowed at once.
    pub request_burst: u32,
}

impl Default for ArpConfig {
    fn default() -> ArpConfig {
        ArpConfig {
            capacity: 1024,
            reachable_time: Duration::from_secs(30),
            delay_first_probe: Duration::from_secs(5),
            retry_interval: Duration::from_secs(1),
            max_tries: 3,
            max_probes: 3,
            max_pending: 16,
            max_probing: 64,
            queue_slots: 64,
            queue_per_dest: 8,
            slot_size: 1514,
            requests_per_sec: 100,
            request_burst: 20,
        }
    }
}

/// The reachability of a neighbour (Linux's NUD states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighborState {
    /// Confirmed within `reachable_time`.
    Reachable,
    /// Not confirmed lately; still used for sending.
    Stale,
    /// Used while STALE; waiting for a confirmation before probing.
    Delay,
    /// Being probed with unicast requests; still used for sending.
    Probe,
    /// Probes went unanswered: not used until resolved again.
    Failed,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    ip: Ipv4Address,
    mac: EthernetAddress,
    /// REACHABLE until then, STALE after.
    reachable_until: Instant,
    /// In the probing list (DELAY or PROBE).
    probing: bool,
    /// Probes went unanswered: the MAC is not used.
    failed: bool,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    ip: Ipv4Address,
    /// When the resolution started (eviction order).
    started: Instant,
    /// The address resolved before (a FAILED entry): never evicted.
    known: bool,
    /// Requests sent so far.
    tries: u8,
    /// When the next request (or the give-up) is due.
    next_at: Instant,
    /// Frames waiting.
    queued: u16,
    /// First and last waiting frame.
    head: Option<u16>,
    tail: Option<u16>,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    ip: Ipv4Address,
    /// Unicast probes sent (0: still in DELAY).
    tries: u8,
    /// When DELAY ends or the next probe (or the failure) is due.
    next_at: Instant,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    len: u16,
    next: Option<u16>,
}

/// What [`ArpCache::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// Queued, and a new resolution started: send a request now. `evicted`
    /// frames of an older resolution (of an address never resolved) were
    /// dropped to make room.
    NewResolution {
        /// Frames dropped with the evicted resolution (0 when none was).
        evicted: usize,
    },
    /// Queued behind a resolution already in progress.
    Waiting,
}

/// Why [`ArpCache::enqueue`] could not queue a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueError {
    /// Every slot holds a frame, this address has `queue_per_dest` frames
    /// waiting, or every pending resolution is for a known neighbour.
    Full,
    /// A new resolution would exceed the global request rate.
    RateLimited,
    /// The frame is larger than a slot.
    TooLarge,
}

/// One action [`ArpCache::poll`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollAction {
    /// Send another broadcast request for this address.
    Request(Ipv4Address),
    /// Send a unicast probe for this address to the MAC it had.
    Probe(Ipv4Address, EthernetAddress),
    /// Resolution of this address gave up; this many frames were dropped.
    GaveUp(Ipv4Address, usize),
    /// Probes of this neighbour went unanswered: it is FAILED.
    Failed(Ipv4Address),
}

/// A token bucket counted in micro-tokens (deterministic, time passed in).
#[derive(Debug, Clone, Copy)]
struct TokenBucket {
    per_sec: u64,
    burst: u64,
    /// Tokens × 1 000 000.
    level: u64,
    last: Instant,
}

impl TokenBucket {
    fn new(per_sec: u32, burst: u32) -> TokenBucket {
        let burst = u64::from(burst.max(1));
        TokenBucket {
            per_sec: u64::from(per_sec),
            burst,
            level: burst * 1_000_000,
            last: Instant::ZERO,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_micros() as u64;
        self.last = now.max(self.last);
        self.level = self
            .level
            .saturating_add(dt.saturating_mul(self.per_sec))
            .min(self.burst * 1_000_000);
        if self.level >= 1_000_000 {
            self.level -= 1_000_000;
            true
        } else {
            false
        }
    }
}

/// Neighbour table, probes, pending resolutions and waiting frames. See the
/// module docs.
#[derive(Debug)]
pub struct ArpCache {
    config: ArpConfig,
    table: Vec<Option<Entry>>,
    bucket_mask: usize,
    pending: Vec<Option<Pending>>,
    /// How many of `pending` are `Some`: the per-tick poll returns at once
    /// when none is (and none of `probing` is).
    active: usize,
    probing: Vec<Option<Probe>>,
    probing_active: usize,
    /// No probe is due before this (never later than the earliest one's
    /// `next_at`): the per-tick poll scans the probing list only from then.
    probe_due: Instant,
    requests: TokenBucket,
    slots: Vec<Slot>,
    data: Vec<u8>,
    free: Vec<u16>,
}

/// Fibonacci hashing of the address bits.
fn hash(ip: Ipv4Address) -> u32 {
    u32::from(ip).wrapping_mul(0x9e37_79b9).rotate_left(16)
}

impl ArpCache {
    /// Allocates the table, the pending and probing lists and the frame
    /// slots.
    ///
    /// # Panics
    /// Panics when `queue_slots` exceeds 65535 or `slot_size` exceeds 65535.
    pub fn new(config: ArpConfig) -> ArpCache {
        assert!(
            config.queue_slots <= usize::from(u16::MAX),
            "too many ARP queue slots"
        );
        assert!(
            config.slot_size <= usize::from(u16::MAX),
            "ARP queue slot too large"
        );
        let buckets = config.capacity.div_ceil(WAYS).max(1).next_power_of_two();
        ArpCache {
            config,
            table: vec![None; buckets * WAYS],
            bucket_mask: buckets - 1,
            pending: vec![None; config.max_pending],
            active: 0,
            probing: vec![None; config.max_probing],
            probing_active: 0,
            probe_due: Instant::ZERO,
            requests: TokenBucket::new(config.requests_per_sec, config.request_burst),
            slots: vec![Slot::default(); config.queue_slots],
            data: vec![0; config.queue_slots * config.slot_size],
            free: (0..config.queue_slots as u16).rev().collect(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ArpConfig {
        &self.config
    }

    fn bucket(&self, ip: Ipv4Address) -> core::ops::Range<usize> {
        let b = (hash(ip) as usize) & self.bucket_mask;
        b * WAYS..(b + 1) * WAYS
    }

    fn entry(&self, ip: Ipv4Address) -> Option<&Entry> {
        self.table[self.bucket(ip)]
            .iter()
            .flatten()
            .find(|e| e.ip == ip)
    }

    fn entry_mut(&mut self, ip: Ipv4Address) -> Option<&mut Entry> {
        let range = self.bucket(ip);
        self.table[range].iter_mut().flatten().find(|e| e.ip == ip)
    }

    /// The MAC of `ip` when known and usable (any state but FAILED).
    pub fn lookup(&self, ip: Ipv4Address, _now: Instant) -> Option<EthernetAddress> {
        self.entry(ip).filter(|e| !e.failed).map(|e| e.mac)
    }

    /// True when `ip` has an entry, FAILED included (RFC 826's "merge"
    /// test: an ARP packet from it updates the entry).
    pub fn contains(&self, ip: Ipv4Address, _now: Instant) -> bool {
        self.entry(ip).is_some()
    }

    /// The reachability of `ip`, when it has an entry.
    pub fn state(&self, ip: Ipv4Address, now: Instant) -> Option<NeighborState> {
        let e = self.entry(ip)?;
        Some(if e.failed {
            NeighborState::Failed
        } else if e.reachable_until > now {
            NeighborState::Reachable
        } else if e.probing {
            match self.probe_index(ip).and_then(|i| self.probing[i]) {
                Some(p) if p.tries > 0 => NeighborState::Probe,
                _ => NeighborState::Delay,
            }
        } else {
            NeighborState::Stale
        })
    }

    /// The MAC to send a packet to `ip` with, when usable. A STALE entry is
    /// used and starts its re-confirmation (DELAY, then PROBE) when there
    /// is room in the probing list (otherwise it stays STALE and the next
    /// send tries again).
    pub fn resolve(&mut self, ip: Ipv4Address, now: Instant) -> Option<EthernetAddress> {
        let delay = self.config.delay_first_probe;
        let e = self.entry(ip)?;
        if e.failed {
            return None;
        }
        let mac = e.mac;
        if e.reachable_until <= now && !e.probing {
            if let Some(i) = self.probing.iter().position(Option::is_none) {
                self.probing[i] = Some(Probe {
                    ip,
                    tries: 0,
                    next_at: now + delay,
                });
                self.probing_active += 1;
                self.probe_due = self.probe_due.min(now + delay);
                if let Some(e) = self.entry_mut(ip) {
                    e.probing = true;
                }
            }
        }
        Some(mac)
    }

    /// Confirms that `ip` is reachable (forward progress seen by TCP, or a
    /// reply to our probe): REACHABLE for `reachable_time` from `now`.
    /// Returns false when `ip` has no usable entry.
    pub fn confirm(&mut self, ip: Ipv4Address, now: Instant) -> bool {
        let ttl = self.config.reachable_time;
        match self.entry_mut(ip) {
            Some(e) if !e.failed => {
                e.reachable_until = now + ttl;
                true
            }
            _ => false,
        }
    }

    /// Learns `ip → mac` as REACHABLE (an answer to our request, a static
    /// entry). When the bucket is full a FAILED entry, else the stalest
    /// entry not being probed, is replaced.
    pub fn insert(&mut self, ip: Ipv4Address, mac: EthernetAddress, now: Instant) {
        let until = now + self.config.reachable_time;
        self.store(ip, mac, until);
    }

    /// Learns `ip → mac` from a packet that proves nothing about
    /// reachability (an ARP request for us, a changed address in an
    /// announcement): a new entry is STALE; an existing one with the same
    /// MAC keeps its state; a changed MAC makes it STALE.
    pub fn learn_stale(&mut self, ip: Ipv4Address, mac: EthernetAddress, now: Instant) {
        if let Some(e) = self.entry_mut(ip) {
            if e.mac == mac && !e.failed {
                return;
            }
            e.mac = mac;
            e.failed = false;
            e.reachable_until = Instant::ZERO;
            return;
        }
        let _ = now;
        self.store(ip, mac, Instant::ZERO);
    }

    fn store(&mut self, ip: Ipv4Address, mac: EthernetAddress, reachable_until: Instant) {
        if let Some(e) = self.entry_mut(ip) {
            e.mac = mac;
            e.failed = false;
            e.reachable_until = reachable_until;
            return;
        }
        let entry = Entry {
            ip,
            mac,
            reachable_until,
            probing: false,
            failed: false,
        };
        let range = self.bucket(ip);
        let bucket = &mut self.table[range];
        if let Some(slot) = bucket.iter_mut().find(|s| s.is_none()) {
            *slot = Some(entry);
            return;
        }
        // Victim: FAILED first, then entries not being probed, stalest
        // first.
        let victim = bucket
            .iter_mut()
            .min_by_key(|s| {
                s.map_or((0, Instant::ZERO), |e| {
                    (u8::from(!e.failed) + u8::from(e.probing), e.reachable_until)
                })
            })
            .expect("a bucket has WAYS entries");
        *victim = Some(entry);
    }

    /// Forgets `ip`.
    pub fn remove(&mut self, ip: Ipv4Address) {
        let range = self.bucket(ip);
        for slot in &mut self.table[range] {
            if matches!(slot, Some(e) if e.ip == ip) {
                *slot = None;
            }
        }
    }

    /// Entries with a usable MAC (a scan of the whole table; for tests and
    /// diagnostics).
    pub fn len(&self, _now: Instant) -> usize {
        self.table.iter().flatten().filter(|e| !e.failed).count()
    }

    /// True when no entry is usable.
    pub fn is_empty(&self, now: Instant) -> bool {
        self.len(now) == 0
    }

    /// True when a resolution of `ip` is in progress.
    pub fn is_pending(&self, ip: Ipv4Address) -> bool {
        self.pending_index(ip).is_some()
    }

    /// True when `ip` is being re-confirmed (DELAY or PROBE).
    pub fn is_probing(&self, ip: Ipv4Address) -> bool {
        self.entry(ip).is_some_and(|e| e.probing)
    }

    /// Resolutions in progress.
    pub fn pending_count(&self) -> usize {
        self.active
    }

    /// Frames waiting over all addresses.
    pub fn queued(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn pending_index(&self, ip: Ipv4Address) -> Option<usize> {
        self.pending
            .iter()
            .position(|p| matches!(p, Some(p) if p.ip == ip))
    }

    fn probe_index(&self, ip: Ipv4Address) -> Option<usize> {
        self.probing
            .iter()
            .position(|p| matches!(p, Some(p) if p.ip == ip))
    }

    /// Queues a frame of `len` bytes for `next_hop`, written in place by
    /// `write` (which gets exactly `len` bytes). Starts a resolution when
    /// none is pending: the caller then sends the first request (counted as
    /// try 1, the next is due `retry_interval` later). A new resolution for
    /// an address never resolved takes a token of the global request limit
    /// and, when the pending table is full, evicts the oldest resolution of
    /// an address never resolved.
    ///
    /// # Errors
    /// [`QueueError::TooLarge`] when `len` exceeds a slot;
    /// [`QueueError::Full`] when no slot is free, the address already has
    /// `queue_per_dest` frames waiting, or no resolution can be evicted;
    /// [`QueueError::RateLimited`] when a new resolution would exceed the
    /// request rate. `write` is not called then.
    pub(crate) fn enqueue(
        &mut self,
        now: Instant,
        next_hop: Ipv4Address,
        len: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<Enqueued, QueueError> {
        if len > self.config.slot_size {
            return Err(QueueError::TooLarge);
        }
        if let Some(pi) = self.pending_index(next_hop) {
            let p = self.pending[pi].expect("index found above");
            if usize::from(p.queued) >= self.config.queue_per_dest {
                return Err(QueueError::Full);
            }
            let slot = self.take_slot(len, write)?;
            let p = self.pending[pi].as_mut().expect("index found above");
            match p.tail {
                Some(t) => self.slots[usize::from(t)].next = Some(slot),
                None => p.head = Some(slot),
            }
            p.tail = Some(slot);
            p.queued += 1;
            return Ok(Enqueued::Waiting);
        }
        if self.free.is_empty() || self.config.queue_per_dest == 0 {
            return Err(QueueError::Full);
        }
        let known = self.entry(next_hop).is_some();
        let free_pi = self.pending.iter().position(Option::is_none);
        // A victim, when the table is full: the oldest resolution of an
        // address never resolved.
        let victim = match free_pi {
            Some(_) => None,
            None => {
                let v = self
                    .pending
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| p.filter(|p| !p.known).map(|p| (i, p.started)))
                    .min_by_key(|&(_, started)| started)
                    .map(|(i, _)| i);
                if v.is_none() {
                    return Err(QueueError::Full);
                }
                v
            }
        };
        if !known && !self.requests.take(now) {
            return Err(QueueError::RateLimited);
        }
        let evicted = victim.map_or(0, |v| self.give_up(v));
        let pi = free_pi.or(victim).expect("a free or evicted entry");
        let slot = self.take_slot(len, write)?;
        self.active += 1;
        self.pending[pi] = Some(Pending {
            ip: next_hop,
            started: now,
            known,
            tries: 1,
            next_at: now + self.config.retry_interval,
            queued: 1,
            head: Some(slot),
            tail: Some(slot),
        });
        Ok(Enqueued::NewResolution { evicted })
    }

    fn take_slot(&mut self, len: usize, write: impl FnOnce(&mut [u8])) -> Result<u16, QueueError> {
        let Some(slot) = self.free.pop() else {
            return Err(QueueError::Full);
        };
        let start = usize::from(slot) * self.config.slot_size;
        write(&mut self.data[start..start + len]);
        self.slots[usize::from(slot)] = Slot {
            len: len as u16,
            next: None,
        };
        Ok(slot)
    }

    /// Ends the resolution of `ip` (an answer arrived) and hands each
    /// waiting frame, in arrival order, to `send`, which may patch it (the
    /// destination MAC) before copying it out. Returns how many frames were
    /// handed out.
    pub fn flush(&mut self, ip: Ipv4Address, mut send: impl FnMut(&mut [u8])) -> usize {
        let Some(pi) = self.pending_index(ip) else {
            return 0;
        };
        let p = self.pending[pi].take().expect("index found above");
        self.active -= 1;
        let mut n = 0;
        let mut cur = p.head;
        // The chain is bounded by the number of slots.
        while let Some(slot) = cur {
            let s = self.slots[usize::from(slot)];
            let start = usize::from(slot) * self.config.slot_size;
            send(&mut self.data[start..start + usize::from(s.len)]);
            self.free.push(slot);
            cur = s.next;
            n += 1;
        }
        n
    }

    /// Drops the frames waiting on resolution `pi` and ends it.
    fn give_up(&mut self, pi: usize) -> usize {
        let Some(p) = self.pending[pi].take() else {
            return 0;
        };
        self.active -= 1;
        let mut n = 0;
        let mut cur = p.head;
        while let Some(slot) = cur {
            self.free.push(slot);
            cur = self.slots[usize::from(slot)].next;
            n += 1;
        }
        n
    }

    /// Runs the retry and probe timers: returns the next action due at
    /// `now`, or `None`. A due resolution either asks for another request
    /// (and is rescheduled `retry_interval` later) or, after `max_tries`
    /// requests, gives up and drops its frames. A due probe ends quietly
    /// when the entry was confirmed meanwhile, else asks for a unicast probe
    /// or, after `max_probes`, marks the entry FAILED. Call until it returns
    /// `None`; each resolution or probe yields at most one action per call
    /// sequence when `retry_interval` is non-zero, so a caller loop bounded
    /// by `max_pending + max_probing` sees them all.
    pub(crate) fn poll(&mut self, now: Instant) -> Option<PollAction> {
        if self.active > 0 {
            if let Some(pi) = self
                .pending
                .iter()
                .position(|p| matches!(p, Some(p) if p.next_at <= now))
            {
                let p = self.pending[pi].as_mut()?;
                if p.tries >= self.config.max_tries {
                    let ip = p.ip;
                    let dropped = self.give_up(pi);
                    return Some(PollAction::GaveUp(ip, dropped));
                }
                p.tries += 1;
                p.next_at = now + self.config.retry_interval;
                return Some(PollAction::Request(p.ip));
            }
        }
        // Probes: the confirmed ones end without an action; the loop is
        // bounded by the probing list.
        while self.probing_active > 0 && self.probe_due <= now {
            let Some(qi) = self
                .probing
                .iter()
                .position(|p| matches!(p, Some(p) if p.next_at <= now))
            else {
                // None due: the earliest one says when to look again.
                self.probe_due = self
                    .probing
                    .iter()
                    .flatten()
                    .map(|p| p.next_at)
                    .min()
                    .unwrap_or(now);
                return None;
            };
            let p = self.probing[qi].expect("found above");
            let entry = self.entry(p.ip).copied();
            let done = match entry {
                None => true,
                Some(e) => e.failed || e.reachable_until > now,
            };
            if done || p.tries >= self.config.max_probes {
                self.probing[qi] = None;
                self.probing_active -= 1;
                let Some(e) = self.entry_mut(p.ip) else {
                    continue;
                };
                e.probing = false;
                if done {
                    continue;
                }
                e.failed = true;
                return Some(PollAction::Failed(p.ip));
            }
            let q = self.probing[qi].as_mut().expect("found above");
            q.tries += 1;
            q.next_at = now + self.config.retry_interval;
            let mac = entry.expect("not done").mac;
            return Some(PollAction::Probe(p.ip, mac));
        }
        None
    }

    /// When [`poll`](Self::poll) next has something to do, if ever.
    pub(crate) fn next_poll_at(&self) -> Option<Instant> {
        if self.active == 0 && self.probing_active == 0 {
            return None;
        }
        self.pending
            .iter()
            .flatten()
            .map(|p| p.next_at)
            .chain(self.probing.iter().flatten().map(|p| p.next_at))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> Ipv4Address {
        Ipv4Address::from(0x0a00_0000 + n)
    }

    fn mac(n: u8) -> EthernetAddress {
        EthernetAddress([2, 0, 0, 0, 0, n])
    }

    fn small() -> ArpCache {
        ArpCache::new(ArpConfig {
            capacity: 8,
            queue_slots: 4,
            slot_size: 64,
            max_pending: 2,
            max_probing: 2,
            ..ArpConfig::default()
        })
    }

    mod table {
        use super::*;

        #[test]
        fn insert_lookup_refresh_remove() {
            let mut c = small();
            let t0 = Instant::from_secs(10);
            assert_eq!(c.lookup(ip(1), t0), None);
            c.insert(ip(1), mac(1), t0);
            assert_eq!(c.lookup(ip(1), t0), Some(mac(1)));
            c.insert(ip(1), mac(9), t0);
            assert_eq!(c.lookup(ip(1), t0), Some(mac(9)));
            assert_eq!(c.len(t0), 1);
            c.remove(ip(1));
            assert_eq!(c.lookup(ip(1), t0), None);
        }

        #[test]
        fn bounded_and_replaces_stalest() {
            let mut c = small();
            // Far more addresses than capacity: the table never grows and
            // the most recent insert is always found.
            for n in 0..1000u32 {
                let now = Instant::from_millis(u64::from(n));
                c.insert(ip(n), mac(n as u8), now);
                assert_eq!(c.lookup(ip(n), now), Some(mac(n as u8)));
                assert!(c.len(now) <= 8);
            }
        }

        #[test]
        fn learn_stale_keeps_state_unless_the_mac_changes() {
            let mut c = small();
            let t0 = Instant::from_secs(1);
            c.learn_stale(ip(1), mac(1), t0);
            assert_eq!(c.state(ip(1), t0), Some(NeighborState::Stale));
            c.insert(ip(1), mac(1), t0);
            c.learn_stale(ip(1), mac(1), t0);
            assert_eq!(c.state(ip(1), t0), Some(NeighborState::Reachable));
            c.learn_stale(ip(1), mac(2), t0);
            assert_eq!(c.state(ip(1), t0), Some(NeighborState::Stale));
            assert_eq!(c.lookup(ip(1), t0), Some(mac(2)));
        }
    }

    mod reachability {
        use super::*;

        #[test]
        fn reachable_becomes_stale_and_is_still_used() {
            let mut c = small();
            let t0 = Instant::from_secs(1);
            c.insert(ip(1), mac(1), t0);
            let rt = c.config().reachable_time;
            assert_eq!(
                c.state(ip(1), t0 + rt - Duration::from_micros(1)),
                Some(NeighborState::Reachable)
            );
            let t1 = t0 + rt;
            assert_eq!(c.state(ip(1), t1), Some(NeighborState::Stale));
            // Sending through a STALE entry uses it and starts DELAY.
            assert_eq!(c.resolve(ip(1), t1), Some(mac(1)));
            assert_eq!(c.state(ip(1), t1), Some(NeighborState::Delay));
            assert_eq!(c.next_poll_at(), Some(t1 + Duration::from_secs(5)));
        }

        #[test]
        fn delay_then_unicast_probes_then_failed() {
            let mut c = small();
            let t0 = Instant::from_secs(1);
            c.insert(ip(1), mac(1), t0);
            let t1 = t0 + Duration::from_secs(30);
            c.resolve(ip(1), t1);
            assert_eq!(c.poll(t1 + Duration::from_secs(4)), None);
            let mut t = t1 + Duration::from_secs(5);
            for _ in 0..3 {
                assert_eq!(c.poll(t), Some(PollAction::Probe(ip(1), mac(1))));
                assert_eq!(c.poll(t), None);
                assert_eq!(c.state(ip(1), t), Some(NeighborState::Probe));
                // Still used while probed.
                assert_eq!(c.resolve(ip(1), t), Some(mac(1)));
                t += Duration::from_secs(1);
            }
            assert_eq!(c.poll(t), Some(PollAction::Failed(ip(1))));
            assert_eq!(c.state(ip(1), t), Some(NeighborState::Failed));
            assert_eq!(c.resolve(ip(1), t), None);
            assert_eq!(c.next_poll_at(), None);
        }

        #[test]
        fn probes_of_two_neighbours_fire_at_their_own_times() {
            // The poll skips the probing list until its earliest probe is
            // due; a probe started after a poll that found none due, and
            // a probe re-armed, must still fire on time.
            let mut c = small();
            let t0 = Instant::from_secs(1);
            c.insert(ip(1), mac(1), t0);
            c.insert(ip(2), mac(2), t0);
            let t1 = t0 + Duration::from_secs(30);
            let s = Duration::from_secs(1);
            c.resolve(ip(1), t1);
            assert_eq!(c.poll(t1 + s), None);
            c.resolve(ip(2), t1 + 2 * s);
            assert_eq!(c.poll(t1 + 4 * s), None);
            let t = t1 + 5 * s;
            assert_eq!(c.poll(t), Some(PollAction::Probe(ip(1), mac(1))));
            assert_eq!(c.poll(t), None);
            assert_eq!(c.poll(t + s - Duration::from_micros(1)), None);
            assert_eq!(c.poll(t + s), Some(PollAction::Probe(ip(1), mac(1))));
            assert_eq!(c.poll(t + 2 * s), Some(PollAction::Probe(ip(1), mac(1))));
            assert_eq!(c.poll(t + 2 * s), Some(PollAction::Probe(ip(2), mac(2))));
            assert_eq!(c.poll(t + 2 * s), None);
        }

        #[test]
        fn a_probe_started_after_a_poll_may_be_due_before_the_others() {
            // DELAY shorter than the retry interval: a neighbour that turns
            // STALE after another's probe went out is due first.
            let mut c = ArpCache::new(ArpConfig {
                capacity: 8,
                queue_slots: 4,
                slot_size: 64,
                max_pending: 2,
                max_probing: 2,
                delay_first_probe: Duration::from_millis(100),
                retry_interval: Duration::from_secs(1),
                ..ArpConfig::default()
            });
            let t0 = Instant::from_secs(1);
            c.insert(ip(1), mac(1), t0);
            c.insert(ip(2), mac(2), t0);
            let t1 = t0 + c.config().reachable_time;
            let ms = Duration::from_millis(1);
            c.resolve(ip(1), t1);
            let t = t1 + 100 * ms;
            assert_eq!(c.poll(t), Some(PollAction::Probe(ip(1), mac(1))));
            // Nothing due: the next look is at ip(1)'s retry, t + 1 s.
            assert_eq!(c.poll(t + ms), None);
            c.resolve(ip(2), t + ms);
            assert_eq!(c.poll(t + 100 * ms), None);
            assert_eq!(c.poll(t + 101 * ms), Some(PollAction::Probe(ip(2), mac(2))));
        }

        #[test]
        fn confirmation_during_delay_avoids_probes() {
            let mut c = small();
            let t0 = Instant::from_secs(1);
            c.insert(ip(1), mac(1), t0);
            let t1 = t0 + Duration::from_secs(31);
            c.resolve(ip(1), t1);
            assert!(c.confirm(ip(1), t1 + Duration::from_secs(1)));
            assert_eq!(c.poll(t1 + Duration::from_secs(5)), None);
            assert_eq!(
                c.state(ip(1), t1 + Duration::from_secs(5)),
                Some(NeighborState::Reachable)
            );
            assert!(!c.is_probing(ip(1)));
            assert_eq!(c.next_poll_at(), None);
        }

        #[test]
        fn probing_list_full_leaves_entries_stale_but_usable() {
            let mut c = small();
            let t0 = Instant::from_secs(1);
            for n in 1..=3 {
                c.learn_stale(ip(n), mac(n as u8), t0);
            }
            for n in 1..=3 {
                assert_eq!(c.resolve(ip(n), t0), Some(mac(n as u8)));
            }
            assert!(c.is_probing(ip(1)) && c.is_probing(ip(2)));
            assert_eq!(c.state(ip(3), t0), Some(NeighborState::Stale));
        }
    }

    mod pending {
        use super::*;

        #[test]
        fn queue_flushes_in_order() {
            let mut c = small();
            let now = Instant::ZERO;
            let fresh = Ok(Enqueued::NewResolution { evicted: 0 });
            assert_eq!(
                c.enqueue(now, ip(5), 3, |b| b.copy_from_slice(b"one")),
                fresh
            );
            assert_eq!(
                c.enqueue(now, ip(5), 3, |b| b.copy_from_slice(b"two")),
                Ok(Enqueued::Waiting)
            );
            assert_eq!(
                c.enqueue(now, ip(6), 5, |b| b.copy_from_slice(b"other")),
                fresh
            );
            assert_eq!(
                c.enqueue(now, ip(5), 5, |b| b.copy_from_slice(b"three")),
                Ok(Enqueued::Waiting)
            );
            assert_eq!(c.queued(), 4);
            let mut seen: Vec<Vec<u8>> = Vec::new();
            assert_eq!(c.flush(ip(5), |b| seen.push(b.to_vec())), 3);
            assert_eq!(
                seen,
                vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
            );
            assert!(!c.is_pending(ip(5)));
            assert!(c.is_pending(ip(6)));
            assert_eq!(c.queued(), 1);
            assert_eq!(c.flush(ip(5), |_| panic!("nothing left")), 0);
            let later = now + Duration::from_secs(5);
            assert_eq!(c.next_poll_at(), Some(now + Duration::from_secs(1)));
            assert_eq!(c.poll(later), Some(PollAction::Request(ip(6))));
            assert_eq!(c.flush(ip(6), |_| {}), 1);
            assert_eq!(c.next_poll_at(), None);
            assert_eq!(c.poll(later), None);
            assert_eq!(c.enqueue(later, ip(7), 1, |b| b[0] = 7), fresh);
            assert_eq!(c.next_poll_at(), Some(later + Duration::from_secs(1)));
        }

        #[test]
        fn queue_overflow_per_destination_and_too_large() {
            let mut c = ArpCache::new(ArpConfig {
                queue_slots: 8,
                queue_per_dest: 3,
                slot_size: 64,
                ..ArpConfig::default()
            });
            let now = Instant::ZERO;
            for _ in 0..3 {
                assert!(c.enqueue(now, ip(1), 10, |_| {}).is_ok());
            }
            assert_eq!(
                c.enqueue(now, ip(1), 10, |_| panic!()),
                Err(QueueError::Full)
            );
            // Another address still gets slots.
            assert!(c.enqueue(now, ip(2), 10, |_| {}).is_ok());
            assert_eq!(
                c.enqueue(now, ip(2), 65, |_| panic!()),
                Err(QueueError::TooLarge)
            );
        }

        #[test]
        fn full_table_evicts_the_oldest_never_resolved() {
            let mut c = small();
            let t0 = Instant::ZERO;
            c.enqueue(t0, ip(1), 1, |_| {}).unwrap();
            c.enqueue(t0 + Duration::from_millis(1), ip(2), 1, |_| {})
                .unwrap();
            assert_eq!(
                c.enqueue(t0 + Duration::from_millis(2), ip(3), 1, |_| {}),
                Ok(Enqueued::NewResolution { evicted: 1 })
            );
            assert!(!c.is_pending(ip(1)));
            assert!(c.is_pending(ip(2)) && c.is_pending(ip(3)));
            assert_eq!(c.queued(), 2);
        }

        #[test]
        fn known_neighbours_are_not_evicted_nor_rate_limited() {
            let mut c = ArpCache::new(ArpConfig {
                max_pending: 2,
                request_burst: 2,
                requests_per_sec: 1,
                ..ArpConfig::default()
            });
            let t0 = Instant::from_secs(100);
            // ip(1) resolved before, then failed its probes.
            c.insert(ip(1), mac(1), Instant::ZERO);
            c.resolve(ip(1), t0);
            let mut t = t0;
            while c.state(ip(1), t) != Some(NeighborState::Failed) {
                t += Duration::from_secs(1);
                while c.poll(t).is_some() {}
            }
            // Burst spent on unknown addresses.
            c.enqueue(t, ip(10), 1, |_| {}).unwrap();
            c.enqueue(t, ip(11), 1, |_| {}).unwrap();
            assert_eq!(
                c.enqueue(t, ip(12), 1, |_| panic!()),
                Err(QueueError::RateLimited)
            );
            // The known one gets in, evicting an unknown one, with no token.
            assert_eq!(
                c.enqueue(t, ip(1), 1, |_| {}),
                Ok(Enqueued::NewResolution { evicted: 1 })
            );
            // One second later a token is back; an unknown address evicts
            // the other unknown one, never the known one.
            let t2 = t + Duration::from_secs(1);
            assert!(c.enqueue(t2, ip(13), 1, |_| {}).is_ok());
            assert!(c.is_pending(ip(1)));
            let t3 = t2 + Duration::from_secs(1);
            assert!(c.enqueue(t3, ip(14), 1, |_| {}).is_ok());
            assert!(c.is_pending(ip(1)));
            assert!(c.is_pending(ip(14)));
        }

        #[test]
        fn retries_then_gives_up() {
            let mut c = small();
            let t0 = Instant::from_secs(100);
            c.enqueue(t0, ip(7), 10, |_| {}).unwrap();
            c.enqueue(t0, ip(7), 10, |_| {}).unwrap();
            assert_eq!(c.next_poll_at(), Some(t0 + Duration::from_secs(1)));
            assert_eq!(c.poll(t0 + Duration::from_millis(999)), None);
            let t1 = t0 + Duration::from_secs(1);
            assert_eq!(c.poll(t1), Some(PollAction::Request(ip(7))));
            assert_eq!(c.poll(t1), None);
            let t2 = t0 + Duration::from_secs(2);
            assert_eq!(c.poll(t2), Some(PollAction::Request(ip(7))));
            assert_eq!(c.poll(t2), None);
            let t3 = t0 + Duration::from_secs(3);
            assert_eq!(c.poll(t3), Some(PollAction::GaveUp(ip(7), 2)));
            assert_eq!(c.poll(t3), None);
            assert_eq!(c.queued(), 0);
            assert_eq!(c.next_poll_at(), None);
            assert!(!c.is_pending(ip(7)));
        }

        #[test]
        fn slots_are_reused_after_give_up() {
            let mut c = small();
            let mut now = Instant::ZERO;
            for round in 0..10 {
                for _ in 0..4 {
                    c.enqueue(now, ip(round), 8, |b| b.fill(round as u8))
                        .unwrap();
                }
                now += Duration::from_secs(10);
                for _ in 0..4 {
                    while c.poll(now).is_some() {}
                    now += Duration::from_secs(1);
                }
                assert_eq!(c.queued(), 0, "{round}");
            }
        }
    }
}

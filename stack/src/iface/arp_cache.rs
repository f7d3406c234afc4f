//! The ARP cache: resolved neighbours, pending resolutions and the packets
//! waiting on them.
//!
//! * Resolved entries live in a fixed-size set-associative hash table
//!   (buckets of [`WAYS`] entries): a lookup hashes the address and scans one
//!   bucket, so it is O(1) whatever the table holds. When a bucket is full
//!   the entry closest to expiry is replaced. Entries expire `entry_ttl`
//!   after they were learned; expired entries are treated as absent.
//! * Pending resolutions (at most `max_pending`) remember when the next
//!   request is due and how many were sent; after `max_tries` requests with
//!   no answer the resolution gives up and its packets are dropped.
//! * Waiting packets are whole frames kept in preallocated slots
//!   (`queue_slots` × `slot_size` bytes, allocated once), chained per
//!   pending address in arrival order, so a resolution flushes them in order.
//!
//! Nothing here allocates after construction.

use crate::time::{Duration, Instant};
use crate::wire::ethernet::EthernetAddress;
use crate::wire::ipv4::Ipv4Address;

/// Entries per hash bucket.
pub const WAYS: usize = 4;

/// Sizes and timers of an [`ArpCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpConfig {
    /// Resolved entries the table can hold (rounded up to a power of two,
    /// at least [`WAYS`]).
    pub capacity: usize,
    /// How long a learned entry is valid.
    pub entry_ttl: Duration,
    /// Time between requests for one unresolved address.
    pub retry_interval: Duration,
    /// Requests sent before a resolution gives up.
    pub max_tries: u8,
    /// Resolutions in progress at once.
    pub max_pending: usize,
    /// Frames that can wait for resolution, over all addresses.
    pub queue_slots: usize,
    /// Bytes per waiting frame (a whole Ethernet frame).
    pub slot_size: usize,
}

impl Default for ArpConfig {
    fn default() -> ArpConfig {
        ArpConfig {
            capacity: 1024,
            entry_ttl: Duration::from_secs(60),
            retry_interval: Duration::from_secs(1),
            max_tries: 3,
            max_pending: 16,
            queue_slots: 64,
            slot_size: 1514,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    ip: Ipv4Address,
    mac: EthernetAddress,
    expires_at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    ip: Ipv4Address,
    /// Requests sent so far.
    tries: u8,
    /// When the next request (or the give-up) is due.
    next_at: Instant,
    /// First and last waiting frame.
    head: Option<u16>,
    tail: Option<u16>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    len: u16,
    next: Option<u16>,
}

/// What [`ArpCache::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued, and a new resolution started: send a request now.
    NewResolution,
    /// Queued behind a resolution already in progress.
    Waiting,
}

/// Why [`ArpCache::enqueue`] could not queue a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// Every slot holds a frame, or too many resolutions are pending.
    Full,
    /// The frame is larger than a slot.
    TooLarge,
}

/// One action [`ArpCache::poll`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollAction {
    /// Send another request for this address.
    Request(Ipv4Address),
    /// Resolution of this address gave up; this many frames were dropped.
    GaveUp(Ipv4Address, usize),
}

/// ARP table, pending resolutions and waiting frames. See the module docs.
#[derive(Debug)]
pub struct ArpCache {
    config: ArpConfig,
    table: Vec<Option<Entry>>,
    bucket_mask: usize,
    pending: Vec<Option<Pending>>,
    /// How many of `pending` are `Some`: the per-tick poll returns at once
    /// when none is.
    active: usize,
    slots: Vec<Slot>,
    data: Vec<u8>,
    free: Vec<u16>,
}

/// Fibonacci hashing of the address bits.
fn hash(ip: Ipv4Address) -> u32 {
    u32::from(ip).wrapping_mul(0x9e37_79b9).rotate_left(16)
}

impl ArpCache {
    /// Allocates the table, the pending list and the frame slots.
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

    /// The MAC of `ip` when known and not expired.
    pub fn lookup(&self, ip: Ipv4Address, now: Instant) -> Option<EthernetAddress> {
        self.table[self.bucket(ip)]
            .iter()
            .flatten()
            .find(|e| e.ip == ip && e.expires_at > now)
            .map(|e| e.mac)
    }

    /// True when `ip` has a live entry (RFC 826's "merge" test).
    pub fn contains(&self, ip: Ipv4Address, now: Instant) -> bool {
        self.lookup(ip, now).is_some()
    }

    /// Learns or refreshes `ip → mac`, valid for `entry_ttl` from `now`.
    /// When the bucket is full the entry nearest to expiry is replaced.
    pub fn insert(&mut self, ip: Ipv4Address, mac: EthernetAddress, now: Instant) {
        let entry = Entry {
            ip,
            mac,
            expires_at: now + self.config.entry_ttl,
        };
        let range = self.bucket(ip);
        let bucket = &mut self.table[range];
        if let Some(slot) = bucket
            .iter_mut()
            .find(|s| matches!(s, Some(e) if e.ip == ip))
        {
            *slot = Some(entry);
            return;
        }
        if let Some(slot) = bucket
            .iter_mut()
            .find(|s| s.is_none_or(|e| e.expires_at <= now))
        {
            *slot = Some(entry);
            return;
        }
        let victim = bucket
            .iter_mut()
            .min_by_key(|s| s.map_or(Instant::ZERO, |e| e.expires_at))
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

    /// Live entries (a scan of the whole table; for tests and diagnostics).
    pub fn len(&self, now: Instant) -> usize {
        self.table
            .iter()
            .flatten()
            .filter(|e| e.expires_at > now)
            .count()
    }

    /// True when no entry is live.
    pub fn is_empty(&self, now: Instant) -> bool {
        self.len(now) == 0
    }

    /// True when a resolution of `ip` is in progress.
    pub fn is_pending(&self, ip: Ipv4Address) -> bool {
        self.pending_index(ip).is_some()
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

    /// Queues a frame of `len` bytes for `next_hop`, written in place by
    /// `write` (which gets exactly `len` bytes). Starts a resolution when
    /// none is pending: the caller then sends the first request (counted as
    /// try 1, the next is due `retry_interval` later).
    ///
    /// # Errors
    /// [`QueueError::TooLarge`] when `len` exceeds a slot;
    /// [`QueueError::Full`] when no slot is free or a new resolution would
    /// exceed `max_pending`. `write` is not called then.
    pub fn enqueue(
        &mut self,
        now: Instant,
        next_hop: Ipv4Address,
        len: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<Enqueued, QueueError> {
        if len > self.config.slot_size {
            return Err(QueueError::TooLarge);
        }
        let (pi, fresh) = match self.pending_index(next_hop) {
            Some(i) => (i, false),
            None => match self.pending.iter().position(Option::is_none) {
                Some(i) => (i, true),
                None => return Err(QueueError::Full),
            },
        };
        let Some(slot) = self.free.pop() else {
            return Err(QueueError::Full);
        };
        let start = usize::from(slot) * self.config.slot_size;
        write(&mut self.data[start..start + len]);
        self.slots[usize::from(slot)] = Slot {
            len: len as u16,
            next: None,
        };
        if fresh {
            self.active += 1;
            self.pending[pi] = Some(Pending {
                ip: next_hop,
                tries: 1,
                next_at: now + self.config.retry_interval,
                head: Some(slot),
                tail: Some(slot),
            });
            return Ok(Enqueued::NewResolution);
        }
        let p = self.pending[pi].as_mut().expect("index found above");
        match p.tail {
            Some(t) => self.slots[usize::from(t)].next = Some(slot),
            None => p.head = Some(slot),
        }
        p.tail = Some(slot);
        Ok(Enqueued::Waiting)
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

    /// Runs the retry timers: returns the next action due at `now`, or
    /// `None`. A due resolution either asks for another request (and is
    /// rescheduled `retry_interval` later) or, after `max_tries` requests,
    /// gives up and drops its frames. Call until it returns `None`; each
    /// resolution yields at most one action per call sequence when
    /// `retry_interval` is non-zero, so a caller loop bounded by
    /// `max_pending` sees them all.
    pub fn poll(&mut self, now: Instant) -> Option<PollAction> {
        if self.active == 0 {
            return None;
        }
        let pi = self
            .pending
            .iter()
            .position(|p| matches!(p, Some(p) if p.next_at <= now))?;
        let p = self.pending[pi].as_mut()?;
        if p.tries >= self.config.max_tries {
            let ip = p.ip;
            let dropped = self.give_up(pi);
            Some(PollAction::GaveUp(ip, dropped))
        } else {
            p.tries += 1;
            p.next_at = now + self.config.retry_interval;
            Some(PollAction::Request(p.ip))
        }
    }

    /// When [`poll`](Self::poll) next has something to do, if ever.
    pub fn next_poll_at(&self) -> Option<Instant> {
        if self.active == 0 {
            return None;
        }
        self.pending.iter().flatten().map(|p| p.next_at).min()
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
            ..ArpConfig::default()
        })
    }

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
    fn entries_expire() {
        let mut c = small();
        let t0 = Instant::from_secs(1);
        c.insert(ip(1), mac(1), t0);
        let ttl = c.config().entry_ttl;
        assert!(c.contains(ip(1), t0 + ttl - Duration::from_micros(1)));
        assert!(!c.contains(ip(1), t0 + ttl));
        // A refresh extends the life.
        c.insert(ip(1), mac(1), t0 + Duration::from_secs(30));
        assert!(c.contains(ip(1), t0 + ttl));
    }

    #[test]
    fn bounded_and_evicts_nearest_expiry() {
        let mut c = small();
        // Far more addresses than capacity: the table never grows and the
        // most recent insert is always found.
        for n in 0..1000u32 {
            let now = Instant::from_millis(u64::from(n));
            c.insert(ip(n), mac(n as u8), now);
            assert_eq!(c.lookup(ip(n), now), Some(mac(n as u8)));
            assert!(c.len(now) <= 8);
        }
    }

    #[test]
    fn queue_flushes_in_order() {
        let mut c = small();
        let now = Instant::ZERO;
        assert_eq!(
            c.enqueue(now, ip(5), 3, |b| b.copy_from_slice(b"one")),
            Ok(Enqueued::NewResolution)
        );
        assert_eq!(
            c.enqueue(now, ip(5), 3, |b| b.copy_from_slice(b"two")),
            Ok(Enqueued::Waiting)
        );
        assert_eq!(
            c.enqueue(now, ip(6), 5, |b| b.copy_from_slice(b"other")),
            Ok(Enqueued::NewResolution)
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
        // ip(6) is still pending: its retry is due; once flushed, nothing is.
        let later = now + Duration::from_secs(5);
        assert_eq!(c.next_poll_at(), Some(now + Duration::from_secs(1)));
        assert_eq!(c.poll(later), Some(PollAction::Request(ip(6))));
        assert_eq!(c.flush(ip(6), |_| {}), 1);
        assert_eq!(c.next_poll_at(), None);
        assert_eq!(c.poll(later), None);
        // A new resolution after all ended is seen again.
        assert_eq!(
            c.enqueue(later, ip(7), 1, |b| b[0] = 7),
            Ok(Enqueued::NewResolution)
        );
        assert_eq!(c.next_poll_at(), Some(later + Duration::from_secs(1)));
    }

    #[test]
    fn queue_overflow_and_too_large() {
        let mut c = small();
        let now = Instant::ZERO;
        for _ in 0..4 {
            assert!(c.enqueue(now, ip(1), 10, |_| {}).is_ok());
        }
        assert_eq!(
            c.enqueue(now, ip(1), 10, |_| panic!()),
            Err(QueueError::Full)
        );
        assert_eq!(
            c.enqueue(now, ip(2), 65, |_| panic!()),
            Err(QueueError::TooLarge)
        );
        c.flush(ip(1), |_| {});
        // Pending table limit: two resolutions at most.
        assert!(c.enqueue(now, ip(1), 1, |_| {}).is_ok());
        assert!(c.enqueue(now, ip(2), 1, |_| {}).is_ok());
        assert_eq!(
            c.enqueue(now, ip(3), 1, |_| panic!()),
            Err(QueueError::Full)
        );
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

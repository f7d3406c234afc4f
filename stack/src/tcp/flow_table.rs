//! The per-core flow table: 4-tuple → slab index, and the listener table.
//!
//! Open addressing with linear probing over a power-of-two array of at least
//! twice the socket count, so the load factor never passes one half.
//! Deletion shifts later entries of the same probe run backwards (no
//! tombstones). The hash is a keyed multiply-xorshift mix with a per-run seed,
//! so an attacker who cannot see the seed cannot aim flows at one bucket.
//! Lookup cost does not grow with the number of connections.

use super::types::SocketId;
use crate::wire::ipv4::Ipv4Address;

/// The 4-tuple of a connection, seen from this host: the one
/// [`FourTuple`](crate::wire::FourTuple) type, named for its use here.
pub(crate) type FlowKey = crate::wire::FourTuple;

#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The keyed hash of a flow key.
#[inline]
pub(crate) fn flow_hash(seed: u64, key: &FlowKey) -> u64 {
    let a = (u64::from(u32::from(key.local_ip)) << 32) | u64::from(u32::from(key.remote_ip));
    let b = (u64::from(key.local_port) << 16) | u64::from(key.remote_port);
    mix(mix(a ^ seed).wrapping_add(b) ^ seed.rotate_left(29))
}

/// The table is full (more entries than it was sized for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableFull;

/// One bucket: two words, all zero when empty, so that the table is
/// allocated zeroed (`calloc`: the kernel commits a page on first touch) and
/// a table sized for a million flows costs nothing until flows arrive.
/// Words: the low 32 bits of the key's hash (its home bucket and a tag that
/// rules out most other keys without a look at the slab), and the slab
/// index + 1 (0: empty).
///
/// The key itself is not stored: the slab holds it (a TCB's `key`, a
/// TIME-WAIT entry's `key`), and every lookup that matches a tag confirms
/// the key there through the `key_of` callback. That slab entry is the one
/// the caller touches next anyway. A bucket is 8 bytes where a copy of the
/// key and the id took 20.
type Bucket = [u32; 2];

/// 4-tuple → slab index, sized at start, open addressing, pages touched
/// only when used. The table stores indices; the caller's slab holds the
/// keys and the generations.
#[derive(Debug)]
pub(crate) struct FlowTable {
    slots: Vec<Bucket>,
    mask: usize,
    len: usize,
    max: usize,
    seed: u64,
}

fn is_empty_bucket(b: &Bucket) -> bool {
    b[1] == 0
}

impl FlowTable {
    /// A table for up to `max_entries` flows (sized to a power of two at
    /// least twice that), hashed with `seed`. The buckets are allocated
    /// zeroed and not touched: memory is committed as flows arrive.
    ///
    /// # Panics
    /// When the table would need more than 2^32 buckets (the home bucket is
    /// kept in a 32-bit tag; configuration caps entries far below).
    pub(crate) fn new(max_entries: usize, seed: u64) -> FlowTable {
        let size = (max_entries.max(1) * 2).next_power_of_two();
        assert!(size <= 1 << 32, "flow table too large");
        FlowTable {
            slots: vec![[0u32; 2]; size],
            mask: size - 1,
            len: 0,
            max: max_entries.max(1),
            seed,
        }
    }

    /// Bytes one bucket takes (the table has at least two per entry).
    pub(crate) const BUCKET_BYTES: usize = core::mem::size_of::<Bucket>();

    /// Entries stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the table holds its maximum.
    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.max
    }

    /// Number of buckets.
    #[cfg(test)]
    pub(crate) fn buckets(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn tag(&self, key: &FlowKey) -> u32 {
        flow_hash(self.seed, key) as u32
    }

    /// The bucket holding `key` (`key_of(index)` is the key the slab holds
    /// at `index`).
    #[inline]
    fn find(&self, key: &FlowKey, key_of: impl Fn(u32) -> FlowKey) -> Option<usize> {
        let tag = self.tag(key);
        let mut i = tag as usize & self.mask;
        // Bounded: the table is never more than half full.
        for _ in 0..self.slots.len() {
            let b = self.slots[i];
            if is_empty_bucket(&b) {
                return None;
            }
            if b[0] == tag && key_of(b[1] - 1) == *key {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// The slab index of `key`, if any.
    #[inline]
    pub(crate) fn get(&self, key: &FlowKey, key_of: impl Fn(u32) -> FlowKey) -> Option<u32> {
        self.find(key, key_of).map(|i| self.slots[i][1] - 1)
    }

    /// Inserts or replaces the entry for `key`, which maps to slab `index`
    /// (whose key need not be written yet: `key_of` is asked only about the
    /// entries already in the table).
    ///
    /// # Errors
    /// [`TableFull`] when the table already holds its maximum.
    pub(crate) fn insert(
        &mut self,
        key: FlowKey,
        index: u32,
        key_of: impl Fn(u32) -> FlowKey,
    ) -> Result<(), TableFull> {
        debug_assert!(index < u32::MAX, "index + 1 must fit a word");
        let tag = self.tag(&key);
        if let Some(i) = self.find(&key, key_of) {
            self.slots[i] = [tag, index + 1];
            return Ok(());
        }
        if self.len >= self.max {
            return Err(TableFull);
        }
        let mut i = tag as usize & self.mask;
        while !is_empty_bucket(&self.slots[i]) {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = [tag, index + 1];
        self.len += 1;
        Ok(())
    }

    /// Removes `key`; returns its slab index if it was present.
    pub(crate) fn remove(&mut self, key: &FlowKey, key_of: impl Fn(u32) -> FlowKey) -> Option<u32> {
        let hole = self.find(key, key_of)?;
        let index = self.slots[hole][1] - 1;
        self.remove_at(hole);
        Some(index)
    }

    /// Removes `key` only if it maps to slab `index` (a newer connection
    /// may have taken the tuple over); returns whether it did. A slab index
    /// is in the table at most once, so the bucket holding `key`'s tag and
    /// `index` is `key`'s: no look at the slab.
    pub(crate) fn remove_if(&mut self, key: &FlowKey, index: u32) -> bool {
        let want = [self.tag(key), index + 1];
        let mut i = want[0] as usize & self.mask;
        for _ in 0..self.slots.len() {
            let b = self.slots[i];
            if is_empty_bucket(&b) {
                return false;
            }
            if b == want {
                self.remove_at(i);
                return true;
            }
            i = (i + 1) & self.mask;
        }
        false
    }

    /// Empties bucket `hole` and closes the gap.
    fn remove_at(&mut self, mut hole: usize) {
        self.slots[hole] = [0; 2];
        self.len -= 1;
        // Backward-shift deletion: move later entries of the run into the
        // hole when their home position allows it. An entry's home is in
        // its tag.
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            if is_empty_bucket(&self.slots[j]) {
                break;
            }
            let home = self.slots[j][0] as usize & self.mask;
            // The entry at j may move to `hole` when `home` is not in the
            // cyclic interval (hole, j].
            let dist_home = j.wrapping_sub(home) & self.mask;
            let dist_hole = j.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.slots[hole] = self.slots[j];
                self.slots[j] = [0; 2];
                hole = j;
            }
        }
    }
}

/// Listening sockets by (local address, port). An unspecified local address
/// (0.0.0.0) matches every local address; an exact address wins.
#[derive(Debug)]
pub(crate) struct ListenerTable {
    entries: Vec<(Ipv4Address, u16, SocketId)>,
}

impl ListenerTable {
    /// A table for up to `capacity` listeners (grows if needed; listeners
    /// are set up by the application, not per packet).
    pub(crate) fn new(capacity: usize) -> ListenerTable {
        ListenerTable {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// The listener for a segment to `ip:port`.
    pub(crate) fn lookup(&self, ip: Ipv4Address, port: u16) -> Option<SocketId> {
        let mut wildcard = None;
        for &(a, p, id) in &self.entries {
            if p == port {
                if a == ip {
                    return Some(id);
                }
                if a.is_unspecified() {
                    wildcard = Some(id);
                }
            }
        }
        wildcard
    }

    /// True when exactly `ip:port` is taken (or overlaps a wildcard).
    pub(crate) fn conflicts(&self, ip: Ipv4Address, port: u16) -> bool {
        self.entries
            .iter()
            .any(|&(a, p, _)| p == port && (a == ip || a.is_unspecified() || ip.is_unspecified()))
    }

    /// Adds a listener.
    pub(crate) fn insert(&mut self, ip: Ipv4Address, port: u16, id: SocketId) {
        self.entries.push((ip, port, id));
    }

    /// Removes the listener `id`.
    pub(crate) fn remove(&mut self, id: SocketId) {
        self.entries.retain(|&(_, _, i)| i != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rng;

    fn key(n: u32) -> FlowKey {
        FlowKey::new(
            Ipv4Address::new(10, 0, 0, 1),
            80,
            Ipv4Address::from(0x0a01_0000 + (n >> 10)),
            (n & 0x3ff) as u16 + 1024,
        )
    }

    /// A slab whose index `n` holds `key(n)`.
    fn slab(n: u32) -> FlowKey {
        key(n)
    }

    #[test]
    fn insert_get_remove() {
        let mut t = FlowTable::new(100, 7);
        assert!(t.buckets() >= 200 && t.buckets().is_power_of_two());
        for n in 0..100 {
            t.insert(key(n), n, slab).unwrap();
        }
        assert_eq!(t.insert(key(1000), 1000, slab), Err(TableFull));
        for n in 0..100 {
            assert_eq!(t.get(&key(n), slab), Some(n));
        }
        assert_eq!(t.get(&key(500), slab), None);
        for n in (0..100).step_by(2) {
            assert_eq!(t.remove(&key(n), slab), Some(n));
        }
        for n in 0..100 {
            let want = (n % 2 == 1).then_some(n);
            assert_eq!(t.get(&key(n), slab), want, "{n}");
        }
        assert_eq!(t.len(), 50);
    }

    #[test]
    fn remove_if_leaves_a_newer_owner() {
        // Slab index 1 held key(1), then index 2 took the tuple over.
        let keys = [key(0), key(1), key(1)];
        let key_of = |i: u32| keys[i as usize];
        let mut t = FlowTable::new(8, 7);
        t.insert(key(1), 1, key_of).unwrap();
        t.insert(key(1), 2, key_of).unwrap();
        assert_eq!(t.len(), 1);
        assert!(!t.remove_if(&key(1), 1));
        assert!(!t.remove_if(&key(2), 2));
        assert_eq!(t.get(&key(1), key_of), Some(2));
        assert!(t.remove_if(&key(1), 2));
        assert_eq!((t.get(&key(1), key_of), t.len()), (None, 0));
    }

    #[test]
    fn a_tag_match_is_confirmed_against_the_slab() {
        // The tag matches, but the slab holds another key at the index
        // (as after a tag collision): the table must not claim the entry.
        let mut t = FlowTable::new(8, 7);
        t.insert(key(1), 0, slab).unwrap();
        assert_eq!(t.get(&key(1), |_| key(9)), None);
        assert_eq!(t.get(&key(1), |_| key(1)), Some(0));
        assert_eq!(t.remove(&key(1), |_| key(9)), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn random_churn_matches_model() {
        let mut rng = Rng::new(11);
        // A small table so that probe runs form and backward shifts move
        // entries; slab index n holds key(n).
        let mut t = FlowTable::new(64, 99);
        let mut model = std::collections::HashMap::new();
        for step in 0..20_000u32 {
            let n = rng.range(0, 200) as u32;
            let k = key(n);
            if rng.chance(0.5) && model.len() < 64 {
                t.insert(k, n, slab).unwrap();
                model.insert(k, n);
            } else if rng.chance(0.5) {
                assert_eq!(t.remove(&k, slab), model.remove(&k));
            } else {
                assert_eq!(t.remove_if(&k, n), model.remove(&k).is_some());
            }
            assert_eq!(t.len(), model.len());
            if step % 97 == 0 {
                for n in 0..200 {
                    assert_eq!(t.get(&key(n), slab), model.get(&key(n)).copied());
                }
            }
        }
    }

    #[test]
    fn a_bucket_is_two_words() {
        // docs/benchmarks.md counts two 8-byte buckets per connection.
        assert_eq!(FlowTable::BUCKET_BYTES, 8);
    }

    #[test]
    fn hash_depends_on_seed() {
        let k = key(3);
        assert_ne!(flow_hash(1, &k), flow_hash(2, &k));
    }

    #[test]
    fn listeners_exact_beats_wildcard() {
        let mut l = ListenerTable::new(4);
        let a = Ipv4Address::new(10, 0, 0, 1);
        l.insert(Ipv4Address::UNSPECIFIED, 80, SocketId::new(1, 0));
        l.insert(a, 80, SocketId::new(2, 0));
        assert_eq!(l.lookup(a, 80), Some(SocketId::new(2, 0)));
        assert_eq!(
            l.lookup(Ipv4Address::new(10, 0, 0, 2), 80),
            Some(SocketId::new(1, 0))
        );
        assert_eq!(l.lookup(a, 81), None);
        assert!(l.conflicts(a, 80));
        l.remove(SocketId::new(2, 0));
        assert_eq!(l.lookup(a, 80), Some(SocketId::new(1, 0)));
    }
}

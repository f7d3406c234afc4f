//! The per-core flow table: 4-tuple → [`SocketId`], and the listener table.
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

/// One bucket: five words, all zero when empty, so that the table is
/// allocated zeroed (`calloc`: the kernel commits a page on first touch) and
/// a table sized for a million flows costs nothing until flows arrive.
/// Words: local address, remote address, local port << 16 | remote port,
/// slab index + 1 (0: empty), generation.
type Bucket = [u32; 5];

/// 4-tuple → socket id, sized at start, open addressing, pages touched only
/// when used.
#[derive(Debug)]
pub(crate) struct FlowTable {
    slots: Vec<Bucket>,
    mask: usize,
    len: usize,
    max: usize,
    seed: u64,
}

fn encode(key: &FlowKey, id: SocketId) -> Bucket {
    [
        u32::from(key.local_ip),
        u32::from(key.remote_ip),
        (u32::from(key.local_port) << 16) | u32::from(key.remote_port),
        id.index() + 1,
        id.generation(),
    ]
}

fn decode_key(b: &Bucket) -> FlowKey {
    FlowKey::new(
        Ipv4Address::from(b[0]),
        (b[2] >> 16) as u16,
        Ipv4Address::from(b[1]),
        b[2] as u16,
    )
}

fn decode_id(b: &Bucket) -> SocketId {
    SocketId::new(b[3] - 1, b[4])
}

fn is_empty_bucket(b: &Bucket) -> bool {
    b[3] == 0
}

fn same_key(b: &Bucket, key: &FlowKey) -> bool {
    b[0] == u32::from(key.local_ip)
        && b[1] == u32::from(key.remote_ip)
        && b[2] == (u32::from(key.local_port) << 16) | u32::from(key.remote_port)
}

impl FlowTable {
    /// A table for up to `max_entries` flows (sized to a power of two at
    /// least twice that), hashed with `seed`. The buckets are allocated
    /// zeroed and not touched: memory is committed as flows arrive.
    pub(crate) fn new(max_entries: usize, seed: u64) -> FlowTable {
        let size = (max_entries.max(1) * 2).next_power_of_two();
        FlowTable {
            slots: vec![[0u32; 5]; size],
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

    fn home(&self, key: &FlowKey) -> usize {
        flow_hash(self.seed, key) as usize & self.mask
    }

    fn find(&self, key: &FlowKey) -> Option<usize> {
        let mut i = self.home(key);
        // Bounded: the table is never more than half full.
        for _ in 0..self.slots.len() {
            let b = &self.slots[i];
            if is_empty_bucket(b) {
                return None;
            }
            if same_key(b, key) {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// The socket of `key`, if any.
    pub(crate) fn get(&self, key: &FlowKey) -> Option<SocketId> {
        self.find(key).map(|i| decode_id(&self.slots[i]))
    }

    /// Inserts or replaces the entry for `key`.
    ///
    /// # Errors
    /// [`TableFull`] when the table already holds its maximum.
    pub(crate) fn insert(&mut self, key: FlowKey, id: SocketId) -> Result<(), TableFull> {
        if let Some(i) = self.find(&key) {
            self.slots[i] = encode(&key, id);
            return Ok(());
        }
        if self.len >= self.max {
            return Err(TableFull);
        }
        let mut i = self.home(&key);
        while !is_empty_bucket(&self.slots[i]) {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = encode(&key, id);
        self.len += 1;
        Ok(())
    }

    /// Removes `key`; returns its socket if it was present.
    pub(crate) fn remove(&mut self, key: &FlowKey) -> Option<SocketId> {
        let hole = self.find(key)?;
        let id = decode_id(&self.slots[hole]);
        self.remove_at(hole);
        Some(id)
    }

    /// Removes `key` only if it maps to `id` (a newer connection may have
    /// taken the tuple over); returns whether it did. One lookup.
    pub(crate) fn remove_if(&mut self, key: &FlowKey, id: SocketId) -> bool {
        match self.find(key) {
            Some(i) if decode_id(&self.slots[i]) == id => {
                self.remove_at(i);
                true
            }
            _ => false,
        }
    }

    /// Empties bucket `hole` and closes the gap.
    fn remove_at(&mut self, mut hole: usize) {
        self.slots[hole] = [0; 5];
        self.len -= 1;
        // Backward-shift deletion: move later entries of the run into the
        // hole when their home position allows it.
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            if is_empty_bucket(&self.slots[j]) {
                break;
            }
            let home = self.home(&decode_key(&self.slots[j]));
            // The entry at j may move to `hole` when `home` is not in the
            // cyclic interval (hole, j].
            let dist_home = j.wrapping_sub(home) & self.mask;
            let dist_hole = j.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.slots[hole] = self.slots[j];
                self.slots[j] = [0; 5];
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

    #[test]
    fn insert_get_remove() {
        let mut t = FlowTable::new(100, 7);
        assert!(t.buckets() >= 200 && t.buckets().is_power_of_two());
        for n in 0..100 {
            t.insert(key(n), SocketId::new(n, 1)).unwrap();
        }
        assert_eq!(t.insert(key(1000), SocketId::new(0, 0)), Err(TableFull));
        for n in 0..100 {
            assert_eq!(t.get(&key(n)), Some(SocketId::new(n, 1)));
        }
        assert_eq!(t.get(&key(500)), None);
        for n in (0..100).step_by(2) {
            assert_eq!(t.remove(&key(n)), Some(SocketId::new(n, 1)));
        }
        for n in 0..100 {
            let want = (n % 2 == 1).then(|| SocketId::new(n, 1));
            assert_eq!(t.get(&key(n)), want, "{n}");
        }
        assert_eq!(t.len(), 50);
    }

    #[test]
    fn remove_if_leaves_a_newer_owner() {
        let mut t = FlowTable::new(8, 7);
        t.insert(key(1), SocketId::new(1, 2)).unwrap();
        assert!(!t.remove_if(&key(1), SocketId::new(1, 1)));
        assert!(!t.remove_if(&key(2), SocketId::new(1, 2)));
        assert_eq!(t.get(&key(1)), Some(SocketId::new(1, 2)));
        assert!(t.remove_if(&key(1), SocketId::new(1, 2)));
        assert_eq!((t.get(&key(1)), t.len()), (None, 0));
    }

    #[test]
    fn random_churn_matches_model() {
        let mut rng = Rng::new(11);
        let mut t = FlowTable::new(64, 99);
        let mut model = std::collections::HashMap::new();
        for step in 0..20_000u32 {
            let k = key(rng.range(0, 200) as u32);
            if rng.chance(0.5) && model.len() < 64 {
                t.insert(k, SocketId::new(step, 0)).unwrap();
                model.insert(k, SocketId::new(step, 0));
            } else {
                assert_eq!(t.remove(&k), model.remove(&k));
            }
            if step % 97 == 0 {
                for n in 0..200 {
                    assert_eq!(t.get(&key(n)), model.get(&key(n)).copied());
                }
            }
        }
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

//! TIME-WAIT as compact entries outside the TCB slab (Linux's
//! `inet_timewait_sock`).
//!
//! When a connection enters TIME-WAIT (RFC 9293 §3.10.7.4: FIN-WAIT-2 or
//! FIN-WAIT-1 receiving the peer's FIN, CLOSING receiving the ACK of ours),
//! the stack copies what TIME-WAIT still needs into a [`TimeWaitEntry`] and
//! frees the TCB slot at once: a server that closes first holds its
//! TIME-WAIT flows in a few dozen bytes each, and they never consume
//! `max_connections`.
//!
//! An entry keeps the 4-tuple, SND.NXT and RCV.NXT (to ACK a retransmitted
//! FIN and to place a new incarnation's ISS above the old sequence space),
//! TS.Recent and its age (PAWS and the RFC 6191 reuse test), our timestamp
//! offset and the window to advertise, and the 2×MSL deadline. Entries are
//! found by a [`FlowTable`] of their own (looked up after the main flow
//! table misses) and expire on a [`CoarseList`] (one shared timeout, so the
//! FIFO stays sorted), checked once a second.
//!
//! The table has its own cap (`MTCP_MAX_TIME_WAIT`, as Linux's
//! `tcp_max_tw_buckets`); past it a connection closes without TIME-WAIT,
//! counted (`time_wait_overflow`).

use super::flow_table::{FlowKey, FlowTable};
use super::timer::CoarseList;
use super::types::SocketId;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// What TIME-WAIT remembers of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeWaitEntry {
    /// The 4-tuple, seen from this host.
    pub key: FlowKey,
    /// SND.NXT (our FIN included): the sequence number of our ACKs.
    pub snd_nxt: SeqNumber,
    /// RCV.NXT (the peer's FIN included).
    pub rcv_nxt: SeqNumber,
    /// TS.Recent (RFC 7323), when timestamps were negotiated.
    pub ts_recent: u32,
    /// Our timestamp offset (TSval = now in ms + offset).
    pub ts_offset: u32,
    /// When TS.Recent was last updated.
    pub ts_recent_secs: u32,
    /// When the entry expires (2×MSL after the last FIN).
    pub deadline: Instant,
    /// The window field of our ACKs (already shifted by our scale).
    pub window: u16,
    /// Timestamps were negotiated.
    pub timestamps: bool,
}

/// One slot of the entry slab: the entry and the generation of the slot.
#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: TimeWaitEntry,
    generation: u32,
}

/// The table is at its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeWaitFull;

/// The per-core TIME-WAIT table.
#[derive(Debug)]
pub(crate) struct TimeWaitTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    index: FlowTable,
    expiry: CoarseList,
    cap: usize,
}

impl TimeWaitTable {
    /// A table for up to `cap` entries. Nothing is touched until entries
    /// arrive (the slab grows within a reserved capacity, the index is
    /// allocated zeroed).
    pub(crate) fn new(cap: usize, seed: u64) -> TimeWaitTable {
        TimeWaitTable {
            slots: Vec::with_capacity(cap),
            free: Vec::with_capacity(cap),
            index: FlowTable::new(cap, seed),
            expiry: CoarseList::new(cap),
            cap,
        }
    }

    /// Bytes one entry costs: its slot, two index buckets (the index is
    /// kept at most half full) and one expiry record.
    pub(crate) const fn entry_bytes() -> usize {
        core::mem::size_of::<Slot>()
            + 2 * FlowTable::BUCKET_BYTES
            + core::mem::size_of::<(SocketId, Instant)>()
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// True when empty.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Records in the expiry list (stale ones included: a restarted entry
    /// leaves its old record behind until it comes due).
    #[cfg(test)]
    pub(crate) fn expiry_records(&self) -> usize {
        self.expiry.len()
    }

    /// The entry for `key`, if one is held.
    pub(crate) fn get(&self, key: &FlowKey) -> Option<&TimeWaitEntry> {
        let i = self.find(key)?;
        Some(&self.slots[i as usize].entry)
    }

    /// The slot index of `key`'s entry (the index confirms the key
    /// against the slot's entry).
    fn find(&self, key: &FlowKey) -> Option<u32> {
        let slots = &self.slots;
        self.index.get(key, |i| slots[i as usize].entry.key)
    }

    /// The id (index and generation) of the entry at slot `i`.
    fn id(&self, i: u32) -> SocketId {
        SocketId::new(i, self.slots[i as usize].generation)
    }

    /// The entry for `key`, mutable.
    pub(crate) fn get_mut(&mut self, key: &FlowKey) -> Option<&mut TimeWaitEntry> {
        let i = self.find(key)?;
        Some(&mut self.slots[i as usize].entry)
    }

    /// Adds `entry` (replacing one with the same 4-tuple).
    ///
    /// # Errors
    /// [`TimeWaitFull`] at the cap (or when the cap is 0).
    pub(crate) fn insert(&mut self, entry: TimeWaitEntry) -> Result<(), TimeWaitFull> {
        if self.cap == 0 {
            return Err(TimeWaitFull);
        }
        if let Some(i) = self.find(&entry.key) {
            self.slots[i as usize].entry = entry;
            self.expiry.push(self.id(i), entry.deadline);
            return Ok(());
        }
        if self.index.is_full() {
            return Err(TimeWaitFull);
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < self.cap => {
                self.slots.push(Slot {
                    entry,
                    generation: 0,
                });
                (self.slots.len() - 1) as u32
            }
            None => return Err(TimeWaitFull),
        };
        let slot = &mut self.slots[i as usize];
        slot.entry = entry;
        let id = SocketId::new(i, slot.generation);
        // Cannot fail: the index is sized for `cap` and was not full.
        let slots = &self.slots;
        self.index
            .insert(entry.key, i, |j| slots[j as usize].entry.key)
            .map_err(|_| TimeWaitFull)?;
        self.expiry.push(id, entry.deadline);
        Ok(())
    }

    /// Moves the deadline of `key`'s entry to `deadline` (not earlier than
    /// any deadline given before: TIME-WAIT has one timeout).
    pub(crate) fn restart(&mut self, key: &FlowKey, deadline: Instant) {
        if let Some(i) = self.find(key) {
            self.slots[i as usize].entry.deadline = deadline;
            self.expiry.push(self.id(i), deadline);
        }
    }

    /// Removes `key`'s entry; returns it.
    pub(crate) fn remove(&mut self, key: &FlowKey) -> Option<TimeWaitEntry> {
        let slots = &self.slots;
        let i = self.index.remove(key, |j| slots[j as usize].entry.key)?;
        let slot = &mut self.slots[i as usize];
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(i);
        Some(slot.entry)
    }

    /// Removes every entry whose deadline is at or before `now`, using
    /// `scratch` for the due records; returns how many expired.
    pub(crate) fn expire(&mut self, now: Instant, scratch: &mut Vec<(SocketId, Instant)>) -> usize {
        scratch.clear();
        self.expiry.expire(now, scratch);
        let mut n = 0;
        for &(id, at) in scratch.iter() {
            let slot = &self.slots[id.index() as usize];
            // Stale records: the slot was reused, or the deadline moved.
            if slot.generation != id.generation() || slot.entry.deadline != at {
                continue;
            }
            let key = slot.entry.key;
            if self.find(&key) == Some(id.index()) {
                self.remove(&key);
                n += 1;
            }
        }
        n
    }

    /// The earliest deadline in the expiry list.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.expiry.next_deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;
    use crate::wire::ipv4::Ipv4Address;

    fn entry(n: u16, deadline: Instant) -> TimeWaitEntry {
        TimeWaitEntry {
            key: FlowKey::new(
                Ipv4Address::new(10, 0, 0, 1),
                80,
                Ipv4Address::new(10, 0, 0, 2),
                1000 + n,
            ),
            snd_nxt: SeqNumber(5),
            rcv_nxt: SeqNumber(9),
            ts_recent: 0,
            ts_offset: 0,
            ts_recent_secs: 0,
            deadline,
            window: 100,
            timestamps: false,
        }
    }

    #[test]
    fn an_entry_is_a_few_dozen_bytes() {
        assert!(
            core::mem::size_of::<Slot>() <= 64,
            "{}",
            core::mem::size_of::<Slot>()
        );
        assert!(
            TimeWaitTable::entry_bytes() <= 128,
            "{}",
            TimeWaitTable::entry_bytes()
        );
    }

    #[test]
    fn insert_expire_and_reuse_slots() {
        let mut t = TimeWaitTable::new(4, 1);
        let at = Instant::from_secs(60);
        for n in 0..4 {
            t.insert(entry(n, at)).unwrap();
        }
        assert_eq!(t.insert(entry(9, at)), Err(TimeWaitFull));
        // Same 4-tuple: replaced, not a new entry.
        t.insert(entry(0, at)).unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(
            t.get(&entry(2, at).key).map(|e| e.rcv_nxt),
            Some(SeqNumber(9))
        );
        let mut scratch = Vec::new();
        assert_eq!(t.expire(Instant::from_secs(59), &mut scratch), 0);
        t.restart(&entry(1, at).key, at + Duration::from_secs(30));
        assert_eq!(t.expire(at, &mut scratch), 3);
        assert_eq!(t.len(), 1);
        assert!(t.get(&entry(1, at).key).is_some());
        // Freed slots are reused; the slab does not grow.
        for n in 10..13 {
            t.insert(entry(n, at + Duration::from_secs(31))).unwrap();
        }
        assert_eq!(t.slots.len(), 4);
        assert_eq!(t.expire(at + Duration::from_secs(30), &mut scratch), 1);
        assert_eq!(t.expire(at + Duration::from_secs(31), &mut scratch), 3);
        assert!(t.is_empty());
    }

    #[test]
    fn cap_zero_holds_nothing() {
        let mut t = TimeWaitTable::new(0, 1);
        assert_eq!(t.insert(entry(0, Instant::ZERO)), Err(TimeWaitFull));
    }
}

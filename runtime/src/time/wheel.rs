//! A per-core hierarchical timer wheel with millisecond resolution.
//!
//! Six levels of 64 slots; a slot at level `l` spans `64^l` ms, so the
//! wheel covers `64^6` ms (about 2.2 years) ahead of its current time, and
//! deadlines farther out circle in the top level until they come in range.
//! An entry sits in the level given by the highest bit in which its deadline
//! differs from the wheel's time, so an entry moves down at most five times
//! (a *cascade*) before it fires. Each level keeps a bitmap of occupied
//! slots, so finding the next deadline is a few bit scans, however long the
//! wheel has been idle.
//!
//! Entries live in a slab (a `Vec` with a free list, preallocated and reused)
//! and form intrusive doubly-linked lists per slot, so insert, cancel and
//! reset are O(1) and a steady state of sleeps allocates nothing. The slab
//! only grows when more timers are pending at once than ever before.
//!
//! Time here is a plain `u64` of milliseconds since the core's epoch; the
//! caller rounds deadlines up and the current time down, so no timer fires
//! early.

use std::task::Waker;

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const NIL: u32 = u32::MAX;

/// Names an entry; stale keys (of a freed entry) are ignored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TimerKey {
    index: u32,
    gen: u32,
}

impl TimerKey {
    /// Packs the key into one word (for cross-thread cancellation).
    pub(crate) fn to_bits(self) -> u64 {
        ((self.gen as u64) << 32) | self.index as u64
    }

    /// Unpacks [`to_bits`](Self::to_bits).
    pub(crate) fn from_bits(bits: u64) -> TimerKey {
        TimerKey {
            index: bits as u32,
            gen: (bits >> 32) as u32,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Free,
    Pending { level: u8, slot: u8 },
    Fired,
}

#[derive(Debug)]
struct Entry {
    deadline: u64,
    waker: Option<Waker>,
    prev: u32,
    next: u32,
    gen: u32,
    state: State,
}

/// The wheel. See the module documentation.
#[derive(Debug)]
pub(crate) struct Wheel {
    elapsed: u64,
    occupied: [u64; LEVELS],
    heads: [[u32; SLOTS]; LEVELS],
    entries: Vec<Entry>,
    free: u32,
    pending: usize,
}

impl Wheel {
    /// An empty wheel at time 0 with room for `capacity` timers before it
    /// allocates.
    pub(crate) fn with_capacity(capacity: usize) -> Wheel {
        Wheel {
            elapsed: 0,
            occupied: [0; LEVELS],
            heads: [[NIL; SLOTS]; LEVELS],
            entries: Vec::with_capacity(capacity),
            free: NIL,
            pending: 0,
        }
    }

    /// The wheel's time: every deadline up to it has fired.
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Timers waiting to fire.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// Adds a timer for `deadline`. A deadline already reached is `Fired` at
    /// once (its waker is not called: the caller sees it by polling).
    pub(crate) fn insert(&mut self, deadline: u64, waker: Waker) -> TimerKey {
        let index = match self.free {
            NIL => {
                self.entries.push(Entry {
                    deadline,
                    waker: None,
                    prev: NIL,
                    next: NIL,
                    gen: 0,
                    state: State::Free,
                });
                (self.entries.len() - 1) as u32
            }
            i => {
                self.free = self.entries[i as usize].next;
                i
            }
        };
        let e = &mut self.entries[index as usize];
        e.waker = Some(waker);
        e.deadline = deadline;
        let key = TimerKey { index, gen: e.gen };
        if deadline <= self.elapsed {
            e.state = State::Fired;
        } else {
            self.link(index);
        }
        key
    }

    /// Whether the timer has fired (a stale key counts as fired).
    pub(crate) fn is_fired(&self, key: TimerKey) -> bool {
        match self.entry(key) {
            Some(e) => e.state == State::Fired,
            None => true,
        }
    }

    /// Replaces the waker to call when the timer fires (no clone if it would
    /// wake the same task).
    pub(crate) fn set_waker(&mut self, key: TimerKey, waker: &Waker) {
        if let Some(e) = self.entry_mut(key) {
            match &e.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => e.waker = Some(waker.clone()),
            }
        }
    }

    /// Moves a timer to a new deadline. Returns its waker when the new
    /// deadline has already passed (the caller should wake it).
    pub(crate) fn reset(&mut self, key: TimerKey, deadline: u64) -> Option<Waker> {
        let elapsed = self.elapsed;
        let e = self.entry(key)?;
        if let State::Pending { .. } = e.state {
            self.unlink(key.index);
        }
        let e = &mut self.entries[key.index as usize];
        e.deadline = deadline;
        if deadline <= elapsed {
            e.state = State::Fired;
            e.waker.clone()
        } else {
            self.link(key.index);
            None
        }
    }

    /// Cancels a timer and frees its entry.
    pub(crate) fn remove(&mut self, key: TimerKey) {
        let Some(e) = self.entry(key) else {
            return;
        };
        if let State::Pending { .. } = e.state {
            self.unlink(key.index);
        }
        let free = self.free;
        let e = &mut self.entries[key.index as usize];
        e.state = State::Free;
        e.waker = None;
        e.gen = e.gen.wrapping_add(1);
        e.next = free;
        self.free = key.index;
    }

    /// The start of the next slot to process: a timer may fire then (or be
    /// cascaded to a lower level). `None` when no timer is pending.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.next_expiration().map(|(_, _, d)| d)
    }

    /// Advances the wheel to `now`, firing every timer whose deadline is at
    /// or before it; their wakers are pushed on `fired`. Returns how many
    /// fired.
    pub(crate) fn advance(&mut self, now: u64, fired: &mut Vec<Waker>) -> usize {
        let mut count = 0;
        // Each round empties one slot; a slot is never refilled with entries
        // due at or before its own start, so this terminates.
        while let Some((level, slot, deadline)) = self.next_expiration() {
            if deadline > now {
                break;
            }
            self.elapsed = self.elapsed.max(deadline);
            count += self.process(level, slot, fired);
        }
        self.elapsed = self.elapsed.max(now);
        count
    }

    fn process(&mut self, level: usize, slot: usize, fired: &mut Vec<Waker>) -> usize {
        let mut i = self.heads[level][slot];
        self.heads[level][slot] = NIL;
        self.occupied[level] &= !(1u64 << slot);
        let mut count = 0;
        while i != NIL {
            let e = &mut self.entries[i as usize];
            let next = e.next;
            if e.deadline <= self.elapsed {
                e.state = State::Fired;
                e.prev = NIL;
                e.next = NIL;
                if let Some(w) = e.waker.clone() {
                    fired.push(w);
                }
                self.pending -= 1;
                count += 1;
            } else {
                self.pending -= 1;
                self.link(i);
            }
            i = next;
        }
        count
    }

    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        if self.pending == 0 {
            return None;
        }
        let mut best: Option<(usize, usize, u64)> = None;
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let slot_range = 1u64 << (SLOT_BITS * level as u32);
            let level_range = slot_range << SLOT_BITS;
            let now_slot = ((self.elapsed / slot_range) % SLOTS as u64) as u32;
            let zeros = occupied.rotate_right(now_slot).trailing_zeros();
            let slot = ((now_slot + zeros) % SLOTS as u32) as usize;
            let level_start = self.elapsed & !(level_range - 1);
            let mut deadline = level_start + slot as u64 * slot_range;
            if deadline <= self.elapsed && level > 0 {
                // Only the top level wraps: a far timer circles there.
                deadline += level_range;
            }
            if best.is_none_or(|(_, _, d)| deadline < d) {
                best = Some((level, slot, deadline));
            }
        }
        best
    }

    fn level_for(&self, deadline: u64) -> usize {
        let masked = (self.elapsed ^ deadline) | (SLOTS as u64 - 1);
        let significant = 63 - masked.leading_zeros();
        ((significant / SLOT_BITS) as usize).min(LEVELS - 1)
    }

    fn link(&mut self, index: u32) {
        let deadline = self.entries[index as usize].deadline;
        let level = self.level_for(deadline);
        let slot = ((deadline >> (SLOT_BITS * level as u32)) % SLOTS as u64) as usize;
        let head = self.heads[level][slot];
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        let e = &mut self.entries[index as usize];
        e.prev = NIL;
        e.next = head;
        e.state = State::Pending {
            level: level as u8,
            slot: slot as u8,
        };
        self.heads[level][slot] = index;
        self.occupied[level] |= 1u64 << slot;
        self.pending += 1;
    }

    fn unlink(&mut self, index: u32) {
        let e = &self.entries[index as usize];
        let State::Pending { level, slot } = e.state else {
            return;
        };
        let (prev, next) = (e.prev, e.next);
        let (level, slot) = (level as usize, slot as usize);
        if prev == NIL {
            self.heads[level][slot] = next;
            if next == NIL {
                self.occupied[level] &= !(1u64 << slot);
            }
        } else {
            self.entries[prev as usize].next = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        let e = &mut self.entries[index as usize];
        e.prev = NIL;
        e.next = NIL;
        e.state = State::Fired;
        self.pending -= 1;
    }

    fn entry(&self, key: TimerKey) -> Option<&Entry> {
        self.entries
            .get(key.index as usize)
            .filter(|e| e.gen == key.gen && e.state != State::Free)
    }

    fn entry_mut(&mut self, key: TimerKey) -> Option<&mut Entry> {
        self.entries
            .get_mut(key.index as usize)
            .filter(|e| e.gen == key.gen && e.state != State::Free)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    /// Advances one ms at a time and records when each key fired.
    fn fire_times(wheel: &mut Wheel, keys: &[TimerKey], until: u64) -> Vec<Option<u64>> {
        let mut times = vec![None; keys.len()];
        let mut buf = Vec::new();
        for now in wheel.elapsed()..=until {
            wheel.advance(now, &mut buf);
            buf.clear();
            for (k, t) in keys.iter().zip(times.iter_mut()) {
                if t.is_none() && wheel.is_fired(*k) {
                    *t = Some(now);
                }
            }
        }
        times
    }

    #[test]
    fn fires_at_deadline_on_every_level() {
        let mut wheel = Wheel::with_capacity(8);
        let (_, w) = counter();
        let deadlines = [1, 63, 64, 65, 4095, 4096, 4097, 300_000];
        let keys: Vec<_> = deadlines
            .iter()
            .map(|&d| wheel.insert(d, w.clone()))
            .collect();
        assert_eq!(wheel.pending(), deadlines.len());
        let times = fire_times(&mut wheel, &keys, 300_001);
        for (d, t) in deadlines.iter().zip(times) {
            assert_eq!(t, Some(*d), "deadline {d}");
        }
        assert_eq!(wheel.pending(), 0);
    }

    #[test]
    fn jumping_far_ahead_fires_everything_due_once() {
        let mut wheel = Wheel::with_capacity(8);
        let (count, w) = counter();
        for d in [5, 700, 70_000, 7_000_000] {
            wheel.insert(d, w.clone());
        }
        let far = wheel.insert(9_000_000, w.clone());
        let mut buf = Vec::new();
        assert_eq!(wheel.advance(8_000_000, &mut buf), 4);
        assert_eq!(buf.len(), 4);
        buf.drain(..).for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 4);
        assert!(!wheel.is_fired(far));
        let next = wheel.next_deadline().unwrap();
        assert!(next > 8_000_000 && next <= 9_000_000, "{next}");
        assert_eq!(wheel.advance(8_999_999, &mut buf), 0);
        assert_eq!(wheel.advance(9_000_000, &mut buf), 1);
        assert!(wheel.is_fired(far));
    }

    #[test]
    fn next_deadline_never_after_earliest_timer() {
        let mut wheel = Wheel::with_capacity(8);
        let (_, w) = counter();
        let mut buf = Vec::new();
        wheel.advance(12_345, &mut buf);
        for d in [12_346 + 5000, 12_346 + 70, 12_346 + 300_000] {
            wheel.insert(d, w.clone());
        }
        let mut now = wheel.elapsed();
        // Following next_deadline from slot to slot reaches the earliest
        // timer exactly.
        loop {
            let next = wheel.next_deadline().unwrap();
            assert!(next <= 12_416 && next > now);
            now = next;
            if wheel.advance(now, &mut buf) > 0 {
                break;
            }
        }
        assert_eq!(now, 12_416);
    }

    #[test]
    fn cancel_and_reset() {
        let mut wheel = Wheel::with_capacity(2);
        let (count, w) = counter();
        let a = wheel.insert(10, w.clone());
        let b = wheel.insert(10, w.clone());
        wheel.remove(a);
        assert_eq!(wheel.pending(), 1);
        assert!(wheel.reset(b, 20).is_none());
        let mut buf = Vec::new();
        assert_eq!(wheel.advance(15, &mut buf), 0);
        assert!(!wheel.is_fired(b));
        assert_eq!(wheel.advance(20, &mut buf), 1);
        assert!(wheel.is_fired(b));
        // Reset into the past fires at once and hands the waker back.
        let waker = wheel.reset(b, 3).expect("past reset returns the waker");
        waker.wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        // A removed key is stale, even after its entry is reused.
        wheel.remove(b);
        let c = wheel.insert(100, w);
        wheel.remove(b);
        assert!(!wheel.is_fired(c));
        assert_eq!(wheel.pending(), 1);
    }

    #[test]
    fn entries_are_reused_without_growth() {
        let mut wheel = Wheel::with_capacity(4);
        let (_, w) = counter();
        let mut buf = Vec::new();
        for round in 0..1000u64 {
            let k = wheel.insert(round + 1, w.clone());
            wheel.advance(round + 1, &mut buf);
            buf.clear();
            assert!(wheel.is_fired(k));
            wheel.remove(k);
        }
        assert_eq!(wheel.entries.len(), 1);
    }

    #[test]
    fn past_deadline_is_fired_on_insert() {
        let mut wheel = Wheel::with_capacity(1);
        let (_, w) = counter();
        let mut buf = Vec::new();
        wheel.advance(50, &mut buf);
        let k = wheel.insert(50, w);
        assert!(wheel.is_fired(k));
        assert_eq!(wheel.pending(), 0);
    }

    #[test]
    fn very_far_deadline_circles_the_top_level() {
        let mut wheel = Wheel::with_capacity(1);
        let (_, w) = counter();
        let far = (1u64 << 37) + 5;
        let k = wheel.insert(far, w);
        let mut buf = Vec::new();
        let mut now = 0;
        let mut steps = 0;
        while !wheel.is_fired(k) {
            now = wheel.next_deadline().unwrap();
            wheel.advance(now, &mut buf);
            steps += 1;
            assert!(steps < 64, "too many steps");
        }
        assert_eq!(now, far);
    }
}

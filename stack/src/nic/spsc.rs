//! A lock-free single-producer single-consumer ring of fixed-size frame
//! slots.
//!
//! This is the "wire" of the in-memory NIC. Every slot always holds one
//! frame buffer. [`Producer::push`] and [`Consumer::pop_with`] copy bytes
//! into and out of it, like a NIC's DMA ring; [`Producer::push_exchange`] and
//! [`Consumer::pop_exchange`] instead swap the caller's [`Frame`] with the
//! slot's buffer, so a frame crosses without a copy and each side gets a
//! buffer back for each one it gives: the two sides' pools keep their sizes.
//!
//! ```text
//!            head (consumer)          tail (producer)
//!               │                        │
//!   slots: [ .. │ full full full full .. │ empty empty .. ]   (mod capacity)
//!               └── readable: [head, tail) ──┘
//! ```
//!
//! * `head` and `tail` are free-running counters (wrapping `usize`); a slot's
//!   index is `counter & mask`. The ring is empty when `head == tail` and full
//!   when `tail - head == capacity`.
//! * Each side works on a private copy of its own counter and publishes it
//!   once per batch with a single `Release` store ([`Producer::publish`],
//!   [`Consumer::release`]), so a burst of 32 frames costs one atomic store,
//!   not 32.
//! * Each side caches the other side's counter and reloads it (`Acquire`) only
//!   when the cached value says the ring is full (producer) or empty
//!   (consumer), so the common case touches no shared cache line but the
//!   slots themselves. The exception is [`Consumer::backlog`], which the
//!   stack calls once per tick to size its RX burst: it reloads `tail`
//!   (and keeps the value, so the pops after it need not).
//! * `head` and `tail` sit on separate cache lines (128-byte aligned, to keep
//!   adjacent-line prefetch from pairing them).
//!
//! # Why this is sound
//!
//! A slot is accessed by at most one side at a time:
//! the producer writes only slots with counters in `[tail_pub, head_seen +
//! capacity)`, where `head_seen` is a value of `head` it loaded with
//! `Acquire`; the consumer reads only slots in `[head_priv, tail_seen)`,
//! where `tail_seen` is a value of `tail` it loaded with `Acquire`. Because
//! the consumer's `Release` store of `head` happens after its last read of
//! the slots it frees, and the producer's `Acquire` load of that value happens
//! before it writes them, every read happens-before the next write of the same
//! slot; symmetrically, the producer's `Release` store of `tail` orders its
//! writes before the consumer's reads. The two ranges never overlap since
//! `head_seen <= head_priv` and `tail_seen <= tail_pub`.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{Frame, FRAME_CAPACITY};

/// Bytes in one slot: one frame.
pub(crate) const SLOT_SIZE: usize = FRAME_CAPACITY;

/// Pads and aligns a value to its own pair of cache lines.
#[repr(align(128))]
struct CachePadded<T>(T);

/// One slot: a frame buffer (its own allocation, so buffers can be swapped
/// in and out). Cache-line aligned, so the producer and the consumer working
/// on neighbouring slots do not share a line.
#[repr(C, align(64))]
struct Slot {
    frame: Frame,
}

/// The state both sides share.
struct Shared {
    /// Next counter the consumer will read; written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Next counter the producer will write; written only by the producer.
    tail: CachePadded<AtomicUsize>,
    slots: Box<[UnsafeCell<Slot>]>,
    mask: usize,
}

// SAFETY: `Shared` is only reachable through one `Producer` and one
// `Consumer` (neither is `Clone`), and the protocol described in the module
// documentation gives each slot a single accessor at a time, with
// happens-before edges through `head`/`tail` between successive accessors.
// The counters themselves are atomics.
unsafe impl Sync for Shared {}

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// Every slot is in use.
    Full,
    /// The frame is larger than [`SLOT_SIZE`].
    TooLarge,
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full => "ring full",
            PushError::TooLarge => "frame larger than a ring slot",
        })
    }
}

impl std::error::Error for PushError {}

/// Creates a ring with at least `capacity` slots (rounded up to a power of
/// two, at least 1), all allocated now.
pub(crate) fn channel(capacity: usize) -> (Producer, Consumer) {
    let cap = capacity.max(1).next_power_of_two();
    let slots: Box<[UnsafeCell<Slot>]> = (0..cap)
        .map(|_| {
            UnsafeCell::new(Slot {
                frame: Frame::new(),
            })
        })
        .collect();
    let shared = Arc::new(Shared {
        head: CachePadded(AtomicUsize::new(0)),
        tail: CachePadded(AtomicUsize::new(0)),
        slots,
        mask: cap - 1,
    });
    (
        Producer {
            shared: Arc::clone(&shared),
            tail: 0,
            published: 0,
            cached_head: 0,
        },
        Consumer {
            shared,
            head: 0,
            released: 0,
            cached_tail: 0,
        },
    )
}

/// The writing end of a ring. Owned by one thread.
pub(crate) struct Producer {
    shared: Arc<Shared>,
    /// Next counter to write (private; may be ahead of the shared `tail`).
    tail: usize,
    /// The value last stored to the shared `tail`.
    published: usize,
    /// A value of the shared `head` seen earlier (never ahead of it).
    cached_head: usize,
}

impl Producer {
    /// Slots in the ring.
    pub(crate) fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Slots free now (reloads the consumer's counter).
    #[cfg(test)]
    pub(crate) fn free_slots(&mut self) -> usize {
        self.cached_head = self.shared.head.0.load(Ordering::Acquire);
        self.capacity() - self.tail.wrapping_sub(self.cached_head)
    }

    /// Copies `data` into the next slot. The frame is not visible to the
    /// consumer until [`publish`](Self::publish).
    ///
    /// # Errors
    /// [`PushError::Full`] when no slot is free, [`PushError::TooLarge`] when
    /// `data` is longer than [`SLOT_SIZE`].
    #[inline]
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<(), PushError> {
        if data.len() > SLOT_SIZE {
            return Err(PushError::TooLarge);
        }
        let cap = self.capacity();
        if self.tail.wrapping_sub(self.cached_head) == cap {
            self.cached_head = self.shared.head.0.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.cached_head) == cap {
                return Err(PushError::Full);
            }
        }
        let cell = &self.shared.slots[self.tail & self.shared.mask];
        // SAFETY: `tail - cached_head < capacity`, so the slot's counter lies
        // in `[tail, cached_head + capacity)`: the consumer released it (its
        // `Release` store of `head` that we loaded with `Acquire` ordered its
        // last read before this write) and will not read it until we publish
        // a `tail` beyond it. No other reference to this slot exists.
        let slot = unsafe { &mut *cell.get() };
        slot.frame.buffer_mut()[..data.len()].copy_from_slice(data);
        slot.frame.set_len(data.len());
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Queues `frame` without copying it: it takes the next slot's place
    /// and the slot's previous buffer (contents unspecified) is returned,
    /// for the caller's pool. Not visible to the consumer until
    /// [`publish`](Self::publish).
    ///
    /// # Errors
    /// `Err(frame)`, unchanged, when the ring is full.
    #[inline]
    pub(crate) fn push_exchange(&mut self, mut frame: Frame) -> Result<Frame, Frame> {
        let cap = self.capacity();
        if self.tail.wrapping_sub(self.cached_head) == cap {
            self.cached_head = self.shared.head.0.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.cached_head) == cap {
                return Err(frame);
            }
        }
        let cell = &self.shared.slots[self.tail & self.shared.mask];
        // SAFETY: as in `push`: the slot lies in `[tail, cached_head +
        // capacity)`, released by the consumer (Release/Acquire on `head`)
        // and not read again until we publish a `tail` beyond it; this is
        // the only reference to it.
        let slot = unsafe { &mut *cell.get() };
        core::mem::swap(&mut slot.frame, &mut frame);
        self.tail = self.tail.wrapping_add(1);
        Ok(frame)
    }

    /// Makes every pushed frame visible to the consumer, with one atomic
    /// store. Returns how many frames became visible.
    #[inline]
    pub(crate) fn publish(&mut self) -> usize {
        let n = self.tail.wrapping_sub(self.published);
        if n != 0 {
            self.shared.tail.0.store(self.tail, Ordering::Release);
            self.published = self.tail;
        }
        n
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("tail", &self.tail)
            .field("published", &self.published)
            .finish()
    }
}

/// The reading end of a ring. Owned by one thread.
pub(crate) struct Consumer {
    shared: Arc<Shared>,
    /// Next counter to read (private; may be ahead of the shared `head`).
    head: usize,
    /// The value last stored to the shared `head`.
    released: usize,
    /// A value of the shared `tail` seen earlier (never ahead of it).
    cached_tail: usize,
}

impl Consumer {
    /// Slots in the ring.
    pub(crate) fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Published frames waiting now (reloads the producer's counter).
    #[inline]
    pub(crate) fn backlog(&mut self) -> usize {
        self.cached_tail = self.shared.tail.0.load(Ordering::Acquire);
        self.cached_tail.wrapping_sub(self.head)
    }

    /// True when at least one published frame is waiting.
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.head != self.cached_tail || self.shared.tail.0.load(Ordering::Acquire) != self.head
    }

    /// Hands the next frame's bytes to `f`, or returns `None` when the ring
    /// is empty. The slot is not given back to the producer until
    /// [`release`](Self::release).
    #[inline]
    pub(crate) fn pop_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if self.head == self.cached_tail {
            self.cached_tail = self.shared.tail.0.load(Ordering::Acquire);
            if self.head == self.cached_tail {
                return None;
            }
        }
        let cell = &self.shared.slots[self.head & self.shared.mask];
        // SAFETY: `head < cached_tail`, a value of the producer's `tail` that
        // we loaded with `Acquire` after its `Release` store, so its writes
        // to this slot happen-before this read, and it will not write the
        // slot again until we store a `head` beyond it. Only shared
        // references to the slot exist while we hold this one.
        let slot = unsafe { &*cell.get() };
        let r = f(slot.frame.as_slice());
        self.head = self.head.wrapping_add(1);
        Some(r)
    }

    /// Takes the next frame without copying it: `spare` (any buffer, its
    /// contents ignored) takes its place in the slot, for the producer to
    /// reuse. The slot goes back to the producer at the next
    /// [`release`](Self::release).
    ///
    /// # Errors
    /// `Err(spare)`, unchanged, when the ring is empty.
    #[inline]
    pub(crate) fn pop_exchange(&mut self, mut spare: Frame) -> Result<Frame, Frame> {
        if self.head == self.cached_tail {
            self.cached_tail = self.shared.tail.0.load(Ordering::Acquire);
            if self.head == self.cached_tail {
                return Err(spare);
            }
        }
        let cell = &self.shared.slots[self.head & self.shared.mask];
        // SAFETY: as in `pop_with`: `head < cached_tail`, loaded with
        // Acquire after the producer's Release store, so its writes to the
        // slot happen-before this access, and it will not touch the slot
        // again until we store a `head` beyond it. The producer's next
        // access (after our Release of `head`) sees the swapped buffer. This
        // is the only reference to the slot.
        let slot = unsafe { &mut *cell.get() };
        core::mem::swap(&mut slot.frame, &mut spare);
        self.head = self.head.wrapping_add(1);
        Ok(spare)
    }

    /// Gives every read slot back to the producer, with one atomic store.
    #[inline]
    pub(crate) fn release(&mut self) {
        if self.head != self.released {
            self.shared.head.0.store(self.head, Ordering::Release);
            self.released = self.head;
        }
    }

    /// Reads up to `max` frames, handing each to `f`, then releases once.
    /// Returns how many were read.
    #[cfg(test)]
    pub(crate) fn pop_batch(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < max && self.pop_with(&mut f).is_some() {
            n += 1;
        }
        self.release();
        n
    }
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("head", &self.head)
            .field("released", &self.released)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_for(seq: u64, buf: &mut [u8; 256]) -> usize {
        let len = 8 + (seq % 200) as usize;
        buf[..8].copy_from_slice(&seq.to_le_bytes());
        for (i, b) in buf[8..len].iter_mut().enumerate() {
            *b = (seq as u8).wrapping_add(i as u8);
        }
        len
    }

    fn check_frame(expect: u64, data: &[u8]) {
        assert!(data.len() >= 8);
        let seq = u64::from_le_bytes(data[..8].try_into().unwrap());
        assert_eq!(seq, expect, "frames lost or reordered");
        assert_eq!(data.len(), 8 + (seq % 200) as usize);
        for (i, &b) in data[8..].iter().enumerate() {
            assert_eq!(b, (seq as u8).wrapping_add(i as u8), "corrupt payload");
        }
    }

    #[test]
    fn backlog_counts_published_unread_frames() {
        let (mut p, mut c) = channel(8);
        p.push(&[1]).unwrap();
        p.push(&[2]).unwrap();
        assert_eq!(c.backlog(), 0, "unpublished frames are not counted");
        p.publish();
        assert_eq!(c.backlog(), 2);
        assert_eq!(c.pop_with(|d| d[0]), Some(1));
        assert_eq!(c.backlog(), 1, "a frame read but not released is gone");
        c.release();
        assert_eq!(c.backlog(), 1);
        assert_eq!(c.pop_with(|d| d[0]), Some(2));
        assert_eq!(c.backlog(), 0);
    }

    #[test]
    fn capacity_rounds_up() {
        assert_eq!(channel(0).0.capacity(), 1);
        assert_eq!(channel(5).0.capacity(), 8);
        assert_eq!(channel(8).1.capacity(), 8);
    }

    #[test]
    fn push_is_invisible_until_published() {
        let (mut p, mut c) = channel(4);
        p.push(&[1, 2, 3]).unwrap();
        assert!(!c.has_pending());
        assert!(c.pop_with(|_| ()).is_none());
        assert_eq!(p.publish(), 1);
        assert_eq!(p.publish(), 0);
        assert!(c.has_pending());
        assert_eq!(c.pop_with(|d| d.to_vec()), Some(vec![1, 2, 3]));
        assert!(c.pop_with(|_| ()).is_none());
    }

    #[test]
    fn full_until_released() {
        let (mut p, mut c) = channel(4);
        for i in 0..4u8 {
            p.push(&[i]).unwrap();
        }
        assert_eq!(p.push(&[9]), Err(PushError::Full));
        p.publish();
        assert_eq!(c.pop_with(|d| d[0]), Some(0));
        // Read but not released: still full for the producer.
        assert_eq!(p.push(&[9]), Err(PushError::Full));
        c.release();
        assert_eq!(p.free_slots(), 1);
        p.push(&[4]).unwrap();
        p.publish();
        let mut got = Vec::new();
        assert_eq!(c.pop_batch(10, |d| got.push(d[0])), 4);
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert_eq!(p.free_slots(), 4);
    }

    #[test]
    fn too_large_and_empty_frames() {
        let (mut p, mut c) = channel(2);
        assert_eq!(p.push(&[0u8; SLOT_SIZE + 1]), Err(PushError::TooLarge));
        p.push(&[]).unwrap();
        p.push(&[0xab; SLOT_SIZE]).unwrap();
        p.publish();
        assert_eq!(c.pop_with(|d| d.len()), Some(0));
        assert_eq!(
            c.pop_with(|d| (d.len(), d[SLOT_SIZE - 1])),
            Some((SLOT_SIZE, 0xab))
        );
    }

    #[test]
    fn wraps_many_times_single_thread() {
        let (mut p, mut c) = channel(8);
        let mut buf = [0u8; 256];
        let (mut sent, mut recv) = (0u64, 0u64);
        let rounds = if cfg!(miri) { 300 } else { 10_000u64 };
        for round in 0..rounds {
            let burst = (round % 11) as usize;
            for _ in 0..burst {
                let len = frame_for(sent, &mut buf);
                if p.push(&buf[..len]).is_err() {
                    break;
                }
                sent += 1;
            }
            p.publish();
            c.pop_batch((round % 7) as usize + 1, |d| {
                check_frame(recv, d);
                recv += 1;
            });
        }
        c.pop_batch(usize::MAX, |d| {
            check_frame(recv, d);
            recv += 1;
        });
        assert_eq!(sent, recv);
        assert!(sent > rounds);
    }

    #[test]
    fn two_threads_millions_in_order() {
        const N: u64 = if cfg!(miri) { 2_000 } else { 3_000_000 };
        let (mut p, mut c) = channel(256);
        let producer = std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            let mut seq = 0u64;
            while seq < N {
                let burst = 1 + (seq % 32);
                for _ in 0..burst {
                    if seq == N {
                        break;
                    }
                    let len = frame_for(seq, &mut buf);
                    match p.push(&buf[..len]) {
                        Ok(()) => seq += 1,
                        Err(PushError::Full) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                if p.publish() == 0 {
                    std::hint::spin_loop();
                    std::thread::yield_now();
                }
            }
        });
        let mut expect = 0u64;
        while expect < N {
            let n = c.pop_batch(32, |d| {
                check_frame(expect, d);
                expect += 1;
            });
            if n == 0 {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert!(c.pop_with(|_| ()).is_none());
    }

    fn frame_of(bytes: &[u8]) -> Frame {
        let mut f = Frame::new();
        f.copy_from(bytes).unwrap();
        f
    }

    #[test]
    fn exchange_moves_frames_without_copy_and_returns_buffers() {
        let (mut p, mut c) = channel(2);
        let a = frame_of(b"first");
        let a_ptr = a.as_slice().as_ptr();
        let empty = p.push_exchange(a).unwrap();
        assert_ne!(empty.as_slice().as_ptr(), a_ptr);
        p.push_exchange(frame_of(b"second")).unwrap();
        // Full: the frame comes back unchanged.
        let back = p.push_exchange(frame_of(b"third")).unwrap_err();
        assert_eq!(back.as_slice(), b"third");
        // Nothing published yet: the spare comes back.
        assert!(c.pop_exchange(Frame::new()).is_err());
        p.publish();
        let got = c.pop_exchange(Frame::new()).unwrap();
        assert_eq!(got.as_slice(), b"first");
        assert_eq!(
            got.as_slice().as_ptr(),
            a_ptr,
            "the same buffer, not a copy"
        );
        // Mixed: a copied read of an exchanged write.
        assert_eq!(c.pop_with(<[u8]>::to_vec), Some(b"second".to_vec()));
        c.release();
        // The spare given on pop is what the producer gets back later.
        p.push(b"x").unwrap();
        p.push_exchange(frame_of(b"y")).unwrap();
        p.publish();
        assert_eq!(c.pop_exchange(Frame::new()).unwrap().as_slice(), b"x");
        assert_eq!(c.pop_with(<[u8]>::to_vec), Some(b"y".to_vec()));
        assert!(c.pop_exchange(Frame::new()).is_err());
    }
}

//! Flow events, batched per tick.
//!
//! Input and timers record events (readable, writable, acceptable,
//! connected, closed, error) as pending bits on the TCB; a flow enters the
//! event FIFO only when its first bit of the tick is set, so each flow is
//! recorded at most once per tick. After input and timers, the stack drains
//! the FIFO in one batch: every registered waker with a pending event is
//! woken once ([`super::stack::TcpStack::wake_pending`]) or the pairs
//! (socket, events) go to a closure.

use super::types::SocketId;
use crate::wake_list::WakeList;
use core::fmt;
use core::task::Waker;
use std::collections::VecDeque;

/// A set of flow events.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowEvents(pub u8);

impl FlowEvents {
    /// No event.
    pub const NONE: FlowEvents = FlowEvents(0);
    /// Data (or EOF) can be read.
    pub const READABLE: FlowEvents = FlowEvents(1);
    /// Send buffer space opened.
    pub const WRITABLE: FlowEvents = FlowEvents(2);
    /// A listener has a connection to accept.
    pub const ACCEPTABLE: FlowEvents = FlowEvents(4);
    /// An active open completed.
    pub const CONNECTED: FlowEvents = FlowEvents(8);
    /// The connection ended.
    pub const CLOSED: FlowEvents = FlowEvents(16);
    /// An error is pending (`take_error`).
    pub const ERROR: FlowEvents = FlowEvents(32);

    /// True when every bit of `other` is set.
    pub fn contains(self, other: FlowEvents) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any bit of `other` is set.
    pub fn intersects(self, other: FlowEvents) -> bool {
        self.0 & other.0 != 0
    }

    /// True when empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Events that concern a reader (wake the read waker).
    pub fn wakes_reader(self) -> bool {
        self.intersects(FlowEvents(
            Self::READABLE.0
                | Self::ACCEPTABLE.0
                | Self::CONNECTED.0
                | Self::CLOSED.0
                | Self::ERROR.0,
        ))
    }

    /// Events that concern a writer (wake the write waker).
    pub fn wakes_writer(self) -> bool {
        self.intersects(FlowEvents(
            Self::WRITABLE.0 | Self::CONNECTED.0 | Self::CLOSED.0 | Self::ERROR.0,
        ))
    }
}

impl core::ops::BitOr for FlowEvents {
    type Output = FlowEvents;
    fn bitor(self, rhs: FlowEvents) -> FlowEvents {
        FlowEvents(self.0 | rhs.0)
    }
}

impl fmt::Debug for FlowEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::READABLE, "readable"),
            (Self::WRITABLE, "writable"),
            (Self::ACCEPTABLE, "acceptable"),
            (Self::CONNECTED, "connected"),
            (Self::CLOSED, "closed"),
            (Self::ERROR, "error"),
        ];
        let mut first = true;
        f.write_str("{")?;
        for (e, n) in names {
            if self.contains(e) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        f.write_str("}")
    }
}

/// The FIFO of flows with pending events.
#[derive(Debug)]
pub(crate) struct EventQueue {
    queue: VecDeque<SocketId>,
}

impl EventQueue {
    /// A queue for up to `capacity` flows (room for
    /// [`START_ROOM`](super::tx_list::START_ROOM) of them at first: it
    /// grows as the TX lists do).
    pub(crate) fn new(capacity: usize) -> EventQueue {
        EventQueue {
            queue: VecDeque::with_capacity(capacity.min(super::tx_list::START_ROOM)),
        }
    }

    /// Adds `ev` to the flow's pending set, queueing the flow when the set
    /// was empty. Returns true when the flow was queued.
    pub(crate) fn record(
        &mut self,
        id: SocketId,
        pending: &mut FlowEvents,
        ev: FlowEvents,
    ) -> bool {
        let was_empty = pending.is_empty();
        pending.0 |= ev.0;
        if was_empty && !ev.is_empty() {
            self.queue.push_back(id);
            true
        } else {
            false
        }
    }

    /// The next flow with pending events.
    pub(crate) fn pop(&mut self) -> Option<SocketId> {
        self.queue.pop_front()
    }

    /// Flows queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// The read and write waker slots of one TCB.
#[derive(Debug, Default)]
pub(crate) struct WakerSlots {
    /// Woken on readable/acceptable/connected/closed/error.
    pub read: Option<Waker>,
    /// Woken on writable/connected/closed/error.
    pub write: Option<Waker>,
}

impl WakerSlots {
    fn put(slot: &mut Option<Waker>, w: &Waker) {
        match slot {
            Some(old) if old.will_wake(w) => {}
            _ => *slot = Some(w.clone()),
        }
    }

    /// Registers the read waker (no clone when it is the same task).
    pub(crate) fn register_read(&mut self, w: &Waker) {
        Self::put(&mut self.read, w);
    }

    /// Registers the write waker.
    pub(crate) fn register_write(&mut self, w: &Waker) {
        Self::put(&mut self.write, w);
    }

    /// Moves the wakers concerned by `ev` to `due` (their slots clear);
    /// returns how many.
    pub(crate) fn take_due(&mut self, ev: FlowEvents, due: &mut WakeList) -> usize {
        let mut n = 0;
        if ev.wakes_reader() {
            if let Some(w) = self.read.take() {
                due.push(w);
                n += 1;
            }
        }
        if ev.wakes_writer() {
            if let Some(w) = self.write.take() {
                due.push(w);
                n += 1;
            }
        }
        n
    }

    /// Moves every waker to `due` (the socket is going away).
    pub(crate) fn take_all(&mut self, due: &mut WakeList) -> usize {
        self.take_due(FlowEvents(0xff), due)
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

    #[test]
    fn recorded_once_per_tick() {
        let mut q = EventQueue::new(4);
        let mut p = FlowEvents::NONE;
        let id = SocketId::new(0, 0);
        assert!(q.record(id, &mut p, FlowEvents::READABLE));
        assert!(!q.record(id, &mut p, FlowEvents::WRITABLE));
        assert_eq!(q.len(), 1);
        assert_eq!(p, FlowEvents::READABLE | FlowEvents::WRITABLE);
        assert_eq!(format!("{p:?}"), "{readable|writable}");
    }

    #[test]
    fn wakers_woken_once_by_kind() {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        let w = Waker::from(c.clone());
        let mut s = WakerSlots::default();
        s.register_read(&w);
        s.register_write(&w);
        let mut due = WakeList::default();
        assert_eq!(s.take_due(FlowEvents::READABLE, &mut due), 1);
        assert_eq!(s.take_due(FlowEvents::READABLE, &mut due), 0);
        assert_eq!(s.take_due(FlowEvents::WRITABLE, &mut due), 1);
        assert_eq!(c.0.load(Ordering::SeqCst), 0, "taken, not woken");
        assert_eq!(due.wake_all(), 2);
        assert_eq!(c.0.load(Ordering::SeqCst), 2);
        s.register_read(&w);
        s.register_write(&w);
        assert_eq!(s.take_due(FlowEvents::CLOSED, &mut due), 2);
    }
}

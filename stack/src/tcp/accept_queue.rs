//! Listeners' accept and SYN queue counts, kept with the stack (one entry
//! per listener) instead of in every TCB slot: an established connection
//! never needs them, and a million of them would carry 20 bytes each for
//! nothing.
//!
//! The accept queue itself stays intrusive, as in mTCP: each TCB's
//! `ListenVars::next` links to the next established child, and a
//! listener's own `next` is the queue's first child, so "is there one to
//! accept" is read off the listener's slot. What lives here is the rest:
//! the tail, the length, the backlog and the number of half-open
//! (SYN-RECEIVED) children.

/// No slot (an empty queue's head and tail, the end of a queue).
pub(crate) const NIL: u32 = u32::MAX;

/// One listener's queue bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AcceptQueue {
    /// Slot index of the last child in the accept queue ([`NIL`]: empty).
    pub tail: u32,
    /// Children in the accept queue.
    pub len: u32,
    /// Accept queue limit.
    pub backlog: u32,
    /// Children in SYN-RECEIVED.
    pub syn_count: u32,
}

impl AcceptQueue {
    /// An empty queue holding at most `backlog` children.
    fn new(backlog: u32) -> AcceptQueue {
        AcceptQueue {
            tail: NIL,
            len: 0,
            backlog,
            syn_count: 0,
        }
    }

    /// Whether the accept queue has room for one more child.
    #[inline]
    pub(crate) fn has_room(&self) -> bool {
        self.len < self.backlog
    }
}

/// The queues of one stack's listeners, named by index; a closed
/// listener's entry is reused by the next `listen`.
#[derive(Debug, Default)]
pub(crate) struct AcceptQueues {
    queues: Vec<AcceptQueue>,
    free: Vec<u32>,
}

impl AcceptQueues {
    /// A queue for a new listener; returns its index.
    pub(crate) fn open(&mut self, backlog: u32) -> u32 {
        let q = AcceptQueue::new(backlog);
        match self.free.pop() {
            Some(i) => {
                self.queues[i as usize] = q;
                i
            }
            None => {
                self.queues.push(q);
                u32::try_from(self.queues.len() - 1).expect("fewer than 2^32 listeners")
            }
        }
    }

    /// Gives a closed listener's queue back.
    pub(crate) fn close(&mut self, index: u32) {
        debug_assert!(!self.free.contains(&index));
        self.free.push(index);
    }

    /// The queue at `index` (a listener's `ListenVars::queue`).
    #[inline]
    pub(crate) fn get(&self, index: u32) -> &AcceptQueue {
        &self.queues[index as usize]
    }

    /// The queue at `index`.
    #[inline]
    pub(crate) fn get_mut(&mut self, index: u32) -> &mut AcceptQueue {
        &mut self.queues[index as usize]
    }

    /// Queues open now.
    #[cfg(test)]
    pub(crate) fn open_count(&self) -> usize {
        self.queues.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_listeners_queue_is_reused_fresh() {
        let mut qs = AcceptQueues::default();
        let a = qs.open(4);
        let b = qs.open(8);
        assert_ne!(a, b);
        qs.get_mut(a).len = 4;
        qs.get_mut(a).syn_count = 2;
        assert!(!qs.get(a).has_room());
        assert!(qs.get(b).has_room());
        qs.close(a);
        assert_eq!(qs.open_count(), 1);
        let c = qs.open(1);
        assert_eq!(c, a, "the freed entry is reused");
        assert_eq!(*qs.get(c), AcceptQueue::new(1));
        assert_eq!(qs.open_count(), 2);
    }
}

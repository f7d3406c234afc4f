//! Wakers that are due, collected while an engine runs and woken by its
//! caller once it no longer borrows the engine.
//!
//! A waker may run code at once (a foreign executor's may poll its task
//! inside `wake`), and that code may make a socket call. If the wake ran
//! while the caller still held the stack, that call would find the stack
//! busy. So the engines never wake from inside: TCP's flow events, a freed
//! socket's waiters and UDP's readers and writers are pushed here, and the
//! runtime moves them out ([`Stack::take_wakes`](crate::stack::Stack::take_wakes))
//! and wakes them after its borrow ends.

use std::task::Waker;

/// Wakers due, in the order their events happened. Its capacity is kept
/// across ticks (no allocation in steady state).
#[derive(Debug, Default)]
pub struct WakeList {
    wakers: Vec<Waker>,
}

impl WakeList {
    /// An empty list with room for `n` wakers.
    pub fn with_capacity(n: usize) -> WakeList {
        WakeList {
            wakers: Vec::with_capacity(n),
        }
    }

    /// Adds a waker that is due.
    pub(crate) fn push(&mut self, w: Waker) {
        self.wakers.push(w);
    }

    /// How many wakers are due.
    pub fn len(&self) -> usize {
        self.wakers.len()
    }

    /// True when no waker is due.
    pub fn is_empty(&self) -> bool {
        self.wakers.is_empty()
    }

    /// Moves every due waker to the end of `out`; this list keeps its
    /// capacity.
    pub fn move_into(&mut self, out: &mut Vec<Waker>) {
        out.append(&mut self.wakers);
    }

    /// Wakes every due waker now, in order; returns how many. For a caller
    /// that owns the engine outright (a test, a benchmark): the wakes run
    /// while it still holds the engine.
    pub fn wake_all(&mut self) -> usize {
        let n = self.wakers.len();
        for w in self.wakers.drain(..) {
            w.wake();
        }
        n
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
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn moved_wakers_are_not_woken_until_the_caller_wakes_them() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let mut list = WakeList::with_capacity(4);
        list.push(Waker::from(count.clone()));
        list.push(Waker::from(count.clone()));
        let mut out = Vec::new();
        list.move_into(&mut out);
        assert!(list.is_empty());
        assert!(list.wakers.capacity() >= 4, "capacity kept");
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
        out.drain(..).for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn wake_all_wakes_in_place() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let mut list = WakeList::default();
        list.push(Waker::from(count.clone()));
        assert_eq!(list.wake_all(), 1);
        assert_eq!(list.wake_all(), 0);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
    }
}

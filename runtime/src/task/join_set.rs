//! [`JoinSet`]: a collection of tasks awaited in completion order.
//!
//! Each member's [`JoinHandle`] is polled with a waker of its own that
//! pushes the member's slot onto a shared ready queue and wakes whoever
//! waits in [`JoinSet::join_next`]. So `join_next` polls only members that
//! were woken (a finished task wakes its joiner), never the whole set.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use super::join::{AbortHandle, JoinError, JoinHandle};

/// The queue of members to poll, shared with the members' wakers (which
/// may fire on another thread: a [`spawn_blocking`](super::spawn_blocking)
/// member).
#[derive(Default)]
struct Ready {
    slots: VecDeque<usize>,
    /// The task waiting in `join_next`.
    waker: Option<Waker>,
}

struct MemberWaker {
    ready: Arc<Mutex<Ready>>,
    slot: usize,
}

impl Wake for MemberWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waker = {
            let mut r = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            r.slots.push_back(self.slot);
            r.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

struct Member<T> {
    handle: JoinHandle<T>,
    waker: Waker,
}

/// A collection of tasks spawned on the current core, awaited in the order
/// they complete (tokio's `JoinSet`).
///
/// All tasks must have the same output type `T`. Dropping the set aborts
/// every task still in it; [`detach_all`](Self::detach_all) lets them run
/// on instead.
///
/// # Differences from tokio
///
/// Tasks are core-local, so `spawn` needs no `Send` and is the same as
/// `spawn_local`; the set is not `Send`. Task ids (`join_next_with_id`,
/// `spawn_on`, `build_task`) are not provided.
///
/// # Examples
///
/// ```
/// use mtcp::task::JoinSet;
///
/// # mtcp::runtime::block_on(async {
/// let mut set = JoinSet::new();
/// for i in 0..10u64 {
///     set.spawn(async move {
///         mtcp::time::sleep(std::time::Duration::from_millis(10 - i)).await;
///         i
///     });
/// }
/// let mut order = Vec::new();
/// while let Some(res) = set.join_next().await {
///     order.push(res.unwrap());
/// }
/// assert_eq!(order.len(), 10);
/// assert!(set.is_empty());
/// # });
/// ```
pub struct JoinSet<T> {
    members: Vec<Option<Member<T>>>,
    free: Vec<usize>,
    len: usize,
    ready: Arc<Mutex<Ready>>,
    /// Member handles polled so far (for tests of the ready queue).
    handle_polls: u64,
}

impl<T> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            members: Vec::new(),
            free: Vec::new(),
            len: 0,
            ready: Arc::new(Mutex::new(Ready::default())),
            handle_polls: 0,
        }
    }

    /// The number of tasks in the set (finished ones not yet joined
    /// included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds the task behind `handle` to the set; it is polled at the next
    /// `join_next`.
    fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.members.push(None);
                self.members.len() - 1
            }
        };
        let waker = Waker::from(Arc::new(MemberWaker {
            ready: self.ready.clone(),
            slot,
        }));
        // Queued once, so the first join_next polls it and registers its
        // waker.
        waker.wake_by_ref();
        self.members[slot] = Some(Member { handle, waker });
        self.len += 1;
        abort
    }

    /// Polls for the next finished task: `Ready(None)` when the set is
    /// empty. Polls only the members woken since the last call.
    ///
    /// # Panics
    ///
    /// Never for a panicking task (its [`JoinError`] is returned).
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        if self.len == 0 {
            return Poll::Ready(None);
        }
        // Register first, so a wake between the queue check and the return
        // is not lost.
        {
            let mut r = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            match &r.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => r.waker = Some(cx.waker().clone()),
            }
        }
        match self.poll_ready_members() {
            Some(res) => Poll::Ready(Some(res)),
            None => Poll::Pending,
        }
    }

    /// Polls the members queued now (at most that many: wakes arriving
    /// meanwhile wait for the next call). `None` if none has finished.
    fn poll_ready_members(&mut self) -> Option<Result<T, JoinError>> {
        let queued = self
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .slots
            .len();
        for _ in 0..queued {
            let slot = {
                let mut r = self.ready.lock().unwrap_or_else(|e| e.into_inner());
                r.slots.pop_front()?
            };
            // A stale or duplicate wake finds an empty slot, or a member
            // that is simply polled once more.
            let Some(Some(member)) = self.members.get_mut(slot) else {
                continue;
            };
            let mut cx = Context::from_waker(&member.waker);
            self.handle_polls += 1;
            if let Poll::Ready(res) = Pin::new(&mut member.handle).poll(&mut cx) {
                self.members[slot] = None;
                self.free.push(slot);
                self.len -= 1;
                return Some(res);
            }
        }
        None
    }

    /// Waits for one of the tasks to finish and returns its output, or
    /// `None` if the set is empty. Cancel safe: a result is never lost if
    /// the future is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # mtcp::runtime::block_on(async {
    /// let mut set = mtcp::task::JoinSet::new();
    /// set.spawn(async { panic!("boom") });
    /// assert!(set.join_next().await.unwrap().unwrap_err().is_panic());
    /// assert!(set.join_next().await.is_none());
    /// # });
    /// ```
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Returns a finished task's output if one is ready now, without
    /// waiting; `None` if none is (or the set is empty).
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        if self.len == 0 {
            return None;
        }
        self.poll_ready_members()
    }

    /// Waits for every task and returns their outputs, in completion order.
    ///
    /// # Panics
    ///
    /// If a task panicked (the panic is resumed here) or was aborted; the
    /// other tasks are aborted first, as the set is dropped.
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        while let Some(res) = self.join_next().await {
            match res {
                Ok(v) => out.push(v),
                Err(e) => match e.try_into_panic() {
                    Ok(payload) => std::panic::resume_unwind(payload),
                    Err(e) => panic!("{e}"),
                },
            }
        }
        out
    }

    /// Aborts every task in the set. They stay in the set: `join_next`
    /// returns each, cancelled (or its output, if it finished first).
    pub fn abort_all(&mut self) {
        for m in self.members.iter().flatten() {
            m.handle.abort();
        }
    }

    /// Removes every task from the set without aborting it: they run on,
    /// detached.
    pub fn detach_all(&mut self) {
        self.members.clear();
        self.free.clear();
        self.len = 0;
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .slots
            .clear();
    }

    /// Aborts every task and waits until they have all stopped; the set is
    /// empty afterwards.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }
}

impl<T: 'static> JoinSet<T> {
    /// Spawns `task` on the current core and adds it to the set. Returns a
    /// handle to abort it alone.
    ///
    /// # Panics
    ///
    /// Off a runtime thread, like [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F>(&mut self, task: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(crate::task::spawn(task))
    }

    /// Same as [`spawn`](Self::spawn): every mtcp task is core-local.
    ///
    /// # Panics
    ///
    /// Off a runtime thread.
    #[track_caller]
    pub fn spawn_local<F>(&mut self, task: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(crate::task::spawn_local(task))
    }

    /// Runs `f` on a blocking thread ([`spawn_blocking`](super::spawn_blocking))
    /// and adds it to the set. Aborting it does not stop a running closure.
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send,
    {
        self.insert(super::spawn_blocking(f))
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> JoinSet<T> {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        self.abort_all();
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len).finish()
    }
}

impl<T: 'static, F> FromIterator<F> for JoinSet<T>
where
    F: Future<Output = T> + 'static,
{
    /// Spawns every future of the iterator into a new set.
    ///
    /// # Panics
    ///
    /// Off a runtime thread.
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> JoinSet<T> {
        let mut set = JoinSet::new();
        for f in iter {
            set.spawn(f);
        }
        set
    }
}

impl<T: 'static, F> Extend<F> for JoinSet<T>
where
    F: Future<Output = T> + 'static,
{
    fn extend<I: IntoIterator<Item = F>>(&mut self, iter: I) {
        for f in iter {
            self.spawn(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_next_polls_only_the_woken_member() {
        crate::runtime::block_on(async {
            let mut set = JoinSet::new();
            for _ in 0..1000 {
                set.spawn(std::future::pending::<u32>());
            }
            let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
            set.spawn(async move { rx.await.unwrap() });
            // The first look polls each member once, to register.
            assert!(set.try_join_next().is_none());
            assert_eq!(set.handle_polls, 1001);
            for _ in 0..10 {
                crate::task::yield_now().await;
            }
            assert!(set.try_join_next().is_none());
            assert_eq!(set.handle_polls, 1001, "nothing woke: nothing polled");
            tx.send(7).unwrap();
            assert_eq!(set.join_next().await.unwrap().unwrap(), 7);
            assert!(
                set.handle_polls <= 1003,
                "{} polls for one finished member",
                set.handle_polls
            );
            set.abort_all();
            let before = set.handle_polls;
            let mut n = 0;
            while let Some(r) = set.join_next().await {
                assert!(r.unwrap_err().is_cancelled());
                n += 1;
            }
            assert_eq!(n, 1000);
            // Each cancelled member is polled about once.
            assert!(set.handle_polls - before <= 2000);
        });
    }

    #[test]
    fn stale_wakes_of_reused_slots_are_harmless() {
        crate::runtime::block_on(async {
            let mut set = JoinSet::new();
            set.spawn(async { 1 });
            assert_eq!(set.join_next().await.unwrap().unwrap(), 1);
            // Slot 0 is reused; an extra wake for it only polls it again.
            set.spawn(std::future::pending::<i32>());
            assert!(set.try_join_next().is_none());
            set.members[0].as_ref().unwrap().waker.wake_by_ref();
            set.members[0].as_ref().unwrap().waker.wake_by_ref();
            assert!(set.try_join_next().is_none());
            assert_eq!(set.len(), 1);
            set.shutdown().await;
            assert!(set.is_empty());
        });
    }
}

//! [`LocalSet`]: tokio's set of `!Send` tasks, for programs that use it.
//!
//! Every mtcp task is already local to its core, so a `LocalSet` only
//! groups tasks: it counts them (awaiting the set waits for them all), makes
//! [`spawn_local`](crate::task::spawn_local) inside it join the set, holds
//! spawns made before a runtime runs, and aborts its tasks when dropped.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;

use super::join::{AbortHandle, Abortable, JoinError, JoinHandle, Joinable};

thread_local! {
    /// The set whose task (or `run_until` future) is being polled.
    static CURRENT: RefCell<Option<Rc<Shared>>> = const { RefCell::new(None) };
}

/// A spawn made before the set ran on a runtime thread.
type Deferred = Box<dyn FnOnce(&Rc<Shared>)>;

#[derive(Default)]
struct Shared {
    /// Spawns made off a runtime thread, started when the set first runs.
    pending: RefCell<Vec<Deferred>>,
    /// Tasks of the set not yet finished (pending ones included).
    live: Cell<usize>,
    /// Who awaits the set itself.
    waker: RefCell<Option<Waker>>,
    /// Started tasks, to abort when the set is dropped (finished ones are
    /// pruned as it grows).
    aborts: RefCell<Vec<AbortHandle>>,
}

impl Shared {
    /// Spawns `future` on the current core as a task of this set.
    fn spawn_now<F>(self: &Rc<Self>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let handle = super::current::expect_current("mtcp::task::LocalSet::spawn_local", |core| {
            core.exec.spawn(Tracked {
                future,
                _live: Live::new(self.clone()),
            })
        });
        let mut aborts = self.aborts.borrow_mut();
        if aborts.len() > 2 * self.live.get() + 16 {
            aborts.retain(|a| !a.is_finished());
        }
        aborts.push(handle.abort_handle());
        handle
    }

    /// Starts the spawns held until now.
    fn start_pending(self: &Rc<Self>) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for start in pending {
            start(self);
        }
    }
}

/// Counts one live task of a set; wakes the set's waiter when the last
/// one ends.
struct Live {
    set: Rc<Shared>,
}

impl Live {
    fn new(set: Rc<Shared>) -> Live {
        set.live.set(set.live.get() + 1);
        Live { set }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let left = self.set.live.get() - 1;
        self.set.live.set(left);
        if left == 0 {
            let waker = self.set.waker.borrow_mut().take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

/// Makes `set` the current set until dropped (also on unwind).
struct Enter {
    prev: Option<Rc<Shared>>,
}

impl Enter {
    fn new(set: &Rc<Shared>) -> Enter {
        let prev = CURRENT.with(|c| c.borrow_mut().replace(set.clone()));
        Enter { prev }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
    }
}

pin_project! {
    /// A task of a set: polled with the set current, counted while alive.
    struct Tracked<F> {
        #[pin]
        future: F,
        _live: Live,
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _enter = Enter::new(&this._live.set);
        this.future.poll(cx)
    }
}

/// Spawns on the current set, if a set's task or `run_until` is running.
pub(crate) fn spawn_on_current<F>(future: F) -> Result<JoinHandle<F::Output>, F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let set = CURRENT.try_with(|c| c.borrow().clone()).ok().flatten();
    match set {
        Some(set) => Ok(set.spawn_now(future)),
        None => Err(future),
    }
}

/// A set of tasks that run on the current thread (tokio's `LocalSet`).
///
/// On mtcp every task is core-local already, so a `LocalSet` is only
/// needed by programs written for tokio. It behaves as tokio's does:
/// [`spawn_local`](Self::spawn_local) adds a task to the set,
/// [`crate::task::spawn_local`] called from inside the set's tasks or
/// [`run_until`](Self::run_until) adds to the set too, awaiting the set
/// waits until all its tasks have finished, and dropping it aborts the
/// tasks still running.
///
/// # Differences from tokio
///
/// - A task spawned on a runtime thread starts at once and runs with the
///   core's other tasks, whether or not the set is being driven; tokio
///   polls a set's tasks only inside `run_until` or while the set is
///   awaited. Tasks spawned off a runtime thread wait until the set first
///   runs (`run_until`, `block_on` or awaiting it).
/// - [`crate::spawn`] inside the set spawns on the core, not in the set,
///   as in tokio.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use mtcp::task::LocalSet;
///
/// let rt = mtcp::runtime::Runtime::new().unwrap();
/// let local = LocalSet::new();
/// let shared = Rc::new(5); // not Send
/// let s = shared.clone();
/// let handle = local.spawn_local(async move { *s + 1 });
/// let v = local.block_on(&rt, async move {
///     let n = mtcp::task::spawn_local(async move { *shared * 2 }).await.unwrap();
///     n + handle.await.unwrap()
/// });
/// assert_eq!(v, 16);
/// ```
pub struct LocalSet {
    shared: Rc<Shared>,
}

impl LocalSet {
    /// An empty set.
    pub fn new() -> LocalSet {
        LocalSet {
            shared: Rc::new(Shared::default()),
        }
    }

    /// Spawns `future` as a task of this set and returns its handle.
    ///
    /// On a runtime thread the task starts at once; elsewhere it starts
    /// when the set first runs.
    pub fn spawn_local<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if super::current::in_runtime() {
            self.shared.start_pending();
            return self.shared.spawn_now(future);
        }
        let cell = Rc::new(DeferredCell {
            result: RefCell::new(None),
            waker: Cell::new(None),
            task: RefCell::new(None),
            abort_requested: Cell::new(false),
            finished: Cell::new(false),
        });
        let c = cell.clone();
        // Counted from now: awaiting the set waits for it.
        let live = Live::new(self.shared.clone());
        self.shared
            .pending
            .borrow_mut()
            .push(Box::new(move |set: &Rc<Shared>| {
                drop(live);
                if c.abort_requested.get() {
                    c.finish(Err(JoinError::cancelled()));
                    return;
                }
                let handle = set.spawn_now(future);
                *c.task.borrow_mut() = Some(handle.abort_handle());
                // Forward the output to the handle returned earlier.
                crate::task::spawn(async move {
                    let result = handle.await;
                    c.finish(result);
                });
            }));
        JoinHandle::from_joinable(cell)
    }

    /// Runs `future` to completion with this set current: tasks it spawns
    /// with [`spawn_local`](crate::task::spawn_local) join the set. Tasks
    /// of the set keep running while it waits. Returns when `future` does,
    /// whether or not the set's tasks have finished.
    ///
    /// # Panics
    ///
    /// If polled off a runtime thread while spawns are held.
    pub async fn run_until<F: Future>(&self, future: F) -> F::Output {
        self.shared.start_pending();
        let mut future = pin!(future);
        poll_fn(|cx| {
            let _enter = Enter::new(&self.shared);
            future.as_mut().poll(cx)
        })
        .await
    }

    /// Makes this set current until the guard drops, so
    /// [`spawn_local`](crate::task::spawn_local) adds to it.
    pub fn enter(&self) -> LocalEnterGuard {
        LocalEnterGuard {
            _enter: Enter::new(&self.shared),
        }
    }
}

impl Default for LocalSet {
    fn default() -> LocalSet {
        LocalSet::new()
    }
}

impl fmt::Debug for LocalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSet")
            .field("tasks", &self.shared.live.get())
            .finish()
    }
}

/// Awaiting a `LocalSet` runs until every task of the set has finished.
impl Future for LocalSet {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.shared.start_pending();
        if self.shared.live.get() == 0 {
            return Poll::Ready(());
        }
        let mut w = self.shared.waker.borrow_mut();
        match &*w {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for LocalSet {
    fn drop(&mut self) {
        for a in self.shared.aborts.borrow_mut().drain(..) {
            a.abort();
        }
        // Held spawns never start; dropping them drops their futures.
        let pending = std::mem::take(&mut *self.shared.pending.borrow_mut());
        drop(pending);
    }
}

/// Guard of [`LocalSet::enter`]: the set stays current until it drops.
pub struct LocalEnterGuard {
    _enter: Enter,
}

impl fmt::Debug for LocalEnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEnterGuard").finish()
    }
}

/// The handle side of a spawn held until the set runs.
struct DeferredCell<T> {
    result: RefCell<Option<Result<T, JoinError>>>,
    waker: Cell<Option<Waker>>,
    task: RefCell<Option<AbortHandle>>,
    abort_requested: Cell<bool>,
    finished: Cell<bool>,
}

impl<T> DeferredCell<T> {
    fn finish(&self, result: Result<T, JoinError>) {
        *self.result.borrow_mut() = Some(result);
        self.finished.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl<T: 'static> Joinable<T> for DeferredCell<T> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        if let Some(r) = self.result.borrow_mut().take() {
            return Poll::Ready(r);
        }
        assert!(!self.finished.get(), "JoinHandle polled after completion");
        let waker = match self.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.waker.set(Some(waker));
        Poll::Pending
    }

    fn as_abortable(self: Rc<Self>) -> Rc<dyn Abortable> {
        self
    }
}

impl<T: 'static> Abortable for DeferredCell<T> {
    fn abort(&self) {
        match &*self.task.borrow() {
            Some(task) => task.abort(),
            None => self.abort_requested.set(true),
        }
    }

    fn is_finished(&self) -> bool {
        self.finished.get()
    }
}

//! [`Handle`] and what a task can ask about its core ([`current_core`],
//! [`core_count`], [`run_on`], shutdown).

use std::fmt;
use std::future::Future;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::run::{Peers, Shared};
use crate::context;
use crate::task::waker::Msg;

/// The index of the core running the caller, `0..core_count()`.
///
/// # Panics
///
/// Off a runtime thread.
#[track_caller]
pub fn current_core() -> usize {
    context::expect_core("mtcp::runtime::current_core", |c| c.id.index())
}

/// The number of cores of the caller's runtime.
///
/// # Panics
///
/// Off a runtime thread.
#[track_caller]
pub fn core_count() -> usize {
    context::expect_core("mtcp::runtime::core_count", |c| c.id.count())
}

/// Why [`run_on`] could not deliver its closure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOnError {
    /// There is no core with that index.
    NoSuchCore,
    /// The core has stopped.
    Stopped,
}

impl fmt::Display for RunOnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunOnError::NoSuchCore => f.write_str("no core with that index"),
            RunOnError::Stopped => f.write_str("the core has stopped"),
        }
    }
}

impl std::error::Error for RunOnError {}

/// Runs `f` on core `core`'s thread, at that core's next tick (in the order
/// sent). `f` may [`spawn`](crate::spawn) tasks there. A panic in `f` is
/// logged and does not stop the core.
///
/// # Errors
///
/// [`RunOnError`] if there is no such core or it has stopped.
///
/// # Panics
///
/// Off a runtime thread.
///
/// # Examples
///
/// ```
/// use mtcp::runtime::{current_core, run_on};
/// use mtcp::sync::oneshot;
///
/// # mtcp::runtime::block_on(async {
/// let (tx, rx) = oneshot::channel();
/// run_on(0, move || {
///     mtcp::spawn(async move { tx.send(current_core()).unwrap() });
/// })
/// .unwrap();
/// assert_eq!(rx.await.unwrap(), 0);
/// # });
/// ```
#[track_caller]
pub fn run_on(core: usize, f: impl FnOnce() + Send + 'static) -> Result<(), RunOnError> {
    let remote = context::expect_core("mtcp::runtime::run_on", |c| {
        c.net.peers.borrow().get(core).cloned()
    })
    .ok_or(RunOnError::NoSuchCore)?;
    if remote.send(Msg::Run(Box::new(f))) {
        Ok(())
    } else {
        Err(RunOnError::Stopped)
    }
}

/// A handle to a running runtime's cores, usable from any thread (it is
/// `Send + Sync + Clone`): send closures to a core or request shutdown, e.g.
/// from a signal-handling thread.
///
/// # Examples
///
/// ```
/// use mtcp::runtime::Handle;
///
/// # mtcp::runtime::block_on(async {
/// let handle = Handle::current();
/// let (tx, rx) = mtcp::sync::oneshot::channel();
/// std::thread::spawn(move || {
///     handle.run_on(0, move || tx.send(mtcp::runtime::current_core()).unwrap()).unwrap();
/// });
/// assert_eq!(rx.await.unwrap(), 0);
/// # });
/// ```
#[derive(Clone)]
pub struct Handle {
    /// The cores of the run this handle was taken in (empty for
    /// [`Runtime::handle`], which looks the running run up in `owner`).
    pub(super) peers: Peers,
    /// Set by [`Runtime::handle`]: the runtime whose current or next run
    /// the handle reaches.
    pub(super) owner: Option<Shared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("cores", &self.core_count())
            .finish()
    }
}

/// The panic message of [`Handle::current`] off a runtime thread, in the
/// shape of tokio's.
const NO_RUNTIME: &str =
    "there is no reactor running, must be called from the context of an mtcp runtime";

/// Polls `future` to completion on the calling (non-runtime) thread,
/// parking it between wakes.
fn park_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

impl Handle {
    /// The handle of the runtime running the caller.
    ///
    /// # Panics
    ///
    /// Off a runtime thread.
    #[track_caller]
    pub fn current() -> Handle {
        match Handle::try_current() {
            Ok(h) => h,
            Err(_) => panic!("{NO_RUNTIME}"),
        }
    }

    /// The handle of the runtime running the caller, or an error off a
    /// runtime thread.
    ///
    /// # Errors
    ///
    /// [`TryCurrentError`] off a runtime thread.
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        context::with_core(|c| Handle {
            peers: c.net.peers.borrow().clone(),
            owner: None,
        })
        .ok_or(TryCurrentError { _private: () })
    }

    /// The cores this handle reaches now (none between the runs of a
    /// [`Runtime::handle`]).
    fn peers(&self) -> Peers {
        match &self.owner {
            Some(owner) => owner.running().unwrap_or_else(|| Arc::from(Vec::new())),
            None => self.peers.clone(),
        }
    }

    /// The number of cores.
    pub fn core_count(&self) -> usize {
        match &self.owner {
            Some(owner) => owner.config.cores,
            None => self.peers.len(),
        }
    }

    /// Runs `f` on core `core`'s thread at its next tick. See [`run_on`].
    ///
    /// # Errors
    ///
    /// [`RunOnError`] if there is no such core or it has stopped (the run
    /// is over; for [`Runtime::handle`]: no run is going on).
    pub fn run_on(&self, core: usize, f: impl FnOnce() + Send + 'static) -> Result<(), RunOnError> {
        if core >= self.core_count() {
            return Err(RunOnError::NoSuchCore);
        }
        let peers = self.peers();
        let remote = peers.get(core).ok_or(RunOnError::Stopped)?;
        if remote.send(Msg::Run(Box::new(f))) {
            Ok(())
        } else {
            Err(RunOnError::Stopped)
        }
    }

    /// Runs `future` to completion and returns its output, blocking the
    /// calling thread (tokio's `Handle::block_on`).
    ///
    /// mtcp is thread per core, and a future doing I/O must run on a core:
    ///
    /// * while the runtime runs (a handle from [`Handle::current`], or a
    ///   [`Runtime::handle`] during a `block_on`), the future is sent to
    ///   core 0 through its inbox and runs there as a task; the caller
    ///   blocks until it completes;
    /// * a [`Runtime::handle`] between runs runs the runtime itself on the
    ///   calling thread, exactly as [`Runtime::block_on`] does (cores start,
    ///   the future runs on core 0, the run ends when it completes).
    ///
    /// # Differences from tokio
    ///
    /// The future must be `Send` (it may move to core 0's thread). tokio
    /// polls it on the calling thread instead.
    ///
    /// # Panics
    ///
    /// On a thread of an mtcp runtime (blocking a core would stop it); if
    /// the future panics; if the run it was sent to ends first.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = mtcp::runtime::Runtime::new().unwrap();
    /// let handle = rt.handle().clone();
    /// rt.block_on(async move {
    ///     let core = std::thread::spawn(move || {
    ///         handle.block_on(async { mtcp::runtime::current_core() })
    ///     });
    ///     // Core 0 keeps running while the plain thread waits.
    ///     while !core.is_finished() {
    ///         mtcp::task::yield_now().await;
    ///     }
    ///     assert_eq!(core.join().unwrap(), 0);
    /// });
    /// ```
    #[track_caller]
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        assert!(
            !context::in_runtime(),
            "Cannot start a runtime from within a runtime. This happens because a function \
             (like `block_on`) attempted to block the current thread while the thread is \
             being used to drive asynchronous tasks."
        );
        let peers = self.peers();
        if peers.is_empty() {
            if let Some(owner) = &self.owner {
                // Between runs: this thread runs the runtime, as
                // `Runtime::block_on`.
                return match owner.try_block_on(future) {
                    Ok(v) => v,
                    Err(e) => panic!("{e}"),
                };
            }
        }
        let run = Handle { peers, owner: None };
        match park_on(spawn_remote(&run, 0, future)) {
            Ok(v) => v,
            Err(e) if e.is_panic() => resume_unwind(e.into_panic()),
            Err(_) => panic!(
                "mtcp: Handle::block_on: the runtime's run ended before the future completed"
            ),
        }
    }

    /// Spawns `future` on this runtime and returns a handle to await its
    /// output (tokio's `Handle::spawn`).
    ///
    /// Called on a thread of this runtime, the task starts on the caller's
    /// core (as [`crate::spawn`]). Called from any other thread (a plain
    /// thread, another runtime), it is sent to core 0 and its output comes
    /// back through a channel: that handle may be awaited on any executor
    /// (but, not being `Send`, on the thread that called `spawn`).
    ///
    /// # Differences from tokio
    ///
    /// The future must be `Send` (it may cross threads) and stays on the
    /// core it starts on. If the runtime's run ends first (its
    /// `block_on` returned), the handle gives a cancelled [`JoinError`](crate::task::JoinError).
    ///
    /// # Examples
    ///
    /// ```
    /// use mtcp::runtime::Handle;
    ///
    /// # mtcp::runtime::block_on(async {
    /// let handle = Handle::current();
    /// assert_eq!(handle.spawn(async { 1 }).await.unwrap(), 1);
    /// let (tx, rx) = mtcp::sync::oneshot::channel();
    /// std::thread::spawn(move || {
    ///     let h = handle.spawn(async { mtcp::runtime::current_core() * 10 + 7 });
    ///     // Another executor awaits it: here, a minimal one (tokio's
    ///     // oneshot works anywhere).
    ///     let v = mtcp::runtime::block_on(h).unwrap();
    ///     tx.send(v).unwrap();
    /// });
    /// assert_eq!(rx.await.unwrap(), 7);
    /// # });
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> crate::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let peers = self.peers();
        let here = context::with_core(|c| Arc::ptr_eq(&c.net.peers.borrow(), &peers));
        if here == Some(true) {
            return crate::spawn(future);
        }
        if peers.is_empty() {
            if let Some(owner) = &self.owner {
                // Between runs: queued for the next, as `Runtime::spawn`.
                return spawn_next_run(owner, future);
            }
        }
        spawn_remote(&Handle { peers, owner: None }, 0, future)
    }

    /// Runs `f` on a blocking thread, as
    /// [`spawn_blocking`](crate::task::spawn_blocking).
    pub fn spawn_blocking<F, R>(&self, f: F) -> crate::task::JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::task::spawn_blocking(f)
    }

    /// Asks every core to shut down gracefully. See [`request_shutdown`].
    pub fn request_shutdown(&self) {
        for p in self.peers().iter() {
            p.send(Msg::Shutdown);
        }
    }
}

/// The error of [`Handle::try_current`]: the caller runs on no runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TryCurrentError {
    _private: (),
}

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NO_RUNTIME)
    }
}

impl std::error::Error for TryCurrentError {}

/// Asks every core of the caller's runtime to shut down gracefully: each
/// core's [`shutdown_requested`] future completes, so the program can wind
/// down (stop accepting, finish requests) and return from its main future.
///
/// # Panics
///
/// Off a runtime thread.
#[track_caller]
pub fn request_shutdown() {
    Handle::current().request_shutdown();
}

/// Whether a shutdown was requested on this core.
///
/// # Panics
///
/// Off a runtime thread.
#[track_caller]
pub fn is_shutdown_requested() -> bool {
    context::expect_core("mtcp::runtime::is_shutdown_requested", |c| {
        c.shutdown.requested.get()
    })
}

/// A future that completes when a shutdown is requested on this core
/// ([`request_shutdown`] from any core, or the runtime stopping).
///
/// # Examples
///
/// ```
/// # mtcp::runtime::block_on(async {
/// mtcp::runtime::request_shutdown();
/// mtcp::runtime::shutdown_requested().await;
/// assert!(mtcp::runtime::is_shutdown_requested());
/// # });
/// ```
pub fn shutdown_requested() -> ShutdownRequested {
    ShutdownRequested { _private: () }
}

/// Future returned by [`shutdown_requested`].
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ShutdownRequested {
    _private: (),
}

impl Future for ShutdownRequested {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        context::expect_core("mtcp::runtime::shutdown_requested", |c| {
            if c.shutdown.requested.get() {
                return Poll::Ready(());
            }
            let mut waiters = c.shutdown.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

/// Spawns `future` on the running run of `owner`, or queues it for its
/// next run.
fn spawn_next_run<F>(owner: &Shared, future: F) -> crate::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut s = owner.spawns();
    if let Some(peers) = s.running.clone() {
        drop(s);
        return Handle { peers, owner: None }.spawn(future);
    }
    let (start, join) = crate::task::deferred(future);
    s.queued.push(start);
    join
}

/// Spawns `future` on core `core` of `handle`'s runtime; its output comes
/// back through a channel.
pub(super) fn spawn_remote<F>(
    handle: &Handle,
    core: usize,
    future: F,
) -> crate::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (start, join) = crate::task::deferred(future);
    // If the core has stopped, the closure is dropped with the sender: the
    // handle then reports a cancelled task.
    let _ = handle.run_on(core, start);
    join
}

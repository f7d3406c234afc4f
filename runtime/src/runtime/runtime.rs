//! [`Runtime`]: a configuration of cores, started for each `block_on`.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;

use super::handle::Handle;
use super::run::Shared;
use crate::reactor::Config;

/// An mtcp runtime: a configuration of cores, started by
/// [`block_on`](Runtime::block_on) or
/// [`block_on_each_core`](Runtime::block_on_each_core) and stopped when
/// they return. Tasks still running then are dropped (cancelled).
///
/// # Examples
///
/// ```
/// let rt = mtcp::runtime::Runtime::new().unwrap();
/// let v = rt.block_on(async {
///     let h = mtcp::spawn(async { 20 });
///     h.await.unwrap() + 1
/// });
/// assert_eq!(v, 21);
/// ```
pub struct Runtime {
    /// The configuration, and the spawns made with [`Runtime::spawn`].
    pub(super) shared: Shared,
    /// [`Runtime::handle`].
    pub(super) handle: Handle,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub(crate) fn from_config(config: Config) -> Runtime {
        let shared = Shared::new(config);
        Runtime {
            handle: Handle {
                peers: Arc::from(Vec::new()),
                owner: Some(shared.clone()),
            },
            shared,
        }
    }

    /// The number of cores.
    pub fn cores(&self) -> usize {
        self.shared.config.cores
    }

    /// Spawns `future` on this runtime (tokio's `Runtime::spawn`) and
    /// returns a handle to await its output.
    ///
    /// mtcp starts its cores for each [`block_on`](Self::block_on): while
    /// one runs, this is [`Handle::spawn`] (the caller's core on a runtime
    /// thread, core 0 from elsewhere); otherwise the task waits and starts
    /// on core 0 when the next `block_on` begins. Tasks still running when
    /// `block_on` returns are cancelled, as any task.
    ///
    /// # Differences from tokio
    ///
    /// tokio's runtime runs spawned tasks at once on its worker threads;
    /// mtcp's runs nothing outside `block_on` (or
    /// [`block_on_each_core`](Self::block_on_each_core), whose core 0
    /// likewise takes the queued tasks).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = mtcp::runtime::Runtime::new().unwrap();
    /// let handle = rt.spawn(async { 20 });
    /// assert_eq!(rt.block_on(async move { handle.await.unwrap() + 1 }), 21);
    /// ```
    pub fn spawn<F>(&self, future: F) -> crate::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// A handle to this runtime, usable from any thread: it reaches the
    /// runtime's current run, or its next one (tokio's `Runtime::handle`).
    ///
    /// Between runs, [`Handle::spawn`] queues the task for the next run (as
    /// [`Runtime::spawn`]), [`Handle::block_on`] runs the runtime itself on
    /// the calling thread (as [`Runtime::block_on`]), and
    /// [`Handle::run_on`] answers [`RunOnError::Stopped`](crate::runtime::RunOnError::Stopped).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = mtcp::runtime::Runtime::new().unwrap();
    /// let handle = rt.handle().clone();
    /// assert_eq!(handle.block_on(async { 6 * 7 }), 42);
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.handle
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

    /// Shuts the runtime down, waiting at most `timeout` (tokio's
    /// `shutdown_timeout`).
    ///
    /// An mtcp runtime runs only inside [`block_on`](Self::block_on) (and
    /// [`block_on_each_core`](Self::block_on_each_core)), and each run ends
    /// by closing its connections gracefully within the
    /// [shutdown linger](Builder::shutdown_linger): by the time this can be
    /// called (it takes the runtime by value, so no run is going on), every
    /// connection has delivered its data and FIN, or was reset at the
    /// linger bound. What is left is dropped at once: queued
    /// [`spawn`](Self::spawn)s are cancelled; threads of
    /// [`spawn_blocking`](Self::spawn_blocking) are not waited for (they
    /// finish on their own, as with `shutdown_background`). So this returns
    /// at once, well within any `timeout`; to bound the closing itself, set
    /// [`Builder::shutdown_linger`] (`MTCP_SHUTDOWN_LINGER`).
    pub fn shutdown_timeout(self, timeout: std::time::Duration) {
        let _ = timeout;
        drop(self);
    }

    /// Shuts the runtime down without waiting (tokio's
    /// `shutdown_background`); see
    /// [`shutdown_timeout`](Self::shutdown_timeout): there is no run to
    /// wait for.
    pub fn shutdown_background(self) {
        drop(self);
    }

    /// Runs `future` to completion on the calling thread, which becomes core
    /// 0. With more than one core, cores `1..n` start on their own (pinned)
    /// threads without a main future: they run what [`run_on`](crate::runtime::run_on) sends them,
    /// and stop when `future` completes.
    ///
    /// Tasks still running when `future` completes are dropped.
    ///
    /// # Panics
    ///
    /// If `future` panics (after the cores were stopped), if a core's I/O
    /// driver fails to start, or if the thread already runs a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = mtcp::runtime::Runtime::new().unwrap();
    /// assert_eq!(rt.block_on(async { "done" }), "done");
    /// ```
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self.try_block_on(future) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`block_on`](Self::block_on), returning a core start-up failure as an
    /// error instead of panicking.
    ///
    /// # Errors
    ///
    /// The first core's I/O driver error.
    pub fn try_block_on<F: Future>(&self, future: F) -> io::Result<F::Output> {
        self.shared.try_block_on(future)
    }

    /// Runs the future made by `main` once on every core, each core on its
    /// own thread (pinned with `core_affinity` when the machine has enough
    /// CPUs), and returns their outputs in core order.
    ///
    /// A core whose main future completed keeps running its tasks and
    /// serving [`run_on`](crate::runtime::run_on) until every core's main future has completed; then
    /// all stop and their threads are joined.
    ///
    /// # Panics
    ///
    /// If a core's main future panics: the other cores are stopped and
    /// joined, then the first panic (in core order) is resumed. Also if a
    /// core's I/O driver fails to start.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = mtcp::runtime::Builder::new().cores(2).build().unwrap();
    /// let cores = rt.block_on_each_core(|| async { mtcp::runtime::current_core() });
    /// assert_eq!(cores, vec![0, 1]);
    /// ```
    #[track_caller]
    pub fn block_on_each_core<M, F>(&self, main: M) -> Vec<F::Output>
    where
        M: Fn() -> F + Send + Sync + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        match self.try_block_on_each_core(main) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`block_on_each_core`](Self::block_on_each_core), returning a core
    /// start-up failure as an error.
    ///
    /// # Errors
    ///
    /// The first core's I/O driver error.
    pub fn try_block_on_each_core<M, F>(&self, main: M) -> io::Result<Vec<F::Output>>
    where
        M: Fn() -> F + Send + Sync + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        self.shared.try_block_on_each_core(main)
    }
}

/// [`LocalSet::block_on`](crate::task::LocalSet::block_on) lives here, with the [`Runtime`] it runs on, so
/// that `task` does not depend on `runtime`.
impl crate::task::LocalSet {
    /// Runs `future` on `rt` with this set current, as
    /// `rt.block_on(self.run_until(future))`.
    ///
    /// # Panics
    ///
    /// As [`Runtime::block_on`].
    #[track_caller]
    pub fn block_on<F: Future>(&self, rt: &Runtime, future: F) -> F::Output {
        rt.block_on(self.run_until(future))
    }
}

//! The runtime: [`Builder`], [`Runtime`], and what a task can ask about its
//! core ([`current_core`], [`core_count`], [`run_on`], shutdown).
//!
//! Thread per core, shared nothing: each core runs its own executor, timer
//! wheel and I/O driver on its own thread. Cores talk only through messages
//! ([`run_on`]) that the receiving core handles once per tick.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::process::{ExitCode, Termination};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::Instant as StdInstant;

use crate::builder::Config;
pub use crate::builder::{Builder, IdlePolicy, DEFAULT_SHUTDOWN_LINGER, DEFAULT_TASK_BUDGET};
use crate::context;
use crate::driver::CoreId;
use crate::reactor::Core;
use crate::task::waker::{Msg, Remote};

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
    config: Arc<Config>,
    /// Spawns made with [`Runtime::spawn`], and the running run's handle.
    spawns: Arc<Mutex<Spawns>>,
    /// [`Runtime::handle`].
    handle: Handle,
}

/// [`Runtime::spawn`]'s state: spawns wait in `queued` until a run starts;
/// during a run they go to its `running` handle.
#[derive(Default)]
struct Spawns {
    queued: Vec<crate::task::Start>,
    running: Option<Handle>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Clears [`Spawns::running`] when a run's main future ends (or unwinds).
struct RunningGuard(Arc<Mutex<Spawns>>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).running = None;
    }
}

/// Why a core did not give a main result.
enum Outcome<T> {
    Done(T),
    Stopped,
    StartFailed,
    Panicked(Box<dyn Any + Send>),
}

/// Start-up rendezvous of one run's cores: every core registers its inbox,
/// then all learn each other's.
struct Startup {
    config: Arc<Config>,
    epoch: StdInstant,
    remotes: Mutex<Vec<Option<Arc<Remote>>>>,
    arrived: Mutex<usize>,
    all_arrived: Condvar,
    error: Mutex<Option<io::Error>>,
    mains_left: AtomicUsize,
    cpus: Option<Vec<core_affinity::CoreId>>,
    /// [`Runtime::spawn`]'s queue and handle: core 0 starts the queued
    /// spawns and takes the later ones while it runs.
    spawns: Arc<Mutex<Spawns>>,
}

impl Startup {
    fn new(config: Arc<Config>, spawns: Arc<Mutex<Spawns>>, mains: usize, pin: bool) -> Startup {
        let n = config.cores;
        let cpus = if pin && config.pin_threads {
            match core_affinity::get_core_ids() {
                Some(ids) if ids.len() >= config.first_cpu + n => {
                    Some(ids[config.first_cpu..config.first_cpu + n].to_vec())
                }
                other => {
                    log::warn!(
                        "mtcp: {n} cores from CPU {} requested but {} CPUs are available; core threads are not pinned",
                        config.first_cpu,
                        other.map_or(0, |ids| ids.len())
                    );
                    None
                }
            }
        } else {
            None
        };
        Startup {
            epoch: config.epoch,
            config,
            remotes: Mutex::new(vec![None; n]),
            arrived: Mutex::new(0),
            all_arrived: Condvar::new(),
            error: Mutex::new(None),
            mains_left: AtomicUsize::new(mains),
            cpus,
            spawns,
        }
    }

    fn fail(&self, e: io::Error) {
        let mut err = self.error.lock().unwrap_or_else(|e| e.into_inner());
        err.get_or_insert(e);
    }

    fn failed(&self) -> bool {
        self.error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn take_error(&self) -> io::Error {
        self.error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| {
                io::Error::other("mtcp: a core stopped before its main future completed")
            })
    }

    /// One participant has arrived (or will never come: a failed spawn).
    fn arrive(&self) {
        let mut arrived = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
        *arrived += 1;
        if *arrived >= self.config.cores {
            self.all_arrived.notify_all();
        }
    }

    fn wait_all(&self) {
        let mut arrived = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
        while *arrived < self.config.cores {
            arrived = self
                .all_arrived
                .wait(arrived)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn peers(&self) -> Arc<[Arc<Remote>]> {
        let remotes = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        remotes.iter().flatten().cloned().collect()
    }

    /// Runs core `index` on the calling thread: build, rendezvous, run
    /// `main` (lingering after it if `linger`), tear down.
    fn run_core<F: Future>(
        &self,
        index: usize,
        pin: bool,
        linger: bool,
        main: impl FnOnce() -> F,
    ) -> Outcome<F::Output> {
        if pin {
            if let Some(cpus) = &self.cpus {
                if !core_affinity::set_for_current(cpus[index]) {
                    log::warn!("mtcp: could not pin core {index} to CPU {:?}", cpus[index]);
                }
            }
        }
        let id = CoreId::new(index, self.config.cores);
        let core = match Core::new(id, self.config.clone(), self.epoch) {
            Ok(core) => {
                self.remotes.lock().unwrap_or_else(|e| e.into_inner())[index] =
                    Some(core.remote.clone());
                Some(core)
            }
            Err(e) => {
                self.fail(io::Error::new(
                    e.kind(),
                    format!("mtcp: core {index}: failed to start its I/O driver: {e}"),
                ));
                None
            }
        };
        self.arrive();
        self.wait_all();
        let Some(core) = core else {
            return Outcome::StartFailed;
        };
        let core = Rc::new(core);
        let guard = context::enter(core.clone());
        if self.failed() {
            core.teardown();
            return Outcome::StartFailed;
        }
        let peers = self.peers();
        *core.peers.borrow_mut() = peers.clone();
        let _running = (index == 0).then(|| {
            let queued = {
                let mut s = self.spawns.lock().unwrap_or_else(|e| e.into_inner());
                s.running = Some(Handle {
                    peers: peers.clone(),
                    owner: None,
                });
                std::mem::take(&mut s.queued)
            };
            for start in queued {
                start();
            }
            RunningGuard(self.spawns.clone())
        });
        let on_main_done = || {
            if self.mains_left.fetch_sub(1, Ordering::AcqRel) == 1 {
                stop_all(&peers);
            }
        };
        let result = catch_unwind(AssertUnwindSafe(|| core.run(main(), linger, &on_main_done)));
        if result.is_err() || !linger {
            // Tell the other cores to stop; this run is over (they close
            // their connections while this one does).
            stop_all(&peers);
        }
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| core.teardown())) {
            log::error!(
                "mtcp: core {index}: a task's destructor panicked at shutdown: {}",
                crate::reactor::panic_message(&*p)
            );
        }
        drop(guard);
        match result {
            Ok(Some(v)) => Outcome::Done(v),
            Ok(None) => Outcome::Stopped,
            Err(p) => Outcome::Panicked(p),
        }
    }
}

fn stop_all(peers: &[Arc<Remote>]) {
    for p in peers {
        p.send(Msg::Stop);
    }
}

impl Runtime {
    /// A runtime configured from the environment, network included (see
    /// [`Builder::from_env`]), as tokio's `Runtime::new` has I/O enabled.
    ///
    /// # Errors
    ///
    /// A bad `MTCP_*` variable (one line naming it), or a device that
    /// cannot be opened.
    pub fn new() -> io::Result<Runtime> {
        Builder::from_env()?.build()
    }

    pub(crate) fn from_config(config: Config) -> Runtime {
        let config = Arc::new(config);
        let spawns: Arc<Mutex<Spawns>> = Arc::default();
        Runtime {
            handle: Handle {
                peers: Arc::from(Vec::new()),
                owner: Some(Owner {
                    config: config.clone(),
                    spawns: spawns.clone(),
                }),
            },
            config,
            spawns,
        }
    }

    /// The number of cores.
    pub fn cores(&self) -> usize {
        self.config.cores
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
        self.owner().spawn(future)
    }

    fn owner(&self) -> Owner {
        Owner {
            config: self.config.clone(),
            spawns: self.spawns.clone(),
        }
    }

    /// A handle to this runtime, usable from any thread: it reaches the
    /// runtime's current run, or its next one (tokio's `Runtime::handle`).
    ///
    /// Between runs, [`Handle::spawn`] queues the task for the next run (as
    /// [`Runtime::spawn`]), [`Handle::block_on`] runs the runtime itself on
    /// the calling thread (as [`Runtime::block_on`]), and
    /// [`Handle::run_on`] answers [`RunOnError::Stopped`].
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
    /// threads without a main future: they run what [`run_on`] sends them,
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
        assert!(
            !context::in_runtime(),
            "Cannot start an mtcp runtime from within a runtime: this thread already runs one"
        );
        let startup = Arc::new(Startup::new(
            self.config.clone(),
            self.spawns.clone(),
            0,
            true,
        ));
        let threads = self.spawn_cores(&startup, 1, |s, i| {
            let _ = s.run_core(i, true, true, std::future::pending::<()>);
        });
        let result = startup.run_core(0, false, false, || future);
        stop_all(&startup.peers());
        for t in threads {
            let _ = t.join();
        }
        match result {
            Outcome::Done(v) => Ok(v),
            Outcome::Panicked(p) => resume_unwind(p),
            Outcome::StartFailed | Outcome::Stopped => Err(startup.take_error()),
        }
    }

    /// Runs the future made by `main` once on every core, each core on its
    /// own thread (pinned with `core_affinity` when the machine has enough
    /// CPUs), and returns their outputs in core order.
    ///
    /// A core whose main future completed keeps running its tasks and
    /// serving [`run_on`] until every core's main future has completed; then
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
        let n = self.config.cores;
        let startup = Arc::new(Startup::new(
            self.config.clone(),
            self.spawns.clone(),
            n,
            true,
        ));
        let main = Arc::new(main);
        let (tx, rx) = std::sync::mpsc::channel();
        let threads = self.spawn_cores(&startup, 0, move |s, i| {
            let out = s.run_core(i, true, true, || main());
            let _ = tx.send((i, out));
        });
        for t in threads {
            let _ = t.join();
        }
        let mut outcomes: Vec<Option<Outcome<F::Output>>> = (0..n).map(|_| None).collect();
        for (i, out) in rx.try_iter() {
            outcomes[i] = Some(out);
        }
        collect_outcomes(outcomes, &startup)
    }

    /// Starts cores `first..n` on their own threads running `body`.
    fn spawn_cores<B>(
        &self,
        startup: &Arc<Startup>,
        first: usize,
        body: B,
    ) -> Vec<std::thread::JoinHandle<()>>
    where
        B: Fn(&Startup, usize) + Send + Sync + Clone + 'static,
    {
        let mut threads = Vec::with_capacity(self.config.cores);
        for i in first..self.config.cores {
            let s = startup.clone();
            let body = body.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("mtcp-core-{i}"))
                .spawn(move || body(&s, i));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    startup.fail(io::Error::new(
                        e.kind(),
                        format!("mtcp: core {i}: failed to spawn its thread: {e}"),
                    ));
                    startup.arrive();
                }
            }
        }
        threads
    }

    /// The entry point of `#[mtcp::main]` with more than one core: core 0 on
    /// the calling thread (its output needs no `Send`), the others on their
    /// own threads, their outputs handed to `report` there (false: failed).
    fn main_on_cores<M, F>(
        &self,
        main: M,
        report: fn(F::Output) -> bool,
    ) -> io::Result<(F::Output, Vec<usize>)>
    where
        M: Fn() -> F + Send + Sync + 'static,
        F: Future + 'static,
    {
        let n = self.config.cores;
        let startup = Arc::new(Startup::new(
            self.config.clone(),
            self.spawns.clone(),
            n,
            true,
        ));
        let main = Arc::new(main);
        let failures = Arc::new(Mutex::new(Vec::new()));
        let (m, f) = (main.clone(), failures.clone());
        let threads = self.spawn_cores(&startup, 1, move |s, i| {
            let out = s.run_core(i, true, true, || m());
            match out {
                Outcome::Done(v) => {
                    if !report(v) {
                        f.lock().unwrap_or_else(|e| e.into_inner()).push(i);
                    }
                }
                Outcome::Panicked(p) => resume_unwind(p),
                Outcome::Stopped | Outcome::StartFailed => {}
            }
        });
        let first = startup.run_core(0, false, true, || main());
        let mut panic = None;
        for t in threads {
            if let Err(p) = t.join() {
                panic.get_or_insert(p);
            }
        }
        let first = match (first, panic) {
            (Outcome::Panicked(p), _) | (_, Some(p)) => resume_unwind(p),
            (Outcome::Done(v), None) => v,
            (Outcome::Stopped | Outcome::StartFailed, None) => return Err(startup.take_error()),
        };
        let failures = std::mem::take(&mut *failures.lock().unwrap_or_else(|e| e.into_inner()));
        Ok((first, failures))
    }
}

fn is_success(code: ExitCode) -> bool {
    format!("{code:?}") == format!("{:?}", ExitCode::SUCCESS)
}

fn collect_outcomes<T>(outcomes: Vec<Option<Outcome<T>>>, startup: &Startup) -> io::Result<Vec<T>> {
    let mut values = Vec::with_capacity(outcomes.len());
    let mut missing = false;
    let mut panic = None;
    for out in outcomes {
        match out {
            Some(Outcome::Done(v)) => values.push(v),
            Some(Outcome::Panicked(p)) => {
                panic.get_or_insert(p);
            }
            _ => missing = true,
        }
    }
    if let Some(p) = panic {
        resume_unwind(p);
    }
    if missing {
        return Err(startup.take_error());
    }
    Ok(values)
}

/// Runs `future` on a new default runtime (one core, on this thread).
///
/// # Panics
///
/// If `future` panics or the thread already runs a runtime.
///
/// # Examples
///
/// ```
/// assert_eq!(mtcp::runtime::block_on(async { 3 }), 3);
/// ```
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    Runtime::new()
        .expect("the default runtime configuration is valid")
        .block_on(future)
}

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
        c.peers.borrow().get(core).cloned()
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
    peers: Arc<[Arc<Remote>]>,
    /// Set by [`Runtime::handle`]: the runtime whose current or next run
    /// the handle reaches.
    owner: Option<Owner>,
}

/// The parts of a [`Runtime`] its [`Runtime::handle`] needs.
#[derive(Clone)]
struct Owner {
    config: Arc<Config>,
    spawns: Arc<Mutex<Spawns>>,
}

impl Owner {
    fn spawns(&self) -> std::sync::MutexGuard<'_, Spawns> {
        self.spawns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running run's handle, if a run is going on.
    fn running(&self) -> Option<Handle> {
        self.spawns().running.clone()
    }

    /// [`Runtime::spawn`]: on the running run, or queued for the next.
    fn spawn<F>(&self, future: F) -> crate::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut s = self.spawns();
        if let Some(handle) = s.running.clone() {
            drop(s);
            return handle.spawn(future);
        }
        let (start, join) = crate::task::deferred(future);
        s.queued.push(start);
        join
    }
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
            peers: c.peers.borrow().clone(),
            owner: None,
        })
        .ok_or(TryCurrentError { _private: () })
    }

    /// The cores this handle reaches now (none between the runs of a
    /// [`Runtime::handle`]).
    fn peers(&self) -> Arc<[Arc<Remote>]> {
        match &self.owner {
            Some(owner) => owner
                .running()
                .map_or_else(|| Arc::from(Vec::new()), |h| h.peers),
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
                let rt = Runtime {
                    config: owner.config.clone(),
                    spawns: owner.spawns.clone(),
                    handle: self.clone(),
                };
                return rt.block_on(future);
            }
        }
        let run = Handle { peers, owner: None };
        match park_on(crate::task::spawn_remote(&run, 0, future)) {
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
        let here = context::with_core(|c| Arc::ptr_eq(&c.peers.borrow(), &peers));
        if here == Some(true) {
            return crate::spawn(future);
        }
        if peers.is_empty() {
            if let Some(owner) = &self.owner {
                // Between runs: queued for the next, as `Runtime::spawn`.
                return owner.spawn(future);
            }
        }
        crate::task::spawn_remote(&Handle { peers, owner: None }, 0, future)
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

/// Entry point of `#[mtcp::main]`: runs `main` on `cores` cores (default
/// 1) and returns core 0's output. With one core it runs on the calling
/// thread. With more, each other core's output goes to `report` on that
/// core's thread (the macro passes [`__report`] for `main` and tests, which
/// prints an `Err` like `main` would, and [`__ignore`] otherwise); the
/// process exits with status 1 after the run if any of them failed.
///
/// A core that fails to start prints one line and exits with status 1.
/// The integrator maps `MTCP_*` settings here, in one place.
#[doc(hidden)]
pub fn __main_entry<M, F>(cores: Option<usize>, main: M, report: fn(F::Output) -> bool) -> F::Output
where
    M: Fn() -> F + Send + Sync + 'static,
    F: Future + 'static,
{
    let builder = match entry_builder(cores) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    match run_entry(builder, main, report) {
        Ok((v, failures)) => {
            if !failures.is_empty() {
                eprintln!("mtcp: the main function failed on cores {failures:?}");
                std::process::exit(1);
            }
            v
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

/// Entry point of `#[mtcp::test]`: like [`__main_entry`], but every failure
/// panics (failing the test).
#[doc(hidden)]
#[track_caller]
pub fn __test_entry<M, F>(cores: Option<usize>, main: M, report: fn(F::Output) -> bool) -> F::Output
where
    M: Fn() -> F + Send + Sync + 'static,
    F: Future + 'static,
{
    let builder = entry_builder(cores).unwrap_or_else(|e| panic!("{e}"));
    match run_entry(builder, main, report) {
        Ok((v, failures)) => {
            assert!(
                failures.is_empty(),
                "mtcp: the test body failed on cores {failures:?}"
            );
            v
        }
        Err(e) => panic!("{e}"),
    }
}

/// The builder of the entry macros: the environment (`MTCP_*`), with the
/// macro's `cores` winning over `MTCP_CORES`.
fn entry_builder(cores: Option<usize>) -> io::Result<Builder> {
    let builder = Builder::from_env()?;
    Ok(match cores {
        Some(n) => builder.cores(n),
        None => builder,
    })
}

/// Reports a main or test output as `main` would (an `Err` is printed);
/// false if it failed.
#[doc(hidden)]
pub fn __report<T: Termination>(output: T) -> bool {
    is_success(output.report())
}

/// Drops an output that has no success or failure.
#[doc(hidden)]
pub fn __ignore<T>(output: T) -> bool {
    drop(output);
    true
}

fn run_entry<M, F>(
    builder: Builder,
    main: M,
    report: fn(F::Output) -> bool,
) -> io::Result<(F::Output, Vec<usize>)>
where
    M: Fn() -> F + Send + Sync + 'static,
    F: Future + 'static,
{
    let rt = builder.build()?;
    if rt.cores() == 1 {
        return rt.try_block_on(main()).map(|v| (v, Vec::new()));
    }
    rt.main_on_cores(main, report)
}

//! [`Runtime`]: a configuration of cores, started for each `block_on`, and
//! the entry points of `#[mtcp::main]` and `#[mtcp::test]`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::process::{ExitCode, Termination};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant as StdInstant;

use super::builder::Builder;
use super::handle::{Handle, Owner};
use crate::context;
use crate::io_driver::CoreId;
use crate::reactor::Config;
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
    pub(super) config: Arc<Config>,
    /// Spawns made with [`Runtime::spawn`], and the running run's handle.
    pub(super) spawns: Arc<Mutex<Spawns>>,
    /// [`Runtime::handle`].
    pub(super) handle: Handle,
}

/// [`Runtime::spawn`]'s state: spawns wait in `queued` until a run starts;
/// during a run they go to its `running` handle.
#[derive(Default)]
pub(super) struct Spawns {
    pub(super) queued: Vec<crate::task::Start>,
    pub(super) running: Option<Handle>,
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
        *core.net.peers.borrow_mut() = peers.clone();
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

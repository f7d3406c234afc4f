//! One run of a runtime's cores: start every core (core 0 on the calling
//! thread or all on their own), rendezvous, run the main futures, stop and
//! join. [`Runtime`](super::Runtime) and [`Handle`](super::Handle) both run
//! through [`Shared`]; this module knows neither of them.

use std::any::Any;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant as StdInstant;

use crate::context;
use crate::io_driver::CoreId;
use crate::reactor::Config;
use crate::reactor::Core;
use crate::task::waker::{Msg, Remote};

/// The inboxes of one run's cores, in core order.
pub(super) type Peers = Arc<[Arc<Remote>]>;

/// What a runtime shares with its handles: the configuration, and the
/// spawns made between runs.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) config: Arc<Config>,
    spawns: Arc<Mutex<Spawns>>,
}

/// [`Runtime::spawn`](super::Runtime::spawn)'s state: spawns wait in
/// `queued` until a run starts; during a run they go to its cores.
#[derive(Default)]
pub(super) struct Spawns {
    pub(super) queued: Vec<crate::task::Start>,
    /// The running run's cores.
    pub(super) running: Option<Peers>,
}

impl Shared {
    pub(super) fn new(config: Config) -> Shared {
        Shared {
            config: Arc::new(config),
            spawns: Arc::default(),
        }
    }

    pub(super) fn spawns(&self) -> MutexGuard<'_, Spawns> {
        self.spawns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running run's cores, if a run is going on.
    pub(super) fn running(&self) -> Option<Peers> {
        self.spawns().running.clone()
    }

    /// Runs `future` on core 0 (the calling thread), the other cores on
    /// their own threads; see [`Runtime::try_block_on`](super::Runtime::try_block_on).
    pub(super) fn try_block_on<F: Future>(&self, future: F) -> io::Result<F::Output> {
        assert!(
            !context::in_runtime(),
            "Cannot start an mtcp runtime from within a runtime: this thread already runs one"
        );
        let startup = self.startup(0);
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

    /// See [`Runtime::try_block_on_each_core`](super::Runtime::try_block_on_each_core).
    pub(super) fn try_block_on_each_core<M, F>(&self, main: M) -> io::Result<Vec<F::Output>>
    where
        M: Fn() -> F + Send + Sync + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let n = self.config.cores;
        let startup = self.startup(n);
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

    /// The rendezvous of a new run whose `mains` cores run a main future.
    fn startup(&self, mains: usize) -> Arc<Startup> {
        Arc::new(Startup::new(
            self.config.clone(),
            self.spawns.clone(),
            mains,
            true,
        ))
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
    pub(super) fn main_on_cores<M, F>(
        &self,
        main: M,
        report: fn(F::Output) -> bool,
    ) -> io::Result<(F::Output, Vec<usize>)>
    where
        M: Fn() -> F + Send + Sync + 'static,
        F: Future + 'static,
    {
        let n = self.config.cores;
        let startup = self.startup(n);
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
                s.running = Some(peers.clone());
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

//! [`Builder`]: configures and builds a [`Runtime`].

use std::any::Any;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::runtime::Runtime;
use crate::io_driver::DriverFactory;
use crate::net::config::NetConfig;
use crate::net::config::StackFactory;
use crate::reactor::{Config, IdlePolicy, IoSource};

/// The default task budget: polls per tick before the core goes back to I/O.
pub const DEFAULT_TASK_BUDGET: usize = 256;

/// How long a core, by default, keeps closing its connections after its run
/// ended (see [`Builder::shutdown_linger`]).
pub const DEFAULT_SHUTDOWN_LINGER: Duration = Duration::from_secs(5);

/// Builds a [`Runtime`] with custom settings.
///
/// # Examples
///
/// ```
/// use mtcp::runtime::{Builder, IdlePolicy};
///
/// let rt = Builder::new()
///     .cores(1)
///     .idle_policy(IdlePolicy::Adaptive { spin: 16 })
///     .task_budget(128)
///     .build()
///     .unwrap();
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// ```
pub struct Builder {
    cores: Option<usize>,
    idle: Option<IdlePolicy>,
    task_budget: Option<usize>,
    pin_threads: bool,
    first_cpu: usize,
    factory: Option<DriverFactory>,
    /// The network: each core owns a stack over its queue of this device.
    /// Set by [`Builder::net`](Builder::net) and the network setters.
    pub(crate) net: Option<NetConfig>,
    extra: Option<Arc<dyn Any + Send + Sync>>,
    deferred_error: Option<String>,
    start_paused: bool,
    shutdown_linger: Option<Duration>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("cores", &self.cores)
            .field("idle", &self.idle)
            .field("task_budget", &self.task_budget)
            .field("pin_threads", &self.pin_threads)
            .field("io_driver_factory", &self.factory.is_some())
            .field("net", &self.net)
            .field("extra", &self.extra.is_some())
            .field("shutdown_linger", &self.shutdown_linger)
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// Default settings: one core, adaptive idling, a budget of
    /// [`DEFAULT_TASK_BUDGET`] polls per tick, pinned threads, no network
    /// device.
    pub fn new() -> Builder {
        Builder {
            cores: None,
            idle: None,
            task_budget: None,
            pin_threads: true,
            first_cpu: 0,
            factory: None,
            net: None,
            extra: None,
            deferred_error: None,
            start_paused: false,
            shutdown_linger: None,
        }
    }

    /// For tokio source compatibility: one core, configured from the
    /// environment with its network (see [`Builder::from_env`]); a bad
    /// `MTCP_*` variable makes [`build`](Self::build) fail.
    pub fn new_current_thread() -> Builder {
        Builder::from_env_or_deferred().cores(1)
    }

    /// For tokio source compatibility: configured from the environment like
    /// [`new_current_thread`](Self::new_current_thread), with `MTCP_CORES`
    /// cores. mtcp never moves tasks between threads: `cores` (not
    /// `worker_threads`) sets thread-per-core replication.
    pub fn new_multi_thread() -> Builder {
        Builder::from_env_or_deferred()
    }

    /// [`Builder::from_env`], or a builder whose `build` reports the error.
    fn from_env_or_deferred() -> Builder {
        Builder::from_env().unwrap_or_else(|e| {
            let mut b = Builder::new();
            b.deferred_error = Some(e.to_string());
            b
        })
    }

    /// Accepted for tokio source compatibility; does nothing (I/O and time
    /// are always enabled).
    pub fn enable_all(self) -> Builder {
        self
    }

    /// Accepted for tokio source compatibility; does nothing.
    pub fn enable_io(self) -> Builder {
        self
    }

    /// Accepted for tokio source compatibility; does nothing.
    pub fn enable_time(self) -> Builder {
        self
    }

    /// Accepted for tokio source compatibility; does nothing (it does not
    /// set the number of cores: see [`cores`](Self::cores)).
    pub fn worker_threads(self, _n: usize) -> Builder {
        self
    }

    /// Number of cores (threads, each with its own executor, timers and I/O
    /// driver). Default 1.
    pub fn cores(mut self, n: usize) -> Builder {
        self.cores = Some(n);
        self
    }

    /// Never park when idle (`true`), or idle adaptively (`false`, the
    /// default).
    pub fn busy_poll(mut self, on: bool) -> Builder {
        self.idle = Some(if on {
            IdlePolicy::BusyPoll
        } else {
            IdlePolicy::default()
        });
        self
    }

    /// What a core does when it has no work. See [`IdlePolicy`].
    pub fn idle_policy(mut self, policy: IdlePolicy) -> Builder {
        self.idle = Some(policy);
        self
    }

    /// Task polls per tick before the core polls I/O again (at least 1).
    pub fn task_budget(mut self, polls: usize) -> Builder {
        self.task_budget = Some(polls);
        self
    }

    /// Pin each core's thread to its own CPU (default `true`). Threads stay
    /// unpinned, with one warning, when the machine has fewer CPUs than
    /// cores. The thread calling [`Runtime::block_on`] is never pinned.
    pub fn pin_threads(mut self, on: bool) -> Builder {
        self.pin_threads = on;
        self
    }

    /// Pins core `i` to CPU `first_cpu + i` (default 0), so that two
    /// runtimes in one process (a server and a load generator, say) get
    /// their own CPUs.
    pub fn first_cpu(mut self, cpu: usize) -> Builder {
        self.first_cpu = cpu;
        self
    }

    /// Starts every core with its clock paused (tokio's `start_paused`):
    /// see [`time::pause`](crate::time::pause). Default `false`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = mtcp::runtime::Builder::new().start_paused(true).build().unwrap();
    /// rt.block_on(async {
    ///     let start = mtcp::time::Instant::now();
    ///     mtcp::time::sleep(Duration::from_secs(86_400)).await; // at once
    ///     assert_eq!(start.elapsed(), Duration::from_secs(86_400));
    /// });
    /// ```
    pub fn start_paused(mut self, on: bool) -> Builder {
        self.start_paused = on;
        self
    }

    /// How long each core keeps closing its connections once its run ends
    /// (`main` returned, or [`Runtime::block_on`] is returning): default
    /// [`DEFAULT_SHUTDOWN_LINGER`] (5 s; `MTCP_SHUTDOWN_LINGER` with
    /// [`from_env`](Self::from_env)).
    ///
    /// At the end of a run, each core finishes its tick, drops its tasks
    /// (their sockets close as a kernel close does: queued data, then a
    /// FIN), closes every socket still open (listeners reset the
    /// connections nobody accepted), and keeps running its stack (input,
    /// retransmissions, output) until every connection has delivered its
    /// data and had its FIN acknowledged, or until this bound passes: the
    /// connections still unfinished then are reset, and their count is
    /// logged (`log::warn!`) and counted in the core's `linger_resets`.
    /// `Duration::ZERO` resets at once whatever is unfinished.
    pub fn shutdown_linger(mut self, linger: Duration) -> Builder {
        self.shutdown_linger = Some(linger);
        self
    }

    /// The shutdown linger set explicitly, if any.
    #[doc(hidden)]
    pub fn get_shutdown_linger(&self) -> Option<Duration> {
        self.shutdown_linger
    }

    /// Installs the I/O driver factory, called once per core on that core's
    /// thread when it starts, in place of the network (each core's own
    /// stack). Without either, cores use [`NoNetwork`].
    #[doc(hidden)]
    pub fn io_driver_factory(mut self, factory: DriverFactory) -> Builder {
        self.factory = Some(factory);
        self.net = None;
        self
    }

    /// Free-form configuration for the I/O driver (network settings), handed
    /// to the factory as [`DriverContext::extra`].
    #[doc(hidden)]
    pub fn extra<T: Any + Send + Sync>(mut self, value: T) -> Builder {
        self.extra = Some(Arc::new(value));
        self
    }

    /// The extra configuration, if it is a `T`.
    #[doc(hidden)]
    pub fn get_extra<T: Any>(&self) -> Option<&T> {
        self.extra.as_deref()?.downcast_ref::<T>()
    }

    /// The cores set explicitly, if any (explicit settings win over the
    /// environment).
    #[doc(hidden)]
    pub fn get_cores(&self) -> Option<usize> {
        self.cores
    }

    /// The idle policy set explicitly, if any.
    #[doc(hidden)]
    pub fn get_idle_policy(&self) -> Option<IdlePolicy> {
        self.idle
    }

    /// Checks the settings and builds the runtime. Cores start when the
    /// runtime runs a future ([`Runtime::block_on`],
    /// [`Runtime::block_on_each_core`]).
    ///
    /// # Errors
    ///
    /// `InvalidInput`, with a message naming the setting, for zero cores or a
    /// zero task budget.
    pub fn build(self) -> io::Result<Runtime> {
        if let Some(e) = self.deferred_error {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, e));
        }
        let cores = self.cores.unwrap_or(1);
        if cores == 0 {
            return Err(invalid("cores = 0: expected at least 1"));
        }
        if cores > 4096 {
            return Err(invalid(&format!("cores = {cores}: expected at most 4096")));
        }
        let task_budget = self.task_budget.unwrap_or(DEFAULT_TASK_BUDGET);
        if task_budget == 0 {
            return Err(invalid("task_budget = 0: expected at least 1"));
        }
        Ok(Runtime::from_config(Config {
            cores,
            idle: self.idle.unwrap_or_default(),
            task_budget,
            pin_threads: self.pin_threads,
            first_cpu: self.first_cpu,
            io: match (self.net, self.factory) {
                (Some(net), _) => IoSource::Net(Arc::new(StackFactory::new(net))),
                (None, Some(factory)) => IoSource::Plugin(factory),
                (None, None) => IoSource::None,
            },
            extra: self.extra,
            start_paused: self.start_paused,
            shutdown_linger: self.shutdown_linger.unwrap_or(DEFAULT_SHUTDOWN_LINGER),
            epoch: std::time::Instant::now(),
        }))
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("mtcp: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_fail_with_the_setting_named() {
        let e = Builder::new().cores(0).build().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("cores = 0"), "{e}");
        let e = Builder::new().task_budget(0).build().unwrap_err();
        assert!(e.to_string().contains("task_budget = 0"), "{e}");
    }

    #[test]
    fn settings_and_extra_are_kept() {
        let b = Builder::new().cores(3).busy_poll(true).extra(42u32);
        assert_eq!(b.get_cores(), Some(3));
        assert_eq!(b.get_idle_policy(), Some(IdlePolicy::BusyPoll));
        assert_eq!(b.get_extra::<u32>(), Some(&42));
        assert_eq!(b.get_extra::<u64>(), None);
        let rt = b.build().unwrap();
        assert_eq!(rt.cores(), 3);
        // A tokio-style builder chain ports unchanged.
        let rt = Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(rt.cores(), 1);
        assert_eq!(rt.block_on(async { 5 }), 5);
    }
}

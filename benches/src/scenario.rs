//! What to measure: the scenario and its parameters, shared by every system.

use std::fmt;
use std::time::Duration;

/// One of the benchmark scenarios of the contract in `DESIGN.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Request/response of `size` bytes on `conns` persistent connections.
    Echo,
    /// Connect, one request/response of `size` bytes, close: one connection
    /// per transaction, `conns` client loops in parallel.
    Connect,
    /// One connection streaming data one way; bytes per second.
    Bulk,
    /// Memory per established idle connection.
    Idle,
    /// Request/response of `size`-byte datagrams on `conns` UDP sockets,
    /// counting datagrams that got no echo in time.
    Udp,
}

impl Scenario {
    /// Every scenario, in the order the contract lists them (`udp` came
    /// later and is last).
    pub const ALL: [Scenario; 5] = [
        Scenario::Echo,
        Scenario::Connect,
        Scenario::Bulk,
        Scenario::Idle,
        Scenario::Udp,
    ];

    /// The name used on the command line and in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Echo => "echo",
            Scenario::Connect => "connect",
            Scenario::Bulk => "bulk",
            Scenario::Idle => "idle",
            Scenario::Udp => "udp",
        }
    }

    /// Parses a scenario name as written by [`Scenario::name`].
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The number of connections a scenario uses when `--conns` is not given.
    pub fn default_conns(self) -> usize {
        match self {
            Scenario::Echo => 50,
            Scenario::Connect => 8,
            Scenario::Bulk => 1,
            Scenario::Idle => DEFAULT_IDLE_CONNS,
            Scenario::Udp => 50,
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a system's event loop waits when it has nothing to do.
///
/// Only systems with their own poll loop (mtcp) act on it; the tokio system
/// always waits in the kernel's epoll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// Never park: spin on the device (the benchmark setting).
    BusyPoll,
    /// Spin briefly, then park until the device is readable or a timer is due.
    Adaptive,
}

impl PollMode {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            PollMode::BusyPoll => "busy-poll",
            PollMode::Adaptive => "adaptive",
        }
    }
}

/// The number of idle connections opened by the `idle` scenario by default.
pub const DEFAULT_IDLE_CONNS: usize = 100_000;

/// The number of idle connections opened with `--million`.
pub const MILLION_IDLE_CONNS: usize = 1_000_000;

/// The warm-up excluded from every timed scenario.
pub const WARMUP: Duration = Duration::from_millis(500);

/// Everything a [`crate::System`] needs to run one scenario once.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioConfig {
    /// The scenario to run.
    pub scenario: Scenario,
    /// The measured time, warm-up excluded.
    pub duration: Duration,
    /// The warm-up before measuring starts.
    pub warmup: Duration,
    /// Connections (echo: persistent connections; connect: parallel client
    /// loops; bulk: 1; idle: connections to open; udp: client sockets).
    pub conns: usize,
    /// Request and response size in bytes (echo, connect, udp); write size
    /// for bulk.
    pub size: usize,
    /// Cores (threads) per side: the server gets `cores` cores and the client
    /// another `cores`.
    pub cores: usize,
    /// How the system's event loop waits.
    pub poll: PollMode,
}

impl ScenarioConfig {
    /// A configuration with the defaults of the command line for `scenario`.
    pub fn new(scenario: Scenario) -> ScenarioConfig {
        ScenarioConfig {
            scenario,
            duration: Duration::from_secs(5),
            warmup: WARMUP,
            conns: scenario.default_conns(),
            size: if scenario == Scenario::Bulk {
                BULK_WRITE_SIZE
            } else {
                64
            },
            cores: 1,
            poll: PollMode::BusyPoll,
        }
    }
}

/// The write size of the `bulk` scenario when `--size` is not given (64 KiB).
pub const BULK_WRITE_SIZE: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
        }
        assert_eq!(Scenario::from_name("Echo"), None);
        assert_eq!(Scenario::from_name(""), None);
    }

    #[test]
    fn defaults_follow_the_contract() {
        let echo = ScenarioConfig::new(Scenario::Echo);
        assert_eq!(echo.conns, 50);
        assert_eq!(echo.size, 64);
        assert_eq!(echo.duration, Duration::from_secs(5));
        assert_eq!(echo.cores, 1);
        assert_eq!(ScenarioConfig::new(Scenario::Bulk).size, 64 * 1024);
        assert_eq!(ScenarioConfig::new(Scenario::Idle).conns, 100_000);
        assert_eq!(ScenarioConfig::new(Scenario::Connect).conns, 8);
        let udp = ScenarioConfig::new(Scenario::Udp);
        assert_eq!((udp.conns, udp.size), (50, 64));
    }
}

//! Configuration from the environment (the `MTCP_*` variables).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MTCP_DEVICE` | `memory` \| `tap:IFNAME` \| `af_packet:IFNAME` \| `xdp:IFNAME` \| `dpdk` | `memory` |
//! | `MTCP_DPDK_ARGS` | DPDK EAL arguments, required for `dpdk` | — |
//! | `MTCP_ADDR` | IPv4 address and prefix, e.g. `10.99.0.2/24` | `10.0.0.1/24` |
//! | `MTCP_GATEWAY` | default gateway (on the `MTCP_ADDR` subnet) | none |
//! | `MTCP_MAC` | the stack's MAC address | the device's |
//! | `MTCP_CORES` | number of cores (threads) | 1 |
//! | `MTCP_PCAP` | write every frame to this pcap file | off |
//! | `MTCP_FAULTS` | fault injection, e.g. `drop=0.02,seed=7` | off |
//! | `MTCP_RING_FRAMES` | AF_PACKET ring slots per queue, `rx=N,tx=N` (either or both, 16 to 65536) | `rx=4096,tx=4096` |
//! | `MTCP_SHUTDOWN_LINGER` | how long a core keeps closing its connections at the end of a run, e.g. `5s`, `500ms`, `0` | `5s` |
//! | `MTCP_STATS` | print each core's counters to stderr every interval, e.g. `5s` or `500ms` | off |
//! | `MTCP_MAX_CONNECTIONS` | sockets (TCBs) per core, 1 to 16777216 | 65536 |
//! | `MTCP_MAX_TIME_WAIT` | TIME-WAIT entries per core, 0 to 16777216 | 262144 |
//! | `MTCP_KEEPALIVE` | keepalive for every connection: `off`, `on`, or `idle=7200s,interval=75s,count=9` (any of them; `s`, `ms` or `m`) | `off` |
//! | `MTCP_FIN_TIMEOUT` | orphaned FIN-WAIT-2 lifetime (`tcp_fin_timeout`), e.g. `60s` | `60s` |
//!
//! An empty (or all-blank) value means the variable is unset, so
//! `MTCP_FAULTS= prog` turns faults off. A bad value is an error naming the
//! variable, the value and what was expected, on one line:
//!
//! ```text
//! MTCP_ADDR="10.0.0/24": expected an IPv4 address with prefix length, e.g. 10.99.0.2/24
//! ```

use core::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::nic::faults::FaultConfig;
use crate::nic::NicQueue;
pub use crate::nic::RingSizes;
use crate::stack::StackConfig;
use crate::tcp::stack::KeepaliveConfig;
use crate::time::Duration;
use crate::wire::ethernet::EthernetAddress;
use crate::wire::ipv4::{Ipv4Address, Ipv4Cidr};

/// `MTCP_DEVICE`
pub const VAR_DEVICE: &str = "MTCP_DEVICE";
/// `MTCP_DPDK_ARGS`
pub const VAR_DPDK_ARGS: &str = "MTCP_DPDK_ARGS";
/// `MTCP_ADDR`
pub const VAR_ADDR: &str = "MTCP_ADDR";
/// `MTCP_GATEWAY`
pub const VAR_GATEWAY: &str = "MTCP_GATEWAY";
/// `MTCP_MAC`
pub const VAR_MAC: &str = "MTCP_MAC";
/// `MTCP_CORES`
pub const VAR_CORES: &str = "MTCP_CORES";
/// `MTCP_PCAP`
pub const VAR_PCAP: &str = "MTCP_PCAP";
/// `MTCP_FAULTS`
pub const VAR_FAULTS: &str = "MTCP_FAULTS";
/// `MTCP_SHUTDOWN_LINGER`
pub const VAR_SHUTDOWN_LINGER: &str = "MTCP_SHUTDOWN_LINGER";

/// The longest `MTCP_SHUTDOWN_LINGER` accepted.
pub const MAX_SHUTDOWN_LINGER: std::time::Duration = std::time::Duration::from_secs(3600);

/// `MTCP_RING_FRAMES`
pub const VAR_RING_FRAMES: &str = "MTCP_RING_FRAMES";
/// `MTCP_STATS`
pub const VAR_STATS: &str = "MTCP_STATS";

/// `MTCP_MAX_CONNECTIONS`
pub const VAR_MAX_CONNECTIONS: &str = "MTCP_MAX_CONNECTIONS";
/// `MTCP_MAX_TIME_WAIT`
pub const VAR_MAX_TIME_WAIT: &str = "MTCP_MAX_TIME_WAIT";

/// The most sockets (or TIME-WAIT entries) per core the two limits accept.
pub const MAX_PER_CORE: usize = 1 << 24;

/// `MTCP_KEEPALIVE`
pub const VAR_KEEPALIVE: &str = "MTCP_KEEPALIVE";
/// `MTCP_FIN_TIMEOUT`
pub const VAR_FIN_TIMEOUT: &str = "MTCP_FIN_TIMEOUT";

/// The most cores `MTCP_CORES` accepts.
pub const MAX_CORES: usize = 1024;

const EXPECT_DEVICE: &str = "memory, tap:IFNAME, af_packet:IFNAME, xdp:IFNAME or dpdk \
     (IFNAME: 1 to 15 characters, no '/' or blanks)";
const EXPECT_DPDK_ARGS: &str = "DPDK EAL arguments when MTCP_DEVICE=dpdk, e.g. \
     -l 0 --no-huge --no-pci -m 256 --vdev=net_af_packet0,iface=veth0";
const EXPECT_ADDR: &str = "an IPv4 address with prefix length, e.g. 10.99.0.2/24";
const EXPECT_GATEWAY: &str = "an IPv4 address on the MTCP_ADDR subnet, other than \
     MTCP_ADDR itself, e.g. 10.99.0.1";
const EXPECT_MAC: &str = "a unicast MAC address, e.g. 02:00:00:00:00:01";
const EXPECT_CORES: &str = "a number of cores from 1 to 1024, e.g. 4";
const EXPECT_KEEPALIVE: &str = "off, on, or idle=TIME,interval=TIME,count=N (any of them, \
     TIME with s, ms or m, count 1 to 255), e.g. idle=7200s,interval=75s,count=9";
const EXPECT_FIN_TIMEOUT: &str = "a time from 1 ms to 1 day with s, ms or m, e.g. 60s";
const EXPECT_RING_FRAMES: &str = "rx=SLOTS,tx=SLOTS (either or both, each 16 to 65536), \
     e.g. rx=4096,tx=4096";
const EXPECT_SHUTDOWN_LINGER: &str = "a duration in seconds or milliseconds, at most 3600s, \
     e.g. 5s, 500ms or 0";
const EXPECT_STATS: &str = "a duration like 5s or 500ms (1ms to 1 day)";
const EXPECT_MAX_CONNECTIONS: &str =
    "a number of connections per core from 1 to 16777216, e.g. 1000000";
const EXPECT_MAX_TIME_WAIT: &str =
    "a number of TIME-WAIT entries per core from 0 to 16777216, e.g. 262144";

/// Which device the stack runs on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// The in-memory NIC (no real network).
    #[default]
    Memory,
    /// A TAP interface.
    Tap(String),
    /// A raw AF_PACKET socket on an interface.
    AfPacket(String),
    /// An AF_XDP socket on an interface.
    Xdp(String),
    /// DPDK, with [`NetConfig::dpdk_args`] as EAL arguments.
    Dpdk,
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Memory => f.write_str("memory"),
            DeviceSpec::Tap(i) => write!(f, "tap:{i}"),
            DeviceSpec::AfPacket(i) => write!(f, "af_packet:{i}"),
            DeviceSpec::Xdp(i) => write!(f, "xdp:{i}"),
            DeviceSpec::Dpdk => f.write_str("dpdk"),
        }
    }
}

/// The network settings of a runtime, from the environment or a builder
/// down to the engine: the device, capture and fault injection, and each
/// core's [`StackConfig`] (addresses, the TCP engine, UDP, the frame pool).
/// One type, one name per option: [`EnvConfig::from_lookup`] writes each
/// `MTCP_*` variable straight into its field here.
#[derive(Clone, PartialEq)]
pub struct NetConfig {
    /// The device (`MTCP_DEVICE`).
    pub device: DeviceSpec,
    /// DPDK EAL arguments (`MTCP_DPDK_ARGS`, split on whitespace).
    pub dpdk_args: Vec<String>,
    /// Capture file (`MTCP_PCAP`).
    pub pcap: Option<PathBuf>,
    /// Fault injection (`MTCP_FAULTS`).
    pub faults: Option<FaultConfig>,
    /// AF_PACKET ring slots per queue (`MTCP_RING_FRAMES`).
    pub ring: RingSizes,
    /// Print each core's counters to stderr this often (`MTCP_STATS`).
    pub stats: Option<core::time::Duration>,
    /// The stack of each core: its address (`MTCP_ADDR`), gateway
    /// (`MTCP_GATEWAY`), MAC (`MTCP_MAC`; `None`: the device's, else a
    /// locally administered one), the TCP engine (`MTCP_MAX_CONNECTIONS`,
    /// `MTCP_MAX_TIME_WAIT`, `MTCP_KEEPALIVE`, `MTCP_FIN_TIMEOUT`, buffer
    /// sizes, timers, …), UDP, frame pool and RX burst.
    pub stack: StackConfig,
    /// Queues given explicitly (one per core), instead of opening `device`.
    queues: GivenQueues,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            device: DeviceSpec::Memory,
            dpdk_args: Vec::new(),
            pcap: None,
            faults: None,
            ring: RingSizes::default(),
            stats: None,
            stack: StackConfig::default(),
            queues: GivenQueues::default(),
        }
    }
}

impl fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetConfig")
            .field("device", &self.device)
            .field("addr", &self.stack.addr)
            .field("gateway", &self.stack.gateway)
            .field("mac", &self.stack.mac)
            .field("pcap", &self.pcap)
            .field("faults", &self.faults)
            .field("stats", &self.stats)
            .field("explicit_queues", &self.queues.0.is_some())
            .finish_non_exhaustive()
    }
}

impl NetConfig {
    /// Reads the `MTCP_*` network variables (see [`EnvConfig`]).
    ///
    /// # Errors
    /// The first bad variable (as one line, see [`ConfigError`]; it
    /// converts into an `io::Error` of kind `InvalidInput`).
    pub fn from_env() -> Result<NetConfig, ConfigError> {
        EnvConfig::from_env().map(|e| e.net)
    }

    /// Uses these queues (one per core, in core order) instead of opening
    /// [`device`](Self::device): e.g. the ports of an in-memory NIC pair
    /// joining two runtimes.
    pub fn with_queues(mut self, queues: Vec<Box<dyn NicQueue>>) -> NetConfig {
        self.queues = GivenQueues(Some(Arc::new(Mutex::new(
            queues.into_iter().map(Some).collect(),
        ))));
        self
    }

    /// The queues given with [`with_queues`](Self::with_queues), taken out
    /// (once) for a runtime of `cores` cores; `None` when none were given.
    ///
    /// # Errors
    /// `InvalidInput` when there are not `cores` of them; an error when
    /// they were taken already.
    pub fn take_queues(&self, cores: usize) -> Option<io::Result<Vec<Box<dyn NicQueue>>>> {
        let given = self.queues.0.as_ref()?;
        let Ok(mut given) = given.lock() else {
            return Some(Err(io::Error::other("mtcp: poisoned")));
        };
        if given.len() != cores {
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "mtcp: {} NIC queues given for {cores} cores: expected one per core",
                    given.len()
                ),
            )));
        }
        Some(
            given
                .iter_mut()
                .map(|q| {
                    q.take()
                        .ok_or_else(|| io::Error::other("mtcp: NIC queues already used"))
                })
                .collect(),
        )
    }
}

/// Queues given to a [`NetConfig`], shared by its clones; each is taken
/// once.
#[derive(Clone, Default)]
struct GivenQueues(Option<Arc<Mutex<QueueSlots>>>);

/// One slot per core: its queue until taken.
type QueueSlots = Vec<Option<Box<dyn NicQueue>>>;

/// Two configurations with given queues are equal when they share them.
impl PartialEq for GivenQueues {
    fn eq(&self, other: &GivenQueues) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// Everything the `MTCP_*` variables set: the runtime's own settings
/// (`MTCP_CORES`, `MTCP_SHUTDOWN_LINGER`) beside the [`NetConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct EnvConfig {
    /// `MTCP_CORES`, at least 1.
    pub cores: usize,
    /// `MTCP_SHUTDOWN_LINGER`; `None`: the runtime's default.
    pub shutdown_linger: Option<std::time::Duration>,
    /// Every other variable.
    pub net: NetConfig,
}

impl Default for EnvConfig {
    fn default() -> EnvConfig {
        EnvConfig {
            cores: 1,
            shutdown_linger: None,
            net: NetConfig::default(),
        }
    }
}

/// A bad configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable, e.g. `MTCP_ADDR`.
    pub var: &'static str,
    /// The value it had.
    pub value: String,
    /// What was expected, with an example.
    pub expected: &'static str,
}

/// One line: `MTCP_ADDR="10.0.0/24": expected an IPv4 address with prefix
/// length, e.g. 10.99.0.2/24` (the value is quoted and escaped).
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?}: expected {}",
            self.var, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// An `InvalidInput` error with the one line.
impl From<ConfigError> for io::Error {
    fn from(e: ConfigError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
    }
}

impl EnvConfig {
    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    /// The first bad variable, see [`EnvConfig::from_lookup`].
    pub fn from_env() -> Result<EnvConfig, ConfigError> {
        EnvConfig::from_lookup(|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Reads the configuration from `lookup` (a variable name to its value),
    /// so tests need not touch the environment.
    ///
    /// # Errors
    /// The first bad variable, in the order of the table in the module
    /// documentation (`MTCP_DEVICE` first).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<EnvConfig, ConfigError> {
        let get = |var: &'static str| lookup(var).filter(|v| !v.trim().is_empty());
        let err = |var: &'static str, value: &str, expected: &'static str| ConfigError {
            var,
            value: value.to_owned(),
            expected,
        };
        let mut cfg = EnvConfig::default();
        let mut net = NetConfig::default();

        if let Some(v) = get(VAR_DEVICE) {
            net.device =
                parse_device(v.trim()).ok_or_else(|| err(VAR_DEVICE, &v, EXPECT_DEVICE))?;
        }
        let dpdk_args = lookup(VAR_DPDK_ARGS).unwrap_or_default();
        net.dpdk_args = dpdk_args.split_whitespace().map(str::to_owned).collect();
        if net.device == DeviceSpec::Dpdk && net.dpdk_args.is_empty() {
            return Err(err(VAR_DPDK_ARGS, &dpdk_args, EXPECT_DPDK_ARGS));
        }
        if let Some(v) = get(VAR_ADDR) {
            net.stack.addr = parse_ipv4_cidr(v.trim())
                .filter(|c| is_host_address(c.address))
                .ok_or_else(|| err(VAR_ADDR, &v, EXPECT_ADDR))?;
        }
        if let Some(v) = get(VAR_GATEWAY) {
            let gw = parse_ipv4(v.trim())
                .filter(|&g| {
                    is_host_address(g)
                        && g != net.stack.addr.address
                        && net.stack.addr.contains(g)
                        && (net.stack.addr.prefix_len >= 31 || g != net.stack.addr.broadcast())
                })
                .ok_or_else(|| err(VAR_GATEWAY, &v, EXPECT_GATEWAY))?;
            net.stack.gateway = Some(gw);
        }
        if let Some(v) = get(VAR_MAC) {
            let mac = parse_mac(v.trim())
                .filter(|m| m.is_unicast() && *m != EthernetAddress([0; 6]))
                .ok_or_else(|| err(VAR_MAC, &v, EXPECT_MAC))?;
            net.stack.mac = Some(mac);
        }
        if let Some(v) = get(VAR_CORES) {
            cfg.cores = parse_decimal(v.trim())
                .filter(|n| (1..=MAX_CORES as u64).contains(n))
                .ok_or_else(|| err(VAR_CORES, &v, EXPECT_CORES))? as usize;
        }
        if let Some(v) = get(VAR_PCAP) {
            net.pcap = Some(PathBuf::from(v));
        }
        if let Some(v) = get(VAR_FAULTS) {
            let faults = v
                .trim()
                .parse::<FaultConfig>()
                .map_err(|e| err(VAR_FAULTS, &v, e.expected()))?;
            net.faults = Some(faults);
        }
        if let Some(v) = get(VAR_RING_FRAMES) {
            net.ring = parse_ring_frames(v.trim())
                .ok_or_else(|| err(VAR_RING_FRAMES, &v, EXPECT_RING_FRAMES))?;
        }
        if let Some(v) = get(VAR_SHUTDOWN_LINGER) {
            let d = parse_duration(v.trim())
                .filter(|d| *d <= MAX_SHUTDOWN_LINGER)
                .ok_or_else(|| err(VAR_SHUTDOWN_LINGER, &v, EXPECT_SHUTDOWN_LINGER))?;
            cfg.shutdown_linger = Some(d);
        }
        if let Some(v) = get(VAR_STATS) {
            net.stats =
                Some(parse_interval(v.trim()).ok_or_else(|| err(VAR_STATS, &v, EXPECT_STATS))?);
        }
        if let Some(v) = get(VAR_MAX_CONNECTIONS) {
            let n = parse_decimal(v.trim())
                .filter(|n| (1..=MAX_PER_CORE as u64).contains(n))
                .ok_or_else(|| err(VAR_MAX_CONNECTIONS, &v, EXPECT_MAX_CONNECTIONS))?;
            net.stack.tcp.max_connections = n as usize;
        }
        if let Some(v) = get(VAR_MAX_TIME_WAIT) {
            let n = parse_decimal(v.trim())
                .filter(|&n| n <= MAX_PER_CORE as u64)
                .ok_or_else(|| err(VAR_MAX_TIME_WAIT, &v, EXPECT_MAX_TIME_WAIT))?;
            net.stack.tcp.max_time_wait = n as usize;
        }
        if let Some(v) = get(VAR_KEEPALIVE) {
            let ka = parse_keepalive(v.trim())
                .ok_or_else(|| err(VAR_KEEPALIVE, &v, EXPECT_KEEPALIVE))?;
            // `off` leaves the engine's default: off unless a socket asks.
            if let Some(ka) = ka {
                net.stack.tcp.keepalive_default = true;
                net.stack.tcp.keepalive = ka;
            }
        }
        if let Some(v) = get(VAR_FIN_TIMEOUT) {
            let d = parse_time(v.trim())
                .filter(|d| d.as_millis() <= 86_400_000)
                .ok_or_else(|| err(VAR_FIN_TIMEOUT, &v, EXPECT_FIN_TIMEOUT))?;
            net.stack.tcp.fin_timeout = d;
        }
        cfg.net = net;
        Ok(cfg)
    }
}

fn parse_device(s: &str) -> Option<DeviceSpec> {
    match s {
        "memory" => return Some(DeviceSpec::Memory),
        "dpdk" => return Some(DeviceSpec::Dpdk),
        _ => {}
    }
    let (kind, ifname) = s.split_once(':')?;
    let valid = (1..=15).contains(&ifname.len())
        && ifname != "."
        && ifname != ".."
        && !ifname
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if !valid {
        return None;
    }
    let ifname = ifname.to_owned();
    match kind {
        "tap" => Some(DeviceSpec::Tap(ifname)),
        "af_packet" => Some(DeviceSpec::AfPacket(ifname)),
        "xdp" => Some(DeviceSpec::Xdp(ifname)),
        _ => None,
    }
}

/// `rx=N,tx=N`, either or both, in any order, each once; the other keeps
/// its default.
fn parse_ring_frames(s: &str) -> Option<RingSizes> {
    let mut ring = RingSizes::default();
    let (mut rx, mut tx) = (false, false);
    for part in s.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        let n = usize::try_from(parse_decimal(value.trim())?).ok()?;
        if !(RingSizes::MIN..=RingSizes::MAX).contains(&n) {
            return None;
        }
        match key.trim() {
            "rx" if !rx => (ring.rx, rx) = (n, true),
            "tx" if !tx => (ring.tx, tx) = (n, true),
            _ => return None,
        }
    }
    Some(ring)
}

/// `500ms`, `5s`, `2m` or `1h`: decimal digits and a unit, from 1 ms to
/// one day.
pub fn parse_interval(s: &str) -> Option<core::time::Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = s.split_at(split);
    let n = parse_decimal(digits)?;
    let ms_per = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    let ms = n.checked_mul(ms_per)?;
    (1..=86_400_000)
        .contains(&ms)
        .then(|| core::time::Duration::from_millis(ms))
}

/// `off` (`None`), `on` (the default timing), or `idle=…,interval=…,count=…`
/// (any of them, each once; the others keep their defaults).
fn parse_keepalive(s: &str) -> Option<Option<KeepaliveConfig>> {
    match s {
        "off" => return Some(None),
        "on" => return Some(Some(KeepaliveConfig::default())),
        _ => {}
    }
    let mut ka = KeepaliveConfig::default();
    let mut seen = [false; 3];
    for part in s.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        let value = value.trim();
        let slot = match key.trim() {
            "idle" => {
                ka.idle = parse_time(value).filter(|d| d.as_millis() <= 86_400_000)?;
                0
            }
            "interval" => {
                ka.interval = parse_time(value).filter(|d| d.as_millis() <= 86_400_000)?;
                1
            }
            "count" => {
                ka.count = u8::try_from(parse_decimal(value)?)
                    .ok()
                    .filter(|&c| c > 0)?;
                2
            }
            _ => return None,
        };
        if core::mem::replace(&mut seen[slot], true) {
            return None;
        }
    }
    Some(Some(ka))
}

/// A positive time with a unit: `75s`, `500ms`, `2m`.
fn parse_time(s: &str) -> Option<Duration> {
    let (digits, ms_per_unit) = if let Some(d) = s.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = s.strip_suffix('s') {
        (d, 1000)
    } else if let Some(d) = s.strip_suffix('m') {
        (d, 60_000)
    } else {
        return None;
    };
    let ms = parse_decimal(digits)?.checked_mul(ms_per_unit)?;
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Digits only (no sign, no blanks), fitting a `u64`.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `5s`, `500ms`, or a bare number of seconds (`0`).
fn parse_duration(s: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    if let Some(ms) = s.strip_suffix("ms") {
        return parse_decimal(ms).map(Duration::from_millis);
    }
    let secs = s.strip_suffix('s').unwrap_or(s);
    parse_decimal(secs)
        .filter(|&n| n <= MAX_SHUTDOWN_LINGER.as_secs())
        .map(Duration::from_secs)
}

/// A host address: not 0.0.0.0, not multicast, not 255.255.255.255.
fn is_host_address(a: Ipv4Address) -> bool {
    !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast()
}

/// Parses dotted-quad IPv4 (`10.0.0.1`).
pub fn parse_ipv4(s: &str) -> Option<Ipv4Address> {
    s.parse().ok()
}

/// Parses `ADDRESS/PREFIX` (`10.99.0.2/24`), prefix 0 to 32.
pub fn parse_ipv4_cidr(s: &str) -> Option<Ipv4Cidr> {
    let (addr, prefix) = s.split_once('/')?;
    let prefix_len = parse_decimal(prefix).filter(|&p| p <= 32)? as u8;
    Some(Ipv4Cidr {
        address: parse_ipv4(addr)?,
        prefix_len,
    })
}

/// Parses a MAC address written as six colon-separated pairs of hex digits
/// (`aa:bb:cc:dd:ee:ff`, either case).
pub fn parse_mac(s: &str) -> Option<EthernetAddress> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(EthernetAddress(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<EnvConfig, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvConfig::from_lookup(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    /// `c` without its random seed (every default draws a fresh one).
    fn unseeded(mut c: EnvConfig) -> EnvConfig {
        c.net.stack.tcp.seed = 0;
        c
    }

    /// The keepalive `MTCP_KEEPALIVE` turned on for every connection.
    fn keepalive(c: EnvConfig) -> Option<KeepaliveConfig> {
        let tcp = c.net.stack.tcp;
        tcp.keepalive_default.then_some(tcp.keepalive)
    }

    #[test]
    fn keepalive_and_fin_timeout() {
        assert_eq!(keepalive(cfg(&[]).unwrap()), None);
        assert_eq!(keepalive(cfg(&[(VAR_KEEPALIVE, "off")]).unwrap()), None);
        assert_eq!(
            keepalive(cfg(&[(VAR_KEEPALIVE, "on")]).unwrap()),
            Some(KeepaliveConfig::default())
        );
        let ka = keepalive(cfg(&[(VAR_KEEPALIVE, "idle=30s, interval=500ms,count=3")]).unwrap())
            .unwrap();
        assert_eq!(ka.idle, Duration::from_secs(30));
        assert_eq!(ka.interval, Duration::from_millis(500));
        assert_eq!(ka.count, 3);
        let ka = keepalive(cfg(&[(VAR_KEEPALIVE, "idle=2m")]).unwrap()).unwrap();
        assert_eq!(ka.idle, Duration::from_secs(120));
        assert_eq!(ka.count, KeepaliveConfig::default().count);
        for bad in [
            "yes",
            "idle=30",
            "idle=0s",
            "count=0",
            "count=256",
            "idle=1s,idle=2s",
            "probes=3",
            "idle=-1s",
        ] {
            let e = cfg(&[(VAR_KEEPALIVE, bad)]).unwrap_err();
            assert_eq!(e.var, VAR_KEEPALIVE, "{bad}");
            assert!(!e.to_string().contains('\n'));
        }
        assert_eq!(
            cfg(&[(VAR_FIN_TIMEOUT, "5s")])
                .unwrap()
                .net
                .stack
                .tcp
                .fin_timeout,
            Duration::from_secs(5)
        );
        assert_eq!(
            cfg(&[(VAR_FIN_TIMEOUT, "5")]).unwrap_err().var,
            VAR_FIN_TIMEOUT
        );
        assert_eq!(
            cfg(&[(VAR_FIN_TIMEOUT, "2000m")]).unwrap_err().var,
            VAR_FIN_TIMEOUT
        );
    }

    fn bad(var: &str, value: &str) -> ConfigError {
        let e = cfg(&[(var, value)]).unwrap_err();
        assert_eq!(e.var, var, "{e}");
        assert_eq!(e.value, value);
        e
    }

    #[test]
    fn ring_frames() {
        let r = |v: &str| cfg(&[(VAR_RING_FRAMES, v)]).unwrap().net.ring;
        let d = RingSizes::default();
        assert_eq!(r("rx=4096"), RingSizes { rx: 4096, tx: d.tx });
        assert_eq!(r("tx=64"), RingSizes { rx: d.rx, tx: 64 });
        assert_eq!(r(" tx=16 , rx=65536 "), RingSizes { rx: 65536, tx: 16 });
        for v in [
            "4096",
            "rx=",
            "rx=15",
            "rx=65537",
            "rx=1,tx=2",
            "rx=64,rx=64",
            "ry=64",
            "rx=-1",
            "rx=64,",
            "rx=0x40",
        ] {
            let e = bad(VAR_RING_FRAMES, v);
            assert!(e.to_string().contains("rx=SLOTS,tx=SLOTS"), "{e}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = cfg(&[]).unwrap();
        assert_eq!(unseeded(c.clone()), unseeded(EnvConfig::default()));
        assert_eq!(c.net.device, DeviceSpec::Memory);
        assert_eq!(c.net.stack.addr.address, Ipv4Address::new(10, 0, 0, 1));
        assert_eq!(c.net.stack.addr.prefix_len, 24);
        assert_eq!(
            (
                c.cores,
                c.net.stack.gateway,
                c.net.stack.mac,
                c.net.pcap,
                c.net.faults
            ),
            (1, None, None, None, None)
        );
    }

    #[test]
    fn empty_values_mean_unset() {
        let all = [
            VAR_DEVICE,
            VAR_DPDK_ARGS,
            VAR_ADDR,
            VAR_GATEWAY,
            VAR_MAC,
            VAR_CORES,
            VAR_PCAP,
            VAR_FAULTS,
            VAR_SHUTDOWN_LINGER,
            VAR_STATS,
        ];
        let vars: Vec<(&str, &str)> = all.iter().map(|v| (*v, "")).collect();
        assert_eq!(
            unseeded(cfg(&vars).unwrap()),
            unseeded(EnvConfig::default())
        );
        let vars: Vec<(&str, &str)> = all.iter().map(|v| (*v, "  ")).collect();
        assert_eq!(
            unseeded(cfg(&vars).unwrap()),
            unseeded(EnvConfig::default())
        );
    }

    #[test]
    fn shutdown_linger_forms() {
        use std::time::Duration;
        let linger = |v: &str| cfg(&[(VAR_SHUTDOWN_LINGER, v)]).unwrap().shutdown_linger;
        assert_eq!(linger("5s"), Some(Duration::from_secs(5)));
        assert_eq!(linger("5"), Some(Duration::from_secs(5)));
        assert_eq!(linger("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(linger("0"), Some(Duration::ZERO));
        assert_eq!(linger(" 3600s "), Some(MAX_SHUTDOWN_LINGER));
        for v in [
            "-1",
            "5 s",
            "1.5s",
            "5m",
            "ms",
            "s",
            "3601s",
            "3600001ms",
            "x",
        ] {
            let e = bad(VAR_SHUTDOWN_LINGER, v);
            let line = e.to_string();
            assert!(
                line.starts_with("MTCP_SHUTDOWN_LINGER=") && line.contains("e.g. 5s, 500ms"),
                "{line}"
            );
            assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn stats_interval_forms() {
        let every = |v: &str| cfg(&[(VAR_STATS, v)]).unwrap().net.stats;
        assert_eq!(every("5s"), Some(core::time::Duration::from_secs(5)));
        assert_eq!(
            every(" 500ms "),
            Some(core::time::Duration::from_millis(500))
        );
        assert_eq!(every("2m"), Some(core::time::Duration::from_secs(120)));
        assert_eq!(every("1h"), Some(core::time::Duration::from_secs(3600)));
        for v in [
            "x", "5", "0s", "0ms", "s", "-1s", "1.5s", "5 s", "5S", "2d", "25h",
        ] {
            assert_eq!(bad(VAR_STATS, v).expected, EXPECT_STATS);
        }
        assert_eq!(
            bad(VAR_STATS, "x").to_string(),
            "MTCP_STATS=\"x\": expected a duration like 5s or 500ms (1ms to 1 day)"
        );
    }

    #[test]
    fn device_forms() {
        let dev = |v: &str| cfg(&[(VAR_DEVICE, v)]).unwrap().net.device;
        assert_eq!(dev("memory"), DeviceSpec::Memory);
        assert_eq!(dev("tap:tap0"), DeviceSpec::Tap("tap0".into()));
        assert_eq!(dev("af_packet:veth0"), DeviceSpec::AfPacket("veth0".into()));
        assert_eq!(dev("xdp:eth1"), DeviceSpec::Xdp("eth1".into()));
        assert_eq!(dev(" xdp:eth1 "), DeviceSpec::Xdp("eth1".into()));
        assert_eq!(
            dev("af_packet:abcdefghijklmno").to_string(),
            "af_packet:abcdefghijklmno"
        );
        for v in [
            "Memory",
            "tap",
            "tap:",
            "tap:a/b",
            "tap:a b",
            "tap:..",
            "af_packet:abcdefghijklmnop",
            "xdp:eth0:1",
            "netmap:eth0",
            "dpdk:0",
        ] {
            assert_eq!(bad(VAR_DEVICE, v).expected, EXPECT_DEVICE);
        }
    }

    #[test]
    fn dpdk_needs_its_arguments() {
        let e = cfg(&[(VAR_DEVICE, "dpdk")]).unwrap_err();
        assert_eq!(e.var, VAR_DPDK_ARGS);
        assert!(e
            .to_string()
            .starts_with("MTCP_DPDK_ARGS=\"\": expected DPDK EAL arguments"));
        let e = cfg(&[(VAR_DEVICE, "dpdk"), (VAR_DPDK_ARGS, "   ")]).unwrap_err();
        assert_eq!(e.var, VAR_DPDK_ARGS);
        let c = cfg(&[
            (VAR_DEVICE, "dpdk"),
            (
                VAR_DPDK_ARGS,
                "-l 0  --no-huge\t--vdev=net_af_packet0,iface=veth0",
            ),
        ])
        .unwrap();
        assert_eq!(c.net.device, DeviceSpec::Dpdk);
        assert_eq!(
            c.net.dpdk_args,
            ["-l", "0", "--no-huge", "--vdev=net_af_packet0,iface=veth0"]
        );
        // Ignored (but kept) for other devices.
        let c = cfg(&[(VAR_DPDK_ARGS, "-l 0")]).unwrap();
        assert_eq!(c.net.device, DeviceSpec::Memory);
        assert_eq!(c.net.dpdk_args.len(), 2);
    }

    #[test]
    fn addr_forms_and_the_documented_error_line() {
        let c = cfg(&[(VAR_ADDR, "10.99.0.2/24")]).unwrap();
        assert_eq!(c.net.stack.addr.address, Ipv4Address::new(10, 99, 0, 2));
        assert_eq!(c.net.stack.addr.prefix_len, 24);
        assert_eq!(
            cfg(&[(VAR_ADDR, "192.168.1.9/32")])
                .unwrap()
                .net
                .stack
                .addr
                .prefix_len,
            32
        );
        assert_eq!(
            cfg(&[(VAR_ADDR, "192.168.1.9/0")])
                .unwrap()
                .net
                .stack
                .addr
                .prefix_len,
            0
        );
        assert_eq!(
            bad(VAR_ADDR, "10.0.0/24").to_string(),
            "MTCP_ADDR=\"10.0.0/24\": expected an IPv4 address with prefix length, e.g. 10.99.0.2/24"
        );
        for v in [
            "10.0.0.1",
            "10.0.0.1/",
            "10.0.0.1/33",
            "10.0.0.1/+8",
            "10.0.0.1/24/1",
            "10.0.0.256/24",
            "0.0.0.0/0",
            "224.0.0.1/4",
            "255.255.255.255/32",
            "host/24",
        ] {
            assert_eq!(bad(VAR_ADDR, v).expected, EXPECT_ADDR, "{v}");
        }
    }

    #[test]
    fn error_display_is_one_line_even_with_odd_values() {
        let e = bad(VAR_ADDR, "10.0.0.1/24\nMTCP_CORES=4");
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("MTCP_ADDR=\"10.0.0.1/24\\nMTCP_CORES=4\": expected "));
    }

    #[test]
    fn gateway_forms() {
        let c = cfg(&[(VAR_ADDR, "10.99.0.2/24"), (VAR_GATEWAY, "10.99.0.1")]).unwrap();
        assert_eq!(c.net.stack.gateway, Some(Ipv4Address::new(10, 99, 0, 1)));
        // Checked against the default address when MTCP_ADDR is unset.
        assert!(cfg(&[(VAR_GATEWAY, "10.0.0.254")]).is_ok());
        for v in [
            "10.1.0.1",
            "10.0.0.1",
            "10.0.0.255",
            "10.0.0",
            "gw",
            "0.0.0.0",
        ] {
            assert_eq!(bad(VAR_GATEWAY, v).expected, EXPECT_GATEWAY, "{v}");
        }
        // A /31 has no broadcast address.
        let c = cfg(&[(VAR_ADDR, "10.0.0.0/31"), (VAR_GATEWAY, "10.0.0.1")]).unwrap();
        assert!(c.net.stack.gateway.is_some());
    }

    #[test]
    fn mac_forms() {
        let c = cfg(&[(VAR_MAC, "02:AB:cd:00:11:ff")]).unwrap();
        assert_eq!(
            c.net.stack.mac,
            Some(EthernetAddress([2, 0xab, 0xcd, 0, 0x11, 0xff]))
        );
        for v in [
            "02:ab:cd:00:11",
            "02:ab:cd:00:11:ff:00",
            "02-ab-cd-00-11-ff",
            "2:ab:cd:00:11:ff",
            "02:ab:cd:00:11:fg",
            "01:00:5e:00:00:01",
            "ff:ff:ff:ff:ff:ff",
            "00:00:00:00:00:00",
            "02:ab:cd:00:11:+f",
        ] {
            assert_eq!(bad(VAR_MAC, v).expected, EXPECT_MAC, "{v}");
        }
        assert_eq!(
            parse_mac("aa:bb:cc:dd:ee:ff"),
            Some(EthernetAddress([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]))
        );
        assert_eq!(parse_mac(""), None);
        assert_eq!(parse_mac("é:bb:cc:dd:ee:ff"), None);
    }

    #[test]
    fn cores_forms() {
        assert_eq!(cfg(&[(VAR_CORES, "4")]).unwrap().cores, 4);
        assert_eq!(cfg(&[(VAR_CORES, " 1 ")]).unwrap().cores, 1);
        assert_eq!(cfg(&[(VAR_CORES, "1024")]).unwrap().cores, 1024);
        for v in [
            "0",
            "-1",
            "+2",
            "1025",
            "four",
            "2.0",
            "99999999999999999999999",
        ] {
            assert_eq!(bad(VAR_CORES, v).expected, EXPECT_CORES, "{v}");
        }
    }

    #[test]
    fn connection_limits_forms() {
        let engine = crate::tcp::TcpConfig::default();
        let c = cfg(&[]).unwrap().net.stack.tcp;
        assert_eq!(
            (c.max_connections, c.max_time_wait),
            (engine.max_connections, engine.max_time_wait)
        );
        let c = cfg(&[(VAR_MAX_CONNECTIONS, "1000000"), (VAR_MAX_TIME_WAIT, " 0 ")])
            .unwrap()
            .net
            .stack
            .tcp;
        assert_eq!(c.max_connections, 1_000_000);
        assert_eq!(c.max_time_wait, 0);
        let c = cfg(&[(VAR_MAX_CONNECTIONS, "16777216")]).unwrap();
        assert_eq!(c.net.stack.tcp.max_connections, 16_777_216);
        for v in ["0", "-1", "1M", "16777217", "1e6", "64k"] {
            let e = bad(VAR_MAX_CONNECTIONS, v);
            assert_eq!(e.expected, EXPECT_MAX_CONNECTIONS, "{v}");
            let line = e.to_string();
            assert!(
                line.starts_with("MTCP_MAX_CONNECTIONS=") && !line.contains('\n'),
                "{line}"
            );
        }
        for v in ["-1", "16777217", "lots"] {
            assert_eq!(
                bad(VAR_MAX_TIME_WAIT, v).expected,
                EXPECT_MAX_TIME_WAIT,
                "{v}"
            );
        }
    }

    #[test]
    fn pcap_and_faults_forms() {
        let c = cfg(&[
            (VAR_PCAP, "/tmp/x y.pcap"),
            (
                VAR_FAULTS,
                "drop=0.02,dup=0.01,reorder=0.05,corrupt=0.005,seed=7",
            ),
        ])
        .unwrap();
        assert_eq!(c.net.pcap, Some(PathBuf::from("/tmp/x y.pcap")));
        let f = c.net.faults.unwrap();
        assert_eq!(
            (f.drop, f.dup, f.reorder, f.corrupt, f.seed),
            (0.02, 0.01, 0.05, 0.005, 7)
        );
        let e = bad(VAR_FAULTS, "drop=2");
        assert!(
            e.to_string()
                .contains("drop=P with P a probability in [0, 1]"),
            "{e}"
        );
        let e = bad(VAR_FAULTS, "loss=0.1");
        assert!(
            e.expected
                .contains("keys drop, dup, reorder, corrupt, seed"),
            "{e}"
        );
        let e = bad(VAR_FAULTS, "seed=x");
        assert!(e.expected.starts_with("seed=N"), "{e}");
    }

    #[test]
    fn first_bad_variable_wins_in_table_order() {
        let e = cfg(&[(VAR_CORES, "0"), (VAR_DEVICE, "bogus"), (VAR_ADDR, "x")]).unwrap_err();
        assert_eq!(e.var, VAR_DEVICE);
        let e = cfg(&[(VAR_CORES, "0"), (VAR_ADDR, "x")]).unwrap_err();
        assert_eq!(e.var, VAR_ADDR);
    }

    #[test]
    fn from_env_reads_the_process_environment() {
        // Only checks agreement: the test does not modify the environment.
        let direct = EnvConfig::from_lookup(|k| std::env::var(k).ok());
        assert_eq!(EnvConfig::from_env().is_ok(), direct.is_ok());
    }
}

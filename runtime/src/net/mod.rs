//! Networking on the core's user-level stack: [`TcpListener`],
//! [`TcpStream`] and [`UdpSocket`], shaped like tokio's `tokio::net`.
//!
//! Every call is a function call into the current core's
//! [`Stack`](mtcp_stack::stack::Stack); no system call is made. The stack
//! runs as the core's reactor: it receives at the start of each tick and
//! sends what the tick's tasks wrote at its end.

pub(crate) mod config;
pub(crate) mod current;
pub(crate) mod driver;
mod error;
pub(crate) mod keepalive;
mod listener;
mod lookup;
mod park;
mod socket;
mod split;
mod stats_line;
mod stream;
mod stream_ext;
mod tcp_socket;
mod udp;

pub use config::NetConfig;
pub use keepalive::TcpKeepalive;
pub use listener::{TcpListener, DEFAULT_BACKLOG};
pub use lookup::{lookup_host, ToSocketAddrs};
pub use stream::TcpStream;
pub use tcp_socket::TcpSocket;
pub use udp::UdpSocket;

/// TCP stream halves, as in `tokio::net::tcp`.
pub mod tcp {
    pub use super::split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
}

use mtcp_stack::iface::IfaceStats;
use mtcp_stack::nic::QueueCounters;
use mtcp_stack::stats::Stats;
use mtcp_stack::tcp::TcpStats;
use mtcp_stack::udp::UdpStats;

/// A snapshot of the current core's stack: frame counters and drops by
/// reason, interface (ARP/IPv4/ICMP) and TCP counters, and what is in use.
#[derive(Debug, Clone)]
pub struct CoreStats {
    /// Frames and bytes in and out, drops by reason.
    pub frames: Stats,
    /// The device queue's own counters: frames the kernel or the backend
    /// lost before the stack saw them (AF_PACKET `tp_drops`, AF_XDP ring
    /// statistics), read from the kernel at each call.
    pub nic: QueueCounters,
    /// ARP, IPv4 and ICMP counters.
    pub iface: IfaceStats,
    /// TCP counters.
    pub tcp: TcpStats,
    /// UDP counters.
    pub udp: UdpStats,
    /// UDP sockets open.
    pub udp_sockets: usize,
    /// TCBs in use (connections, listeners; TIME-WAIT entries are held
    /// apart, see `time_wait`).
    pub sockets: usize,
    /// Connections in TIME-WAIT (compact entries outside the TCB slab,
    /// capped by `MTCP_MAX_TIME_WAIT`).
    pub time_wait: usize,
    /// Buffer chunks in use.
    pub chunks_in_use: usize,
}

impl std::fmt::Display for CoreStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.frames)?;
        writeln!(f, "{}", self.nic)?;
        writeln!(f, "{}", self.iface)?;
        writeln!(f, "{}", self.tcp)?;
        writeln!(f, "{} (sockets {})", self.udp, self.udp_sockets)?;
        write!(
            f,
            "sockets {} (time-wait {}), chunks in use {}",
            self.sockets, self.time_wait, self.chunks_in_use
        )
    }
}

/// The current core's stack counters.
///
/// # Errors
/// `Other` off a runtime thread or on a runtime without a network device.
///
/// # Examples
///
/// ```
/// # mtcp::runtime::Builder::from_env().unwrap().build().unwrap().block_on(async {
/// let stats = mtcp::net::core_stats().unwrap();
/// println!("{stats}");
/// # });
/// ```
pub fn core_stats() -> std::io::Result<CoreStats> {
    driver::with_stack(|s, _| CoreStats {
        frames: *s.stats(),
        nic: s.nic().counters(),
        iface: s.iface().stats().clone(),
        tcp: *s.tcp().stats(),
        udp: *s.udp().stats(),
        udp_sockets: s.udp().sockets_in_use(),
        sockets: s.tcp().sockets_in_use(),
        time_wait: s.tcp().time_wait_sockets(),
        chunks_in_use: s.tcp().chunks_in_use(),
    })
}

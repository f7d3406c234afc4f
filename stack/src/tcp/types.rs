//! The engine's basic types, shared by every module of `tcp/` and by its
//! users: socket ids, the error type, the per-connection flag bits and the
//! MSS bounds. A leaf: it imports nothing from `tcp/`.

use core::fmt;

/// The MSS assumed when the peer sends none (RFC 9293 §3.7.1).
pub(crate) const DEFAULT_MSS: u16 = 536;
/// The smallest MSS we accept from a peer (smaller values are raised).
pub(crate) const MIN_MSS: u16 = 64;

/// Names a socket: a slab index plus the generation of that slot, checked on
/// every call so that an id kept after close never reaches a new socket.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    index: u32,
    generation: u32,
}

impl SocketId {
    /// An id from its parts.
    pub const fn new(index: u32, generation: u32) -> SocketId {
        SocketId { index, generation }
    }

    /// The slab index.
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The slot generation.
    pub const fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

bitflags::bitflags! {
    /// Per-connection flag bits.
    #[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
    pub(crate) struct TcbFlags: u32 {
        /// An ACK must go out now.
        const ACK_NOW = 1 << 0;
        /// An ACK is owed but may be delayed.
        const ACK_DELAYED = 1 << 1;
        /// The user shut down writing: a FIN follows the queued data.
        const FIN_QUEUED = 1 << 2;
        /// Our FIN has been sent at least once.
        const FIN_SENT = 1 << 3;
        /// Nagle's algorithm is off.
        const NODELAY = 1 << 4;
        /// Timestamps negotiated (RFC 7323).
        const TIMESTAMPS = 1 << 5;
        /// SACK negotiated (RFC 2018).
        const SACK = 1 << 6;
        /// Window scaling negotiated (RFC 7323).
        const WSCALE = 1 << 7;
        /// The user closed the socket: free it when the connection ends.
        const USER_CLOSED = 1 << 8;
        /// Opened passively (child of a listener).
        const PASSIVE = 1 << 9;
        /// Keepalive on.
        const KEEPALIVE = 1 << 10;
        /// The peer's FIN was received (EOF after the buffered data).
        const FIN_RECEIVED = 1 << 11;
        /// A passive child counted in its listener's half-open (SYN)
        /// queue.
        const IN_SYN_QUEUE = 1 << 12;
        /// The SYN (or SYN-ACK) must be (re)sent.
        const SYN_PENDING = 1 << 13;
        /// A zero-window or keepalive probe must be sent.
        const PROBE = 1 << 14;
        /// The user holds this socket (accepted, connected or listening).
        const USER_OWNED = 1 << 15;
        /// Retransmit the segment at SND.UNA once (fast retransmit, partial ACK).
        const REXMIT_ONE = 1 << 16;
        /// Created from a SYN cookie.
        const FROM_COOKIE = 1 << 17;
        /// The persist timer fired with a small non-zero window: send what
        /// fits, overriding sender SWS avoidance once (RFC 9293 §3.8.6.2.1).
        const SWS_OVERRIDE = 1 << 18;
        /// A write found the chunk pool empty: wake the writer when chunks
        /// are free again.
        const WAIT_POOL = 1 << 19;
        /// A passive child in its listener's accept queue.
        const IN_ACCEPT_QUEUE = 1 << 20;
        /// No zero-window probe awaits an answer: a segment arrived since
        /// the last one was sent, or none was sent since the window was
        /// found closed (so the persist timer's first expiry never counts
        /// as an unanswered probe, as Linux's `icsk_probes_out`).
        const PROBE_ANSWERED = 1 << 21;
        /// A FIN arrived out of order (its sequence number is kept).
        const OOO_FIN = 1 << 22;
    }
}

impl TcbFlags {
    /// True when any bit of `bits` is set.
    #[inline]
    pub(crate) fn has(self, bits: TcbFlags) -> bool {
        self.intersects(bits)
    }
}

/// Why a socket call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpError {
    /// Not now: no data, no buffer space, no connection to accept.
    WouldBlock,
    /// The peer answered our SYN with a RST.
    ConnectionRefused,
    /// The peer reset the connection.
    ConnectionReset,
    /// Retransmissions (or keepalive probes) went unanswered.
    TimedOut,
    /// The local address is taken.
    AddrInUse,
    /// No local address or ephemeral port is available.
    AddrNotAvailable,
    /// Writing after shutdown or close.
    BrokenPipe,
    /// The socket is not connected (e.g. a listener).
    NotConnected,
    /// An argument is invalid.
    InvalidInput,
    /// No TCB, flow-table slot or buffer is left.
    NoResources,
    /// The socket id is stale or unknown.
    InvalidSocket,
    /// ICMP: the host is unreachable (a hard error in SYN-SENT, or the
    /// soft error behind a timeout).
    HostUnreachable,
    /// ICMP: the network is unreachable (the soft error behind a timeout).
    NetworkUnreachable,
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpError::WouldBlock => "operation would block",
            TcpError::ConnectionRefused => "connection refused",
            TcpError::ConnectionReset => "connection reset by peer",
            TcpError::TimedOut => "connection timed out",
            TcpError::AddrInUse => "address in use",
            TcpError::AddrNotAvailable => "address not available",
            TcpError::BrokenPipe => "broken pipe",
            TcpError::NotConnected => "not connected",
            TcpError::InvalidInput => "invalid input",
            TcpError::NoResources => "no resources left",
            TcpError::InvalidSocket => "invalid socket",
            TcpError::HostUnreachable => "host unreachable",
            TcpError::NetworkUnreachable => "network unreachable",
        })
    }
}

impl std::error::Error for TcpError {}

impl TcpError {
    /// The `std::io::ErrorKind` the runtime reports for this error.
    pub fn kind(self) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match self {
            TcpError::WouldBlock => K::WouldBlock,
            TcpError::ConnectionRefused => K::ConnectionRefused,
            TcpError::ConnectionReset => K::ConnectionReset,
            TcpError::TimedOut => K::TimedOut,
            TcpError::AddrInUse => K::AddrInUse,
            TcpError::AddrNotAvailable => K::AddrNotAvailable,
            TcpError::BrokenPipe => K::BrokenPipe,
            TcpError::NotConnected => K::NotConnected,
            TcpError::InvalidInput => K::InvalidInput,
            TcpError::NoResources => K::OutOfMemory,
            // A handle to a socket that is gone: as std reports a
            // closed socket.
            TcpError::InvalidSocket => K::NotConnected,
            TcpError::HostUnreachable => K::HostUnreachable,
            TcpError::NetworkUnreachable => K::NetworkUnreachable,
        }
    }
}

/// Errors with a plain std kind (refused, reset, timed out, …) become that
/// kind alone, so they print as std's (`connection refused`); the others
/// keep the stack's words.
impl From<TcpError> for std::io::Error {
    fn from(e: TcpError) -> std::io::Error {
        match e {
            TcpError::NoResources | TcpError::InvalidInput | TcpError::InvalidSocket => {
                std::io::Error::new(e.kind(), e)
            }
            _ => std::io::Error::from(e.kind()),
        }
    }
}

/// Result of a socket call.
pub(crate) type Result<T> = core::result::Result<T, TcpError>;

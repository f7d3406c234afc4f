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

/// Per-connection flag bits.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TcbFlags(pub u32);

impl TcbFlags {
    /// An ACK must go out now.
    pub(crate) const ACK_NOW: u32 = 1 << 0;
    /// An ACK is owed but may be delayed.
    pub(crate) const ACK_DELAYED: u32 = 1 << 1;
    /// The user shut down writing: a FIN follows the queued data.
    pub(crate) const FIN_QUEUED: u32 = 1 << 2;
    /// Our FIN has been sent at least once.
    pub(crate) const FIN_SENT: u32 = 1 << 3;
    /// Nagle's algorithm is off.
    pub(crate) const NODELAY: u32 = 1 << 4;
    /// Timestamps negotiated (RFC 7323).
    pub(crate) const TIMESTAMPS: u32 = 1 << 5;
    /// SACK negotiated (RFC 2018).
    pub(crate) const SACK: u32 = 1 << 6;
    /// Window scaling negotiated (RFC 7323).
    pub(crate) const WSCALE: u32 = 1 << 7;
    /// The user closed the socket: free it when the connection ends.
    pub(crate) const USER_CLOSED: u32 = 1 << 8;
    /// Opened passively (child of a listener).
    pub(crate) const PASSIVE: u32 = 1 << 9;
    /// Keepalive on.
    pub(crate) const KEEPALIVE: u32 = 1 << 10;
    /// The peer's FIN was received (EOF after the buffered data).
    pub(crate) const FIN_RECEIVED: u32 = 1 << 11;
    /// The SYN (or SYN-ACK) must be (re)sent.
    pub(crate) const SYN_PENDING: u32 = 1 << 13;
    /// A zero-window or keepalive probe must be sent.
    pub(crate) const PROBE: u32 = 1 << 14;
    /// The user holds this socket (accepted, connected or listening).
    pub(crate) const USER_OWNED: u32 = 1 << 15;
    /// Retransmit the segment at SND.UNA once (fast retransmit, partial ACK).
    pub(crate) const REXMIT_ONE: u32 = 1 << 16;
    /// Created from a SYN cookie.
    pub(crate) const FROM_COOKIE: u32 = 1 << 17;
    /// The persist timer fired with a small non-zero window: send what
    /// fits, overriding sender SWS avoidance once (RFC 9293 §3.8.6.2.1).
    pub(crate) const SWS_OVERRIDE: u32 = 1 << 18;
    /// A write found the chunk pool empty: wake the writer when chunks
    /// are free again.
    pub(crate) const WAIT_POOL: u32 = 1 << 19;

    /// True when `bit` is set.
    #[inline]
    pub(crate) fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    /// Sets `bit`.
    #[inline]
    pub(crate) fn set(&mut self, bit: u32) {
        self.0 |= bit;
    }

    /// Clears `bit`.
    #[inline]
    pub(crate) fn clear(&mut self, bit: u32) {
        self.0 &= !bit;
    }
}

impl fmt::Debug for TcbFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
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

//! [`TcpSocket`]: a TCP socket configured before it connects or listens,
//! shaped like tokio's.

use std::cell::Cell;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use mtcp_stack::tcp::KeepaliveConfig;

use super::driver::with_stack;
use super::error;
use super::keepalive::TcpKeepalive;
use super::listener::TcpListener;
use super::socket::Socket;
use super::stream::TcpStream;

/// A TCP socket not yet connected or listening (tokio's `TcpSocket`):
/// set options, optionally [`bind`](Self::bind), then
/// [`connect`](Self::connect) or [`listen`](Self::listen).
///
/// # Differences from tokio
///
/// Nothing exists in the stack until `connect` or `listen`: the options are
/// kept here and applied then. `reuseaddr`/`reuseport` are recorded only
/// (each core's stack owns its ports; `#[mtcp::main(cores = N)]` already
/// lets every core listen on the same port). The stack is IPv4 only, so
/// [`new_v6`](Self::new_v6) fails. Buffer sizes come from the stack's
/// configuration, not per socket.
///
/// # Examples
///
/// ```
/// use mtcp::net::TcpSocket;
///
/// # mtcp::runtime::block_on(async {
/// let socket = TcpSocket::new_v4().unwrap();
/// socket.set_reuseaddr(true).unwrap();
/// socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let listener = socket.listen(1024).unwrap();
/// let addr = listener.local_addr().unwrap();
///
/// let client = TcpSocket::new_v4().unwrap();
/// client.set_nodelay(true).unwrap();
/// let (stream, accepted) = mtcp::join!(client.connect(addr), listener.accept());
/// assert!(stream.unwrap().nodelay().unwrap());
/// accepted.unwrap();
/// # });
/// ```
pub struct TcpSocket {
    local: Cell<Option<SocketAddrV4>>,
    reuseaddr: Cell<bool>,
    reuseport: Cell<bool>,
    nodelay: Cell<bool>,
    keepalive: Cell<bool>,
    keepalive_timing: Cell<Option<TcpKeepalive>>,
    linger: Cell<Option<Duration>>,
}

impl fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpSocket")
            .field("local", &self.local.get())
            .finish_non_exhaustive()
    }
}

impl TcpSocket {
    /// A new IPv4 socket.
    ///
    /// # Errors
    /// Never on mtcp (the `Result` is tokio's shape).
    pub fn new_v4() -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            local: Cell::new(None),
            reuseaddr: Cell::new(false),
            reuseport: Cell::new(false),
            nodelay: Cell::new(false),
            keepalive: Cell::new(false),
            keepalive_timing: Cell::new(None),
            linger: Cell::new(None),
        })
    }

    /// IPv6 is not supported by the stack.
    ///
    /// # Errors
    /// Always `Unsupported`.
    pub fn new_v6() -> io::Result<TcpSocket> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "mtcp: the user-level stack is IPv4 only",
        ))
    }

    /// Records `SO_REUSEADDR` (no effect on mtcp).
    ///
    /// # Errors
    /// Never.
    pub fn set_reuseaddr(&self, reuseaddr: bool) -> io::Result<()> {
        self.reuseaddr.set(reuseaddr);
        Ok(())
    }

    /// The recorded `SO_REUSEADDR`.
    ///
    /// # Errors
    /// Never.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        Ok(self.reuseaddr.get())
    }

    /// Records `SO_REUSEPORT` (no effect on mtcp).
    ///
    /// # Errors
    /// Never.
    pub fn set_reuseport(&self, reuseport: bool) -> io::Result<()> {
        self.reuseport.set(reuseport);
        Ok(())
    }

    /// The recorded `SO_REUSEPORT`.
    ///
    /// # Errors
    /// Never.
    pub fn reuseport(&self) -> io::Result<bool> {
        Ok(self.reuseport.get())
    }

    /// Turns Nagle's algorithm off for the connection made by `connect`.
    ///
    /// # Errors
    /// Never.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.nodelay.set(nodelay);
        Ok(())
    }

    /// Whether `connect` will turn Nagle's algorithm off.
    ///
    /// # Errors
    /// Never.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.nodelay.get())
    }

    /// Turns keepalive on for the connection made by `connect`.
    ///
    /// # Errors
    /// Never.
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.keepalive.set(keepalive);
        Ok(())
    }

    /// Keepalive on, with this timing, for the connection made by
    /// `connect` (socket2's `set_tcp_keepalive`).
    ///
    /// # Errors
    /// `InvalidInput` for a zero time, interval or retry count, or more
    /// than 255 retries.
    pub fn set_tcp_keepalive(&self, keepalive: &TcpKeepalive) -> io::Result<()> {
        if keepalive.resolve(KeepaliveConfig::default()).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mtcp: keepalive time, interval and retries must be non-zero (retries at most 255)",
            ));
        }
        self.keepalive_timing.set(Some(*keepalive));
        self.keepalive.set(true);
        Ok(())
    }

    /// Whether `connect` will turn keepalive on.
    ///
    /// # Errors
    /// Never.
    pub fn keepalive(&self) -> io::Result<bool> {
        Ok(self.keepalive.get())
    }

    /// `SO_LINGER` for the connection made by `connect`; see
    /// [`TcpStream::set_linger`].
    ///
    /// # Errors
    /// Never.
    pub fn set_linger(&self, dur: Option<Duration>) -> io::Result<()> {
        self.linger.set(dur);
        Ok(())
    }

    /// The linger `connect` will set.
    ///
    /// # Errors
    /// Never.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        Ok(self.linger.get())
    }

    /// Chooses the local address for `connect` or `listen`.
    ///
    /// # Errors
    /// `AddrNotAvailable` for an IPv6 address.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        match addr {
            SocketAddr::V4(a) => {
                self.local.set(Some(a));
                Ok(())
            }
            SocketAddr::V6(_) => Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "mtcp: the user-level stack is IPv4 only",
            )),
        }
    }

    /// The address given to [`bind`](Self::bind).
    ///
    /// # Errors
    /// `InvalidInput` before `bind`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.local.get().map(SocketAddr::V4).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "mtcp: the socket is not bound")
        })
    }

    /// Pending error: none before the socket exists.
    ///
    /// # Errors
    /// Never.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }

    /// Listens on the bound address (`0.0.0.0` and a free port if not
    /// bound), with an accept queue of `backlog`.
    ///
    /// # Errors
    /// As [`TcpListener::bind`].
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        let addr = self
            .local
            .get()
            .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        TcpListener::bind_with_backlog(addr, backlog.max(1) as usize)
    }

    /// Connects to `addr` from the bound address (if any), then applies
    /// the options set.
    ///
    /// A bound non-zero port is used as is (with several cores the replies
    /// may then be steered to another core); with port 0 the stack picks
    /// the local address and an RSS-aware port.
    ///
    /// # Errors
    /// As [`TcpStream::connect`]; `AddrNotAvailable` for IPv6.
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        let SocketAddr::V4(addr) = addr else {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "mtcp: the user-level stack is IPv4 only",
            ));
        };
        let local = self.local.get().filter(|l| l.port() != 0);
        let id = with_stack(|s, now| s.tcp_mut().connect(now, addr, local))?.map_err(error::tcp)?;
        let stream = TcpStream::from_socket(Socket::new(id));
        poll_fn(|cx| stream.poll_connected(cx)).await?;
        if self.nodelay.get() {
            stream.set_nodelay(true)?;
        }
        if let Some(ka) = self.keepalive_timing.get() {
            stream.set_tcp_keepalive(&ka)?;
            if !self.keepalive.get() {
                stream.set_keepalive(false)?;
            }
        } else if self.keepalive.get() {
            stream.set_keepalive(true)?;
        }
        if self.linger.get().is_some() {
            stream.set_linger(self.linger.get())?;
        }
        Ok(stream)
    }
}

//! [`TcpListener`]: a listening socket on this core's stack.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::task::{Context, Poll};

use mtcp_stack::tcp::TcpError;

use super::driver::with_stack;
use super::error;
use super::socket::{resolve_v4, Socket};
use super::stream::TcpStream;

/// The accept queue length of listeners made by [`TcpListener::bind`].
pub const DEFAULT_BACKLOG: usize = 1024;

/// A TCP listener on the current core's stack, shaped like tokio's.
///
/// With several cores, every core binds its own listener on the same port
/// (as `SO_REUSEPORT` does) and accepts the connections the NIC steers to
/// it; `#[mtcp::main(cores = N)]` runs `main` once per core, so the usual
/// bind-then-accept loop needs no change.
///
/// # Examples
///
/// ```no_run
/// use mtcp::io::{AsyncReadExt, AsyncWriteExt};
/// use mtcp::net::TcpListener;
///
/// #[mtcp::main]
/// async fn main() -> std::io::Result<()> {
///     let listener = TcpListener::bind("0.0.0.0:8080").await?;
///     loop {
///         let (mut socket, _) = listener.accept().await?;
///         mtcp::spawn(async move {
///             let mut buf = [0u8; 1024];
///             while let Ok(n) = socket.read(&mut buf).await {
///                 if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
///                     break;
///                 }
///             }
///         });
///     }
/// }
/// ```
pub struct TcpListener {
    socket: Socket,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("socket", &self.socket)
            .finish()
    }
}

/// Ephemeral ports tried for a bind to port 0.
const BIND_ANY_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

impl TcpListener {
    /// Listens on `addr` (`0.0.0.0` for every local address; port 0 picks a
    /// free port, see [`local_addr`](Self::local_addr)).
    ///
    /// # Errors
    /// `AddrInUse`, `AddrNotAvailable` (not one of the stack's addresses,
    /// or no IPv4 address), `Other` off a runtime with a network device.
    pub async fn bind<A: std::net::ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        Self::bind_with_backlog(addr, DEFAULT_BACKLOG)
    }

    /// [`bind`](Self::bind) with an explicit accept queue length.
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    pub fn bind_with_backlog<A: std::net::ToSocketAddrs>(
        addr: A,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve_v4(addr)? {
            match Self::bind_one(a, backlog) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable)))
    }

    fn bind_one(addr: SocketAddrV4, backlog: usize) -> io::Result<TcpListener> {
        let id = with_stack(|s, _| {
            let tcp = s.tcp_mut();
            if addr.port() != 0 {
                return tcp.listen(addr, backlog);
            }
            for port in BIND_ANY_PORTS {
                match tcp.listen(SocketAddrV4::new(*addr.ip(), port), backlog) {
                    Err(TcpError::AddrInUse) => continue,
                    r => return r,
                }
            }
            Err(TcpError::AddrInUse)
        })?
        .map_err(error::tcp)?;
        let listener = TcpListener {
            socket: Socket::new(id),
        };
        if log::log_enabled!(log::Level::Debug) {
            if let Ok(local) = listener.local_addr() {
                log::debug!("mtcp: listening on {local}");
            }
        }
        Ok(listener)
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// # Errors
    /// `Other` when the listener's core is gone.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for a connection, registering the task's waker when none is
    /// waiting.
    ///
    /// # Errors
    /// As [`accept`](Self::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let r = self.socket.with(|s, _, id| {
            let tcp = s.tcp_mut();
            match tcp.accept(id) {
                Ok(conn) => {
                    let peer = tcp.peer_addr(conn).map_err(error::tcp)?;
                    Ok(Some((conn, peer)))
                }
                Err(TcpError::WouldBlock) => {
                    tcp.register_read_waker(id, cx.waker())
                        .map_err(error::tcp)?;
                    Ok(None)
                }
                Err(e) => Err(error::tcp(e)),
            }
        });
        match r {
            Ok(Ok(Some((conn, peer)))) => Poll::Ready(Ok((
                TcpStream::from_socket(Socket::new(conn)),
                SocketAddr::V4(peer),
            ))),
            Ok(Ok(None)) => Poll::Pending,
            Ok(Err(e)) | Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// The address this listener is bound to (with the port picked for a
    /// bind to port 0).
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

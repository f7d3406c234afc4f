//! [`TcpStream`]: a connection on this core's stack, shaped like tokio's.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use mtcp_stack::tcp::State;
use mtcp_stack::tcp::TcpError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::driver::with_stack;
use super::error;
use super::keepalive::TcpKeepalive;
use super::socket::{resolve_v4, Socket};
use super::split::{split, split_owned, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};

/// A TCP connection of the current core's user-level stack.
///
/// Reads copy out of the socket's receive buffer and writes append to its
/// send buffer: both are function calls into this core's stack, with no
/// system call. Data written is sent at the end of the reactor tick.
///
/// A stream belongs to the core that created it; using it from another
/// core's thread fails with an error (move the work, not the socket).
///
/// # Examples
///
/// ```no_run
/// use mtcp::io::{AsyncReadExt, AsyncWriteExt};
/// use mtcp::net::TcpStream;
///
/// #[mtcp::main]
/// async fn main() -> std::io::Result<()> {
///     let mut stream = TcpStream::connect("10.0.0.1:8080").await?;
///     stream.write_all(b"hello").await?;
///     let mut buf = [0u8; 5];
///     stream.read_exact(&mut buf).await?;
///     Ok(())
/// }
/// ```
pub struct TcpStream {
    /// Held inline (24 bytes): a stream costs no heap block of its own.
    /// Only [`into_split`](Self::into_split) shares it, in an `Arc`, as
    /// tokio's owned halves do.
    pub(crate) socket: Socket,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("socket", &self.socket)
            .finish()
    }
}

impl TcpStream {
    pub(crate) fn from_socket(socket: Socket) -> TcpStream {
        TcpStream { socket }
    }

    /// Opens a connection to `addr`, trying each resolved IPv4 address in
    /// turn. The local port is chosen so that the peer's replies reach this
    /// core (RSS-aware ephemeral ports).
    ///
    /// # Errors
    /// `ConnectionRefused` (the peer answered with RST), `TimedOut` (SYN
    /// retries exhausted), `AddrNotAvailable` (no IPv4 address, no free
    /// port), or the error of the last address tried.
    pub async fn connect<A: std::net::ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let mut last = None;
        for a in resolve_v4(addr)? {
            match Self::connect_one(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable)))
    }

    async fn connect_one(addr: std::net::SocketAddrV4) -> io::Result<TcpStream> {
        let id = with_stack(|s, now| s.tcp_mut().connect(now, addr, None))?.map_err(error::tcp)?;
        let stream = TcpStream::from_socket(Socket::new(id));
        poll_fn(|cx| stream.poll_connected(cx)).await?;
        Ok(stream)
    }

    pub(crate) fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready(self.socket.with(|s, _, id| {
            let tcp = s.tcp_mut();
            match tcp.take_error(id) {
                Ok(Some(e)) | Err(e) => return Poll::Ready(Err(error::tcp(e))),
                Ok(None) => {}
            }
            match tcp.state(id) {
                Ok(State::SynSent | State::SynReceived) => {
                    match tcp.register_write_waker(id, cx.waker()) {
                        Ok(()) => Poll::Pending,
                        Err(e) => Poll::Ready(Err(error::tcp(e))),
                    }
                }
                Ok(State::Closed) => Poll::Ready(Err(io::ErrorKind::ConnectionRefused.into())),
                Ok(_) => Poll::Ready(Ok(())),
                Err(e) => Poll::Ready(Err(error::tcp(e))),
            }
        }))
    }

    /// The local address of this connection.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The remote address of this connection.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }

    /// Turns Nagle's algorithm off (`true`) or on (`false`, the default).
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.socket
            .with(|s, _, id| s.tcp_mut().set_nodelay(id, nodelay))?
            .map_err(error::tcp)
    }

    /// Whether Nagle's algorithm is off.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket
            .with(|s, _, id| s.tcp().nodelay(id))?
            .map_err(error::tcp)
    }

    /// Turns TCP keepalive on or off for this connection (timing from
    /// [`set_tcp_keepalive`](Self::set_tcp_keepalive), else the stack's
    /// default).
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.socket
            .with(|s, _, id| s.tcp_mut().set_keepalive(id, on))?
            .map_err(error::tcp)
    }

    /// Whether keepalive is on.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.socket
            .with(|s, _, id| s.tcp().keepalive(id))?
            .map_err(error::tcp)
    }

    /// Turns keepalive on with this timing (socket2's
    /// `SockRef::set_tcp_keepalive`); unset values keep the stack's
    /// default.
    ///
    /// # Errors
    /// `InvalidInput` for a zero time, interval or retry count, or more
    /// than 255 retries; `NotConnected` once the socket is gone.
    pub fn set_tcp_keepalive(&self, keepalive: &TcpKeepalive) -> io::Result<()> {
        let ka = *keepalive;
        self.socket
            .with(|s, _, id| {
                let tcp = s.tcp_mut();
                let base = tcp.keepalive_timing(id)?;
                let timing = ka.resolve(base).ok_or(TcpError::InvalidInput)?;
                tcp.set_keepalive_timing(id, timing)?;
                tcp.set_keepalive(id, true)
            })?
            .map_err(error::tcp)
    }

    /// This connection's keepalive timing, every value set (whether
    /// keepalive is on: [`keepalive`](Self::keepalive)).
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn tcp_keepalive(&self) -> io::Result<TcpKeepalive> {
        self.socket
            .with(|s, _, id| s.tcp().keepalive_timing(id))?
            .map(TcpKeepalive::from_config)
            .map_err(error::tcp)
    }

    /// Takes the connection's pending error, if any.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket
            .with(|s, _, id| s.tcp_mut().take_error(id))?
            .map(|e| e.map(error::tcp))
            .map_err(error::tcp)
    }

    /// Splits the stream into a read half and a write half borrowing it.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        split(self)
    }

    /// Splits the stream into owned halves that can move into different
    /// tasks (of this core). Dropping both closes the connection.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split_owned(self)
    }

    /// Waits until a read would make progress (data, EOF or an error).
    ///
    /// # Errors
    /// As [`poll_read`](AsyncRead::poll_read).
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// Waits until a write would make progress.
    ///
    /// # Errors
    /// As [`poll_write`](AsyncWrite::poll_write).
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_write_ready(cx)).await
    }

    /// Reads what is available now without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when nothing is available; connection errors.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket
            .with(|s, _, id| s.tcp_mut().recv(id, buf))?
            .map_err(error::tcp)
    }

    /// Writes what fits now without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when the send buffer is full; connection errors.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket
            .with(|s, _, id| s.tcp_mut().send(id, buf))?
            .map_err(error::tcp)
    }

    /// Polls for read readiness, registering the task's waker otherwise.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_read_ready(&self.socket, cx)
    }

    /// Polls for write readiness, registering the task's waker otherwise.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_write_ready(&self.socket, cx)
    }
}

fn ready<T>(r: io::Result<Poll<io::Result<T>>>) -> Poll<io::Result<T>> {
    match r {
        Ok(p) => p,
        Err(e) => Poll::Ready(Err(e)),
    }
}

pub(crate) fn poll_read_ready(socket: &Socket, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    ready(socket.with(|s, _, id| {
        let tcp = s.tcp_mut();
        if tcp.is_readable(id) {
            return Poll::Ready(Ok(()));
        }
        match tcp.register_read_waker(id, cx.waker()) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(error::tcp(e))),
        }
    }))
}

pub(crate) fn poll_write_ready(socket: &Socket, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    ready(socket.with(|s, _, id| {
        let tcp = s.tcp_mut();
        if tcp.is_writable(id) {
            return Poll::Ready(Ok(()));
        }
        match tcp.register_write_waker(id, cx.waker()) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(error::tcp(e))),
        }
    }))
}

/// Reads into `buf`: copies from the receive buffer, or registers the
/// read waker and returns `Pending` when it is empty.
pub(crate) fn poll_read(
    socket: &Socket,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    ready(socket.with(|s, _, id| {
        let tcp = s.tcp_mut();
        let dst = buf.initialize_unfilled();
        match tcp.recv(id, dst) {
            Ok(n) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Err(TcpError::WouldBlock) => match tcp.register_read_waker(id, cx.waker()) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(error::tcp(e))),
            },
            Err(e) => Poll::Ready(Err(error::tcp(e))),
        }
    }))
}

/// Appends to the send buffer, or registers the write waker and returns
/// `Pending` when it is full.
pub(crate) fn poll_write(
    socket: &Socket,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    if data.is_empty() {
        return Poll::Ready(Ok(0));
    }
    ready(socket.with(|s, _, id| {
        let tcp = s.tcp_mut();
        match tcp.send(id, data) {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(TcpError::WouldBlock) => match tcp.register_write_waker(id, cx.waker()) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(error::tcp(e))),
            },
            Err(e) => Poll::Ready(Err(error::tcp(e))),
        }
    }))
}

/// Half-closes the sending direction: the FIN is queued behind the data.
pub(crate) fn poll_shutdown(socket: &Socket) -> Poll<io::Result<()>> {
    ready(
        socket.with(|s, _, id| match s.tcp_mut().shutdown_write(id) {
            // Already shut down, or the connection is gone: nothing to send.
            Ok(()) | Err(TcpError::BrokenPipe) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(error::tcp(e))),
        }),
    )
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read(&self.socket, cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write(&self.socket, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written data is already queued; the tick's flush sends it.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_shutdown(&self.socket)
    }
}

impl futures_io::AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        match poll_read(&self.socket, cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures_io::AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write(&self.socket, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_shutdown(&self.socket)
    }
}

//! [`UdpSocket`]: a UDP socket on this core's stack, shaped like tokio's.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::task::{Context, Poll};

use mtcp_stack::stack::Stack;
use mtcp_stack::time::Instant;
use mtcp_stack::udp::{UdpError, UdpId};
use tokio::io::ReadBuf;

use super::driver::{try_with_stack, with_stack};
use super::error;
use super::socket::resolve_v4;
use crate::task::waker::{Msg, Remote};

/// A UDP socket of the current core's user-level stack.
///
/// Each send builds one datagram (in fragments when it is larger than the
/// MTU), sent at the end of the reactor tick; each receive takes one whole
/// datagram, truncated to the buffer as tokio's does. Datagrams to the
/// socket's port reach this core when the NIC's RSS sends their flow here:
/// bind the same port on every core (as `SO_REUSEPORT`) to serve them all.
///
/// A socket belongs to the core that created it; using it from another
/// core's thread fails with an error.
///
/// # Examples
///
/// ```no_run
/// use mtcp::net::UdpSocket;
///
/// #[mtcp::main]
/// async fn main() -> std::io::Result<()> {
///     let socket = UdpSocket::bind("0.0.0.0:8080").await?;
///     let mut buf = [0u8; 1500];
///     loop {
///         let (n, peer) = socket.recv_from(&mut buf).await?;
///         socket.send_to(&buf[..n], peer).await?;
///     }
/// }
/// ```
pub struct UdpSocket {
    id: UdpId,
    /// The owning core's index and inbox: calls run there, a drop anywhere
    /// else posts the close to it (as a TCP socket's).
    core: usize,
    remote: Option<Arc<Remote>>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("id", &self.id)
            .field("core", &self.core)
            .finish()
    }
}

fn ready<T>(r: io::Result<Poll<io::Result<T>>>) -> Poll<io::Result<T>> {
    match r {
        Ok(p) => p,
        Err(e) => Poll::Ready(Err(e)),
    }
}

impl UdpSocket {
    /// Opens a socket bound to `addr` on the current core (port 0: an
    /// ephemeral port; `0.0.0.0`: every local address), trying each
    /// resolved IPv4 address in turn.
    ///
    /// # Errors
    /// `AddrInUse`, `AddrNotAvailable` (not one of the stack's addresses),
    /// `OutOfMemory` (the core's UDP table is full).
    pub async fn bind<A: std::net::ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in resolve_v4(addr)? {
            match with_stack(|s, _| s.udp_bind(a))? {
                Ok(id) => {
                    let (core, remote) =
                        super::current::with_current(|c| (c.index, Some(c.remote.clone())))
                            .unwrap_or((0, None));
                    return Ok(UdpSocket { id, core, remote });
                }
                Err(e) => last = Some(error::udp(e)),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable)))
    }

    fn check_core(&self) -> io::Result<()> {
        if super::current::with_current(|c| c.index == self.core) == Some(true) {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "mtcp: a UDP socket of core {} used from another thread; sockets stay on \
                 the core that created them",
                self.core
            )))
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Stack, Instant, UdpId) -> R) -> io::Result<R> {
        self.check_core()?;
        with_stack(|s, now| f(s, now, self.id))
    }

    /// Sets the remote: `send` goes there and only its datagrams are
    /// received. An ICMP port unreachable from it is returned as
    /// `ConnectionRefused` by the next call.
    ///
    /// # Errors
    /// `AddrNotAvailable` when no address resolves or no port is free.
    pub async fn connect<A: std::net::ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let a = resolve_v4(addr)?[0];
        self.with(|s, _, id| s.udp_connect(id, a))?
            .map_err(error::udp)
    }

    /// The local address (0.0.0.0 when bound to every address).
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.with(|s, _, id| s.udp().local_addr(id))?
            .map(SocketAddr::V4)
            .map_err(error::udp)
    }

    /// The connected remote.
    ///
    /// # Errors
    /// `NotConnected` when not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with(|s, _, id| s.udp().peer_addr(id))?
            .map(SocketAddr::V4)
            .map_err(error::udp)
    }

    /// Allows (`true`) sending to broadcast addresses (`SO_BROADCAST`).
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.with(|s, _, id| s.udp_mut().set_broadcast(id, on))?
            .map_err(error::udp)
    }

    /// Whether broadcast sends are allowed.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.with(|s, _, id| s.udp().broadcast(id))?
            .map_err(error::udp)
    }

    /// Sets the TTL of the datagrams sent (`IP_TTL`).
    ///
    /// # Errors
    /// `InvalidInput` above 255.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.with(|s, _, id| s.udp_mut().set_ttl(id, ttl))?
            .map_err(error::udp)
    }

    /// The TTL of the datagrams sent.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn ttl(&self) -> io::Result<u32> {
        self.with(|s, _, id| s.udp().ttl(id))?
            .map(u32::from)
            .map_err(error::udp)
    }

    /// Takes the pending error (an ICMP error on a connected socket).
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.with(|s, _, id| s.udp_mut().take_error(id))?
            .map(|e| e.map(error::udp))
            .map_err(error::udp)
    }

    // ---- sending ----

    fn poll_send_inner(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        to: Option<SocketAddrV4>,
    ) -> Poll<io::Result<usize>> {
        ready(
            self.with(|s, now, id| match s.udp_send_to(now, id, to, buf) {
                Ok(n) => Poll::Ready(Ok(n)),
                Err(UdpError::WouldBlock) => match s.udp_mut().register_write_waker(id, cx.waker())
                {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(error::udp(e))),
                },
                Err(e) => Poll::Ready(Err(error::udp(e))),
            }),
        )
    }

    fn one_v4(target: SocketAddr) -> io::Result<SocketAddrV4> {
        match target {
            SocketAddr::V4(a) => Ok(a),
            SocketAddr::V6(a) => a
                .ip()
                .to_ipv4_mapped()
                .map(|ip| SocketAddrV4::new(ip, a.port()))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::AddrNotAvailable,
                        "mtcp: IPv6 destination (the stack is IPv4 only)",
                    )
                }),
        }
    }

    /// Sends `buf` as one datagram to the connected remote.
    ///
    /// # Errors
    /// `NotConnected`; `ConnectionRefused` after an ICMP port unreachable;
    /// `InvalidInput` over 65 507 bytes.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_send_inner(cx, buf, None)).await
    }

    /// Sends `buf` as one datagram to `target` (its first IPv4 address).
    ///
    /// # Errors
    /// `PermissionDenied` to a broadcast address without
    /// [`set_broadcast`](Self::set_broadcast); as [`send`](Self::send).
    pub async fn send_to<A: std::net::ToSocketAddrs>(
        &self,
        buf: &[u8],
        target: A,
    ) -> io::Result<usize> {
        let to = resolve_v4(target)?[0];
        poll_fn(|cx| self.poll_send_inner(cx, buf, Some(to))).await
    }

    /// Polls to send `buf` to the connected remote.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send_inner(cx, buf, None)
    }

    /// Polls to send `buf` to `target`.
    ///
    /// # Errors
    /// As [`send_to`](Self::send_to).
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        match Self::one_v4(target) {
            Ok(to) => self.poll_send_inner(cx, buf, Some(to)),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Sends without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when no frame buffer is free; as [`send`](Self::send).
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.with(|s, now, id| s.udp_send_to(now, id, None, buf))?
            .map_err(error::udp)
    }

    /// Sends to `target` without waiting.
    ///
    /// # Errors
    /// As [`try_send`](Self::try_send).
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        let to = Self::one_v4(target)?;
        self.with(|s, now, id| s.udp_send_to(now, id, Some(to), buf))?
            .map_err(error::udp)
    }

    /// Waits until a send would make progress.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_send_ready(cx)).await
    }

    /// Polls for send readiness: a frame buffer is free.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready(self.with(|s, _, id| {
            if s.frames_available() > 0 {
                return Poll::Ready(Ok(()));
            }
            match s.udp_mut().register_write_waker(id, cx.waker()) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(error::udp(e))),
            }
        }))
    }

    // ---- receiving ----

    fn poll_recv_inner(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        peek: bool,
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        ready(self.with(|s, _, id| {
            let udp = s.udp_mut();
            match udp.recv_from(id, buf, peek) {
                Ok((n, _, from)) => Poll::Ready(Ok((n, SocketAddr::V4(from)))),
                Err(UdpError::WouldBlock) => match udp.register_read_waker(id, cx.waker()) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(error::udp(e))),
                },
                Err(e) => Poll::Ready(Err(error::udp(e))),
            }
        }))
    }

    /// Receives one datagram from the connected remote; a longer one than
    /// `buf` is truncated (the rest is lost).
    ///
    /// # Errors
    /// `ConnectionRefused` after an ICMP port unreachable.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_recv_inner(cx, buf, false))
            .await
            .map(|(n, _)| n)
    }

    /// Receives one datagram and its source; truncated as
    /// [`recv`](Self::recv).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.poll_recv_inner(cx, buf, false)).await
    }

    /// Looks at the next datagram without taking it.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.poll_recv_inner(cx, buf, true)).await
    }

    /// Polls to receive one datagram into `buf`.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.poll_recv_from(cx, buf).map_ok(|_| ())
    }

    /// Polls to receive one datagram into `buf`, with its source.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        let dst = buf.initialize_unfilled();
        match self.poll_recv_inner(cx, dst, false) {
            Poll::Ready(Ok((n, from))) => {
                buf.advance(n);
                Poll::Ready(Ok(from))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Polls to look at the next datagram without taking it.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn poll_peek_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        let dst = buf.initialize_unfilled();
        match self.poll_recv_inner(cx, dst, true) {
            Poll::Ready(Ok((n, from))) => {
                buf.advance(n);
                Poll::Ready(Ok(from))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Receives without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when nothing is queued; as [`recv`](Self::recv).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.try_recv_from(buf).map(|(n, _)| n)
    }

    /// Receives without waiting, with the source.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.with(|s, _, id| s.udp_mut().recv_from(id, buf, false))?
            .map(|(n, _, from)| (n, SocketAddr::V4(from)))
            .map_err(error::udp)
    }

    /// Waits until a receive would not block (a datagram or an error).
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_recv_ready(cx)).await
    }

    /// Polls for receive readiness.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready(self.with(|s, _, id| {
            let udp = s.udp_mut();
            if udp.is_readable(id) {
                return Poll::Ready(Ok(()));
            }
            match udp.register_read_waker(id, cx.waker()) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(error::udp(e))),
            }
        }))
    }

    /// The unspecified address a client socket binds to, as a convenience.
    pub const UNSPECIFIED: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        let id = self.id;
        // On the owning core with its stack free: close now. Otherwise
        // (another core, a plain thread, a waker run inside the stack's
        // poll) post the close to the owning core; if that core has
        // stopped, its end of run dropped its UDP table's sockets.
        let closed = super::current::with_current(|c| {
            c.index == self.core && !c.busy() && {
                let _ = c.with_stack(|s, _| s.udp_close(id));
                true
            }
        });
        if closed != Some(true) {
            if let Some(remote) = &self.remote {
                remote.send(Msg::Run(Box::new(move || {
                    let _ = try_with_stack(|s, _| s.udp_close(id));
                })));
            }
        }
    }
}

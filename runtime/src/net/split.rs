//! Read and write halves of a [`TcpStream`], borrowed or owned, as tokio's
//! `tokio::net::tcp` module has them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::socket::Socket;
use super::stream::{poll_read, poll_shutdown, poll_write, TcpStream};

/// The read half of a [`TcpStream`] borrowed by [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a TcpStream);

/// The write half of a [`TcpStream`] borrowed by [`TcpStream::split`].
/// Shutting it down half-closes the connection.
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a TcpStream);

/// The owned read half of a [`TcpStream`], from [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    socket: Arc<Socket>,
}

/// The owned write half of a [`TcpStream`], from [`TcpStream::into_split`].
/// Dropping it shuts the writing direction down (a FIN follows the queued
/// data), as tokio's does.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    socket: Arc<Socket>,
    shutdown_on_drop: bool,
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = poll_shutdown(&self.socket);
        }
    }
}

/// The halves given to [`OwnedReadHalf::reunite`] came from different
/// streams.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl std::fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tried to reunite halves that are not from the same socket")
    }
}

impl std::error::Error for ReuniteError {}

pub(crate) fn split(stream: &mut TcpStream) -> (ReadHalf<'_>, WriteHalf<'_>) {
    (ReadHalf(&*stream), WriteHalf(&*stream))
}

pub(crate) fn split_owned(stream: TcpStream) -> (OwnedReadHalf, OwnedWriteHalf) {
    let socket = Arc::new(stream.socket);
    (
        OwnedReadHalf {
            socket: socket.clone(),
        },
        OwnedWriteHalf {
            socket,
            shutdown_on_drop: true,
        },
    )
}

impl OwnedReadHalf {
    /// Puts the halves back together.
    ///
    /// # Errors
    /// [`ReuniteError`] (with both halves) when they are of different streams.
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        if Arc::ptr_eq(&self.socket, &other.socket) {
            other.forget();
            // The two halves held the only references, and the other is
            // gone.
            let socket = Arc::try_unwrap(self.socket)
                .expect("a stream's owned halves hold the only references to its socket");
            Ok(TcpStream { socket })
        } else {
            Err(ReuniteError(self, other))
        }
    }

    /// The remote address.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

impl OwnedWriteHalf {
    /// Puts the halves back together. See [`OwnedReadHalf::reunite`].
    ///
    /// # Errors
    /// [`ReuniteError`] when they are of different streams.
    pub fn reunite(self, other: OwnedReadHalf) -> Result<TcpStream, ReuniteError> {
        other.reunite(self)
    }

    /// Drops the half without shutting the writing direction down.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }

    /// The remote address.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

impl AsyncRead for ReadHalf<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read(&self.0.socket, cx, buf)
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read(&self.socket, cx, buf)
    }
}

macro_rules! write_half {
    ($t:ty, $sock:ident => $e:expr) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let $sock = &*self;
                poll_write($e, cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $sock = &*self;
                poll_shutdown($e)
            }
        }
    };
}

write_half!(WriteHalf<'_>, h => &h.0.socket);
write_half!(OwnedWriteHalf, h => &h.socket);

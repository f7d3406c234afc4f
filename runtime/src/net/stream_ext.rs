//! More of tokio's `TcpStream` surface: [`peek`](TcpStream::peek),
//! [`linger`](TcpStream::linger), [`ttl`](TcpStream::ttl).

use std::future::poll_fn;
use std::io;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use mtcp_stack::tcp::TcpError;

use super::error;
use super::socket::NO_LINGER;
use super::stream::TcpStream;

impl TcpStream {
    /// Receives data without removing it from the receive buffer: the next
    /// read returns the same bytes. Waits until at least one byte (or end
    /// of stream: `Ok(0)`) is there.
    ///
    /// # Errors
    /// Connection errors, as a read.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use mtcp::io::AsyncReadExt;
    /// use mtcp::net::TcpStream;
    ///
    /// # async fn f() -> std::io::Result<()> {
    /// let mut stream = TcpStream::connect("10.0.0.1:8080").await?;
    /// let mut head = [0u8; 4];
    /// let n = stream.peek(&mut head).await?;
    /// let mut all = [0u8; 4];
    /// stream.read_exact(&mut all[..n]).await?; // the same bytes
    /// assert_eq!(head[..n], all[..n]);
    /// # Ok(()) }
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_peek_inner(cx, buf)).await
    }

    /// Polls for a [`peek`](Self::peek) into `buf`, registering the task's
    /// read waker when nothing is buffered.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_peek(
        &self,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        let dst = buf.initialize_unfilled();
        match self.poll_peek_inner(cx, dst) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_peek_inner(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let r = self.socket.with(|s, _, id| {
            let tcp = s.tcp_mut();
            match tcp.peek(id, buf) {
                Ok(n) => Poll::Ready(Ok(n)),
                Err(TcpError::WouldBlock) => match tcp.register_read_waker(id, cx.waker()) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(error::tcp(e))),
                },
                Err(e) => Poll::Ready(Err(error::tcp(e))),
            }
        });
        match r {
            Ok(p) => p,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Peeks what is buffered now without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when nothing is buffered; connection errors.
    pub fn try_peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket
            .with(|s, _, id| s.tcp().peek(id, buf))?
            .map_err(error::tcp)
    }

    /// The `SO_LINGER` value last set with [`set_linger`](Self::set_linger)
    /// (`None` by default), in whole milliseconds (rounded up).
    ///
    /// # Errors
    /// `NotConnected` once the socket is gone.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.socket.check_core()?;
        Ok(match self.socket.linger_ms.load(Ordering::Relaxed) {
            NO_LINGER => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        })
    }

    /// Sets `SO_LINGER`. Only `Some(Duration::ZERO)` changes behaviour:
    /// dropping the stream then resets the connection (RST) instead of
    /// closing it gracefully, as on Linux. A non-zero linger is stored but
    /// closing never blocks on mtcp (the stack sends what is queued after
    /// the handle is gone, as without linger).
    ///
    /// # Errors
    /// Off the socket's core.
    pub fn set_linger(&self, dur: Option<Duration>) -> io::Result<()> {
        self.socket.check_core()?;
        // Whole milliseconds, rounded up: a non-zero linger never becomes
        // the zero that resets (Linux keeps whole seconds).
        let ms = dur.map_or(NO_LINGER, |d| {
            u32::try_from(d.as_nanos().div_ceil(1_000_000))
                .map_or(NO_LINGER - 1, |ms| ms.min(NO_LINGER - 1))
        });
        self.socket.linger_ms.store(ms, Ordering::Relaxed);
        Ok(())
    }

    /// The IP time-to-live of packets sent on this connection: the core
    /// interface's TTL (64 by default; `MTCP_*` configuration), shared by
    /// every socket of the stack.
    ///
    /// # Errors
    /// Off the socket's core.
    pub fn ttl(&self) -> io::Result<u32> {
        self.socket
            .with(|s, _, _| u32::from(s.iface().config().ttl))
    }

    /// Accepts a TTL for tokio compatibility. The user-level stack has one
    /// TTL per interface, not per socket: a value in `1..=255` is accepted
    /// and ignored ([`ttl`](Self::ttl) still reports the interface's).
    ///
    /// # Errors
    /// `InvalidInput` for 0 or above 255 (as Linux rejects them); off the
    /// socket's core.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.socket.check_core()?;
        if ttl == 0 || ttl > 255 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mtcp: TTL {ttl} is out of range 1..=255"),
            ));
        }
        Ok(())
    }
}

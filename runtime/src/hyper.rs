//! Glue for hyper 1.x (cargo feature `hyper`): an executor, a timer and an
//! IO adapter, so hyper's servers and clients (and hyper-util's, and axum
//! through them) run on mtcp's cores.
//!
//! - [`MtcpExecutor`] implements [`hyper::rt::Executor`] by spawning on the
//!   current core ([`crate::spawn`]); futures need not be `Send`, since an
//!   mtcp task never leaves its core. HTTP/2 (and hyper-util's
//!   `server::conn::auto::Builder`) needs one.
//! - [`MtcpTimer`] implements [`hyper::rt::Timer`] on the runtime's timer
//!   wheel ([`crate::time::sleep_until`]): header-read timeouts, keep-alive
//!   pings and the like. Its sleeps ([`MtcpSleep`]) are `Send + Sync` as
//!   hyper requires, because an [`crate::time::Sleep`] holds only its
//!   deadline and the key of its timer (moved to another core, it
//!   re-registers there). `now()` reads mtcp's clock, so a paused test
//!   clock is followed.
//! - [`MtcpIo`] wraps anything with tokio's `AsyncRead`/`AsyncWrite` (an
//!   [`crate::net::TcpStream`], a split half, a TLS stream…) into hyper's
//!   [`hyper::rt::Read`]/[`hyper::rt::Write`]; hyper-util's `TokioIo` does
//!   the same but needs hyper-util's `tokio` feature, which pulls in tokio's
//!   runtime.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use mtcp::hyper::{MtcpIo, MtcpTimer};
//!
//! # async fn serve(listener: mtcp::net::TcpListener) -> std::io::Result<()> {
//! loop {
//!     let (stream, _) = listener.accept().await?;
//!     mtcp::spawn(async move {
//!         let service = hyper::service::service_fn(|_req| async {
//!             Ok::<_, Infallible>(hyper::Response::new(String::from("Hello, world!")))
//!         });
//!         let _ = hyper::server::conn::http1::Builder::new()
//!             .timer(MtcpTimer)
//!             .header_read_timeout(Duration::from_secs(5))
//!             .serve_connection(MtcpIo::new(stream), service)
//!             .await;
//!     });
//! }
//! # }
//! ```

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Executor, Read, ReadBufCursor, Sleep, Timer, Write};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::time::Instant;

/// A [`hyper::rt::Executor`] that spawns every future on the current core
/// with [`crate::spawn`] (no `Send` bound). Must be used on a runtime
/// thread, as hyper does when it drives a connection inside a task.
#[derive(Clone, Copy, Debug, Default)]
pub struct MtcpExecutor;

impl<F> Executor<F> for MtcpExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        // The task runs detached, as hyper expects.
        drop(crate::spawn(fut));
    }
}

/// A [`hyper::rt::Timer`] on mtcp's timer wheel.
#[derive(Clone, Copy, Debug, Default)]
pub struct MtcpTimer;

impl Timer for MtcpTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(MtcpSleep {
            inner: crate::time::sleep(duration),
        })
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(MtcpSleep {
            inner: crate::time::sleep_until(Instant::from_std(deadline)),
        })
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: std::time::Instant) {
        match sleep.as_mut().downcast_mut_pin::<MtcpSleep>() {
            Some(s) => s.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

pin_project! {
    /// The sleep [`MtcpTimer`] hands to hyper: an [`crate::time::Sleep`].
    #[derive(Debug)]
    pub struct MtcpSleep {
        #[pin]
        inner: crate::time::Sleep,
    }
}

impl MtcpSleep {
    /// Moves the deadline (hyper's `Timer::reset`), keeping the timer.
    pub fn reset(self: Pin<&mut Self>, deadline: std::time::Instant) {
        self.project().inner.reset(Instant::from_std(deadline));
    }
}

impl Future for MtcpSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().inner.poll(cx)
    }
}

impl Sleep for MtcpSleep {}

pin_project! {
    /// Adapts tokio's `AsyncRead`/`AsyncWrite` (what mtcp's streams
    /// implement) to hyper's [`hyper::rt::Read`]/[`hyper::rt::Write`].
    #[derive(Debug)]
    pub struct MtcpIo<T> {
        #[pin]
        inner: T,
    }
}

impl<T> MtcpIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> MtcpIo<T> {
        MtcpIo { inner }
    }

    /// The wrapped stream.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead> Read for MtcpIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: tokio's ReadBuf only writes initialised bytes into the
        // spare capacity and reports how many it filled; exactly those are
        // then marked filled in hyper's cursor.
        let filled = unsafe {
            let mut tbuf = tokio::io::ReadBuf::uninit(buf.as_mut());
            match self.project().inner.poll_read(cx, &mut tbuf) {
                Poll::Ready(Ok(())) => tbuf.filled().len(),
                other => return other,
            }
        };
        // SAFETY: `filled` bytes were initialised by the read above.
        unsafe { buf.advance(filled) };
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite> Write for MtcpIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn sleep_is_send_and_sync_as_hyper_requires() {
        send_sync::<MtcpSleep>();
        send_sync::<MtcpTimer>();
        send_sync::<MtcpExecutor>();
    }
}

//! The TCP stack as a core's I/O driver, and how futures reach it.

use std::any::Any;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mtcp_stack::stack::Stack;
use mtcp_stack::tcp::TcpError;
use mtcp_stack::time::Instant as StackInstant;

use super::config::CoreSlot;
use super::park::FdParker;
use super::stats_line::StatsPrinter;
use crate::driver::{with_io_driver, IoDriver, Unparker};

/// One core's [`Stack`] driven by the reactor: `poll` is the RX half of the
/// tick, `flush` the TX half; idle parking waits on the device.
///
/// On a device with a descriptor (TAP, AF_PACKET, AF_XDP) the core parks in
/// one `ppoll` over that descriptor and its [`FdParker`]'s eventfd, until the
/// deadline the reactor passes (the earliest stack or runtime timer); a
/// cross-thread wake writes the eventfd only when the core is parked.
/// Without one (the in-memory NIC, DPDK) it parks as the device does
/// (`wait_rx`), woken by a thread unpark.
pub(crate) struct StackDriver {
    stack: Option<Box<Stack>>,
    thread: std::thread::Thread,
    parks: u64,
    home: Arc<Mutex<Vec<CoreSlot>>>,
    index: usize,
    /// Set when the device has a descriptor to wait on.
    fd_parker: Option<FdParker>,
    /// `MTCP_STATS`: a line of this core's counters every interval.
    stats: Option<StatsPrinter>,
}

impl StackDriver {
    /// A driver for the calling (core) thread; on shutdown the stack goes
    /// back to `home[index]` for the core's next start.
    ///
    /// # Errors
    /// When the eventfd an fd device parks on cannot be created.
    pub(crate) fn new(
        stack: Stack,
        home: Arc<Mutex<Vec<CoreSlot>>>,
        index: usize,
        stats_every: Option<Duration>,
    ) -> io::Result<StackDriver> {
        let fd_parker = match stack.nic().raw_fd() {
            Some(_) => Some(FdParker::new()?),
            None => None,
        };
        Ok(StackDriver {
            stack: Some(Box::new(stack)),
            thread: std::thread::current(),
            parks: 0,
            home,
            index,
            fd_parker,
            stats: stats_every.map(|every| StatsPrinter::new(index, every)),
        })
    }

    fn stack(&mut self) -> &mut Stack {
        self.stack
            .as_mut()
            .expect("the stack is present until shutdown")
    }
}

impl fmt::Debug for StackDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackDriver")
            .field("stack", &self.stack)
            .field("parks", &self.parks)
            .finish()
    }
}

impl IoDriver for StackDriver {
    fn poll(&mut self, now: StackInstant) -> bool {
        let work = self.stack().poll(now);
        if let (Some(printer), Some(stack)) = (self.stats.as_mut(), self.stack.as_deref()) {
            printer.maybe_print(now, stack);
        }
        work
    }

    fn flush(&mut self, now: StackInstant) -> bool {
        self.stack().flush(now)
    }

    fn next_deadline(&self) -> Option<StackInstant> {
        let stack = self.stack.as_ref().and_then(|s| s.next_deadline());
        let stats = self.stats.as_ref().map(StatsPrinter::next_due);
        match (stack, stats) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn has_input(&self) -> bool {
        let Some(stack) = self.stack.as_ref() else {
            return false;
        };
        // An fd-based device's `rx_pending` is a system call: tick instead.
        stack.has_pending_work() || stack.nic().raw_fd().is_some() || stack.rx_pending()
    }

    fn park(&mut self, timeout: Option<Duration>) {
        let Some(stack) = self.stack.as_ref() else {
            return;
        };
        if stack.has_pending_work() || stack.rx_pending() {
            return;
        }
        self.parks += 1;
        match (&self.fd_parker, stack.nic().raw_fd()) {
            (Some(parker), Some(fd)) => {
                parker.park(fd, timeout);
            }
            _ => {
                // The in-memory NIC parks the thread: an unpark wakes it.
                stack.wait_rx(timeout.unwrap_or(Duration::from_secs(3600)));
            }
        }
    }

    fn close_all(&mut self) -> usize {
        self.stack.as_mut().map_or(0, |s| s.close_all())
    }

    fn closed_all(&self) -> bool {
        self.stack.as_ref().is_none_or(|s| s.closed_all())
    }

    fn abort_closing(&mut self) -> usize {
        self.stack.as_mut().map_or(0, |s| s.abort_closing())
    }

    fn shutdown(&mut self) {
        if let Some(stack) = self.stack.take() {
            if let Ok(mut home) = self.home.lock() {
                if let Some(slot) = home.get_mut(self.index) {
                    *slot = CoreSlot::Stack(stack);
                }
            }
        }
    }

    fn unparker(&self) -> Unparker {
        if let Some(parker) = &self.fd_parker {
            return parker.unparker();
        }
        let thread = self.thread.clone();
        Arc::new(move || thread.unpark())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Runs `f` on the current core's stack with the tick's time.
///
/// # Errors
/// `Other` when called off a runtime thread or on a runtime without a
/// network device.
pub(crate) fn with_stack<R>(f: impl FnOnce(&mut Stack, StackInstant) -> R) -> io::Result<R> {
    let now = crate::driver::tick_now();
    with_io_driver(|d: &mut StackDriver| {
        d.stack
            .as_deref_mut()
            .map(|s| f(s, now.unwrap_or(StackInstant::ZERO)))
    })
    .flatten()
    .ok_or_else(no_stack)
}

/// Like [`with_stack`], for code that must not fail (drop paths): `None`
/// when there is no stack.
pub(crate) fn try_with_stack<R>(f: impl FnOnce(&mut Stack, StackInstant) -> R) -> Option<R> {
    with_stack(f).ok()
}

fn no_stack() -> io::Error {
    if crate::context::in_runtime() {
        io::Error::other(
            "mtcp: this runtime has no network device (build it with Builder::from_env() \
             or a network setting, or use #[mtcp::main])",
        )
    } else {
        io::Error::other("mtcp: socket used outside an mtcp runtime thread")
    }
}

/// Maps the stack's socket errors to `io::Error` with the usual kinds.
pub(crate) fn to_io(e: TcpError) -> io::Error {
    let kind = match e {
        TcpError::WouldBlock => io::ErrorKind::WouldBlock,
        TcpError::ConnectionRefused => io::ErrorKind::ConnectionRefused,
        TcpError::ConnectionReset => io::ErrorKind::ConnectionReset,
        TcpError::TimedOut => io::ErrorKind::TimedOut,
        TcpError::AddrInUse => io::ErrorKind::AddrInUse,
        TcpError::AddrNotAvailable => io::ErrorKind::AddrNotAvailable,
        TcpError::BrokenPipe => io::ErrorKind::BrokenPipe,
        TcpError::NotConnected | TcpError::InvalidSocket => io::ErrorKind::NotConnected,
        TcpError::InvalidInput => io::ErrorKind::InvalidInput,
        TcpError::NoResources => io::ErrorKind::OutOfMemory,
        TcpError::HostUnreachable => io::ErrorKind::HostUnreachable,
        TcpError::NetworkUnreachable => io::ErrorKind::NetworkUnreachable,
    };
    match e {
        // No std kind says more than the stack's own words.
        TcpError::NoResources | TcpError::InvalidInput | TcpError::InvalidSocket => {
            io::Error::new(kind, e)
        }
        // A plain kind prints as std's (`connection refused`), not as a
        // `Custom { .. }` wrapper.
        _ => io::Error::from(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_usual_kinds() {
        use io::ErrorKind as K;
        let cases = [
            (TcpError::ConnectionRefused, K::ConnectionRefused),
            (TcpError::ConnectionReset, K::ConnectionReset),
            (TcpError::TimedOut, K::TimedOut),
            (TcpError::AddrInUse, K::AddrInUse),
            (TcpError::AddrNotAvailable, K::AddrNotAvailable),
            (TcpError::BrokenPipe, K::BrokenPipe),
            (TcpError::NotConnected, K::NotConnected),
            (TcpError::InvalidInput, K::InvalidInput),
            (TcpError::HostUnreachable, K::HostUnreachable),
            (TcpError::NetworkUnreachable, K::NetworkUnreachable),
        ];
        for (e, k) in cases {
            assert_eq!(to_io(e).kind(), k, "{e}");
        }
    }

    #[test]
    fn connect_errors_print_like_std() {
        use io::ErrorKind as K;
        for (e, k) in [
            (TcpError::ConnectionRefused, K::ConnectionRefused),
            (TcpError::ConnectionReset, K::ConnectionReset),
            (TcpError::TimedOut, K::TimedOut),
            (TcpError::BrokenPipe, K::BrokenPipe),
        ] {
            let got = to_io(e);
            let std = io::Error::from(k);
            assert_eq!(got.to_string(), std.to_string());
            assert_eq!(format!("{got:?}"), format!("{std:?}"));
            assert!(!format!("{got:?}").contains("Custom"), "{got:?}");
        }
        assert_eq!(
            to_io(TcpError::ConnectionRefused).to_string(),
            "connection refused"
        );
    }

    #[test]
    fn no_stack_off_runtime() {
        let e = with_stack(|_, _| ()).unwrap_err();
        assert!(e.to_string().contains("outside an mtcp runtime"), "{e}");
    }
}

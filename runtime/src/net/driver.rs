//! The TCP stack as a core's I/O driver, and how futures reach it.

use std::any::Any;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mtcp_stack::stack::Stack;
use mtcp_stack::time::Instant as StackInstant;

use super::config::CoreSlot;
use super::park::FdParker;
use super::stats_line::StatsPrinter;
use crate::io_driver::{IoDriver, Unparker};
use crate::task::waker::Msg;

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

    /// The stack, until the core's shutdown hands it back.
    pub(crate) fn stack_mut(&mut self) -> Option<&mut Stack> {
        self.stack.as_deref_mut()
    }

    /// Carries reassembled datagrams of other cores' flows to those cores
    /// (`mtcp_stack::handoff`): each runs there, at its next tick, as if it
    /// had arrived there. A stopped core's are dropped.
    fn hand_off(&mut self) {
        for h in self.stack().take_handoffs() {
            let core = h.queue();
            // Straight to that core's inbox (as `runtime::run_on`), so the
            // stack's driver does not depend on the runtime above it.
            let remote = super::current::with_current(|c| c.peers.borrow().get(core).cloned());
            if let Some(remote) = remote.flatten() {
                remote.send(Msg::Run(Box::new(move || {
                    let _ = with_stack(|stack, now| stack.input_handoff(now, h));
                })));
            }
        }
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
        if self.stack().has_handoffs() {
            self.hand_off();
        }
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

/// Runs `f` on the current core's stack with the tick's time: one
/// thread-local read, one borrow.
///
/// # Errors
/// `Other` when called off a runtime thread, on a runtime without a
/// network device, or while the driver is busy (see [`NetCore::with_stack`]).
///
/// [`NetCore::with_stack`]: super::current::NetCore::with_stack
pub(crate) fn with_stack<R>(f: impl FnOnce(&mut Stack, StackInstant) -> R) -> io::Result<R> {
    super::current::with_current(|core| core.with_stack(f)).unwrap_or_else(|| Err(off_runtime()))
}

/// Like [`with_stack`], for code that must not fail (drop paths): `None`
/// when there is no stack.
pub(crate) fn try_with_stack<R>(f: impl FnOnce(&mut Stack, StackInstant) -> R) -> Option<R> {
    with_stack(f).ok()
}

fn off_runtime() -> io::Error {
    io::Error::other("mtcp: socket used outside an mtcp runtime thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_stack_off_runtime() {
        let e = with_stack(|_, _| ()).unwrap_err();
        assert!(e.to_string().contains("outside an mtcp runtime"), "{e}");
    }
}

//! Unix signals: [`signal`] gives a [`Signal`] stream for one
//! [`SignalKind`], as `tokio::signal::unix`.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use super::registry::{register, NEXT_LISTENER, SIGNALS};

/// A kind of signal to listen for (tokio's `SignalKind`): a signal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalKind(libc::c_int);

impl SignalKind {
    /// Any signal by number, e.g. `SignalKind::from_raw(libc::SIGWINCH)`.
    pub const fn from_raw(signum: libc::c_int) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal number.
    pub const fn as_raw_value(&self) -> libc::c_int {
        self.0
    }

    /// SIGALRM: a real-time timer expired.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }

    /// SIGCHLD: a child process changed state.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }

    /// SIGHUP: the terminal was disconnected (often: reload configuration).
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }

    /// SIGINT: interrupt from the terminal (ctrl-c).
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }

    /// SIGIO: I/O is possible on a descriptor.
    pub const fn io() -> SignalKind {
        SignalKind(libc::SIGIO)
    }

    /// SIGPIPE: write to a pipe with no reader.
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }

    /// SIGQUIT: quit from the terminal (ctrl-\).
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }

    /// SIGTERM: a request to terminate.
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }

    /// SIGUSR1: user-defined signal 1.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }

    /// SIGUSR2: user-defined signal 2.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }

    /// SIGWINCH: the terminal window changed size.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

impl From<libc::c_int> for SignalKind {
    fn from(signum: libc::c_int) -> SignalKind {
        SignalKind(signum)
    }
}

impl From<SignalKind> for libc::c_int {
    fn from(kind: SignalKind) -> libc::c_int {
        kind.0
    }
}

/// A stream of deliveries of one signal, made by [`signal`].
///
/// [`recv`](Self::recv) completes once for each delivery after the
/// listener was created, with deliveries that arrive before it is polled
/// coalesced into one (as in tokio: signals are not queued). Any number of
/// listeners, on any cores, may wait for the same signal; each sees every
/// delivery.
pub struct Signal {
    slot: usize,
    /// The slot's generation this listener has seen.
    seen: u64,
    /// This listener's id among the slot's waiters.
    id: u64,
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("signum", &self.slot)
            .finish()
    }
}

/// Listens for `kind`, installing the process-wide handler for it on first
/// use (it stays installed for the life of the process).
///
/// # Errors
///
/// `InvalidInput` for a signal number out of range; `Other` for SIGILL,
/// SIGFPE, SIGKILL, SIGSEGV and SIGSTOP, whose handling may not be
/// replaced; the OS error if `sigaction` or the signal thread fails.
///
/// # Examples
///
/// ```
/// use mtcp::signal::unix::{signal, SignalKind};
///
/// # mtcp::runtime::block_on(async {
/// let mut hup = signal(SignalKind::hangup()).unwrap();
/// // SAFETY: raise(3) only delivers SIGHUP to this process, whose handler
/// // was just installed.
/// unsafe { libc::raise(libc::SIGHUP) };
/// assert_eq!(hup.recv().await, Some(()));
/// # });
/// ```
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let slot = register(kind.0)?;
    let seen = SIGNALS[slot].generation.load(Ordering::SeqCst);
    Ok(Signal {
        slot,
        seen,
        id: NEXT_LISTENER.fetch_add(1, Ordering::Relaxed),
    })
}

impl Signal {
    /// Waits for the next delivery of the signal. Returns `Some(())` for
    /// each; never `None` in mtcp (the signal thread lives as long as the
    /// process), the `Option` is tokio's shape. Cancel safe.
    pub async fn recv(&mut self) -> Option<()> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next delivery, registering the task's waker otherwise.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let slot = &SIGNALS[self.slot];
        let g = slot.generation.load(Ordering::SeqCst);
        if g != self.seen {
            self.seen = g;
            return Poll::Ready(Some(()));
        }
        let mut waiters = slot.waiters.lock().unwrap_or_else(|e| e.into_inner());
        // The signal thread bumps the generation before it takes the
        // waiters: checked again under the lock, no delivery is missed.
        let g = slot.generation.load(Ordering::SeqCst);
        if g != self.seen {
            self.seen = g;
            return Poll::Ready(Some(()));
        }
        match waiters.iter_mut().find(|(id, _)| *id == self.id) {
            Some((_, w)) => {
                if !w.will_wake(cx.waker()) {
                    *w = cx.waker().clone();
                }
            }
            None => waiters.push((self.id, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        // Take our waker back, so dropped listeners do not pile up.
        let mut waiters = SIGNALS[self.slot]
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(i) = waiters.iter().position(|(id, _)| *id == self.id) {
            waiters.swap_remove(i);
        }
    }
}

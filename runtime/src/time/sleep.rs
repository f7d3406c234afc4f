//! [`Sleep`]: a future that completes at a deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::current::{self, TimeCore};
use super::wheel::TimerKey;
use super::Instant;
use crate::task::waker::{CoreKey, Msg, REGISTRY};

/// Waits until `duration` has elapsed.
///
/// Equivalent to `sleep_until(Instant::now() + duration)`; the sleep is
/// measured from this call, not from the first poll. Resolution is one
/// millisecond and the future never completes early. A duration too large to
/// represent sleeps (practically) forever.
///
/// # Panics
///
/// Polling the returned future off a runtime thread panics.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// # mtcp::runtime::block_on(async {
/// mtcp::time::sleep(Duration::from_millis(2)).await;
/// # });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let deadline = Instant::now()
        .checked_add(duration)
        .unwrap_or_else(Instant::far_future);
    sleep_until(deadline)
}

/// Waits until `deadline` is reached.
///
/// # Panics
///
/// Polling the returned future off a runtime thread panics.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        state: State::Unregistered,
    }
}

#[derive(Clone, Copy, Debug)]
enum State {
    Unregistered,
    Registered(CoreKey, TimerKey),
    Elapsed,
}

/// Future returned by [`sleep`] and [`sleep_until`].
///
/// Registers a timer on the current core's wheel on its first poll and
/// cancels it when dropped. It may be moved to another core: polling it there
/// re-registers it on that core (and cancels the old timer via a message).
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct Sleep {
    deadline: Instant,
    state: State,
}

impl Sleep {
    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has been reached.
    pub fn is_elapsed(&self) -> bool {
        match self.state {
            State::Elapsed => true,
            _ => Instant::now() >= self.deadline,
        }
    }

    /// Moves the deadline. The sleep becomes pending again if the new
    /// deadline is later; a task that polled it before is woken at the new
    /// deadline even if it does not poll again meanwhile.
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.get_mut();
        this.deadline = deadline;
        match this.state {
            State::Registered(core_key, key) => {
                let moved = current::with_current(|core| {
                    if core.key != core_key {
                        return false;
                    }
                    let when = core.clock.deadline_ms(deadline.into_std());
                    let waker = core.timers.borrow_mut().reset(key, when);
                    if let Some(w) = waker {
                        w.wake();
                    }
                    true
                });
                if moved != Some(true) {
                    cancel(core_key, key);
                    this.state = State::Unregistered;
                }
            }
            State::Elapsed => this.state = State::Unregistered,
            State::Unregistered => {}
        }
    }

    fn poll_core(&mut self, core: &TimeCore, cx: &mut Context<'_>) -> Poll<()> {
        match self.state {
            State::Elapsed => Poll::Ready(()),
            State::Registered(core_key, key) if core_key == core.key => {
                let mut wheel = core.timers.borrow_mut();
                if wheel.is_fired(key) {
                    wheel.remove(key);
                    self.state = State::Elapsed;
                    Poll::Ready(())
                } else {
                    wheel.set_waker(key, cx.waker());
                    Poll::Pending
                }
            }
            state => {
                if let State::Registered(core_key, key) = state {
                    cancel(core_key, key);
                }
                let when = core.clock.deadline_ms(self.deadline.into_std());
                let mut wheel = core.timers.borrow_mut();
                if when <= wheel.elapsed() {
                    self.state = State::Elapsed;
                    return Poll::Ready(());
                }
                let key = wheel.insert(when, cx.waker().clone());
                self.state = State::Registered(core.key, key);
                Poll::Pending
            }
        }
    }
}

/// Cancels a timer of another (or no longer current) core.
fn cancel(core_key: CoreKey, key: TimerKey) {
    let local = current::with_current(|core| {
        if core.key == core_key {
            core.timers.borrow_mut().remove(key);
            true
        } else {
            false
        }
    });
    if local != Some(true) {
        if let Some(remote) = REGISTRY.lookup(core_key) {
            remote.send(Msg::CancelTimer(key.to_bits()));
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        current::expect_current("mtcp::time::sleep", |core| this.poll_core(core, cx))
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let State::Registered(core_key, key) = self.state {
            cancel(core_key, key);
        }
    }
}

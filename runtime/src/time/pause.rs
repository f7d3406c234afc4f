//! The test clock: [`pause`], [`resume`] and [`advance`], as tokio's
//! `test-util` ones.

use std::time::Duration;

use super::current;

/// Pauses time on the current core.
///
/// The current value of [`Instant::now()`](super::Instant::now) is saved
/// and every later call returns it, until [`advance`] moves it or the core
/// auto-advances it. This only affects [`mtcp::time::Instant`](super::Instant)
/// (and everything built on it: [`sleep`](super::sleep),
/// [`timeout`](super::timeout), [`interval`](super::interval)) and the
/// time the core's TCP/IP stack sees, so retransmission, delayed-ACK,
/// TIME-WAIT and keepalive timers follow the paused clock;
/// [`std::time::Instant`] keeps running.
///
/// tokio requires its current-thread runtime for this; in mtcp every core
/// has its own clock, so `pause` affects the calling core only (with
/// `#[mtcp::test(cores = N)]`, each core's body pauses its own). Start a
/// test paused with `#[mtcp::test(start_paused = true)]` or
/// [`Builder::start_paused`](crate::runtime::Builder::start_paused). A pause
/// lasts until the run ends: every `block_on` starts its cores with fresh
/// clocks.
///
/// # Auto-advance
///
/// While paused, when the core has nothing to do (no task ready, no
/// cross-thread wake queued, no packet waiting in the in-memory NIC or the
/// stack's loopback, no blocking work from
/// [`spawn_blocking`](crate::task::spawn_blocking) running), its clock jumps
/// to the next deadline, the runtime's timers' or the stack's. A `sleep` of
/// an hour then completes at once. With a kernel-backed device (`tap`,
/// `af_packet`, `xdp`, `dpdk`) the core cannot know that no frame is on the
/// way, so it never auto-advances there: time moves only by `advance`.
///
/// # Panics
///
/// If time is already paused on this core, or off a runtime thread.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mtcp::time::{self, Instant};
///
/// # mtcp::runtime::block_on(async {
/// time::pause();
/// let start = Instant::now();
/// time::sleep(Duration::from_secs(3600)).await; // returns at once
/// assert_eq!(start.elapsed(), Duration::from_secs(3600));
/// # });
/// ```
#[track_caller]
pub fn pause() {
    current::expect_current("mtcp::time::pause", |core| {
        if let Err(e) = core.clock.pause() {
            panic!("mtcp::time::pause: {}", e.message());
        }
    })
}

/// Resumes time on the current core: the clock runs on from its paused
/// (and advanced) value, so it never goes back.
///
/// # Panics
///
/// If time is not paused on this core, or off a runtime thread.
#[track_caller]
pub fn resume() {
    current::expect_current("mtcp::time::resume", |core| {
        if let Err(e) = core.clock.resume() {
            panic!("mtcp::time::resume: {}", e.message());
        }
    })
}

/// Advances the paused clock of the current core by `duration`.
///
/// Every timer whose deadline is reached fires (its task is woken) before
/// this returns, and the calling task then yields once, so those tasks run
/// before it continues; the stack sees the new time at its next poll, in
/// the same pass of the core's loop. As with tokio, `advance` does not wait
/// for the woken tasks to finish what they do next: to let a timeout
/// happen, prefer `sleep` and auto-advance.
///
/// # Panics
///
/// When polled: if time is not paused on this core, if `duration` overflows
/// the clock, or off a runtime thread.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mtcp::time::{self, Instant};
///
/// # mtcp::runtime::block_on(async {
/// time::pause();
/// let start = Instant::now();
/// time::advance(Duration::from_secs(5)).await;
/// assert_eq!(Instant::now() - start, Duration::from_secs(5));
/// # });
/// ```
pub async fn advance(duration: Duration) {
    current::expect_current("mtcp::time::advance", |core| {
        if let Err(e) = core.clock.advance(duration) {
            panic!("mtcp::time::advance: {}", e.message());
        }
        core.clock_advanced();
    });
    crate::task::yield_now().await;
}

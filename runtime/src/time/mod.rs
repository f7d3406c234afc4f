//! Utilities for tracking time, shaped like `tokio::time`.
//!
//! Timers run on the current core's millisecond timer wheel: a
//! [`Sleep`] registers on its first poll, fires no earlier than its deadline
//! (deadlines round up to the next millisecond), and is cancelled when
//! dropped. All of these must be polled on a thread running an mtcp runtime.
//!
//! Tests can stop time: [`pause`], [`advance`], [`resume`] and
//! `#[mtcp::test(start_paused = true)]`, with tokio's semantics, per core.
//! While paused, an idle core jumps its clock to the next timer
//! (auto-advance), and the core's TCP/IP stack sees the same clock.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use mtcp::time::{self, Instant};
//!
//! # mtcp::runtime::block_on(async {
//! let start = Instant::now();
//! time::sleep(Duration::from_millis(5)).await;
//! assert!(start.elapsed() >= Duration::from_millis(5));
//!
//! let slow = time::sleep(Duration::from_secs(60));
//! assert!(time::timeout(Duration::from_millis(1), slow).await.is_err());
//! # });
//! ```

mod clock;
pub(crate) mod current;
pub mod error;
mod instant;
mod interval;
mod pause;
mod sleep;
mod timeout;
pub(crate) mod wheel;

pub(crate) use clock::Clock;
pub use instant::Instant;
pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use pause::{advance, pause, resume};
pub use sleep::{sleep, sleep_until, Sleep};
pub use std::time::Duration;
pub use timeout::{timeout, timeout_at, Timeout};

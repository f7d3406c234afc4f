//! mtcp: an async runtime whose reactor is a user-level TCP/IP stack.
//!
//! One thread per core; each core owns a NIC queue, a [`mtcp_stack`] stack,
//! a timer wheel and an executor, so a socket call is a plain function call.
//! The API follows tokio's: a tokio program ports by renaming `tokio` to
//! `mtcp`.
//!
//! ```
//! use std::time::Duration;
//!
//! #[mtcp::main]
//! async fn main() {
//!     let handle = mtcp::spawn(async {
//!         mtcp::time::sleep(Duration::from_millis(1)).await;
//!         "hello"
//!     });
//!     assert_eq!(handle.await.unwrap(), "hello");
//! }
//! ```
//!
//! # Differences from tokio
//!
//! - Tasks never move between cores, so [`spawn`] does not require `Send`,
//!   and [`JoinHandle`](task::JoinHandle) is not `Send`: await it on the
//!   core that spawned the task.
//! - Timers have millisecond resolution and never fire early, like tokio's.
//! - [`time::pause`] pauses the current core's clock (each core has one);
//!   the core's TCP/IP stack runs on the same paused time.
//! - [`task::spawn_blocking`] starts a thread per call (no pool).
//! - A [`Runtime`](runtime::Runtime) starts its cores for each `block_on`
//!   and stops them (dropping left-over tasks) when it returns.
//! - `#[mtcp::main(cores = N)]` runs the main body once on each of `N`
//!   cores (thread per core, shared nothing). tokio's `flavor` and
//!   `worker_threads` options are accepted but run the body once.
//! - [`io`] and [`sync`] are tokio's own runtime-independent types,
//!   re-exported.
//! - [`task::LocalSet`] groups tasks that are local anyway;
//!   [`Runtime::spawn`](runtime::Runtime::spawn) before `block_on` queues
//!   the task until the run starts; `Handle::spawn` from outside sends it to
//!   core 0.
//! - [`fs`], [`process`] and [`io::stdin`] do their blocking work on helper
//!   threads, except `fs::File` and pipe writes, which are direct calls.
//! - Signals ([`signal`]) are caught by a handler that writes to a pipe; a
//!   helper thread wakes the waiting tasks.
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]

pub use mtcp_stack as stack;

mod context;
mod core_local;
mod io_driver;
/// The plug-in point between a core's reactor and an I/O source: the
/// [`IoDriver`](driver::IoDriver) trait and what a driver is told, and the
/// calls that reach the current core's driver and time base. The pieces
/// live in the layers that own them (the trait at the bottom, the lookups
/// in `net` and `time`); this module only gathers them.
#[doc(hidden)]
pub mod driver {
    pub use crate::io_driver::{
        CoreId, DriverContext, DriverFactory, IoDriver, NoNetwork, Unparker,
    };
    pub use crate::net::current::with_io_driver;
    pub use crate::time::current::{from_stack_instant, tick_now, to_stack_instant};
}
pub mod fs;
#[cfg(feature = "hyper")]
pub mod hyper;
mod io_std;
pub mod net;
pub mod process;
mod reactor;
pub mod runtime;
#[cfg(unix)]
pub mod signal;
pub mod task;
pub mod time;

pub use task::spawn;

/// Marks an async function to run as the program's entry point on an mtcp
/// runtime.
///
/// `#[mtcp::main]` runs the body on one core, on the main thread.
/// `#[mtcp::main(cores = N)]` starts `N` cores (one pinned thread each) and
/// runs the body once on *each* core; the program ends when every core's
/// body has returned, with core 0's return value.
///
/// For source compatibility with tokio, `flavor = "current_thread"`,
/// `flavor = "multi_thread"`, `worker_threads = N` and `crate = "path"` are
/// accepted; the first three do not replicate the body (only `cores` does).
/// `start_paused = true` starts the body with time paused
/// ([`time::pause`]), on each core.
///
/// ```
/// #[mtcp::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     mtcp::task::yield_now().await;
///     Ok(())
/// }
/// ```
pub use mtcp_macros::main;

/// Marks an async test function to run on an mtcp runtime; `cores = N`
/// runs the body on each of `N` cores. `start_paused = true` pauses the
/// core's clock before the body runs, so timers complete as soon as
/// everything on the core waits (see [`time::pause`]).
///
/// ```no_run
/// #[mtcp::test]
/// async fn adds() {
///     assert_eq!(mtcp::spawn(async { 1 + 1 }).await.unwrap(), 2);
/// }
///
/// #[mtcp::test(cores = 2)]
/// async fn runs_on_each_core() {
///     assert!(mtcp::runtime::current_core() < 2);
/// }
///
/// #[mtcp::test(start_paused = true)]
/// async fn an_hour_passes_at_once() {
///     let start = mtcp::time::Instant::now();
///     mtcp::time::sleep(std::time::Duration::from_secs(3600)).await;
///     assert_eq!(start.elapsed().as_secs(), 3600);
/// }
/// ```
pub use mtcp_macros::test;

/// Asynchronous I/O traits, extension traits and utilities: tokio's
/// runtime-independent `io` module, re-exported, plus the standard streams
/// ([`stdin`](io::stdin), [`stdout`](io::stdout), [`stderr`](io::stderr)).
pub mod io {
    pub use crate::io_std::{stderr, stdin, stdout, Stderr, Stdin, Stdout};
    pub use tokio::io::*;
}

/// Synchronization primitives (channels, mutexes, notify, semaphores):
/// tokio's runtime-independent `sync` module, re-exported. They work on any
/// executor, mtcp's included, and across cores.
pub mod sync {
    pub use tokio::sync::*;
}

/// futures-io's `AsyncRead`/`AsyncWrite` traits, for libraries written
/// against the `futures` ecosystem.
pub mod futures_io {
    pub use futures_io::{AsyncBufRead, AsyncRead, AsyncSeek, AsyncWrite};
}

pub use tokio::{join, pin, select, try_join};

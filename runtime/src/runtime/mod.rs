//! The runtime: [`Builder`], [`Runtime`], and what a task can ask about its
//! core ([`current_core`], [`core_count`], [`run_on`], shutdown).
//!
//! Thread per core, shared nothing: each core runs its own executor, timer
//! wheel and I/O driver on its own thread. Cores talk only through messages
//! ([`run_on`]) that the receiving core handles once per tick.
//!
//! Split as tokio's: [`Runtime`] and the entry points in `runtime.rs`,
//! [`Handle`] and the per-core queries in `handle.rs`, [`Builder`] in
//! `builder.rs` (its network setters in `builder_net.rs`). Dependencies run
//! one way: the builder builds a runtime, the runtime starts cores (the
//! reactor), cores run tasks.

mod builder;
mod builder_net;
mod handle;
#[allow(clippy::module_inception)]
mod runtime;

pub use crate::reactor::IdlePolicy;
pub use builder::{Builder, DEFAULT_SHUTDOWN_LINGER, DEFAULT_TASK_BUDGET};
pub use handle::{
    core_count, current_core, is_shutdown_requested, request_shutdown, run_on, shutdown_requested,
    Handle, RunOnError, ShutdownRequested, TryCurrentError,
};
#[doc(hidden)]
pub use runtime::{__ignore, __main_entry, __report, __test_entry};
pub use runtime::{block_on, Runtime};

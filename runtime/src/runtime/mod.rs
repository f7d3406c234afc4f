//! The runtime: [`Builder`], [`Runtime`], and what a task can ask about its
//! core ([`current_core`], [`core_count`], [`run_on`], shutdown).
//!
//! Thread per core, shared nothing: each core runs its own executor, timer
//! wheel and I/O driver on its own thread. Cores talk only through messages
//! ([`run_on`]) that the receiving core handles once per tick.
//!
//! Split as tokio's, dependencies one way (`entry → builder → runtime →
//! handle → run`, no cycle):
//!
//! | file | owns |
//! |---|---|
//! | `entry.rs` | [`Runtime::new`], [`block_on`], the `#[mtcp::main]` and `#[mtcp::test]` entries |
//! | `builder.rs`, `builder_net.rs` | [`Builder`] (its network setters in the second) |
//! | `runtime.rs` | [`Runtime`]: spawn, handle, `block_on`, shutdown |
//! | `handle.rs` | [`Handle`] and the per-core queries ([`current_core`], [`run_on`], shutdown) |
//! | `run.rs` | one run: start the cores (the reactor), rendezvous, run the mains, stop, join |

mod builder;
mod builder_net;
mod entry;
mod handle;
mod run;
#[allow(clippy::module_inception)]
mod runtime;

pub use crate::reactor::IdlePolicy;
pub use builder::{Builder, DEFAULT_SHUTDOWN_LINGER, DEFAULT_TASK_BUDGET};
pub use entry::block_on;
#[doc(hidden)]
pub use entry::{__ignore, __main_entry, __report, __test_entry};
pub use handle::{
    core_count, current_core, is_shutdown_requested, request_shutdown, run_on, shutdown_requested,
    Handle, RunOnError, ShutdownRequested, TryCurrentError,
};
pub use runtime::Runtime;

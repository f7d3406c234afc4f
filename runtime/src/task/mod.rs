//! Tasks: [`spawn`], [`JoinHandle`], [`JoinSet`], [`LocalSet`],
//! [`yield_now`], [`spawn_blocking`].
//!
//! Tasks are core-local: a task runs on the core that spawned it, from start
//! to finish, so its future need not be `Send`. Each core keeps its tasks in
//! a slab and runs them from a FIFO queue, at most a budget of polls per
//! tick, so I/O is polled between batches. Wakers carry the task's slab
//! position instead of a pointer, so cloning, dropping and local waking cost
//! no atomic operation and no allocation; a wake from another thread goes
//! through the core's cross-thread queue.

mod blocking;
pub(crate) mod current;
pub(crate) mod executor;
mod join;
mod join_set;
mod local_set;
mod remote;
mod task_local;
pub(crate) mod waker;
mod yield_now;

use std::future::Future;

pub use blocking::spawn_blocking;
pub use join::{AbortHandle, JoinError, JoinHandle};
pub use join_set::JoinSet;
pub use local_set::{LocalEnterGuard, LocalSet};
pub use task_local::{AccessError, LocalKey, TaskLocalFuture};
pub use yield_now::yield_now;

pub(crate) use remote::{deferred, Start};

/// Spawns a task on the current core and returns a handle to await its
/// output.
///
/// The task starts at the core's next turn through its run queue (not
/// inside this call) and stays on this core. The future need not be `Send`.
/// A panic in the task is caught: awaiting the handle gives a [`JoinError`]
/// with [`is_panic`](JoinError::is_panic), and the runtime keeps going.
/// Dropping the handle detaches the task.
///
/// # Panics
///
/// If called off a thread running an mtcp runtime (inside
/// [`Runtime::block_on`](crate::runtime::Runtime::block_on),
/// `#[mtcp::main]` or `#[mtcp::test]`).
///
/// # Examples
///
/// ```
/// # mtcp::runtime::block_on(async {
/// let handles: Vec<_> = (0..10).map(|i| mtcp::spawn(async move { i * 2 })).collect();
/// let mut sum = 0;
/// for h in handles {
///     sum += h.await.unwrap();
/// }
/// assert_eq!(sum, 90);
/// # });
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    current::expect_current("mtcp::spawn", |core| core.exec.spawn(future))
}

/// Same as [`spawn`]: every mtcp task is local to its core. Kept so tokio
/// code using `spawn_local` ports unchanged. Inside a [`LocalSet`] (one of
/// its tasks, or its `run_until` future) the task joins that set.
///
/// # Panics
///
/// Off a runtime thread, like [`spawn`].
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    match local_set::spawn_on_current(future) {
        Ok(handle) => handle,
        Err(future) => {
            current::expect_current("mtcp::task::spawn_local", |core| core.exec.spawn(future))
        }
    }
}

/// Runs `f` on the current thread and returns its result (tokio's
/// `block_in_place`).
///
/// # Differences from tokio
///
/// tokio moves the worker's other tasks to another thread meanwhile; an
/// mtcp core has no other thread, so its other tasks and sockets wait until
/// `f` returns. Prefer [`spawn_blocking`] for anything slow.
///
/// # Examples
///
/// ```
/// # mtcp::runtime::block_on(async {
/// let v = mtcp::task::block_in_place(|| 6 * 7);
/// assert_eq!(v, 42);
/// # });
/// ```
pub fn block_in_place<F: FnOnce() -> R, R>(f: F) -> R {
    f()
}

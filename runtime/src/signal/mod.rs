//! Asynchronous signal handling, shaped like `tokio::signal`: [`ctrl_c`]
//! and, on Unix, [`unix::signal`].
//!
//! A signal's handler, installed on first use, only sets an atomic flag and
//! writes one byte to a pipe (both async-signal-safe). A helper thread
//! blocked on that pipe then wakes the tasks waiting for the signal, on
//! whatever core they run.
//!
//! The handler is chained, not swapped in: it is registered through
//! `signal-hook-registry` (as tokio's is), which keeps a handler installed
//! earlier for the same signal, by another library or by `sigaction(2)`,
//! and runs it first on every delivery.
//!
//! As in tokio, once a handler is installed for a signal it stays for the
//! life of the process: the signal's default action (e.g. terminating on
//! SIGINT) no longer happens, even after every listener is dropped.

mod registry;
pub mod unix;

use std::io;

/// Completes when the process receives SIGINT (ctrl-c in a terminal).
///
/// The handler is installed at the first poll; a SIGINT delivered before
/// that is not seen by this future (and, if no handler was installed
/// earlier, ends the process as usual).
///
/// # Errors
///
/// If the handler cannot be installed, or the signal thread cannot start.
///
/// # Examples
///
/// ```no_run
/// #[mtcp::main]
/// async fn main() {
///     println!("waiting for ctrl-c");
///     mtcp::signal::ctrl_c().await.expect("failed to listen for ctrl-c");
///     println!("received ctrl-c, shutting down");
/// }
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    let mut sig = unix::signal(unix::SignalKind::interrupt())?;
    sig.recv().await;
    Ok(())
}

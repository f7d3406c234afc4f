//! [`spawn_blocking`]: run blocking code off the core's thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::join::{Abortable, JoinError, JoinHandle, Joinable};

/// Runs `f` on a new OS thread and returns a handle to await its result.
///
/// For blocking work (file I/O, heavy computation, blocking libraries) that
/// would otherwise stall the core's reactor. Each call starts a thread (there
/// is no pool): use it for occasional work, not per packet. A panic in `f`
/// gives a [`JoinError`] with [`is_panic`](JoinError::is_panic).
/// [`JoinHandle::abort`] cannot stop a closure that already runs.
///
/// May be called from any thread; the handle can be awaited on any
/// executor.
///
/// # Panics
///
/// If the OS cannot start a thread.
///
/// # Examples
///
/// ```
/// # mtcp::runtime::block_on(async {
/// let sum = mtcp::task::spawn_blocking(|| (1..=10u32).sum::<u32>()).await.unwrap();
/// assert_eq!(sum, 55);
/// # });
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let shared = Arc::new(Mutex::new(Shared {
        result: None,
        waker: None,
        taken: false,
    }));
    let s = shared.clone();
    // A paused clock does not auto-advance while the closure runs (tokio's
    // rule): its result may be what the core is waiting for.
    let inhibit = super::current::with_current(|core| core.blocking_started());
    std::thread::Builder::new()
        .name("mtcp-blocking".to_owned())
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::panic);
            let waker = {
                let mut g = s.lock().unwrap_or_else(|e| e.into_inner());
                g.result = Some(result);
                g.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
            // After the wake is queued: the core sees it before it may
            // auto-advance again.
            drop(inhibit);
        })
        .expect("mtcp::task::spawn_blocking: failed to spawn a thread");
    JoinHandle::from_joinable(std::rc::Rc::new(Blocking { shared }))
}

struct Shared<R> {
    result: Option<Result<R, JoinError>>,
    waker: Option<Waker>,
    taken: bool,
}

struct Blocking<R> {
    shared: Arc<Mutex<Shared<R>>>,
}

impl<R: Send + 'static> Joinable<R> for Blocking<R> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<R, JoinError>> {
        let mut g = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = g.result.take() {
            g.taken = true;
            return Poll::Ready(r);
        }
        assert!(!g.taken, "JoinHandle polled after completion");
        match &g.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => g.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    fn as_abortable(self: std::rc::Rc<Self>) -> std::rc::Rc<dyn Abortable> {
        self
    }
}

impl<R: Send + 'static> Abortable for Blocking<R> {
    fn abort(&self) {}

    fn is_finished(&self) -> bool {
        let g = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        g.result.is_some() || g.taken
    }
}

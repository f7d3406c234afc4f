//! Spawning from outside a core's thread: the task runs on a core and its
//! output comes back through a channel, so the [`JoinHandle`] can be
//! awaited on any thread or executor. The runtime's handle sends the
//! [`Start`] closure to a core (`runtime::handle::spawn_remote`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::join::{Abortable, JoinError, JoinHandle, Joinable};

/// A spawn to make later, on some core's thread.
pub(crate) type Start = Box<dyn FnOnce() + Send>;

/// `future` as a closure that spawns it on the calling core, and the
/// handle that gets its output (cancelled if the closure is dropped).
pub(crate) fn deferred<F>(future: F) -> (Start, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (result_tx, result_rx) = oneshot::channel::<Result<F::Output, JoinError>>();
    let (abort_tx, abort_rx) = oneshot::channel::<()>();
    let start: Start = Box::new(move || {
        let mut task = crate::spawn(future);
        crate::spawn(async move {
            let result = tokio::select! {
                r = &mut task => r,
                Ok(()) = abort_rx => {
                    task.abort();
                    task.await
                }
            };
            let _ = result_tx.send(result);
        });
    });
    let join = JoinHandle::from_joinable(Rc::new(RemoteJoin {
        rx: RefCell::new(result_rx),
        abort: RefCell::new(Some(abort_tx)),
        finished: Cell::new(false),
    }));
    (start, join)
}

struct RemoteJoin<T> {
    rx: RefCell<oneshot::Receiver<Result<T, JoinError>>>,
    abort: RefCell<Option<oneshot::Sender<()>>>,
    finished: Cell<bool>,
}

impl<T: Send + 'static> Joinable<T> for RemoteJoin<T> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let mut rx = self.rx.borrow_mut();
        match Pin::new(&mut *rx).poll(cx) {
            Poll::Ready(r) => {
                self.finished.set(true);
                // A dropped sender: the runtime stopped before the task
                // finished.
                Poll::Ready(r.unwrap_or_else(|_| Err(JoinError::cancelled())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn as_abortable(self: Rc<Self>) -> Rc<dyn Abortable> {
        self
    }
}

impl<T: Send + 'static> Abortable for RemoteJoin<T> {
    fn abort(&self) {
        if let Some(tx) = self.abort.borrow_mut().take() {
            let _ = tx.send(());
        }
    }

    fn is_finished(&self) -> bool {
        self.finished.get() || !self.rx.borrow().is_empty()
    }
}

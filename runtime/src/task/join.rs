//! [`JoinHandle`] and [`JoinError`], shaped like tokio's.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use super::waker::wake_token;

/// Why a task did not produce its output.
///
/// Returned by awaiting a [`JoinHandle`] whose task panicked or was
/// [aborted](JoinHandle::abort).
///
/// # Examples
///
/// ```
/// # mtcp::runtime::block_on(async {
/// let err = mtcp::spawn(async { panic!("boom") }).await.unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
/// # });
/// ```
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    /// The payload in a `Mutex` only to make `JoinError: Sync`; it is only
    /// ever taken by value.
    Panic(Mutex<Box<dyn Any + Send + 'static>>),
}

impl JoinError {
    pub(crate) fn cancelled() -> JoinError {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            repr: Repr::Panic(Mutex::new(payload)),
        }
    }

    /// Whether the task was cancelled ([`JoinHandle::abort`] or runtime
    /// shutdown).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload, to resume the panic with
    /// [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the task was cancelled rather than panicked (use
    /// [`try_into_panic`](Self::try_into_panic) to check).
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("`JoinError` reason is not a panic.")
    }

    /// The panic payload, or `self` back if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p.into_inner().unwrap_or_else(|e| e.into_inner())),
            Repr::Cancelled => Err(self),
        }
    }

    fn panic_message(&self) -> Option<String> {
        let Repr::Panic(p) = &self.repr else {
            return None;
        };
        let p = p.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = p.downcast_ref::<&'static str>() {
            Some((*s).to_string())
        } else {
            p.downcast_ref::<String>().cloned()
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("task was cancelled"),
            (Repr::Panic(_), Some(msg)) => write!(f, "task panicked with message {msg:?}"),
            (Repr::Panic(_), None) => f.write_str("task panicked"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("JoinError::Cancelled"),
            (Repr::Panic(_), Some(msg)) => write!(f, "JoinError::Panic({msg:?}, ...)"),
            (Repr::Panic(_), None) => f.write_str("JoinError::Panic(...)"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}

/// What the executor holds of a task: something to poll.
pub(crate) trait Task {
    /// Polls the task (or cancels it if an abort is pending). Returns true
    /// when it has finished and its slot may be freed.
    fn run(&self, cx: &mut Context<'_>) -> bool;
    /// Drops the future in place (runtime shutdown).
    fn shutdown(&self);
}

/// What an [`AbortHandle`] holds of a task: its output type erased.
pub(crate) trait Abortable {
    fn abort(&self);
    fn is_finished(&self) -> bool;
}

/// What a [`JoinHandle`] holds of a task.
pub(crate) trait Joinable<T>: Abortable {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    /// The same task, as an [`Abortable`] (no allocation).
    fn as_abortable(self: Rc<Self>) -> Rc<dyn Abortable>;
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

/// A spawned task: its future, then its output, and the join waker. One
/// allocation per spawn, shared (non-atomically) by the executor's slot and
/// the [`JoinHandle`].
pub(crate) struct TaskCell<F: Future> {
    stage: RefCell<Stage<F>>,
    join_waker: Cell<Option<Waker>>,
    abort_requested: Cell<bool>,
    finished: Cell<bool>,
    /// The task's own waker token (set once the executor gave it a slot).
    token: Cell<usize>,
}

impl<F: Future + 'static> TaskCell<F> {
    pub(crate) fn new(future: F) -> Rc<TaskCell<F>> {
        Rc::new(TaskCell {
            stage: RefCell::new(Stage::Running(future)),
            join_waker: Cell::new(None),
            abort_requested: Cell::new(false),
            finished: Cell::new(false),
            token: Cell::new(0),
        })
    }

    pub(crate) fn set_token(&self, token: usize) {
        self.token.set(token);
    }

    pub(crate) fn join_handle(self: &Rc<Self>) -> JoinHandle<F::Output> {
        JoinHandle {
            task: Some(self.clone()),
        }
    }

    /// Records the outcome and tells the joiner.
    fn finish(&self, stage: &mut Stage<F>, result: Result<F::Output, JoinError>) {
        // Drop the future in place first (it is pinned); a panicking
        // destructor turns the result into a panic.
        let result = match catch_unwind(AssertUnwindSafe(|| *stage = Stage::Consumed)) {
            Ok(()) => result,
            Err(payload) => Err(JoinError::panic(payload)),
        };
        *stage = Stage::Finished(result);
        self.finished.set(true);
    }

    fn wake_joiner(&self) {
        if let Some(w) = self.join_waker.take() {
            w.wake();
        }
    }
}

impl<F: Future + 'static> Task for TaskCell<F> {
    fn run(&self, cx: &mut Context<'_>) -> bool {
        let mut stage = self.stage.borrow_mut();
        if self.abort_requested.get() {
            if let Stage::Running(_) = &*stage {
                self.finish(&mut stage, Err(JoinError::cancelled()));
                drop(stage);
                self.wake_joiner();
            }
            return true;
        }
        let Stage::Running(fut) = &mut *stage else {
            return true;
        };
        // SAFETY: the future lives inside the task's `Rc` allocation, which
        // never moves while the task exists, and it is never moved out of
        // `stage`: it is only dropped in place (the assignment in `finish`).
        let fut = unsafe { Pin::new_unchecked(fut) };
        let result = match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => return false,
            Ok(Poll::Ready(v)) => Ok(v),
            Err(payload) => Err(JoinError::panic(payload)),
        };
        self.finish(&mut stage, result);
        drop(stage);
        self.wake_joiner();
        true
    }

    fn shutdown(&self) {
        // A task polling itself cannot be shut down from inside its poll.
        let Ok(mut stage) = self.stage.try_borrow_mut() else {
            return;
        };
        if let Stage::Running(_) = &*stage {
            self.finish(&mut stage, Err(JoinError::cancelled()));
            drop(stage);
            self.wake_joiner();
        }
    }
}

impl<F: Future + 'static> Joinable<F::Output> for TaskCell<F> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        if !self.finished.get() {
            let waker = match self.join_waker.take() {
                Some(w) if w.will_wake(cx.waker()) => w,
                _ => cx.waker().clone(),
            };
            self.join_waker.set(Some(waker));
            return Poll::Pending;
        }
        let mut stage = self.stage.borrow_mut();
        match std::mem::replace(&mut *stage, Stage::Consumed) {
            Stage::Finished(result) => Poll::Ready(result),
            _ => panic!("JoinHandle polled after completion"),
        }
    }

    fn as_abortable(self: Rc<Self>) -> Rc<dyn Abortable> {
        self
    }
}

impl<F: Future + 'static> Abortable for TaskCell<F> {
    fn abort(&self) {
        if self.finished.get() || self.abort_requested.get() {
            return;
        }
        self.abort_requested.set(true);
        wake_token(self.token.get());
    }

    fn is_finished(&self) -> bool {
        self.finished.get()
    }
}

/// An owned permission to await a spawned task's output.
///
/// Awaiting it gives `Ok(output)`, or a [`JoinError`] if the task panicked
/// or was aborted. Dropping it *detaches* the task: it keeps running and its
/// output is dropped when it finishes.
///
/// Tasks are core-local, so a `JoinHandle` is neither `Send` nor `Sync`: await
/// it on the core that spawned the task.
///
/// # Examples
///
/// ```
/// # mtcp::runtime::block_on(async {
/// let handle = mtcp::spawn(async { 6 * 7 });
/// assert_eq!(handle.await.unwrap(), 42);
/// # });
/// ```
pub struct JoinHandle<T> {
    task: Option<Rc<dyn Joinable<T>>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn from_joinable(task: Rc<dyn Joinable<T>>) -> JoinHandle<T> {
        JoinHandle { task: Some(task) }
    }

    /// Cancels the task. If it has not finished yet, its future is dropped
    /// at its next turn on the run queue (not during this call) and awaiting
    /// the handle gives a [`JoinError`] with
    /// [`is_cancelled`](JoinError::is_cancelled). Aborting a finished task
    /// does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # mtcp::runtime::block_on(async {
    /// let h = mtcp::spawn(std::future::pending::<()>());
    /// h.abort();
    /// assert!(h.await.unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn abort(&self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }

    /// Whether the task has finished (with output, panic or cancellation).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// A handle that can abort the task without awaiting it.
    ///
    /// # Examples
    ///
    /// ```
    /// # mtcp::runtime::block_on(async {
    /// let h = mtcp::spawn(std::future::pending::<()>());
    /// let abort = h.abort_handle();
    /// abort.abort();
    /// assert!(h.await.unwrap_err().is_cancelled());
    /// assert!(abort.is_finished());
    /// # });
    /// ```
    pub fn abort_handle(&self) -> AbortHandle {
        AbortHandle {
            task: self.task.clone().map(|t| t.as_abortable()),
        }
    }
}

/// An owned permission to abort a task, without awaiting its output
/// (tokio's `AbortHandle`). Dropping it does nothing. Like
/// [`JoinHandle`], it is not `Send`: tasks are core-local.
#[derive(Clone)]
pub struct AbortHandle {
    task: Option<Rc<dyn Abortable>>,
}

impl AbortHandle {
    /// Cancels the task, as [`JoinHandle::abort`].
    pub fn abort(&self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }

    /// Whether the task has finished (with output, panic or cancellation).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let task = self
            .task
            .as_ref()
            .expect("JoinHandle polled after completion");
        let out = task.poll_join(cx);
        if out.is_ready() {
            self.task = None;
        }
        out
    }
}

impl<T> Unpin for JoinHandle<T> {}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

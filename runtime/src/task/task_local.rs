//! Task-local storage: [`task_local!`](crate::task_local) and
//! [`LocalKey`], as tokio's.
//!
//! A value is set for the duration of a future ([`LocalKey::scope`]): on
//! every poll it is swapped into a thread-local slot and swapped out after,
//! so it follows the task, not the thread. mtcp tasks never change thread,
//! but the swap is what keeps two tasks on one core apart.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

/// Declares task-local keys, as `tokio::task_local!`.
///
/// # Examples
///
/// ```
/// mtcp::task_local! {
///     static REQUEST_ID: u32;
/// }
///
/// # mtcp::runtime::block_on(async {
/// let id = REQUEST_ID
///     .scope(7, async {
///         mtcp::task::yield_now().await;
///         REQUEST_ID.get()
///     })
///     .await;
/// assert_eq!(id, 7);
/// assert!(REQUEST_ID.try_with(|_| ()).is_err());
/// # });
/// ```
#[macro_export]
macro_rules! task_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty; $($rest:tt)*) => {
        $crate::__task_local_inner!($(#[$attr])* $vis $name, $t);
        $crate::task_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty) => {
        $crate::__task_local_inner!($(#[$attr])* $vis $name, $t);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __task_local_inner {
    ($(#[$attr:meta])* $vis:vis $name:ident, $t:ty) => {
        $(#[$attr])*
        $vis static $name: $crate::task::LocalKey<$t> = {
            ::std::thread_local! {
                static __KEY: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            $crate::task::LocalKey { inner: __KEY }
        };
    };
}

/// A task-local key, declared with [`task_local!`](crate::task_local).
pub struct LocalKey<T: 'static> {
    #[doc(hidden)]
    pub inner: std::thread::LocalKey<RefCell<Option<T>>>,
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("LocalKey { .. }")
    }
}

/// The error of [`LocalKey::try_with`]: no value is set here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessError {
    _private: (),
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task-local value not set")
    }
}

impl std::error::Error for AccessError {}

/// Swaps a value in on creation and back out on drop (also on unwind).
struct Swap<'a, T: 'static> {
    key: &'static LocalKey<T>,
    slot: &'a mut Option<T>,
}

impl<'a, T: 'static> Swap<'a, T> {
    fn enter(key: &'static LocalKey<T>, slot: &'a mut Option<T>) -> Swap<'a, T> {
        key.inner
            .with(|c| std::mem::swap(&mut *c.borrow_mut(), &mut *slot));
        Swap { key, slot }
    }
}

impl<T: 'static> Drop for Swap<'_, T> {
    fn drop(&mut self) {
        let _ = self
            .key
            .inner
            .try_with(|c| std::mem::swap(&mut *c.borrow_mut(), &mut *self.slot));
    }
}

impl<T: 'static> LocalKey<T> {
    /// Runs `future` with the key set to `value` (during each of its
    /// polls).
    pub fn scope<F: Future>(&'static self, value: T, future: F) -> TaskLocalFuture<T, F> {
        TaskLocalFuture {
            key: self,
            slot: Some(value),
            future,
        }
    }

    /// Runs `f` with the key set to `value`.
    pub fn sync_scope<F: FnOnce() -> R, R>(&'static self, value: T, f: F) -> R {
        let mut slot = Some(value);
        let _swap = Swap::enter(self, &mut slot);
        f()
    }

    /// Calls `f` with the current value.
    ///
    /// # Panics
    ///
    /// If no value is set (outside a `scope`).
    #[track_caller]
    pub fn with<F: FnOnce(&T) -> R, R>(&'static self, f: F) -> R {
        match self.try_with(f) {
            Ok(r) => r,
            Err(_) => panic!("cannot access a task-local storage value without setting it first"),
        }
    }

    /// Calls `f` with the current value, or fails if none is set.
    ///
    /// # Errors
    /// [`AccessError`] outside a `scope`.
    pub fn try_with<F: FnOnce(&T) -> R, R>(&'static self, f: F) -> Result<R, AccessError> {
        let mut f = Some(f);
        self.inner
            .try_with(|c| {
                let v = c.borrow();
                v.as_ref().map(|v| (f.take().expect("called once"))(v))
            })
            .ok()
            .flatten()
            .ok_or(AccessError { _private: () })
    }

    /// A clone of the current value.
    ///
    /// # Panics
    ///
    /// If no value is set.
    #[track_caller]
    pub fn get(&'static self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }
}

pin_project! {
    /// A future run with a task-local value set ([`LocalKey::scope`]).
    pub struct TaskLocalFuture<T: 'static, F> {
        key: &'static LocalKey<T>,
        slot: Option<T>,
        #[pin]
        future: F,
    }
}

impl<T: 'static, F> fmt::Debug for TaskLocalFuture<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskLocalFuture").finish_non_exhaustive()
    }
}

impl<T: 'static, F: Future> Future for TaskLocalFuture<T, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _swap = Swap::enter(this.key, this.slot);
        this.future.poll(cx)
    }
}

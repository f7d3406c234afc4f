//! One layer's part of the current core, in a thread-local slot: installed
//! while the core's loop runs on this thread, read by that layer's calls.
//!
//! Each layer (`task`, `time`, `net`, and the runtime's own `context`)
//! declares its slot and reads it through these helpers, so no layer reaches
//! another's and a call reads one thread-local.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::thread::LocalKey;

/// A thread-local slot for a core's part `T`.
pub(crate) type Slot<T> = RefCell<Option<Rc<T>>>;

/// Runs `f` with the part installed in `slot`, or returns `None` when none
/// is (off a runtime thread, or while the thread shuts down).
#[inline]
pub(crate) fn with<T: 'static, R>(
    slot: &'static LocalKey<Slot<T>>,
    f: impl FnOnce(&T) -> R,
) -> Option<R> {
    slot.try_with(|c| {
        let c = c.try_borrow().ok()?;
        c.as_deref().map(f)
    })
    .ok()
    .flatten()
}

/// Like [`with`], panicking with a message naming `what` off a runtime
/// thread.
#[track_caller]
#[inline]
pub(crate) fn expect<T: 'static, R>(
    slot: &'static LocalKey<Slot<T>>,
    what: &str,
    f: impl FnOnce(&T) -> R,
) -> R {
    match with(slot, f) {
        Some(r) => r,
        None => panic!(
            "{what} must be called from a thread running an mtcp runtime \
             (inside Runtime::block_on, #[mtcp::main] or #[mtcp::test])"
        ),
    }
}

/// Installs `part` in `slot` until the returned guard drops.
///
/// # Panics
/// If the slot holds a part already: this thread runs a core.
pub(crate) fn install<T: 'static>(slot: &'static LocalKey<Slot<T>>, part: Rc<T>) -> Installed<T> {
    slot.with(|c| {
        let mut c = c.borrow_mut();
        assert!(
            c.is_none(),
            "Cannot start an mtcp runtime from within a runtime: this thread already runs one"
        );
        *c = Some(part);
    });
    Installed { slot }
}

/// Empties its slot on drop (the part itself is dropped after the slot's
/// borrow ends, so its destructors may read the slot).
pub(crate) struct Installed<T: 'static> {
    slot: &'static LocalKey<Slot<T>>,
}

impl<T: 'static> fmt::Debug for Installed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Installed")
    }
}

impl<T: 'static> Drop for Installed<T> {
    fn drop(&mut self) {
        let part = self.slot.with(|c| c.borrow_mut().take());
        drop(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static SLOT: Slot<u32> = const { RefCell::new(None) };
    }

    #[test]
    fn installed_while_the_guard_lives() {
        assert_eq!(with(&SLOT, |v| *v), None);
        let guard = install(&SLOT, Rc::new(7));
        assert_eq!(with(&SLOT, |v| *v), Some(7));
        assert_eq!(expect(&SLOT, "probe", |v| *v + 1), 8);
        drop(guard);
        assert_eq!(with(&SLOT, |v| *v), None);
    }

    #[test]
    #[should_panic(expected = "already runs one")]
    fn a_second_install_panics() {
        let _a = install(&SLOT, Rc::new(1));
        let _b = install(&SLOT, Rc::new(2));
    }
}

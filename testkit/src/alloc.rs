//! A counting global allocator: install it in a test binary with
//! `#[global_allocator] static GLOBAL: Counting = Counting;`, then
//! [`count`] a closure (or [`arm`]/[`disarm`] around a region) and read how
//! many allocations and reallocations ran meanwhile, on any thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Delegates to the system allocator; counts `alloc` and `realloc` calls
/// while armed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a
// counter is bumped.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Starts counting (from zero).
pub fn arm() {
    ALLOCS.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
}

/// Stops counting; returns the allocations since [`arm`].
pub fn disarm() -> u64 {
    ARMED.store(false, Ordering::SeqCst);
    ALLOCS.load(Ordering::SeqCst)
}

/// Allocations so far since [`arm`] (counting goes on).
pub fn so_far() -> u64 {
    ALLOCS.load(Ordering::SeqCst)
}

/// Runs `f` armed; returns its result and the allocations it made.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
    arm();
    let r = f();
    (r, disarm())
}

//! A steady-state loop of sleep(0), yield_now and a channel ping-pong
//! between two tasks allocates nothing per iteration.
//!
//! Its own test binary: the counting allocator is global.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: delegates to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

async fn ping_pong_round(
    to_peer: &mtcp::sync::mpsc::Sender<u64>,
    from_peer: &mut mtcp::sync::mpsc::Receiver<u64>,
    i: u64,
) {
    mtcp::time::sleep(Duration::ZERO).await;
    mtcp::task::yield_now().await;
    to_peer.send(i).await.unwrap();
    assert_eq!(from_peer.recv().await, Some(i + 1));
}

#[test]
fn steady_state_makes_no_allocations() {
    let rt = mtcp::runtime::Builder::new()
        .idle_policy(mtcp::runtime::IdlePolicy::Adaptive { spin: 4 })
        .build()
        .unwrap();
    rt.block_on(async {
        let (to_peer, mut on_peer) = mtcp::sync::mpsc::channel::<u64>(1);
        let (to_main, mut on_main) = mtcp::sync::mpsc::channel::<u64>(1);
        let peer = mtcp::spawn(async move {
            while let Some(v) = on_peer.recv().await {
                mtcp::task::yield_now().await;
                mtcp::time::sleep(Duration::ZERO).await;
                if to_main.send(v + 1).await.is_err() {
                    break;
                }
            }
        });
        // Warm up: queues, slabs, the wheel and the channels reach their
        // steady-state capacity.
        for i in 0..200 {
            ping_pong_round(&to_peer, &mut on_main, i).await;
        }
        COUNTING.store(true, Ordering::SeqCst);
        let iterations = 300;
        for i in 0..iterations {
            ping_pong_round(&to_peer, &mut on_main, i).await;
        }
        COUNTING.store(false, Ordering::SeqCst);
        drop(to_peer);
        peer.await.unwrap();
        let allocs = ALLOCS.load(Ordering::SeqCst);
        assert_eq!(
            allocs, 0,
            "{allocs} allocations in {iterations} steady-state iterations"
        );
    });
}

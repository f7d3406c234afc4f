//! Steady-state echo on an established connection makes zero heap
//! allocations per request: reading, writing, the stack's input and
//! output, flow events, wake-ups and the executor all run on memory
//! allocated at start-up or on the connection's first use.
//!
//! This test binary has its own counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};
use mtcp::runtime::Builder;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call to the system allocator unchanged; only
// counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
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
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

async fn round_trips(c: &mut TcpStream, n: usize) {
    let msg = [0x42u8; 64];
    let mut back = [0u8; 64];
    for _ in 0..n {
        c.write_all(&msg).await.unwrap();
        c.read_exact(&mut back).await.unwrap();
    }
}

#[test]
fn steady_state_echo_allocates_nothing_per_request() {
    let mut tcp = Builder::new().net_config().tcp;
    tcp.max_sockets = 64;
    tcp.chunk_count = 1024;
    let rt = Builder::new().tcp_config(tcp).build().unwrap();
    let allocs = rt.block_on(async {
        let listener = TcpListener::bind("0.0.0.0:5555").await.unwrap();
        mtcp::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = [0u8; 256];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
        });
        let mut c = TcpStream::connect("10.0.0.1:5555").await.unwrap();
        c.set_nodelay(true).unwrap();
        // Warm up: buffers, timers and queues reach their steady size.
        round_trips(&mut c, 2_000).await;
        // The counter sees allocations (so a zero below means something).
        COUNTING.store(true, Ordering::SeqCst);
        drop(std::hint::black_box(Vec::<u8>::with_capacity(16)));
        assert_eq!(ALLOCS.swap(0, Ordering::SeqCst), 1);
        round_trips(&mut c, 10_000).await;
        COUNTING.store(false, Ordering::SeqCst);
        ALLOCS.load(Ordering::SeqCst)
    });
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations in 10,000 echo requests"
    );
}

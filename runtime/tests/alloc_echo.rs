//! Steady-state echo on an established connection makes zero heap
//! allocations per request: reading, writing, the stack's input and
//! output, flow events, wake-ups and the executor all run on memory
//! allocated at start-up or on the connection's first use.
//!
//! This test binary has its own counting global allocator.

use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};
use mtcp::runtime::Builder;
use mtcp_testkit::alloc::{self, Counting};

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
    let mut tcp = Builder::new().net_config().stack.tcp;
    tcp.max_connections = 64;
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
        alloc::arm();
        drop(std::hint::black_box(Vec::<u8>::with_capacity(16)));
        assert_eq!(alloc::disarm(), 1);
        alloc::arm();
        round_trips(&mut c, 10_000).await;
        alloc::disarm()
    });
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations in 10,000 echo requests"
    );
}

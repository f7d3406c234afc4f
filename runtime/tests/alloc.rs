//! A steady-state loop of sleep(0), yield_now and a channel ping-pong
//! between two tasks allocates nothing per iteration.
//!
//! Its own test binary: the counting allocator is global.

use std::time::Duration;

use mtcp_testkit::alloc::{self, Counting};

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
        alloc::arm();
        let iterations = 300;
        for i in 0..iterations {
            ping_pong_round(&to_peer, &mut on_main, i).await;
        }
        let allocs = alloc::disarm();
        drop(to_peer);
        peer.await.unwrap();
        assert_eq!(
            allocs, 0,
            "{allocs} allocations in {iterations} steady-state iterations"
        );
    });
}

//! In-memory NIC throughput: frames per second through `tx_burst` and
//! `rx_burst` at batch 32, with frames of 64 to 128 bytes spread over many
//! TCP flows (RSS steering runs when a port has more than one queue).
//!
//! * `nic/single_thread/round_trip_batch32`: one thread moves a batch from
//!   port A to port B and back. Throughput counts frames per direction.
//! * `nic/single_thread_4q/round_trip_batch32`: the same with four queues per
//!   port: port A's queue 0 sends, RSS spreads the frames over port B's
//!   queues, whose replies come back to the matching queues of port A.
//! * `nic/two_threads/round_trip_batch32`: a second thread runs port B as an
//!   echo peer; port A keeps four batches circulating. Throughput counts
//!   frames per direction (each frame goes there and back). The threads are
//!   not pinned: on a machine shared with other work, pinning keeps a thread
//!   off the core that happens to be free.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtcp_stack::nic::memory::{MemoryNic, MemoryQueue};
use mtcp_stack::nic::{Frame, FramePool, NicQueue};

const BATCH: usize = 32;

/// An Ethernet/IPv4/TCP frame of `len` bytes for flow `flow`.
fn frame(pool: &mut FramePool, flow: u16, len: usize) -> Frame {
    let mut f = pool.alloc().expect("pool sized for the benchmark");
    let b = f.buffer_mut();
    b[..len].fill(0);
    b[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x0b]);
    b[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x0a]);
    b[12..14].copy_from_slice(&[0x08, 0x00]);
    b[14] = 0x45;
    b[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    b[22] = 64;
    b[23] = 6;
    b[26..30].copy_from_slice(&[10, 0, 0, 1]);
    b[30..34].copy_from_slice(&[10, 0, 0, 2]);
    b[34..36].copy_from_slice(&(40_000 + flow).to_be_bytes());
    b[36..38].copy_from_slice(&80u16.to_be_bytes());
    b[46] = 0x50;
    f.set_len(len);
    f
}

fn batch(pool: &mut FramePool, start: usize) -> Vec<Frame> {
    let mut v = Vec::with_capacity(BATCH);
    for i in 0..BATCH {
        v.push(frame(
            pool,
            ((start + i) % 251) as u16,
            64 + (start + i) * 7 % 65,
        ));
    }
    v
}

/// Spins briefly, then yields: on a machine with fewer free cores than
/// threads, a pure spin would hold the core the peer needs.
fn backoff(idle: &mut u32) {
    *idle += 1;
    if *idle < 256 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

fn pair() -> (MemoryQueue, MemoryQueue) {
    let (a, b) = MemoryNic::pair(1, 1024);
    (a.split().remove(0), b.split().remove(0))
}

fn single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("nic/single_thread");
    g.throughput(Throughput::Elements(BATCH as u64));
    let (mut a, mut b) = pair();
    let (mut pa, mut pb) = (FramePool::new(256), FramePool::new(256));
    let mut frames = batch(&mut pa, 0);
    let mut at_b = Vec::with_capacity(BATCH);
    g.bench_function("round_trip_batch32", |bench| {
        bench.iter(|| {
            a.tx_burst(&mut frames, &mut pa);
            b.rx_burst(&mut pb, &mut at_b, BATCH);
            b.tx_burst(&mut at_b, &mut pb);
            let n = a.rx_burst(&mut pa, &mut frames, BATCH);
            assert_eq!(n, BATCH);
        })
    });
    g.finish();
}

fn single_thread_four_queues(c: &mut Criterion) {
    let mut g = c.benchmark_group("nic/single_thread_4q");
    g.throughput(Throughput::Elements(BATCH as u64));
    let (a, b) = MemoryNic::pair(4, 1024);
    let (mut a, mut b) = (a.split(), b.split());
    let (mut pa, mut pb) = (FramePool::new(256), FramePool::new(256));
    let mut frames = batch(&mut pa, 0);
    let mut at_b = Vec::with_capacity(BATCH);
    g.bench_function("round_trip_batch32", |bench| {
        bench.iter(|| {
            a[0].tx_burst(&mut frames, &mut pa);
            for q in b.iter_mut() {
                q.rx_burst(&mut pb, &mut at_b, BATCH);
                q.tx_burst(&mut at_b, &mut pb);
            }
            let n: usize = a
                .iter_mut()
                .map(|q| q.rx_burst(&mut pa, &mut frames, BATCH))
                .sum();
            assert_eq!(n, BATCH);
        })
    });
    g.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("nic/two_threads");
    g.throughput(Throughput::Elements(BATCH as u64));
    let (mut a, mut b) = pair();
    let stop = Arc::new(AtomicBool::new(false));
    let peer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut pool = FramePool::new(256);
            let mut v = Vec::with_capacity(BATCH);
            let mut idle = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if b.rx_burst(&mut pool, &mut v, BATCH) > 0 {
                    b.tx_burst(&mut v, &mut pool);
                    idle = 0;
                } else {
                    backoff(&mut idle);
                }
            }
        })
    };
    // Four batches circulate: what comes back is sent again.
    const IN_FLIGHT_BATCHES: usize = 4;
    let mut pool = FramePool::new(512);
    let mut ready = Vec::with_capacity(IN_FLIGHT_BATCHES * BATCH * 2);
    for i in 0..IN_FLIGHT_BATCHES {
        ready.extend(batch(&mut pool, i * BATCH));
    }
    let mut txv = Vec::with_capacity(BATCH);
    g.bench_function("round_trip_batch32", |bench| {
        bench.iter_custom(|iters| {
            let want = iters * BATCH as u64;
            let (mut sent, mut got) = (0u64, 0u64);
            let mut idle = 0u32;
            let start = Instant::now();
            while got < want {
                if sent < want && ready.len() >= BATCH {
                    txv.extend(ready.drain(ready.len() - BATCH..));
                    sent += BATCH as u64;
                    a.tx_burst(&mut txv, &mut pool);
                }
                let n = a.rx_burst(&mut pool, &mut ready, BATCH);
                got += n as u64;
                if n == 0 {
                    backoff(&mut idle);
                } else {
                    idle = 0;
                }
            }
            start.elapsed()
        })
    });
    g.finish();
    stop.store(true, Ordering::Relaxed);
    peer.join().unwrap();
}

criterion_group!(
    benches,
    single_thread,
    single_thread_four_queues,
    two_threads
);
criterion_main!(benches);

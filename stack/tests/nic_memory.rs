//! Integration tests of the NIC layer: in-memory NIC properties under random
//! traffic, and wrappers stacked on boxed queues.

use std::collections::HashMap;

use mtcp_stack::config::EnvConfig;
use mtcp_stack::nic::faults::{FaultConfig, FaultyQueue};
use mtcp_stack::nic::memory::MemoryNic;
use mtcp_stack::nic::pcap::{PcapQueue, PcapWriter};
use mtcp_stack::nic::rss::{ephemeral_port_for_queue, Rss};
use mtcp_stack::nic::{Frame, FramePool, NicQueue};
use mtcp_stack::stack::{Stack, StackConfig};
use mtcp_stack::time::Instant;
use mtcp_stack::wire::ipv4::Ipv4Address;
use proptest::prelude::*;

type Tuple = ([u8; 4], [u8; 4], u16, u16);

fn tcp_frame(pool: &mut FramePool, t: Tuple, seq: u32) -> Frame {
    let mut f = pool.alloc().expect("pool");
    let b = f.buffer_mut();
    b[..58].fill(0);
    b[12..14].copy_from_slice(&[0x08, 0x00]);
    b[14] = 0x45;
    b[23] = 6;
    b[26..30].copy_from_slice(&t.0);
    b[30..34].copy_from_slice(&t.1);
    b[34..36].copy_from_slice(&t.2.to_be_bytes());
    b[36..38].copy_from_slice(&t.3.to_be_bytes());
    b[54..58].copy_from_slice(&seq.to_be_bytes());
    f.set_len(58);
    f
}

fn tuple_of(f: &Frame) -> Tuple {
    let s = f.as_slice();
    (
        s[26..30].try_into().unwrap(),
        s[30..34].try_into().unwrap(),
        u16::from_be_bytes([s[34], s[35]]),
        u16::from_be_bytes([s[36], s[37]]),
    )
}

fn seq_of(f: &Frame) -> u32 {
    u32::from_be_bytes(f.as_slice()[54..58].try_into().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random flows sent from random queues in random bursts, received with
    /// random burst sizes: nothing lost, per-flow order kept, each flow on
    /// one receive queue, and that queue's index is where replies land.
    #[test]
    fn random_traffic_keeps_order_and_steering(
        queues in 1usize..5,
        flows in prop::collection::vec((any::<u32>(), any::<u32>(), any::<u16>(), any::<u16>()), 1..12),
        bursts in prop::collection::vec((0usize..12, 0usize..5, 1usize..40), 1..60),
    ) {
        let (a, b) = MemoryNic::pair(queues, 512);
        let (mut a, mut b) = (a.split(), b.split());
        let mut pool = FramePool::new(1024);
        let flows: Vec<Tuple> = flows
            .iter()
            .map(|&(s, d, sp, dp)| (s.to_be_bytes(), d.to_be_bytes(), sp, dp))
            .collect();
        let mut next_seq: HashMap<Tuple, u32> = HashMap::new();
        let mut sender: HashMap<Tuple, usize> = HashMap::new();
        let mut expect: HashMap<Tuple, u32> = HashMap::new();
        let mut landed: HashMap<Tuple, usize> = HashMap::new();
        let mut out = Vec::new();
        let mut sent = 0u64;
        let mut received = 0u64;
        for &(n, from, max) in &bursts {
            let mut batch = Vec::new();
            for i in 0..n {
                let t = flows[(i * 7 + n) % flows.len()];
                // A flow is always sent by one queue (as a core owns it).
                let q = *sender.entry(t).or_insert(from % queues);
                if q != from % queues {
                    continue;
                }
                let s = next_seq.entry(t).or_insert(0);
                batch.push(tcp_frame(&mut pool, t, *s));
                *s += 1;
            }
            sent += batch.len() as u64;
            a[from % queues].tx_burst(&mut batch, &mut pool);
            prop_assert!(batch.is_empty());
            for (qi, q) in b.iter_mut().enumerate() {
                let got = q.rx_burst(&mut pool, &mut out, max);
                prop_assert!(got <= max);
                for f in out.drain(..) {
                    let t = tuple_of(&f);
                    let e = expect.entry(t).or_insert(0);
                    prop_assert_eq!(seq_of(&f), *e);
                    *e += 1;
                    prop_assert_eq!(*landed.entry(t).or_insert(qi), qi);
                    received += 1;
                    pool.free(f);
                }
            }
        }
        for (qi, q) in b.iter_mut().enumerate() {
            while q.rx_burst(&mut pool, &mut out, 64) > 0 {
                for f in out.drain(..) {
                    let t = tuple_of(&f);
                    let e = expect.entry(t).or_insert(0);
                    prop_assert_eq!(seq_of(&f), *e);
                    *e += 1;
                    prop_assert_eq!(*landed.entry(t).or_insert(qi), qi);
                    received += 1;
                    pool.free(f);
                }
            }
        }
        prop_assert_eq!(sent, received);
        prop_assert_eq!(&expect, &next_seq);
        // Replies to every flow come back to the queue index it landed on.
        for (t, &qi) in &landed {
            let mut reply = vec![tcp_frame(&mut pool, (t.1, t.0, t.3, t.2), 0)];
            b[qi].tx_burst(&mut reply, &mut pool);
            for (i, q) in a.iter_mut().enumerate() {
                let n = q.rx_burst(&mut pool, &mut out, 8);
                prop_assert_eq!(n, usize::from(i == qi));
                for f in out.drain(..) {
                    pool.free(f);
                }
            }
        }
        prop_assert!(a.iter().all(|q| q.counters().ring_full_drops == 0));
        prop_assert_eq!(pool.available(), 1024);
    }
}

#[test]
fn active_open_port_choice_brings_replies_home() {
    const Q: usize = 4;
    let (a, b) = MemoryNic::pair(Q, 64);
    let (mut a, mut b) = (a.split(), b.split());
    let rss = Rss::symmetric(Q);
    let mut pool = FramePool::new(64);
    let local = Ipv4Address::new(10, 0, 0, 1);
    let remote = Ipv4Address::new(10, 0, 0, 2);
    let mut out = Vec::new();
    for core in 0..Q {
        let port =
            ephemeral_port_for_queue(&rss, local, remote, 443, 32768..=60999, 40000, core).unwrap();
        // The SYN from `core`'s queue lands on some queue of the peer …
        let t = (local.octets(), remote.octets(), port, 443);
        a[core].tx_burst(&mut vec![tcp_frame(&mut pool, t, 0)], &mut pool);
        let peer_q = (0..Q)
            .find(|&q| b[q].rx_burst(&mut pool, &mut out, 8) == 1)
            .unwrap();
        // … and the SYN-ACK from there comes back to `core`.
        let r = (remote.octets(), local.octets(), 443, port);
        b[peer_q].tx_burst(&mut vec![tcp_frame(&mut pool, r, 0)], &mut pool);
        for (i, q) in a.iter_mut().enumerate() {
            assert_eq!(q.rx_burst(&mut pool, &mut out, 8), usize::from(i == core));
        }
        for f in out.drain(..) {
            pool.free(f);
        }
    }
}

#[test]
fn wrappers_stack_on_boxed_queues_from_config() {
    let cfg = EnvConfig::from_lookup(|k| match k {
        "MTCP_FAULTS" => Some("drop=0.5,seed=11".into()),
        "MTCP_CORES" => Some("2".into()),
        _ => None,
    })
    .unwrap();
    let faults = cfg.net.faults.unwrap();
    let dir = std::env::temp_dir().join(format!("mtcp-nic-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let writer = PcapWriter::create(dir.join("x.pcap")).unwrap().shared();

    let (a, b) = MemoryNic::pair(cfg.cores, 256);
    // What the runtime would build per core: faults outside, capture inside
    // (the capture shows what really crossed the wire).
    let mut cores: Vec<Box<dyn NicQueue>> = a
        .split_boxed()
        .into_iter()
        .map(|q| {
            let captured: Box<dyn NicQueue> = Box::new(PcapQueue::new(q, writer.clone()));
            Box::new(FaultyQueue::new(captured, faults)) as Box<dyn NicQueue>
        })
        .collect();
    let mut peer = b.split();
    let mut pool = FramePool::new(512);
    let t = ([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80);
    let mut batch: Vec<Frame> = (0..200).map(|i| tcp_frame(&mut pool, t, i)).collect();
    assert_eq!(cores[1].tx_burst(&mut batch, &mut pool), 200);
    let mut out = Vec::new();
    let got: usize = peer
        .iter_mut()
        .map(|q| {
            let mut n = 0;
            while q.rx_burst(&mut pool, &mut out, 32) > 0 {
                n += out.len();
                for f in out.drain(..) {
                    pool.free(f);
                }
            }
            n
        })
        .sum();
    assert!((60..140).contains(&got), "about half dropped: {got}");
    // The capture holds exactly what went out.
    drop(cores);
    assert_eq!(writer.lock().unwrap().frames(), got as u64);
    std::fs::remove_dir_all(&dir).ok();
}

/// A stack's tick takes half of what waits in the in-memory NIC (at least
/// one frame, at most `rx_batch`), seen through the wrappers the
/// runtime stacks on a queue, and the rest at the next ticks: nothing is
/// left behind.
#[test]
fn a_tick_takes_half_the_backlog() {
    let (a, b) = MemoryNic::pair(1, 512);
    let dir = std::env::temp_dir().join(format!("mtcp-nic-backlog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let writer = PcapWriter::create(dir.join("x.pcap")).unwrap().shared();
    // As the runtime stacks them: faults outside, capture inside.
    let captured: Box<dyn NicQueue> =
        Box::new(PcapQueue::new(a.split_boxed().remove(0), writer.clone()));
    let queue: Box<dyn NicQueue> = Box::new(FaultyQueue::new(captured, FaultConfig::default()));
    let mut stack = Stack::new(StackConfig::default(), queue).unwrap();
    let mut peer = b.split().remove(0);
    let mut pool = FramePool::new(512);
    let t = ([10, 0, 0, 2], [10, 0, 0, 1], 1234, 80);
    let mut frames: Vec<Frame> = (0..300).map(|i| tcp_frame(&mut pool, t, i)).collect();
    assert_eq!(peer.tx_burst(&mut frames, &mut pool), 300);

    let mut taken = Vec::new();
    let mut before = 0;
    for _ in 0..12 {
        stack.poll(Instant::ZERO);
        let now = stack.stats().rx_frames;
        taken.push(now - before);
        before = now;
    }
    // 300 waiting: bursts of 64 (the batch) while half the backlog is more,
    // then half of it, rounded up: 108 / 2, 54 / 2, 27 / 2, ...
    let expect: Vec<u64> = vec![64, 64, 64, 54, 27, 14, 7, 3, 2, 1, 0, 0];
    assert_eq!(taken, expect);
    assert_eq!(before, 300);
    drop(stack);
    assert_eq!(writer.lock().unwrap().frames(), 300);
    std::fs::remove_dir_all(&dir).ok();
}

//! Whole stacks (NIC queue + interface + TCP) over the in-memory NIC, in
//! virtual time.

use mtcp_stack::nic::memory::MemoryNic;
use mtcp_stack::nic::{FramePool, NicQueue};
use mtcp_stack::stack::{Stack, StackConfig};
use mtcp_stack::stats::DropReason;
use mtcp_stack::tcp::State;
use mtcp_stack::tcp::TcpError;
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::ipv4::Ipv4Address;

mod support;

use support::{addr, CLIENT, SERVER};

fn cfg(addr: [u8; 4]) -> StackConfig {
    support::stack_cfg(addr, 256, 2048, 1024)
}

fn pair(queues: usize) -> (Vec<Stack>, Vec<Stack>) {
    support::memory_pair(queues, || cfg(SERVER), || cfg(CLIENT))
}

/// One tick of every stack, then time moves on by 100 µs.
fn tick(stacks: &mut [&mut Stack], now: &mut Instant) {
    support::tick(stacks, now, Duration::from_micros(100));
}

/// Moves `data` from `from` (socket `fs`) to `to` (socket `ts`) while ticking.
fn transfer(
    stacks: &mut [Stack],
    from: (usize, mtcp_stack::tcp::SocketId),
    to: (usize, mtcp_stack::tcp::SocketId),
    data: &[u8],
    now: &mut Instant,
) -> Vec<u8> {
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    for _ in 0..200_000 {
        if sent < data.len() {
            match stacks[from.0].tcp_mut().send(from.1, &data[sent..]) {
                Ok(n) => sent += n,
                Err(TcpError::WouldBlock) => {}
                Err(e) => panic!("send: {e}"),
            }
        }
        loop {
            match stacks[to.0].tcp_mut().recv(to.1, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(TcpError::WouldBlock) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        if got.len() == data.len() {
            return got;
        }
        let mut refs: Vec<&mut Stack> = stacks.iter_mut().collect();
        tick(&mut refs, now);
    }
    panic!("transfer stalled: sent {sent}, received {}", got.len());
}

#[test]
fn handshake_and_data_both_ways_over_the_memory_nic() {
    let (mut s, mut c) = pair(1);
    let mut stacks = vec![s.remove(0), c.remove(0)];
    let mut now = Instant::from_secs(1);
    let l = stacks[0]
        .tcp_mut()
        .listen(addr([0, 0, 0, 0], 7), 16)
        .unwrap();
    let cs = stacks[1]
        .tcp_mut()
        .connect(now, addr(SERVER, 7), None)
        .unwrap();
    let mut ss = None;
    for _ in 0..100 {
        let mut refs: Vec<&mut Stack> = stacks.iter_mut().collect();
        tick(&mut refs, &mut now);
        if let Ok(id) = stacks[0].tcp_mut().accept(l) {
            ss = Some(id);
            break;
        }
    }
    let ss = ss.expect("server accepted the connection (ARP then handshake)");
    assert_eq!(stacks[1].tcp().state(cs).unwrap(), State::Established);
    let up: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let down: Vec<u8> = (0..200_000u32).map(|i| (i * 13 % 241) as u8).collect();
    assert_eq!(transfer(&mut stacks, (1, cs), (0, ss), &up, &mut now), up);
    assert_eq!(
        transfer(&mut stacks, (0, ss), (1, cs), &down, &mut now),
        down
    );
    // Both learnt each other's MAC by ARP.
    assert!(stacks[0].stats().rx_frames > 100);
    assert_eq!(stacks[0].stats().total_drops(), 0, "{}", stacks[0].stats());
    assert_eq!(stacks[1].stats().total_drops(), 0, "{}", stacks[1].stats());
    // Close both ways; the client ends in TIME-WAIT, the server closed.
    stacks[1].tcp_mut().close(cs).unwrap();
    for _ in 0..100 {
        let mut refs: Vec<&mut Stack> = stacks.iter_mut().collect();
        tick(&mut refs, &mut now);
    }
    let mut buf = [0u8; 16];
    assert_eq!(
        stacks[0].tcp_mut().recv(ss, &mut buf),
        Ok(0),
        "EOF after FIN"
    );
    stacks[0].tcp_mut().close(ss).unwrap();
    for _ in 0..100 {
        let mut refs: Vec<&mut Stack> = stacks.iter_mut().collect();
        tick(&mut refs, &mut now);
    }
    assert_eq!(stacks[0].tcp().chunks_in_use(), 0);
    assert_eq!(stacks[1].tcp().chunks_in_use(), 0);
    // The client closed first: it holds the 4-tuple in TIME-WAIT.
    assert_eq!(stacks[1].tcp().time_wait_sockets(), 1);
    assert_eq!(stacks[0].tcp().time_wait_sockets(), 0);
    assert_eq!(stacks[0].frames_available(), stacks[0].frames_capacity());
    assert_eq!(stacks[1].frames_available(), stacks[1].frames_capacity());
}

#[test]
fn loopback_to_own_address_and_localhost() {
    let (mut s, _c) = pair(1);
    let mut stacks = vec![s.remove(0)];
    let mut now = Instant::from_secs(1);
    let l = stacks[0]
        .tcp_mut()
        .listen(addr([0, 0, 0, 0], 80), 16)
        .unwrap();
    for target in [SERVER, [127, 0, 0, 1]] {
        let cs = stacks[0]
            .tcp_mut()
            .connect(now, addr(target, 80), None)
            .unwrap();
        let mut ss = None;
        for _ in 0..20 {
            let mut refs: Vec<&mut Stack> = stacks.iter_mut().collect();
            tick(&mut refs, &mut now);
            if let Ok(id) = stacks[0].tcp_mut().accept(l) {
                ss = Some(id);
                break;
            }
        }
        let ss = ss.expect("accepted over loopback");
        let msg: Vec<u8> = (0..50_000u32).map(|i| i as u8).collect();
        assert_eq!(transfer(&mut stacks, (0, cs), (0, ss), &msg, &mut now), msg);
        // Nothing went to the device.
        assert_eq!(
            stacks[0].nic().counters().tx_frames,
            1,
            "only the gratuitous ARP"
        );
        stacks[0].tcp_mut().abort(cs).unwrap();
        stacks[0].tcp_mut().close(ss).unwrap();
        for _ in 0..10 {
            let mut refs: Vec<&mut Stack> = stacks.iter_mut().collect();
            tick(&mut refs, &mut now);
        }
    }
}

#[test]
fn two_queues_each_flow_stays_on_its_core() {
    let (servers, clients) = pair(2);
    let mut stacks: Vec<Stack> = servers.into_iter().chain(clients).collect();
    // stacks[0], [1]: server queues 0 and 1; [2], [3]: client queues 0 and 1.
    let mut now = Instant::from_secs(1);
    let l0 = stacks[0]
        .tcp_mut()
        .listen(addr([0, 0, 0, 0], 9), 64)
        .unwrap();
    let l1 = stacks[1]
        .tcp_mut()
        .listen(addr([0, 0, 0, 0], 9), 64)
        .unwrap();
    let mut conns = Vec::new();
    for i in 0..8 {
        let core = 2 + i % 2;
        let id = stacks[core]
            .tcp_mut()
            .connect(now, addr(SERVER, 9), None)
            .unwrap();
        conns.push((core, id));
    }
    let mut accepted = [0usize; 2];
    for _ in 0..200 {
        let mut refs: Vec<&mut Stack> = stacks.iter_mut().collect();
        tick(&mut refs, &mut now);
        while stacks[0].tcp_mut().accept(l0).is_ok() {
            accepted[0] += 1;
        }
        while stacks[1].tcp_mut().accept(l1).is_ok() {
            accepted[1] += 1;
        }
    }
    // Client core k's flows were steered to server queue k, both ways.
    assert_eq!(accepted, [4, 4]);
    for (core, id) in conns {
        assert_eq!(stacks[core].tcp().state(id).unwrap(), State::Established);
    }
}

#[test]
fn garbage_frames_are_dropped_and_counted() {
    let (a, b) = MemoryNic::pair(1, 256);
    let mut stack = Stack::new(cfg(SERVER), a.split_boxed().remove(0)).unwrap();
    let mut peer = b.split().remove(0);
    let mut pool = FramePool::new(64);
    let mut rng = mtcp_stack::rand::Rng::new(5);
    let mut now = Instant::from_secs(1);
    let mut frames = Vec::new();
    for i in 0..200 {
        let mut f = pool.alloc().unwrap();
        let len = 14 + (i % 100);
        f.set_len(len);
        rng.fill(f.as_mut_slice());
        // Half of them claim to be IPv4 for us.
        if i % 2 == 0 {
            f.as_mut_slice()[..6].copy_from_slice(&[0xff; 6]);
            f.as_mut_slice()[12..14].copy_from_slice(&[0x08, 0x00]);
        }
        frames.push(f);
        peer.tx_burst(&mut frames, &mut pool);
        stack.poll(now);
        stack.flush(now);
        now += Duration::from_millis(1);
    }
    let st = stack.stats();
    assert_eq!(st.rx_frames, 200);
    assert!(st.total_drops() >= 190, "{st}");
    assert!(st.drops(DropReason::Malformed) + st.drops(DropReason::Truncated) > 0);
}

#[test]
fn segments_the_arp_queue_or_routing_refuse_are_dropped_and_counted() {
    let (_s, mut cs) = pair(1);
    let mut c = cs.remove(0);
    let now = Instant::from_secs(1);
    // The server never runs: it stays unresolved, and the ARP queue holds
    // `queue_per_dest` SYNs for it.
    let per_dest = c.iface().arp_cache().config().queue_per_dest;
    for _ in 0..per_dest + 2 {
        c.tcp_mut().connect(now, addr(SERVER, 80), None).unwrap();
    }
    // Off-link with no gateway: no route.
    c.tcp_mut()
        .connect(now, addr([192, 168, 9, 9], 80), None)
        .unwrap();
    assert_eq!(c.stats().total_drops(), 0);
    c.flush(now);
    assert_eq!(c.iface().arp_cache().queued(), per_dest);
    assert_eq!(c.stats().drops(DropReason::ArpQueueFull), 2);
    assert_eq!(c.stats().drops(DropReason::Unsupported), 1);
    assert_eq!(c.stats().total_drops(), 3);
}

#[test]
fn land_syn_from_the_wire_is_a_martian() {
    // A SYN from the stack's own address and port to that port, from the
    // device: dropped and counted (RFC 1122 §3.2.1.3), never answered, no
    // half-open connection (which would answer itself through the
    // loopback). The loopback itself is untouched
    // (`loopback_to_own_address_and_localhost`).
    use mtcp_stack::wire::ethernet::EthernetAddress;

    let (a, b) = MemoryNic::pair(1, 256);
    let mut stack = Stack::new(cfg(SERVER), a.split_boxed().remove(0)).unwrap();
    let mut peer = b.split().remove(0);
    let mut pool = FramePool::new(64);
    let mut now = Instant::from_secs(1);
    let l = stack.tcp_mut().listen(addr([0, 0, 0, 0], 80), 16).unwrap();
    let ours = Ipv4Address::from(SERVER);
    let seg = support::syn(80, 80, 1000);
    let eth = support::ipv4_eth(
        EthernetAddress([2, 0, 0, 0, 0, 0x66]),
        stack.iface().config().mac,
    );
    for (k, src) in [ours, Ipv4Address::LOCALHOST].into_iter().enumerate() {
        let f = support::tcp_frame(&mut pool, &eth, src, ours, k as u16, &seg);
        peer.tx_burst(&mut vec![f], &mut pool);
    }
    for _ in 0..2000 {
        let mut refs = [&mut stack];
        tick(&mut refs, &mut now);
    }
    assert_eq!(
        stack.stats().drops(DropReason::Martian),
        2,
        "{}",
        stack.stats()
    );
    assert_eq!(stack.tcp().stats().segs_in, 0);
    assert_eq!(stack.tcp().sockets_in_use(), 1, "only the listener");
    assert!(stack.tcp_mut().accept(l).is_err());
    assert_eq!(
        stack.nic().counters().tx_frames,
        1,
        "only the gratuitous ARP went out"
    );
}

#[test]
fn tcp_forward_progress_keeps_neighbours_reachable_without_probes() {
    use mtcp_stack::iface::NeighborState;
    let (mut s, mut c) = pair(1);
    let mut stacks = vec![s.remove(0), c.remove(0)];
    let mut now = Instant::from_secs(1);
    let l = stacks[0]
        .tcp_mut()
        .listen(addr([0, 0, 0, 0], 7), 16)
        .unwrap();
    let cs = stacks[1]
        .tcp_mut()
        .connect(now, addr(SERVER, 7), None)
        .unwrap();
    let mut ss = None;
    for _ in 0..100 {
        let mut refs: Vec<&mut Stack> = stacks.iter_mut().collect();
        tick(&mut refs, &mut now);
        if let Ok(id) = stacks[0].tcp_mut().accept(l) {
            ss = Some(id);
            break;
        }
    }
    let ss = ss.expect("accepted");
    // A request and an answer every second for two minutes: far past the
    // 30 s reachable time and the 5 s DELAY, but the ACKs confirm.
    for k in 0..120u32 {
        let msg = k.to_be_bytes();
        assert_eq!(transfer(&mut stacks, (1, cs), (0, ss), &msg, &mut now), msg);
        assert_eq!(transfer(&mut stacks, (0, ss), (1, cs), &msg, &mut now), msg);
        now += Duration::from_secs(1);
    }
    for (st, peer) in [(&stacks[0], CLIENT), (&stacks[1], SERVER)] {
        let i = st.iface();
        assert_eq!(i.stats().arp_probes_sent, 0, "{}", i.stats());
        assert!(i.stats().arp_confirmed > 100, "{}", i.stats());
        assert_eq!(
            i.arp_cache().state(Ipv4Address::from(peer), now),
            Some(NeighborState::Reachable)
        );
    }
    // Idle: once the entry goes STALE, the next send still goes out at once
    // and the entry is re-probed (unicast) when no ACK confirms it in time.
    now += Duration::from_secs(40);
    let before = stacks[0].stats().tx_frames;
    stacks[0].tcp_mut().send(ss, b"late").unwrap();
    stacks[0].poll(now);
    stacks[0].flush(now);
    assert!(
        stacks[0].stats().tx_frames > before,
        "sent through the STALE entry"
    );
    assert_eq!(
        stacks[0]
            .iface()
            .arp_cache()
            .state(Ipv4Address::from(CLIENT), now),
        Some(NeighborState::Delay)
    );
}

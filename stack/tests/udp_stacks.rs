//! UDP between two whole stacks over the in-memory NIC: bind, connect
//! filtering, full receive queues, fragmentation both ways, ICMP port
//! unreachable sent and surfaced as `ConnectionRefused`, zero and bad
//! checksums, and RSS-aware ephemeral ports over two queues.

use std::net::SocketAddrV4;

use mtcp_stack::nic::memory::{MemoryNic, MemoryNicConfig, MemoryQueue};
use mtcp_stack::nic::{FramePool, NicQueue};
use mtcp_stack::stack::{Stack, StackConfig};
use mtcp_stack::stats::DropReason;
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::udp::{UdpError, UdpId};
use mtcp_stack::wire::ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use mtcp_stack::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr};
use mtcp_stack::wire::udp::UdpPacket;

mod support;

use support::{addr, CLIENT, SERVER};

fn cfg(addr: [u8; 4]) -> StackConfig {
    let mut c = support::stack_cfg(addr, 16, 64, 1024);
    c.tcp.seed = u64::from(addr[3]);
    c
}

fn pair_with(queues: usize, tweak: impl Fn(&mut StackConfig)) -> (Vec<Stack>, Vec<Stack>) {
    let mk = |ip| {
        let mut c = cfg(ip);
        tweak(&mut c);
        c
    };
    support::memory_pair(queues, || mk(SERVER), || mk(CLIENT))
}

fn pair() -> (Stack, Stack) {
    let (mut s, mut c) = pair_with(1, |_| {});
    (s.remove(0), c.remove(0))
}

struct Clock(Instant);

impl Clock {
    /// Three rounds (an ARP exchange, a datagram, its answer), then more
    /// while frames wait in a device: a stack's tick takes half of what
    /// waits there.
    fn tick(&mut self, stacks: &mut [&mut Stack]) {
        for round in 0..64 {
            support::tick(stacks, &mut self.0, Duration::from_micros(100));
            if round >= 2 && !stacks.iter().any(|s| s.rx_pending()) {
                break;
            }
        }
    }
}

fn recv(s: &mut Stack, id: UdpId) -> Result<(Vec<u8>, SocketAddrV4), UdpError> {
    let mut buf = vec![0u8; 70_000];
    let (n, _, from) = s.udp_mut().recv_from(id, &mut buf, false)?;
    buf.truncate(n);
    Ok((buf, from))
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + seed) as u8).collect()
}

// ---- bind and exchange ----

#[test]
fn datagrams_both_ways_keep_boundaries_and_sources() {
    let (mut s, mut c) = pair();
    let mut clock = Clock(Instant::from_secs(1));
    let srv = s.udp_bind(addr([0, 0, 0, 0], 7000)).unwrap();
    let cli = c.udp_bind(addr([0, 0, 0, 0], 0)).unwrap();
    let cport = c.udp().local_addr(cli).unwrap().port();
    assert!((32768..=60999).contains(&cport), "{cport}");
    // The first datagram waits for ARP; every size then goes through.
    for len in [1usize, 2, 100, 1472, 0, 555] {
        let d = pattern(len, len);
        let n = c
            .udp_send_to(clock.0, cli, Some(addr(SERVER, 7000)), &d)
            .unwrap();
        assert_eq!(n, len);
        clock.tick(&mut [&mut s, &mut c]);
        let (got, from) = recv(&mut s, srv).unwrap();
        assert_eq!(got, d, "len {len}");
        assert_eq!(from, addr(CLIENT, cport));
        s.udp_send_to(clock.0, srv, Some(from), &got).unwrap();
        clock.tick(&mut [&mut s, &mut c]);
        let (back, from) = recv(&mut c, cli).unwrap();
        assert_eq!(back, d);
        assert_eq!(from, addr(SERVER, 7000));
    }
    assert_eq!(recv(&mut s, srv).unwrap_err(), UdpError::WouldBlock);
    assert_eq!(s.udp().stats().rx_datagrams, 6);
    assert_eq!(c.udp().stats().tx_datagrams, 6);
}

#[test]
fn bind_conflicts_and_foreign_addresses() {
    let (mut s, _c) = pair();
    s.udp_bind(addr(SERVER, 53)).unwrap();
    assert_eq!(
        s.udp_bind(addr(SERVER, 53)).unwrap_err(),
        UdpError::AddrInUse
    );
    assert_eq!(
        s.udp_bind(addr([0, 0, 0, 0], 53)).unwrap_err(),
        UdpError::AddrInUse
    );
    // Another local address on the same port is free.
    s.udp_bind(addr([127, 0, 0, 1], 53)).unwrap();
    assert_eq!(
        s.udp_bind(addr([10, 9, 9, 9], 53)).unwrap_err(),
        UdpError::AddrNotAvailable
    );
}

#[test]
fn a_closed_socket_frees_its_port_and_the_handle_goes_stale() {
    let (mut s, mut c) = pair();
    let mut clock = Clock(Instant::from_secs(1));
    let srv = s.udp_bind(addr([0, 0, 0, 0], 7000)).unwrap();
    s.udp_close(srv).unwrap();
    assert_eq!(
        s.udp().local_addr(srv).unwrap_err(),
        UdpError::InvalidSocket
    );
    let cli = c.udp_bind(addr([0, 0, 0, 0], 0)).unwrap();
    c.udp_send_to(clock.0, cli, Some(addr(SERVER, 7000)), b"x")
        .unwrap();
    clock.tick(&mut [&mut s, &mut c]);
    // The port is free again: answered with port unreachable.
    assert_eq!(s.iface().stats().icmp_errors_sent, 1);
    let again = s.udp_bind(addr([0, 0, 0, 0], 7000)).unwrap();
    assert_ne!(again, srv);
}

// ---- connected sockets ----

#[test]
fn a_connected_socket_takes_only_its_peer() {
    let (mut s, mut c) = pair();
    let mut clock = Clock(Instant::from_secs(1));
    let srv = s.udp_bind(addr([0, 0, 0, 0], 7000)).unwrap();
    let a = c.udp_bind(addr([0, 0, 0, 0], 6001)).unwrap();
    let b = c.udp_bind(addr([0, 0, 0, 0], 6002)).unwrap();
    s.udp_connect(srv, addr(CLIENT, 6001)).unwrap();
    assert_eq!(s.udp().peer_addr(srv).unwrap(), addr(CLIENT, 6001));
    c.udp_send_to(clock.0, b, Some(addr(SERVER, 7000)), b"from b")
        .unwrap();
    clock.tick(&mut [&mut s, &mut c]);
    c.udp_send_to(clock.0, a, Some(addr(SERVER, 7000)), b"from a")
        .unwrap();
    clock.tick(&mut [&mut s, &mut c]);
    let (got, from) = recv(&mut s, srv).unwrap();
    assert_eq!((got.as_slice(), from), (&b"from a"[..], addr(CLIENT, 6001)));
    assert_eq!(recv(&mut s, srv).unwrap_err(), UdpError::WouldBlock);
    // The other one was answered with port unreachable (RFC 1122
    // §4.1.3.1) and counted.
    assert_eq!(s.stats().drops(DropReason::NoSocket), 1);
    assert_eq!(s.iface().stats().icmp_errors_sent, 1);
    // send() goes to the connected peer; unconnected send() fails.
    s.udp_send_to(clock.0, srv, None, b"reply").unwrap();
    clock.tick(&mut [&mut s, &mut c]);
    assert_eq!(recv(&mut c, a).unwrap().0, b"reply");
    assert_eq!(
        c.udp_send_to(clock.0, b, None, b"x").unwrap_err(),
        UdpError::NotConnected
    );
}

#[test]
fn port_unreachable_surfaces_as_connection_refused_on_a_connected_socket() {
    let (mut s, mut c) = pair();
    let mut clock = Clock(Instant::from_secs(1));
    let cli = c.udp_bind(addr([0, 0, 0, 0], 0)).unwrap();
    let other = c.udp_bind(addr([0, 0, 0, 0], 0)).unwrap();
    c.udp_connect(cli, addr(SERVER, 9999)).unwrap();
    c.udp_send_to(clock.0, cli, None, b"anyone?").unwrap();
    // An unconnected socket sending there hears nothing (as on Linux).
    c.udp_send_to(clock.0, other, Some(addr(SERVER, 9999)), b"x")
        .unwrap();
    clock.tick(&mut [&mut s, &mut c]);
    assert_eq!(s.iface().stats().icmp_errors_sent, 2);
    assert_eq!(c.udp().stats().icmp_errors, 1);
    assert!(c.udp().is_readable(cli));
    assert_eq!(recv(&mut c, cli).unwrap_err(), UdpError::ConnectionRefused);
    // Reported once.
    assert_eq!(recv(&mut c, cli).unwrap_err(), UdpError::WouldBlock);
    assert_eq!(recv(&mut c, other).unwrap_err(), UdpError::WouldBlock);
}

#[test]
fn loopback_send_to_a_free_port_refuses_the_connected_sender() {
    let (mut s, _c) = pair();
    let now = Instant::from_secs(1);
    let a = s.udp_bind(addr([127, 0, 0, 1], 0)).unwrap();
    let b = s.udp_bind(addr([0, 0, 0, 0], 4000)).unwrap();
    s.udp_send_to(now, a, Some(addr([127, 0, 0, 1], 4000)), b"lo")
        .unwrap();
    let (got, from) = recv(&mut s, b).unwrap();
    assert_eq!(got, b"lo");
    assert_eq!(from, s.udp().local_addr(a).unwrap());
    s.udp_connect(a, addr([127, 0, 0, 1], 4001)).unwrap();
    s.udp_send_to(now, a, None, b"nobody").unwrap();
    assert_eq!(recv(&mut s, a).unwrap_err(), UdpError::ConnectionRefused);
}

// ---- limits ----

#[test]
fn a_full_receive_queue_drops_and_counts() {
    let (mut ss, mut cs) = pair_with(1, |c| c.udp.recv_datagrams = 4);
    let (mut s, mut c) = (ss.remove(0), cs.remove(0));
    let mut clock = Clock(Instant::from_secs(1));
    let srv = s.udp_bind(addr([0, 0, 0, 0], 7000)).unwrap();
    let cli = c.udp_bind(addr([0, 0, 0, 0], 0)).unwrap();
    // Resolve ARP first.
    c.udp_send_to(clock.0, cli, Some(addr(SERVER, 7000)), b"arp")
        .unwrap();
    clock.tick(&mut [&mut s, &mut c]);
    recv(&mut s, srv).unwrap();
    for i in 0..10u8 {
        c.udp_send_to(clock.0, cli, Some(addr(SERVER, 7000)), &[i; 32])
            .unwrap();
    }
    clock.tick(&mut [&mut s, &mut c]);
    assert_eq!(s.udp().recv_queue(srv).unwrap(), 4);
    assert_eq!(s.udp().stats().rx_queue_full, 6);
    assert_eq!(s.stats().drops(DropReason::UdpQueueFull), 6);
    for i in 0..4u8 {
        assert_eq!(recv(&mut s, srv).unwrap().0, [i; 32]);
    }
    assert_eq!(recv(&mut s, srv).unwrap_err(), UdpError::WouldBlock);
}

#[test]
fn datagrams_the_arp_queue_refuses_are_dropped_and_counted() {
    let (_s, mut c) = pair();
    let now = Instant::from_secs(1);
    let cli = c.udp_bind(addr([0, 0, 0, 0], 0)).unwrap();
    // Nothing ticks: the server stays unresolved, and the ARP queue holds
    // `queue_per_dest` frames for it.
    let per_dest = c.iface().arp_cache().config().queue_per_dest;
    for i in 0..per_dest + 2 {
        let n = c
            .udp_send_to(now, cli, Some(addr(SERVER, 7000)), &[i as u8; 32])
            .unwrap();
        assert_eq!(n, 32);
    }
    assert_eq!(c.iface().arp_cache().queued(), per_dest);
    assert_eq!(c.stats().drops(DropReason::ArpQueueFull), 2);
    assert_eq!(
        c.iface()
            .stats()
            .drops(mtcp_stack::iface::DropReason::ArpQueueOverflow),
        2
    );
}

#[test]
fn a_short_buffer_truncates_and_peek_keeps() {
    let (mut s, _c) = pair();
    let now = Instant::from_secs(1);
    let a = s.udp_bind(addr([0, 0, 0, 0], 5000)).unwrap();
    s.udp_send_to(now, a, Some(addr(SERVER, 5000)), b"abcdefgh")
        .unwrap();
    s.udp_send_to(now, a, Some(addr(SERVER, 5000)), b"second")
        .unwrap();
    let mut buf = [0u8; 3];
    let (n, whole, _) = s.udp_mut().recv_from(a, &mut buf, true).unwrap();
    assert_eq!((n, whole, &buf), (3, 8, b"abc"));
    let (n, whole, _) = s.udp_mut().recv_from(a, &mut buf, false).unwrap();
    assert_eq!((n, whole), (3, 8));
    // The rest of the first datagram is gone.
    assert_eq!(recv(&mut s, a).unwrap().0, b"second");
}

#[test]
fn oversized_and_broadcast_sends_are_refused() {
    let (mut s, _c) = pair();
    let now = Instant::from_secs(1);
    let a = s.udp_bind(addr([0, 0, 0, 0], 0)).unwrap();
    let big = vec![0u8; 65_508];
    assert_eq!(
        s.udp_send_to(now, a, Some(addr(CLIENT, 9)), &big)
            .unwrap_err(),
        UdpError::MessageTooLong
    );
    for dst in [[255, 255, 255, 255], [10, 0, 0, 255]] {
        assert_eq!(
            s.udp_send_to(now, a, Some(addr(dst, 9)), b"x").unwrap_err(),
            UdpError::PermissionDenied
        );
    }
    s.udp_mut().set_broadcast(a, true).unwrap();
    s.udp_send_to(now, a, Some(addr([10, 0, 0, 255], 9)), b"x")
        .unwrap();
    assert_eq!(
        s.udp_send_to(now, a, Some(addr([192, 168, 0, 1], 9)), b"x")
            .unwrap_err(),
        UdpError::NetworkUnreachable
    );
}

#[test]
fn broadcast_reaches_a_wildcard_socket() {
    let (mut s, mut c) = pair();
    let mut clock = Clock(Instant::from_secs(1));
    let srv = s.udp_bind(addr([0, 0, 0, 0], 67)).unwrap();
    let cli = c.udp_bind(addr([0, 0, 0, 0], 68)).unwrap();
    c.udp_mut().set_broadcast(cli, true).unwrap();
    c.udp_send_to(
        clock.0,
        cli,
        Some(addr([255, 255, 255, 255], 67)),
        b"discover",
    )
    .unwrap();
    clock.tick(&mut [&mut s, &mut c]);
    assert_eq!(
        recv(&mut s, srv).unwrap(),
        (b"discover".to_vec(), addr(CLIENT, 68))
    );
}

// ---- fragments ----

#[test]
fn datagrams_over_the_mtu_leave_in_fragments_and_are_reassembled() {
    let (mut s, mut c) = pair();
    let mut clock = Clock(Instant::from_secs(1));
    let srv = s.udp_bind(addr([0, 0, 0, 0], 7000)).unwrap();
    let cli = c.udp_bind(addr([0, 0, 0, 0], 0)).unwrap();
    // The first one waits for ARP in fragments.
    for (k, len) in [8000usize, 1473, 8000, 65_507].into_iter().enumerate() {
        let d = pattern(len, k);
        c.udp_send_to(clock.0, cli, Some(addr(SERVER, 7000)), &d)
            .unwrap();
        clock.tick(&mut [&mut s, &mut c]);
        let (got, from) = recv(&mut s, srv).unwrap_or_else(|e| panic!("len {len}: {e}"));
        assert_eq!(got.len(), len);
        assert_eq!(got, d, "len {len}");
        s.udp_send_to(clock.0, srv, Some(from), &got).unwrap();
        clock.tick(&mut [&mut s, &mut c]);
        assert_eq!(recv(&mut c, cli).unwrap().0, d, "len {len} back");
    }
    // 8000 bytes: 6 fragments of 1480; 1473: 2; 65 507: 45.
    let frags = 6 + 2 + 6 + 45;
    assert_eq!(c.iface().stats().fragments_sent, frags);
    assert_eq!(s.iface().stats().reassembled, 4);
    assert_eq!(s.iface().stats().fragments_sent, frags);
    assert_eq!(c.iface().stats().reassembled, 4);
}

// ---- checksums ----

/// A UDP frame from the client's address, written straight onto the wire.
fn raw_udp(
    peer: &mut MemoryQueue,
    s_mac: EthernetAddress,
    dport: u16,
    data: &[u8],
    checksum: Option<u16>,
) {
    let c_mac = EthernetAddress([2, 0, 0, 0, 0, 2]);
    let ip = Ipv4Repr {
        src_addr: Ipv4Address::from(CLIENT),
        dst_addr: Ipv4Address::from(SERVER),
        protocol: IpProtocol::Udp,
        payload_len: 8 + data.len(),
        ttl: 64,
        ident: 9,
        dont_frag: true,
        dscp_ecn: 0,
    };
    let mut buf = vec![0u8; 14 + ip.buffer_len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: c_mac,
        dst_addr: s_mac,
        ethertype: EtherType::Ipv4,
        vlan: None,
    }
    .emit(&mut f);
    let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
    ip.emit(&mut p, true);
    let u = p.payload_mut();
    u[8..].copy_from_slice(data);
    UdpPacket::new_unchecked(&mut *u).emit(
        (ip.src_addr, 4444),
        (ip.dst_addr, dport),
        data.len(),
        true,
    );
    if let Some(c) = checksum {
        u[6..8].copy_from_slice(&c.to_be_bytes());
    }
    let mut pool = FramePool::new(4);
    let mut fr = pool.alloc().unwrap();
    fr.set_len(buf.len());
    fr.as_mut_slice().copy_from_slice(&buf);
    let mut v = vec![fr];
    assert_eq!(peer.tx_burst(&mut v, &mut pool), 1);
}

#[test]
fn zero_checksum_is_accepted_and_a_bad_one_dropped() {
    let (a, b) = MemoryNic::pair_with(&MemoryNicConfig::default()).unwrap();
    let mut s = Stack::new(cfg(SERVER), a.split_boxed().remove(0)).unwrap();
    let mut peer = b.split().remove(0);
    let now = Instant::from_secs(1);
    let srv = s.udp_bind(addr([0, 0, 0, 0], 7000)).unwrap();
    let mac = s.iface().config().mac;
    raw_udp(&mut peer, mac, 7000, b"no checksum", Some(0));
    raw_udp(&mut peer, mac, 7000, b"bad checksum", Some(0x1234));
    raw_udp(&mut peer, mac, 7000, b"good", None);
    // A poll takes half of what waits: poll until all three are in.
    s.poll(now);
    for _ in 0..2 {
        s.poll(now);
    }
    assert!(!s.rx_pending());
    assert_eq!(recv(&mut s, srv).unwrap().0, b"no checksum");
    assert_eq!(recv(&mut s, srv).unwrap().0, b"good");
    assert_eq!(recv(&mut s, srv).unwrap_err(), UdpError::WouldBlock);
    assert_eq!(s.stats().drops(DropReason::BadChecksum), 1);
    assert_eq!(s.udp().stats().bad_datagrams, 1);
}

// ---- RSS ----

#[test]
fn connected_ephemeral_ports_bring_replies_back_to_the_sending_queue() {
    let (mut servers, mut clients) = pair_with(2, |_| {});
    let mut clock = Clock(Instant::from_secs(1));
    // SO_REUSEPORT-like: the server binds the port on both queues.
    let srv: Vec<UdpId> = servers
        .iter_mut()
        .map(|s| s.udp_bind(addr([0, 0, 0, 0], 7000)).unwrap())
        .collect();
    let mut per_server_queue = [0usize; 2];
    for round in 0..8u8 {
        for q in 0..2 {
            let c = &mut clients[q];
            let id = c.udp_bind(addr([0, 0, 0, 0], 0)).unwrap();
            c.udp_connect(id, addr(SERVER, 7000)).unwrap();
            c.udp_send_to(clock.0, id, None, &[round, q as u8]).unwrap();
            let mut all: Vec<&mut Stack> = servers.iter_mut().chain(clients.iter_mut()).collect();
            clock.tick(&mut all);
            // Whichever server queue got it echoes it back.
            let mut echoed = 0;
            for (sq, s) in servers.iter_mut().enumerate() {
                while let Ok((d, from)) = recv(s, srv[sq]) {
                    per_server_queue[sq] += 1;
                    s.udp_send_to(clock.0, srv[sq], Some(from), &d).unwrap();
                    echoed += 1;
                }
            }
            assert_eq!(echoed, 1);
            let mut all: Vec<&mut Stack> = servers.iter_mut().chain(clients.iter_mut()).collect();
            clock.tick(&mut all);
            assert_eq!(recv(&mut clients[q], id).unwrap().0, [round, q as u8]);
            clients[q].udp_close(id).unwrap();
        }
    }
    // RSS spread the flows over both server queues.
    assert!(
        per_server_queue.iter().all(|&n| n > 0),
        "{per_server_queue:?}"
    );
}

/// Fragments carry no ports after the first, so the NIC steers them by the
/// address pair: a fragmented reply to a connected socket can be
/// reassembled on the other queue, which hands the whole datagram to the
/// socket's queue (`Stack::take_handoffs`/`input_handoff`) instead of
/// answering port unreachable.
#[test]
fn fragmented_replies_reassembled_on_the_other_queue_are_handed_to_the_socket() {
    let (mut servers, mut clients) = pair_with(2, |_| {});
    let mut clock = Clock(Instant::from_secs(1));
    let srv: Vec<UdpId> = servers
        .iter_mut()
        .map(|s| s.udp_bind(addr([0, 0, 0, 0], 7000)).unwrap())
        .collect();
    // Carries every handoff to its queue, as the runtime does.
    fn carry(stacks: &mut [Stack], now: Instant) -> usize {
        let mut moved = Vec::new();
        for s in stacks.iter_mut() {
            moved.extend(s.take_handoffs());
        }
        let n = moved.len();
        for h in moved {
            let q = h.queue();
            stacks[q].input_handoff(now, h);
        }
        n
    }
    let mut handed = 0;
    for q in 0..2 {
        for round in 0..3usize {
            let id = clients[q].udp_bind(addr([0, 0, 0, 0], 0)).unwrap();
            clients[q].udp_connect(id, addr(SERVER, 7000)).unwrap();
            let request = pattern(4000 + round, q);
            clients[q].udp_send_to(clock.0, id, None, &request).unwrap();
            let mut echoed = 0;
            for _ in 0..4 {
                let mut all: Vec<&mut Stack> =
                    servers.iter_mut().chain(clients.iter_mut()).collect();
                clock.tick(&mut all);
                handed += carry(&mut servers, clock.0);
                for (sq, s) in servers.iter_mut().enumerate() {
                    while let Ok((d, from)) = recv(s, srv[sq]) {
                        assert_eq!(d, request);
                        s.udp_send_to(clock.0, srv[sq], Some(from), &d).unwrap();
                        echoed += 1;
                    }
                }
                handed += carry(&mut clients, clock.0);
            }
            assert_eq!(echoed, 1, "queue {q} round {round}");
            assert_eq!(
                recv(&mut clients[q], id).unwrap().0,
                request,
                "queue {q} round {round}: the reply reached the socket's queue"
            );
            clients[q].udp_close(id).unwrap();
        }
    }
    // One of the two client queues is not the address pair's.
    assert!(handed > 0, "no datagram was handed over");
    for s in servers.iter().chain(clients.iter()) {
        assert_eq!(s.stats().drops(DropReason::NoSocket), 0);
        assert_eq!(s.iface().stats().icmp_errors_sent, 0);
    }
    let outs: u64 = clients.iter().map(|s| s.iface().stats().handoffs_out).sum();
    let ins: u64 = clients.iter().map(|s| s.iface().stats().handoffs_in).sum();
    assert_eq!(outs, ins);
    assert!(outs > 0);
}

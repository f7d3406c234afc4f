//! Closing a whole stack at shutdown (`Stack::close_all`), as a process exit
//! does on the kernel: two stacks over the in-memory NIC, in virtual time,
//! with loss on the closing side's link.

use mtcp_stack::nic::faults::{FaultConfig, FaultyQueue};
use mtcp_stack::nic::memory::{MemoryNic, MemoryNicConfig};
use mtcp_stack::stack::{Stack, StackConfig};
use mtcp_stack::tcp::SocketId;
use mtcp_stack::tcp::State;
use mtcp_stack::tcp::TcpError;
use mtcp_stack::time::{Duration, Instant};

mod support;

use support::{addr, CLIENT, SERVER};

const PORT: u16 = 7;

fn cfg(addr: [u8; 4]) -> StackConfig {
    support::stack_cfg(addr, 256, 8192, 2048)
}

/// A server and a client stack; the client's queue drops `loss` of the
/// frames both ways.
fn pair(loss: f64, seed: u64) -> (Stack, Stack) {
    pair_with(loss, seed, cfg(SERVER))
}

fn pair_with(loss: f64, seed: u64, server_cfg: StackConfig) -> (Stack, Stack) {
    let (a, b) = MemoryNic::pair_with(&MemoryNicConfig {
        queues: 1,
        ..MemoryNicConfig::default()
    })
    .unwrap();
    let server = Stack::new(server_cfg, a.split_boxed().remove(0)).unwrap();
    let faults = FaultConfig {
        drop: loss,
        seed,
        ..FaultConfig::default()
    };
    let q = FaultyQueue::new(b.split_boxed().remove(0), faults);
    let client = Stack::new(cfg(CLIENT), Box::new(q)).unwrap();
    (server, client)
}

fn tick(server: &mut Stack, client: &mut Stack, now: &mut Instant) {
    support::tick(&mut [server, client], now, Duration::from_micros(200));
}

fn pattern(len: usize, salt: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(7).wrapping_add(salt) % 251) as u8)
        .collect()
}

/// `n` connections client → server, accepted; returns (client, server) ids.
fn connect_n(
    server: &mut Stack,
    client: &mut Stack,
    n: usize,
    now: &mut Instant,
) -> (SocketId, Vec<(SocketId, SocketId)>) {
    let l = server
        .tcp_mut()
        .listen(addr([0, 0, 0, 0], PORT), 64)
        .unwrap();
    let cs: Vec<SocketId> = (0..n)
        .map(|_| {
            client
                .tcp_mut()
                .connect(*now, addr(SERVER, PORT), None)
                .unwrap()
        })
        .collect();
    let mut accepted = Vec::new();
    for _ in 0..50_000 {
        tick(server, client, now);
        while let Ok(id) = server.tcp_mut().accept(l) {
            accepted.push(id);
        }
        if accepted.len() == n
            && cs
                .iter()
                .all(|&c| client.tcp().state(c) == Ok(State::Established))
        {
            break;
        }
    }
    assert_eq!(accepted.len(), n, "every connection accepted");
    // Pair them by port.
    let pairs = cs
        .iter()
        .map(|&c| {
            let local = client.tcp().local_addr(c).unwrap();
            let s = *accepted
                .iter()
                .find(|&&s| server.tcp().peer_addr(s).unwrap() == local)
                .unwrap();
            (c, s)
        })
        .collect();
    (l, pairs)
}

/// Queues `len` bytes on every client socket (the send buffer takes them
/// all), closes the client stack, and ticks until it has nothing left to
/// do while the server reads; the server closes each connection at EOF.
/// Checks that each server socket received its bytes; returns the stacks.
fn write_then_close_all(loss: f64, seed: u64, conns: usize, len: usize) -> (Stack, Stack) {
    let (mut server, mut client) = pair(loss, seed);
    let mut now = Instant::from_secs(1);
    let (_l, pairs) = connect_n(&mut server, &mut client, conns, &mut now);
    let data: Vec<Vec<u8>> = (0..conns).map(|i| pattern(len, i as u32)).collect();
    for (i, &(c, _)) in pairs.iter().enumerate() {
        assert_eq!(
            client.tcp_mut().send(c, &data[i]),
            Ok(len),
            "fits the buffer"
        );
    }
    // The program ends here: everything it had is closed at once.
    assert_eq!(client.close_all(), conns);
    assert!(!client.closed_all());
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); conns];
    let mut eof = vec![false; conns];
    let mut buf = vec![0u8; 65536];
    let mut ticks = 0;
    while !(client.closed_all() && eof.iter().all(|&e| e)) {
        ticks += 1;
        assert!(
            ticks < 2_000_000,
            "closing stalled: {} unfinished, received {:?}",
            client.closing(),
            got.iter().map(Vec::len).collect::<Vec<_>>()
        );
        tick(&mut server, &mut client, &mut now);
        for (i, &(_, s)) in pairs.iter().enumerate() {
            if eof[i] {
                continue;
            }
            loop {
                match server.tcp_mut().recv(s, &mut buf) {
                    Ok(0) => {
                        eof[i] = true;
                        server.tcp_mut().close(s).unwrap();
                        break;
                    }
                    Ok(n) => got[i].extend_from_slice(&buf[..n]),
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("server recv on connection {i}: {e}"),
                }
            }
        }
    }
    for i in 0..conns {
        assert!(
            got[i] == data[i],
            "connection {i}: {} of {len} bytes",
            got[i].len()
        );
    }
    (server, client)
}

#[test]
fn close_all_delivers_queued_data_and_fin_over_a_lossy_link() {
    let (server, client) = write_then_close_all(0.03, 7, 1, 200_000);
    assert!(client.tcp().stats().retransmits > 0, "the link lost data");
    // Our FIN was acknowledged: nothing unfinished, no reset sent.
    assert_eq!(client.closing(), 0);
    assert_eq!(client.tcp().stats().resets_sent, 0);
    assert_eq!(client.tcp().stats().linger_resets, 0);
    assert_eq!(server.tcp().stats().resets_received, 0);
    assert_eq!(client.tcp().chunks_in_use(), 0);
}

#[test]
fn close_all_twenty_connections_at_once_over_a_lossy_link() {
    let (server, client) = write_then_close_all(0.02, 11, 20, 100_000);
    assert_eq!(client.closing(), 0);
    assert_eq!(client.tcp().stats().resets_sent, 0);
    assert_eq!(server.tcp().stats().resets_received, 0);
}

#[test]
fn close_all_resets_unaccepted_children_and_closes_listeners() {
    let (mut server, mut client) = pair(0.0, 1);
    let mut now = Instant::from_secs(1);
    let l = server
        .tcp_mut()
        .listen(addr([0, 0, 0, 0], PORT), 64)
        .unwrap();
    let c = client
        .tcp_mut()
        .connect(now, addr(SERVER, PORT), None)
        .unwrap();
    for _ in 0..100 {
        tick(&mut server, &mut client, &mut now);
    }
    assert_eq!(client.tcp().state(c), Ok(State::Established));
    // Never accepted: the listener and its child go, the child with a RST.
    assert_eq!(server.close_all(), 1, "the listener");
    assert!(server.tcp().state(l).is_err(), "the listener is gone");
    assert_eq!(server.tcp().stats().resets_sent, 1, "the child");
    for _ in 0..100 {
        tick(&mut server, &mut client, &mut now);
    }
    assert!(server.closed_all());
    assert_eq!(server.tcp().sockets_in_use(), 0);
    assert_eq!(client.tcp().state(c), Ok(State::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(
        client.tcp_mut().recv(c, &mut buf),
        Err(TcpError::ConnectionReset)
    );
}

#[test]
fn linger_bound_resets_what_is_unfinished_and_counts_it() {
    let mut small = cfg(SERVER);
    small.tcp.recv_buffer = 16 * 1024;
    let (mut server, mut client) = pair_with(0.0, 1, small);
    let mut now = Instant::from_secs(1);
    let (_l, pairs) = connect_n(&mut server, &mut client, 3, &mut now);
    // The server never reads: the client's data cannot all go out.
    let data = pattern(200_000, 0);
    for &(c, _) in &pairs {
        client.tcp_mut().send(c, &data).unwrap();
    }
    client.close_all();
    for _ in 0..2_000 {
        tick(&mut server, &mut client, &mut now);
    }
    assert_eq!(client.closing(), 3, "stuck behind the peer's zero window");
    assert_eq!(client.abort_closing(), 3);
    assert_eq!(client.tcp().stats().linger_resets, 3);
    assert_eq!(client.closing(), 0);
    assert!(!client.closed_all(), "the RSTs are still queued");
    for _ in 0..10 {
        tick(&mut server, &mut client, &mut now);
    }
    assert!(client.closed_all());
    assert_eq!(client.tcp().sockets_in_use(), 0);
    assert_eq!(server.tcp().stats().resets_received, 3);
    for &(_, s) in &pairs {
        assert_eq!(server.tcp().state(s), Ok(State::Closed));
    }
}

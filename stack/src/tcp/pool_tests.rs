//! Buffer-pool fairness at the engine level: slow readers cannot take the
//! pool from everyone else (the reserve, pressure on receive windows, the
//! per-connection caps). One [`TcpStack`] is driven by many simulated
//! peers with hand-made segments.

use super::stack::{TcpConfig, TcpStack};
use super::types::SocketId;
use super::TcpError;
use crate::time::{Duration, Instant};
use crate::wire::ipv4::Ipv4Address;
use crate::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;
use std::collections::HashMap;
use std::net::SocketAddrV4;

const LOCAL: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const REMOTE: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const LPORT: u16 = 80;
const RISS: u32 = 5_000;
const MSS: usize = 512;
const RECV_CAP: usize = 16 * 1024;

/// What we last told one peer.
#[derive(Debug, Clone, Default)]
struct Seen {
    iss: Option<SeqNumber>,
    ack: u32,
    window: u16,
    data: Vec<u8>,
}

/// One simulated sender: pushes MSS-sized segments inside our window and
/// goes back to our ACK when it stops moving (a crude go-back-N).
#[derive(Debug, Clone, Copy)]
struct Peer {
    port: u16,
    /// Next byte to send, relative to its ISS + 1.
    next: u32,
    last_ack: u32,
    stuck: u32,
}

struct Net {
    s: TcpStack,
    now: Instant,
    seen: HashMap<u16, Seen>,
}

fn seg(port: u16, flags: TcpFlags, seq: u32, ack: SeqNumber, payload: &[u8]) -> TcpRepr<'_> {
    TcpRepr {
        src_port: port,
        dst_port: LPORT,
        seq: SeqNumber(RISS.wrapping_add(seq)),
        ack,
        flags,
        window: 65535,
        urgent: 0,
        options: TcpOptions {
            mss: if flags.syn() { Some(MSS as u16) } else { None },
            ..TcpOptions::default()
        },
        payload,
    }
}

impl Net {
    fn input(&mut self, r: &TcpRepr) {
        self.s.input(self.now, REMOTE, LOCAL, r);
    }

    /// Runs dispatch and remembers, per peer port, our last ACK and window.
    fn flush(&mut self) {
        let seen = &mut self.seen;
        self.s.dispatch(self.now, usize::MAX, &mut |_, _, r| {
            let e = seen.entry(r.dst_port).or_default();
            if r.flags.syn() {
                e.iss = Some(r.seq);
            }
            if r.flags.ack() {
                e.ack = r.ack.0.wrapping_sub(RISS + 1);
                e.window = r.window;
            }
            e.data.extend_from_slice(r.payload);
            true
        });
    }

    fn tick(&mut self) {
        self.now += Duration::from_millis(10);
        self.s.poll_timers(self.now);
        self.s.wake_pending();
        self.flush();
    }

    fn our_seq(&self, port: u16, n: u32) -> SeqNumber {
        let iss = self.seen[&port].iss.expect("SYN-ACK seen");
        SeqNumber(iss.0.wrapping_add(n))
    }

    /// A three-way handshake from `port`; returns the accepted socket.
    fn connect(&mut self, listener: SocketId, port: u16) -> SocketId {
        self.input(&seg(port, TcpFlags::SYN, 0, SeqNumber(0), &[]));
        self.flush();
        let ack = self.our_seq(port, 1);
        self.input(&seg(port, TcpFlags::ACK, 1, ack, &[]));
        self.flush();
        self.s.accept(listener).expect("accepted")
    }

    /// One round of a slow reader's peer pushing data.
    fn push(&mut self, p: &mut Peer, data: &[u8; MSS]) {
        let seen = self.seen[&p.port].clone();
        if seen.ack == p.last_ack && p.next > seen.ack {
            p.stuck += 1;
            if p.stuck > 20 {
                // Retransmit from the ACK.
                p.next = seen.ack;
                p.stuck = 0;
            }
        } else {
            p.stuck = 0;
        }
        p.last_ack = seen.ack;
        let edge = seen.ack + u32::from(seen.window);
        let ack = self.our_seq(p.port, 1);
        for _ in 0..4 {
            if p.next + MSS as u32 > edge {
                break;
            }
            let r = seg(p.port, TcpFlags::ACK, 1 + p.next, ack, data);
            self.input(&r);
            p.next += MSS as u32;
        }
    }
}

#[test]
fn slow_readers_cannot_starve_a_new_connection() {
    let cfg = TcpConfig {
        max_connections: 256,
        chunk_size: 512,
        chunk_count: 512,
        recv_buffer: RECV_CAP,
        timestamps: false,
        sack: false,
        window_scaling: false,
        seed: 11,
        ..TcpConfig::default()
    };
    let mut n = Net {
        s: TcpStack::new(cfg, &[LOCAL]).unwrap(),
        now: Instant::from_secs(1),
        seen: HashMap::new(),
    };
    let l =
        n.s.listen(SocketAddrV4::new(Ipv4Address::UNSPECIFIED, LPORT), 200)
            .unwrap();
    // 100 connections whose owners never read, each pushing data.
    let mut slow = Vec::new();
    let mut ids = Vec::new();
    for k in 0..100u16 {
        let port = 20_000 + k;
        ids.push(n.connect(l, port));
        slow.push(Peer {
            port,
            next: 0,
            last_ack: 0,
            stuck: 0,
        });
    }
    let data = [0x5a; MSS];
    for _ in 0..300 {
        for p in &mut slow {
            n.push(p, &data);
        }
        n.tick();
    }
    let pool_chunks = n.s.pool.capacity();
    assert!(
        n.s.chunks_in_use() > pool_chunks / 2,
        "the slow readers hold the pool"
    );
    assert!(n.s.stats().pool_pressure >= 1, "{}", n.s.stats());
    assert_eq!(n.s.stats().pool_under_pressure, 1);
    // No connection holds more than its receive cap.
    for &id in &ids {
        let t = n.s.tcbs.get_mut(id).unwrap();
        assert!(t.rcvbuf.len() <= RECV_CAP);
        assert!(t.rcvbuf.chunks() <= RECV_CAP / 512 + 1);
    }

    // A new connection: a request, read by its server, and an answer,
    // while the slow readers keep pushing.
    let port = 60_000;
    let id = n.connect(l, port);
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let ack = n.our_seq(port, 1);
    n.input(&seg(port, TcpFlags::ACK | TcpFlags::PSH, 1, ack, request));
    for p in &mut slow {
        n.push(p, &data);
    }
    n.tick();
    let mut buf = [0u8; 256];
    let got = n.s.recv(id, &mut buf).expect("the request was stored");
    assert_eq!(&buf[..got], request);
    let answer = [b'a'; 300];
    assert_eq!(n.s.send(id, &answer), Ok(300));
    for p in &mut slow {
        n.push(p, &data);
    }
    n.tick();
    assert_eq!(n.seen[&port].data, answer.to_vec());
    assert!(n.s.stats().pool_reserve_refused > 0);
    // And the slow readers are still capped and alive.
    for &id in &ids {
        let t = n.s.tcbs.get_mut(id).unwrap();
        assert!(t.rcvbuf.len() <= RECV_CAP);
    }
    assert_ne!(n.s.recv(ids[0], &mut buf), Err(TcpError::ConnectionReset));
}

#[test]
fn pressure_offers_no_growth_but_never_retracts() {
    let cfg = TcpConfig {
        max_connections: 16,
        chunk_size: 512,
        chunk_count: 64,
        recv_buffer: RECV_CAP,
        timestamps: false,
        sack: false,
        window_scaling: false,
        seed: 3,
        ..TcpConfig::default()
    };
    let mut n = Net {
        s: TcpStack::new(cfg, &[LOCAL]).unwrap(),
        now: Instant::from_secs(1),
        seen: HashMap::new(),
    };
    let l =
        n.s.listen(SocketAddrV4::new(Ipv4Address::UNSPECIFIED, LPORT), 8)
            .unwrap();
    let mut peers: Vec<Peer> = (0..4u16)
        .map(|k| {
            n.connect(l, 30_000 + k);
            Peer {
                port: 30_000 + k,
                next: 0,
                last_ack: 0,
                stuck: 0,
            }
        })
        .collect();
    let data = [1u8; MSS];
    let mut edges: HashMap<u16, u32> = HashMap::new();
    for _ in 0..100 {
        for p in &mut peers {
            n.push(p, &data);
        }
        n.tick();
        for p in &peers {
            let s = &n.seen[&p.port];
            let edge = s.ack + u32::from(s.window);
            let prev = edges.insert(p.port, edge).unwrap_or(0);
            assert!(edge >= prev, "right edge retracted: {prev} -> {edge}");
        }
    }
    assert!(n.s.stats().pool_pressure >= 1);
    // 64 chunks of 512 bytes could not hold 4 × 16 KiB: the windows closed
    // before the caps, and the pool kept its reserve.
    assert!(n.s.pool.free_chunks() >= n.s.pool.reserve());
}

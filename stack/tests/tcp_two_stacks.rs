//! Two `TcpStack`s in one thread, exchanging the segments `dispatch` emits
//! over a simulated link in virtual time, with seeded loss, duplication
//! and reordering. Every byte must arrive exactly once and in order.

use mtcp_stack::rand::Rng;
use mtcp_stack::tcp::{SocketId, State, TcpConfig, TcpError, TcpStack};
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::ipv4::Ipv4Address;
use mtcp_stack::wire::tcp::TcpRepr;
use std::net::SocketAddrV4;

const A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

struct InFlight {
    at: Instant,
    order: u64,
    to_b: bool,
    src: Ipv4Address,
    dst: Ipv4Address,
    repr: TcpRepr<'static>,
    data: Vec<u8>,
}

#[derive(Clone, Copy)]
struct Faults {
    drop: f64,
    dup: f64,
    reorder: f64,
}

struct Net {
    a: TcpStack,
    b: TcpStack,
    now: Instant,
    queue: Vec<InFlight>,
    rng: Rng,
    faults: Faults,
    latency: Duration,
    order: u64,
    delivered: u64,
}

impl Net {
    fn new(seed: u64, faults: Faults, cfg: TcpConfig) -> Net {
        let a = TcpStack::new(
            TcpConfig {
                seed: seed ^ 0xa,
                ..cfg.clone()
            },
            &[A],
        )
        .unwrap();
        let b = TcpStack::new(
            TcpConfig {
                seed: seed ^ 0xb,
                ..cfg
            },
            &[B],
        )
        .unwrap();
        Net {
            a,
            b,
            now: Instant::ZERO,
            queue: Vec::new(),
            rng: Rng::new(seed),
            faults,
            latency: Duration::from_micros(500),
            order: 0,
            delivered: 0,
        }
    }

    fn flush(&mut self) {
        for to_b in [true, false] {
            let mut out: Vec<(Ipv4Address, Ipv4Address, TcpRepr<'static>, Vec<u8>)> = Vec::new();
            let stack = if to_b { &mut self.a } else { &mut self.b };
            stack.dispatch(self.now, 1000, &mut |s, d, r| {
                out.push((s, d, detach(r), r.payload.to_vec()));
                true
            });
            for (src, dst, repr, data) in out {
                if self.rng.chance(self.faults.drop) {
                    continue;
                }
                let copies = if self.rng.chance(self.faults.dup) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let mut at = self.now + self.latency;
                    if self.rng.chance(self.faults.reorder) {
                        at += Duration::from_micros(self.rng.range(100, 3000));
                    }
                    self.order += 1;
                    self.queue.push(InFlight {
                        at,
                        order: self.order,
                        to_b,
                        src,
                        dst,
                        repr,
                        data: data.clone(),
                    });
                }
            }
        }
    }

    /// Advances to the next event (a delivery or a timer), at most `max`.
    fn step(&mut self, max: Duration) {
        self.flush();
        let next_pkt = self.queue.iter().map(|p| p.at).min();
        let next_timer = [self.a.next_deadline(), self.b.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        let mut next = self.now + max;
        for t in [next_pkt, next_timer].into_iter().flatten() {
            next = next.min(t.max(self.now + Duration::from_micros(1)));
        }
        self.now = next;
        // Deliver everything due, in order of arrival time.
        self.queue.sort_by_key(|p| (p.at, p.order));
        let due: Vec<InFlight> = {
            let n = self.queue.iter().take_while(|p| p.at <= self.now).count();
            self.queue.drain(..n).collect()
        };
        for p in due {
            let mut repr = p.repr;
            repr.payload = &p.data;
            if std::env::var_os("MTCP_TRACE").is_some() {
                eprintln!(
                    "{} {} {:?} seq={} ack={} len={} win={} {:?}",
                    self.now,
                    if p.to_b { "A>B" } else { "B>A" },
                    repr.flags,
                    repr.seq,
                    repr.ack,
                    repr.payload.len(),
                    repr.window,
                    repr.options
                );
            }
            let stack = if p.to_b { &mut self.b } else { &mut self.a };
            stack.input(self.now, p.src, p.dst, &repr);
            self.delivered += 1;
        }
        self.a.poll_timers(self.now);
        self.b.poll_timers(self.now);
        self.flush();
    }
}

fn detach(r: &TcpRepr) -> TcpRepr<'static> {
    TcpRepr {
        src_port: r.src_port,
        dst_port: r.dst_port,
        seq: r.seq,
        ack: r.ack,
        flags: r.flags,
        window: r.window,
        urgent: r.urgent,
        options: r.options,
        payload: &[],
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    let mut v = vec![0u8; len];
    r.fill(&mut v);
    v
}

struct Side {
    id: SocketId,
    out: Vec<u8>,
    sent: usize,
    shut: bool,
    got: Vec<u8>,
    eof: bool,
}

impl Side {
    fn pump(&mut self, s: &mut TcpStack) {
        while self.sent < self.out.len() {
            match s.send(self.id, &self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(TcpError::WouldBlock) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        if self.sent == self.out.len() && !self.shut {
            s.shutdown_write(self.id).unwrap();
            self.shut = true;
        }
        let mut buf = [0u8; 4096];
        while !self.eof {
            match s.recv(self.id, &mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(TcpError::WouldBlock) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
    }
}

/// Transfers `a_len` bytes A→B and `b_len` bytes B→A, both half-closing.
fn transfer(seed: u64, faults: Faults, a_len: usize, b_len: usize, cfg: TcpConfig) -> Net {
    let mut net = Net::new(seed, faults, cfg);
    let l = net.b.listen(SocketAddrV4::new(B, 80), 16).unwrap();
    let c = net
        .a
        .connect(net.now, SocketAddrV4::new(B, 80), None)
        .unwrap();
    let mut server: Option<Side> = None;
    let mut client = Side {
        id: c,
        out: pattern(a_len, seed),
        sent: 0,
        shut: false,
        got: Vec::new(),
        eof: false,
    };
    let b_data = pattern(b_len, seed + 1);
    let limit = Instant::from_secs(600);
    loop {
        net.step(Duration::from_millis(10));
        if server.is_none() {
            if let Ok(id) = net.b.accept(l) {
                server = Some(Side {
                    id,
                    out: b_data.clone(),
                    sent: 0,
                    shut: false,
                    got: Vec::new(),
                    eof: false,
                });
            }
        }
        if net.a.state(c).unwrap() != State::SynSent {
            client.pump(&mut net.a);
        }
        if let Some(s) = server.as_mut() {
            s.pump(&mut net.b);
        }
        let done = client.eof && server.as_ref().is_some_and(|s| s.eof);
        if done {
            break;
        }
        assert!(
            net.now < limit,
            "seed {seed}: transfer stalled: client sent {} got {}, server {:?}",
            client.sent,
            client.got.len(),
            server.as_ref().map(|s| (s.sent, s.got.len()))
        );
    }
    let s = server.unwrap();
    assert!(
        s.got == client.out,
        "seed {seed}: A→B data differs ({} vs {} bytes)",
        s.got.len(),
        client.out.len()
    );
    assert!(
        client.got == b_data,
        "seed {seed}: B→A data differs ({} vs {} bytes)",
        client.got.len(),
        b_data.len()
    );
    net.a.close(c).unwrap();
    net.b.close(s.id).unwrap();
    net.b.close(l).unwrap();
    // Let the FIN exchange and TIME-WAIT finish.
    let end = net.now + Duration::from_secs(200);
    while net.now < end {
        net.step(Duration::from_secs(1));
    }
    assert_eq!(net.a.sockets_in_use(), 0, "seed {seed}: A sockets");
    assert_eq!(net.b.sockets_in_use(), 0, "seed {seed}: B sockets");
    assert_eq!(net.a.chunks_in_use(), 0, "seed {seed}: A chunks");
    assert_eq!(net.b.chunks_in_use(), 0, "seed {seed}: B chunks");
    net
}

const CLEAN: Faults = Faults {
    drop: 0.0,
    dup: 0.0,
    reorder: 0.0,
};

#[test]
fn clean_link_small_transfer() {
    let net = transfer(1, CLEAN, 10_000, 5_000, TcpConfig::default());
    assert_eq!(net.a.stats().retransmits, 0);
}

#[test]
fn clean_link_megabytes_both_ways() {
    transfer(2, CLEAN, 3 << 20, 2 << 20, TcpConfig::default());
}

#[test]
fn lossy_link_every_byte_once_in_order() {
    let faults = Faults {
        drop: 0.02,
        dup: 0.01,
        reorder: 0.05,
    };
    for seed in 0..8 {
        transfer(100 + seed, faults, 300_000, 200_000, TcpConfig::default());
    }
}

#[test]
fn heavy_loss_small_transfer() {
    let faults = Faults {
        drop: 0.10,
        dup: 0.05,
        reorder: 0.10,
    };
    for seed in 0..6 {
        transfer(200 + seed, faults, 50_000, 50_000, TcpConfig::default());
    }
}

#[test]
fn lossy_link_newreno_without_sack_or_timestamps() {
    let faults = Faults {
        drop: 0.03,
        dup: 0.01,
        reorder: 0.03,
    };
    let cfg = TcpConfig {
        congestion: mtcp_stack::tcp::CongestionKind::NewReno,
        sack: false,
        timestamps: false,
        window_scaling: false,
        ..TcpConfig::default()
    };
    let mut fast = 0;
    for seed in 0..6 {
        // Mostly one way: duplicate ACKs must be pure ACKs (RFC 5681 §2),
        // which a bulk reverse stream would replace by data segments.
        let net = transfer(300 + seed, faults, 300_000, 1_000, cfg.clone());
        fast += net.a.stats().fast_retransmits + net.b.stats().fast_retransmits;
    }
    assert!(fast > 0, "no fast retransmit in lossy runs");
}

#[test]
fn lossy_link_sack_recovery_is_used() {
    let faults = Faults {
        drop: 0.03,
        dup: 0.0,
        reorder: 0.0,
    };
    let mut fast = 0;
    let mut rto = 0;
    for seed in 0..4 {
        let net = transfer(400 + seed, faults, 1 << 20, 1 << 18, TcpConfig::default());
        fast += net.a.stats().fast_retransmits;
        rto += net.a.stats().rto_expired;
    }
    assert!(fast > 0, "SACK recovery never started");
    assert!(fast > rto, "recovery mostly by RTO: fast {fast}, rto {rto}");
}

#[test]
fn small_buffers_and_chunks() {
    let cfg = TcpConfig {
        chunk_size: 256,
        chunk_count: 512,
        send_buffer: 8 * 1024,
        recv_buffer: 4 * 1024,
        ..TcpConfig::default()
    };
    let faults = Faults {
        drop: 0.02,
        dup: 0.02,
        reorder: 0.05,
    };
    for seed in 0..4 {
        transfer(500 + seed, faults, 100_000, 60_000, cfg.clone());
    }
}

/// One connection per request (connect, 64-byte request and response,
/// close) through a tiny ephemeral port range: TIME-WAIT is honoured and
/// safely reused, so the ports never run out.
fn connection_per_request(client_closes_first: bool) -> Net {
    let cfg = TcpConfig {
        ephemeral_ports: (40000, 40007),
        ..TcpConfig::default()
    };
    let mut net = Net::new(77, CLEAN, cfg);
    let l = net.b.listen(SocketAddrV4::new(B, 80), 64).unwrap();
    let remote = SocketAddrV4::new(B, 80);
    let mut done = 0;
    let start = net.now;
    while done < 100 {
        let c = match net.a.connect(net.now, remote, None) {
            Ok(c) => c,
            Err(TcpError::AddrNotAvailable) => {
                net.step(Duration::from_millis(100));
                continue;
            }
            Err(e) => panic!("connect: {e}"),
        };
        let mut server = None;
        let mut got_req = 0;
        let mut got_resp = 0;
        let mut sent_req = false;
        let mut closed = (false, false);
        let deadline = net.now + Duration::from_secs(30);
        loop {
            net.step(Duration::from_millis(5));
            assert!(net.now < deadline, "request {done} stalled");
            if server.is_none() {
                server = net.b.accept(l).ok();
            }
            if !sent_req && net.a.state(c) == Ok(State::Established) {
                assert_eq!(net.a.send(c, &[7; 64]), Ok(64));
                sent_req = true;
            }
            let mut buf = [0u8; 128];
            if let Some(s) = server {
                while let Ok(n) = net.b.recv(s, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    got_req += n;
                    if got_req == 64 {
                        assert_eq!(net.b.send(s, &[9; 64]), Ok(64));
                        if !client_closes_first {
                            net.b.close(s).unwrap();
                            closed.1 = true;
                        }
                    }
                }
                if client_closes_first && closed.0 && !closed.1 && net.b.recv(s, &mut buf) == Ok(0)
                {
                    net.b.close(s).unwrap();
                    closed.1 = true;
                }
            }
            while let Ok(n) = net.a.recv(c, &mut buf) {
                if n == 0 {
                    break;
                }
                got_resp += n;
            }
            if got_resp == 64 && !closed.0 {
                net.a.close(c).unwrap();
                closed.0 = true;
            }
            if closed.0 && closed.1 {
                break;
            }
        }
        done += 1;
    }
    let elapsed = net.now - start;
    // Without reuse, 100 connections over 8 ports would need 12 rounds of
    // 60 s TIME-WAIT.
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    net
}

#[test]
fn connection_per_request_client_holds_time_wait() {
    let net = connection_per_request(true);
    assert!(net.a.stats().time_wait_reused > 0);
}

#[test]
fn connection_per_request_server_holds_time_wait() {
    let net = connection_per_request(false);
    assert!(net.b.stats().time_wait_reused > 0);
}

/// smoltcp's netsim, with more seeds: a sweep of loss rates.
#[test]
fn loss_rate_sweep() {
    for (i, drop) in [0.0, 0.005, 0.01, 0.05, 0.1, 0.2].into_iter().enumerate() {
        for seed in 0..3 {
            let faults = Faults {
                drop,
                dup: drop / 2.0,
                reorder: drop,
            };
            transfer(
                1000 + 10 * i as u64 + seed,
                faults,
                64 * 1024,
                48 * 1024,
                TcpConfig::default(),
            );
        }
    }
}

#[test]
fn newreno_and_cubic_both_complete() {
    let faults = Faults {
        drop: 0.01,
        dup: 0.0,
        reorder: 0.01,
    };
    for kind in [
        mtcp_stack::tcp::CongestionKind::NewReno,
        mtcp_stack::tcp::CongestionKind::Cubic,
    ] {
        let cfg = TcpConfig {
            congestion: kind,
            ..TcpConfig::default()
        };
        transfer(2000, faults, 1 << 20, 1 << 20, cfg);
    }
}

/// Throughput of the engine alone (no simulated latency): run with
/// `cargo test --release -p mtcp-stack --test tcp_two_stacks bulk_speed -- --ignored --nocapture`.
#[test]
#[ignore = "measurement: run with --ignored --nocapture (release)"]
fn bulk_speed() {
    let mut a = TcpStack::new(TcpConfig::default(), &[A]).unwrap();
    let mut b = TcpStack::new(TcpConfig::default(), &[B]).unwrap();
    let l = b.listen(SocketAddrV4::new(B, 80), 4).unwrap();
    let mut now = Instant::ZERO;
    let c = a.connect(now, SocketAddrV4::new(B, 80), None).unwrap();
    let total: usize = 512 << 20;
    let chunk = vec![0x42u8; 64 * 1024];
    let mut buf = vec![0u8; 64 * 1024];
    let (mut sent, mut got) = (0usize, 0usize);
    let mut s = None;
    let mut frame = vec![0u8; 2048];
    let start = std::time::Instant::now();
    let mut segs = 0u64;
    while got < total {
        now += Duration::from_micros(10);
        a.poll_timers(now);
        b.poll_timers(now);
        if sent < total {
            if let Ok(n) = a.send(c, &chunk[..chunk.len().min(total - sent)]) {
                sent += n;
            }
        }
        let mut to_b: Vec<(TcpRepr<'static>, usize)> = Vec::new();
        let mut store: Vec<u8> = Vec::new();
        a.dispatch(now, 256, &mut |_, _, r| {
            frame[..r.payload.len()].copy_from_slice(r.payload);
            store.extend_from_slice(&frame[..r.payload.len()]);
            to_b.push((detach(r), r.payload.len()));
            true
        });
        let mut off = 0;
        for (mut r, len) in to_b {
            r.payload = &store[off..off + len];
            off += len;
            b.input(now, A, B, &r);
            segs += 1;
        }
        if s.is_none() {
            s = b.accept(l).ok();
        }
        if let Some(s) = s {
            while let Ok(n) = b.recv(s, &mut buf) {
                if n == 0 {
                    break;
                }
                got += n;
            }
        }
        let mut to_a: Vec<TcpRepr<'static>> = Vec::new();
        b.dispatch(now, 256, &mut |_, _, r| {
            to_a.push(detach(r));
            true
        });
        for r in to_a {
            a.input(now, B, A, &r);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{} MiB in {:.3} s: {:.2} Gbit/s, {:.2} Mseg/s",
        total >> 20,
        secs,
        total as f64 * 8.0 / secs / 1e9,
        segs as f64 / secs / 1e6
    );
}

/// Many flows at once over a lossy link: the flow table, the TX lists and
/// the shared chunk pool keep every stream intact.
#[test]
fn many_parallel_flows() {
    let faults = Faults {
        drop: 0.02,
        dup: 0.01,
        reorder: 0.02,
    };
    let cfg = TcpConfig {
        max_connections: 256,
        chunk_count: 4096,
        ..TcpConfig::default()
    };
    let mut net = Net::new(4242, faults, cfg);
    let l = net.b.listen(SocketAddrV4::new(B, 80), 256).unwrap();
    const FLOWS: usize = 100;
    let mut clients: Vec<Side> = (0..FLOWS)
        .map(|i| Side {
            id: net
                .a
                .connect(net.now, SocketAddrV4::new(B, 80), None)
                .unwrap(),
            out: pattern(20_000 + i * 97, i as u64),
            sent: 0,
            shut: false,
            got: Vec::new(),
            eof: false,
        })
        .collect();
    let mut servers: Vec<Side> = Vec::new();
    let limit = Instant::from_secs(300);
    loop {
        net.step(Duration::from_millis(10));
        while let Ok(id) = net.b.accept(l) {
            // The server echoes what it receives, then half-closes.
            servers.push(Side {
                id,
                out: Vec::new(),
                sent: 0,
                shut: false,
                got: Vec::new(),
                eof: false,
            });
        }
        for c in clients.iter_mut() {
            if net.a.state(c.id).unwrap() != State::SynSent {
                c.pump(&mut net.a);
            }
        }
        for s in servers.iter_mut() {
            let before = s.got.len();
            let mut buf = [0u8; 4096];
            while let Ok(n) = net.b.recv(s.id, &mut buf) {
                if n == 0 {
                    s.eof = true;
                    break;
                }
                s.got.extend_from_slice(&buf[..n]);
            }
            if s.got.len() > before {
                s.out.extend_from_slice(&s.got[before..]);
            }
            while s.sent < s.out.len() {
                match net.b.send(s.id, &s.out[s.sent..]) {
                    Ok(n) => s.sent += n,
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("server send: {e}"),
                }
            }
            if s.eof && s.sent == s.out.len() && !s.shut {
                net.b.shutdown_write(s.id).unwrap();
                s.shut = true;
            }
        }
        if clients.iter().all(|c| c.eof) {
            break;
        }
        assert!(
            net.now < limit,
            "stalled: {} of {FLOWS} done",
            clients.iter().filter(|c| c.eof).count()
        );
    }
    for c in &clients {
        assert!(c.got == c.out, "flow {:?}: echo differs", c.id);
    }
    for c in clients {
        net.a.close(c.id).unwrap();
    }
    for s in servers {
        net.b.close(s.id).unwrap();
    }
    net.b.close(l).unwrap();
    let end = net.now + Duration::from_secs(200);
    while net.now < end {
        net.step(Duration::from_secs(1));
    }
    assert_eq!((net.a.sockets_in_use(), net.b.sockets_in_use()), (0, 0));
    assert_eq!((net.a.chunks_in_use(), net.b.chunks_in_use()), (0, 0));
}

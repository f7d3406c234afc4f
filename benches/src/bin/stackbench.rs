//! A deterministic driver for profiling the stack alone: two `Stack`s in one
//! thread joined by the in-memory NIC, synthetic time, no executor.
//!
//! ```sh
//! cargo run --release -p benches --bin stackbench -- echo [N]
//! cargo run --release -p benches --bin stackbench -- connect [N]
//! cargo run --release -p benches --bin stackbench -- bulk [MBYTES]
//! ```
//!
//! `echo`: 50 connections, each doing N/50 64-byte request/response
//! transactions. `connect`: N short connections, 50 at a time, each the
//! `compare connect` cycle (connect, 64 bytes each way, the server closes
//! first and keeps the TIME-WAIT, the client closes on the end of stream).
//! `bulk`: one connection, MBYTES MiB client → server. It prints ticks,
//! frames per transaction (or per MiB) and wall time; run it under
//! `valgrind --tool=callgrind` for repeatable instruction counts.

use std::net::SocketAddrV4;
use std::time::Instant as StdInstant;

use clap::{Parser, Subcommand};

use mtcp_stack::nic::memory::{MemoryNic, MemoryNicConfig};
use mtcp_stack::stack::{Stack, StackConfig};
use mtcp_stack::tcp::SocketId;
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

const SERVER: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const CLIENT: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const PORT: u16 = 8080;

fn stacks() -> (Stack, Stack) {
    let (a, b) = MemoryNic::pair_with(&MemoryNicConfig {
        ring_size: 4096,
        ..MemoryNicConfig::default()
    })
    .expect("memory nic");
    let mk = |addr, nic| {
        Stack::new(
            StackConfig {
                addr: Ipv4Cidr {
                    address: addr,
                    prefix_len: 24,
                },
                ..StackConfig::default()
            },
            nic,
        )
        .expect("stack")
    };
    let server = mk(SERVER, a.split_boxed().remove(0));
    let client = mk(CLIENT, b.split_boxed().remove(0));
    (server, client)
}

/// One tick of each side; `now` advances 1 µs per tick.
struct Sim {
    server: Stack,
    client: Stack,
    now: Instant,
    ticks: u64,
}

impl Sim {
    /// Two fresh stacks at time zero.
    fn new() -> Self {
        let (server, client) = stacks();
        Sim {
            server,
            client,
            now: Instant::ZERO,
            ticks: 0,
        }
    }

    fn tick(&mut self) {
        self.now += Duration::from_micros(1);
        self.ticks += 1;
        self.server.poll(self.now);
        self.server.flush(self.now);
        self.client.poll(self.now);
        self.client.flush(self.now);
    }
}

/// Where a measurement started: wall clock, each side's frames sent, ticks.
struct Start {
    t0: StdInstant,
    f0: u64,
    fs0: u64,
    k0: u64,
}

impl Start {
    /// Now.
    fn now(sim: &Sim) -> Self {
        Start {
            t0: StdInstant::now(),
            f0: sim.client.stats().tx_frames,
            fs0: sim.server.stats().tx_frames,
            k0: sim.ticks,
        }
    }

    /// Prints `done` operations (`unit`s) of `what` since the start: the
    /// rate, and ticks and each side's frames per operation.
    fn report(&self, sim: &Sim, what: &str, unit: &str, done: u64) {
        let dt = self.t0.elapsed().as_secs_f64();
        let per = |n: u64| n as f64 / done as f64;
        println!(
            "{what}: {done} {unit} in {dt:.3} s = {:.0} {unit}/s; ticks/{unit} {:.3}; client frames/{unit} {:.3}; server frames/{unit} {:.3}",
            done as f64 / dt,
            per(sim.ticks - self.k0),
            per(sim.client.stats().tx_frames - self.f0),
            per(sim.server.stats().tx_frames - self.fs0),
        );
    }
}

fn connect(sim: &mut Sim, conns: usize) -> (Vec<SocketId>, Vec<SocketId>) {
    let listener = sim
        .server
        .tcp_mut()
        .listen(SocketAddrV4::new(SERVER, PORT), 1024)
        .expect("listen");
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    // The first connection alone, then the rest: until the server's MAC is
    // resolved the client's stack holds only a few frames for it (ARP's
    // per-neighbour queue, 8), and a dropped SYN would wait for its 1 s
    // retransmission (a million ticks).
    for batch in [1, conns - 1] {
        for _ in 0..batch {
            let now = sim.now;
            clients.push(
                sim.client
                    .tcp_mut()
                    .connect(now, SocketAddrV4::new(SERVER, PORT), None)
                    .expect("connect"),
            );
        }
        for _ in 0..10_000 {
            sim.tick();
            while let Ok(s) = sim.server.tcp_mut().accept(listener) {
                servers.push(s);
            }
            if servers.len() == clients.len() {
                break;
            }
        }
    }
    assert_eq!(servers.len(), conns, "not every connection was accepted");
    (clients, servers)
}

fn echo(total: u64) {
    let mut sim = Sim::new();
    let conns = 50;
    let (clients, servers) = connect(&mut sim, conns);
    let req = [7u8; 64];
    let mut buf = [0u8; 2048];
    for &c in &clients {
        sim.client.tcp_mut().send(c, &req).expect("send");
    }
    let start = Start::now(&sim);
    let mut done = 0u64;
    let mut want = vec![64usize; conns];
    while done < total {
        sim.tick();
        for &s in &servers {
            let tcp = sim.server.tcp_mut();
            if let Ok(n) = tcp.recv(s, &mut buf) {
                if n > 0 {
                    tcp.send(s, &buf[..n]).expect("echo");
                }
            }
        }
        for (i, &c) in clients.iter().enumerate() {
            let tcp = sim.client.tcp_mut();
            if let Ok(n) = tcp.recv(c, &mut buf) {
                want[i] -= n;
                if n > 0 && want[i] == 0 {
                    done += 1;
                    want[i] = 64;
                    tcp.send(c, &req).expect("send");
                }
            }
        }
    }
    start.report(&sim, "echo", "tx", done);
}

/// Short connections, `CONCURRENT` at a time, until `total` cycles ended.
fn connect_cycles(total: u64) {
    const CONCURRENT: usize = 50;
    let mut sim = Sim::new();
    let listener = sim
        .server
        .tcp_mut()
        .listen(SocketAddrV4::new(SERVER, PORT), 1024)
        .expect("listen");
    // The server's MAC first (see `connect`): one warm-up connection.
    let (warm, _) = connect_on(&mut sim, listener);
    sim.client.tcp_mut().abort(warm).expect("abort");
    let req = [7u8; 64];
    let mut buf = [0u8; 2048];
    let addr = SocketAddrV4::new(SERVER, PORT);
    // Client sockets with whether their request went out and the bytes of
    // the answer still to come; server sockets with the bytes of the
    // request still to come.
    let mut clients: Vec<(SocketId, bool, usize)> = Vec::with_capacity(CONCURRENT);
    let mut servers: Vec<(SocketId, usize)> = Vec::with_capacity(CONCURRENT);
    let start = Start::now(&sim);
    let (mut started, mut done) = (0u64, 0u64);
    while done < total {
        while clients.len() < CONCURRENT && started < total {
            let now = sim.now;
            let id = sim
                .client
                .tcp_mut()
                .connect(now, addr, None)
                .expect("connect");
            clients.push((id, false, req.len()));
            started += 1;
        }
        sim.tick();
        let tcp = sim.server.tcp_mut();
        while let Ok(s) = tcp.accept(listener) {
            servers.push((s, req.len()));
        }
        servers.retain_mut(|(s, want)| {
            if let Ok(n) = tcp.recv(*s, &mut buf) {
                *want -= n;
                if *want == 0 {
                    tcp.send(*s, &req).expect("answer");
                    tcp.close(*s).expect("server close");
                    return false;
                }
            }
            true
        });
        let tcp = sim.client.tcp_mut();
        clients.retain_mut(|(c, sent, want)| {
            if !*sent {
                if tcp.is_writable(*c) {
                    tcp.send(*c, &req).expect("request");
                    *sent = true;
                }
                return true;
            }
            match tcp.recv(*c, &mut buf) {
                Ok(0) if *want == 0 => {
                    tcp.close(*c).expect("client close");
                    done += 1;
                    false
                }
                Ok(n) => {
                    *want -= n;
                    true
                }
                Err(mtcp_stack::tcp::TcpError::WouldBlock) => true,
                Err(e) => panic!("connect cycle failed: {e:?}"),
            }
        });
    }
    start.report(&sim, "connect", "conn", done);
}

/// One connection to `listener`, ticked until the server accepted it.
fn connect_on(sim: &mut Sim, listener: SocketId) -> (SocketId, SocketId) {
    let now = sim.now;
    let c = sim
        .client
        .tcp_mut()
        .connect(now, SocketAddrV4::new(SERVER, PORT), None)
        .expect("connect");
    for _ in 0..10_000 {
        sim.tick();
        if let Ok(s) = sim.server.tcp_mut().accept(listener) {
            return (c, s);
        }
    }
    panic!("the warm-up connection was not accepted");
}

fn bulk(mib: u64) {
    let mut sim = Sim::new();
    let (clients, servers) = connect(&mut sim, 1);
    let (c, s) = (clients[0], servers[0]);
    let chunk = vec![0x5au8; 64 * 1024];
    let mut buf = vec![0u8; 64 * 1024];
    let total = mib * 1024 * 1024;
    let (mut sent, mut got) = (0u64, 0u64);
    let t0 = StdInstant::now();
    let (f0, fs0, k0) = (
        sim.client.stats().tx_frames,
        sim.server.stats().tx_frames,
        sim.ticks,
    );
    while got < total {
        while sent < total {
            let want = (total - sent).min(chunk.len() as u64) as usize;
            match sim.client.tcp_mut().send(c, &chunk[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n as u64,
            }
        }
        sim.tick();
        loop {
            match sim.server.tcp_mut().recv(s, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    let cf = sim.client.stats().tx_frames - f0;
    let sf = sim.server.stats().tx_frames - fs0;
    let ticks = sim.ticks - k0;
    println!(
        "bulk: {mib} MiB in {dt:.3} s = {:.2} Gbit/s; ticks {ticks}; data frames {cf} ({:.0} B/frame); acks {sf} ({:.2} data frames/ack)",
        total as f64 * 8.0 / dt / 1e9,
        total as f64 / cf as f64,
        cf as f64 / sf.max(1) as f64
    );
}

/// Drives two stacks joined by the in-memory NIC in one thread, with
/// synthetic time and no executor, for profiling (e.g. under callgrind).
#[derive(Debug, Parser)]
#[command(name = "stackbench", disable_version_flag = true)]
struct Args {
    /// What to run (default: echo 200000)
    #[command(subcommand)]
    what: Option<What>,
}

#[derive(Debug, Subcommand)]
enum What {
    /// 50 connections doing N 64-byte request/response transactions in all
    Echo {
        /// Transactions in all
        #[arg(default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
        n: u64,
    },
    /// N short connections (connect, 64 bytes each way, close), 50 at a time
    Connect {
        /// Connections in all
        #[arg(default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
        n: u64,
    },
    /// One connection moving MBYTES MiB from client to server
    Bulk {
        /// MiB to move
        #[arg(default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
        mbytes: u64,
    },
}

fn main() {
    match Args::parse().what.unwrap_or(What::Echo { n: 200_000 }) {
        What::Echo { n } => echo(n),
        What::Connect { n } => connect_cycles(n),
        What::Bulk { mbytes } => bulk(mbytes),
    }
}

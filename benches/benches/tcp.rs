//! Micro-benchmarks of the TCP engine (`mtcp_stack::tcp`) and of whole
//! per-core stacks (`mtcp_stack::stack::Stack`) over the in-memory NIC.
//!
//! - `tcp/input_in_order_64B`: per-segment input cost on an established
//!   flow: a pre-built in-order 64-byte data segment is fed to a
//!   `TcpStack` (only its sequence number changes), the data is consumed
//!   each iteration and the ACKs are dispatched (and dropped) every 32
//!   segments, as one tick would.
//! - `tcp/send_dispatch_64B`: `send` of 64 bytes plus the `dispatch` that
//!   turns it into one segment (emit callback does nothing); every 16
//!   segments an ACK for all of them is fed back, outside the timing.
//! - `tcp/echo_64B/tcpstack`: one 64-byte request/response between two
//!   `TcpStack`s (no NIC, no interface, no frames): client send+dispatch,
//!   server input+recv+send+dispatch, client input+recv, timers of both.
//! - `tcp/echo_64B/stack_memory_nic`: the same transaction between two
//!   whole `Stack`s over the in-memory NIC (frames built, checksummed,
//!   parsed; ARP resolved beforehand): client send → flush → server poll →
//!   recv + send → flush → client poll → recv.
//!
//! Run: `cargo bench -p benches --bench tcp -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::net::SocketAddrV4;
use std::time::Duration as StdDuration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtcp_stack::nic::memory::{MemoryNic, MemoryNicConfig};
use mtcp_stack::stack::{Stack, StackConfig};
use mtcp_stack::tcp::SocketId;
use mtcp_stack::tcp::{State, TcpConfig, TcpStack};
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};
use mtcp_stack::wire::tcp::{TcpFlags, TcpRepr};

const A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const PORT: u16 = 7;

/// A segment without its payload, so it can outlive the `dispatch` call.
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

/// Segments captured from one `dispatch`, payloads copied into one store
/// (both reused: no allocation once warmed up).
#[derive(Default)]
struct Wire {
    segs: Vec<(TcpRepr<'static>, usize, usize)>,
    store: Vec<u8>,
}

impl Wire {
    fn capture(&mut self, from: &mut TcpStack, now: Instant) {
        self.segs.clear();
        self.store.clear();
        let (segs, store) = (&mut self.segs, &mut self.store);
        from.dispatch(now, 256, &mut |_, _, r| {
            let off = store.len();
            store.extend_from_slice(r.payload);
            segs.push((detach(r), off, r.payload.len()));
            true
        });
    }

    fn deliver(&self, to: &mut TcpStack, now: Instant, src: Ipv4Address, dst: Ipv4Address) {
        for (r, off, len) in &self.segs {
            let mut r = *r;
            r.payload = &self.store[*off..*off + *len];
            to.input(now, src, dst, &r);
        }
    }
}

/// Two `TcpStack`s with one established connection: (a, b, a's socket, b's socket).
fn tcp_pair() -> (TcpStack, TcpStack, SocketId, SocketId, Instant) {
    let mut a = TcpStack::new(TcpConfig::default(), &[A]).unwrap();
    let mut b = TcpStack::new(
        TcpConfig {
            seed: 2,
            ..TcpConfig::default()
        },
        &[B],
    )
    .unwrap();
    let l = b.listen(SocketAddrV4::new(B, PORT), 16).unwrap();
    let mut now = Instant::from_secs(1);
    let c = a.connect(now, SocketAddrV4::new(B, PORT), None).unwrap();
    let mut wire = Wire::default();
    let mut s = None;
    for _ in 0..16 {
        now += Duration::from_micros(10);
        wire.capture(&mut a, now);
        wire.deliver(&mut b, now, A, B);
        wire.capture(&mut b, now);
        wire.deliver(&mut a, now, B, A);
        if s.is_none() {
            s = b.accept(l).ok();
        }
    }
    let s = s.expect("accepted");
    assert_eq!(a.state(c).unwrap(), State::Established);
    assert_eq!(b.state(s).unwrap(), State::Established);
    a.set_nodelay(c, true).unwrap();
    b.set_nodelay(s, true).unwrap();
    (a, b, c, s, now)
}

fn bench_input(c: &mut Criterion) {
    let (mut a, mut b, ca, sb, mut now) = tcp_pair();
    // Template: the first 64-byte data segment a really sends.
    let payload = [0x5au8; 64];
    a.send(ca, &payload).unwrap();
    let mut template = None;
    a.dispatch(now, 16, &mut |_, _, r| {
        if !r.payload.is_empty() {
            template = Some(detach(r));
        }
        true
    });
    let mut seg = template.expect("a data segment");
    let mut buf = [0u8; 4096];
    let mut batch = 0usize;
    let mut g = c.benchmark_group("tcp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("input_in_order_64B", |bch| {
        bch.iter(|| {
            seg.payload = &payload;
            b.input(now, A, B, black_box(&seg));
            seg.seq += payload.len();
            let n = b.recv(sb, &mut buf).unwrap();
            assert_eq!(n, 64, "the segment was accepted in order");
            batch += 1;
            if batch == 32 {
                batch = 0;
                now += Duration::from_micros(1);
                b.dispatch(now, 256, &mut |_, _, r| {
                    black_box(r);
                    true
                });
            }
        })
    });
    g.finish();
}

fn bench_send_dispatch(c: &mut Criterion) {
    let (mut a, mut b, ca, _sb, mut now) = tcp_pair();
    let payload = [0x5au8; 64];
    // An ACK from b, used as the template of the ACKs fed back to a.
    let mut ack = None;
    a.send(ca, &payload).unwrap();
    let mut wire = Wire::default();
    wire.capture(&mut a, now);
    wire.deliver(&mut b, now, A, B);
    now += Duration::from_millis(100);
    b.poll_timers(now); // delayed ACK
    b.dispatch(now, 16, &mut |_, _, r| {
        if r.flags.contains(TcpFlags::ACK) {
            ack = Some(detach(r));
        }
        true
    });
    let mut ack = ack.expect("an ACK from b");
    a.input(now, B, A, &ack);
    let mut last_end = ack.ack;
    let mut g = c.benchmark_group("tcp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("send_dispatch_64B", |bch| {
        bch.iter_custom(|iters| {
            let mut total = StdDuration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let k = (iters - done).min(16);
                let start = std::time::Instant::now();
                for _ in 0..k {
                    a.send(ca, black_box(&payload)).unwrap();
                    a.dispatch(now, 16, &mut |_, _, r| {
                        black_box(r);
                        true
                    });
                }
                total += start.elapsed();
                done += k;
                // Untimed: acknowledge everything sent.
                last_end += k as usize * payload.len();
                ack.ack = last_end;
                now += Duration::from_micros(5);
                a.input(now, B, A, &ack);
                assert_eq!(a.send_queue(ca).unwrap(), 0, "every byte acknowledged");
            }
            total
        })
    });
    g.finish();
}

fn bench_echo_tcpstack(c: &mut Criterion) {
    let (mut a, mut b, ca, sb, mut now) = tcp_pair();
    let req = [0x11u8; 64];
    let mut buf = [0u8; 4096];
    let mut wire = Wire::default();
    let mut g = c.benchmark_group("tcp/echo_64B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tcpstack", |bch| {
        bch.iter(|| {
            now += Duration::from_micros(1);
            a.send(ca, black_box(&req)).unwrap();
            wire.capture(&mut a, now);
            wire.deliver(&mut b, now, A, B);
            b.poll_timers(now);
            let n = b.recv(sb, &mut buf).unwrap();
            b.send(sb, &buf[..n]).unwrap();
            wire.capture(&mut b, now);
            wire.deliver(&mut a, now, B, A);
            a.poll_timers(now);
            let m = a.recv(ca, &mut buf).unwrap();
            assert_eq!(m, 64);
        })
    });
    g.finish();
}

fn stack_cfg(addr: Ipv4Address) -> StackConfig {
    let mut c = StackConfig {
        addr: Ipv4Cidr {
            address: addr,
            prefix_len: 24,
        },
        ..StackConfig::default()
    };
    c.tcp.max_connections = 64;
    c.tcp.chunk_count = 1024;
    c.frames = 1024;
    c
}

fn bench_echo_stacks(c: &mut Criterion) {
    let (na, nb) = MemoryNic::pair_with(&MemoryNicConfig::default()).unwrap();
    let mut server = Stack::new(stack_cfg(A), na.split_boxed().remove(0)).unwrap();
    let mut client = Stack::new(stack_cfg(B), nb.split_boxed().remove(0)).unwrap();
    let mut now = Instant::from_secs(1);
    let l = server
        .tcp_mut()
        .listen(SocketAddrV4::new(Ipv4Address::UNSPECIFIED, PORT), 16)
        .unwrap();
    let cs = client
        .tcp_mut()
        .connect(now, SocketAddrV4::new(A, PORT), None)
        .unwrap();
    let mut ss = None;
    for _ in 0..200 {
        for s in [&mut server, &mut client] {
            s.poll(now);
            s.flush(now);
        }
        now += Duration::from_micros(100);
        if ss.is_none() {
            ss = server.tcp_mut().accept(l).ok();
        }
        if ss.is_some() && client.tcp().state(cs).unwrap() == State::Established {
            break;
        }
    }
    let ss = ss.expect("accepted");
    client.tcp_mut().set_nodelay(cs, true).unwrap();
    server.tcp_mut().set_nodelay(ss, true).unwrap();
    let req = [0x22u8; 64];
    let mut buf = [0u8; 4096];
    let mut g = c.benchmark_group("tcp/echo_64B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("stack_memory_nic", |bch| {
        bch.iter(|| {
            now += Duration::from_micros(1);
            client.tcp_mut().send(cs, black_box(&req)).unwrap();
            client.flush(now);
            server.poll(now);
            let n = server.tcp_mut().recv(ss, &mut buf).unwrap();
            server.tcp_mut().send(ss, &buf[..n]).unwrap();
            server.flush(now);
            client.poll(now);
            let m = client.tcp_mut().recv(cs, &mut buf).unwrap();
            assert_eq!(m, 64);
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_input,
    bench_send_dispatch,
    bench_echo_tcpstack,
    bench_echo_stacks
);
criterion_main!(benches);

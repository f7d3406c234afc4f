//! Property test: arbitrary segments, timer jumps and socket calls never
//! panic the engine, and once every socket is closed the pools are back to
//! their initial counts.

use mtcp_stack::tcp::{SocketId, TcpConfig, TcpStack};
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::ipv4::Ipv4Address;
use mtcp_stack::wire::tcp::{SackBlock, TcpFlags, TcpOptions, TcpRepr};
use mtcp_stack::wire::SeqNumber;
use proptest::prelude::*;
use std::net::SocketAddrV4;

const LOCAL: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const REMOTE: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

#[derive(Debug, Clone)]
enum Op {
    Seg {
        flags: u8,
        seq: i32,
        ack: i32,
        window: u16,
        len: usize,
        mss: Option<u16>,
        wscale: Option<u8>,
        ts: Option<(u32, u32)>,
        sack: Option<(i32, u16)>,
        port: u8,
    },
    Advance(u32),
    Write(usize),
    Read(usize),
    Shutdown,
    Close,
    Abort,
    Connect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            any::<u8>(),
            -70_000i32..70_000,
            -70_000i32..70_000,
            any::<u16>(),
            0usize..3000,
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..20),
            proptest::option::of((any::<u32>(), any::<u32>())),
            proptest::option::of((-70_000i32..70_000, any::<u16>())),
            0u8..3,
        )
            .prop_map(|(flags, seq, ack, window, len, mss, wscale, ts, sack, port)| Op::Seg {
                flags,
                seq,
                ack,
                window,
                len,
                mss,
                wscale,
                ts,
                sack,
                port,
            }),
        2 => (0u32..5000).prop_map(Op::Advance),
        1 => (0usize..100_000).prop_map(Op::Write),
        1 => (0usize..10_000).prop_map(Op::Read),
        1 => Just(Op::Shutdown),
        1 => Just(Op::Close),
        1 => Just(Op::Abort),
        1 => Just(Op::Connect),
    ]
}

fn run(ops: &[Op], cfg: TcpConfig) {
    let mut s = TcpStack::new(cfg, &[LOCAL]).unwrap();
    let mut now = Instant::from_secs(1);
    let l = s.listen(SocketAddrV4::new(LOCAL, 80), 4).unwrap();
    // A connection to aim at: a real handshake first.
    let syn = TcpRepr {
        src_port: 5000,
        dst_port: 80,
        seq: SeqNumber(1000),
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 65535,
        urgent: 0,
        options: TcpOptions::default(),
        payload: &[],
    };
    s.input(now, REMOTE, LOCAL, &syn);
    let mut iss = SeqNumber(0);
    s.dispatch(now, 100, &mut |_, _, r| {
        iss = r.seq;
        true
    });
    let ack = TcpRepr {
        seq: SeqNumber(1001),
        ack: iss + 1,
        flags: TcpFlags::ACK,
        ..syn
    };
    s.input(now, REMOTE, LOCAL, &ack);
    let mut ids: Vec<SocketId> = vec![s.accept(l).unwrap()];
    let payload = vec![0x5a; 3000];
    let mut buf = vec![0; 10_000];
    let base = SeqNumber(1001);
    for op in ops {
        let id = *ids.last().unwrap();
        match op {
            Op::Seg {
                flags,
                seq,
                ack,
                window,
                len,
                mss,
                wscale,
                ts,
                sack,
                port,
            } => {
                let mut options = TcpOptions {
                    mss: *mss,
                    window_scale: *wscale,
                    sack_permitted: flags & 1 == 0,
                    timestamp: *ts,
                    ..TcpOptions::default()
                };
                if let Some((l, n)) = sack {
                    let left = SeqNumber(iss.0.wrapping_add(*l as u32));
                    options.push_sack(SackBlock {
                        left,
                        right: SeqNumber(left.0.wrapping_add(u32::from(*n))),
                    });
                }
                let seg = TcpRepr {
                    src_port: 5000 + u16::from(*port),
                    dst_port: 80,
                    seq: SeqNumber(base.0.wrapping_add(*seq as u32)),
                    ack: SeqNumber(iss.0.wrapping_add(*ack as u32)),
                    flags: TcpFlags(*flags),
                    window: *window,
                    urgent: 0,
                    options,
                    payload: &payload[..*len],
                };
                s.input(now, REMOTE, LOCAL, &seg);
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                s.poll_timers(now);
            }
            Op::Write(n) => {
                let _ = s.send(id, &vec![1; *n]);
            }
            Op::Read(n) => {
                let _ = s.recv(id, &mut buf[..*n]);
            }
            Op::Shutdown => {
                let _ = s.shutdown_write(id);
            }
            Op::Close => {
                let _ = s.close(id);
            }
            Op::Abort => {
                let _ = s.abort(id);
            }
            Op::Connect => {
                if let Ok(c) = s.connect(now, SocketAddrV4::new(REMOTE, 5001), None) {
                    ids.push(c);
                }
            }
        }
        s.dispatch(now, 64, &mut |_, _, _| true);
        s.wake_pending();
        while let Ok(c) = s.accept(l) {
            ids.push(c);
        }
        assert!(s.chunks_in_use() <= 512);
    }
    for id in ids {
        let _ = s.abort(id);
    }
    s.close(l).unwrap();
    for _ in 0..400 {
        now += Duration::from_secs(1);
        s.poll_timers(now);
        s.dispatch(now, 64, &mut |_, _, _| true);
    }
    assert_eq!(s.sockets_in_use(), 0, "{s:?}");
    assert_eq!(s.chunks_in_use(), 0, "{s:?}");
    assert_eq!(s.flows(), 0);
}

fn small(cfg: TcpConfig) -> TcpConfig {
    TcpConfig {
        max_connections: 16,
        chunk_size: 256,
        chunk_count: 512,
        send_buffer: 16 * 1024,
        recv_buffer: 16 * 1024,
        ooo_max_ranges: 4,
        ooo_max_chunks: 64,
        syn_backlog: 2,
        ..cfg
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_panics_plain(ops in proptest::collection::vec(op(), 1..150)) {
        run(&ops, small(TcpConfig { timestamps: false, sack: false, window_scaling: false, ..TcpConfig::default() }));
    }

    #[test]
    fn arbitrary_input_never_panics_all_options(ops in proptest::collection::vec(op(), 1..150)) {
        run(&ops, small(TcpConfig::default()));
    }
}

//! `tcp_listener` and `tcp_established`: `TcpStack::input` driven by
//! structured segments, socket calls and timer jumps, then close + drain.
//!
//! Invariants checked: no panic; every segment the engine emits survives
//! a wire round trip (emit, parse with checksums) and is well formed (no
//! SYN with RST or FIN, payload within the MSS); the pools never exceed
//! their sizes; a valid handshake reaches ESTABLISHED; after every socket is
//! closed and time has run past every timer, no socket, flow, chunk or
//! queued output is left.

use std::net::SocketAddrV4;

use arbitrary::{Arbitrary, Unstructured};
use mtcp_stack::tcp::{CongestionKind, SocketId, State, TcpConfig, TcpStack};
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::ipv4::Ipv4Address;
use mtcp_stack::wire::tcp::{TcpFlags, TcpOptions, TcpPacket, TcpRepr};
use mtcp_stack::wire::SeqNumber;

use crate::model::{split, Record, SegSpec, Tracker, LISTEN_PORT, LOCAL, PEER_PORT, REMOTE};

/// Engine settings the fuzzer picks.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct CfgSpec {
    timestamps: bool,
    sack: bool,
    window_scaling: bool,
    syn_cookies: bool,
    reno: bool,
    tiny_pool: bool,
}

impl CfgSpec {
    /// All options on, the normal pool.
    pub const DEFAULT: CfgSpec = CfgSpec {
        timestamps: true,
        sack: true,
        window_scaling: true,
        syn_cookies: true,
        reno: false,
        tiny_pool: false,
    };
}

/// The handshake of `tcp_established`.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Handshake {
    /// Active open (we connect) instead of passive (we accept).
    pub(crate) active: bool,
    mss: Option<u16>,
    wscale: Option<u8>,
    sack_permitted: bool,
    timestamps: bool,
    window: u16,
}

impl Handshake {
    /// Passive, MSS 1460, every option, a 64 KiB window.
    pub const DEFAULT: Handshake = Handshake {
        active: false,
        mss: Some(1460),
        wscale: Some(7),
        sack_permitted: true,
        timestamps: true,
        window: 65535,
    };
}

/// One step.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// Inject a segment.
    Seg(SegSpec),
    /// Advance time by this many milliseconds and run the timers.
    Advance(u16),
    /// Advance time by this many seconds.
    AdvanceSecs(u8),
    /// Write this many bytes on a socket.
    Write(u8, u16),
    /// Read up to this many bytes.
    Read(u8, u16),
    /// Shut down the write side.
    Shutdown(u8),
    /// Close gracefully.
    Close(u8),
    /// Abort (RST).
    Abort(u8),
    /// Turn Nagle off or on.
    Nodelay(u8, bool),
    /// Keepalive on.
    Keepalive(u8),
    /// Active open to a peer port.
    Connect(u8),
}

/// The most ops one structured record runs (bounded work per execution).
const MAX_OPS: usize = 64;
/// The most timer rounds of the final drain before it counts as a leak.
const DRAIN_ROUNDS: usize = 100_000;
/// The peer's initial sequence number for handshakes.
const PEER_ISN: u32 = 0x1000_0000;

/// The small, fast-timer engine configuration every harness uses.
pub fn config(c: CfgSpec) -> TcpConfig {
    TcpConfig {
        max_connections: 16,
        chunk_size: 512,
        chunk_count: if c.tiny_pool { 8 } else { 256 },
        send_buffer: 16 * 1024,
        recv_buffer: 16 * 1024,
        syn_backlog: 2,
        syn_cookies: c.syn_cookies,
        timestamps: c.timestamps,
        sack: c.sack,
        window_scaling: c.window_scaling,
        congestion: if c.reno {
            CongestionKind::NewReno
        } else {
            CongestionKind::Cubic
        },
        ooo_max_ranges: 4,
        ooo_max_chunks: 32,
        msl: Duration::from_secs(2),
        syn_retries: 3,
        data_retries: 5,
        rto_max: Duration::from_secs(10),
        challenge_ack_limit: 50,
        seed: 7,
        ..TcpConfig::default()
    }
}

/// The engine, the sockets the fuzzer can name, and the model of the peer.
pub struct Harness {
    pub(crate) s: TcpStack,
    pub(crate) now: Instant,
    pub(crate) listener: SocketId,
    pub(crate) ids: Vec<SocketId>,
    pub(crate) tracker: Tracker,
    chunk_count: usize,
    max_connections: usize,
    buf: Vec<u8>,
    wbuf: Vec<u8>,
}

/// Checks one emitted segment: well formed, and it survives the wire.
pub(crate) fn check_emitted(src: Ipv4Address, dst: Ipv4Address, r: &TcpRepr<'_>, mss: usize) {
    assert!(
        !(r.flags.syn() && (r.flags.rst() || r.flags.fin())),
        "{r:?}"
    );
    assert!(
        r.payload.len() <= mss,
        "{} > mss {mss}: {r:?}",
        r.payload.len()
    );
    assert!(r.options_len() <= 40);
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst, true);
    let p = TcpPacket::new_checked(&buf[..]).expect("emitted segment is checked");
    let again = TcpRepr::parse(&p, src, dst, true).expect("emitted segment parses");
    assert_eq!(again.seq, r.seq);
    assert_eq!(again.ack, r.ack);
    assert_eq!(again.flags, r.flags);
    assert_eq!(again.payload, r.payload);
}

impl Harness {
    pub(crate) fn new(cfg: CfgSpec) -> Harness {
        let cfg = config(cfg);
        let (chunk_count, max_connections) = (cfg.chunk_count, cfg.max_connections);
        let mut s = TcpStack::new(cfg, &[LOCAL]).expect("valid config");
        let listener = s
            .listen(SocketAddrV4::new(LOCAL, LISTEN_PORT), 4)
            .expect("listen");
        Harness {
            s,
            now: Instant::from_secs(1),
            listener,
            ids: Vec::new(),
            tracker: Tracker::default(),
            chunk_count,
            max_connections,
            buf: vec![0; 1 << 16],
            wbuf: vec![0x6d; 1 << 16],
        }
    }

    /// Runs the engine's output and checks it.
    pub(crate) fn dispatch(&mut self) {
        let mss = self.s.config().mss() as usize;
        let tracker = &mut self.tracker;
        self.s.dispatch(self.now, usize::MAX, &mut |src, dst, r| {
            check_emitted(src, dst, r, mss);
            tracker.observe(dst, r);
            true
        });
        self.s.wake_pending();
        while let Ok(c) = self.s.accept(self.listener) {
            self.ids.push(c);
        }
        assert!(self.s.chunks_in_use() <= self.chunk_count);
        assert!(self.s.sockets_in_use() <= self.max_connections);
        assert!(self.s.flows() <= self.max_connections);
    }

    pub(crate) fn inject(&mut self, seg: &TcpRepr<'_>) {
        self.s.input(self.now, REMOTE, LOCAL, seg);
        self.dispatch();
    }

    fn sock(&self, n: u8) -> Option<SocketId> {
        if self.ids.is_empty() {
            None
        } else {
            Some(self.ids[usize::from(n) % self.ids.len()])
        }
    }

    pub(crate) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.s.poll_timers(self.now);
        self.dispatch();
    }

    /// A valid three-way handshake on peer port 0; returns the socket.
    pub(crate) fn handshake(&mut self, h: Handshake) -> SocketId {
        let options = TcpOptions {
            mss: h.mss,
            window_scale: h.wscale,
            sack_permitted: h.sack_permitted,
            timestamp: h.timestamps.then_some((1, 0)),
            ..TcpOptions::default()
        };
        let peer = SocketAddrV4::new(REMOTE, PEER_PORT);
        let mut syn = TcpRepr {
            src_port: PEER_PORT,
            dst_port: LISTEN_PORT,
            seq: SeqNumber(PEER_ISN),
            ack: SeqNumber(0),
            flags: TcpFlags::SYN,
            window: h.window,
            urgent: 0,
            options,
            payload: &[],
        };
        let id = if h.active {
            let id = self.s.connect(self.now, peer, None).expect("connect");
            self.ids.push(id);
            self.dispatch();
            let v = self.tracker.peers[0];
            syn.dst_port = v.local_port.expect("our SYN went out");
            syn.flags = TcpFlags::SYN | TcpFlags::ACK;
            syn.ack = v.our_nxt.expect("our SYN went out");
            if h.timestamps {
                syn.options.timestamp = Some((1, v.ts_val.unwrap_or(0)));
            }
            self.inject(&syn);
            id
        } else {
            self.inject(&syn);
            let v = self.tracker.peers[0];
            let ack = TcpRepr {
                seq: SeqNumber(PEER_ISN + 1),
                ack: v.our_nxt.expect("SYN-ACK went out"),
                flags: TcpFlags::ACK,
                options: TcpOptions {
                    timestamp: h.timestamps.then_some((2, v.ts_val.unwrap_or(0))),
                    ..TcpOptions::default()
                },
                ..syn
            };
            self.inject(&ack);
            *self.ids.last().expect("handshake accepted")
        };
        let state = self.s.state(id).expect("socket");
        // A zero window or an MSS below the minimum are still valid.
        assert_eq!(state, State::Established, "{h:?}");
        id
    }

    fn op(&mut self, op: &Op) {
        match op {
            Op::Seg(spec) => {
                let seg = spec.build(&self.tracker);
                self.inject(&seg);
            }
            Op::Advance(ms) => self.advance(Duration::from_millis(u64::from(*ms))),
            Op::AdvanceSecs(s) => self.advance(Duration::from_secs(u64::from(*s))),
            Op::Write(n, len) => {
                if let Some(id) = self.sock(*n) {
                    let len = usize::from(*len);
                    let _ = self.s.send(id, &self.wbuf[..len]);
                    self.dispatch();
                }
            }
            Op::Read(n, len) => {
                if let Some(id) = self.sock(*n) {
                    let len = usize::from(*len);
                    let _ = self.s.recv(id, &mut self.buf[..len]);
                    self.dispatch();
                }
            }
            Op::Shutdown(n) => {
                if let Some(id) = self.sock(*n) {
                    let _ = self.s.shutdown_write(id);
                    self.dispatch();
                }
            }
            Op::Close(n) => {
                if let Some(id) = self.sock(*n) {
                    let _ = self.s.close(id);
                    self.dispatch();
                }
            }
            Op::Abort(n) => {
                if let Some(id) = self.sock(*n) {
                    let _ = self.s.abort(id);
                    self.dispatch();
                }
            }
            Op::Nodelay(n, on) => {
                if let Some(id) = self.sock(*n) {
                    let _ = self.s.set_nodelay(id, *on);
                }
            }
            Op::Keepalive(n) => {
                if let Some(id) = self.sock(*n) {
                    let _ = self.s.set_keepalive(id, true);
                }
            }
            Op::Connect(p) => {
                let port = PEER_PORT + 1 + u16::from(*p) % 3;
                if let Ok(id) = self
                    .s
                    .connect(self.now, SocketAddrV4::new(REMOTE, port), None)
                {
                    self.ids.push(id);
                }
                self.dispatch();
            }
        }
    }

    /// Closes every socket and the listener, runs time past every timer,
    /// and checks that nothing is left.
    pub fn close_and_drain(&mut self) {
        for id in core::mem::take(&mut self.ids) {
            let _ = self.s.close(id);
        }
        self.s.close(self.listener).expect("listener still open");
        self.dispatch();
        for id in core::mem::take(&mut self.ids) {
            let _ = self.s.close(id);
        }
        let mut rounds = 0;
        while let Some(at) = self.s.next_deadline() {
            rounds += 1;
            assert!(
                rounds < DRAIN_ROUNDS,
                "timers never stop: {:?} at {:?}",
                self.s,
                self.now
            );
            self.now = at.max(self.now + Duration::from_millis(1));
            self.s.poll_timers(self.now);
            self.dispatch();
        }
        assert_eq!(self.s.sockets_in_use(), 0, "socket leaked: {:?}", self.s);
        assert_eq!(self.s.flows(), 0, "flow leaked: {:?}", self.s);
        assert_eq!(self.s.chunks_in_use(), 0, "chunk leaked: {:?}", self.s);
        assert_eq!(self.s.time_wait_sockets(), 0);
        assert!(!self.s.has_output(), "output left: {:?}", self.s);
    }
}

impl Harness {
    /// Runs the records of an input (see [`crate::model::split`]): raw
    /// records are TCP segments from the peer, structured ones [`Op`]s.
    fn records(&mut self, records: crate::model::Records<'_>) {
        for r in records {
            match r {
                Record::Raw(bytes) => {
                    let Ok(p) = TcpPacket::new_checked(bytes) else {
                        continue;
                    };
                    let Ok(seg) = TcpRepr::parse(&p, REMOTE, LOCAL, false) else {
                        continue;
                    };
                    self.inject(&seg);
                }
                Record::Structured(bytes) => {
                    let u = Unstructured::new(bytes);
                    let Ok(ops) = Vec::<Op>::arbitrary_take_rest(u) else {
                        continue;
                    };
                    for op in ops.iter().take(MAX_OPS) {
                        self.op(op);
                    }
                }
            }
        }
    }
}

pub(crate) fn settings(header: &[u8]) -> (CfgSpec, Handshake) {
    let mut u = Unstructured::new(header);
    let cfg = CfgSpec::arbitrary(&mut u).unwrap_or(CfgSpec::DEFAULT);
    let hs = Handshake::arbitrary(&mut u).unwrap_or(Handshake::DEFAULT);
    (cfg, hs)
}

/// `tcp_listener`: segments against a listening socket (and whatever
/// connections they open).
pub fn run_listener(data: &[u8]) {
    let (header, records) = split(data);
    let (cfg, _) = settings(&header);
    let mut h = Harness::new(cfg);
    h.records(records);
    h.close_and_drain();
}

/// `tcp_established`: a valid handshake first, then the fuzzer's steps.
pub fn run_established(data: &[u8]) {
    let (header, records) = split(data);
    let (cfg, hs) = settings(&header);
    let mut h = Harness::new(cfg);
    h.handshake(hs);
    h.records(records);
    h.close_and_drain();
}

//! `icmp_input`: ICMP errors about an established connection's own
//! segments (`TcpStack::icmp_error`, what the interface hands over after
//! parsing the quote), with fuzzer-chosen quoted sequence numbers, ports,
//! kinds and next-hop MTUs, while the connection sends data to a peer
//! model that receives, loses and acknowledges it.
//!
//! Invariants checked: a quote outside SND.UNA..SND.MAX (as the peer model
//! sees them) or about another 4-tuple is counted and changes nothing
//! (state, send MSS, path MTU, other counters, queued output); no ICMP error
//! changes the state of the synchronized connection; the send MSS never
//! rises and never falls below what the minimum path MTU allows (or the
//! peer's own smaller MSS); no segment is larger than the send MSS in force
//! when it is sent; the path MTU, when known, is at least the configured
//! minimum; afterwards the peer receives every byte written, intact and in
//! order; close + drain leaves nothing.

use arbitrary::{Arbitrary, Unstructured};
use mtcp_stack::iface::{IcmpErrorKind, TcpIcmpError};
use mtcp_stack::tcp::{SocketId, State};
use mtcp_stack::time::Duration;
use mtcp_stack::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use mtcp_stack::wire::SeqNumber;

use crate::model::{split, Record, LISTEN_PORT, LOCAL, OTHER, PEER_PORT, REMOTE};
use crate::tcp_harness::{check_emitted, settings, Harness};

/// The lowest send MSS the default minimum PMTU (552) allows: 552 less
/// 40 bytes of headers and 12 of timestamps.
const MIN_CLAMPED_MSS: u16 = 552 - 40 - 12;
/// The most bytes the connection writes in one run.
const MAX_STREAM: usize = 64 * 1024;
/// The most ops one structured record runs.
const MAX_OPS: usize = 64;
/// The most rounds of the final delivery before it counts as stuck.
const DELIVERY_ROUNDS: usize = 2_000;
/// The peer's sequence number after its SYN (see `tcp_harness`).
const PEER_NXT: u32 = 0x1000_0001;

/// The quoted sequence number.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum QuotedSeq {
    /// SND.UNA + n (in flight when n < what is unacknowledged).
    Una(u16),
    /// SND.MAX - n (before SND.UNA when n is large).
    Max(u16),
    /// Any number.
    Absolute(u32),
}

/// Whose 4-tuple the quote names.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Tuple {
    /// The connection's.
    Ours,
    /// Another local port.
    LocalPort(u16),
    /// Another peer port.
    RemotePort(u16),
    /// Another peer address.
    OtherPeer,
}

/// One step.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Op {
    /// Write this many bytes (of the stream pattern).
    Write(u16),
    /// An ICMP error: kind 0 = Fragmentation Needed with `mtu`, 1 = Destination
    /// Unreachable with `code`, else Time Exceeded with `code`.
    Icmp {
        kind: u8,
        code: u8,
        mtu: u16,
        seq: QuotedSeq,
        tuple: Tuple,
        sent_len: u16,
    },
    /// The peer acknowledges up to this many more of the bytes it has in
    /// order.
    Ack(u16),
    /// The peer loses (true) or receives (false) what the stack sends from
    /// now on.
    Lossy(bool),
    /// Advance time by this many milliseconds and run the timers.
    Advance(u16),
}

/// The peer's receive side.
struct PeerRx {
    /// The stack's ISN + 1: stream offset 0.
    base: SeqNumber,
    data: Vec<u8>,
    have: Vec<bool>,
    lossy: bool,
}

impl PeerRx {
    fn take(&mut self, r: &TcpRepr<'_>) {
        if self.lossy || r.dst_port != PEER_PORT || r.payload.is_empty() {
            return;
        }
        assert!(r.seq >= self.base, "data before the stream's start: {r:?}");
        let off = r.seq - self.base;
        assert!(
            off + r.payload.len() <= MAX_STREAM,
            "data past what was written"
        );
        for (i, &b) in r.payload.iter().enumerate() {
            if self.have[off + i] {
                assert_eq!(
                    self.data[off + i],
                    b,
                    "retransmission changed byte {}",
                    off + i
                );
            }
            self.data[off + i] = b;
            self.have[off + i] = true;
        }
    }

    /// Bytes received in order from the start.
    fn in_order(&self) -> usize {
        self.have
            .iter()
            .position(|&h| !h)
            .unwrap_or(self.have.len())
    }
}

/// Byte `k` of the stream the connection writes.
fn pattern(k: usize) -> u8 {
    (k % 251) as u8 ^ (k >> 8) as u8
}

struct IcmpHarness {
    h: Harness,
    id: SocketId,
    rx: PeerRx,
    /// Bytes the stack accepted.
    written: usize,
    /// What the peer acknowledged (stream offset).
    acked: usize,
    /// The send MSS right after the handshake.
    initial_mss: u16,
    wbuf: Vec<u8>,
    ts: u32,
    /// The connection timed out (only ever in `advance`: a peer that
    /// loses everything or never acknowledges).
    dead: bool,
}

/// The counters an ICMP error may touch.
fn counters(h: &Harness) -> [u64; 5] {
    let st = h.s.stats();
    [
        st.icmp_errors,
        st.icmp_soft_errors,
        st.icmp_aborts,
        st.pmtu_shrinks,
        st.drops.icmp_out_of_window + st.drops.icmp_no_socket,
    ]
}

impl IcmpHarness {
    fn mss(&self) -> u16 {
        self.h.s.send_mss(self.id).unwrap_or(0)
    }

    /// Runs the output: checks it, lets the tracker and the peer see it.
    fn dispatch(&mut self) {
        let mss = self.h.s.config().mss() as usize;
        let conn_mss = usize::from(self.mss());
        let tracker = &mut self.h.tracker;
        let rx = &mut self.rx;
        self.h
            .s
            .dispatch(self.h.now, usize::MAX, &mut |src, dst, r| {
                check_emitted(src, dst, r, mss);
                if r.dst_port == PEER_PORT {
                    assert!(
                        r.payload.len() <= conn_mss,
                        "{} > send MSS {conn_mss}",
                        r.payload.len()
                    );
                }
                rx.take(r);
                tracker.observe(dst, r);
                true
            });
        self.h.s.wake_pending();
        self.check();
    }

    fn check(&self) {
        if self.dead {
            return;
        }
        let mss = self.mss();
        assert!(mss <= self.initial_mss, "send MSS rose: {mss}");
        assert!(
            mss >= self.initial_mss.min(MIN_CLAMPED_MSS),
            "send MSS {mss} below the min-PMTU clamp"
        );
        if let Some(p) = self.h.s.path_mtu(REMOTE, self.h.now) {
            assert!(p >= self.h.s.config().pmtu.min_pmtu, "PMTU {p}");
        }
    }

    fn ack(&mut self, more: usize) {
        let to = (self.acked + more).min(self.rx.in_order());
        self.acked = self.acked.max(to);
        let p = self.h.tracker.peers[0];
        self.ts = self.ts.wrapping_add(1);
        let seg = TcpRepr {
            src_port: PEER_PORT,
            dst_port: LISTEN_PORT,
            seq: SeqNumber(PEER_NXT),
            ack: self.rx.base + self.acked,
            flags: TcpFlags::ACK,
            window: 65535,
            urgent: 0,
            options: TcpOptions {
                timestamp: p.ts_val.map(|v| (self.ts, v)),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        self.h.s.input(self.h.now, REMOTE, LOCAL, &seg);
        self.dispatch();
    }

    fn una(&self) -> SeqNumber {
        self.rx.base + self.acked
    }

    fn snd_max(&self) -> SeqNumber {
        self.h.tracker.peers[0].our_nxt.expect("handshake done")
    }

    #[allow(clippy::too_many_arguments)]
    fn icmp(&mut self, kind: u8, code: u8, mtu: u16, seq: QuotedSeq, tuple: Tuple, sent_len: u16) {
        let (una, max) = (self.una(), self.snd_max());
        let seq = match seq {
            QuotedSeq::Una(n) => una + usize::from(n),
            QuotedSeq::Max(n) => max - usize::from(n),
            QuotedSeq::Absolute(n) => SeqNumber(n),
        };
        let kind = match kind % 3 {
            0 => IcmpErrorKind::FragNeeded { mtu },
            1 => IcmpErrorKind::Unreachable { code: code % 16 },
            _ => IcmpErrorKind::TimeExceeded { code: code % 2 },
        };
        let mut err = TcpIcmpError {
            kind,
            local: LOCAL,
            remote: REMOTE,
            local_port: LISTEN_PORT,
            remote_port: PEER_PORT,
            seq,
            sent_len,
        };
        let ours = match tuple {
            Tuple::Ours => true,
            Tuple::LocalPort(p) => {
                err.local_port = p;
                p == LISTEN_PORT
            }
            Tuple::RemotePort(p) => {
                err.remote_port = p;
                p == PEER_PORT
            }
            Tuple::OtherPeer => {
                err.remote = OTHER;
                false
            }
        };
        if self.dead {
            self.h.s.icmp_error(self.h.now, &err);
            self.dispatch();
            return;
        }
        let in_window = seq.in_range(una, max);
        let before = counters(&self.h);
        let (mss, pmtu) = (self.mss(), self.h.s.path_mtu(REMOTE, self.h.now));
        let output = self.h.s.has_output();
        self.h.s.icmp_error(self.h.now, &err);
        let after = counters(&self.h);
        assert_eq!(
            self.h.s.state(self.id),
            Ok(State::Established),
            "an ICMP error changed the state: {err:?}"
        );
        if !(ours && in_window) {
            assert_eq!(after[4], before[4] + 1, "not counted as dropped: {err:?}");
            assert_eq!(after[..4], before[..4], "an ignored error acted: {err:?}");
            assert_eq!(self.mss(), mss);
            assert_eq!(self.h.s.path_mtu(REMOTE, self.h.now), pmtu);
            assert_eq!(self.h.s.has_output(), output);
        } else {
            assert_eq!(after[4], before[4], "in-window error dropped: {err:?}");
            assert_eq!(after[0], before[0] + 1);
        }
        self.dispatch();
    }

    fn write(&mut self, len: usize) {
        let len = len.min(MAX_STREAM - self.written);
        for (i, b) in self.wbuf[..len].iter_mut().enumerate() {
            *b = pattern(self.written + i);
        }
        if let Ok(n) = self.h.s.send(self.id, &self.wbuf[..len]) {
            self.written += n;
        }
        self.dispatch();
    }

    fn advance(&mut self, d: Duration) {
        self.h.now += d;
        self.h.s.poll_timers(self.h.now);
        if self.h.s.state(self.id) != Ok(State::Established) {
            self.dead = true;
        }
        self.dispatch();
        if !self.rx.lossy && !self.dead {
            // The peer's delayed ACK.
            self.ack(MAX_STREAM);
        }
    }

    fn op(&mut self, op: Op) {
        match op {
            Op::Write(n) => self.write(usize::from(n)),
            Op::Icmp {
                kind,
                code,
                mtu,
                seq,
                tuple,
                sent_len,
            } => self.icmp(kind, code, mtu, seq, tuple, sent_len),
            Op::Ack(n) if !self.dead => self.ack(usize::from(n)),
            Op::Ack(_) => {}
            Op::Lossy(on) => self.rx.lossy = on,
            Op::Advance(ms) => self.advance(Duration::from_millis(u64::from(ms))),
        }
    }

    /// The peer stops losing and acknowledges everything it gets until
    /// every written byte arrived; then the bytes must be the stream.
    fn deliver(&mut self) {
        self.rx.lossy = false;
        if self.dead {
            return;
        }
        let mut rounds = 0;
        while self.rx.in_order() < self.written || self.acked < self.written {
            rounds += 1;
            assert!(
                rounds < DELIVERY_ROUNDS,
                "data never delivered: {} of {} in order, {:?}",
                self.rx.in_order(),
                self.written,
                self.h.s
            );
            self.ack(MAX_STREAM);
            if self.rx.in_order() >= self.written {
                continue;
            }
            let next = self.h.s.next_deadline().unwrap_or(self.h.now);
            let d = next.max(self.h.now + Duration::from_millis(1)) - self.h.now;
            self.advance(d);
            if self.dead {
                // Retries spent while the peer was losing everything.
                return;
            }
        }
        for k in 0..self.written {
            assert_eq!(self.rx.data[k], pattern(k), "byte {k} corrupted");
        }
    }
}

/// `icmp_input`: header = engine settings and handshake (as
/// `tcp_established`); raw records: each byte pair is a Fragmentation
/// Needed MTU quoting SND.UNA; structured ones [`Op`]s. Then delivery,
/// close and drain.
pub fn run(data: &[u8]) {
    let (header, records) = split(data);
    let (cfg, mut hs) = settings(&header);
    hs.active = false;
    let mut h = Harness::new(cfg);
    let id = h.handshake(hs);
    let base = h.tracker.peers[0].our_first.expect("SYN-ACK went out") + 1;
    let initial_mss = h.s.send_mss(id).expect("connection");
    let mut x = IcmpHarness {
        h,
        id,
        rx: PeerRx {
            base,
            data: vec![0; MAX_STREAM],
            have: vec![false; MAX_STREAM],
            lossy: false,
        },
        written: 0,
        acked: 0,
        initial_mss,
        wbuf: vec![0; MAX_STREAM],
        ts: 10,
        dead: false,
    };
    x.check();
    for r in records {
        match r {
            Record::Raw(bytes) => {
                x.write(4000);
                for pair in bytes.chunks_exact(2).take(MAX_OPS) {
                    let mtu = u16::from_be_bytes([pair[0], pair[1]]);
                    x.icmp(0, 4, mtu, QuotedSeq::Una(0), Tuple::Ours, 1500);
                }
            }
            Record::Structured(bytes) => {
                let Ok(ops) = Vec::<Op>::arbitrary_take_rest(Unstructured::new(bytes)) else {
                    continue;
                };
                for &op in ops.iter().take(MAX_OPS) {
                    x.op(op);
                }
            }
        }
    }
    x.deliver();
    x.h.close_and_drain();
}

//! State-machine tests, grouped by state as in smoltcp: each drives one
//! [`TcpStack`] with hand-made segments (`send!`) and checks what
//! `dispatch` emits (`recv!`), over a segment template.

use super::events::FlowEvents;
use super::stack::{TcpConfig, TcpStack};
use super::state::State;
use super::types::SocketId;
use super::TcpError;
use crate::time::{Duration, Instant};
use crate::wire::ipv4::Ipv4Address;
use crate::wire::tcp::{SackBlock, TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;
use std::net::SocketAddrV4;

const LOCAL: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const REMOTE: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const LPORT: u16 = 80;
const RPORT: u16 = 49500;
const RISS: u32 = 1_000_000;

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const FIN: TcpFlags = TcpFlags::FIN;
const RST: TcpFlags = TcpFlags::RST;
const PSH: TcpFlags = TcpFlags::PSH;

/// The segment template: from the peer to our listener, no options.
fn seg() -> TcpRepr<'static> {
    TcpRepr {
        src_port: RPORT,
        dst_port: LPORT,
        seq: SeqNumber(RISS),
        ack: SeqNumber(0),
        flags: TcpFlags::NONE,
        window: 65535,
        urgent: 0,
        options: TcpOptions::default(),
        payload: &[],
    }
}

/// A segment the stack emitted, owned.
#[derive(Debug, Clone)]
struct Out {
    src: Ipv4Address,
    dst: Ipv4Address,
    src_port: u16,
    dst_port: u16,
    flags: TcpFlags,
    seq: SeqNumber,
    ack: SeqNumber,
    window: u16,
    options: TcpOptions,
    payload: Vec<u8>,
}

/// A stack plus the peer's view of it.
struct T {
    s: TcpStack,
    now: Instant,
    listener: Option<SocketId>,
    id: SocketId,
    /// Our ISS, learned from our SYN.
    iss: SeqNumber,
}

fn cfg() -> TcpConfig {
    TcpConfig {
        max_connections: 16,
        chunk_size: 512,
        chunk_count: 256,
        timestamps: false,
        sack: false,
        window_scaling: false,
        seed: 7,
        ..TcpConfig::default()
    }
}

/// `r(n)`: the peer's sequence number `n` (relative to its ISS).
fn r(n: u32) -> SeqNumber {
    SeqNumber(RISS.wrapping_add(n))
}

macro_rules! send {
    ($t:expr, $($f:ident : $v:expr),* $(,)?) => {{
        let seg = TcpRepr { $($f: $v,)* ..seg() };
        $t.input(&seg);
    }};
}

macro_rules! recv {
    ($t:expr, []) => {{
        let out = $t.out();
        assert!(out.is_empty(), "expected nothing, got {out:#?}");
    }};
    ($t:expr, [$($f:ident : $v:expr),* $(,)?]) => {{
        let out = $t.out();
        assert_eq!(out.len(), 1, "expected one segment, got {out:#?}");
        let o = &out[0];
        $( check_field!(o, $f, $v); )*
        out.into_iter().next().expect("one segment")
    }};
}

macro_rules! check_field {
    ($o:expr, flags, $v:expr) => {
        assert_eq!($o.flags, $v, "flags of {:?}", $o)
    };
    ($o:expr, seq, $v:expr) => {
        assert_eq!($o.seq, $v, "seq of {:?}", $o)
    };
    ($o:expr, ack, $v:expr) => {
        assert_eq!($o.ack, $v, "ack of {:?}", $o)
    };
    ($o:expr, window, $v:expr) => {
        assert_eq!($o.window, $v, "window of {:?}", $o)
    };
    ($o:expr, len, $v:expr) => {
        assert_eq!($o.payload.len(), $v, "length of {:?}", $o)
    };
}

impl T {
    fn new(cfg: TcpConfig) -> T {
        T {
            s: TcpStack::new(cfg, &[LOCAL]).unwrap(),
            now: Instant::from_secs(1),
            listener: None,
            id: SocketId::new(u32::MAX, 0),
            iss: SeqNumber(0),
        }
    }

    /// `l(n)`: our sequence number `n` (relative to our ISS).
    fn l(&self, n: u32) -> SeqNumber {
        SeqNumber(self.iss.0.wrapping_add(n))
    }

    fn input(&mut self, seg: &TcpRepr) {
        self.s.input(self.now, REMOTE, LOCAL, seg);
    }

    fn out(&mut self) -> Vec<Out> {
        let mut v = Vec::new();
        self.s.dispatch(self.now, usize::MAX, &mut |src, dst, r| {
            v.push(Out {
                src,
                dst,
                src_port: r.src_port,
                dst_port: r.dst_port,
                flags: r.flags,
                seq: r.seq,
                ack: r.ack,
                window: r.window,
                options: r.options,
                payload: r.payload.to_vec(),
            });
            true
        });
        v
    }

    /// Advances time by `d`, running timers in 1 ms steps.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = (self.now + Duration::from_millis(1)).min(end);
            self.s.poll_timers(self.now);
        }
    }

    /// Advances to the next moment something is emitted (at most `max`),
    /// returning the elapsed time and what went out.
    fn wait_output(&mut self, max: Duration) -> (Duration, Vec<Out>) {
        let start = self.now;
        while self.now - start < max {
            self.now += Duration::from_millis(1);
            self.s.poll_timers(self.now);
            let out = self.out();
            if !out.is_empty() {
                return (self.now - start, out);
            }
        }
        (max, Vec::new())
    }

    fn state(&self) -> State {
        self.s.state(self.id).unwrap()
    }

    /// The test 4-tuple is held by a TIME-WAIT entry.
    fn in_time_wait(&self) -> bool {
        self.s
            .time_wait_entry((LOCAL, LPORT), (REMOTE, RPORT))
            .is_some()
    }

    fn write(&mut self, n: usize) -> usize {
        let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
        self.s.send(self.id, &data).unwrap()
    }

    fn read_all(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.s.recv(self.id, &mut buf) {
            if n == 0 {
                break;
            }
            v.extend_from_slice(&buf[..n]);
        }
        v
    }
}

fn listen_with(cfg: TcpConfig) -> T {
    let mut t = T::new(cfg);
    t.listener = Some(
        t.s.listen(SocketAddrV4::new(Ipv4Address::UNSPECIFIED, LPORT), 8)
            .unwrap(),
    );
    t
}

fn listen() -> T {
    listen_with(cfg())
}

fn syn_received_with(cfg: TcpConfig, opts: TcpOptions) -> T {
    let mut t = listen_with(cfg);
    send!(t, flags: SYN, seq: r(0), options: opts);
    let o = recv!(t, [flags: SYN | ACK, ack: r(1)]);
    t.iss = o.seq;
    t
}

fn syn_received() -> T {
    syn_received_with(
        cfg(),
        TcpOptions {
            mss: Some(1000),
            ..TcpOptions::default()
        },
    )
}

fn established_with(cfg: TcpConfig, opts: TcpOptions) -> T {
    let mut t = syn_received_with(cfg, opts);
    let ack = t.l(1);
    send!(t, flags: ACK, seq: r(1), ack: ack);
    recv!(t, []);
    t.id = t.s.accept(t.listener.unwrap()).unwrap();
    assert_eq!(t.state(), State::Established);
    t.s.drain_events(&mut |_, _| {});
    t
}

/// ESTABLISHED (passive), peer MSS 1000, no options.
fn established() -> T {
    established_with(
        cfg(),
        TcpOptions {
            mss: Some(1000),
            ..TcpOptions::default()
        },
    )
}

fn syn_sent_with(cfg: TcpConfig) -> T {
    let mut t = T::new(cfg);
    t.id =
        t.s.connect(
            t.now,
            SocketAddrV4::new(REMOTE, RPORT),
            Some(SocketAddrV4::new(LOCAL, LPORT)),
        )
        .unwrap();
    let o = recv!(t, [flags: SYN]);
    t.iss = o.seq;
    assert_eq!(t.state(), State::SynSent);
    t
}

fn syn_sent() -> T {
    syn_sent_with(cfg())
}

/// ESTABLISHED, then our FIN sent (FIN-WAIT-1).
fn fin_wait_1() -> T {
    let mut t = established();
    t.s.close(t.id).unwrap();
    let fin = t.l(1);
    recv!(t, [flags: FIN | ACK, seq: fin, ack: r(1)]);
    assert_eq!(t.state(), State::FinWait1);
    t
}

fn fin_wait_2() -> T {
    let mut t = fin_wait_1();
    let ack = t.l(2);
    send!(t, flags: ACK, seq: r(1), ack: ack);
    assert_eq!(t.state(), State::FinWait2);
    t
}

fn time_wait() -> T {
    let mut t = fin_wait_2();
    let ack = t.l(2);
    send!(t, flags: FIN | ACK, seq: r(1), ack: ack);
    recv!(t, [flags: ACK, ack: r(2)]);
    assert!(t.in_time_wait());
    t
}

fn close_wait() -> T {
    let mut t = established();
    let ack = t.l(1);
    send!(t, flags: FIN | ACK, seq: r(1), ack: ack);
    recv!(t, [flags: ACK, ack: r(2)]);
    assert_eq!(t.state(), State::CloseWait);
    t
}

// =========================================================================
// CLOSED (no socket): RFC 9293 §3.10.7.1
// =========================================================================

mod closed {
    use super::*;

    #[test]
    fn syn_to_closed_port_gets_rst_ack() {
        let mut t = T::new(cfg());
        send!(t, flags: SYN, seq: r(0));
        let o = recv!(t, [flags: RST | ACK, seq: SeqNumber(0), ack: r(1)]);
        assert_eq!((o.src, o.dst, o.dst_port), (LOCAL, REMOTE, RPORT));
        assert_eq!(t.s.stats().resets_sent, 1);
        assert_eq!(t.s.stats().drops.no_socket, 1);
    }

    #[test]
    fn data_without_ack_gets_rst_acking_its_length() {
        let mut t = T::new(cfg());
        send!(t, flags: PSH | FIN, seq: r(5), payload: b"hello");
        recv!(t, [flags: RST | ACK, seq: SeqNumber(0), ack: r(11)]);
    }

    #[test]
    fn ack_gets_rst_at_seg_ack() {
        let mut t = T::new(cfg());
        send!(t, flags: ACK, seq: r(1), ack: SeqNumber(777));
        recv!(t, [flags: RST, seq: SeqNumber(777)]);
    }

    #[test]
    fn never_rst_in_reply_to_rst() {
        let mut t = T::new(cfg());
        send!(t, flags: RST, seq: r(1));
        send!(t, flags: RST | ACK, seq: r(1), ack: SeqNumber(5));
        recv!(t, []);
    }

    #[test]
    fn segment_for_another_address_is_dropped() {
        let mut t = T::new(cfg());
        let seg = TcpRepr {
            flags: SYN,
            ..seg()
        };
        t.s.input(t.now, REMOTE, Ipv4Address::new(10, 9, 9, 9), &seg);
        recv!(t, []);
        assert_eq!(t.s.stats().drops.not_local, 1);
    }
}

// =========================================================================
// LISTEN: §3.10.7.2
// =========================================================================

mod listen {
    use super::*;

    #[test]
    fn syn_gets_syn_ack_with_our_mss() {
        let mut t = listen();
        send!(t, flags: SYN, seq: r(0));
        let o = recv!(t, [flags: SYN | ACK, ack: r(1), window: 65535]);
        assert_eq!(o.options.mss, Some(1460));
        assert_eq!(o.options.window_scale, None);
        assert!(!o.options.sack_permitted);
        assert_eq!(t.s.sockets_in_use(), 2);
    }

    #[test]
    fn rst_is_ignored() {
        let mut t = listen();
        send!(t, flags: RST, seq: r(0));
        recv!(t, []);
    }

    #[test]
    fn ack_gets_rst() {
        let mut t = listen_with(TcpConfig {
            syn_cookies: false,
            ..cfg()
        });
        send!(t, flags: ACK, seq: r(1), ack: SeqNumber(4242));
        recv!(t, [flags: RST, seq: SeqNumber(4242)]);
    }

    #[test]
    fn segment_without_syn_is_dropped() {
        let mut t = listen();
        send!(t, flags: FIN, seq: r(1));
        recv!(t, []);
    }

    #[test]
    fn syn_queue_full_drops_without_cookies() {
        let mut t = listen_with(TcpConfig {
            syn_backlog: 1,
            syn_cookies: false,
            ..cfg()
        });
        send!(t, flags: SYN, seq: r(0));
        recv!(t, [flags: SYN | ACK]);
        send!(t, flags: SYN, seq: r(0), src_port: RPORT + 1);
        recv!(t, []);
        assert_eq!(t.s.stats().drops.syn_queue_full, 1);
    }

    #[test]
    fn accept_queue_full_drops_syn() {
        let mut t = T::new(cfg());
        let l =
            t.s.listen(SocketAddrV4::new(Ipv4Address::UNSPECIFIED, LPORT), 1)
                .unwrap();
        send!(t, flags: SYN, seq: r(0));
        let iss = recv!(t, [flags: SYN | ACK]).seq;
        send!(t, flags: ACK, seq: r(1), ack: iss + 1);
        send!(t, flags: SYN, seq: r(0), src_port: RPORT + 1);
        recv!(t, []);
        assert_eq!(t.s.stats().drops.accept_queue_full, 1);
        assert!(t.s.accept(l).is_ok());
        assert_eq!(t.s.accept(l), Err(TcpError::WouldBlock));
    }

    #[test]
    fn accept_queue_full_at_the_handshake_ack_resets_the_child() {
        // Both SYNs find the accept queue empty; the first ACK fills it, so
        // the second child is reset and counted, and only the first is
        // accepted.
        let mut t = T::new(cfg());
        let l =
            t.s.listen(SocketAddrV4::new(Ipv4Address::UNSPECIFIED, LPORT), 1)
                .unwrap();
        send!(t, flags: SYN, seq: r(0));
        let iss_a = recv!(t, [flags: SYN | ACK]).seq;
        send!(t, flags: SYN, seq: r(0), src_port: RPORT + 1);
        let iss_b = recv!(t, [flags: SYN | ACK]).seq;
        send!(t, flags: ACK, seq: r(1), ack: iss_a + 1);
        recv!(t, []);
        send!(t, flags: ACK, seq: r(1), ack: iss_b + 1, src_port: RPORT + 1);
        recv!(t, [flags: RST | ACK, seq: iss_b + 1]);
        assert_eq!(t.s.stats().drops.accept_queue_full, 1);
        assert_eq!(t.s.stats().passive_opens, 1);
        let c = t.s.accept(l).unwrap();
        assert_eq!(t.s.peer_addr(c).unwrap().port(), RPORT);
        assert_eq!(t.s.accept(l), Err(TcpError::WouldBlock));
    }

    #[test]
    fn accept_is_fifo_and_raises_acceptable() {
        let mut t = listen();
        let l = t.listener.unwrap();
        assert_eq!(t.s.accept(l), Err(TcpError::WouldBlock));
        for p in 0..3u16 {
            send!(t, flags: SYN, seq: r(0), src_port: RPORT + p);
            let iss = recv!(t, [flags: SYN | ACK]).seq;
            send!(t, flags: ACK, seq: r(1), ack: iss + 1, src_port: RPORT + p);
        }
        let mut evs = Vec::new();
        t.s.drain_events(&mut |id, ev| evs.push((id, ev)));
        assert_eq!(evs, vec![(l, FlowEvents::ACCEPTABLE)]);
        for p in 0..3u16 {
            let c = t.s.accept(l).unwrap();
            assert_eq!(t.s.peer_addr(c).unwrap().port(), RPORT + p);
            assert_eq!(t.s.local_addr(c).unwrap(), SocketAddrV4::new(LOCAL, LPORT));
        }
        assert_eq!(t.s.stats().passive_opens, 3);
    }

    #[test]
    fn listen_errors() {
        let mut t = listen();
        let any = Ipv4Address::UNSPECIFIED;
        assert_eq!(
            t.s.listen(SocketAddrV4::new(any, LPORT), 1),
            Err(TcpError::AddrInUse)
        );
        assert_eq!(
            t.s.listen(SocketAddrV4::new(REMOTE, 81), 1),
            Err(TcpError::AddrNotAvailable)
        );
        assert_eq!(
            t.s.listen(SocketAddrV4::new(any, 0), 1),
            Err(TcpError::InvalidInput)
        );
        let l = t.listener.unwrap();
        assert_eq!(t.s.send(l, b"x"), Err(TcpError::NotConnected));
        assert_eq!(t.s.peer_addr(l), Err(TcpError::NotConnected));
    }

    #[test]
    fn closing_listener_resets_queued_connections() {
        let mut t = established();
        // A second, not accepted.
        send!(t, flags: SYN, seq: r(0), src_port: RPORT + 1);
        let iss = recv!(t, [flags: SYN | ACK]).seq;
        send!(t, flags: ACK, seq: r(1), ack: iss + 1, src_port: RPORT + 1);
        t.s.close(t.listener.unwrap()).unwrap();
        let o = recv!(t, [flags: RST | ACK]);
        assert_eq!(o.dst_port, RPORT + 1);
        // The accepted one lives on; the port is free again.
        assert_eq!(t.state(), State::Established);
        assert_eq!(t.s.sockets_in_use(), 1);
        send!(t, flags: SYN, seq: r(0), src_port: RPORT + 2);
        recv!(t, [flags: RST | ACK]);
    }
}

// =========================================================================
// SYN-SENT: §3.10.7.3
// =========================================================================

mod syn_sent {
    use super::*;

    #[test]
    fn syn_offers_configured_options() {
        let mut t = syn_sent_with(TcpConfig {
            timestamps: true,
            sack: true,
            window_scaling: true,
            ..cfg()
        });
        recv!(t, []);
        // Retransmitted after the initial RTO (1 s) with the same options.
        let (d, out) = t.wait_output(Duration::from_secs(2));
        assert_eq!(d, Duration::from_secs(1));
        let o = &out[0];
        assert_eq!(o.flags, SYN);
        assert_eq!(o.seq, t.iss);
        assert_eq!(o.options.mss, Some(1460));
        assert_eq!(o.options.window_scale, Some(3));
        assert!(o.options.sack_permitted);
        assert_eq!(o.options.timestamp.map(|(_, e)| e), Some(0));
    }

    #[test]
    fn syn_ack_establishes() {
        let mut t = syn_sent();
        let ack = t.l(1);
        send!(t, flags: SYN | ACK, seq: r(0), ack: ack, window: 4000);
        recv!(t, [flags: ACK, seq: t.l(1), ack: r(1)]);
        assert_eq!(t.state(), State::Established);
        let mut evs = Vec::new();
        t.s.drain_events(&mut |_, ev| evs.push(ev));
        assert_eq!(evs, vec![FlowEvents::CONNECTED | FlowEvents::WRITABLE]);
        assert_eq!(t.s.stats().active_opens, 1);
    }

    #[test]
    fn data_and_fin_on_the_syn_ack_are_received() {
        let mut t = syn_sent();
        let ack = t.l(1);
        send!(t, flags: SYN | ACK | FIN, seq: r(0), ack: ack, payload: b"early");
        assert_eq!(t.state(), State::CloseWait);
        recv!(t, [flags: ACK, ack: r(7)]);
        assert_eq!(t.read_all(), b"early");
        assert_eq!(t.s.recv(t.id, &mut [0; 1]), Ok(0));
    }

    #[test]
    fn unacceptable_ack_gets_rst() {
        let mut t = syn_sent();
        let bad = t.l(5);
        send!(t, flags: SYN | ACK, seq: r(0), ack: bad);
        recv!(t, [flags: RST, seq: bad]);
        assert_eq!(t.state(), State::SynSent);
    }

    #[test]
    fn rst_with_acceptable_ack_is_refused() {
        let mut t = syn_sent();
        let ack = t.l(1);
        send!(t, flags: RST | ACK, seq: SeqNumber(0), ack: ack);
        assert_eq!(t.state(), State::Closed);
        assert_eq!(t.s.take_error(t.id), Ok(Some(TcpError::ConnectionRefused)));
        assert_eq!(t.s.recv(t.id, &mut [0; 4]), Ok(0));
        t.s.close(t.id).unwrap();
        assert_eq!(t.s.sockets_in_use(), 0);
    }

    #[test]
    fn rst_without_ack_is_ignored() {
        let mut t = syn_sent();
        send!(t, flags: RST, seq: r(0));
        assert_eq!(t.state(), State::SynSent);
        recv!(t, []);
    }

    #[test]
    fn simultaneous_open() {
        let mut t = syn_sent();
        send!(t, flags: SYN, seq: r(0));
        assert_eq!(t.state(), State::SynReceived);
        recv!(t, [flags: SYN | ACK, seq: t.l(0), ack: r(1)]);
        let ack = t.l(1);
        send!(t, flags: SYN | ACK, seq: r(0), ack: ack);
        // The peer's SYN-ACK repeats its SYN (before RCV.NXT) and ACKs
        // ours: the handshake completes (RFC 9293 Figure 8).
        assert_eq!(t.state(), State::Established);
        recv!(t, []);
        let mut evs = Vec::new();
        t.s.drain_events(&mut |_, ev| evs.push(ev));
        assert!(evs.iter().any(|e| e.contains(FlowEvents::CONNECTED)));
    }

    #[test]
    fn syn_retries_then_timed_out() {
        let mut t = syn_sent_with(TcpConfig {
            syn_retries: 3,
            ..cfg()
        });
        let mut gaps = Vec::new();
        for _ in 0..3 {
            let (d, out) = t.wait_output(Duration::from_secs(30));
            assert_eq!(out[0].flags, SYN);
            gaps.push(d.as_secs());
        }
        assert_eq!(gaps, vec![1, 2, 4]);
        t.advance(Duration::from_secs(8));
        assert_eq!(t.state(), State::Closed);
        assert_eq!(t.s.take_error(t.id), Ok(Some(TcpError::TimedOut)));
    }

    #[test]
    fn rto_is_3_s_after_a_syn_timeout() {
        let mut t = syn_sent();
        let (d, _) = t.wait_output(Duration::from_secs(2));
        assert_eq!(d, Duration::from_secs(1));
        let ack = t.l(1);
        send!(t, flags: SYN | ACK, seq: r(0), ack: ack);
        t.out();
        t.write(10);
        t.out();
        let (d, _) = t.wait_output(Duration::from_secs(10));
        assert_eq!(d, Duration::from_secs(3));
    }

    #[test]
    fn ephemeral_ports_follow_the_filter() {
        let mut t = T::new(TcpConfig {
            ephemeral_ports: (40000, 40009),
            ..cfg()
        });
        t.s.set_port_filter(Box::new(|_, lport, _, _| lport % 2 == 0));
        let remote = SocketAddrV4::new(REMOTE, 443);
        let mut ports = Vec::new();
        for _ in 0..5 {
            let id = t.s.connect(t.now, remote, None).unwrap();
            ports.push(t.s.local_addr(id).unwrap().port());
        }
        ports.sort();
        assert_eq!(ports, vec![40000, 40002, 40004, 40006, 40008]);
        assert_eq!(
            t.s.connect(t.now, remote, None),
            Err(TcpError::AddrNotAvailable)
        );
    }

    #[test]
    fn connect_errors() {
        let mut t = syn_sent();
        let remote = SocketAddrV4::new(REMOTE, RPORT);
        let local = Some(SocketAddrV4::new(LOCAL, LPORT));
        assert_eq!(t.s.connect(t.now, remote, local), Err(TcpError::AddrInUse));
        assert_eq!(
            t.s.connect(t.now, SocketAddrV4::new(REMOTE, 0), None),
            Err(TcpError::InvalidInput)
        );
        assert_eq!(
            t.s.connect(t.now, remote, Some(SocketAddrV4::new(REMOTE, 5))),
            Err(TcpError::AddrNotAvailable)
        );
        // recv before the handshake completes would block.
        assert_eq!(t.s.recv(t.id, &mut [0; 4]), Err(TcpError::WouldBlock));
    }

    #[test]
    fn data_written_early_goes_after_the_handshake() {
        let mut t = syn_sent();
        assert_eq!(t.write(10), 10);
        recv!(t, []);
        let ack = t.l(1);
        send!(t, flags: SYN | ACK, seq: r(0), ack: ack);
        recv!(t, [flags: ACK | PSH, seq: t.l(1), len: 10]);
    }
}

// =========================================================================
// SYN-RECEIVED
// =========================================================================

mod syn_received {
    use super::*;

    #[test]
    fn ack_completes_handshake_into_accept_queue() {
        let mut t = syn_received();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack);
        let id = t.s.accept(t.listener.unwrap()).unwrap();
        assert_eq!(t.s.state(id), Ok(State::Established));
    }

    #[test]
    fn bad_ack_gets_rst() {
        let mut t = syn_received();
        let bad = t.l(10);
        send!(t, flags: ACK, seq: r(1), ack: bad);
        recv!(t, [flags: RST, seq: bad]);
        assert_eq!(t.s.accept(t.listener.unwrap()), Err(TcpError::WouldBlock));
    }

    #[test]
    fn retransmitted_syn_gets_syn_ack_again() {
        let mut t = syn_received();
        send!(t, flags: SYN, seq: r(0));
        recv!(t, [flags: SYN | ACK, seq: t.l(0), ack: r(1)]);
    }

    #[test]
    fn rst_frees_the_embryonic_connection() {
        let mut t = syn_received();
        send!(t, flags: RST, seq: r(1));
        assert_eq!(t.s.sockets_in_use(), 1);
        recv!(t, []);
        // The listener is unaffected.
        send!(t, flags: SYN, seq: r(0));
        recv!(t, [flags: SYN | ACK]);
    }

    #[test]
    fn syn_ack_retransmitted_then_given_up() {
        let mut t = syn_received_with(
            TcpConfig {
                syn_retries: 2,
                ..cfg()
            },
            TcpOptions::default(),
        );
        let (d, out) = t.wait_output(Duration::from_secs(5));
        assert_eq!((d.as_secs(), out[0].flags), (1, SYN | ACK));
        let (d, _) = t.wait_output(Duration::from_secs(5));
        assert_eq!(d.as_secs(), 2);
        t.advance(Duration::from_secs(5));
        assert_eq!(t.s.sockets_in_use(), 1);
    }

    #[test]
    fn data_on_the_third_ack_is_received() {
        let mut t = syn_received();
        let ack = t.l(1);
        send!(t, flags: ACK | PSH, seq: r(1), ack: ack, payload: b"abc");
        t.id = t.s.accept(t.listener.unwrap()).unwrap();
        assert_eq!(t.read_all(), b"abc");
    }

    #[test]
    fn options_are_negotiated() {
        let t = established_with(
            TcpConfig {
                timestamps: true,
                sack: true,
                window_scaling: true,
                ..cfg()
            },
            TcpOptions {
                mss: Some(1200),
                window_scale: Some(20),
                sack_permitted: true,
                timestamp: Some((5, 0)),
                ..TcpOptions::default()
            },
        );
        let tcb = t.s.tcbs.get(t.id).unwrap();
        // MSS minus 12 bytes of timestamp option; shift clamped to 14.
        assert_eq!(tcb.send.mss, 1188);
        assert_eq!(tcb.send.wscale, 14);
        assert_eq!(tcb.receive.wscale, 3);
        assert_eq!(tcb.receive.ts_recent, 5);
    }

    #[test]
    fn shutdown_during_handshake_sends_fin_after_it() {
        let mut t = syn_received();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack);
        t.id = t.s.accept(t.listener.unwrap()).unwrap();
        t.s.shutdown_write(t.id).unwrap();
        recv!(t, [flags: FIN | ACK, seq: t.l(1)]);
    }
}

// =========================================================================
// ESTABLISHED
// =========================================================================

mod established {
    use super::*;

    #[test]
    fn in_order_data_is_readable_and_ack_delayed() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK | PSH, seq: r(1), ack: ack, payload: b"hello");
        recv!(t, []);
        let mut evs = Vec::new();
        t.s.drain_events(&mut |_, ev| evs.push(ev));
        assert_eq!(evs, vec![FlowEvents::READABLE]);
        assert!(t.s.is_readable(t.id));
        let (d, out) = t.wait_output(Duration::from_secs(1));
        assert_eq!(d, Duration::from_millis(40));
        assert_eq!((out[0].flags, out[0].ack), (ACK, r(6)));
        assert_eq!(t.read_all(), b"hello");
        assert_eq!(t.s.recv(t.id, &mut [0; 4]), Err(TcpError::WouldBlock));
    }

    #[test]
    fn peek_leaves_data_for_recv() {
        let mut t = established();
        assert_eq!(t.s.peek(t.id, &mut [0; 4]), Err(TcpError::WouldBlock));
        let ack = t.l(1);
        // Two segments: peek sees across the chunk boundary (512 bytes).
        let data: Vec<u8> = (0..700u32).map(|i| (i % 251) as u8).collect();
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: &data[..400]);
        send!(t, flags: ACK | PSH, seq: r(401), ack: ack, payload: &data[400..]);
        let mut buf = [0u8; 600];
        assert_eq!(t.s.peek(t.id, &mut buf), Ok(600));
        assert_eq!(&buf[..], &data[..600]);
        let mut small = [0u8; 3];
        assert_eq!(t.s.peek(t.id, &mut small), Ok(3));
        assert_eq!(small, [0, 1, 2]);
        assert_eq!(t.s.recv_queue(t.id), Ok(700));
        assert_eq!(t.read_all(), data);
        send!(t, flags: ACK | FIN, seq: r(701), ack: ack);
        assert_eq!(t.s.peek(t.id, &mut buf), Ok(0));
        let l = t.listener.unwrap();
        assert_eq!(t.s.peek(l, &mut buf), Err(TcpError::NotConnected));
    }

    #[test]
    fn every_second_full_segment_is_acked_at_once() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: &[1; 1000]);
        recv!(t, []);
        send!(t, flags: ACK, seq: r(1001), ack: ack, payload: &[2; 1000]);
        recv!(t, [flags: ACK, ack: r(2001)]);
    }

    #[test]
    fn sends_at_most_the_peer_mss() {
        let mut t = established();
        t.s.set_nodelay(t.id, true).unwrap();
        assert_eq!(t.write(2500), 2500);
        let out = t.out();
        let lens: Vec<usize> = out.iter().map(|o| o.payload.len()).collect();
        assert_eq!(lens, vec![1000, 1000, 500]);
        assert_eq!(out[2].flags, ACK | PSH);
        assert_eq!(out[1].seq, t.l(1001));
    }

    #[test]
    fn default_mss_is_536() {
        let mut t = established_with(cfg(), TcpOptions::default());
        t.write(600);
        let out = t.out();
        assert_eq!(out[0].payload.len(), 536);
    }

    #[test]
    fn respects_the_peer_window() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 2000);
        t.write(3000);
        let out = t.out();
        let total: usize = out.iter().map(|o| o.payload.len()).sum();
        assert_eq!(total, 2000);
    }

    #[test]
    fn ack_frees_the_send_buffer() {
        let mut t = established();
        t.write(1000);
        recv!(t, [len: 1000]);
        assert!(t.s.chunks_in_use() > 0);
        let ack = t.l(1001);
        send!(t, flags: ACK, seq: r(1), ack: ack);
        assert_eq!(t.s.chunks_in_use(), 0);
        assert_eq!(t.s.send_queue(t.id), Ok(0));
    }

    #[test]
    fn duplicate_data_is_acked_not_redelivered() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"abcd");
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"abcd");
        recv!(t, [flags: ACK, ack: r(5)]);
        assert_eq!(t.read_all(), b"abcd");
    }

    #[test]
    fn partly_old_segment_is_trimmed() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"abcd");
        send!(t, flags: ACK, seq: r(3), ack: ack, payload: b"cdef");
        assert_eq!(t.read_all(), b"abcdef");
    }

    #[test]
    fn out_of_window_data_is_dropped_and_acked() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(100_000), ack: ack, payload: b"far");
        recv!(t, [flags: ACK, ack: r(1)]);
        assert_eq!(t.s.stats().drops.out_of_window, 1);
    }

    #[test]
    fn out_of_window_pure_acks_are_answered_rate_limited() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(100_000), ack: ack);
        recv!(t, [flags: ACK]);
        send!(t, flags: ACK, seq: r(100_000), ack: ack);
        recv!(t, []);
        t.advance(Duration::from_millis(600));
        send!(t, flags: ACK, seq: r(100_000), ack: ack);
        recv!(t, [flags: ACK]);
    }

    #[test]
    fn out_of_order_data_acked_at_once_and_reassembled() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(5), ack: ack, payload: b"efgh");
        recv!(t, [flags: ACK, ack: r(1)]);
        assert_eq!(t.s.recv(t.id, &mut [0; 4]), Err(TcpError::WouldBlock));
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"abcd");
        recv!(t, [flags: ACK, ack: r(9)]);
        assert_eq!(t.read_all(), b"abcdefgh");
        assert_eq!(t.s.chunks_in_use(), 0);
    }

    #[test]
    fn one_duplicate_ack_per_out_of_order_segment() {
        let mut t = established();
        let ack = t.l(1);
        for k in 1..4u32 {
            send!(t, flags: ACK, seq: r(1 + 100 * k), ack: ack, payload: &[0; 100]);
        }
        let out = t.out();
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|o| o.ack == r(1) && o.payload.is_empty()));
    }

    #[test]
    fn ooo_range_limit() {
        let mut t = established_with(
            TcpConfig {
                ooo_max_ranges: 2,
                ..cfg()
            },
            TcpOptions::default(),
        );
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(101), ack: ack, payload: &[1; 10]);
        send!(t, flags: ACK, seq: r(201), ack: ack, payload: &[1; 10]);
        send!(t, flags: ACK, seq: r(301), ack: ack, payload: &[1; 10]);
        assert_eq!(t.s.stats().drops.ooo_limit, 1);
        t.out();
    }

    #[test]
    fn per_core_ooo_chunk_limit() {
        let mut t = established_with(
            TcpConfig {
                ooo_max_chunks: 3,
                ..cfg()
            },
            TcpOptions::default(),
        );
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1001), ack: ack, payload: &[1; 500]);
        send!(t, flags: ACK, seq: r(3001), ack: ack, payload: &[1; 500]);
        assert_eq!(t.s.stats().drops.ooo_limit, 1);
        t.out();
    }

    #[test]
    fn sack_blocks_most_recent_first() {
        let mut t = established_with(
            TcpConfig {
                sack: true,
                ..cfg()
            },
            TcpOptions {
                mss: Some(1000),
                sack_permitted: true,
                ..TcpOptions::default()
            },
        );
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(101), ack: ack, payload: &[1; 100]);
        t.out();
        send!(t, flags: ACK, seq: r(301), ack: ack, payload: &[1; 100]);
        let o = recv!(t, [flags: ACK, ack: r(1)]);
        assert_eq!(
            o.options.sack(),
            &[
                SackBlock {
                    left: r(301),
                    right: r(401)
                },
                SackBlock {
                    left: r(101),
                    right: r(201)
                }
            ]
        );
    }

    #[test]
    fn send_would_block_at_the_buffer_limit_then_writable() {
        let mut t = established();
        t.s.set_send_buffer(t.id, 2000).unwrap();
        assert_eq!(t.write(5000), 2000);
        assert_eq!(t.s.send(t.id, b"x"), Err(TcpError::WouldBlock));
        assert!(!t.s.is_writable(t.id));
        t.out();
        t.s.drain_events(&mut |_, _| {});
        let ack = t.l(1001);
        send!(t, flags: ACK, seq: r(1), ack: ack);
        let mut evs = Vec::new();
        t.s.drain_events(&mut |_, ev| evs.push(ev));
        assert_eq!(evs, vec![FlowEvents::WRITABLE]);
        assert!(t.s.is_writable(t.id));
    }

    #[test]
    fn pool_exhaustion_is_would_block_not_panic() {
        let mut t = established_with(
            TcpConfig {
                chunk_count: 4,
                ..cfg()
            },
            TcpOptions::default(),
        );
        assert_eq!(t.write(5000), 2048);
        assert_eq!(t.s.send(t.id, b"x"), Err(TcpError::WouldBlock));
        // The receive side sees a closed window rather than a crash.
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: &[1; 100]);
        assert_eq!(t.s.stats().drops.pool_exhausted, 1);
    }

    #[test]
    fn writer_blocked_on_the_pool_is_woken_when_chunks_free() {
        let mut t = established_with(
            TcpConfig {
                chunk_count: 4,
                ..cfg()
            },
            TcpOptions::default(),
        );
        // Another connection holds every chunk.
        send!(t, flags: SYN, seq: r(0), src_port: RPORT + 1);
        let iss = recv!(t, [flags: SYN | ACK]).seq;
        send!(t, flags: ACK, seq: r(1), ack: iss + 1, src_port: RPORT + 1, payload: &[5; 2048]);
        let other = t.s.accept(t.listener.unwrap()).unwrap();
        t.out();
        assert_eq!(t.s.send(t.id, b"x"), Err(TcpError::WouldBlock));
        t.s.drain_events(&mut |_, _| {});
        // The other reader drains its buffer: chunks come back.
        let mut buf = [0u8; 4096];
        assert_eq!(t.s.recv(other, &mut buf), Ok(2048));
        let mut evs = Vec::new();
        t.s.drain_events(&mut |id, ev| evs.push((id, ev)));
        assert!(evs.contains(&(t.id, FlowEvents::WRITABLE)), "{evs:?}");
        assert_eq!(t.s.send(t.id, b"x"), Ok(1));
    }

    #[test]
    fn window_shrinks_as_data_waits_and_reopens_on_read() {
        let mut t = established_with(
            TcpConfig {
                recv_buffer: 4096,
                ..cfg()
            },
            TcpOptions {
                mss: Some(1000),
                ..TcpOptions::default()
            },
        );
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: &[1; 1000]);
        send!(t, flags: ACK, seq: r(1001), ack: ack, payload: &[1; 1000]);
        recv!(t, [flags: ACK, ack: r(2001), window: 2096]);
        send!(t, flags: ACK, seq: r(2001), ack: ack, payload: &[1; 1000]);
        send!(t, flags: ACK, seq: r(3001), ack: ack, payload: &[1; 1000]);
        recv!(t, [flags: ACK, ack: r(4001), window: 96]);
        // Reading reopens the window: a window update goes out.
        assert_eq!(t.read_all().len(), 4000);
        recv!(t, [flags: ACK, ack: r(4001), window: 4096]);
    }

    #[test]
    fn zero_window_accepts_ack_at_rcv_nxt() {
        let mut t = established_with(
            TcpConfig {
                recv_buffer: 1024,
                ..cfg()
            },
            TcpOptions::default(),
        );
        t.write(10);
        t.out();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: &[1; 1024]);
        t.advance(Duration::from_millis(40));
        recv!(t, [flags: ACK, window: 0]);
        // Data at RCV.NXT with a zero window: the ACK field still counts.
        let ack = t.l(11);
        send!(t, flags: ACK, seq: r(1025), ack: ack, payload: b"more");
        assert_eq!(t.s.send_queue(t.id), Ok(0));
        recv!(t, [flags: ACK, ack: r(1025)]);
    }

    #[test]
    fn old_segment_does_not_update_the_window() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"ab", window: 3000);
        t.out();
        // A reordered older segment (SND.WL1 > SEG.SEQ) carrying a stale
        // window must not shrink SND.WND.
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 100);
        t.write(3000);
        let total: usize = t.out().iter().map(|o| o.payload.len()).sum();
        assert_eq!(total, 3000);
    }

    #[test]
    fn nagle_holds_small_segments_until_acked() {
        let mut t = established();
        t.write(10);
        recv!(t, [len: 10]);
        t.write(10);
        t.write(10);
        recv!(t, []);
        let ack = t.l(11);
        send!(t, flags: ACK, seq: r(1), ack: ack);
        recv!(t, [len: 20, seq: t.l(11)]);
        t.s.set_nodelay(t.id, true).unwrap();
        assert_eq!(t.s.nodelay(t.id), Ok(true));
        t.write(5);
        recv!(t, [len: 5]);
    }

    #[test]
    fn data_carries_the_ack_no_separate_pure_ack() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: &[1; 1000]);
        send!(t, flags: ACK, seq: r(1001), ack: ack, payload: &[1; 1000]);
        t.write(100);
        recv!(t, [flags: ACK | PSH, ack: r(2001), len: 100]);
    }

    #[test]
    fn nagle_and_delayed_ack_release_after_40_ms() {
        let mut t = established();
        t.write(10);
        recv!(t, [len: 10]);
        t.write(10);
        // The peer delays its ACK; our small segment waits for it.
        let (d, _) = t.wait_output(Duration::from_millis(30));
        assert_eq!(d, Duration::from_millis(30));
        t.advance(Duration::from_millis(10));
        let ack = t.l(11);
        send!(t, flags: ACK, seq: r(1), ack: ack);
        recv!(t, [len: 10, seq: t.l(11)]);
    }

    #[test]
    fn shutdown_then_write_is_broken_pipe() {
        let mut t = established();
        t.s.shutdown_write(t.id).unwrap();
        assert_eq!(t.s.send(t.id, b"x"), Err(TcpError::BrokenPipe));
        recv!(t, [flags: FIN | ACK]);
    }

    #[test]
    fn close_with_unread_data_resets() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"unread");
        t.s.close(t.id).unwrap();
        recv!(t, [flags: RST | ACK, seq: t.l(1), ack: r(7)]);
        assert_eq!(t.s.sockets_in_use(), 1);
        assert_eq!(t.s.chunks_in_use(), 0);
    }

    #[test]
    fn abort_sends_rst_and_frees() {
        let mut t = established();
        t.write(100);
        t.out();
        t.s.abort(t.id).unwrap();
        recv!(t, [flags: RST | ACK, seq: t.l(101)]);
        assert_eq!(t.s.state(t.id), Err(TcpError::InvalidSocket));
        assert_eq!(t.s.sockets_in_use(), 1);
        assert_eq!(t.s.chunks_in_use(), 0);
    }

    #[test]
    fn stale_id_is_invalid_socket() {
        let mut t = established();
        t.s.abort(t.id).unwrap();
        assert_eq!(t.s.send(t.id, b"x"), Err(TcpError::InvalidSocket));
        assert_eq!(t.s.recv(t.id, &mut [0; 1]), Err(TcpError::InvalidSocket));
        assert_eq!(t.s.close(t.id), Err(TcpError::InvalidSocket));
    }
}

// =========================================================================
// RFC 5961 in the synchronized states
// =========================================================================

mod rfc5961 {
    use super::*;

    #[test]
    fn rst_exactly_at_rcv_nxt_resets() {
        let mut t = established();
        send!(t, flags: RST, seq: r(1));
        assert_eq!(t.state(), State::Closed);
        assert_eq!(t.s.recv(t.id, &mut [0; 1]), Err(TcpError::ConnectionReset));
        assert_eq!(t.s.take_error(t.id), Ok(Some(TcpError::ConnectionReset)));
        assert_eq!(t.s.send(t.id, b"x"), Err(TcpError::BrokenPipe));
        recv!(t, []);
    }

    #[test]
    fn rst_in_window_gets_challenge_ack() {
        let mut t = established();
        send!(t, flags: RST, seq: r(10));
        recv!(t, [flags: ACK, seq: t.l(1), ack: r(1)]);
        assert_eq!(t.state(), State::Established);
        assert_eq!(t.s.stats().challenge_acks, 1);
    }

    #[test]
    fn rst_out_of_window_is_dropped_silently() {
        let mut t = established();
        send!(t, flags: RST, seq: r(1_000_000));
        recv!(t, []);
        assert_eq!(t.state(), State::Established);
    }

    #[test]
    fn syn_gets_challenge_ack() {
        let mut t = established();
        send!(t, flags: SYN, seq: r(100));
        recv!(t, [flags: ACK, ack: r(1)]);
        // Even one outside the window.
        send!(t, flags: SYN, seq: r(1_000_000));
        recv!(t, [flags: ACK, ack: r(1)]);
        assert_eq!(t.state(), State::Established);
    }

    #[test]
    fn ack_of_unsent_data_gets_ack_and_is_dropped() {
        let mut t = established();
        let bad = t.l(50);
        send!(t, flags: ACK, seq: r(1), ack: bad, payload: b"data");
        recv!(t, [flags: ACK, ack: r(1)]);
        assert_eq!(t.s.recv_queue(t.id), Ok(0));
    }

    #[test]
    fn too_old_ack_gets_challenge_ack_and_is_dropped() {
        // §5.2: SEG.ACK < SND.UNA - MAX.SND.WND: "send an ACK, drop the
        // segment, and return".
        let mut t = established();
        let old = SeqNumber(t.l(1).0.wrapping_sub(200_000));
        send!(t, flags: ACK, seq: r(1), ack: old, payload: b"data");
        recv!(t, [flags: ACK, seq: t.l(1), ack: r(1)]);
        assert_eq!(t.s.stats().drops.bad_ack, 1);
        assert_eq!(t.s.stats().challenge_acks, 1);
        assert_eq!(t.s.recv_queue(t.id), Ok(0));
    }

    #[test]
    fn land_syn_makes_no_storm() {
        // A SYN from our own address and port to that port (LAND): the
        // half-open connection's SYN-ACK comes back to itself (the
        // loopback), out of window. Each answer is a challenge under the
        // per-core limit, so the loop is bounded.
        let mut t = listen_with(TcpConfig {
            challenge_ack_limit: 10,
            ..cfg()
        });
        let syn = TcpRepr {
            src_port: LPORT,
            flags: SYN,
            ..seg()
        };
        t.s.input(t.now, LOCAL, LOCAL, &syn);
        let mut sent = 0;
        for _ in 0..2000 {
            // The loopback: what went out comes back in, a tick later.
            for o in t.out() {
                sent += 1;
                let back = TcpRepr {
                    src_port: o.src_port,
                    dst_port: o.dst_port,
                    seq: o.seq,
                    ack: o.ack,
                    flags: o.flags,
                    window: o.window,
                    options: o.options,
                    payload: &o.payload,
                    ..seg()
                };
                t.s.input(t.now, o.src, o.dst, &back);
            }
            t.advance(Duration::from_millis(1));
        }
        // Two seconds: the SYN-ACK, at most 10 challenges a second, and the
        // SYN-ACK retransmission timer.
        assert!(sent <= 1 + 2 * 10 + 2, "{sent} segments in 2 s");
        assert!(t.s.stats().challenge_acks_limited > 0);
        assert!(t.s.stats().drops.out_of_window > 0);
    }

    #[test]
    fn out_of_window_syn_acks_are_answered_within_the_rate_limit() {
        let mut t = established_with(
            TcpConfig {
                challenge_ack_limit: 5,
                ..cfg()
            },
            TcpOptions::default(),
        );
        let mut answers = 0;
        for k in 0..100u32 {
            let ack = t.l(1);
            send!(t, flags: SYN | ACK, seq: r(1_000_000 + k), ack: ack);
            answers += t.out().len();
        }
        assert_eq!(answers, 5);
        assert_eq!(t.s.stats().challenge_acks_limited, 95);
        // Out-of-window SYNs too.
        t.advance(Duration::from_secs(1));
        let mut answers = 0;
        for k in 0..100u32 {
            send!(t, flags: SYN, seq: r(2_000_000 + k));
            answers += t.out().len();
        }
        assert_eq!(answers, 5);
        assert_eq!(t.state(), State::Established);
    }

    #[test]
    fn unacceptable_syn_acks_in_syn_sent_get_rate_limited_rsts() {
        let mut t = syn_sent_with(TcpConfig {
            challenge_ack_limit: 4,
            ..cfg()
        });
        let mut rsts = 0;
        for k in 0..50u32 {
            let bad = t.l(1000 + k);
            send!(t, flags: SYN | ACK, src_port: RPORT, dst_port: LPORT, seq: r(0), ack: bad);
            rsts += t.out().iter().filter(|o| o.flags.contains(RST)).count();
        }
        assert_eq!(rsts, 4);
        assert_eq!(t.s.stats().drops.bad_ack, 50);
        assert_eq!(t.state(), State::SynSent);
    }

    #[test]
    fn too_old_acks_are_answered_within_the_rate_limit() {
        let mut t = established_with(
            TcpConfig {
                challenge_ack_limit: 3,
                ..cfg()
            },
            TcpOptions::default(),
        );
        let old = SeqNumber(t.l(1).0.wrapping_sub(200_000));
        let mut answers = 0;
        for _ in 0..50 {
            send!(t, flags: ACK, seq: r(1), ack: old);
            answers += t.out().len();
        }
        assert_eq!(answers, 3);
        assert_eq!(t.s.stats().challenge_acks_limited, 47);
        assert_eq!(t.s.stats().drops.bad_ack, 50);
    }

    #[test]
    fn challenge_acks_are_rate_limited_per_core() {
        let mut t = established_with(
            TcpConfig {
                challenge_ack_limit: 2,
                ..cfg()
            },
            TcpOptions::default(),
        );
        for k in 0..3 {
            send!(t, flags: RST, seq: r(10 + k));
            t.out();
        }
        assert_eq!(t.s.stats().challenge_acks, 2);
        assert_eq!(t.s.stats().challenge_acks_limited, 1);
        t.advance(Duration::from_secs(1));
        send!(t, flags: RST, seq: r(20));
        recv!(t, [flags: ACK]);
    }
}

// =========================================================================
// The send window: nothing past the peer's right edge (RFC 9293 §3.8.6)
// =========================================================================

mod send_window {
    use super::*;

    /// Every segment's data ends at or before `edge`.
    fn within(out: &[Out], edge: SeqNumber) -> bool {
        out.iter()
            .all(|o| o.payload.is_empty() || o.seq + o.payload.len() <= edge)
    }

    #[test]
    fn ack_on_a_retransmitted_segment_updates_the_window() {
        // Issue 10's stall: a segment of the peer's is lost, its later
        // segments move SND.WL1 past it; its retransmission (SEG.SEQ <
        // SND.WL1) carries the current ACK and a window that closed as our
        // data arrived. The ACK moves SND.UNA; SND.WND must move with it,
        // or the right edge SND.UNA + SND.WND grows past anything the peer
        // advertised.
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: &[7; 100], window: 2000);
        // r(101)..r(201) is lost.
        send!(t, flags: ACK, seq: r(201), ack: ack, payload: &[7; 100], window: 2000);
        t.out();
        t.write(4000);
        let out = t.out();
        assert!(within(&out, t.l(2001)), "{out:#?}");
        assert_eq!(out.iter().map(|o| o.payload.len()).sum::<usize>(), 2000);
        let ack = t.l(1001);
        send!(t, flags: ACK, seq: r(101), ack: ack, payload: &[7; 100], window: 1000);
        let out = t.out();
        // The right edge is l(2001), already reached: only the ACK of the
        // filled gap goes out.
        assert!(
            within(&out, t.l(2001)),
            "sent past the right edge: {out:#?}"
        );
        assert!(out.iter().all(|o| o.payload.is_empty()), "{out:#?}");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ack, r(301));
        // The peer opens the window: the rest flows.
        send!(t, flags: ACK, seq: r(301), ack: ack, window: 3000);
        let out = t.out();
        assert!(within(&out, t.l(4001)), "{out:#?}");
        assert_eq!(out.iter().map(|o| o.payload.len()).sum::<usize>(), 2000);
    }

    #[test]
    fn older_ack_does_not_set_the_window() {
        // RFC 9293 §3.10.7.4: the window is updated only when SND.UNA =<
        // SEG.ACK: an older ACK's window counts from an older SND.UNA.
        let mut t = established();
        t.write(2000);
        assert_eq!(t.out().len(), 2);
        let ack = t.l(2001);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: &[7; 10], window: 1000);
        t.out();
        let old = t.l(1001);
        send!(t, flags: ACK, seq: r(11), ack: old, window: 2500);
        t.write(3000);
        let out = t.out();
        assert!(
            within(&out, t.l(3001)),
            "sent past the right edge: {out:#?}"
        );
        assert_eq!(out.iter().map(|o| o.payload.len()).sum::<usize>(), 1000);
    }

    #[test]
    fn fast_retransmit_resends_only_what_was_sent() {
        // The segment at SND.UNA is resent as it was: less than an MSS
        // outstanding is not topped up with new data past SND.MAX (and the
        // right edge).
        let mut t = established();
        t.write(100);
        recv!(t, [seq: t.l(1), len: 100]);
        let una = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: una, window: 100);
        t.write(3000);
        recv!(t, []);
        for _ in 0..3 {
            send!(t, flags: ACK, seq: r(1), ack: una, window: 100);
        }
        let out = t.out();
        assert_eq!(t.s.stats().fast_retransmits, 1);
        assert!(within(&out, t.l(101)), "sent past the right edge: {out:#?}");
        assert_eq!(out[0].seq, una);
        assert_eq!(out[0].payload.len(), 100);
    }

    #[test]
    fn fin_waits_for_room_in_the_window() {
        // The FIN takes a sequence number: it goes only inside the window,
        // so that SND.MAX (the sequence number of our ACKs) never passes
        // the peer's right edge; a zero window is probed, then the FIN goes.
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 1000);
        t.write(1000);
        t.s.shutdown_write(t.id).unwrap();
        let o = recv!(t, [seq: t.l(1), len: 1000]);
        assert!(!o.flags.contains(FIN), "{o:?}");
        let ack = t.l(1001);
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 0);
        recv!(t, []);
        // The persist timer probes the zero window (SEG.SEQ = SND.UNA - 1).
        let (_, out) = t.wait_output(Duration::from_secs(5));
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].seq, t.l(1000));
        assert!(out[0].payload.is_empty() && !out[0].flags.contains(FIN));
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 10);
        recv!(t, [flags: FIN | ACK, seq: t.l(1001)]);
        assert_eq!(t.state(), State::FinWait1);
    }
}

// =========================================================================
// Retransmission: RTO, backoff, retry limit, fast retransmit, SACK
// =========================================================================

mod retransmission {
    use super::*;

    #[test]
    fn rto_backs_off_exponentially() {
        let mut t = established();
        t.write(100);
        recv!(t, [len: 100]);
        let mut gaps = Vec::new();
        for _ in 0..4 {
            let (d, out) = t.wait_output(Duration::from_secs(60));
            assert_eq!(out[0].seq, t.l(1));
            gaps.push(d.as_secs());
        }
        assert_eq!(gaps, vec![1, 2, 4, 8]);
        assert_eq!(t.s.stats().rto_expired, 4);
    }

    #[test]
    fn rto_uses_the_measured_rtt() {
        let mut t = established();
        t.write(100);
        t.out();
        t.advance(Duration::from_millis(100));
        let ack = t.l(101);
        send!(t, flags: ACK, seq: r(1), ack: ack);
        // SRTT 100 ms, RTTVAR 50 ms: RTO = 300 ms.
        t.write(100);
        t.out();
        let (d, _) = t.wait_output(Duration::from_secs(5));
        assert_eq!(d, Duration::from_millis(300));
    }

    #[test]
    fn retry_limit_times_out() {
        let mut t = established_with(
            TcpConfig {
                data_retries: 2,
                ..cfg()
            },
            TcpOptions::default(),
        );
        t.write(100);
        t.out();
        t.advance(Duration::from_secs(1 + 2 + 4));
        assert_eq!(t.state(), State::Closed);
        assert_eq!(t.s.take_error(t.id), Ok(Some(TcpError::TimedOut)));
        assert_eq!(t.s.stats().conns_timed_out, 1);
    }

    #[test]
    fn go_back_n_after_rto() {
        let mut t = established();
        t.write(3000);
        assert_eq!(t.out().len(), 3);
        let (_, out) = t.wait_output(Duration::from_secs(2));
        // cwnd collapses to one segment after the timeout.
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].seq, t.l(1));
        let ack = t.l(1001);
        send!(t, flags: ACK, seq: r(1), ack: ack);
        let out = t.out();
        assert_eq!(out[0].seq, t.l(1001));
    }

    #[test]
    fn fast_retransmit_after_three_dup_acks() {
        let mut t = established_with(
            TcpConfig {
                congestion: super::super::stack::CongestionKind::NewReno,
                ..cfg()
            },
            TcpOptions {
                mss: Some(1000),
                ..TcpOptions::default()
            },
        );
        t.write(4000);
        assert_eq!(t.out().len(), 4);
        let una = t.l(1001);
        send!(t, flags: ACK, seq: r(1), ack: una);
        t.out();
        for _ in 0..2 {
            send!(t, flags: ACK, seq: r(1), ack: una);
            recv!(t, []);
        }
        send!(t, flags: ACK, seq: r(1), ack: una);
        recv!(t, [seq: una, len: 1000]);
        assert_eq!(t.s.stats().fast_retransmits, 1);
        // A partial ACK retransmits the next hole at once (RFC 6582).
        let next = t.l(2001);
        send!(t, flags: ACK, seq: r(1), ack: next);
        let out = t.out();
        assert_eq!(out[0].seq, next);
    }

    #[test]
    fn sack_recovery_retransmits_the_hole_only() {
        let mut t = established_with(
            TcpConfig {
                sack: true,
                ..cfg()
            },
            TcpOptions {
                mss: Some(1000),
                sack_permitted: true,
                ..TcpOptions::default()
            },
        );
        // Grow cwnd first.
        t.write(4000);
        t.out();
        let ack = t.l(4001);
        send!(t, flags: ACK, seq: r(1), ack: ack);
        t.write(5000);
        let out = t.out();
        assert_eq!(out.len(), 5);
        // Segment 4001..5001 is lost; the peer SACKs the rest.
        let una = t.l(4001);
        for k in 1..4u32 {
            let mut o = TcpOptions::default();
            o.push_sack(SackBlock {
                left: t.l(5001),
                right: t.l(5001 + 1000 * k),
            });
            send!(t, flags: ACK, seq: r(1), ack: una, options: o);
        }
        let out = t.out();
        assert!(!out.is_empty());
        // The lost segment, then (NextSeg rule 4) the one rescue
        // retransmission of the highest un-SACKed segment; nothing the
        // peer SACKed is sent again.
        let segs: Vec<_> = out
            .iter()
            .map(|o| (o.seq - t.l(0), o.payload.len()))
            .collect();
        assert_eq!(segs, vec![(4001, 1000), (8001, 1000)]);
        assert_eq!(t.s.stats().fast_retransmits, 1);
    }
}

// =========================================================================
// Persist (zero window) and keepalive
// =========================================================================

mod probes {
    use super::*;

    #[test]
    fn zero_window_probes_back_off() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 0);
        t.write(100);
        recv!(t, []);
        let mut gaps = Vec::new();
        for _ in 0..3 {
            let (d, out) = t.wait_output(Duration::from_secs(60));
            assert_eq!((out[0].seq, out[0].payload.len()), (t.l(0), 0));
            gaps.push(d.as_secs());
        }
        assert_eq!(gaps, vec![1, 2, 4]);
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 1000);
        recv!(t, [seq: t.l(1), len: 100]);
        assert_eq!(t.state(), State::Established);
    }

    /// Found by the `tcp_established` fuzz target: a peer that
    /// advertises a zero window and then answers nothing kept the
    /// connection probing forever (and a closed socket, its slot and
    /// chunks, never went away).
    #[test]
    fn unanswered_zero_window_probes_time_out() {
        let mut c = cfg();
        c.data_retries = 3;
        let mut t = established_with(c, TcpOptions::default());
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 0);
        t.write(100);
        recv!(t, []);
        assert_eq!(probes_until_timeout(&mut t), 4);
    }

    /// Runs the timers until the connection times out; returns the
    /// probes sent on the way.
    fn probes_until_timeout(t: &mut T) -> usize {
        let mut probes = 0;
        while t.state() != State::Closed {
            let (_, out) = t.wait_output(Duration::from_secs(120));
            assert!(probes < 10, "still probing after {probes} probes");
            probes += out.len();
        }
        assert_eq!(t.s.take_error(t.id), Ok(Some(TcpError::TimedOut)));
        probes
    }

    /// The window closed well before the data was written: the persist
    /// timer's first expiry sends the first probe, which no one could
    /// have answered yet, so it is not counted as unanswered (when the
    /// "answered" test compared instants, a write later than the
    /// window's closing lost one probe).
    #[test]
    fn a_write_long_after_the_window_closed_gets_every_probe() {
        let mut c = cfg();
        c.data_retries = 3;
        let mut t = established_with(c, TcpOptions::default());
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 0);
        t.advance(Duration::from_secs(5));
        t.write(100);
        recv!(t, []);
        assert_eq!(probes_until_timeout(&mut t), 4);
    }

    #[test]
    fn answered_zero_window_probes_keep_the_connection() {
        let mut c = cfg();
        c.data_retries = 3;
        let mut t = established_with(c, TcpOptions::default());
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 0);
        t.write(100);
        recv!(t, []);
        for _ in 0..8 {
            let (_, out) = t.wait_output(Duration::from_secs(120));
            assert_eq!(out.len(), 1);
            send!(t, flags: ACK, seq: r(1), ack: ack, window: 0);
        }
        assert_eq!(t.state(), State::Established);
    }

    #[test]
    fn closed_socket_behind_a_silent_zero_window_is_freed() {
        let mut c = cfg();
        c.data_retries = 3;
        let mut t = established_with(c, TcpOptions::default());
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 0);
        t.write(100);
        t.s.close(t.id).unwrap();
        recv!(t, []);
        for _ in 0..20 {
            t.wait_output(Duration::from_secs(120));
        }
        assert_eq!(t.s.sockets_in_use(), 1, "only the listener is left");
        assert_eq!(t.s.chunks_in_use(), 0);
    }

    #[test]
    fn keepalive_probes_and_times_out() {
        let mut c = cfg();
        c.keepalive.idle = Duration::from_secs(10);
        c.keepalive.interval = Duration::from_secs(1);
        c.keepalive.count = 2;
        let mut t = established_with(c, TcpOptions::default());
        t.s.set_keepalive(t.id, true).unwrap();
        let (d, out) = t.wait_output(Duration::from_secs(20));
        assert_eq!(d, Duration::from_secs(10));
        assert_eq!((out[0].seq, out[0].flags), (t.l(0), ACK));
        let (d, _) = t.wait_output(Duration::from_secs(20));
        assert_eq!(d, Duration::from_secs(1));
        t.advance(Duration::from_secs(1));
        assert_eq!(t.state(), State::Closed);
        assert_eq!(t.s.take_error(t.id), Ok(Some(TcpError::TimedOut)));
    }

    #[test]
    fn keepalive_timing_per_socket() {
        let mut t = established();
        let timing = super::super::stack::KeepaliveConfig {
            idle: Duration::from_secs(3),
            interval: Duration::from_secs(1),
            count: 1,
        };
        t.s.set_keepalive_timing(t.id, timing).unwrap();
        t.s.set_keepalive(t.id, true).unwrap();
        let (d, _) = t.wait_output(Duration::from_secs(10));
        assert_eq!(d, Duration::from_secs(3));
        t.advance(Duration::from_secs(1));
        assert_eq!(t.state(), State::Closed);
        let bad = super::super::stack::KeepaliveConfig { count: 0, ..timing };
        assert_eq!(
            t.s.set_keepalive_timing(t.id, bad),
            Err(TcpError::InvalidInput)
        );
    }

    #[test]
    fn keepalive_off_by_default() {
        let mut t = established();
        let (_, out) = t.wait_output(Duration::from_secs(8000));
        assert!(out.is_empty());
    }
}

// =========================================================================
// Timestamps (RFC 7323) and window scaling
// =========================================================================

mod options {
    use super::*;

    fn ts_established() -> T {
        established_with(
            TcpConfig {
                timestamps: true,
                ..cfg()
            },
            TcpOptions {
                mss: Some(1000),
                timestamp: Some((100, 0)),
                ..TcpOptions::default()
            },
        )
    }

    #[test]
    fn timestamps_are_echoed() {
        let mut t = ts_established();
        let ack = t.l(1);
        let o = TcpOptions {
            timestamp: Some((150, 0)),
            ..TcpOptions::default()
        };
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: &[1; 1000], options: o);
        send!(t, flags: ACK, seq: r(1001), ack: ack, payload: &[1; 1000], options: o);
        let out = recv!(t, [flags: ACK]);
        assert_eq!(out.options.timestamp.map(|(_, e)| e), Some(150));
    }

    #[test]
    fn paws_drops_old_segments() {
        let mut t = ts_established();
        let ack = t.l(1);
        let old = TcpOptions {
            timestamp: Some((50, 0)),
            ..TcpOptions::default()
        };
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"old", options: old);
        let o = recv!(t, [flags: ACK, ack: r(1)]);
        assert_eq!(o.options.timestamp.map(|(_, e)| e), Some(100));
        assert_eq!(t.s.stats().drops.paws, 1);
        assert_eq!(t.s.recv_queue(t.id), Ok(0));
    }

    #[test]
    fn paws_spares_a_segment_once_ts_recent_is_24_days_old() {
        // RFC 7323 §5.5: after 24 days idle TS.Recent is invalid; a TSval
        // "older" than it is accepted (and becomes TS.Recent).
        let old = TcpOptions {
            timestamp: Some((50, 0)),
            ..TcpOptions::default()
        };
        let day = Duration::from_secs(24 * 3600);
        let mut t = ts_established();
        let ack = t.l(1);
        t.now += day * 23;
        t.s.poll_timers(t.now);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"old", options: old);
        recv!(t, [flags: ACK, ack: r(1)]);
        assert_eq!(t.s.stats().drops.paws, 1, "23 days: still a duplicate");
        t.now += day;
        t.s.poll_timers(t.now);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"old", options: old);
        t.advance(Duration::from_millis(500)); // the delayed ACK
        recv!(t, [flags: ACK, ack: r(4)]);
        assert_eq!(t.s.stats().drops.paws, 1);
        assert_eq!(t.s.recv_queue(t.id), Ok(3));
        // TS.Recent is the accepted TSval now, and fresh: PAWS is back.
        let older = TcpOptions {
            timestamp: Some((40, 0)),
            ..TcpOptions::default()
        };
        send!(t, flags: ACK, seq: r(4), ack: ack, payload: b"x", options: older);
        let o = recv!(t, [flags: ACK, ack: r(4)]);
        assert_eq!(o.options.timestamp.map(|(_, e)| e), Some(50));
        assert_eq!(t.s.stats().drops.paws, 2);
    }

    #[test]
    fn ts_recent_only_from_segments_at_last_ack_sent() {
        let mut t = ts_established();
        let ack = t.l(1);
        // Out of order (SEG.SEQ > Last.ACK.sent): TS.Recent stays.
        let o = TcpOptions {
            timestamp: Some((500, 0)),
            ..TcpOptions::default()
        };
        send!(t, flags: ACK, seq: r(101), ack: ack, payload: b"x", options: o);
        let out = recv!(t, [flags: ACK]);
        assert_eq!(out.options.timestamp.map(|(_, e)| e), Some(100));
    }

    #[test]
    fn rtt_from_timestamp_echo() {
        let mut t = ts_established();
        t.write(10);
        let o = recv!(t, [len: 10]);
        let (val, _) = o.options.timestamp.unwrap();
        t.advance(Duration::from_millis(50));
        let ack = t.l(11);
        let opts = TcpOptions {
            timestamp: Some((200, val)),
            ..TcpOptions::default()
        };
        send!(t, flags: ACK, seq: r(1), ack: ack, options: opts);
        let tcb = t.s.tcbs.get(t.id).unwrap();
        assert_eq!(tcb.rtt.srtt(), Some(Duration::from_millis(50)));
    }

    #[test]
    fn forged_timestamp_echo_gives_no_rtt_sample() {
        let mut t = ts_established();
        t.write(10);
        let o = recv!(t, [len: 10]);
        let (val, _) = o.options.timestamp.unwrap();
        let ack = t.l(11);
        // An echo from the future, or from long ago, is no sample.
        let opts = TcpOptions {
            timestamp: Some((200, val.wrapping_add(1_000_000))),
            ..TcpOptions::default()
        };
        send!(t, flags: ACK, seq: r(1), ack: ack, options: opts);
        let tcb = t.s.tcbs.get(t.id).unwrap();
        assert_eq!(tcb.rtt.srtt(), None);
    }

    #[test]
    fn window_scale_applies_both_ways() {
        let mut t = established_with(
            TcpConfig {
                window_scaling: true,
                recv_buffer: 1 << 20,
                ..cfg()
            },
            TcpOptions {
                mss: Some(1000),
                window_scale: Some(2),
                ..TcpOptions::default()
            },
        );
        let ack = t.l(1);
        // 1000 << 2 = 4000 bytes of window.
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 1000, payload: b"x");
        t.out();
        t.write(10_000);
        let out = t.out();
        let total: usize = out.iter().map(|o| o.payload.len()).sum();
        assert_eq!(total, 4000);
        // Our shift for a 1 MiB buffer is 5; the window field is scaled.
        let tcb = t.s.tcbs.get(t.id).unwrap();
        assert_eq!(tcb.receive.wscale, 5);
        assert!(usize::from(out[0].window) << 5 <= 1 << 20);
    }

    #[test]
    fn mss_from_mtu() {
        let mut t = listen_with(TcpConfig { mtu: 9000, ..cfg() });
        send!(t, flags: SYN, seq: r(0));
        let o = recv!(t, [flags: SYN | ACK]);
        assert_eq!(o.options.mss, Some(8960));
    }
}

// =========================================================================
// FIN-WAIT-1, FIN-WAIT-2, CLOSING, TIME-WAIT, CLOSE-WAIT, LAST-ACK
// =========================================================================

mod closing {
    use super::*;

    #[test]
    fn active_close_through_time_wait_frees_the_socket() {
        let mut t = time_wait();
        // The TCB slot is freed on entering TIME-WAIT: only the listener
        // holds one; the 4-tuple lives on in the compact entry.
        assert_eq!(t.s.state(t.id), Err(TcpError::InvalidSocket));
        assert_eq!(t.s.sockets_in_use(), 1);
        assert_eq!(t.s.flows(), 0);
        assert_eq!(t.s.time_wait_sockets(), 1);
        t.advance(Duration::from_secs(59));
        assert!(t.in_time_wait());
        t.advance(Duration::from_secs(2));
        assert!(!t.in_time_wait());
        assert_eq!(t.s.time_wait_sockets(), 0);
    }

    #[test]
    fn fin_ack_in_fin_wait_1_goes_to_time_wait() {
        let mut t = fin_wait_1();
        let ack = t.l(2);
        send!(t, flags: FIN | ACK, seq: r(1), ack: ack);
        assert!(t.in_time_wait());
        recv!(t, [flags: ACK, ack: r(2)]);
    }

    #[test]
    fn simultaneous_close_via_closing() {
        let mut t = fin_wait_1();
        let ack = t.l(1);
        send!(t, flags: FIN | ACK, seq: r(1), ack: ack);
        assert_eq!(t.state(), State::Closing);
        recv!(t, [flags: ACK, ack: r(2)]);
        let ack = t.l(2);
        send!(t, flags: ACK, seq: r(2), ack: ack);
        assert!(t.in_time_wait());
    }

    #[test]
    fn fin_is_retransmitted() {
        let mut t = fin_wait_1();
        let (d, out) = t.wait_output(Duration::from_secs(5));
        assert_eq!(d, Duration::from_secs(1));
        assert_eq!((out[0].flags, out[0].seq), (FIN | ACK, t.l(1)));
    }

    #[test]
    fn data_still_received_in_fin_wait_2() {
        let mut t = established();
        t.s.shutdown_write(t.id).unwrap();
        t.out();
        let ack = t.l(2);
        send!(t, flags: ACK, seq: r(1), ack: ack);
        assert_eq!(t.state(), State::FinWait2);
        send!(t, flags: ACK | FIN, seq: r(1), ack: ack, payload: b"late");
        assert_eq!(t.read_all(), b"late");
        assert_eq!(t.s.recv(t.id, &mut [0; 1]), Ok(0));
        assert!(t.in_time_wait());
    }

    #[test]
    fn data_after_close_in_fin_wait_1_resets() {
        let mut t = fin_wait_1();
        // The peer has not seen our FIN yet (it ACKs only up to it).
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"body nobody reads");
        recv!(t, [flags: RST, seq: ack]);
        assert_eq!(t.s.state(t.id), Err(TcpError::InvalidSocket));
        assert_eq!(t.s.stats().aborts_on_data, 1);
        assert_eq!(t.s.sockets_in_use(), 1);
        assert_eq!(t.s.chunks_in_use(), 0);
    }

    #[test]
    fn data_after_close_in_fin_wait_2_resets() {
        let mut t = fin_wait_2();
        let ack = t.l(2);
        send!(t, flags: ACK | PSH, seq: r(1), ack: ack, payload: b"more");
        recv!(t, [flags: RST, seq: ack]);
        assert_eq!(t.s.state(t.id), Err(TcpError::InvalidSocket));
        assert_eq!(t.s.stats().aborts_on_data, 1);
        // Whatever follows meets no connection: RST again, not an ACK.
        send!(t, flags: ACK, seq: r(5), ack: ack, payload: b"rest");
        recv!(t, [flags: RST, seq: ack]);
    }

    #[test]
    fn old_data_after_close_is_not_reset() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"read");
        recv!(t, []);
        assert_eq!(t.read_all(), b"read");
        t.s.close(t.id).unwrap();
        recv!(t, [flags: FIN | ACK, seq: ack, ack: r(5)]);
        // A retransmission of what was read carries nothing new: only an
        // ACK, the connection goes on closing.
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"read");
        recv!(t, [flags: ACK, ack: r(5)]);
        assert_eq!(t.state(), State::FinWait1);
        assert_eq!(t.s.stats().aborts_on_data, 0);
    }

    #[test]
    fn half_closed_socket_keeps_receiving() {
        let mut t = established();
        t.s.shutdown_write(t.id).unwrap();
        recv!(t, [flags: FIN | ACK]);
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"still read");
        assert_eq!(t.state(), State::FinWait1);
        assert_eq!(t.read_all(), b"still read");
        assert_eq!(t.s.stats().aborts_on_data, 0);
        assert_eq!(t.s.stats().resets_sent, 0);
    }

    #[test]
    fn time_wait_acks_retransmitted_fin_and_restarts() {
        let mut t = time_wait();
        t.advance(Duration::from_secs(50));
        let ack = t.l(2);
        send!(t, flags: FIN | ACK, seq: r(1), ack: ack);
        recv!(t, [flags: ACK, ack: r(2)]);
        t.advance(Duration::from_secs(50));
        assert!(t.in_time_wait());
        t.advance(Duration::from_secs(12));
        assert!(!t.in_time_wait());
    }

    #[test]
    fn time_wait_reused_by_syn_above_rcv_nxt() {
        let mut t = time_wait();
        send!(t, flags: SYN, seq: r(1000));
        let o = recv!(t, [flags: SYN | ACK, ack: r(1001)]);
        assert_ne!(o.seq, t.l(0));
        assert_eq!(t.s.stats().time_wait_reused, 1);
        assert_eq!(t.s.state(t.id), Err(TcpError::InvalidSocket));
    }

    #[test]
    fn time_wait_not_reused_by_old_syn() {
        let mut t = time_wait();
        send!(t, flags: SYN, seq: r(0));
        recv!(t, [flags: ACK, ack: r(2)]);
        assert!(t.in_time_wait());
    }

    #[test]
    fn time_wait_restarts_at_most_once_a_second() {
        let mut t = time_wait();
        let ack = t.l(2);
        for _ in 0..10 {
            send!(t, flags: FIN | ACK, seq: r(1), ack: ack);
            t.out();
        }
        let n = t.s.tw.expiry_records();
        assert!(n <= 2, "{n}");
    }

    #[test]
    fn time_wait_rst_closes() {
        let mut t = time_wait();
        send!(t, flags: RST, seq: r(2));
        assert!(!t.in_time_wait());
        assert_eq!(t.s.stats().time_wait_reset, 1);
    }

    #[test]
    fn time_wait_does_not_take_a_tcb_slot() {
        // Slots: the listener and one connection. A second connection fits
        // while the first is in TIME-WAIT.
        let mut t = established_with(
            TcpConfig {
                max_connections: 2,
                ..cfg()
            },
            TcpOptions::default(),
        );
        t.s.close(t.id).unwrap();
        t.out();
        let ack = t.l(2);
        send!(t, flags: FIN | ACK, seq: r(1), ack: ack);
        recv!(t, [flags: ACK, ack: r(2)]);
        assert!(t.in_time_wait());
        assert_eq!(t.s.sockets_in_use(), 1);
        send!(t, flags: SYN, seq: r(0), src_port: RPORT + 1);
        recv!(t, [flags: SYN | ACK, ack: r(1)]);
        assert_eq!(t.s.sockets_in_use(), 2);
        assert!(t.in_time_wait());
    }

    #[test]
    fn time_wait_ignores_rst_off_rcv_nxt_and_pure_acks() {
        let mut t = time_wait();
        send!(t, flags: RST, seq: r(5));
        let ack = t.l(2);
        send!(t, flags: ACK, seq: r(2), ack: ack);
        recv!(t, []);
        assert!(t.in_time_wait());
        assert_eq!(t.s.stats().time_wait_reset, 0);
        // Old data is acknowledged.
        send!(t, flags: ACK, seq: r(0), ack: ack, payload: b"x");
        recv!(t, [flags: ACK, seq: t.l(2), ack: r(2)]);
    }

    #[test]
    fn time_wait_paws_acks_an_old_timestamp() {
        let ts = |v| TcpOptions {
            timestamp: Some((v, 0)),
            ..TcpOptions::default()
        };
        let mut t = established_with(
            TcpConfig {
                timestamps: true,
                ..cfg()
            },
            ts(100),
        );
        t.s.close(t.id).unwrap();
        t.out();
        let ack = t.l(2);
        send!(t, flags: ACK, seq: r(1), ack: ack, options: ts(101));
        send!(t, flags: FIN | ACK, seq: r(1), ack: ack, options: ts(102));
        let o = recv!(t, [flags: ACK, ack: r(2)]);
        assert_eq!(o.options.timestamp.map(|(_, ecr)| ecr), Some(102));
        assert_eq!(
            t.s.time_wait_entry((LOCAL, LPORT), (REMOTE, RPORT))
                .map(|e| e.ts_recent),
            Some(102)
        );
        send!(t, flags: FIN | ACK, seq: r(1), ack: ack, options: ts(50));
        recv!(t, [flags: ACK, ack: r(2)]);
        assert_eq!(t.s.stats().drops.paws, 1);
        // A SYN with a newer timestamp reopens it (RFC 6191).
        send!(t, flags: SYN, seq: r(0), options: ts(200));
        recv!(t, [flags: SYN | ACK, ack: r(1)]);
        assert_eq!(t.s.stats().time_wait_reused, 1);
        assert!(!t.in_time_wait());
    }

    #[test]
    fn time_wait_cap_closes_without_time_wait_counted() {
        let mut t = fin_wait_2();
        t.s.tw = super::super::time_wait::TimeWaitTable::new(0, 1);
        let ack = t.l(2);
        send!(t, flags: FIN | ACK, seq: r(1), ack: ack);
        // The FIN is still acknowledged; nothing is held.
        recv!(t, [flags: ACK, ack: r(2)]);
        assert!(!t.in_time_wait());
        assert_eq!(t.s.stats().time_wait_overflow, 1);
        assert_eq!(t.s.sockets_in_use(), 1);
        assert_eq!(t.s.flows(), 0);
    }

    #[test]
    fn passive_close_close_wait_last_ack() {
        let mut t = close_wait();
        assert_eq!(t.s.recv(t.id, &mut [0; 4]), Ok(0));
        t.write(5);
        recv!(t, [len: 5]);
        t.s.close(t.id).unwrap();
        recv!(t, [flags: FIN | ACK, seq: t.l(6)]);
        assert_eq!(t.state(), State::LastAck);
        let ack = t.l(7);
        send!(t, flags: ACK, seq: r(2), ack: ack);
        assert_eq!(t.s.state(t.id), Err(TcpError::InvalidSocket));
        assert_eq!(t.s.sockets_in_use(), 1);
        assert_eq!(t.s.chunks_in_use(), 0);
    }

    #[test]
    fn out_of_order_fin_waits_for_the_gap() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK | FIN, seq: r(4), ack: ack, payload: b"de");
        t.out();
        assert_eq!(t.state(), State::Established);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"abc");
        assert_eq!(t.state(), State::CloseWait);
        recv!(t, [flags: ACK, ack: r(7)]);
        assert_eq!(t.read_all(), b"abcde");
    }

    #[test]
    fn orphaned_fin_wait_2_times_out() {
        let mut t = fin_wait_2();
        t.advance(Duration::from_secs(61));
        assert_eq!(t.s.state(t.id), Err(TcpError::InvalidSocket));
    }

    #[test]
    fn shutdown_keeps_socket_until_close() {
        let mut t = established();
        t.s.shutdown_write(t.id).unwrap();
        t.out();
        let ack = t.l(2);
        send!(t, flags: FIN | ACK, seq: r(1), ack: ack);
        t.out();
        t.advance(Duration::from_secs(61));
        // Not closed by the user: the slot remains, CLOSED.
        assert_eq!(t.state(), State::Closed);
        t.s.close(t.id).unwrap();
        assert_eq!(t.s.sockets_in_use(), 1);
    }

    #[test]
    fn active_open_reuses_time_wait_tuple_safely() {
        // Our active close leaves TIME-WAIT; connect to the same peer from
        // the same port takes it over when timestamps protect it.
        let mut t = syn_sent_with(TcpConfig {
            timestamps: true,
            ..cfg()
        });
        let ack = t.l(1);
        let ts = TcpOptions {
            timestamp: Some((1, 1)),
            ..TcpOptions::default()
        };
        send!(t, flags: SYN | ACK, seq: r(0), ack: ack, options: ts);
        t.out();
        t.s.close(t.id).unwrap();
        t.out();
        let ack = t.l(2);
        send!(t, flags: FIN | ACK, seq: r(1), ack: ack, options: ts);
        t.out();
        assert!(t.in_time_wait());
        let remote = SocketAddrV4::new(REMOTE, RPORT);
        let local = Some(SocketAddrV4::new(LOCAL, LPORT));
        assert_eq!(t.s.connect(t.now, remote, local), Err(TcpError::AddrInUse));
        t.advance(Duration::from_secs(2));
        let old_max = t.l(2);
        let id = t.s.connect(t.now, remote, local).unwrap();
        let o = recv!(t, [flags: SYN]);
        assert!(o.seq > old_max);
        assert_eq!(t.s.state(id), Ok(State::SynSent));
    }
}

// =========================================================================
// SYN cookies
// =========================================================================

mod cookies {
    use super::*;

    fn flood_cfg() -> TcpConfig {
        TcpConfig {
            syn_backlog: 0,
            ..cfg()
        }
    }

    #[test]
    fn cookie_round_trip() {
        let mut t = listen_with(flood_cfg());
        send!(t, flags: SYN, seq: r(0), options: TcpOptions { mss: Some(1400), ..TcpOptions::default() });
        let o = recv!(t, [flags: SYN | ACK, ack: r(1)]);
        assert_eq!(t.s.sockets_in_use(), 1, "no state kept");
        send!(t, flags: ACK, seq: r(1), ack: o.seq + 1);
        let id = t.s.accept(t.listener.unwrap()).unwrap();
        assert_eq!(t.s.state(id), Ok(State::Established));
        assert_eq!(t.s.stats().syn_cookies_accepted, 1);
        // The MSS came back from the cookie (1300, the table entry below 1400).
        assert_eq!(t.s.tcbs.get(id).unwrap().send.mss, 1300);
    }

    #[test]
    fn syn_queue_full_answers_with_a_cookie_counted() {
        let mut t = listen_with(TcpConfig {
            syn_backlog: 1,
            ..cfg()
        });
        send!(t, flags: SYN, seq: r(0));
        recv!(t, [flags: SYN | ACK, ack: r(1)]);
        send!(t, flags: SYN, seq: r(0), src_port: RPORT + 1);
        recv!(t, [flags: SYN | ACK, ack: r(1)]);
        assert_eq!(t.s.sockets_in_use(), 2, "the cookie keeps no state");
        assert_eq!(t.s.stats().syn_queue_cookies, 1);
        assert_eq!(t.s.stats().syn_cookies_sent, 1);
        assert_eq!(t.s.stats().drops.syn_queue_full, 0);
    }

    #[test]
    fn bad_cookie_gets_rst() {
        let mut t = listen_with(flood_cfg());
        send!(t, flags: SYN, seq: r(0));
        let o = recv!(t, [flags: SYN | ACK]);
        send!(t, flags: ACK, seq: r(1), ack: o.seq + 7);
        recv!(t, [flags: RST]);
        assert_eq!(t.s.stats().drops.bad_cookie, 1);
        assert_eq!(t.s.accept(t.listener.unwrap()), Err(TcpError::WouldBlock));
    }
}

// =========================================================================
// Dispatch, events, pools
// =========================================================================

mod machinery {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn emit_refusal_keeps_output_queued() {
        let mut t = established();
        t.write(3000);
        let mut n = 0;
        let sent = t.s.dispatch(t.now, 100, &mut |_, _, _| {
            n += 1;
            n <= 1
        });
        assert_eq!(sent, 1);
        let out = t.out();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].seq, t.l(1001));
    }

    #[test]
    fn budget_limits_each_dispatch() {
        let mut t = established();
        t.write(3000);
        assert_eq!(t.s.dispatch(t.now, 2, &mut |_, _, _| true), 2);
        assert_eq!(t.s.dispatch(t.now, 2, &mut |_, _, _| true), 1);
        assert!(!t.s.has_output());
    }

    #[test]
    fn control_before_ack_before_data() {
        let mut t = established();
        // Data queued on the first connection, a SYN-ACK owed on a second,
        // an ACK owed on the first.
        t.s.set_nodelay(t.id, true).unwrap();
        t.write(10);
        send!(t, flags: SYN, seq: r(0), src_port: RPORT + 1);
        let out = t.out();
        assert_eq!(out[0].flags, SYN | ACK);
        assert_eq!(out[1].payload.len(), 10);
    }

    #[test]
    fn wakers_woken_once_per_tick() {
        let mut t = established();
        let c = Arc::new(Count(AtomicUsize::new(0)));
        let w = Waker::from(c.clone());
        t.s.register_read_waker(t.id, &w).unwrap();
        let ack = t.l(1);
        send!(t, flags: ACK, seq: r(1), ack: ack, payload: b"a");
        send!(t, flags: ACK, seq: r(2), ack: ack, payload: b"b");
        send!(t, flags: FIN | ACK, seq: r(3), ack: ack);
        assert_eq!(t.s.wake_pending(), 1);
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
        assert_eq!(t.s.wake_pending(), 0);
    }

    #[test]
    fn write_waker_on_ack() {
        let mut t = established();
        let c = Arc::new(Count(AtomicUsize::new(0)));
        let w = Waker::from(c.clone());
        t.write(100);
        t.out();
        t.s.wake_pending();
        t.s.register_write_waker(t.id, &w).unwrap();
        let ack = t.l(101);
        send!(t, flags: ACK, seq: r(1), ack: ack);
        t.s.wake_pending();
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn pools_return_to_initial_counts() {
        let mut t = listen();
        for p in 0..10u16 {
            send!(t, flags: SYN, seq: r(0), src_port: 2000 + p);
            let iss = recv!(t, [flags: SYN | ACK]).seq;
            send!(t, flags: ACK, seq: r(1), ack: iss + 1, src_port: 2000 + p, payload: &[7; 700]);
            t.id = t.s.accept(t.listener.unwrap()).unwrap();
            assert_eq!(t.read_all().len(), 700);
            t.s.send(t.id, &[1; 900]).unwrap();
            t.out();
            send!(t, flags: RST, seq: r(701), src_port: 2000 + p);
            t.s.close(t.id).unwrap();
        }
        t.out();
        assert_eq!(t.s.chunks_in_use(), 0);
        assert_eq!(t.s.sockets_in_use(), 1);
        assert_eq!(t.s.flows(), 0);
        t.s.close(t.listener.unwrap()).unwrap();
        assert_eq!(t.s.sockets_in_use(), 0);
    }

    #[test]
    fn table_full_answers_syn_with_rst() {
        // The listener and one child fill the table.
        let mut t = listen_with(TcpConfig {
            max_connections: 2,
            ..cfg()
        });
        send!(t, flags: SYN, seq: r(0));
        recv!(t, [flags: SYN | ACK]);
        send!(t, flags: SYN, seq: r(0), src_port: RPORT + 1);
        recv!(t, [flags: RST | ACK, seq: SeqNumber(0), ack: r(1)]);
        assert_eq!(t.s.stats().table_full_resets, 1);
        assert_eq!(t.s.stats().drops.no_tcb, 1);
    }

    #[test]
    fn slab_is_built_as_used() {
        let mut t = T::new(TcpConfig {
            max_connections: 1 << 20,
            ..cfg()
        });
        assert_eq!(t.s.sockets_built(), 0);
        let remote = SocketAddrV4::new(REMOTE, 9);
        let a = t.s.connect(t.now, remote, None).unwrap();
        t.s.connect(t.now, remote, None).unwrap();
        assert_eq!(t.s.sockets_built(), 2);
        t.s.abort(a).unwrap();
        t.s.connect(t.now, remote, None).unwrap();
        // The freed slot was reused.
        assert_eq!(t.s.sockets_built(), 2);
    }

    #[test]
    fn socket_slab_exhaustion_is_no_resources() {
        let mut t = T::new(TcpConfig {
            max_connections: 2,
            ..cfg()
        });
        let remote = SocketAddrV4::new(REMOTE, 9);
        t.s.connect(t.now, remote, None).unwrap();
        t.s.connect(t.now, remote, None).unwrap();
        assert_eq!(t.s.connect(t.now, remote, None), Err(TcpError::NoResources));
    }

    #[test]
    fn idle_connection_holds_no_chunk() {
        let mut t = established();
        t.write(5000);
        t.out();
        let ack = t.l(1);
        send!(t, flags: ACK | PSH, seq: r(1), ack: ack, payload: &[3; 3000]);
        assert!(t.s.chunks_in_use() > 0);
        assert_eq!(t.read_all().len(), 3000);
        for acked in [4001, 5001] {
            let ack = t.l(acked);
            send!(t, flags: ACK, seq: r(3001), ack: ack);
            t.out();
        }
        assert_eq!(t.s.send_queue(t.id), Ok(0));
        assert_eq!(t.s.chunks_in_use(), 0);
        assert_eq!(t.state(), State::Established);
    }

    #[test]
    fn next_deadline_tracks_timers() {
        let mut t = established();
        // The handshake's retransmission timer stopped; its wheel entry
        // stays (lazy cancellation) and fires once, with nothing to do.
        let stale = t.s.next_deadline().unwrap();
        assert!(stale <= t.now + Duration::from_secs(1));
        t.advance(stale - t.now);
        assert!(t.out().is_empty());
        assert_eq!(t.s.next_deadline(), None);
        t.write(10);
        t.out();
        let d = t.s.next_deadline().unwrap();
        assert_eq!(d, t.now + Duration::from_secs(1));
    }

    #[test]
    fn urgent_data_is_counted_and_delivered() {
        let mut t = established();
        let ack = t.l(1);
        send!(t, flags: ACK | TcpFlags::URG, seq: r(1), ack: ack, payload: b"u", urgent: 1);
        assert_eq!(t.s.stats().urgent_ignored, 1);
        assert_eq!(t.read_all(), b"u");
    }
}

mod icmp;
mod reaping;

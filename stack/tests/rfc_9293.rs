//! RFC 9293 Appendix B requirements that no other test covered (see
//! docs/conformance.md), the seven violations found by the first review
//! included (they failed before their fixes).

use std::net::SocketAddrV4;

use mtcp_stack::tcp::SocketId;
use mtcp_stack::tcp::{State, TcpConfig, TcpError, TcpStack};
use mtcp_stack::testing::run_script;
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::ipv4::Ipv4Address;
use mtcp_stack::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use mtcp_stack::wire::SeqNumber;

mod support;

const A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

fn script(s: &str) {
    if let Err(e) = run_script(s) {
        panic!("{e}");
    }
}

/// A segment emitted by `dispatch`, payload copied.
struct Seg {
    src: Ipv4Address,
    dst: Ipv4Address,
    repr: TcpRepr<'static>,
    data: Vec<u8>,
}

fn out(s: &mut TcpStack, now: Instant) -> Vec<Seg> {
    let mut v = Vec::new();
    s.dispatch(now, 1000, &mut |src, dst, r| {
        v.push(Seg {
            src,
            dst,
            repr: TcpRepr { payload: &[], ..*r },
            data: r.payload.to_vec(),
        });
        true
    });
    v
}

fn deliver(to: &mut TcpStack, now: Instant, segs: &[Seg]) {
    for s in segs {
        let r = TcpRepr {
            payload: &s.data,
            ..s.repr
        };
        to.input(now, s.src, s.dst, &r);
    }
}

/// Two stacks with one established connection (a connected to b:80).
fn established(cfg: TcpConfig) -> (TcpStack, TcpStack, SocketId, SocketId, Instant) {
    let mut a = TcpStack::new(cfg.clone(), &[A]).unwrap();
    let mut b = TcpStack::new(TcpConfig { seed: 7, ..cfg }, &[B]).unwrap();
    let l = b.listen(SocketAddrV4::new(B, 80), 4).unwrap();
    let mut now = Instant::from_secs(1);
    let c = a.connect(now, SocketAddrV4::new(B, 80), None).unwrap();
    let mut s = None;
    for _ in 0..8 {
        now += Duration::from_millis(1);
        let x = out(&mut a, now);
        deliver(&mut b, now, &x);
        let y = out(&mut b, now);
        deliver(&mut a, now, &y);
        s = s.or_else(|| b.accept(l).ok());
    }
    let s = s.expect("accepted");
    assert_eq!(a.state(c).unwrap(), State::Established);
    (a, b, c, s, now)
}

/// MUST-42 (§3.9.1.1): LISTEN on a port while a connection with the same
/// local port is in SYN-SENT.
#[test]
fn must_42_listen_while_a_connection_on_the_port_is_in_syn_sent() {
    let mut a = TcpStack::new(TcpConfig::default(), &[A]).unwrap();
    let now = Instant::from_secs(1);
    let c = a
        .connect(
            now,
            SocketAddrV4::new(B, 80),
            Some(SocketAddrV4::new(A, 5000)),
        )
        .unwrap();
    assert_eq!(a.state(c).unwrap(), State::SynSent);
    let l = a.listen(SocketAddrV4::new(A, 5000), 4).unwrap();
    assert_eq!(a.state(l).unwrap(), State::Listen);
    assert_eq!(a.state(c).unwrap(), State::SynSent);
}

/// MUST-46 (§3.9.1.1): an OPEN to a broadcast or multicast address is
/// rejected.
#[test]

fn must_46_connect_to_broadcast_or_multicast_is_rejected() {
    let mut a = TcpStack::new(TcpConfig::default(), &[A]).unwrap();
    let now = Instant::from_secs(1);
    for ip in [
        Ipv4Address::BROADCAST,
        Ipv4Address::new(224, 0, 0, 1),
        Ipv4Address::new(239, 1, 2, 3),
    ] {
        let r = a.connect(now, SocketAddrV4::new(ip, 80), None);
        assert!(r.is_err(), "connect to {ip} was accepted");
    }
}

/// MUST-63 (§3.9.2.1 / RFC 1122 §4.2.3.10): a SYN from a broadcast or
/// multicast source is rejected (no SYN-ACK, no connection).
#[test]

fn must_63_syn_from_broadcast_or_multicast_source_is_dropped() {
    let mut b = TcpStack::new(TcpConfig::default(), &[B]).unwrap();
    b.listen(SocketAddrV4::new(B, 80), 4).unwrap();
    let now = Instant::from_secs(1);
    for src in [Ipv4Address::BROADCAST, Ipv4Address::new(224, 0, 0, 5)] {
        let syn = TcpRepr {
            src_port: 4000,
            dst_port: 80,
            seq: SeqNumber(1000),
            ack: SeqNumber(0),
            flags: TcpFlags::SYN,
            window: 65535,
            urgent: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        b.input(now, src, B, &syn);
        let o = out(&mut b, now);
        assert!(o.is_empty(), "answered a SYN from {src}");
    }
    assert_eq!(b.sockets_in_use(), 1, "only the listener");
}

/// MUST-16 (§3.7.1): the data of a segment is at most the effective send
/// MSS, which accounts for the TCP options the segment carries: every
/// segment fits the MTU, also when it carries SACK blocks.
#[test]

fn must_16_full_segments_with_sack_blocks_fit_the_mtu() {
    let (mut a, mut b, c, s, mut now) = established(TcpConfig::default());
    // b sends two segments; the first is lost, so a holds out-of-order data
    // and puts SACK blocks on everything it sends.
    let mss_b = 3000;
    assert_eq!(b.send(s, &vec![1u8; mss_b]).unwrap(), mss_b);
    let segs = out(&mut b, now);
    assert!(segs.len() >= 2);
    deliver(&mut a, now, &segs[1..]);
    let _dup_acks = out(&mut a, now);
    // a sends full-sized segments.
    assert_eq!(a.send(c, &vec![2u8; 20_000]).unwrap(), 20_000);
    now += Duration::from_millis(1);
    let mtu = TcpConfig::default().mtu;
    let mut checked = 0;
    for seg in out(&mut a, now) {
        let r = TcpRepr {
            payload: &seg.data,
            ..seg.repr
        };
        assert!(r.options.sack_len > 0, "out-of-order data is SACKed");
        assert!(
            20 + r.buffer_len() <= mtu,
            "IP datagram of {} bytes > MTU {mtu}",
            20 + r.buffer_len()
        );
        checked += 1;
    }
    assert!(checked > 0);
}

/// MUST-23 (§3.8.3): with the default configuration, a SYN is retransmitted
/// for at least 3 minutes before the open fails.
#[test]

fn must_23_syn_retransmitted_for_at_least_three_minutes() {
    let mut a = TcpStack::new(TcpConfig::default(), &[A]).unwrap();
    let t0 = Instant::from_secs(1);
    let c = a.connect(t0, SocketAddrV4::new(B, 80), None).unwrap();
    let mut now = t0;
    while now < t0 + Duration::from_secs(180) {
        now += Duration::from_millis(100);
        a.poll_timers(now);
        let _ = out(&mut a, now);
        assert_eq!(
            a.state(c).unwrap(),
            State::SynSent,
            "gave up after {} s",
            (now - t0).as_secs()
        );
    }
}

/// MUST-22 (§3.8.3): SYN retransmissions fail the open the general way,
/// with the application told (timed out).
#[test]
fn must_22_syn_retransmissions_report_a_timeout() {
    let mut a = TcpStack::new(
        TcpConfig {
            syn_retries: 2,
            ..TcpConfig::default()
        },
        &[A],
    )
    .unwrap();
    let t0 = Instant::from_secs(1);
    let c = a.connect(t0, SocketAddrV4::new(B, 80), None).unwrap();
    let mut syns = 0;
    let mut now = t0;
    while now < t0 + Duration::from_secs(30) && a.state(c) == Ok(State::SynSent) {
        a.poll_timers(now);
        syns += out(&mut a, now)
            .iter()
            .filter(|s| s.repr.flags.contains(TcpFlags::SYN))
            .count();
        now += Duration::from_millis(100);
    }
    assert_eq!(syns, 3, "first SYN and two retransmissions");
    assert!(a.state(c).is_err() || a.state(c) == Ok(State::Closed));
    let e = a.take_error(c);
    assert!(
        matches!(e, Ok(Some(TcpError::TimedOut)) | Err(TcpError::TimedOut)),
        "{e:?}"
    );
}

/// SHLD-2 (§3.5.3): a RST may carry data; an acceptable RST with data
/// resets the connection all the same.
#[test]
fn shld_2_rst_with_data_is_processed() {
    script(
        "0.000 listen 8080
0.000 < S 0:0(0) win 65535 <mss 1000>
0.000 > S. 0:0(0) ack 1 <mss 1460>
+0.010 < . 1:1(0) ack 1 win 65535
+0 accept
+0.010 < R. 1:21(20) ack 1 win 65535
+0 state CLOSED
+0 read 1 = ECONNRESET
",
    );
}

/// MUST-66 (§3.8.6): a RST is processed with a zero receive window.
#[test]
fn must_66_rst_processed_with_a_zero_window() {
    script(
        "config recv_buffer 1024
config timestamps false
0.000 listen 8080
0.000 < S 0:0(0) win 65535 <mss 1000>
0.000 > S. 0:0(0) ack 1 win 1024 <mss 1460>
+0.010 < . 1:1(0) ack 1 win 65535
+0 accept
+0.010 < P. 1:1001(1000) ack 1 win 65535
+0 < P. 1001:1025(24) ack 1 win 65535
+0.040 > . 1:1(0) ack 1025 win 0
+0.010 < R. 1025:1025(0) ack 1 win 65535
+0 state CLOSED
",
    );
}

/// MUST-65 (§3.7.1): the MSS option is sent only on SYN segments; MUST-14:
/// it is sent (and its value is the MTU less 40, MUST-67).
#[test]
fn must_65_mss_only_on_syn_segments() {
    let (mut a, mut b, c, s, now) = established(TcpConfig::default());
    a.send(c, b"hello").unwrap();
    let segs = out(&mut a, now);
    deliver(&mut b, now, &segs);
    assert!(!segs.is_empty());
    for seg in &segs {
        assert_eq!(seg.repr.options.mss, None);
    }
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(s, &mut buf).unwrap(), 5);
    // And a SYN does carry it.
    let mut x = TcpStack::new(TcpConfig::default(), &[A]).unwrap();
    x.connect(now, SocketAddrV4::new(B, 81), None).unwrap();
    let syn = out(&mut x, now);
    assert_eq!(syn[0].repr.options.mss, Some(1460));
}

/// MUST-11 (§3.10.7.4): SYN-RECEIVED remembers whether it came from an
/// active open: a RST there after a simultaneous open refuses the user's
/// connect (a passive child would just be freed).
#[test]
fn must_11_rst_in_syn_received_after_active_open_refuses() {
    script(
        "0.000 connect 5000
0.000 > S 0:0(0) <...>
+0.010 < S 0:0(0) win 65535 <mss 1000>
+0 > S. 0:0(0) ack 1 <...>
+0 state SYN-RECEIVED
+0.010 < R 1:1(0) win 0
+0 state CLOSED
+0 error ECONNREFUSED
",
    );
}

/// MUST-37 (§3.8.6.1): a zero window may stay zero indefinitely: as long as
/// the peer answers the probes, the connection is not timed out (here for
/// an hour of virtual time, far past the data retry limit).
#[test]
fn must_37_zero_window_held_for_an_hour() {
    let cfg = TcpConfig {
        recv_buffer: 4096,
        data_retries: 3,
        ..TcpConfig::default()
    };
    let (mut a, mut b, c, s, mut now) = established(cfg);
    // b never reads: its window closes.
    let mut sent = 0;
    let end = now + Duration::from_secs(3600);
    while now < end {
        if let Ok(n) = a.send(c, &[7u8; 1000]) {
            sent += n;
        }
        a.poll_timers(now);
        b.poll_timers(now);
        let x = out(&mut a, now);
        deliver(&mut b, now, &x);
        let y = out(&mut b, now);
        deliver(&mut a, now, &y);
        now += Duration::from_millis(500);
    }
    assert!(sent > 4096, "more was written than the window holds");
    assert_eq!(a.state(c).unwrap(), State::Established);
    assert!(a.stats().window_probes >= 10, "{}", a.stats().window_probes);
    // The window opens again: everything arrives.
    let mut got = 0;
    let mut buf = [0u8; 8192];
    for _ in 0..10_000 {
        while let Ok(n) = b.recv(s, &mut buf) {
            if n == 0 {
                break;
            }
            got += n;
        }
        if got == sent {
            break;
        }
        now += Duration::from_millis(50);
        a.poll_timers(now);
        b.poll_timers(now);
        let y = out(&mut b, now);
        deliver(&mut a, now, &y);
        let x = out(&mut a, now);
        deliver(&mut b, now, &x);
    }
    assert_eq!(got, sent);
}

/// MUST-26 (§3.8.4): keep-alives are sent only when no sent data is
/// outstanding (and nothing was received for the interval).
#[test]

fn must_26_no_keepalive_while_data_is_outstanding() {
    let cfg = TcpConfig {
        data_retries: 15,
        ..TcpConfig::default()
    };
    let (mut a, _b, c, _s, mut now) = established(cfg);
    a.set_keepalive_timing(
        c,
        mtcp_stack::tcp::KeepaliveConfig {
            idle: Duration::from_secs(2),
            interval: Duration::from_secs(1),
            count: 100,
        },
    )
    .unwrap();
    a.set_keepalive(c, true).unwrap();
    // Data goes out and the peer goes silent: retransmissions, never a
    // keep-alive.
    a.send(c, b"request").unwrap();
    let end = now + Duration::from_secs(20);
    while now < end {
        a.poll_timers(now);
        let _ = out(&mut a, now);
        now += Duration::from_millis(100);
    }
    assert!(a.stats().retransmits > 0);
    assert_eq!(a.stats().keepalive_probes, 0);
}

/// MUST-9 (§3.4.1, RFC 6528): the ISN's pseudo-random function must not be
/// computable from outside the host, so its secret must not be a public
/// constant: two stacks built with the default configuration must not pick
/// the same ISN for the same connection at the same time.
#[test]

fn must_9_default_isn_secret_is_not_a_constant() {
    let isn = || {
        let mut a = TcpStack::new(TcpConfig::default(), &[A]).unwrap();
        let now = Instant::from_secs(1);
        a.connect(
            now,
            SocketAddrV4::new(B, 80),
            Some(SocketAddrV4::new(A, 40000)),
        )
        .unwrap();
        out(&mut a, now)[0].repr.seq
    };
    assert_ne!(isn(), isn(), "ISN predictable from the default seed");
}

/// MUST-39 (§3.8.6.2.2): receiver SWS avoidance: reading a little of a full
/// buffer does not open the window (the right edge moves only by at least
/// min(MSS, buffer / 2)); reading the rest does, with a window update.
#[test]
fn must_39_receiver_sws_avoidance() {
    script(
        "config recv_buffer 4096
config timestamps false
0.000 listen 8080
0.000 < S 0:0(0) win 65535 <mss 1000>
0.000 > S. 0:0(0) ack 1 win 4096 <mss 1460>
+0.010 < . 1:1(0) ack 1 win 65535
+0 accept
+0 < . 1:1001(1000) ack 1 win 65535
+0 < . 1001:2001(1000) ack 1 win 65535
+0 > . 1:1(0) ack 2001 win 2096
+0 < . 2001:3001(1000) ack 1 win 65535
+0 < . 3001:4001(1000) ack 1 win 65535
+0 > . 1:1(0) ack 4001 win 96
+0.010 read 500
+0.100 read 3500
+0 > . 1:1(0) ack 4001 win 4096
",
    );
}

/// MUST-35 (§3.8.6), SHLD-17: when the peer shrinks its window to zero
/// while data is in flight, the sender probes the zero window in the
/// standard way and does not time the connection out while the peer keeps
/// answering (here the peer ACKs the first segment, offers a zero window,
/// and answers every later segment with the same ACK).
#[test]

fn must_35_window_shrunk_to_zero_is_probed_not_timed_out() {
    let cfg = TcpConfig {
        data_retries: 3,
        timestamps: false,
        ..TcpConfig::default()
    };
    let (mut a, mut b, c, _s, mut now) = established(cfg);
    a.send(c, &[9u8; 4000]).unwrap();
    let segs = out(&mut a, now);
    assert!(segs.len() >= 2, "{} segments", segs.len());
    // b receives only the first segment and ACKs it (delayed-ACK timer).
    deliver(&mut b, now, &segs[..1]);
    now += Duration::from_millis(200);
    b.poll_timers(now);
    let acks = out(&mut b, now);
    let mut ack = acks.last().expect("an ACK").repr;
    // ... with a zero window: the right edge moves left of SND.NXT.
    ack.window = 0;
    a.input(now, B, A, &ack);
    let end = now + Duration::from_secs(600);
    let mut answered = 0;
    while now < end {
        now += Duration::from_millis(100);
        a.poll_timers(now);
        for _ in out(&mut a, now) {
            // The peer is alive: every segment gets the same ACK.
            a.input(now, B, A, &ack);
            answered += 1;
        }
        assert_eq!(
            a.state(c),
            Ok(State::Established),
            "timed out after {answered} answered segments"
        );
    }
    assert!(answered >= 5, "the zero window was probed");
}

/// SHLD-11 (§3.8.3): with the default configuration, R2 for data (the time
/// before a connection with unacknowledged data gives up) is at least
/// 100 s. MUST-28 (§3.8.4): the default keep-alive idle time is at least
/// two hours.
#[test]
fn shld_11_default_r2_at_least_100_s_and_must_28_keepalive_default() {
    assert!(mtcp_stack::tcp::KeepaliveConfig::default().idle >= Duration::from_secs(7200));
    assert!(!TcpConfig::default().keepalive_default, "MUST-25: off");
    let (mut a, _b, c, _s, mut now) = established(TcpConfig::default());
    let t0 = now;
    a.send(c, b"lost").unwrap();
    while a.state(c) == Ok(State::Established) && now < t0 + Duration::from_secs(3600) {
        now += Duration::from_millis(100);
        a.poll_timers(now);
        let _ = out(&mut a, now);
    }
    let gave_up = now - t0;
    assert!(a.state(c) != Ok(State::Established), "never gave up");
    assert!(
        gave_up >= Duration::from_secs(100),
        "gave up after {gave_up:?}"
    );
}

/// MUST-40 (§3.8.6.3): the ACK delay is less than 0.5 s: the default is
/// 40 ms and a configuration above 500 ms is refused.
#[test]
fn must_40_delayed_ack_below_half_a_second() {
    assert!(TcpConfig::default().delayed_ack < Duration::from_millis(500));
    let bad = TcpConfig {
        delayed_ack: Duration::from_millis(501),
        ..TcpConfig::default()
    };
    let e = bad.validate().unwrap_err();
    assert_eq!(e.field, "delayed_ack");
    assert!(TcpStack::new(bad, &[A]).is_err());
}

/// MUST-58/MUST-59 (§3.10.7.4): segments processed together are ACKed
/// together: a burst of in-order full-sized segments delivered in one tick
/// gets one cumulative ACK, sent after all of them were processed.
#[test]
fn must_59_one_ack_for_a_burst_of_segments() {
    let (mut a, mut b, c, _s, now) = established(TcpConfig::default());
    a.send(c, &[3u8; 5 * 1400]).unwrap();
    let segs = out(&mut a, now);
    assert!(segs.len() >= 3, "{} segments", segs.len());
    let end = segs
        .iter()
        .map(|s| s.repr.seq + s.data.len())
        .max()
        .unwrap();
    deliver(&mut b, now, &segs);
    let acks = out(&mut b, now);
    assert_eq!(acks.len(), 1, "one ACK for the burst");
    assert_eq!(acks[0].repr.ack, end, "acknowledging all of it");
}

mod whole_stack {
    //! Requirements checked at the `Stack` level (frames over the memory NIC).

    use super::*;
    use mtcp_stack::nic::memory::MemoryNic;
    use mtcp_stack::nic::{FramePool, NicQueue};
    use mtcp_stack::stack::{Stack, StackConfig};
    use mtcp_stack::stats::DropReason;
    use mtcp_stack::wire::ethernet::EthernetAddress;
    use mtcp_stack::wire::ipv4::Ipv4Cidr;

    const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);

    fn syn_frame(pool: &mut FramePool, dst: Ipv4Address, corrupt: bool) -> mtcp_stack::nic::Frame {
        syn_frame_from(pool, B, dst, corrupt)
    }

    fn syn_frame_from(
        pool: &mut FramePool,
        src: Ipv4Address,
        dst: Ipv4Address,
        corrupt: bool,
    ) -> mtcp_stack::nic::Frame {
        // Broadcast MAC: the interface takes it, so only the IP address
        // decides.
        let eth = support::ipv4_eth(PEER_MAC, EthernetAddress::BROADCAST);
        let mut f = support::tcp_frame(pool, &eth, src, dst, 1, &support::syn(4000, 80, 1000));
        if corrupt {
            // Flip a bit of the TCP sequence number: the checksum no longer
            // matches (the IPv4 header checksum still does).
            f.as_mut_slice()[14 + 20 + 4] ^= 0x01;
        }
        f
    }

    fn server() -> (Stack, Box<dyn NicQueue>) {
        let (a, b) = MemoryNic::pair(1, 256);
        let cfg = StackConfig {
            addr: Ipv4Cidr {
                address: A,
                prefix_len: 24,
            },
            ..StackConfig::default()
        };
        let mut s = Stack::new(cfg, a.split_boxed().remove(0)).unwrap();
        s.tcp_mut().listen(SocketAddrV4::new(A, 80), 4).unwrap();
        (s, b.split_boxed().remove(0))
    }

    /// MUST-3 (§3.1): a segment with a bad checksum is dropped before TCP
    /// sees it; the same segment with a good checksum opens a connection.
    #[test]
    fn must_3_bad_tcp_checksum_is_dropped() {
        let (mut s, mut peer) = server();
        let mut pool = FramePool::new(8);
        let now = Instant::from_secs(1);
        let mut frames = vec![syn_frame(&mut pool, A, true)];
        peer.tx_burst(&mut frames, &mut pool);
        s.poll(now);
        assert_eq!(s.stats().drops(DropReason::BadChecksum), 1, "{}", s.stats());
        assert_eq!(s.tcp().stats().segs_in, 0);
        assert_eq!(s.tcp().sockets_in_use(), 1);
        let mut frames = vec![syn_frame(&mut pool, A, false)];
        peer.tx_burst(&mut frames, &mut pool);
        s.poll(now);
        assert_eq!(s.tcp().stats().segs_in, 1);
        assert_eq!(s.tcp().sockets_in_use(), 2, "listener + SYN-RECEIVED child");
    }

    /// MUST-57 (§3.9.2.1 / RFC 1122 §4.2.3.10): a SYN to a broadcast
    /// address is silently discarded.
    #[test]
    fn must_57_syn_to_broadcast_is_discarded() {
        let (mut s, mut peer) = server();
        let mut pool = FramePool::new(8);
        let now = Instant::from_secs(1);
        for dst in [Ipv4Address::BROADCAST, Ipv4Address::new(10, 0, 0, 255)] {
            let mut frames = vec![syn_frame(&mut pool, dst, false)];
            peer.tx_burst(&mut frames, &mut pool);
            s.poll(now);
            s.flush(now);
        }
        assert_eq!(s.tcp().stats().segs_in, 0);
        assert_eq!(s.tcp().sockets_in_use(), 1);
        assert_eq!(s.stats().drops(DropReason::NotForUs), 2);
        let mut rx = Vec::new();
        peer.rx_burst(&mut pool, &mut rx, 8);
        let ipv4 = rx
            .iter()
            .filter(|f| f.as_slice()[12..14] == [0x08, 0x00])
            .count();
        assert_eq!(ipv4, 0, "no IPv4 frame sent back (ARP announcements only)");
    }

    /// MUST-63 at the interface (RFC 1122 §3.2.1.3): a SYN whose source is
    /// the subnet's broadcast address (which the TCP engine cannot know) or
    /// a multicast address is discarded before TCP, unanswered, and counted
    /// as a martian.
    #[test]
    fn must_63_syn_from_subnet_broadcast_dropped_by_the_interface() {
        let (mut s, mut peer) = server();
        let mut pool = FramePool::new(8);
        let now = Instant::from_secs(1);
        for src in [
            Ipv4Address::new(10, 0, 0, 255),
            Ipv4Address::new(224, 0, 0, 9),
        ] {
            let mut frames = vec![syn_frame_from(&mut pool, src, A, false)];
            peer.tx_burst(&mut frames, &mut pool);
            s.poll(now);
            s.flush(now);
        }
        assert_eq!(s.tcp().stats().segs_in, 0, "TCP saw nothing");
        assert_eq!(s.stats().drops(DropReason::Martian), 2, "{}", s.stats());
        let mut rx = Vec::new();
        peer.rx_burst(&mut pool, &mut rx, 16);
        // Only the gratuitous ARP went out: no SYN-ACK, no RST.
        assert_eq!(rx.len(), 1);
    }

    /// MUST-46 for the subnet's broadcast address, which only the stack
    /// (not the TCP engine alone) knows.
    #[test]
    fn must_46_connect_to_the_subnet_broadcast_is_rejected() {
        let (mut s, _peer) = server();
        let r = s.tcp_mut().connect(
            Instant::from_secs(1),
            SocketAddrV4::new(Ipv4Address::new(10, 0, 0, 255), 80),
            None,
        );
        assert_eq!(r.unwrap_err(), TcpError::InvalidInput);
    }
}

/// MUST-38 (§3.8.6.2.1), sender SWS avoidance with RFC 1122 §4.2.3.4's
/// override timeout: data held back because the peer's window is smaller
/// than a segment and than half the largest window, with nothing in
/// flight, goes out when the override (persist) timer fires. Duplicate
/// ACKs repeating the small window must not cancel that timer: if the
/// peer's window update is lost, nothing else would ever send (found by
/// the simulation, seed 997).
#[test]
fn must_38_small_window_sent_by_the_override_timer_despite_duplicate_acks() {
    // No window scaling: the window field is the window.
    let cfg = TcpConfig {
        timestamps: false,
        window_scaling: false,
        ..TcpConfig::default()
    };
    let (mut a, mut b, c, _s, mut now) = established(cfg);
    a.send(c, &[7u8; 20_000]).unwrap();
    let segs = out(&mut a, now);
    assert!(!segs.is_empty());
    deliver(&mut b, now, &segs);
    now += Duration::from_millis(200);
    b.poll_timers(now);
    // b's ACK of everything, its window cut to 456 bytes (b's reader is
    // slow): less than a segment and than half the largest window.
    let mut ack = out(&mut b, now).last().expect("an ACK").repr;
    ack.window = 456;
    a.input(now, B, A, &ack);
    assert!(
        out(&mut a, now).iter().all(|s| s.data.is_empty()),
        "a 456-byte segment went out at once (sender SWS avoidance)"
    );
    // The same ACK again (a duplicate on the wire), a few times.
    let mut sent = 0;
    for _ in 0..3 {
        now += Duration::from_millis(10);
        a.input(now, B, A, &ack);
        sent += out(&mut a, now).iter().map(|s| s.data.len()).sum::<usize>();
    }
    assert_eq!(sent, 0, "duplicate ACKs do not open the window");
    // b's window update is lost; only the override timer can send now.
    let end = now + Duration::from_secs(10);
    while now < end && sent == 0 {
        now += Duration::from_millis(50);
        a.poll_timers(now);
        sent += out(&mut a, now).iter().map(|s| s.data.len()).sum::<usize>();
    }
    assert_eq!(sent, 456, "the override timer sent what the window allows");
}

//! ICMP errors delivered to a connection (`tcp/icmp.rs`): RFC 5927's
//! sequence check, RFC 1191's MSS shrink and path MTU table, RFC 1122
//! §4.2.3.9's soft and hard errors.

use super::*;
use crate::iface::icmp_error::{IcmpErrorKind, TcpIcmpError};

fn icmp(t: &T, kind: IcmpErrorKind, seq: SeqNumber) -> TcpIcmpError {
    let key = t.s.tcbs.at(t.id.index()).key;
    TcpIcmpError {
        kind,
        local: key.local_ip,
        remote: key.remote_ip,
        local_port: key.local_port,
        remote_port: key.remote_port,
        seq,
        sent_len: 1040,
    }
}

fn frag_needed(mtu: u16) -> IcmpErrorKind {
    IcmpErrorKind::FragNeeded { mtu }
}

/// The send MSS, through the public accessor (checked against the TCB).
fn mss(t: &T) -> u16 {
    let mss = t.s.send_mss(t.id).expect("socket");
    assert_eq!(mss, t.s.tcbs.at(t.id.index()).send.mss);
    mss
}

/// ESTABLISHED with 3000 bytes in flight in 1000-byte segments.
fn in_flight() -> T {
    let mut t = established();
    assert_eq!(t.write(3000), 3000);
    let out = t.out();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|o| o.payload.len() == 1000));
    t
}

mod established {
    use super::*;

    #[test]
    fn frag_needed_in_window_shrinks_mss_and_resends_what_no_longer_fits() {
        let mut t = in_flight();
        let seq = t.l(1001);
        let e = icmp(&t, frag_needed(700), seq);
        t.s.icmp_error(t.now, &e);
        assert_eq!(mss(&t), 660);
        assert_eq!(t.s.stats().pmtu_shrinks, 1);
        assert_eq!(t.s.path_mtu(REMOTE, t.now), Some(700));
        // Everything in flight again, from SND.UNA, in segments that fit
        // (as much as the window allows), then new data at the new size.
        assert_eq!(t.s.stats().rto_expired, 0);
        t.write(2000);
        let mut next = t.l(1);
        let end = t.l(5001);
        for _ in 0..20 {
            let out = t.out();
            if out.is_empty() {
                break;
            }
            for o in &out {
                assert_eq!(o.seq, next, "contiguous from SND.UNA: {out:#?}");
                assert!(o.payload.len() <= 660, "{o:?}");
                next += o.payload.len();
            }
            send!(t, flags: ACK, seq: r(1), ack: next);
        }
        assert_eq!(next, end);
    }

    #[test]
    fn out_of_window_sequence_is_ignored_and_counted() {
        let mut t = in_flight();
        for seq in [
            t.l(3001),
            t.l(0),
            t.l(100_000),
            SeqNumber(t.iss.0 ^ 0x8000_0000),
        ] {
            let e = icmp(&t, frag_needed(600), seq);
            t.s.icmp_error(t.now, &e);
        }
        assert_eq!(t.s.stats().drops.icmp_out_of_window, 4);
        assert_eq!(mss(&t), 1000);
        assert_eq!(t.s.path_mtu(REMOTE, t.now), None);
        recv!(t, []);
    }

    #[test]
    fn error_for_no_connection_is_counted() {
        let mut t = in_flight();
        let mut e = icmp(&t, frag_needed(600), t.l(1));
        e.remote_port ^= 1;
        t.s.icmp_error(t.now, &e);
        assert_eq!(t.s.stats().drops.icmp_no_socket, 1);
        assert_eq!(mss(&t), 1000);
    }

    #[test]
    fn send_mss_of_an_aborted_socket_is_an_error() {
        let mut t = in_flight();
        assert_eq!(mss(&t), 1000);
        t.s.abort(t.id).expect("abort");
        assert_eq!(t.s.send_mss(t.id), Err(TcpError::InvalidSocket));
    }

    #[test]
    fn reported_mtu_is_clamped_to_the_minimum_pmtu() {
        let mut t = in_flight();
        let e = icmp(&t, frag_needed(100), t.l(1));
        t.s.icmp_error(t.now, &e);
        assert_eq!(t.s.path_mtu(REMOTE, t.now), Some(552));
        assert_eq!(mss(&t), 512);
        let out = t.out();
        assert!(out.iter().all(|o| o.payload.len() <= 512));
    }

    #[test]
    fn a_larger_mtu_never_raises_the_mss() {
        let mut t = in_flight();
        let e = icmp(&t, frag_needed(800), t.l(1));
        t.s.icmp_error(t.now, &e);
        let _ = t.out();
        let e = icmp(&t, frag_needed(1400), t.l(1));
        t.s.icmp_error(t.now, &e);
        assert_eq!(mss(&t), 760);
        assert_eq!(t.s.stats().pmtu_shrinks, 1);
    }

    #[test]
    fn other_unreachables_are_soft_errors() {
        let mut t = in_flight();
        for code in [0, 1, 5, 3] {
            let e = icmp(&t, IcmpErrorKind::Unreachable { code }, t.l(1));
            t.s.icmp_error(t.now, &e);
        }
        assert_eq!(t.state(), State::Established);
        assert_eq!(t.s.stats().icmp_soft_errors, 4);
        assert_eq!(t.s.take_error(t.id).unwrap(), None);
        assert_eq!(
            t.s.tcbs.at(t.id.index()).soft_error,
            Some(TcpError::ConnectionRefused)
        );
    }
}

mod syn_sent {
    use super::*;

    #[test]
    fn port_unreachable_aborts_with_connection_refused() {
        let mut t = syn_sent();
        let e = icmp(&t, IcmpErrorKind::Unreachable { code: 3 }, t.l(0));
        t.s.icmp_error(t.now, &e);
        assert_eq!(t.state(), State::Closed);
        assert_eq!(
            t.s.take_error(t.id).unwrap(),
            Some(TcpError::ConnectionRefused)
        );
        assert_eq!(t.s.stats().icmp_aborts, 1);
    }

    #[test]
    fn host_unreachable_is_soft_and_reported_at_the_timeout() {
        let mut c = cfg();
        c.syn_retries = 1;
        let mut t = syn_sent_with(c);
        let e = icmp(&t, IcmpErrorKind::Unreachable { code: 1 }, t.l(0));
        t.s.icmp_error(t.now, &e);
        assert_eq!(t.state(), State::SynSent);
        t.advance(Duration::from_secs(10));
        assert_eq!(t.state(), State::Closed);
        assert_eq!(
            t.s.take_error(t.id).unwrap(),
            Some(TcpError::HostUnreachable)
        );
    }

    #[test]
    fn blind_error_with_another_sequence_number_changes_nothing() {
        let mut t = syn_sent();
        let e = icmp(&t, IcmpErrorKind::Unreachable { code: 3 }, t.l(1));
        t.s.icmp_error(t.now, &e);
        assert_eq!(t.state(), State::SynSent);
        assert_eq!(t.s.stats().drops.icmp_out_of_window, 1);
    }

    #[test]
    fn new_connection_uses_the_learned_pmtu_until_it_ages_out() {
        let mut t = in_flight();
        let e = icmp(&t, frag_needed(1000), t.l(1));
        t.s.icmp_error(t.now, &e);
        let peer = TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        };
        // A new active open to the same peer, answered with MSS 1460.
        let open = |t: &mut T, port: u16| -> u16 {
            let id =
                t.s.connect(
                    t.now,
                    SocketAddrV4::new(REMOTE, RPORT),
                    Some(SocketAddrV4::new(LOCAL, port)),
                )
                .unwrap();
            let out = t.out();
            let syn = out.iter().find(|o| o.flags == SYN).expect("a SYN");
            let ack = syn.seq + 1;
            let seg = TcpRepr {
                src_port: RPORT,
                dst_port: port,
                flags: SYN | ACK,
                seq: r(0),
                ack,
                options: peer,
                ..seg()
            };
            t.input(&seg);
            assert_eq!(t.s.state(id).unwrap(), State::Established);
            t.s.tcbs.at(id.index()).send.mss
        };
        assert_eq!(open(&mut t, 81), 960);
        // RFC 1191 §6.3: after 10 minutes the estimate is forgotten.
        t.now += Duration::from_secs(601);
        assert_eq!(t.s.path_mtu(REMOTE, t.now), None);
        assert_eq!(open(&mut t, 82), 1460);
    }
}

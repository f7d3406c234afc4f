//! Reaping: connections whose peer vanished, or that nobody owns any
//! more, end within a bound (keepalive timeouts, Linux's
//! `tcp_fin_timeout` and `tcp_orphan_retries`), and a closed listener
//! takes its un-accepted and half-open children with it.

use super::*;

// ----- keepalive -----

#[test]
fn answered_keepalive_probe_keeps_the_connection() {
    let mut c = cfg();
    c.keepalive.idle = Duration::from_secs(10);
    c.keepalive.interval = Duration::from_secs(2);
    c.keepalive.count = 3;
    let mut t = established_with(c, TcpOptions::default());
    t.s.set_keepalive(t.id, true).unwrap();
    assert_eq!(t.s.keepalive(t.id), Ok(true));
    let (d, out) = t.wait_output(Duration::from_secs(20));
    assert_eq!(d, Duration::from_secs(10));
    assert_eq!(
        (out[0].seq, out[0].flags, out[0].payload.len()),
        (t.l(0), ACK, 0)
    );
    // The peer answers the probe: idle starts over.
    let ack = t.l(1);
    send!(t, flags: ACK, seq: r(1), ack: ack);
    recv!(t, []);
    let (d, _) = t.wait_output(Duration::from_secs(20));
    assert_eq!(d, Duration::from_secs(10));
    // Now silent: two more probes 2 s apart, then the reset.
    for _ in 0..2 {
        let (d, out) = t.wait_output(Duration::from_secs(20));
        assert_eq!(d, Duration::from_secs(2));
        assert_eq!(out.len(), 1);
    }
    t.advance(Duration::from_secs(2));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.s.take_error(t.id), Ok(Some(TcpError::TimedOut)));
    assert_eq!(t.s.stats().keepalive_probes, 4);
    assert_eq!(t.s.stats().keepalive_timeouts, 1);
}

#[test]
fn keepalive_default_arms_every_accepted_connection() {
    let mut c = cfg();
    c.keepalive_default = true;
    c.keepalive.idle = Duration::from_secs(5);
    c.keepalive.interval = Duration::from_secs(1);
    c.keepalive.count = 1;
    let mut t = established_with(c, TcpOptions::default());
    assert_eq!(t.s.keepalive(t.id), Ok(true));
    let (d, _) = t.wait_output(Duration::from_secs(20));
    assert_eq!(d, Duration::from_secs(5));
    t.advance(Duration::from_secs(1));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.s.stats().keepalive_timeouts, 1);
    // Turning it off stops the probes.
    let mut t = established();
    t.s.set_keepalive(t.id, true).unwrap();
    t.s.set_keepalive(t.id, false).unwrap();
    assert_eq!(t.s.keepalive(t.id), Ok(false));
    let (_, out) = t.wait_output(Duration::from_secs(8000));
    assert!(out.is_empty());
}

// ----- FIN-WAIT-2 (tcp_fin_timeout) -----

#[test]
fn orphaned_fin_wait_2_is_reaped_after_fin_timeout() {
    let mut c = cfg();
    c.fin_timeout = Duration::from_secs(5);
    let mut t = established_with(c, TcpOptions::default());
    t.s.close(t.id).unwrap();
    let fin = t.l(1);
    recv!(t, [flags: FIN | ACK, seq: fin]);
    let ack = t.l(2);
    send!(t, flags: ACK, seq: r(1), ack: ack);
    assert_eq!(t.state(), State::FinWait2);
    t.advance(Duration::from_millis(4990));
    assert_eq!(t.state(), State::FinWait2);
    assert_eq!(t.s.stats().fin_timeout_reaped, 0);
    t.advance(Duration::from_millis(20));
    assert_eq!(t.s.state(t.id), Err(TcpError::InvalidSocket));
    assert_eq!(t.s.sockets_in_use(), 1, "only the listener is left");
    assert_eq!(t.s.stats().fin_timeout_reaped, 1);
    // The peer's late FIN finds no connection: RST.
    send!(t, flags: FIN | ACK, seq: r(1), ack: ack);
    recv!(t, [flags: RST]);
}

#[test]
fn fin_wait_2_after_shutdown_is_not_reaped() {
    // Half-closed but still owned: the application may still read.
    let mut c = cfg();
    c.fin_timeout = Duration::from_secs(5);
    let mut t = established_with(c, TcpOptions::default());
    t.s.shutdown_write(t.id).unwrap();
    t.out();
    let ack = t.l(2);
    send!(t, flags: ACK, seq: r(1), ack: ack);
    assert_eq!(t.state(), State::FinWait2);
    t.advance(Duration::from_secs(30));
    assert_eq!(t.state(), State::FinWait2);
    assert_eq!(t.s.stats().fin_timeout_reaped, 0);
}

// ----- orphans (tcp_orphan_retries) -----

#[test]
fn orphan_gives_up_after_orphan_retries() {
    let mut c = cfg();
    c.orphan_retries = 3;
    c.data_retries = 15;
    let mut t = established_with(c, TcpOptions::default());
    t.write(100);
    recv!(t, [len: 100]);
    t.s.close(t.id).unwrap();
    t.out();
    // The peer is gone: 3 retransmissions (backed off), then a RST.
    let mut rexmits = 0;
    loop {
        let (_, out) = t.wait_output(Duration::from_secs(600));
        assert!(!out.is_empty(), "orphan never reaped");
        if out[0].flags.contains(RST) {
            break;
        }
        rexmits += 1;
    }
    assert_eq!(rexmits, 3);
    assert_eq!(t.s.state(t.id), Err(TcpError::InvalidSocket));
    assert_eq!(t.s.stats().orphans_reaped, 1);
    assert_eq!(t.s.chunks_in_use(), 0);
}

#[test]
fn owned_connection_keeps_its_data_retries() {
    let mut c = cfg();
    c.orphan_retries = 3;
    c.data_retries = 5;
    let mut t = established_with(c, TcpOptions::default());
    t.write(100);
    recv!(t, [len: 100]);
    let mut rexmits = 0;
    while t.state() != State::Closed {
        let (_, out) = t.wait_output(Duration::from_secs(600));
        if out.is_empty() {
            break;
        }
        rexmits += out.len();
    }
    assert_eq!(rexmits, 5);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.s.stats().orphans_reaped, 0);
}

#[test]
fn orphan_stuck_behind_a_zero_window_is_reaped() {
    let mut c = cfg();
    c.orphan_retries = 4;
    let mut t = established_with(c, TcpOptions::default());
    let ack = t.l(1);
    send!(t, flags: ACK, seq: r(1), ack: ack, window: 0);
    t.write(100);
    t.s.close(t.id).unwrap();
    recv!(t, []);
    // The peer answers every probe, always with a zero window.
    let mut probes = 0;
    loop {
        let (_, out) = t.wait_output(Duration::from_secs(600));
        assert!(!out.is_empty(), "orphan never reaped");
        if out[0].flags.contains(RST) {
            break;
        }
        probes += 1;
        assert!(probes <= 4, "{probes} probes");
        send!(t, flags: ACK, seq: r(1), ack: ack, window: 0);
        t.out();
    }
    assert_eq!(probes, 4);
    assert_eq!(t.s.state(t.id), Err(TcpError::InvalidSocket));
    assert_eq!(t.s.stats().orphans_reaped, 1);
}

// ----- listener close -----

#[test]
fn closing_listener_resets_half_open_and_unaccepted_children() {
    let mut t = listen();
    // Two half-open children (SYN-RECEIVED) and one established, not
    // accepted.
    send!(t, flags: SYN, seq: r(0), src_port: RPORT);
    recv!(t, [flags: SYN | ACK]);
    send!(t, flags: SYN, seq: r(0), src_port: RPORT + 1);
    recv!(t, [flags: SYN | ACK]);
    send!(t, flags: SYN, seq: r(0), src_port: RPORT + 2);
    let iss = recv!(t, [flags: SYN | ACK]).seq;
    send!(t, flags: ACK, seq: r(1), ack: iss + 1, src_port: RPORT + 2);
    recv!(t, []);
    assert_eq!(t.s.sockets_in_use(), 4);
    t.s.close(t.listener.unwrap()).unwrap();
    let out = t.out();
    let mut ports: Vec<u16> = out
        .iter()
        .inspect(|o| assert_eq!(o.flags, RST | ACK, "{o:?}"))
        .map(|o| o.dst_port)
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, vec![RPORT, RPORT + 1, RPORT + 2]);
    assert_eq!(t.s.sockets_in_use(), 0);
    assert_eq!(t.s.stats().listener_children_reset, 3);
    // Nothing is left to retransmit a SYN-ACK.
    let (_, out) = t.wait_output(Duration::from_secs(300));
    assert!(out.is_empty(), "{out:?}");
}

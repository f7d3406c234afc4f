//! Duplicate ACKs end to end: out-of-order segments that reach a whole
//! [`Stack`] in one RX burst must each be answered by an immediate
//! duplicate ACK (RFC 5681 §4.2, RFC 9293 §3.10.7.4), so the peer's fast
//! retransmit (three duplicates) fires, and the advertised window never
//! shrinks to a sliver (receiver SWS avoidance, RFC 9293 §3.8.6.2.2).

use std::sync::{Arc, Mutex};

use mtcp_stack::nic::memory::{MemoryNic, MemoryNicConfig};
use mtcp_stack::nic::{DeviceInfo, Frame, FramePool, NicQueue};
use mtcp_stack::stack::{Stack, StackConfig};
use mtcp_stack::tcp::SocketId;
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::frame::parse_tcp_frame;
use mtcp_stack::wire::tcp::TcpFlags;

mod support;

use support::{addr, CLIENT, SERVER};

/// A TCP segment a probed stack sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    ack: u32,
    payload: usize,
    sack_blocks: usize,
    window: u16,
    flags: TcpFlags,
    window_scale: Option<u8>,
}

#[derive(Debug, Default)]
struct ProbeState {
    /// Received data segments still to drop.
    drop_data: usize,
    /// Received data segments dropped.
    dropped: usize,
    /// Data segments received (and not dropped).
    data_in: usize,
    /// Drop the pure ACKs we send (as a Linux peer that piggybacks every
    /// ACK on its own data would never send them).
    drop_pure_acks: bool,
    sent: Vec<Sent>,
}

/// A NIC queue wrapper that drops chosen received data segments and logs
/// the TCP segments sent.
struct Probe {
    inner: Box<dyn NicQueue>,
    state: Arc<Mutex<ProbeState>>,
}

impl NicQueue for Probe {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }

    fn rx_burst(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize) -> usize {
        let start = out.len();
        let n = self.inner.rx_burst(pool, out, max);
        let mut st = self.state.lock().unwrap();
        let mut i = start;
        while i < out.len() {
            let data = matches!(parse_tcp_frame(out[i].as_slice(), true), Ok((_, _, t)) if !t.payload.is_empty());
            if data && st.drop_data > 0 {
                st.drop_data -= 1;
                st.dropped += 1;
                let f = out.remove(i);
                pool.free(f);
                continue;
            }
            if data {
                st.data_in += 1;
            }
            i += 1;
        }
        n - (start + n - out.len())
    }

    fn tx_burst(&mut self, frames: &mut Vec<Frame>, pool: &mut FramePool) -> usize {
        let mut dropped = 0;
        if self.state.lock().unwrap().drop_pure_acks {
            let mut i = 0;
            while i < frames.len() {
                let pure = matches!(parse_tcp_frame(frames[i].as_slice(), true),
                    Ok((_, _, t)) if t.payload.is_empty() && t.flags == TcpFlags::ACK);
                if pure {
                    pool.free(frames.remove(i));
                    dropped += 1;
                } else {
                    i += 1;
                }
            }
        }
        {
            let mut st = self.state.lock().unwrap();
            for f in frames.iter() {
                if let Ok((_, _, t)) = parse_tcp_frame(f.as_slice(), true) {
                    st.sent.push(Sent {
                        ack: t.ack.0,
                        payload: t.payload.len(),
                        sack_blocks: t.options.sack().len(),
                        window: t.window,
                        flags: t.flags,
                        window_scale: t.options.window_scale,
                    });
                }
            }
        }
        dropped + self.inner.tx_burst(frames, pool)
    }

    fn rx_pending(&self) -> bool {
        self.inner.rx_pending()
    }

    fn wait_rx(&self, timeout: Duration) {
        self.inner.wait_rx(timeout)
    }
}

fn cfg(addr: [u8; 4]) -> StackConfig {
    support::stack_cfg(addr, 16, 2048, 1024)
}

struct Pair {
    server: Stack,
    client: Stack,
    probe: Arc<Mutex<ProbeState>>,
    ss: SocketId,
    cs: SocketId,
    now: Instant,
}

impl Pair {
    /// A connected pair; the server's NIC is probed.
    fn new() -> Pair {
        Pair::with_recv_buffer(StackConfig::default().tcp.recv_buffer)
    }

    /// A connected pair whose server has `recv_buffer` bytes of receive
    /// buffer per connection.
    fn with_recv_buffer(recv_buffer: usize) -> Pair {
        let (a, b) = MemoryNic::pair_with(&MemoryNicConfig::default()).unwrap();
        let probe = Arc::new(Mutex::new(ProbeState::default()));
        let inner = a.split_boxed().pop().unwrap();
        let mut scfg = cfg(SERVER);
        scfg.tcp.recv_buffer = recv_buffer;
        let mut server = Stack::new(
            scfg,
            Box::new(Probe {
                inner,
                state: probe.clone(),
            }),
        )
        .unwrap();
        let mut client = Stack::new(cfg(CLIENT), b.split_boxed().pop().unwrap()).unwrap();
        let now = Instant::from_secs(1);
        let l = server.tcp_mut().listen(addr([0; 4], 7), 4).unwrap();
        let cs = client
            .tcp_mut()
            .connect(now, addr(SERVER, 7), None)
            .unwrap();
        let mut p = Pair {
            server,
            client,
            probe,
            ss: cs,
            cs,
            now,
        };
        for _ in 0..100 {
            p.tick();
            if let Ok(id) = p.server.tcp_mut().accept(l) {
                p.ss = id;
                return p;
            }
        }
        panic!("no connection");
    }

    fn tick(&mut self) {
        self.client.poll(self.now);
        self.client.flush(self.now);
        self.server.poll(self.now);
        self.server.flush(self.now);
        self.now += Duration::from_micros(100);
    }

    /// Moves `n` bytes client → server, reading them.
    fn warm_up(&mut self, n: usize) {
        let data = vec![7u8; n];
        let mut sent = 0;
        let mut got = 0;
        let mut buf = vec![0u8; 65536];
        for _ in 0..100_000 {
            if sent < n {
                if let Ok(k) = self.client.tcp_mut().send(self.cs, &data[sent..]) {
                    sent += k;
                }
            }
            while let Ok(k) = self.server.tcp_mut().recv(self.ss, &mut buf) {
                if k == 0 {
                    break;
                }
                got += k;
            }
            if got == n {
                // Let the last ACKs settle.
                for _ in 0..50 {
                    self.tick();
                }
                return;
            }
            self.tick();
        }
        panic!("warm-up stalled at {got} of {n}");
    }
}

/// Sends one window of data from the client in one flush, drops the first
/// data segment on the way into the server, and returns what the server
/// sent in the tick that received the rest (all in one RX burst).
fn one_burst_after_a_gap(p: &mut Pair, server_has_data: bool) -> (usize, Vec<Sent>) {
    let chunk = vec![1u8; 12 * 1460];
    let n = p.client.tcp_mut().send(p.cs, &chunk).unwrap();
    assert!(n > 10 * 1460, "client took {n}");
    if server_has_data {
        // The server has data queued (an echo server answering): its
        // data segments carry the ACK.
        p.server.tcp_mut().send(p.ss, &[2u8; 20_000]).unwrap();
    }
    p.client.poll(p.now);
    p.client.flush(p.now);
    {
        let mut st = p.probe.lock().unwrap();
        st.drop_data = 1;
        st.data_in = 0;
        st.sent.clear();
    }
    p.server.poll(p.now);
    p.server.flush(p.now);
    let st = p.probe.lock().unwrap();
    assert_eq!(st.dropped, 1, "a data segment was dropped");
    (st.data_in, st.sent.clone())
}

#[test]
fn every_out_of_order_segment_in_one_burst_is_acked() {
    let mut p = Pair::new();
    p.warm_up(200_000);
    let (ooo, sent) = one_burst_after_a_gap(&mut p, false);
    assert!(ooo >= 3, "only {ooo} segments followed the gap");
    let dupacks = sent
        .iter()
        .filter(|s| s.payload == 0 && s.flags.contains(TcpFlags::ACK) && s.sack_blocks > 0)
        .count();
    assert_eq!(
        dupacks, ooo,
        "{ooo} out-of-order segments in one burst, {dupacks} duplicate ACKs: {sent:?}"
    );
    assert!(sent.iter().all(|s| s.ack == sent[0].ack), "{sent:?}");
}

#[test]
fn out_of_order_segments_are_acked_even_with_data_to_send() {
    let mut p = Pair::new();
    p.warm_up(200_000);
    let (ooo, sent) = one_burst_after_a_gap(&mut p, true);
    assert!(ooo >= 3, "only {ooo} segments followed the gap");
    // Every segment the server sends in that tick is a duplicate ACK for
    // the peer (same ACK number, same window); data segments count only
    // when the peer sees them as duplicates, which RFC 5681 excludes. So
    // the server must send `ooo` segments carrying no data, or at least
    // three in all for the peer's fast retransmit.
    let pure = sent
        .iter()
        .filter(|s| s.payload == 0 && s.flags.contains(TcpFlags::ACK))
        .count();
    assert_eq!(
        pure, ooo,
        "{ooo} out-of-order segments in one burst, {pure} pure duplicate ACKs: {sent:?}"
    );
}

#[test]
fn advertised_window_obeys_receiver_sws_avoidance() {
    const BUF: usize = 64 * 1024;
    let mut p = Pair::with_recv_buffer(BUF);
    let sent = p.probe.lock().unwrap().sent.clone();
    let shift = sent
        .iter()
        .find(|s| s.flags.contains(TcpFlags::SYN))
        .and_then(|s| s.window_scale)
        .unwrap_or(0);
    let data = vec![3u8; 600_000];
    let mut queued = 0;
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    p.probe.lock().unwrap().sent.clear();
    for round in 0..80_000 {
        if queued < data.len() {
            if let Ok(k) = p.client.tcp_mut().send(p.cs, &data[queued..]) {
                queued += k;
            }
        }
        // A slow reader: nothing for a while, then 100 bytes every 30 ms
        // (slower than the sender's window probes), then everything.
        let want = match round {
            0..=300 => 0,
            301..=30_000 => usize::from(round % 300 == 0) * 100,
            _ => buf.len(),
        };
        if want > 0 {
            if let Ok(k) = p.server.tcp_mut().recv(p.ss, &mut buf[..want]) {
                got += k;
            }
        }
        if got == data.len() {
            break;
        }
        p.tick();
    }
    assert_eq!(got, data.len(), "transfer finished");
    let sent = p.probe.lock().unwrap().sent.clone();
    let mss = 1460usize;
    let step = mss.min(BUF / 2);
    let unit = 1usize << shift;
    let mut edge: Option<u64> = None;
    let mut zero = 0;
    let mut opened_from_zero = 0;
    let mut last_win = usize::MAX;
    let mut base = None;
    for s in sent.iter().filter(|s| !s.flags.contains(TcpFlags::SYN)) {
        let win = usize::from(s.window) << shift;
        // The right edge, relative to the first ACK number (the test
        // moves far less than 2^31).
        let base = *base.get_or_insert(s.ack);
        let e = u64::from(s.ack.wrapping_sub(base)) + win as u64;
        if let Some(prev) = edge {
            assert!(
                e >= prev,
                "the right edge moved left: {prev} -> {e} ({s:?})"
            );
            let advance = (e - prev) as usize;
            assert!(
                advance == 0 || advance < unit || advance >= step,
                "right edge advanced by {advance} bytes (< {step}, receiver SWS): {s:?}"
            );
        }
        if win == 0 {
            zero += 1;
        } else if last_win == 0 {
            opened_from_zero += 1;
            assert!(
                win >= step,
                "a zero window reopened to only {win} bytes (< {step}): {s:?}"
            );
        }
        last_win = win;
        edge = Some(edge.map_or(e, |p| p.max(e)));
    }
    assert!(zero > 0, "the slow reader never closed the window");
    assert!(opened_from_zero > 0, "the window never reopened");
}

/// Both ends sending (an echo): the receiver's duplicate ACKs ride on its
/// data segments, as Linux's do, and RFC 5681 does not count an ACK that
/// carries data as a duplicate. With SACK the sender must still find the
/// loss on its scoreboard (RFC 6675 IsLost) and retransmit at once, not
/// wait for the retransmission timeout.
#[test]
fn sack_loss_is_found_from_acks_that_carry_data() {
    let mut p = Pair::new();
    p.warm_up(100_000);
    let chunk = vec![5u8; 16 * 1024];
    let mut buf = vec![0u8; 65536];
    let before = *p.client.tcp().stats();
    let mut got = 0usize;
    for round in 0..1000 {
        if round == 20 {
            let mut st = p.probe.lock().unwrap();
            st.drop_data = 1;
            st.dropped = 0;
            st.drop_pure_acks = true;
        }
        let _ = p.client.tcp_mut().send(p.cs, &chunk);
        let _ = p.server.tcp_mut().send(p.ss, &chunk);
        while let Ok(k) = p.server.tcp_mut().recv(p.ss, &mut buf) {
            if k == 0 {
                break;
            }
            got += k;
        }
        while let Ok(k) = p.client.tcp_mut().recv(p.cs, &mut buf) {
            if k == 0 {
                break;
            }
        }
        p.tick();
    }
    // 1000 ticks of 100 µs: well under one retransmission timeout.
    let after = *p.client.tcp().stats();
    assert_eq!(p.probe.lock().unwrap().dropped, 1);
    assert_eq!(after.rto_expired, before.rto_expired, "{after:?}");
    assert!(
        after.fast_retransmits > before.fast_retransmits,
        "no fast retransmit from SACK blocks on data segments: {after:?}"
    );
    assert!(got > 200_000, "only {got} bytes arrived");
}

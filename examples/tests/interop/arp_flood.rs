//! Hostile traffic from the peer's link (issue 11): SYNs from spoofed
//! on-link sources that never answer ARP, sent with a raw socket from the
//! peer namespace to a closed port and to the listening port, while a
//! legitimate kernel client keeps connecting and echoing. It must keep
//! being served: 0 failed echoes, and at least half its connects/s of
//! before the flood.

use super::*;
use mtcp_stack::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr};
use mtcp_stack::wire::tcp::{TcpFlags, TcpOptions, TcpPacket, TcpRepr};
use mtcp_stack::wire::SeqNumber;

/// SYNs per second and for how long.
const FLOOD_RATE: u64 = 500;
const FLOOD_SECS: u64 = 5;
/// The fraction of the connects/s before the flood that must hold.
const MIN_FRACTION: f64 = 0.5;
/// The legitimate client's pace: one connection per this at most (so
/// that the kernel client's own TIME-WAIT ports and the shared CPU do not
/// dominate what is measured).
const PACE: Duration = Duration::from_millis(5);

/// One spoofed SYN, IPv4 header included (`IP_HDRINCL`).
fn spoofed_syn(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, buf: &mut [u8]) -> usize {
    let (src, dst) = (
        Ipv4Address::from(src.octets()),
        Ipv4Address::from(dst.octets()),
    );
    let tcp = TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq: SeqNumber(u32::from(sport) * 7919),
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 64240,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        },
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ttl: 64,
        ident: sport,
        dont_frag: true,
        dscp_ecn: 0,
    };
    let len = ip.buffer_len();
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..len]);
    ip.emit(&mut p, true);
    tcp.emit(
        &mut TcpPacket::new_unchecked(p.payload_mut()),
        src,
        dst,
        true,
    );
    len
}

/// Sends the flood from the peer namespace; returns the SYNs sent.
fn flood(topo: &Topo, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    let stack_ip = topo.stack_ip;
    let peer_ip = topo.peer_ip;
    spawn_in(topo.peer_ns, move || {
        // SAFETY: plain socket call.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let mut dst: libc::sockaddr_in = unsafe { core::mem::zeroed() };
        dst.sin_family = libc::AF_INET as libc::sa_family_t;
        dst.sin_addr.s_addr = u32::from_ne_bytes(stack_ip.octets());
        let mut buf = [0u8; 128];
        let start = Instant::now();
        let mut sent = 0u64;
        let [a, b, c, _] = peer_ip.octets();
        while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(FLOOD_SECS) {
            // Unused on-link addresses .100 to .249, round robin.
            let src = Ipv4Addr::new(a, b, c, 100 + (sent % 150) as u8);
            let sport = 10_000 + (sent % 50_000) as u16;
            let dport = if sent % 2 == 0 {
                CLOSED_PORT
            } else {
                ECHO_PORT
            };
            let len = spoofed_syn(src, stack_ip, sport, dport, &mut buf);
            // SAFETY: `buf[..len]` and `dst` are valid for the call.
            let n = unsafe {
                libc::sendto(
                    fd,
                    buf.as_ptr().cast(),
                    len,
                    0,
                    (&dst as *const libc::sockaddr_in).cast(),
                    core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            assert_eq!(
                n,
                len as isize,
                "sendto: {}",
                std::io::Error::last_os_error()
            );
            sent += 1;
            let due = start + Duration::from_micros(sent * 1_000_000 / FLOOD_RATE);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        // SAFETY: our own descriptor.
        unsafe { libc::close(fd) };
        sent
    })
}

/// Sequential connect + echo + close for `secs`; returns (connections,
/// failures). Each connection's failure is counted, not fatal.
pub(super) fn legit_client(
    ns: &'static str,
    addr: SocketAddr,
    secs: f64,
) -> JoinHandle<(u64, u64)> {
    spawn_in(ns, move || {
        let start = Instant::now();
        let (mut ok, mut failed) = (0u64, 0u64);
        let mut msg = [0u8; 32];
        let mut back = [0u8; 32];
        while start.elapsed().as_secs_f64() < secs {
            let due = start + PACE * (ok + failed) as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            fill(ok + failed, &mut msg);
            let r = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.set_nodelay(true)?;
                s.write_all(&msg)?;
                s.read_exact(&mut back)?;
                s.shutdown(Shutdown::Write)?;
                let mut b = [0u8; 1];
                let n = s.read(&mut b)?;
                Ok(n == 0 && back == msg)
            });
            match r {
                Ok(true) => ok += 1,
                other => {
                    eprintln!("legit client: connection {} failed: {other:?}", ok + failed);
                    failed += 1;
                }
            }
        }
        (ok, failed)
    })
}

pub(super) fn syn_flood_from_unresolvable_sources(test: &str) {
    let _g = serial();
    let topo = match topology(Backend::AfPacket, 1, Offload::Off) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    let server = start_echo(test, &topo, &[]);
    let addr = topo.stack(ECHO_PORT);
    let (before, f0) = join(legit_client(topo.peer_ns, addr, 2.0));
    assert_eq!(f0, 0, "{test}: failures before the flood");
    let stop = Arc::new(AtomicBool::new(false));
    let fl = flood(&topo, stop.clone());
    let (during, failed) = join(legit_client(topo.peer_ns, addr, FLOOD_SECS as f64));
    stop.store(true, Ordering::Relaxed);
    let sent = join(fl);
    let (after, f2) = join(legit_client(topo.peer_ns, addr, 1.0));
    let rate_before = before as f64 / 2.0;
    let rate_during = during as f64 / FLOOD_SECS as f64;
    eprintln!(
        "{test}: {sent} spoofed SYNs in {FLOOD_SECS} s; legit connects/s: {rate_before:.0} before, \
         {rate_during:.0} during ({:.0} %), {after} in 1 s after; failures {failed}",
        100.0 * rate_during / rate_before.max(1.0)
    );
    assert!(
        sent >= FLOOD_RATE * FLOOD_SECS * 8 / 10,
        "{test}: flood too slow: {sent}"
    );
    assert_eq!(failed + f2, 0, "{test}: failed echoes");
    assert!(
        rate_during >= MIN_FRACTION * rate_before,
        "{test}: {rate_during:.0}/s during the flood < {MIN_FRACTION} × {rate_before:.0}/s"
    );
    assert!(after > 0, "{test}: served after the flood");
    server.finish();
}

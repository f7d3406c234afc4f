//! UDP with the kernel as the peer (issue 13), over AF_PACKET, AF_XDP and
//! TAP, on one core and on two cores with RSS spreading the flows:
//!
//! * kernel → stack → kernel: the `udp-echo` example on the stack; kernel
//!   clients send datagrams of every size from 1 to 1472 bytes (one
//!   Ethernet frame at most), then 8000-byte datagrams and one of 65 507
//!   bytes (the largest; IP fragments both ways: the stack reassembles the
//!   request and fragments the answer, the kernel the other way round).
//! * stack → kernel → stack: the `udp_pingpong` program on the stack (on
//!   each core, a socket on an ephemeral port connected to a kernel echo
//!   server) sends every size from 1 to 1472 bytes and 8000-byte datagrams.
//!   On two cores each socket's port must bring the answers back to its
//!   own core, and fragmented answers (hashed by the NIC on the address
//!   pair alone) are handed to the core that owns the flow.
//!
//! Every datagram is checked byte for byte; one not answered in 200 ms is
//! sent again (a veth drops nothing, so resends stay rare and are printed).

use super::*;
use std::net::UdpSocket;

const UDP_ECHO_PORT: u16 = 8080;
const KERNEL_UDP_ECHO_PORT: u16 = 7001;
/// The largest payload in one Ethernet frame (1500 - 20 - 8).
const FRAME_MAX: usize = 1472;
/// Fragmented both ways over a 1500-byte MTU (6 fragments).
const BIG: usize = 8000;
/// The largest UDP payload over IPv4 (45 fragments).
const LARGEST: usize = 65_507;
const TRIES: usize = 25;
const WAIT: Duration = Duration::from_millis(200);

fn udp_echo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_udp-echo")
}

/// Byte `n` of datagram `seq` (of length `len`) of client `client`.
fn dgram_byte(client: usize, seq: usize, len: usize, n: usize) -> u8 {
    ((n as u64 * 131 + seq as u64 * 17 + len as u64 * 7 + client as u64 * 101) % 251) as u8
}

fn dgram_fill(buf: &mut [u8], client: usize, seq: usize) {
    let len = buf.len();
    for (n, b) in buf.iter_mut().enumerate() {
        *b = dgram_byte(client, seq, len, n);
    }
}

/// What one kernel client saw.
#[derive(Debug, Default, Clone, Copy)]
struct Sweep {
    datagrams: usize,
    bytes: usize,
    resent: usize,
    duplicates: usize,
}

/// Kernel client `client`: sends datagram `seq` of length `lens[seq]`, one
/// at a time, to `to` and checks each answer byte for byte.
fn kernel_sweep(to: SocketAddr, client: usize, lens: &[usize]) -> Result<Sweep, String> {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
    s.connect(to).map_err(|e| format!("connect {to}: {e}"))?;
    s.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    let local = s.local_addr().map_err(|e| e.to_string())?;
    let what = format!("client {client} ({local} -> {to})");
    let max = lens.iter().copied().max().unwrap_or(0);
    let (mut sent, mut back, mut expect) = (vec![0u8; max], vec![0u8; 65_536], vec![0u8; max]);
    let mut sweep = Sweep::default();
    for (seq, &len) in lens.iter().enumerate() {
        dgram_fill(&mut sent[..len], client, seq);
        let mut answered = false;
        'tries: for attempt in 0..TRIES {
            if attempt > 0 {
                sweep.resent += 1;
            }
            s.send(&sent[..len])
                .map_err(|e| format!("{what}: send datagram {seq} ({len} bytes): {e}"))?;
            loop {
                let n = match s.recv(&mut back) {
                    Ok(n) => n,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        continue 'tries
                    }
                    Err(e) => {
                        return Err(format!("{what}: recv datagram {seq} ({len} bytes): {e}"))
                    }
                };
                if back[..n] == sent[..len] {
                    answered = true;
                    break 'tries;
                }
                let earlier = (0..seq).rev().any(|k| {
                    lens[k] == n && {
                        dgram_fill(&mut expect[..n], client, k);
                        back[..n] == expect[..n]
                    }
                });
                if !earlier {
                    return Err(format!(
                        "{what}: datagram {seq} ({len} bytes) came back as {n} bytes that match \
                         nothing sent"
                    ));
                }
                sweep.duplicates += 1;
            }
        }
        if !answered {
            return Err(format!(
                "{what}: datagram {seq} ({len} bytes) not answered after {TRIES} tries"
            ));
        }
        sweep.datagrams += 1;
        sweep.bytes += len;
    }
    Ok(sweep)
}

/// `clients` kernel clients at once, each sending every size from 1 to
/// 1472 (client `i` starting at a different size), then `big` datagrams of
/// 8000 bytes and one of 65 507; returns the totals.
fn kernel_clients(
    ns: &'static str,
    to: SocketAddr,
    clients: usize,
    big: usize,
    what: &str,
) -> Sweep {
    let handles: Vec<JoinHandle<Result<Sweep, String>>> = (0..clients)
        .map(|i| {
            let start = i * 97 % FRAME_MAX;
            let lens: Vec<usize> = (0..FRAME_MAX)
                .map(|k| (start + k) % FRAME_MAX + 1)
                .chain(std::iter::repeat_n(BIG, big))
                .chain([LARGEST])
                .collect();
            spawn_in(ns, move || kernel_sweep(to, i, &lens))
        })
        .collect();
    let mut total = Sweep::default();
    for h in handles {
        let s = join(h).unwrap_or_else(|e| panic!("{what}: {e}"));
        total.datagrams += s.datagrams;
        total.bytes += s.bytes;
        total.resent += s.resent;
        total.duplicates += s.duplicates;
    }
    total
}

/// Kernel → stack → kernel through `udp-echo`.
fn udp_echo(test: &str, backend: Backend, cores: usize) {
    let _g = serial();
    let topo = match topology(backend, cores, Offload::Off) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    let t = Instant::now();
    let server = Server::start(
        test,
        &topo,
        udp_echo_bin(),
        &[format!("0.0.0.0:{UDP_ECHO_PORT}")],
        &[],
    );
    let before = server.core_cpu();
    // Eight clients on two cores: their ports spread them over both
    // queues.
    let clients = if cores > 1 { 8 } else { 2 };
    let sweep = kernel_clients(topo.peer_ns, topo.stack(UDP_ECHO_PORT), clients, 10, test);
    let after = server.core_cpu();
    server.finish();
    eprintln!(
        "{test}: {} datagrams ({} bytes) from {clients} kernel clients echoed and checked, \
         {} resent, {} late duplicates, in {:.2?}",
        sweep.datagrams,
        sweep.bytes,
        sweep.resent,
        sweep.duplicates,
        t.elapsed()
    );
    assert!(
        sweep.datagrams >= clients * FRAME_MAX,
        "{test}: only {} datagrams",
        sweep.datagrams
    );
    if cores > 1 {
        check_both_cores_worked(test, &before, &after);
    }
}

/// A kernel UDP echo server in the peer namespace; `served()` counts the
/// datagrams it echoed.
fn kernel_udp_echo(topo: &Topo) -> KernelServer {
    let addr = SocketAddrV4::new(topo.peer_ip, KERNEL_UDP_ECHO_PORT);
    KernelServer::start(
        topo.peer_ns,
        "kernel UDP echo server",
        move |stop, echoed, ready| {
            let s = UdpSocket::bind(addr)
                .unwrap_or_else(|e| panic!("kernel UDP echo: bind {addr}: {e}"));
            s.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
            ready.send(()).ok();
            let mut buf = vec![0u8; 65_536];
            while !stop.load(Ordering::Relaxed) {
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        s.send_to(&buf[..n], from)
                            .unwrap_or_else(|e| panic!("kernel UDP echo: send to {from}: {e}"));
                        echoed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    // An ICMP error about an earlier answer.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                    Err(e) => panic!("kernel UDP echo: recv: {e}"),
                }
            }
        },
    )
}

/// Stack → kernel → stack through `udp_pingpong` on every core.
fn udp_client(test: &str, backend: Backend, cores: usize) {
    let _g = serial();
    let topo = match topology(backend, cores, Offload::Off) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    let t = Instant::now();
    let echo = kernel_udp_echo(&topo);
    topo.flush_neigh();
    let remote = SocketAddrV4::new(topo.peer_ip, KERNEL_UDP_ECHO_PORT);
    let bin = env!("CARGO_BIN_EXE_udp_pingpong");
    let mut child = Command::new("ip")
        .args(["netns", "exec", topo.run_ns, "env"])
        .arg(format!("MTCP_DEVICE={}", topo.device()))
        .arg(format!("MTCP_ADDR={}/24", topo.stack_ip))
        .arg(format!("MTCP_CORES={cores}"))
        .arg(bin)
        .arg(remote.to_string())
        .arg(FRAME_MAX.to_string())
        .arg(BIG.to_string())
        .arg("20")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{test}: spawn {bin}: {e}"));
    // The program ends by itself; a hung one is killed at the deadline.
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).ok();
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if t.elapsed() > CHECK_DEADLINE {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let log = reader.join().unwrap_or_default();
    let echoed = echo.served();
    drop(echo);
    let Some(status) = status else {
        panic!("{test}: udp_pingpong still running after {CHECK_DEADLINE:?}; stderr:\n{log}");
    };
    assert!(
        status.success(),
        "{test}: udp_pingpong failed ({status}); stderr:\n{log}"
    );
    let want = FRAME_MAX + 20;
    let mut ports = Vec::new();
    let mut handoffs = 0;
    for core in 0..cores {
        let prefix = format!("udp_pingpong: core {core} port ");
        let line = log
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{test}: no summary from core {core}; stderr:\n{log}"));
        let field = |key: &str| -> usize {
            let mut words = line.split_whitespace();
            words.find(|w| *w == key);
            words
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{test}: no `{key}` in {line:?}"))
        };
        assert_eq!(field("ok"), want, "{test}: core {core}: {line}");
        ports.push(field("port"));
        handoffs += field("handoffs_in");
        eprintln!("{test}: {line}");
    }
    ports.dedup();
    assert_eq!(ports.len(), cores, "{test}: cores share a port: {log}");
    // The NIC steers fragments by the address pair, which one core owns:
    // the other core's 8000-byte answers come to it through a handoff.
    if cores > 1 {
        assert!(
            handoffs >= 20,
            "{test}: {handoffs} handoffs (expected the 20 fragmented answers of one core): {log}"
        );
    } else {
        assert_eq!(handoffs, 0, "{test}: {log}");
    }
    eprintln!(
        "{test}: passed in {:.2?} ({cores} core(s), {want} datagrams each, the kernel echoed {echoed})",
        t.elapsed()
    );
}

macro_rules! udp_tests {
    ($mod:ident, $backend:expr) => {
        mod $mod {
            use super::*;

            #[test]
            fn udp_echo_one_core() {
                super::udp_echo(
                    concat!(stringify!($mod), "::udp_echo_one_core"),
                    $backend,
                    1,
                );
            }

            #[test]
            fn udp_echo_two_cores() {
                super::udp_echo(
                    concat!(stringify!($mod), "::udp_echo_two_cores"),
                    $backend,
                    2,
                );
            }

            #[test]
            fn udp_client_one_core() {
                super::udp_client(
                    concat!(stringify!($mod), "::udp_client_one_core"),
                    $backend,
                    1,
                );
            }

            #[test]
            fn udp_client_two_cores() {
                super::udp_client(
                    concat!(stringify!($mod), "::udp_client_two_cores"),
                    $backend,
                    2,
                );
            }
        }
    };
}

udp_tests!(af_packet_udp, Backend::AfPacket);
udp_tests!(xdp_udp, Backend::Xdp);
udp_tests!(tap_udp, Backend::Tap);

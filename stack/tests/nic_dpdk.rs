//! The DPDK backend against real DPDK virtual devices (feature `dpdk`):
//!
//! `cargo test -p mtcp-stack --features dpdk --test nic_dpdk`
//!
//! EAL can be initialised once per process, and never again after
//! `rte_eal_cleanup`. Each EAL configuration therefore runs in its own
//! process: the `#[test]`s below re-run this test binary on one of the
//! `#[ignore]`d `child_*` tests (with `MTCP_DPDK_CHILD=1`) and check its
//! exit status and output.
//!
//! - `ring_loopback`: `--vdev=net_ring0`, a port whose TX ring is its RX
//!   ring. Frames come back identical; the mbuf pool is full again after;
//!   the port cannot be opened twice; after the last queue is dropped EAL is
//!   gone for good.
//! - `af_packet_answers_arp_and_ping`: `--vdev=net_af_packet0` on the
//!   stack's veth end of the netns topology (`scripts/netns.sh up`), EAL
//!   initialised in a thread that first entered the stack's namespace (the
//!   vdev opens its socket in the caller's namespace). An
//!   `iface::Interface` driven over the DPDK queue answers the kernel's ARP
//!   and `ping`.
//! - `af_xdp_answers_ping`: the same over `--vdev=net_af_xdp0`.
//! - `null_two_queues`: `--vdev=net_null0` with two queues (RSS
//!   configured), each served from its own thread.
//! - `tap_checksum_offload_answers_ping`: `--vdev=net_tap0` in a fresh
//!   namespace; the TAP PMD offers TX checksum offload (done in software),
//!   so the interface leaves IPv4 checksums to the device.
//!
//! The netns and tap tests need root and the `ip` tool; they bring the topology up
//! with `scripts/netns.sh up` (`MTCP_NS_PREFIX` selects the names, default
//! `mtcp`). Without root they skip with a message, unless
//! `MTCP_REQUIRE_NETNS=1`, which turns the skip into a failure.
#![cfg(feature = "dpdk")]

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant as StdInstant};

use mtcp_stack::iface::{FrameSink, Interface, InterfaceConfig};
use mtcp_stack::nic::dpdk::{DpdkDevice, DpdkQueue};
use mtcp_stack::nic::{Frame, FramePool, NicError, NicQueue};
use mtcp_stack::time::Instant;
use mtcp_stack::wire::ethernet::EthernetAddress;
use mtcp_stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};
use mtcp_testkit::netns;

const CHILD_ENV: &str = "MTCP_DPDK_CHILD";

fn eal_args(vdev: &str) -> Vec<String> {
    [
        "-l",
        "0",
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--no-shconf",
        "--no-telemetry",
        "--log-level=lib.eal:warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(Some(format!("--vdev={vdev}")))
    .collect()
}

/// Runs the ignored test `name` of this binary in a fresh process.
fn run_child(name: &str, envs: &[(&str, String)]) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("spawn the child test process");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("---- child {name} ----\n{text}---- end of child {name} ----");
    assert!(out.status.success(), "child {name} failed: {}", out.status);
    assert!(
        text.contains("test result: ok. 1 passed"),
        "child {name} did not run"
    );
    text
}

fn in_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

// ---- net_ring ------------------------------------------------------------

#[test]
fn ring_loopback() {
    run_child("child_ring_loopback", &[]);
}

/// A frame of `len` bytes whose content identifies `i`.
fn test_frame(pool: &mut FramePool, i: usize, len: usize) -> Frame {
    let mut f = pool.alloc().expect("pool has frames");
    let buf = f.buffer_mut();
    buf[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    buf[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    buf[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental
    for (j, b) in buf[14..len].iter_mut().enumerate() {
        *b = (i * 31 + j * 7) as u8;
    }
    f.set_len(len);
    f
}

/// Sends all of `frames` (retrying a bounded number of times).
fn send_all(q: &mut DpdkQueue, frames: &mut Vec<Frame>, pool: &mut FramePool) {
    for _ in 0..1000 {
        if frames.is_empty() {
            return;
        }
        q.tx_burst(frames, pool);
    }
    panic!("{} frames not sent", frames.len());
}

/// Receives exactly `n` frames within a second.
fn recv_n(q: &mut DpdkQueue, pool: &mut FramePool, n: usize) -> Vec<Frame> {
    let mut out = Vec::with_capacity(n);
    let deadline = StdInstant::now() + Duration::from_secs(1);
    while out.len() < n && StdInstant::now() < deadline {
        let want = n - out.len();
        q.rx_burst(pool, &mut out, want);
    }
    out
}

#[test]
#[ignore = "run in its own process by ring_loopback"]
fn child_ring_loopback() {
    assert!(in_child(), "run through ring_loopback");
    let args = eal_args("net_ring0");
    let mut queues = DpdkDevice::open(&args, None, 2).expect("open net_ring0");
    // net_ring has no RSS: one queue whatever was asked.
    assert_eq!(queues.len(), 1);
    let mut q = queues.pop().unwrap();
    assert!(!q.hardware_rss());
    assert_eq!(q.port_name(), "net_ring0");
    assert_eq!(q.info().queue, 0);
    assert_eq!(q.info().queues, 1);
    assert!(q.info().mtu >= 1500, "mtu {}", q.info().mtu);
    let total = q.mbufs_total();
    assert_eq!(q.mbufs_available(), total);

    // The same port cannot be opened twice; EAL is not initialised twice.
    assert_eq!(
        DpdkDevice::open(&args, Some(q.port_id()), 1).unwrap_err(),
        NicError::Io(libc::EBUSY)
    );
    assert_eq!(
        DpdkDevice::open(&args, Some(200), 1).unwrap_err(),
        NicError::InvalidArgument
    );

    // The queue moves to another (non-EAL) thread and works there.
    let q = std::thread::spawn(move || {
        let mut pool = FramePool::new(512);
        const N: usize = 200;
        let lens: Vec<usize> = (0..N).map(|i| 60 + (i * 37) % (1514 - 60 + 1)).collect();
        let mut tx: Vec<Frame> = (0..N).map(|i| test_frame(&mut pool, i, lens[i])).collect();
        let expected: Vec<Vec<u8>> = tx.iter().map(|f| f.as_slice().to_vec()).collect();
        send_all(&mut q, &mut tx, &mut pool);
        // The mbufs now sit in the ring.
        assert_eq!(q.mbufs_available(), total - N);
        assert_eq!(pool.available(), 512);

        let rx = recv_n(&mut q, &mut pool, N);
        assert_eq!(rx.len(), N, "frames looped back");
        for (i, (got, want)) in rx.iter().zip(&expected).enumerate() {
            assert_eq!(got.as_slice(), &want[..], "frame {i} differs");
        }
        // Every mbuf is back in the pool.
        assert_eq!(q.mbufs_available(), total);
        let c = q.counters();
        assert_eq!((c.tx_frames, c.rx_frames), (N as u64, N as u64));
        assert_eq!(c.tx_bytes, lens.iter().sum::<usize>() as u64);
        assert_eq!(c.rx_bytes, c.tx_bytes);
        for f in rx {
            pool.free(f);
        }

        // Nothing more to receive.
        let mut out = Vec::new();
        assert_eq!(q.rx_burst(&mut pool, &mut out, 32), 0);

        // A frame longer than the MTU is taken and dropped; the next goes.
        let mtu = q.info().mtu;
        let mut tx = vec![
            test_frame(&mut pool, 1, mtu + 15),
            test_frame(&mut pool, 2, 100),
        ];
        let want = tx[1].as_slice().to_vec();
        send_all(&mut q, &mut tx, &mut pool);
        assert_eq!(q.dpdk_counters().tx_oversize, 1);
        let rx = recv_n(&mut q, &mut pool, 1);
        assert_eq!(rx.len(), 1);
        assert_eq!(rx[0].as_slice(), &want[..]);

        // An empty frame pool leaves frames in the device.
        let mut tx = vec![test_frame(&mut pool, 3, 64)];
        send_all(&mut q, &mut tx, &mut pool);
        let mut empty = FramePool::new(0);
        assert_eq!(q.rx_burst(&mut empty, &mut out, 8), 0);
        assert_eq!(recv_n(&mut q, &mut pool, 1).len(), 1);
        assert_eq!(q.mbufs_available(), total);
        q
    })
    .join()
    .expect("queue thread");

    // Dropping the last queue closes the port and cleans EAL up: no second
    // initialisation in this process.
    drop(q);
    assert_eq!(
        DpdkDevice::open(&args, None, 1).unwrap_err(),
        NicError::Io(libc::EALREADY)
    );
    println!("ring: loopback, pool and shutdown checks passed");
}

// ---- net_null: two queues on two threads ----------------------------------

#[test]
fn null_two_queues() {
    run_child("child_null_two_queues", &[]);
}

#[test]
#[ignore = "run in its own process by null_two_queues"]
fn child_null_two_queues() {
    assert!(in_child(), "run through null_two_queues");
    // net_null reports RSS and 1024 queues: the multi-queue path (RSS
    // configuration with the symmetric key, one mempool per queue).
    let queues = DpdkDevice::open(&eal_args("net_null0"), None, 2).expect("open net_null0");
    assert_eq!(queues.len(), 2);
    let threads: Vec<_> = queues
        .into_iter()
        .enumerate()
        .map(|(i, mut q)| {
            assert_eq!((q.info().queue, q.info().queues), (i, 2));
            assert!(q.hardware_rss());
            std::thread::spawn(move || {
                let total = q.mbufs_total();
                let mut pool = FramePool::new(128);
                // The sink takes everything.
                let mut tx: Vec<Frame> = (0..100).map(|j| test_frame(&mut pool, j, 128)).collect();
                assert_eq!(q.tx_burst(&mut tx, &mut pool), 100);
                assert!(tx.is_empty());
                // The source always has a full burst of 64-byte frames.
                let mut rx = Vec::new();
                assert_eq!(q.rx_burst(&mut pool, &mut rx, 40), 40);
                assert!(rx.iter().all(|f| f.len() == 64));
                // Bounded by the frame pool: 88 left of 128.
                assert_eq!(q.rx_burst(&mut pool, &mut rx, 1000), 88);
                assert_eq!(pool.available(), 0);
                assert_eq!(q.rx_burst(&mut pool, &mut rx, 10), 0);
                assert_eq!(q.mbufs_available(), total, "every mbuf freed");
                let c = q.counters();
                assert_eq!((c.tx_frames, c.rx_frames), (100, 128));
                q
            })
        })
        .collect();
    let queues: Vec<DpdkQueue> = threads
        .into_iter()
        .map(|t| t.join().expect("queue thread"))
        .collect();
    drop(queues);
    println!("null: two queues on two threads passed");
}

// ---- the netns topology ----------------------------------------------------

fn ns_prefix() -> String {
    netns::prefix()
}

/// `ip -n NS ARGS…`, its stdout.
fn ip_in(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", ns])
        .args(args)
        .output()
        .expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a netns child, or skips (fails with `MTCP_REQUIRE_NETNS=1`).
/// Around it, checks that the device left the stack's interface as it
/// found it: promiscuous mode off, no XDP program.
fn run_netns_child(name: &str) -> Option<String> {
    // One at a time; the topology is removed when the test ends (also
    // when it panics).
    let _g = netns::serial();
    if let Err(why) = netns::up("up", &[]) {
        netns::skip(name, &format!("the netns topology is unavailable: {why}"));
        return None;
    }
    let p = ns_prefix();
    let (ns, dev) = (format!("{p}-stk"), format!("{p}-s0"));
    // A clean start (an earlier, killed run may have left either behind).
    ip_in(&ns, &["link", "set", &dev, "promisc", "off"]);
    ip_in(&ns, &["link", "set", &dev, "xdp", "off"]);
    let out = run_child(name, &[("MTCP_NS_PREFIX", p.clone())]);
    let link = ip_in(&ns, &["link", "show", &dev]);
    println!("after close: {link}");
    let flags = link
        .split(['<', '>'])
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(
        !flags.contains("PROMISC"),
        "promiscuous mode not restored: {link}"
    );
    assert!(
        !link.contains("prog/xdp"),
        "XDP program left attached: {link}"
    );
    Some(out)
}

#[test]
fn af_packet_answers_arp_and_ping() {
    run_netns_child("child_af_packet_answers_arp_and_ping");
}

#[test]
fn af_xdp_answers_ping() {
    let Some(out) = run_netns_child("child_af_xdp_answers_ping") else {
        return;
    };
    if out.contains("AF_XDP UNAVAILABLE") {
        eprintln!(
            "SKIPPED af_xdp_answers_ping: net_af_xdp cannot run here (see the child's output)"
        );
    }
}

/// Enters namespace `ns` (this thread only), then opens the vdev:
/// the PMD creates its socket in the caller's namespace.
fn open_in_ns(ns: &str, vdev: &str, queues: usize) -> Result<Vec<DpdkQueue>, NicError> {
    let path = format!("/var/run/netns/{ns}");
    let vdev = vdev.to_string();
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let ret = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(ret, 0, "setns {path}: {}", std::io::Error::last_os_error());
        DpdkDevice::open(&eal_args(&vdev), None, queues)
    })
    .join()
    .expect("EAL thread")
}

/// Writes the interface's frames into pool frames for the next TX burst.
struct Sink<'a> {
    pool: &'a mut FramePool,
    out: &'a mut Vec<Frame>,
}

impl FrameSink for Sink<'_> {
    fn with_frame<F: FnOnce(&mut [u8])>(&mut self, len: usize, fill: F) -> bool {
        if len > mtcp_stack::nic::FRAME_CAPACITY {
            return false;
        }
        let Some(mut f) = self.pool.alloc() else {
            return false;
        };
        f.set_len(len);
        fill(f.as_mut_slice());
        self.out.push(f);
        true
    }
}

/// The Internet checksum (RFC 1071).
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const PINGS: u16 = 3;

/// Where the kernel peer lives and which address the stack has.
#[derive(Clone)]
struct Peer {
    /// The peer's namespace.
    ns: String,
    /// The peer's interface (in `ns`).
    dev: String,
    /// The stack's address (a /24 shared with the peer).
    stack_ip: [u8; 4],
    /// The stack's MAC when it must differ from the device's.
    stack_mac: Option<EthernetAddress>,
}

impl Peer {
    /// The veth topology of scripts/netns.sh.
    fn veth() -> Peer {
        let p = ns_prefix();
        Peer {
            ns: format!("{p}-peer"),
            dev: format!("{p}-p0"),
            stack_ip: [10, 99, 0, 2],
            stack_mac: None,
        }
    }
}

/// The kernel of the peer namespace pings the stack `PINGS` times over a
/// raw ICMP socket (ARP resolution included, as `ping` would); returns how
/// many correct echo replies came back. Runs in its own thread, which enters
/// the peer namespace.
fn kernel_ping(peer: &Peer) -> std::thread::JoinHandle<u16> {
    let path = format!("/var/run/netns/{}", peer.ns);
    let ip = peer.stack_ip;
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let ret = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(ret, 0, "setns {path}: {}", std::io::Error::last_os_error());
        // SAFETY: plain socket creation; the fd is closed below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: a valid fd and a timeval of the stated size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                core::mem::size_of::<libc::timeval>() as u32,
            )
        };
        let dst = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(ip),
            },
            sin_zero: [0; 8],
        };
        let ident: u16 = 0x4d54;
        let mut replies = 0;
        for seq in 1..=PINGS {
            let mut msg = vec![8u8, 0, 0, 0];
            msg.extend_from_slice(&ident.to_be_bytes());
            msg.extend_from_slice(&seq.to_be_bytes());
            msg.extend_from_slice(b"mtcp over dpdk, ping payload....");
            let c = inet_checksum(&msg);
            msg[2..4].copy_from_slice(&c.to_be_bytes());
            // SAFETY: valid fd, buffer and sockaddr_in of the stated sizes.
            let sent = unsafe {
                libc::sendto(
                    fd,
                    msg.as_ptr().cast(),
                    msg.len(),
                    0,
                    (&dst as *const libc::sockaddr_in).cast(),
                    core::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            };
            assert_eq!(
                sent,
                msg.len() as isize,
                "sendto: {}",
                std::io::Error::last_os_error()
            );
            // Wait up to 2 s for the matching reply (the first one also
            // waits for ARP).
            let deadline = StdInstant::now() + Duration::from_secs(2);
            let mut buf = [0u8; 2048];
            while StdInstant::now() < deadline {
                // SAFETY: valid fd and buffer.
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n < 20 {
                    continue;
                }
                let pkt = &buf[..n as usize];
                let ihl = usize::from(pkt[0] & 0x0f) * 4;
                let Some(icmp) = pkt.get(ihl..) else { continue };
                if pkt[12..16] == ip
                    && icmp.len() == msg.len()
                    && icmp[0] == 0
                    && icmp[4..8] == msg[4..8]
                    && icmp[8..] == msg[8..]
                    && inet_checksum(icmp) == 0
                {
                    println!("echo reply {seq} from {}", Ipv4Address::from(ip));
                    replies += 1;
                    break;
                }
            }
        }
        // SAFETY: closes the fd opened above.
        unsafe { libc::close(fd) };
        replies
    })
}

/// Drives an `Interface` at `peer.stack_ip`/24 over `q` while the peer's
/// kernel pings it. Panics unless every ping is answered and the peer learnt
/// our MAC by ARP. The interface leaves to the device the checksums the
/// device offers to handle.
fn serve_ping(mut q: DpdkQueue, peer: &Peer) {
    let mac = peer
        .stack_mac
        .or(q.info().mac)
        .unwrap_or(EthernetAddress([0x02, 0, 0, 0x99, 0, 2]));
    let cidr = Ipv4Cidr {
        address: Ipv4Address::from(peer.stack_ip),
        prefix_len: 24,
    };
    let mut config = InterfaceConfig::new(mac, cidr, None);
    config.verify_rx_checksums = !q.info().caps.rx_checksum;
    config.fill_tx_checksums = !q.info().caps.tx_checksum;
    let mut iface = Interface::new(config);
    let mut pool = FramePool::new(256);
    let mut rx = Vec::with_capacity(64);
    let mut tx = Vec::with_capacity(64);

    // Forget what the peer learnt in earlier runs, so ARP is exercised.
    let _ = Command::new("ip")
        .args(["-n", &peer.ns, "neigh", "flush", "dev", &peer.dev])
        .status();
    let pinger = kernel_ping(peer);

    let start = StdInstant::now();
    while !pinger.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(15), "ping hangs");
        let now = Instant::from_micros(start.elapsed().as_micros() as u64);
        q.rx_burst(&mut pool, &mut rx, 32);
        for f in rx.drain(..) {
            let mut sink = Sink {
                pool: &mut pool,
                out: &mut tx,
            };
            let _ = iface.receive(now, f.as_slice(), &mut sink);
            pool.free(f);
        }
        iface.poll(
            now,
            &mut Sink {
                pool: &mut pool,
                out: &mut tx,
            },
        );
        if !tx.is_empty() {
            q.tx_burst(&mut tx, &mut pool);
        }
        if !q.rx_pending() {
            q.wait_rx(Duration::from_micros(100));
        }
    }
    let replies = pinger.join().expect("pinger thread");
    println!(
        "queue counters {:?}, {:?}; interface drops: {}",
        q.counters(),
        q.dpdk_counters(),
        iface.stats().total_drops()
    );
    assert_eq!(replies, PINGS, "echo replies");

    // The kernel learnt our MAC by ARP.
    let neigh = Command::new("ip")
        .args(["-n", &peer.ns, "neigh", "show"])
        .arg(Ipv4Address::from(peer.stack_ip).to_string())
        .output()
        .expect("ip neigh");
    let neigh = String::from_utf8_lossy(&neigh.stdout).to_lowercase();
    println!("peer neighbour entry: {neigh}");
    assert!(
        neigh.contains(&mac.to_string().to_lowercase()),
        "{neigh} lacks {mac}"
    );
    let c = q.counters();
    println!("queue counters: {c:?}");
    assert!(c.rx_frames >= 4 && c.tx_frames >= 4, "{c:?}");
}

#[test]
#[ignore = "run in its own process by af_packet_answers_arp_and_ping"]
fn child_af_packet_answers_arp_and_ping() {
    assert!(in_child(), "run through af_packet_answers_arp_and_ping");
    let p = ns_prefix();
    let mut queues = open_in_ns(
        &format!("{p}-stk"),
        &format!("net_af_packet0,iface={p}-s0"),
        1,
    )
    .expect("open net_af_packet0");
    assert_eq!(queues.len(), 1);
    let q = queues.pop().unwrap();
    assert!(q.info().mac.is_some(), "af_packet reports the veth MAC");
    // The queue is served from this (test) thread, not the EAL thread.
    serve_ping(q, &Peer::veth());
}

#[test]
#[ignore = "run in its own process by af_xdp_answers_ping"]
fn child_af_xdp_answers_ping() {
    assert!(in_child(), "run through af_xdp_answers_ping");
    let p = ns_prefix();
    match open_in_ns(
        &format!("{p}-stk"),
        &format!("net_af_xdp0,iface={p}-s0,start_queue=0,queue_count=1"),
        1,
    ) {
        Ok(mut queues) => {
            let q = queues.pop().expect("one queue");
            serve_ping(q, &Peer::veth());
        }
        Err(e) => println!(
            "AF_XDP UNAVAILABLE: opening net_af_xdp0 failed: {e} (the DPDK log above says why)"
        ),
    }
}

// ---- net_tap: checksum offload ---------------------------------------------

#[test]
fn tap_checksum_offload_answers_ping() {
    if !netns::is_root() {
        netns::skip("tap_checksum_offload_answers_ping", "not root");
        return;
    }
    // The netns tests remove every `MTCP_NS_PREFIX-*` namespace when they
    // end: one at a time, so this one keeps its own.
    let _g = netns::serial();
    let ns = format!("{}-dpdktap", ns_prefix());
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    let ok = Command::new("ip").args(["netns", "add", &ns]).status();
    assert!(
        ok.map(|s| s.success()).unwrap_or(false),
        "ip netns add {ns}"
    );
    let result = std::panic::catch_unwind(|| {
        run_child(
            "child_tap_checksum_offload_answers_ping",
            &[("MTCP_NS_PREFIX", ns_prefix())],
        )
    });
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
#[ignore = "run in its own process by tap_checksum_offload_answers_ping"]
fn child_tap_checksum_offload_answers_ping() {
    assert!(in_child(), "run through tap_checksum_offload_answers_ping");
    let p = ns_prefix();
    let (ns, dev) = (format!("{p}-dpdktap"), format!("{p}-dtap0"));
    // The tap PMD accepts an RSS configuration but the kernel picks the
    // queue: one queue, software steering.
    let mut queues = open_in_ns(&ns, &format!("net_tap0,iface={dev}"), 2).expect("open net_tap0");
    assert_eq!(queues.len(), 1);
    let q = queues.pop().unwrap();
    assert!(!q.hardware_rss());
    // The tap PMD computes checksums in software and says so: the stack
    // leaves the IPv4 header checksum zero and the device fills it.
    assert!(q.info().caps.tx_checksum, "{:?}", q.info());
    ip_in(&ns, &["addr", "add", "10.98.0.1/24", "dev", &dev]);
    ip_in(&ns, &["link", "set", &dev, "up"]);
    let peer = Peer {
        ns,
        dev,
        stack_ip: [10, 98, 0, 2],
        // The tap PMD gives the kernel's end the port's MAC: the stack
        // needs its own (promiscuous mode lets its frames in).
        stack_mac: Some(EthernetAddress([0x02, 0, 0, 0x98, 0, 2])),
    };
    serve_ping(q, &peer);
}

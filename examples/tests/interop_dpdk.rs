//! The interop echo checks over DPDK (`MTCP_DEVICE=dpdk`) on virtual
//! devices: `net_af_packet` and `net_af_xdp` on the veth of
//! `scripts/netns.sh`, with the Linux kernel as the client.
//!
//! Built only with `--features dpdk` (`cargo test -p examples --features
//! dpdk --test interop_dpdk`). Needs root and network namespaces: without
//! them each test prints a SKIP line and passes, unless
//! `MTCP_REQUIRE_NETNS=1`, which makes it fail.
#![cfg(feature = "dpdk")]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mtcp_testkit::netns::{self, serial};
use sha2::{Digest, Sha256};

const STACK: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const PORT: u16 = 8080;
const TIMEOUT: Duration = Duration::from_secs(20);

/// The names of `scripts/netns.sh`, whose prefix `MTCP_NS_PREFIX` picks
/// (default `mtcp`): the stack's namespace and interface, the peer's.
fn ns(suffix: &str) -> String {
    netns::name(suffix)
}

/// Sets the topology up, or says why it cannot (a failure when
/// `MTCP_REQUIRE_NETNS=1`).
fn topology(test: &str) -> bool {
    match netns::up("up", &[]) {
        Ok(()) => {
            netns::flush_neigh(&ns("peer"), &ns("p0"));
            true
        }
        Err(why) => {
            netns::skip(test, &format!("the namespaces are unavailable: {why}"));
            false
        }
    }
}

/// The `echo` example on DPDK with `vdev`, in the stack's namespace.
struct Server(Child);

impl Server {
    fn start(vdev: &str) -> Server {
        let args =
            format!("-l 0 --no-huge --no-pci -m 256 --no-shconf --no-telemetry --vdev={vdev}");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns("stk"), "env"])
            .arg("MTCP_DEVICE=dpdk")
            .arg(format!("MTCP_DPDK_ARGS={args}"))
            .arg("MTCP_ADDR=10.99.0.2/24")
            .arg(env!("CARGO_BIN_EXE_echo"))
            .arg(format!("0.0.0.0:{PORT}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn echo");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut log = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(Ok(()));
                }
                log.push(line);
            }
            let _ = tx.send(Err(log.join("\n")));
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => Server(child),
            Ok(Err(log)) => panic!("echo on DPDK ({vdev}) exited:\n{log}"),
            Err(_) => {
                let _ = child.kill();
                panic!("echo on DPDK ({vdev}) did not start in 60 s")
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGINT lets DPDK restore the port (promiscuous mode, XDP program).
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        // A killed DPDK process leaves its port as it was: take a leftover
        // XDP program and promiscuous mode off for the next test.
        for what in [["xdp", "off"], ["promisc", "off"]] {
            let args = [
                "-n",
                &ns("stk"),
                "link",
                "set",
                "dev",
                &ns("s0"),
                what[0],
                what[1],
            ];
            let _ = Command::new("ip").args(args).status();
        }
    }
}

/// Runs `f` on a thread inside the kernel peer's namespace.
fn in_peer<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    netns::in_ns(&ns("peer"), f)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect_timeout(&SocketAddr::from((STACK, port)), TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn checks(test: &str) {
    in_peer(|| {
        // Hello.
        let mut s = connect(PORT);
        s.write_all(b"hello dpdk").unwrap();
        let mut b = [0u8; 10];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello dpdk");
        drop(s);

        // Parallel connections × round trips.
        let threads: Vec<_> = (0..20u8)
            .map(|i| {
                thread::spawn(move || {
                    let mut s = connect(PORT);
                    for r in 0..50u8 {
                        let msg = [i ^ r; 64];
                        s.write_all(&msg).unwrap();
                        let mut back = [0u8; 64];
                        s.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }

        // Sequential short connections.
        for i in 0..50u8 {
            let mut s = connect(PORT);
            s.write_all(&[i]).unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            assert_eq!(b, [i]);
        }

        // 4 MB each way with half-close, checked by SHA-256.
        let data: Vec<u8> = (0..4_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let want = Sha256::digest(&data);
        let s = connect(PORT);
        let mut w = s.try_clone().unwrap();
        let writer = thread::spawn(move || {
            w.write_all(&data).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut r = s;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n;
        }
        writer.join().unwrap();
        assert_eq!(total, 4_000_000);
        assert_eq!(hasher.finalize(), want);

        // A closed port is refused at once.
        let t0 = Instant::now();
        let e = TcpStream::connect_timeout(&SocketAddr::from((STACK, 9)), TIMEOUT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        assert!(t0.elapsed() < Duration::from_secs(2));
    });
    eprintln!("{test}: echo checks passed");
}

#[test]
fn dpdk_net_af_packet_echo() {
    let _g = serial();
    if !topology("dpdk_net_af_packet_echo") {
        return;
    }
    let _server = Server::start(&format!("net_af_packet0,iface={}", ns("s0")));
    checks("dpdk_net_af_packet_echo");
}

#[test]
fn dpdk_net_af_xdp_echo() {
    let _g = serial();
    if !topology("dpdk_net_af_xdp_echo") {
        return;
    }
    let _server = Server::start(&format!("net_af_xdp0,iface={}", ns("s0")));
    checks("dpdk_net_af_xdp_echo");
}

//! Interop with the Linux kernel as the peer (issue 5).
//!
//! Each test starts an example binary (`echo` or `proxy`) on the stack,
//! inside a network namespace, over a real kernel backend (`af_packet`,
//! `tap`, `xdp`), and drives it with ordinary kernel sockets from the peer's
//! namespace (a thread that entered it with `enter_netns`). The topologies
//! come from `scripts/netns.sh`:
//!
//! * `af_packet`, `xdp`: `up` — netns `mtcp-stk` (the stack, 10.99.0.2 on
//!   `mtcp-s0`) joined by a veth to netns `mtcp-peer` (the kernel,
//!   10.99.0.1 on `mtcp-p0`); `QUEUES=2` for two cores.
//! * `tap`: `tap` — netns `mtcp-tap` with a persistent TAP `mtcp-t0` whose
//!   kernel side (10.98.0.1) is the peer; the stack is 10.98.0.2
//!   (`TAP_QUEUES=2`: a multi-queue TAP for two cores).
//!
//! Without root or `ip netns` every test prints a `SKIP` line and passes,
//! unless `MTCP_REQUIRE_NETNS=1`, which makes it fail. The tests share the
//! namespaces, so they run one at a time (a static mutex).
//!
//! Knobs: `MTCP_INTEROP_PCAP=DIR` captures every server run to
//! `DIR/<test>.pcap`; `MTCP_INTEROP_SEED=N` overrides the fault seed.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

#[path = "interop/arp_flood.rs"]
mod arp_flood;
#[path = "interop/http.rs"]
mod http;

static SERIAL: Mutex<()> = Mutex::new(());

const ECHO_PORT: u16 = 8080;
const PROXY_PORT: u16 = 8081;
const KERNEL_ECHO_PORT: u16 = 7000;
/// A port nothing listens on, on the stack.
const CLOSED_PORT: u16 = 9;
/// How long one socket operation may block.
const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one check may run in all.
const CHECK_DEADLINE: Duration = Duration::from_secs(150);
/// How long a server may take to print `listening on`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const MB: usize = 1_000_000;

/// The suite's lock, held for one test. Dropped (also when the test
/// panics), it removes every `mtcp-*` namespace and link the test made
/// (`scripts/netns.sh down`), so a run leaves none behind; the next test
/// brings its topology up again.
struct Serial(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Drop for Serial {
    fn drop(&mut self) {
        netns_down();
    }
}

/// `scripts/netns.sh down` when root (nothing was made otherwise).
fn netns_down() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/netns.sh");
    Command::new("bash")
        .arg(script)
        .arg("down")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok();
}

fn serial() -> Serial {
    Serial(SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

fn required() -> bool {
    std::env::var("MTCP_REQUIRE_NETNS").as_deref() == Ok("1")
}

/// Prints why the test is skipped, or fails when the namespaces are
/// required.
fn skip_env(test: &str, why: &str) {
    if required() {
        panic!("{test}: MTCP_REQUIRE_NETNS=1 but {why}");
    }
    eprintln!(
        "SKIP {test}: {why} (run as root with iproute2; MTCP_REQUIRE_NETNS=1 makes this fail)"
    );
}

fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Checks privilege and tools; `Err` says what is missing.
fn environment() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    if !have("ip") {
        return Err("`ip` (iproute2) is missing".into());
    }
    sh(&["ip", "netns", "list"]).map_err(|e| format!("`ip netns` does not work: {e}"))?;
    Ok(())
}

/// Raises the soft limit on open descriptors to the hard limit (1,000
/// client sockets plus the kernel echo server's).
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < lim.rlim_max
    {
        lim.rlim_cur = lim.rlim_max.min(1 << 16);
        // SAFETY: `lim` is a valid rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

// ------------------------------------------------------------ topologies

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    AfPacket,
    Tap,
    Xdp,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::AfPacket => "af_packet",
            Backend::Tap => "tap",
            Backend::Xdp => "xdp",
        }
    }
}

/// Where the stack runs and where its kernel peer is.
#[derive(Clone, Debug)]
struct Topo {
    backend: Backend,
    /// The namespace the stack's program runs in.
    run_ns: &'static str,
    /// The namespace of the kernel peer's sockets.
    peer_ns: &'static str,
    /// The kernel peer's interface (in `peer_ns`).
    peer_if: &'static str,
    stack_ip: Ipv4Addr,
    peer_ip: Ipv4Addr,
    cores: usize,
}

impl Topo {
    fn device(&self) -> String {
        match self.backend {
            Backend::AfPacket => "af_packet:mtcp-s0".into(),
            Backend::Tap => "tap:mtcp-t0".into(),
            Backend::Xdp => "xdp:mtcp-s0".into(),
        }
    }

    fn stack(&self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.stack_ip, port))
    }

    /// Forgets the stack's MAC: each run may use another.
    fn flush_neigh(&self) {
        sh(&[
            "ip",
            "-n",
            self.peer_ns,
            "neigh",
            "flush",
            "dev",
            self.peer_if,
            "nud",
            "all",
        ])
        .ok();
    }
}

/// The peer's offloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offload {
    /// TX checksum offload, TSO and GSO off (the default topology).
    Off,
    /// TX checksum offload on (partial checksums), TSO and GSO off.
    Csum,
    /// TX checksum offload, TSO and GSO on (GSO super-frames on the veth).
    CsumGso,
}

/// Brings up the backend's topology with `cores` queues and the peer's
/// offloads.
fn topology(backend: Backend, cores: usize, offload: Offload) -> Result<Topo, String> {
    environment()?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/netns.sh");
    let (cmd, queue_var) = match backend {
        Backend::AfPacket | Backend::Xdp => ("up", "QUEUES"),
        Backend::Tap => ("tap", "TAP_QUEUES"),
    };
    let out = Command::new("bash")
        .arg(script)
        .arg(cmd)
        .env(queue_var, cores.to_string())
        .env(
            "PEER_TX_OFFLOAD",
            if offload == Offload::Off { "off" } else { "on" },
        )
        .env(
            "PEER_GSO",
            if offload == Offload::CsumGso {
                "on"
            } else {
                "off"
            },
        )
        .output()
        .map_err(|e| format!("scripts/netns.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/netns.sh {cmd} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let topo = match backend {
        Backend::AfPacket | Backend::Xdp => Topo {
            backend,
            run_ns: "mtcp-stk",
            peer_ns: "mtcp-peer",
            peer_if: "mtcp-p0",
            stack_ip: Ipv4Addr::new(10, 99, 0, 2),
            peer_ip: Ipv4Addr::new(10, 99, 0, 1),
            cores,
        },
        Backend::Tap => Topo {
            backend,
            run_ns: "mtcp-tap",
            peer_ns: "mtcp-tap",
            peer_if: "mtcp-t0",
            stack_ip: Ipv4Addr::new(10, 98, 0, 2),
            peer_ip: Ipv4Addr::new(10, 98, 0, 1),
            cores,
        },
    };
    // No qdisc left over from an aborted tbf test.
    sh(&[
        "tc",
        "-n",
        topo.peer_ns,
        "qdisc",
        "del",
        "dev",
        topo.peer_if,
        "root",
    ])
    .ok();
    topo.flush_neigh();
    Ok(topo)
}

// ---------------------------------------------------------------- servers

/// An example binary running on the stack; killed when dropped.
struct Server {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    what: String,
}

impl Server {
    /// Starts `bin args` in the topology's namespace with the device, the
    /// address, the core count and `extra` variables, and waits for its
    /// `listening on` line.
    fn start(
        test: &str,
        topo: &Topo,
        bin: &str,
        args: &[String],
        extra: &[(&str, String)],
    ) -> Server {
        topo.flush_neigh();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", topo.run_ns, "env"])
            .arg(format!("MTCP_DEVICE={}", topo.device()))
            .arg(format!("MTCP_ADDR={}/24", topo.stack_ip))
            .arg(format!("MTCP_CORES={}", topo.cores));
        if let Ok(dir) = std::env::var("MTCP_INTEROP_PCAP") {
            let name = bin.rsplit('/').next().unwrap_or("server");
            cmd.arg(format!("MTCP_PCAP={dir}/{test}-{name}.pcap"));
        }
        for (k, v) in extra {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.arg(bin)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let what = format!("{test} [{}]: {cmd:?}", topo.backend.name());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: spawn: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            let cores = topo.cores;
            thread::spawn(move || {
                // `#[mtcp::main]` runs `main` on every core: each binds its
                // own listener and prints its own line.
                let mut tx = Some(tx);
                let mut listening = 0;
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("listening on") {
                        listening += 1;
                        if listening == cores {
                            if let Some(tx) = tx.take() {
                                tx.send(()).ok();
                            }
                        }
                    }
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    if log.len() < 10_000 {
                        log.push(line);
                    }
                }
            });
        }
        let mut server = Server { child, log, what };
        if rx.recv_timeout(START_TIMEOUT).is_err() {
            let status = server.child.try_wait().ok().flatten();
            panic!(
                "{}\nnot one `listening on` per core within {START_TIMEOUT:?} (exit: {status:?}); stderr:\n{}",
                server.what,
                server.log()
            );
        }
        server
    }

    /// CPU time (clock ticks) of each core's thread: core 0 runs on the
    /// main thread, the others on `mtcp-core-N` threads.
    fn core_cpu(&self) -> Vec<(String, u64)> {
        let pid = self.child.id().to_string();
        let dir = format!("/proc/{pid}/task");
        let mut out = Vec::new();
        let Ok(tasks) = std::fs::read_dir(&dir) else {
            return out;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let main = path.file_name().and_then(|n| n.to_str()) == Some(pid.as_str());
            let comm = if main {
                "mtcp-core-0 (main)"
            } else {
                comm.trim()
            };
            if !comm.starts_with("mtcp-core-") {
                continue;
            }
            let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
            // Fields after the parenthesised name: state is field 3, utime
            // 14 and stime 15.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            out.push((comm.to_string(), ticks));
        }
        out.sort();
        out
    }

    fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// Fails if the server died during the test; then stops it.
    fn finish(mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{}\nthe server exited during the test ({status}); stderr:\n{}",
                self.what,
                self.log()
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn echo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_echo")
}

fn proxy_bin() -> &'static str {
    env!("CARGO_BIN_EXE_proxy")
}

fn start_echo(test: &str, topo: &Topo, extra: &[(&str, String)]) -> Server {
    Server::start(
        test,
        topo,
        echo_bin(),
        &[format!("0.0.0.0:{ECHO_PORT}")],
        extra,
    )
}

fn start_proxy(test: &str, topo: &Topo) -> Server {
    Server::start(
        test,
        topo,
        proxy_bin(),
        &[
            format!("0.0.0.0:{PROXY_PORT}"),
            format!("{}:{KERNEL_ECHO_PORT}", topo.peer_ip),
        ],
        &[],
    )
}

// ------------------------------------------------- the kernel's side

/// Runs `f` on a thread inside network namespace `ns`.
fn spawn_in<T, F>(ns: &'static str, f: F) -> JoinHandle<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            mtcp_stack::nic::sys::enter_netns(ns)
                .unwrap_or_else(|e| panic!("enter_netns({ns}): {e}"));
            f()
        })
        .expect("spawn thread")
}

fn join<T>(h: JoinHandle<T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Runs `f` inside `ns` and waits for it.
fn in_ns<T, F>(ns: &'static str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    join(spawn_in(ns, f))
}

/// A kernel echo server in the peer namespace (the proxy's upstream).
struct KernelEcho {
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
}

impl KernelEcho {
    fn start(topo: &Topo) -> KernelEcho {
        let addr = SocketAddrV4::new(topo.peer_ip, KERNEL_ECHO_PORT);
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let handle = {
            let stop = stop.clone();
            let accepted = accepted.clone();
            spawn_in(topo.peer_ns, move || {
                let listener = TcpListener::bind(addr)
                    .unwrap_or_else(|e| panic!("kernel echo: bind {addr}: {e}"));
                listener.set_nonblocking(true).expect("nonblocking");
                tx.send(()).ok();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                            thread::Builder::new()
                                .stack_size(128 * 1024)
                                .spawn(move || kernel_echo_conn(s))
                                .expect("spawn echo thread");
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => panic!("kernel echo: accept: {e}"),
                    }
                }
            })
        };
        rx.recv_timeout(Duration::from_secs(10))
            .expect("kernel echo server did not start");
        KernelEcho {
            stop,
            accepted,
            handle: Some(handle),
        }
    }
}

fn kernel_echo_conn(mut s: TcpStream) {
    s.set_nonblocking(false).ok();
    s.set_read_timeout(Some(IO_TIMEOUT)).ok();
    s.set_write_timeout(Some(IO_TIMEOUT)).ok();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                s.shutdown(Shutdown::Write).ok();
                return;
            }
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

impl Drop for KernelEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().ok();
        }
    }
}

// ------------------------------------------------------------ the checks

/// What to run against a server, and how much of it.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Connections × round trips, in parallel.
    parallel: (usize, usize),
    /// Short connections one after another.
    sequential: usize,
    /// Connections open at once.
    concurrent: usize,
    /// Bytes each way with half-close.
    bulk: usize,
    /// A connect to a closed port must be refused at once.
    refused: bool,
    /// `ping` must be answered.
    ping: bool,
}

const FULL: Plan = Plan {
    parallel: (50, 200),
    sequential: 500,
    concurrent: 1000,
    bulk: 20 * MB,
    refused: true,
    ping: true,
};

/// Through the proxy: the data checks.
const PROXY: Plan = Plan {
    refused: false,
    ping: false,
    ..FULL
};

/// Under injected faults: smaller, so that retransmission timeouts fit.
const FAULTY: Plan = Plan {
    parallel: (20, 50),
    sequential: 50,
    concurrent: 50,
    bulk: 2 * MB,
    refused: false,
    ping: true,
};

/// Deterministic bytes for stream `seed`.
fn fill(seed: u64, buf: &mut [u8]) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// Set while a test injects faults: the peer's neighbour entry for the
/// stack may then fail (its unicast ARP probes or their replies dropped),
/// and a connect fails with `EHOSTUNREACH` instead of retrying.
static FAULTS_ACTIVE: AtomicBool = AtomicBool::new(false);

fn connect(addr: SocketAddr) -> TcpStream {
    let t = Instant::now();
    let mut tries = 0;
    let s = loop {
        match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
            Ok(s) => break s,
            Err(e)
                if e.raw_os_error() == Some(libc::EHOSTUNREACH)
                    && FAULTS_ACTIVE.load(Ordering::Relaxed)
                    && tries < 3 =>
            {
                tries += 1;
                eprintln!(
                    "connect {addr}: EHOSTUNREACH after {:?} under injected faults \
                     (the peer's neighbour entry failed); retry {tries}",
                    t.elapsed()
                );
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("connect {addr}: {e} after {:?}", t.elapsed()),
        }
    };
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.set_nodelay(true).ok();
    s
}

/// Half-closes and expects the server's FIN (nothing more).
fn close_cleanly(mut s: TcpStream, what: &str) {
    s.shutdown(Shutdown::Write)
        .unwrap_or_else(|e| panic!("{what}: shutdown: {e}"));
    let mut b = [0u8; 16];
    match s.read(&mut b) {
        Ok(0) => {}
        Ok(n) => panic!("{what}: {n} unexpected bytes after half-close"),
        Err(e) => panic!("{what}: no FIN after half-close: {e}"),
    }
}

fn round_trip(s: &mut TcpStream, msg: &[u8], back: &mut [u8], what: &str) {
    s.write_all(msg)
        .unwrap_or_else(|e| panic!("{what}: write: {e}"));
    s.read_exact(back)
        .unwrap_or_else(|e| panic!("{what}: read: {e}"));
    assert!(msg == back, "{what}: echoed bytes differ");
}

fn deadline_check(start: Instant, what: &str) {
    assert!(
        start.elapsed() < CHECK_DEADLINE,
        "{what}: exceeded {CHECK_DEADLINE:?}"
    );
}

fn check_hello(ns: &'static str, addr: SocketAddr, what: &str) {
    let what = format!("{what}: hello");
    in_ns(ns, move || {
        let mut s = connect(addr);
        let mut back = [0u8; 11];
        round_trip(&mut s, b"hello, mtcp", &mut back, &what);
        close_cleanly(s, &what);
    });
}

fn check_parallel(ns: &'static str, addr: SocketAddr, (conns, rounds): (usize, usize), what: &str) {
    let start = Instant::now();
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let what = format!("{what}: parallel conn {c}");
            spawn_in(ns, move || {
                let mut s = connect(addr);
                let mut msg = [0u8; 64];
                let mut back = [0u8; 64];
                for r in 0..rounds {
                    fill(((c as u64) << 32) | r as u64, &mut msg);
                    round_trip(&mut s, &msg, &mut back, &what);
                    deadline_check(start, &what);
                }
                close_cleanly(s, &what);
            })
        })
        .collect();
    for h in handles {
        join(h);
    }
    eprintln!(
        "{what}: {conns} parallel connections x {rounds} round trips in {:.2?}",
        start.elapsed()
    );
}

fn check_sequential(ns: &'static str, addr: SocketAddr, n: usize, what: &str) {
    let what = what.to_string();
    in_ns(ns, move || {
        let start = Instant::now();
        let mut msg = [0u8; 32];
        let mut back = [0u8; 32];
        for i in 0..n {
            let what = format!("{what}: sequential conn {i}");
            let mut s = connect(addr);
            fill(i as u64 + 7, &mut msg);
            round_trip(&mut s, &msg, &mut back, &what);
            close_cleanly(s, &what);
            deadline_check(start, &what);
        }
        eprintln!(
            "{what}: {n} sequential connections in {:.2?}",
            start.elapsed()
        );
    });
}

fn check_concurrent(ns: &'static str, addr: SocketAddr, n: usize, what: &str) {
    raise_nofile();
    let what = what.to_string();
    in_ns(ns, move || {
        let start = Instant::now();
        let mut socks = Vec::with_capacity(n);
        for i in 0..n {
            socks.push(connect(addr));
            deadline_check(start, &format!("{what}: concurrent connect {i}"));
        }
        let opened = start.elapsed();
        let mut msg = [0u8; 16];
        for (i, s) in socks.iter_mut().enumerate() {
            fill(i as u64 + 1_000_000, &mut msg);
            s.write_all(&msg)
                .unwrap_or_else(|e| panic!("{what}: concurrent conn {i}: write: {e}"));
        }
        let mut back = [0u8; 16];
        for (i, s) in socks.iter_mut().enumerate() {
            fill(i as u64 + 1_000_000, &mut msg);
            s.read_exact(&mut back)
                .unwrap_or_else(|e| panic!("{what}: concurrent conn {i}: read: {e}"));
            assert!(msg == back, "{what}: concurrent conn {i}: bytes differ");
            deadline_check(start, &what);
        }
        for s in &socks {
            s.shutdown(Shutdown::Write).ok();
        }
        for (i, mut s) in socks.into_iter().enumerate() {
            let mut b = [0u8; 1];
            match s.read(&mut b) {
                Ok(0) => {}
                other => panic!("{what}: concurrent conn {i}: expected FIN, got {other:?}"),
            }
        }
        eprintln!(
            "{what}: {n} concurrent connections (all open after {opened:.2?}) in {:.2?}",
            start.elapsed()
        );
    });
}

/// `bytes` each way on one connection, the client half-closing when done;
/// returns the seconds it took.
fn check_bulk(ns: &'static str, addr: SocketAddr, bytes: usize, what: &str) -> f64 {
    let what = what.to_string();
    in_ns(ns, move || {
        let start = Instant::now();
        let s = connect(addr);
        let mut w = s.try_clone().expect("clone");
        let wwhat = what.clone();
        let writer = thread::spawn(move || {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut sent = 0usize;
            let mut i = 0u64;
            while sent < bytes {
                let n = buf.len().min(bytes - sent);
                fill(0xb0_0000 + i, &mut buf[..n]);
                w.write_all(&buf[..n])
                    .unwrap_or_else(|e| panic!("{wwhat}: bulk write at {sent}: {e}"));
                h.update(&buf[..n]);
                sent += n;
                i += 1;
                deadline_check(start, &wwhat);
            }
            w.shutdown(Shutdown::Write)
                .unwrap_or_else(|e| panic!("{wwhat}: shutdown: {e}"));
            h.finalize()
        });
        let mut r = s;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    h.update(&buf[..n]);
                    got += n;
                }
                Err(e) => panic!("{what}: bulk read after {got} of {bytes} bytes: {e}"),
            }
            deadline_check(start, &what);
        }
        let sent = join(writer);
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(got, bytes, "{what}: bulk: received byte count");
        assert!(
            h.finalize() == sent,
            "{what}: bulk: sha256 of the echoed bytes differs"
        );
        eprintln!(
            "{what}: {} MB each way, half-closed, sha256 equal, in {secs:.2} s ({:.1} MB/s each way)",
            bytes / MB,
            bytes as f64 / MB as f64 / secs
        );
        secs
    })
}

fn check_refused(ns: &'static str, addr: SocketAddr, what: &str) {
    let what = what.to_string();
    in_ns(ns, move || {
        let t = Instant::now();
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            other => {
                panic!("{what}: connect to closed {addr}: expected ECONNREFUSED, got {other:?}")
            }
        }
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(500),
            "{what}: refusal took {took:?} (not an immediate RST)"
        );
    });
}

fn check_ping(ns: &str, ip: Ipv4Addr, what: &str) {
    assert!(
        have("ping"),
        "{what}: `ping` is missing: apt-get install -y iputils-ping (.ci/run installs it)"
    );
    let out = sh(&[
        "ip",
        "netns",
        "exec",
        ns,
        "ping",
        "-c",
        "3",
        "-W",
        "2",
        "-i",
        "0.2",
        &ip.to_string(),
    ])
    .unwrap_or_else(|e| panic!("{what}: ping {ip}: {e}"));
    let summary = out.lines().find(|l| l.contains("received")).unwrap_or("");
    eprintln!("{what}: ping: {summary}");
}

/// Runs the plan's checks against `port` on the stack.
fn run_plan(topo: &Topo, port: u16, plan: Plan, what: &str) {
    let ns = topo.peer_ns;
    let addr = topo.stack(port);
    check_hello(ns, addr, what);
    check_parallel(ns, addr, plan.parallel, what);
    check_sequential(ns, addr, plan.sequential, what);
    check_concurrent(ns, addr, plan.concurrent, what);
    check_bulk(ns, addr, plan.bulk, what);
    if plan.refused {
        check_refused(ns, topo.stack(CLOSED_PORT), what);
    }
    if plan.ping {
        check_ping(ns, topo.stack_ip, what);
    }
}

// ------------------------------------------------------------ scenarios

/// Kernel client → `echo` on the stack: every check.
fn echo(test: &str, backend: Backend) {
    let _g = serial();
    let topo = match topology(backend, 1, Offload::Off) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    let t = Instant::now();
    let server = start_echo(test, &topo, &[]);
    run_plan(&topo, ECHO_PORT, FULL, test);
    server.finish();
    eprintln!("{test}: passed in {:.2?}", t.elapsed());
}

/// `proxy` on the stack (active opens) → a kernel echo server.
fn proxy(test: &str, backend: Backend, cores: usize) {
    let _g = serial();
    let topo = match topology(backend, cores, Offload::Off) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    let t = Instant::now();
    let upstream = KernelEcho::start(&topo);
    let server = start_proxy(test, &topo);
    let before = server.core_cpu();
    run_plan(&topo, PROXY_PORT, PROXY, test);
    let after = server.core_cpu();
    server.finish();
    if cores > 1 {
        check_both_cores_worked(test, &before, &after);
    }
    let accepted = upstream.accepted.load(Ordering::Relaxed);
    drop(upstream);
    let expected = 1 + PROXY.parallel.0 + PROXY.sequential + PROXY.concurrent + 1;
    assert_eq!(
        accepted, expected,
        "{test}: the kernel server saw {accepted} connections from the proxy"
    );
    eprintln!(
        "{test}: passed in {:.2?} ({accepted} active opens)",
        t.elapsed()
    );
}

fn fault_seed(backend: Backend) -> u64 {
    std::env::var("MTCP_INTEROP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(match backend {
            Backend::AfPacket => 11,
            Backend::Tap => 12,
            Backend::Xdp => 13,
        })
}

/// `echo` with loss, duplication, reordering and corruption on the stack's
/// side: still byte-exact.
fn echo_faults(test: &str, backend: Backend) {
    let _g = serial();
    let topo = match topology(backend, 1, Offload::Off) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    let t = Instant::now();
    let faults = format!(
        "drop=0.03,dup=0.01,reorder=0.03,corrupt=0.005,seed={}",
        fault_seed(backend)
    );
    eprintln!("{test}: MTCP_FAULTS={faults}");
    let server = start_echo(test, &topo, &[("MTCP_FAULTS", faults)]);
    FAULTS_ACTIVE.store(true, Ordering::Relaxed);
    let outcome = std::panic::catch_unwind(|| run_plan(&topo, ECHO_PORT, FAULTY, test));
    FAULTS_ACTIVE.store(false, Ordering::Relaxed);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
    server.finish();
    eprintln!("{test}: passed in {:.2?}", t.elapsed());
}

/// `echo` and `proxy` with `MTCP_CORES=2` over a two-queue interface:
/// every flow, passive or active, must land on the core that owns it.
fn two_cores(test: &str, backend: Backend) {
    {
        let _g = serial();
        let topo = match topology(backend, 2, Offload::Off) {
            Ok(t) => t,
            Err(why) => return skip_env(test, &why),
        };
        let t = Instant::now();
        let server = start_echo(test, &topo, &[]);
        let before = server.core_cpu();
        run_plan(&topo, ECHO_PORT, FULL, test);
        let after = server.core_cpu();
        server.finish();
        check_both_cores_worked(test, &before, &after);
        eprintln!("{test}: echo passed in {:.2?}", t.elapsed());
    }
    proxy(&format!("{test}: proxy"), backend, 2);
}

/// Both core threads must have spent CPU time on the checks: each core
/// serves the flows that hash to it, so a core that did (almost) nothing
/// means the flows were not spread.
fn check_both_cores_worked(test: &str, before: &[(String, u64)], after: &[(String, u64)]) {
    let used: Vec<(String, u64)> = after
        .iter()
        .map(|(name, t)| {
            let t0 = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, t0)| *t0);
            (name.clone(), t.saturating_sub(t0))
        })
        .collect();
    eprintln!("{test}: CPU ticks per core during the checks: {used:?}");
    assert_eq!(used.len(), 2, "{test}: expected two core threads");
    let total: u64 = used.iter().map(|(_, t)| t).sum();
    for (name, t) in &used {
        assert!(
            *t * 10 >= total,
            "{test}: {name} used {t} of {total} ticks: the flows did not spread over both cores"
        );
    }
}

/// Whether TX checksum offload is on for the peer's interface.
fn peer_tx_offload_on(topo: &Topo) -> bool {
    sh(&[
        "ip",
        "netns",
        "exec",
        topo.peer_ns,
        "ethtool",
        "-k",
        topo.peer_if,
    ])
    .map(|s| s.lines().any(|l| l.trim() == "tx-checksumming: on"))
    .unwrap_or(false)
}

/// `echo` with the peer's TX checksum offload on: the kernel sends partial
/// checksums that the backend must complete (and, with `Offload::CsumGso`,
/// GSO super-frames larger than the MTU).
fn echo_peer_offload(test: &str, backend: Backend, offload: Offload) {
    let _g = serial();
    if backend == Backend::Xdp {
        eprintln!(
            "SKIP {test}: XDP frames carry no checksum metadata, so the stack cannot \
             tell a partial checksum from a bad one (docs/devices.md); xdp needs the \
             peer's TX checksum offload off"
        );
        return;
    }
    if !have("ethtool") {
        return skip_env(test, "`ethtool` is missing (apt-get install -y ethtool)");
    }
    let topo = match topology(backend, 1, offload) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    let t = Instant::now();
    let server = start_echo(test, &topo, &[]);
    if backend == Backend::Tap {
        // The kernel side of a TAP gains TX checksum offload and TSO only
        // once the program has attached (TUNSETOFFLOAD): set them now.
        let gso = if offload == Offload::CsumGso {
            "on"
        } else {
            "off"
        };
        sh(&[
            "ip",
            "netns",
            "exec",
            topo.peer_ns,
            "ethtool",
            "-K",
            topo.peer_if,
            "tx",
            "on",
            "tso",
            gso,
            "gso",
            gso,
        ])
        .ok();
    }
    assert!(
        peer_tx_offload_on(&topo),
        "{test}: could not turn on TX checksum offload on {}",
        topo.peer_if
    );
    if offload == Offload::CsumGso {
        let k = sh(&[
            "ip",
            "netns",
            "exec",
            topo.peer_ns,
            "ethtool",
            "-k",
            topo.peer_if,
        ])
        .unwrap_or_default();
        assert!(
            k.lines()
                .any(|l| l.trim() == "tcp-segmentation-offload: on"),
            "{test}: TSO did not turn on"
        );
    }
    check_partial_checksums(&topo, test);
    run_plan(&topo, ECHO_PORT, FULL, test);
    server.finish();
    eprintln!("{test}: passed in {:.2?}", t.elapsed());
}

/// Shows that the peer really sends partial checksums: a capture on the
/// stack's interface (before the backend completes them) sees segments
/// whose TCP checksum is "incorrect", and the echo still works.
fn check_partial_checksums(topo: &Topo, test: &str) {
    if !have("tcpdump") {
        eprintln!("{test}: tcpdump is missing; not checking that checksums were partial");
        return;
    }
    // A TAP is captured on its kernel side (the stack's end is the file
    // descriptor), where the peer's partial checksums are visible too.
    let iface = match topo.backend {
        Backend::Tap => topo.peer_if,
        Backend::AfPacket | Backend::Xdp => "mtcp-s0",
    };
    let dump = Command::new("ip")
        .args(["netns", "exec", topo.run_ns, "timeout", "10", "tcpdump"])
        .args(["-i", iface, "-nn", "-vv", "-c", "6", "-l"])
        .args([
            "src",
            &topo.peer_ip.to_string(),
            "and",
            "tcp",
            "and",
            "greater",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(dump) = dump else {
        eprintln!("{test}: could not start tcpdump; not checking that checksums were partial");
        return;
    };
    // tcpdump needs a moment to attach.
    thread::sleep(Duration::from_millis(700));
    check_parallel(topo.peer_ns, topo.stack(ECHO_PORT), (2, 5), test);
    let out = dump.wait_with_output().expect("tcpdump");
    let text = String::from_utf8_lossy(&out.stdout);
    let partial = text.matches("incorrect").count();
    eprintln!("{test}: {partial} of the captured peer segments had a partial checksum");
    assert!(
        partial > 0,
        "{test}: the peer's segments carried complete checksums; TX offload had no effect:\n{text}"
    );
}

/// Removes the qdisc when dropped.
struct Qdisc(Topo);

impl Drop for Qdisc {
    fn drop(&mut self) {
        sh(&[
            "tc",
            "-n",
            self.0.peer_ns,
            "qdisc",
            "del",
            "dev",
            self.0.peer_if,
            "root",
        ])
        .ok();
    }
}

/// A 50 Mbit/s token bucket with a short queue on the peer's interface:
/// congestion drops, and 20 MB still byte-exact.
fn echo_tbf(test: &str, backend: Backend) {
    let _g = serial();
    let topo = match topology(backend, 1, Offload::Off) {
        Ok(t) => t,
        Err(why) => return skip_env(test, &why),
    };
    if !have("tc") {
        return skip_env(test, "`tc` (iproute2) is missing");
    }
    let t = Instant::now();
    let server = start_echo(test, &topo, &[]);
    sh(&[
        "tc",
        "-n",
        topo.peer_ns,
        "qdisc",
        "replace",
        "dev",
        topo.peer_if,
        "root",
        "tbf",
        "rate",
        "50mbit",
        "burst",
        "32kbit",
        "latency",
        "20ms",
    ])
    .unwrap_or_else(|e| panic!("{test}: {e}"));
    let qdisc = Qdisc(topo.clone());
    check_hello(topo.peer_ns, topo.stack(ECHO_PORT), test);
    let secs = check_bulk(topo.peer_ns, topo.stack(ECHO_PORT), FULL.bulk, test);
    let stats = sh(&[
        "tc",
        "-n",
        topo.peer_ns,
        "-s",
        "qdisc",
        "show",
        "dev",
        topo.peer_if,
    ])
    .unwrap_or_default();
    let line = stats
        .lines()
        .find(|l| l.contains("dropped"))
        .unwrap_or("")
        .trim()
        .to_string();
    drop(qdisc);
    server.finish();
    eprintln!(
        "{test}: through tbf 50mbit: {:.1} Mbit/s each way; qdisc: {line}; passed in {:.2?}",
        (FULL.bulk * 8) as f64 / secs / 1e6,
        t.elapsed()
    );
}

// ---------------------------------------------------------------- tests

macro_rules! backend_tests {
    ($mod:ident, $backend:expr) => {
        mod $mod {
            use super::*;

            #[test]
            fn echo() {
                super::echo(concat!(stringify!($mod), "::echo"), $backend);
            }

            #[test]
            fn proxy() {
                super::proxy(concat!(stringify!($mod), "::proxy"), $backend, 1);
            }

            #[test]
            fn echo_faults() {
                super::echo_faults(concat!(stringify!($mod), "::echo_faults"), $backend);
            }

            #[test]
            fn two_cores() {
                super::two_cores(concat!(stringify!($mod), "::two_cores"), $backend);
            }

            #[test]
            fn echo_peer_tx_offload() {
                super::echo_peer_offload(
                    concat!(stringify!($mod), "::echo_peer_tx_offload"),
                    $backend,
                    Offload::Csum,
                );
            }

            #[test]
            fn echo_tbf() {
                super::echo_tbf(concat!(stringify!($mod), "::echo_tbf"), $backend);
            }
        }
    };
}

backend_tests!(af_packet, Backend::AfPacket);

/// With TSO/GSO on, the kernel peer hands the veth GSO super-frames (up
/// to 64 KiB) that it delivers unsegmented: AF_PACKET's virtio-net header
/// (`PACKET_VNET_HDR`) marks them, its 68 KiB RX slots hold them whole, and
/// the queue splits them into MSS-sized frames in software.
#[test]
fn af_packet_echo_peer_gso() {
    echo_peer_offload(
        "af_packet_echo_peer_gso",
        Backend::AfPacket,
        Offload::CsumGso,
    );
}

/// The same over a TAP: `IFF_VNET_HDR` and `TUNSETOFFLOAD(TUN_F_CSUM |
/// TUN_F_TSO4)` let the kernel send TSO super-frames, split by the same
/// code.
#[test]
fn tap_echo_peer_gso() {
    echo_peer_offload("tap_echo_peer_gso", Backend::Tap, Offload::CsumGso);
}

/// SYNs from spoofed on-link sources that never answer ARP (issue 11): a
/// legitimate client keeps being served.
#[test]
fn af_packet_syn_flood_from_unresolvable_sources() {
    arp_flood::syn_flood_from_unresolvable_sources("af_packet_syn_flood_from_unresolvable_sources");
}

backend_tests!(tap, Backend::Tap);
backend_tests!(xdp, Backend::Xdp);

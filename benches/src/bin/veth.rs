//! Echo over a real veth pair with the Linux kernel as the client: mtcp's
//! `echo` example on AF_PACKET, on AF_XDP and (when given a DPDK build) on
//! DPDK's `net_af_xdp`, against a tokio echo server on the kernel's own
//! stack over the same veth. Reports transactions/s, latency and the
//! server's CPU time per transaction (user + system, from /proc).
//!
//! With `--http PATH` it benchmarks HTTP instead: the `http` example (hyper
//! on mtcp) on AF_PACKET and AF_XDP against the same hyper service on tokio
//! with hyper-util's `TokioIo` on the kernel's stack (`--serve-tokio-http`,
//! below), each driven by `wrk` from the peer namespace, with keep-alive and
//! with `Connection: close`. The servers are alternated (every server once,
//! then again, `--rounds` times) and each mean is reported as a ratio to
//! tokio's.
//!
//! Needs root and network namespaces (`scripts/netns.sh up` is run here).
//!
//! ```sh
//! cargo build --release -p examples
//! cargo run --release -p benches --bin veth -- --echo target/release/echo [--seconds 5] [--conns 8]
//!     [--dpdk-echo PATH_TO_ECHO_BUILT_WITH_--features_dpdk] [--json]
//! cargo run --release -p benches --bin veth -- --http target/release/http [--seconds 5]
//!     [--conns 8,50] [--rounds 2] [--json] [--svg OUT.svg]
//! veth --report LINES.jsonl [--svg OUT.svg]   # the table (and chart) of saved --http --json lines
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, LazyLock};
use std::thread;
use std::time::{Duration, Instant};

use benches::veth_http::{self, HttpRow};
use clap::Parser;
use hdrhistogram::Histogram;

/// The `http` example's service, compiled from the example's own source so
/// the tokio twin answers exactly as the mtcp example does.
#[path = "../../../examples/src/http_hello.rs"]
mod http_hello;

// The topology's names: `PREFIX-stk`, `PREFIX-peer`, `PREFIX-s0` and
// `PREFIX-p0`, with `PREFIX` from `MTCP_NS_PREFIX` (default `mtcp`), which
// `scripts/netns.sh` reads too: a run under its own prefix is safe from
// another run's `scripts/netns.sh down`.
static STACK_NS: LazyLock<String> = LazyLock::new(|| mtcp_testkit::netns::name("stk"));
static PEER_NS: LazyLock<String> = LazyLock::new(|| mtcp_testkit::netns::name("peer"));
static STACK_IF: LazyLock<String> = LazyLock::new(|| mtcp_testkit::netns::name("s0"));
static PEER_IF: LazyLock<String> = LazyLock::new(|| mtcp_testkit::netns::name("p0"));
const MTCP_ADDR: &str = "10.99.0.2";
const KERNEL_ADDR: &str = "10.99.0.3";
const PORT: u16 = 8080;

/// Echo over a veth pair with the Linux kernel as the client: mtcp's
/// `echo` example on AF_PACKET, AF_XDP and (with --dpdk-echo) DPDK, against
/// a tokio echo server on the kernel's stack. Needs root.
#[derive(Debug, Parser)]
#[command(name = "veth", disable_version_flag = true)]
struct Options {
    /// The mtcp echo example to run
    #[arg(long, value_name = "PATH", default_value = "target/release/echo")]
    echo: String,
    /// The echo example built with `--features dpdk` (adds a DPDK run)
    #[arg(long, value_name = "PATH")]
    dpdk_echo: Option<String>,
    /// Measured seconds per server
    #[arg(long, value_name = "N", default_value_t = 5.0, value_parser = seconds)]
    seconds: f64,
    /// The `http` example to run: benchmark HTTP with wrk instead of echo
    #[arg(long, value_name = "PATH")]
    http: Option<String>,
    /// Kernel client connections (one thread each; wrk's connections with
    /// --http); a comma-separated list runs each
    #[arg(
        long,
        value_name = "N[,N...]",
        default_value = "8",
        value_delimiter = ',',
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    conns: Vec<usize>,
    /// With --http: how many times every server runs each configuration
    /// (alternated: A B C A B C)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    rounds: usize,
    /// With --http: also write a bar chart of the run here (SVG)
    #[arg(long, value_name = "PATH")]
    svg: Option<String>,
    /// Print the summary table of the `--http --json` lines in FILE (and
    /// write --svg) without running anything
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// One JSON object per line per server instead of a markdown table
    #[arg(long)]
    json: bool,
    /// Internal: serve tokio echo on ADDR (run by this program in the namespace)
    #[arg(long, value_name = "ADDR", hide = true)]
    serve_tokio: Option<String>,
    /// Internal: serve the http example's service with hyper on tokio on ADDR
    #[arg(long, value_name = "ADDR", hide = true)]
    serve_tokio_http: Option<String>,
}

/// Positive seconds.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err("expected a number of seconds greater than 0".into()),
    }
}

/// The tokio echo server (run inside the stack's namespace, on the kernel
/// address given to the veth for this run).
fn serve_tokio(addr: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        eprintln!("listening on {addr}");
        loop {
            let (s, _) = listener.accept().await.expect("accept");
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let _ = benches::loops::echo_server(s, 4096).await;
            });
        }
    });
}

/// The `http` example on tokio: the same service ([`http_hello::hello`]) and
/// the same hyper-util auto builder settings (HTTP/1.1 with keep-alive and a
/// 10 s header-read timeout, h2c by preface), with tokio's executor and timer
/// and kernel sockets through `TokioIo`. One thread, as the mtcp example
/// runs on one core. `TCP_NODELAY` is set (mtcp does not delay small
/// segments).
fn serve_tokio_http(addr: &str) {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        eprintln!("listening on {addr}");
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        builder.http2().timer(TokioTimer::new());
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let conn =
                    builder.serve_connection(TokioIo::new(stream), service_fn(http_hello::hello));
                let _ = conn.await;
            });
        }
    });
}

/// Runs a command; its output goes to stderr (stdout is for the results).
/// Gives the stack namespace's interface the kernel server's address
/// (the tokio runs serve on the kernel's own stack there).
fn add_kernel_addr() -> Result<(), String> {
    sh(&[
        "ip",
        "-n",
        STACK_NS.as_str(),
        "addr",
        "replace",
        "10.99.0.3/24",
        "dev",
        STACK_IF.as_str(),
    ])
}

/// Takes the kernel server's address off the stack namespace's interface
/// again (after a tokio run), so the mtcp runs own the subnet alone.
fn remove_kernel_addr() {
    let _ = sh(&[
        "ip",
        "-n",
        STACK_NS.as_str(),
        "addr",
        "flush",
        "dev",
        STACK_IF.as_str(),
    ]);
}

fn sh(args: &[&str]) -> Result<(), String> {
    let st = Command::new(args[0])
        .args(&args[1..])
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {st}", args.join(" ")))
    }
}

/// The server's CPU time (user + system) in seconds.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("bad stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is 0, utime 11, stime 12.
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

struct Server {
    child: Child,
}

impl Server {
    /// Starts `cmd` in the stack's namespace and waits for "listening on".
    fn start(env: &[(&str, &str)], cmd: &[&str]) -> Result<Server, String> {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", STACK_NS.as_str(), "env"]);
        for (k, v) in env {
            c.arg(format!("{k}={v}"));
        }
        c.args(cmd).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| format!("spawn {cmd:?}: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(Ok(()));
                    break;
                }
                let _ = tx.send(Err(line));
            }
            for _ in lines {}
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut log = Vec::new();
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ok(())) => return Ok(Server { child }),
                Ok(Err(line)) => log.push(line),
                Err(_) => {
                    let _ = child.kill();
                    return Err(format!("server did not start: {}", log.join(" | ")));
                }
            }
        }
    }

    fn pid(&self) -> u32 {
        // `ip netns exec` and `env` exec the server in place.
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kernel clients in the peer namespace: `conns` threads, one connection
/// each, 64-byte request/response for `seconds`.
fn clients(
    addr: SocketAddr,
    conns: usize,
    seconds: f64,
) -> Result<(u64, Histogram<u64>, f64), String> {
    let start = Instant::now() + Duration::from_millis(300);
    let end = start + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            thread::spawn(move || -> Result<(u64, Histogram<u64>), String> {
                mtcp_testkit::netns::enter(PEER_NS.as_str()).map_err(|e| format!("netns: {e}"))?;
                let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
                    .map_err(|e| e.to_string())?;
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(Duration::from_secs(5)))
                    .map_err(|e| e.to_string())?;
                let msg = [0x61u8; 64];
                let mut back = [0u8; 64];
                let mut n = 0;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    s.write_all(&msg).map_err(|e| e.to_string())?;
                    s.read_exact(&mut back).map_err(|e| e.to_string())?;
                    if t0 >= start {
                        n += 1;
                        let _ = h.record(t0.elapsed().as_nanos().max(1) as u64);
                    }
                }
                Ok((n, h))
            })
        })
        .collect();
    let mut total = 0;
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    for t in threads {
        let (n, h) = t.join().map_err(|_| "client panicked")??;
        total += n;
        hist.add(h).map_err(|e| e.to_string())?;
    }
    Ok((total, hist, seconds))
}

/// Starts one system's server; returns it with the address to reach.
type Starter<'a> = Box<dyn Fn() -> Result<(Server, SocketAddr), String> + 'a>;

struct Row {
    system: String,
    conns: usize,
    tx_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_tx: f64,
}

fn measure(
    name: &str,
    server: Server,
    addr: SocketAddr,
    conns: usize,
    o: &Options,
) -> Result<Row, String> {
    let cpu0 = cpu_seconds(server.pid())?;
    let t0 = Instant::now();
    let (n, hist, _) = clients(addr, conns, o.seconds)?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server.pid())? - cpu0;
    drop(server);
    let measured = o.seconds;
    // CPU over the whole client run (connect + warm-up + window) per
    // transaction of the window: an upper bound of the per-transaction cost.
    let _ = wall;
    Ok(Row {
        system: name.into(),
        conns,
        tx_per_s: n as f64 / measured,
        p50_us: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_us: hist.value_at_quantile(0.99) as f64 / 1000.0,
        cpu_us_per_tx: if n > 0 {
            cpu * 1e6 / n as f64
        } else {
            f64::NAN
        },
    })
}

fn mtcp_server(echo: &str, device: &str, extra: &[(&str, &str)]) -> Result<Server, String> {
    mtcp_testkit::netns::flush_neigh(PEER_NS.as_str(), PEER_IF.as_str());
    let mut env = vec![("MTCP_DEVICE", device), ("MTCP_ADDR", "10.99.0.2/24")];
    env.extend_from_slice(extra);
    Server::start(&env, &[echo, "0.0.0.0:8080"])
}

fn main() {
    let o = Options::parse();
    if let Some(addr) = &o.serve_tokio {
        serve_tokio(addr);
        return;
    }
    if let Some(addr) = &o.serve_tokio_http {
        serve_tokio_http(addr);
        return;
    }
    if let Some(file) = &o.report {
        if let Err(e) = report(file, o.svg.as_deref()) {
            eprintln!("veth: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = sh(&["scripts/netns.sh", "up"]) {
        eprintln!("veth: needs root and network namespaces: {e}");
        std::process::exit(1);
    }
    if let Some(http) = &o.http {
        std::process::exit(match http_mode(http, &o) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("veth: {e}");
                1
            }
        });
    }
    let mtcp_addr: SocketAddr = format!("{MTCP_ADDR}:{PORT}").parse().expect("addr");
    let kernel_addr: SocketAddr = format!("{KERNEL_ADDR}:{PORT}").parse().expect("addr");
    let mut rows = Vec::new();
    let af_packet = format!("af_packet:{}", STACK_IF.as_str());
    let xdp = format!("xdp:{}", STACK_IF.as_str());
    let mut runs: Vec<(String, Starter<'_>)> = vec![
        (
            "mtcp af_packet".into(),
            Box::new(|| mtcp_server(&o.echo, &af_packet, &[]).map(|s| (s, mtcp_addr))),
        ),
        (
            "mtcp xdp".into(),
            Box::new(|| mtcp_server(&o.echo, &xdp, &[]).map(|s| (s, mtcp_addr))),
        ),
    ];
    if let Some(dpdk) = &o.dpdk_echo {
        let args = format!(
            "-l 0 --no-huge --no-pci -m 256 --no-shconf --no-telemetry --vdev=net_af_xdp0,iface={}",
            STACK_IF.as_str()
        );
        let dpdk = dpdk.clone();
        runs.push((
            "mtcp dpdk net_af_xdp".into(),
            Box::new(move || {
                mtcp_server(&dpdk, "dpdk", &[("MTCP_DPDK_ARGS", args.as_str())])
                    .map(|s| (s, mtcp_addr))
            }),
        ));
    }
    let me = std::env::current_exe().expect("own path");
    let me = me.to_string_lossy().into_owned();
    runs.push((
        "tokio (kernel)".into(),
        Box::new(move || {
            add_kernel_addr()?;
            let kernel = format!("{KERNEL_ADDR}:{PORT}");
            Server::start(&[], &[me.as_str(), "--serve-tokio", kernel.as_str()])
                .map(|s| (s, kernel_addr))
        }),
    ));
    for &conns in &o.conns {
        for (name, start) in &runs {
            eprintln!("veth: {name}, {conns} conns ...");
            let r = start().and_then(|(server, addr)| measure(name, server, addr, conns, &o));
            if name.starts_with("tokio") {
                remove_kernel_addr();
            }
            match r {
                Ok(row) => rows.push(row),
                Err(e) => eprintln!("veth: {name}: {e}"),
            }
            thread::sleep(Duration::from_millis(500));
        }
    }
    if o.json {
        for r in &rows {
            println!(
                "{{\"scenario\":\"veth-echo\",\"system\":{:?},\"conns\":{},\"tx_per_s\":{:.0},\"p50_us\":{:.1},\"p99_us\":{:.1},\"server_cpu_us_per_tx\":{:.2}}}",
                r.system, r.conns, r.tx_per_s, r.p50_us, r.p99_us, r.cpu_us_per_tx
            );
        }
    } else {
        println!("| server | conns | tx/s | p50 µs | p99 µs | server CPU µs/tx |");
        println!("|---|--:|--:|--:|--:|--:|");
        for r in &rows {
            println!(
                "| {} | {} | {:.0} | {:.1} | {:.1} | {:.2} |",
                r.system, r.conns, r.tx_per_s, r.p50_us, r.p99_us, r.cpu_us_per_tx
            );
        }
    }
}

/// `GET path` from the peer namespace over a plain kernel socket
/// (`Connection: close`); the whole answer.
fn fetch(addr: SocketAddr, path: &'static str) -> Result<Vec<u8>, String> {
    thread::spawn(move || -> Result<Vec<u8>, String> {
        mtcp_testkit::netns::enter(PEER_NS.as_str()).map_err(|e| format!("netns: {e}"))?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .map_err(|e| format!("GET {path}: {e}"))?;
        Ok(out)
    })
    .join()
    .map_err(|_| "fetch panicked".to_string())?
}

/// The answers to `GET /` and `GET /missing`, without their `date`.
fn answers(addr: SocketAddr) -> Result<String, String> {
    let ok = veth_http::normalize_response(&fetch(addr, "/")?);
    let missing = veth_http::normalize_response(&fetch(addr, "/missing")?);
    if !ok.starts_with("HTTP/1.1 200 ") || !ok.ends_with("\r\n\r\nHello, world!") {
        return Err(format!("GET / answered {ok:?}"));
    }
    Ok(format!("{ok}\n--\n{missing}"))
}

/// One wrk run from the peer namespace against `server` at `addr`: what
/// wrk printed, and the server's CPU µs per request over the run.
fn wrk(
    server: &Server,
    addr: SocketAddr,
    close: bool,
    conns: usize,
    secs: u64,
) -> Result<(veth_http::Wrk, f64), String> {
    let cpu0 = cpu_seconds(server.pid())?;
    let mut c = Command::new("ip");
    c.args(["netns", "exec", PEER_NS.as_str(), "timeout"])
        .arg((secs + 30).to_string())
        .args(["wrk", "-t1"])
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .args(["--latency", "--timeout", "5s"]);
    if close {
        c.args(["-H", "Connection: close"]);
    }
    c.arg(format!("http://{addr}/"));
    let out = c.output().map_err(|e| format!("wrk: {e}"))?;
    let cpu = cpu_seconds(server.pid())? - cpu0;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("wrk failed ({}):\n{text}", out.status));
    }
    let w = veth_http::parse_wrk(&text)?;
    let per_req = if w.requests > 0 {
        cpu * 1e6 / w.requests as f64
    } else {
        f64::NAN
    };
    Ok((w, per_req))
}

/// `--http`: every (mode, conns) configuration, `--rounds` times, each
/// server in turn; before a server's first run its answers to `GET /` and
/// `GET /missing` must equal the first server's (but for `date`).
fn http_mode(http: &str, o: &Options) -> Result<(), String> {
    if !mtcp_testkit::netns::have("wrk") {
        return Err("`wrk` is missing (apt-get install wrk)".into());
    }
    let secs = o.seconds.ceil().max(1.0) as u64;
    let mtcp_addr: SocketAddr = format!("{MTCP_ADDR}:{PORT}").parse().expect("addr");
    let kernel_addr: SocketAddr = format!("{KERNEL_ADDR}:{PORT}").parse().expect("addr");
    let af_packet = format!("af_packet:{}", STACK_IF.as_str());
    let xdp = format!("xdp:{}", STACK_IF.as_str());
    let me = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let me = me.to_string_lossy().into_owned();
    let systems: Vec<(&str, Starter<'_>)> = vec![
        (
            "mtcp af_packet",
            Box::new(|| mtcp_server(http, &af_packet, &[]).map(|s| (s, mtcp_addr))),
        ),
        (
            "mtcp xdp",
            Box::new(|| mtcp_server(http, &xdp, &[]).map(|s| (s, mtcp_addr))),
        ),
        (
            "tokio (kernel)",
            Box::new(|| {
                mtcp_testkit::netns::flush_neigh(PEER_NS.as_str(), PEER_IF.as_str());
                add_kernel_addr()?;
                let kernel = format!("{KERNEL_ADDR}:{PORT}");
                Server::start(&[], &[me.as_str(), "--serve-tokio-http", kernel.as_str()])
                    .map(|s| (s, kernel_addr))
            }),
        ),
    ];
    let mut reference: Option<(&str, String)> = None;
    let mut checked = vec![false; systems.len()];
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (mode, close) in [("keep-alive", false), ("close", true)] {
        for &conns in &o.conns {
            for round in 0..o.rounds {
                for (i, (name, start)) in systems.iter().enumerate() {
                    eprintln!("veth: http {mode}, {conns} conns, round {round}: {name} ...");
                    let r = start().and_then(|(server, addr)| {
                        if !checked[i] {
                            let got = answers(addr)?;
                            match &reference {
                                None => reference = Some((name, got)),
                                Some((first, want)) if *want != got => {
                                    return Err(format!(
                                        "answers differ from {first}'s:\n{want}\n---- {name}:\n{got}"
                                    ));
                                }
                                Some((first, want)) => eprintln!(
                                    "veth: {name} answers GET / and GET /missing as {first} does ({} bytes but for date)",
                                    want.len()
                                ),
                            }
                            checked[i] = true;
                        }
                        wrk(&server, addr, close, conns, secs)
                    });
                    if name.starts_with("tokio") {
                        remove_kernel_addr();
                    }
                    match r {
                        Ok((w, cpu)) => rows.push(HttpRow {
                            system: (*name).into(),
                            mode: mode.into(),
                            conns,
                            round,
                            wrk: w,
                            cpu_us_per_req: cpu,
                        }),
                        Err(e) => {
                            eprintln!("veth: {name}: {e}");
                            failures.push(format!("{mode} {conns} conns round {round}: {name}"));
                        }
                    }
                    thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }
    if o.json {
        for r in &rows {
            println!("{}", r.json_line());
        }
    } else {
        print!("{}", veth_http::summary_markdown(&rows));
    }
    if let Ok(up) = std::fs::read_to_string("/proc/loadavg") {
        eprintln!("veth: load average after the run: {}", up.trim());
    }
    if let Some(path) = &o.svg {
        veth_http::chart(&rows, std::path::Path::new(path))?;
        eprintln!("veth: wrote {path}");
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("runs that failed: {}", failures.join("; ")))
    }
}

/// `--report FILE`: the summary (and chart) of saved `--http --json` lines.
fn report(file: &str, svg: Option<&str>) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let rows = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(HttpRow::from_json_line)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{file}: {e}"))?;
    print!("{}", veth_http::summary_markdown(&rows));
    if let Some(path) = svg {
        veth_http::chart(&rows, std::path::Path::new(path))?;
        eprintln!("veth: wrote {path}");
    }
    Ok(())
}

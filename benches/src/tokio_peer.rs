//! The `tokio` system: a tokio client and a tokio server on the kernel's
//! loopback (127.0.0.1, ephemeral port).
//!
//! Each side runs `cores` threads, each with its own `current_thread`
//! runtime and pinned to its own core (server on cores `0..cores`, client on
//! `cores..2*cores`; with fewer cores they share and a note goes to stderr).
//! With more than one server thread the listeners share the port through
//! `SO_REUSEPORT`, so the kernel spreads connections over them, like mtcp's
//! one listener per core. The client and server bodies are the generic
//! loops of [`crate::loops`].
//!
//! `idle` runs the server in a child process (this same binary with the
//! hidden `--serve-tokio-idle CORE,SIZE` mode) so that its resident memory
//! can be read from `/proc/PID/statm` apart from the client's.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::loops::{self, BulkStats, TxStats, Window, GRACE};
use crate::measurement::{Measurement, Metrics};
use crate::scenario::{Scenario, ScenarioConfig};
use crate::sys;
use crate::System;

/// The listen backlog of the servers.
const BACKLOG: u32 = 4096;

/// Idle connections per loopback source address (the ephemeral port range
/// holds about 28 000 ports per address pair).
const CONNS_PER_SOURCE: usize = 20_000;

/// Connects in flight at once while opening idle connections.
const IDLE_CONNECTS_IN_FLIGHT: usize = 256;

/// The tokio client/server pair on kernel loopback.
#[derive(Debug, Clone, Default)]
pub struct TokioSystem {
    idle_server_exe: Option<PathBuf>,
}

impl TokioSystem {
    /// The tokio system; `idle` spawns the current executable as its server.
    pub fn new() -> TokioSystem {
        TokioSystem {
            idle_server_exe: None,
        }
    }

    /// The tokio system with `exe` (a build of `compare`) as the `idle`
    /// server process; for callers, such as tests, that are not `compare`.
    pub fn with_idle_server_exe(exe: PathBuf) -> TokioSystem {
        TokioSystem {
            idle_server_exe: Some(exe),
        }
    }
}

impl System for TokioSystem {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn available(&self) -> Result<(), String> {
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map(drop)
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))
    }

    fn run(&self, config: &ScenarioConfig) -> Result<Measurement, String> {
        match config.scenario {
            Scenario::Echo => run_echo(config),
            Scenario::Connect => run_connect(config),
            Scenario::Bulk => run_bulk(config),
            Scenario::Idle => {
                let exe = match &self.idle_server_exe {
                    Some(exe) => exe.clone(),
                    None => std::env::current_exe()
                        .map_err(|e| format!("cannot find own executable: {e}"))?,
                };
                run_idle(config, &exe)
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a tokio runtime: {e}"))
}

fn note_once(note: Option<String>) {
    static NOTED: Once = Once::new();
    if let Some(note) = note {
        NOTED.call_once(|| eprintln!("tokio: {note}"));
    }
}

/// Splits `total` connections over `parts` threads; thread `i`'s share.
fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

/// A running set of server threads, one listener each on a shared port.
struct Servers {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Servers {
    /// Starts `cores.len()` server threads that hand every accepted stream
    /// to `handler`, and waits until all of them listen.
    fn start<H, F>(cores: &[Option<CoreId>], handler: H) -> Result<Servers, String>
    where
        H: Fn(TcpStream) -> F + Send + Clone + 'static,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let mut sockets = Vec::with_capacity(cores.len());
        for _ in cores {
            let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
            let setup = || -> io::Result<()> {
                socket.set_reuseaddr(true)?;
                socket.set_reuseport(true)?;
                socket.bind(addr)
            };
            setup().map_err(|e| format!("bind {addr}: {e}"))?;
            addr = socket
                .local_addr()
                .map_err(|e| format!("local_addr: {e}"))?;
            sockets.push(socket);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let mut threads = Vec::with_capacity(cores.len());
        for (socket, &core) in sockets.into_iter().zip(cores) {
            let stop = Arc::clone(&stop);
            let ready = ready_tx.clone();
            let handler = handler.clone();
            threads.push(thread::spawn(move || {
                sys::pin(core);
                let rt = match runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match socket.listen(BACKLOG) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready.send(Err(format!("listen: {e}")));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    accept_until_stopped(listener, &stop, handler).await;
                });
            }));
        }
        drop(ready_tx);
        let servers = Servers {
            addr,
            stop,
            threads,
        };
        for _ in 0..cores.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(servers.stop_with(e)),
                Err(_) => return Err(servers.stop_with("a server thread died".into())),
            }
        }
        Ok(servers)
    }

    /// Stops the servers and returns `error`.
    fn stop_with(self, error: String) -> String {
        self.stop();
        error
    }

    /// Stops the accept loops and waits for the threads; their runtimes drop
    /// the connection tasks still running.
    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

async fn accept_until_stopped<H, F>(listener: TcpListener, stop: &AtomicBool, handler: H)
where
    H: Fn(TcpStream) -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let stopped = async {
        while !stop.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(handler(stream));
                }
                // Out of descriptors or memory: let connections close.
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            },
            () = &mut stopped => return,
        }
    }
}

/// Runs `body(i)` on each client core (thread `i`, own runtime, pinned) and
/// collects the results; a body still running `GRACE` after the window is
/// reported as stuck.
fn run_clients<B, F, R>(cores: &[Option<CoreId>], window: Window, body: B) -> Result<Vec<R>, String>
where
    B: Fn(usize) -> F + Send + Clone + 'static,
    F: std::future::Future<Output = Result<R, String>>,
    R: Send + 'static,
{
    let threads: Vec<_> = cores
        .iter()
        .enumerate()
        .map(|(i, &core)| {
            let body = body.clone();
            thread::spawn(move || -> Result<R, String> {
                sys::pin(core);
                let rt = runtime()?;
                let limit = window.end.saturating_duration_since(Instant::now()) + GRACE;
                rt.block_on(async {
                    tokio::time::timeout(limit, body(i)).await.map_err(|_| {
                        format!("client thread {i} still running {GRACE:?} after the run")
                    })?
                })
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| {
            t.join()
                .map_err(|_| "a client thread panicked".to_string())?
        })
        .collect()
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn run_echo(config: &ScenarioConfig) -> Result<Measurement, String> {
    let (server_cores, client_cores, note) = sys::placement(config.cores);
    note_once(note);
    let size = config.size;
    let servers = Servers::start(&server_cores, move |stream| async move {
        let _ = loops::echo_server(stream, size).await;
    })?;
    let addr = servers.addr;
    let window = Window::after_warmup(config);
    let threads = client_cores.len();
    let conns = config.conns;
    let result = run_clients(&client_cores, window, move |i| async move {
        let tasks: Vec<_> = (0..share(conns, threads, i))
            .map(|_| {
                tokio::spawn(async move {
                    let mut stats = TxStats::new();
                    let mut stream = connect(addr).await.map_err(|e| format!("connect: {e}"))?;
                    loops::echo_client(&mut stream, size, &window, &mut stats)
                        .await
                        .map_err(|e| format!("echo: {e}"))?;
                    Ok::<TxStats, String>(stats)
                })
            })
            .collect();
        let mut total = TxStats::new();
        for task in tasks {
            let stats = task.await.map_err(|e| format!("client task: {e}"))??;
            total.merge(&stats);
        }
        Ok(total)
    });
    servers.stop();
    let mut total = TxStats::new();
    for stats in result? {
        total.merge(&stats);
    }
    Ok(total.echo_measurement("tokio", config, &window))
}

fn run_connect(config: &ScenarioConfig) -> Result<Measurement, String> {
    let (server_cores, client_cores, note) = sys::placement(config.cores);
    note_once(note);
    let size = config.size;
    let tw_before = sys::time_wait_sockets();
    let servers = Servers::start(&server_cores, move |stream| async move {
        let _ = loops::request_once_server(stream, size).await;
    })?;
    let addr = servers.addr;
    let started = Instant::now();
    let window = Window::after_warmup(config);
    let threads = client_cores.len();
    let loops_total = config.conns;
    let result = run_clients(&client_cores, window, move |i| async move {
        let tasks: Vec<_> = (0..share(loops_total, threads, i))
            .map(|_| {
                tokio::spawn(async move {
                    let mut stats = TxStats::new();
                    loops::connect_client(|| connect(addr), size, &window, &mut stats)
                        .await
                        .map_err(|e| format!("connect loop: {e}"))?;
                    Ok::<TxStats, String>(stats)
                })
            })
            .collect();
        let mut total = TxStats::new();
        for task in tasks {
            let stats = task.await.map_err(|e| format!("client task: {e}"))??;
            total.merge(&stats);
        }
        Ok(total)
    });
    servers.stop();
    let mut total = TxStats::new();
    for stats in result? {
        total.merge(&stats);
    }
    let elapsed = started.elapsed();
    let on_port = sys::time_wait_on_port(addr.port());
    let time_wait = time_wait_honoured(tw_before, on_port, &total, elapsed);
    Ok(total.connect_measurement("tokio", config, &window, time_wait))
}

/// Linux keeps a closed connection in TIME-WAIT for 60 s (not tunable),
/// unless `tcp_max_tw_buckets` is reached. The server closes first, so each
/// completed cycle leaves a TIME-WAIT socket on the server's port, one per
/// distinct client 4-tuple: when the client's kernel picks an ephemeral port
/// whose tuple is still in TIME-WAIT on the server, the server's kernel
/// accepts the new SYN in place of that entry (RFC 6191-style reuse). Linux
/// draws connect ports from one parity first (half the range, `p` ports),
/// so `n` cycles use about `p * (1 - e^(-n/p))` distinct tuples. TIME-WAIT was honoured when at least 80 % of those (for
/// the cycles of the last 55 s, within the room left by the bucket limit,
/// `tw_before` being every TIME-WAIT socket before the run) are found on
/// the server's port (`on_port`).
fn time_wait_honoured(
    tw_before: Option<u64>,
    on_port: Option<u64>,
    stats: &TxStats,
    elapsed: Duration,
) -> bool {
    let (Some(before), Some(on_port)) = (tw_before, on_port) else {
        return false;
    };
    let secs = elapsed.as_secs_f64().max(1e-3);
    let recent = if secs <= 55.0 {
        stats.total as f64
    } else {
        stats.total as f64 / secs * 55.0
    };
    let ports = (sys::ephemeral_ports().unwrap_or(28_232) / 2).max(1) as f64;
    let distinct = ports * -(-recent / ports).exp_m1();
    let room = sys::max_tw_buckets().map_or(f64::INFINITY, |m| m.saturating_sub(before) as f64);
    let expected = distinct.min(room);
    stats.total > 0 && on_port as f64 >= 0.8 * expected
}

fn run_bulk(config: &ScenarioConfig) -> Result<Measurement, String> {
    let (server_cores, client_cores, note) = sys::placement(1);
    note_once(note);
    let size = config.size;
    let window = Window::after_warmup(config);
    let (done_tx, done_rx) = mpsc::channel::<io::Result<BulkStats>>();
    let servers = Servers::start(&server_cores, move |stream| {
        let done = done_tx.clone();
        async move {
            let _ = done.send(loops::bulk_receiver(stream, size.max(64 * 1024), &window).await);
        }
    })?;
    let addr = servers.addr;
    let sent = run_clients(&client_cores, window, move |_| async move {
        let mut stream = connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let chunk = loops::request_bytes(size);
        loops::bulk_sender(&mut stream, &chunk, &window)
            .await
            .map_err(|e| format!("send: {e}"))
    });
    let received = done_rx.recv_timeout(GRACE);
    servers.stop();
    let sent: u64 = sent?.into_iter().sum();
    let stats = received
        .map_err(|_| "the receiver did not finish".to_string())?
        .map_err(|e| format!("receive: {e}"))?;
    if stats.total != sent {
        return Err(format!("sent {sent} bytes but received {}", stats.total));
    }
    let mut m = stats.measurement("tokio", config, &window);
    m.cores = 1;
    Ok(m)
}

/// The child process serving idle connections, and its pipes.
struct IdleServer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl IdleServer {
    fn spawn(exe: &PathBuf, core: usize, size: usize) -> Result<IdleServer, String> {
        let mut child = Command::new(exe)
            .arg("--serve-tokio-idle")
            .arg(format!("{core},{size}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err("idle server without pipes".into());
        };
        let mut server = IdleServer {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        };
        let line = server.line()?;
        let port = line
            .strip_prefix("port ")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .ok_or_else(|| server.fail(format!("idle server said `{}`", line.trim())))?;
        server.addr.set_port(port);
        Ok(server)
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => Ok(line),
            Ok(_) => Err("idle server exited".into()),
            Err(e) => Err(format!("idle server pipe: {e}")),
        }
    }

    fn fail(&mut self, error: String) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        error
    }

    /// Connections the server has accepted so far.
    fn accepted(&mut self) -> Result<usize, String> {
        writeln!(self.stdin, "count")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("idle server pipe: {e}"))?;
        let line = self.line()?;
        line.trim()
            .strip_prefix("accepted ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("idle server said `{}`", line.trim()))
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the idle client thread reports once it has opened its connections.
struct Opened {
    established: usize,
    error: Option<String>,
}

fn run_idle(config: &ScenarioConfig, exe: &PathBuf) -> Result<Measurement, String> {
    let (server_cores, client_cores, note) = sys::placement(1);
    note_once(note);
    let wanted = config.conns;
    let server_core = server_cores[0].map_or(usize::MAX, |c| c.id);
    let mut server = IdleServer::spawn(exe, server_core, config.size)?;
    let pid = server.child.id();
    // Let the child settle, then take the baselines.
    thread::sleep(Duration::from_millis(200));
    let rss_before = sys::rss_bytes(pid).map_err(|e| server.fail(e))?;
    let slab_before = sys::slab_bytes();

    let addr = server.addr;
    let client_core = client_cores[0];
    let (opened_tx, opened_rx) = mpsc::channel::<Opened>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let client = thread::spawn(move || {
        sys::pin(client_core);
        let limit = sys::raise_nofile(wanted as u64 + 1024);
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = opened_tx.send(Opened {
                    established: 0,
                    error: Some(e),
                });
                return;
            }
        };
        let (streams, mut error) = rt.block_on(open_idle(addr, wanted));
        if streams.len() < wanted && error.is_none() {
            error = Some(format!("stopped at the open-file limit {limit}"));
        }
        let _ = opened_tx.send(Opened {
            established: streams.len(),
            error,
        });
        // Hold the connections until the server's memory has been read.
        let _ = release_rx.recv();
        drop(streams);
    });

    let result = (|| -> Result<Measurement, String> {
        let opened = opened_rx
            .recv()
            .map_err(|_| "the idle client thread died".to_string())?;
        if let Some(e) = &opened.error {
            eprintln!(
                "tokio: idle: opened {} of {wanted} connections: {e}",
                opened.established
            );
        }
        if opened.established == 0 {
            return Err(opened
                .error
                .unwrap_or_else(|| "no connection opened".into()));
        }
        // Wait until the server holds them all (or stops making progress).
        let mut accepted = server.accepted()?;
        let mut last_progress = Instant::now();
        while accepted < opened.established && last_progress.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(50));
            let now = server.accepted()?;
            if now > accepted {
                last_progress = Instant::now();
            }
            accepted = now;
        }
        thread::sleep(Duration::from_millis(300));
        let accepted = server.accepted()?;
        let rss_after = sys::rss_bytes(pid)?;
        let slab_after = sys::slab_bytes();
        if accepted == 0 {
            return Err("the idle server accepted nothing".into());
        }
        let kernel = match (slab_before, slab_after) {
            // Both ends of every loopback connection are kernel sockets.
            (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / (2 * accepted) as f64),
            _ => None,
        };
        Ok(Measurement {
            system: "tokio".into(),
            cores: 1,
            conns: accepted,
            size: config.size,
            seconds: 0.0,
            rounds: 1,
            metrics: Metrics::Idle {
                requested: wanted,
                bytes_per_conn: rss_after.saturating_sub(rss_before) as f64 / accepted as f64,
                kernel_bytes_per_conn: kernel,
            },
        })
    })();
    let _ = release_tx.send(());
    let _ = client.join();
    server.stop();
    result
}

/// Opens up to `wanted` connections to `addr`, from loopback sources
/// 127.0.0.1, 127.0.0.2, ... ([`CONNS_PER_SOURCE`] each, to stay inside the
/// ephemeral port range). Stops at the first error and returns it.
async fn open_idle(addr: SocketAddr, wanted: usize) -> (Vec<TcpStream>, Option<String>) {
    let mut streams = Vec::with_capacity(wanted);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut next = 0usize;
    let mut error = None;
    while streams.len() < wanted {
        while error.is_none() && next < wanted && in_flight.len() < IDLE_CONNECTS_IN_FLIGHT {
            let source = source_address(next);
            in_flight.spawn(async move {
                let socket = TcpSocket::new_v4()?;
                socket.bind(SocketAddr::from((source, 0)))?;
                socket.connect(addr).await
            });
            next += 1;
        }
        match in_flight.join_next().await {
            Some(Ok(Ok(stream))) => streams.push(stream),
            Some(Ok(Err(e))) => {
                error.get_or_insert_with(|| format!("connect #{}: {e}", streams.len()));
            }
            Some(Err(e)) => {
                error.get_or_insert_with(|| format!("connect task: {e}"));
            }
            None => break,
        }
    }
    (streams, error)
}

/// The loopback source address of idle connection `i`.
fn source_address(i: usize) -> Ipv4Addr {
    let n = (i / CONNS_PER_SOURCE) as u32 + 1;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + (n & 0x00ff_ffff))
}

/// The child side of `idle`: pins to `core` (if it exists), listens on an
/// ephemeral loopback port, prints `port N`, and holds every accepted
/// connection in an echo task with a `size`-byte buffer. Each `count` line
/// on stdin is answered with `accepted N`; end of stdin ends the process.
///
/// # Errors
///
/// Why the server could not start.
pub fn serve_idle(core: usize, size: usize) -> Result<(), String> {
    sys::raise_nofile(2_000_000);
    let core_id = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.id == core);
    sys::pin(core_id);
    let rt = runtime()?;
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    rt.block_on(async move {
        let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        socket
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|e| format!("bind: {e}"))?;
        let listener = socket.listen(BACKLOG).map_err(|e| format!("listen: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        {
            let mut out = io::stdout().lock();
            writeln!(out, "port {port}")
                .and_then(|()| out.flush())
                .map_err(|e| e.to_string())?;
        }
        thread::spawn(move || {
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim() == "count" {
                    let mut out = io::stdout().lock();
                    let n = counter.load(Ordering::Acquire);
                    if writeln!(out, "accepted {n}")
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        break;
                    }
                }
            }
            std::process::exit(0);
        });
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    accepted.fetch_add(1, Ordering::AcqRel);
                    tokio::spawn(async move {
                        let _ = loops::echo_server(stream, size).await;
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, parts) in [(50, 1), (50, 3), (2, 4), (7, 7)] {
            let sum: usize = (0..parts).map(|i| share(total, parts, i)).sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn idle_sources_change_every_block() {
        assert_eq!(source_address(0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(
            source_address(CONNS_PER_SOURCE - 1),
            Ipv4Addr::new(127, 0, 0, 1)
        );
        assert_eq!(
            source_address(CONNS_PER_SOURCE),
            Ipv4Addr::new(127, 0, 0, 2)
        );
        assert_eq!(source_address(1_000_000), Ipv4Addr::new(127, 0, 0, 51));
    }

    #[test]
    fn time_wait_check() {
        let mut stats = TxStats::new();
        stats.total = 1000;
        let short = Duration::from_secs(2);
        // 1000 cycles over ~14 000 ports: about 965 distinct tuples.
        assert!(time_wait_honoured(Some(10), Some(1000), &stats, short));
        assert!(time_wait_honoured(Some(10), Some(800), &stats, short));
        assert!(!time_wait_honoured(Some(10), Some(500), &stats, short));
        // Many more cycles than ports: at most one entry per port.
        stats.total = 1_000_000;
        let ports = sys::ephemeral_ports().unwrap_or(28_232);
        assert!(time_wait_honoured(Some(0), Some(ports / 2), &stats, short));
        assert!(!time_wait_honoured(Some(0), Some(ports / 4), &stats, short));
        stats.total = 1000;
        assert!(!time_wait_honoured(Some(10), None, &stats, short));
        // Past 55 s only the last 55 s worth can still be there.
        assert!(time_wait_honoured(
            Some(0),
            Some(450),
            &stats,
            Duration::from_secs(110)
        ));
        // A full bucket table leaves no room: nothing more can be expected.
        let full = sys::max_tw_buckets().unwrap_or(0);
        assert!(time_wait_honoured(Some(full), Some(0), &stats, short));
        stats.total = 0;
        assert!(!time_wait_honoured(Some(0), Some(0), &stats, short));
    }
}

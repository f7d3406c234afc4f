//! The `tokio` system: a tokio client and a tokio server on the kernel's
//! loopback (127.0.0.1, ephemeral port).
//!
//! Each side runs `cores` threads, each with its own `current_thread`
//! runtime and pinned to its own core (server on cores `0..cores`, client on
//! `cores..2*cores`; with fewer cores they share and a note goes to stderr).
//! With more than one server thread the listeners share the port through
//! `SO_REUSEPORT`, so the kernel spreads connections over them, like mtcp's
//! one listener per core. The client and server bodies are the generic
//! loops of [`crate::loops`] (and of [`crate::datagram`] for `udp`).
//!
//! `udp`: each server thread owns one socket on its own port (tokio's
//! `UdpSocket` has no `SO_REUSEPORT` builder); the client sockets are
//! spread over the servers' ports round robin.
//!
//! `idle` runs in helper processes, see [`crate::tokio_idle`].

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

use crate::datagram;
use crate::loops::{self, BulkStats, TxStats, Window, GRACE};
use crate::measurement::Measurement;
use crate::scenario::{Scenario, ScenarioConfig};
use crate::sys;
use crate::System;

/// The listen backlog of the servers.
pub(crate) const BACKLOG: u32 = 4096;

/// The tokio client/server pair on kernel loopback.
#[derive(Debug, Clone, Default)]
pub struct TokioSystem {
    helper_exe: Option<PathBuf>,
}

impl TokioSystem {
    /// The tokio system; `idle` runs the current executable as its helper
    /// processes.
    pub fn new() -> TokioSystem {
        TokioSystem { helper_exe: None }
    }

    /// The tokio system with `exe` (a build of `compare`) as the `idle`
    /// helper processes; for callers, such as tests, that are not `compare`.
    pub fn with_helper_exe(exe: PathBuf) -> TokioSystem {
        TokioSystem {
            helper_exe: Some(exe),
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
                let exe = match &self.helper_exe {
                    Some(exe) => exe.clone(),
                    None => std::env::current_exe()
                        .map_err(|e| format!("cannot find own executable: {e}"))?,
                };
                crate::tokio_idle::run_idle(config, &exe)
            }
            Scenario::Udp => run_udp(config),
        }
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a tokio runtime: {e}"))
}

pub(crate) fn note_once(note: Option<String>) {
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

/// Running UDP echo servers, one socket and thread per server core.
struct UdpServers {
    addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<Result<(), String>>>,
}

impl UdpServers {
    /// Binds one loopback socket per server core and starts its thread.
    fn start(cores: &[Option<CoreId>]) -> Result<UdpServers, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut servers = UdpServers {
            addrs: Vec::with_capacity(cores.len()),
            stop: Arc::clone(&stop),
            threads: Vec::with_capacity(cores.len()),
        };
        for &core in cores {
            let bound = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .and_then(|s| s.local_addr().map(|a| (s, a)));
            let (socket, addr) = match bound {
                Ok(b) => b,
                Err(e) => {
                    let _ = servers.stop();
                    return Err(format!("udp bind 127.0.0.1: {e}"));
                }
            };
            servers.addrs.push(addr);
            let stop = Arc::clone(&stop);
            servers.threads.push(thread::spawn(move || {
                sys::pin(core);
                runtime()?.block_on(async move {
                    let socket = UdpSocket::from_std(socket).map_err(|e| format!("udp: {e}"))?;
                    let stopped = async {
                        while !stop.load(Ordering::Acquire) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    };
                    tokio::select! {
                        r = datagram::udp_echo_server(&socket) => {
                            r.map_err(|e| format!("udp server: {e}"))
                        }
                        () = stopped => Ok(()),
                    }
                })
            }));
        }
        Ok(servers)
    }

    /// Stops the servers; the first server error, if any.
    fn stop(self) -> Result<(), String> {
        self.stop.store(true, Ordering::Release);
        let mut result = Ok(());
        for t in self.threads {
            let r = t
                .join()
                .unwrap_or_else(|_| Err("a udp server thread panicked".into()));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

fn run_udp(config: &ScenarioConfig) -> Result<Measurement, String> {
    let (server_cores, client_cores, note) = sys::placement(config.cores);
    note_once(note);
    let servers = UdpServers::start(&server_cores)?;
    let addrs = servers.addrs.clone();
    let window = Window::after_warmup(config);
    let threads = client_cores.len();
    let (conns, size) = (config.conns, config.size);
    let result = run_clients(&client_cores, window, move |i| {
        let addrs = addrs.clone();
        async move {
            // Socket k of all of them goes to server k % servers.
            let first: usize = (0..i).map(|j| share(conns, threads, j)).sum();
            let tasks: Vec<_> = (first..first + share(conns, threads, i))
                .map(|k| {
                    let addr = addrs[k % addrs.len()];
                    tokio::spawn(async move {
                        let mut stats = TxStats::new();
                        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                            .await
                            .map_err(|e| format!("udp bind: {e}"))?;
                        socket
                            .connect(addr)
                            .await
                            .map_err(|e| format!("udp connect: {e}"))?;
                        datagram::udp_client(
                            &socket,
                            size,
                            &window,
                            tokio::time::sleep,
                            &mut stats,
                        )
                        .await
                        .map_err(|e| format!("udp: {e}"))?;
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
        }
    });
    servers.stop()?;
    let mut total = TxStats::new();
    for stats in result? {
        total.merge(&stats);
    }
    Ok(total.udp_measurement("tokio", config, &window))
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
    let ports = sys::ephemeral_ports().unwrap_or(28_232);
    let time_wait = time_wait_honoured(on_port, total.total, elapsed, ports);
    if let (Some(before), Some(max)) = (tw_before, sys::max_tw_buckets()) {
        if !time_wait
            && before as f64 + expected_time_wait(total.total, elapsed, ports) > max as f64
        {
            eprintln!(
                "tokio: connect: {before} TIME-WAIT sockets before the run and a limit of \
                 {max} (net.ipv4.tcp_max_tw_buckets): the kernel dropped TIME-WAIT sockets"
            );
        }
    }
    Ok(total.connect_measurement("tokio", config, &window, time_wait))
}

/// Linux keeps a closed connection in TIME-WAIT for 60 s (not tunable),
/// unless `tcp_max_tw_buckets` is reached, when it drops them. The server
/// closes first, so each completed cycle leaves a TIME-WAIT socket on the
/// server's port, one per distinct client 4-tuple: when the client's kernel
/// picks an ephemeral port whose tuple is still in TIME-WAIT on the server,
/// the server's kernel accepts the new SYN in place of that entry (RFC
/// 6191-style reuse). Linux draws connect ports from one parity first (half
/// the range: `ports / 2`), so `n` cycles use about `p * (1 - e^(-n/p))`
/// distinct tuples with `p = ports / 2`. TIME-WAIT was honoured when at
/// least 80 % of the tuples of the cycles of the last 55 s are found in
/// TIME-WAIT on the server's port (`on_port`).
pub(crate) fn time_wait_honoured(
    on_port: Option<u64>,
    total: u64,
    elapsed: Duration,
    ports: u64,
) -> bool {
    let Some(on_port) = on_port else {
        return false;
    };
    total > 0 && on_port as f64 >= 0.8 * expected_time_wait(total, elapsed, ports)
}

/// The TIME-WAIT sockets `total` cycles over `elapsed` should leave behind
/// (see [`time_wait_honoured`]).
fn expected_time_wait(total: u64, elapsed: Duration, ports: u64) -> f64 {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let recent = if secs <= 55.0 {
        total as f64
    } else {
        total as f64 / secs * 55.0
    };
    let p = (ports / 2).max(1) as f64;
    p * -(-recent / p).exp_m1()
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
    fn time_wait_check() {
        let short = Duration::from_secs(2);
        let ports = 28_232;
        // 1000 cycles over 14 116 ports: about 966 distinct tuples.
        assert!((expected_time_wait(1000, short, ports) - 966.0).abs() < 1.0);
        assert!(time_wait_honoured(Some(1000), 1000, short, ports));
        assert!(time_wait_honoured(Some(800), 1000, short, ports));
        assert!(!time_wait_honoured(Some(500), 1000, short, ports));
        assert!(!time_wait_honoured(None, 1000, short, ports));
        assert!(!time_wait_honoured(Some(0), 0, short, ports));
        // Many more cycles than ports: at most one entry per port.
        assert!(time_wait_honoured(Some(14_000), 1_000_000, short, ports));
        assert!(!time_wait_honoured(Some(7_000), 1_000_000, short, ports));
        // Past 55 s only the last 55 s worth can still be there.
        assert!(time_wait_honoured(
            Some(450),
            1000,
            Duration::from_secs(110),
            ports
        ));
        assert!(!time_wait_honoured(
            Some(300),
            1000,
            Duration::from_secs(110),
            ports
        ));
    }
}

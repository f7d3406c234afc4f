//! The `mtcp` system: two mtcp runtimes in this process, a server and a
//! client, each with `cores` pinned cores (server on CPUs `0..cores`, client
//! on `cores..2*cores`) and one user-level stack per core, joined by the
//! in-memory NIC with one queue per core (RSS steers each flow to the same
//! core index on both sides).
//!
//! The server and client bodies are the generic loops of [`crate::loops`],
//! run on `mtcp::net::TcpStream`, and for `udp` those of
//! [`crate::datagram`] on `mtcp::net::UdpSocket`.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mtcp::net::{TcpListener, TcpStream, UdpSocket};
use mtcp::runtime::{Builder, Handle, IdlePolicy, Runtime};
use mtcp::stack::nic::memory::{MemoryNic, MemoryNicConfig};
use mtcp::stack::tcp::TcpConfig;
use mtcp::stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

use crate::datagram;
use crate::loops::{self, BulkStats, TxStats, Window, GRACE};
use crate::measurement::{Measurement, Metrics};
use crate::scenario::{PollMode, Scenario, ScenarioConfig};
use crate::System;

/// The server's port (the first of several for `idle`).
const PORT: u16 = 8080;
/// The server's address; the client is `10.0.0.2`.
const SERVER: [u8; 4] = [10, 0, 0, 1];
/// Idle connections per server port (the client's ephemeral range holds
/// 28,232 ports per remote address and port).
const IDLE_PER_PORT: usize = 25_000;

/// The mtcp client/server pair over the in-memory NIC.
#[derive(Debug, Clone, Copy, Default)]
pub struct MtcpSystem;

impl MtcpSystem {
    /// The mtcp system.
    pub fn new() -> MtcpSystem {
        MtcpSystem
    }
}

impl System for MtcpSystem {
    fn name(&self) -> &'static str {
        "mtcp"
    }

    fn available(&self) -> Result<(), String> {
        MemoryNic::pair_with(&MemoryNicConfig::default())
            .map(drop)
            .map_err(|e| format!("cannot make an in-memory NIC: {e}"))
    }

    fn run(&self, config: &ScenarioConfig) -> Result<Measurement, String> {
        match config.scenario {
            Scenario::Echo => run_echo(config),
            Scenario::Connect => run_connect(config),
            Scenario::Bulk => run_bulk(config),
            Scenario::Idle => run_idle(config),
            Scenario::Udp => run_udp(config),
        }
    }
}

fn cidr(a: [u8; 4]) -> Ipv4Cidr {
    Ipv4Cidr {
        address: Ipv4Address::from(a),
        prefix_len: 24,
    }
}

/// The server and client runtimes, joined by an in-memory NIC.
fn runtimes(
    config: &ScenarioConfig,
    cores: usize,
    tcp: TcpConfig,
) -> Result<(Runtime, Runtime), String> {
    let (a, b) = MemoryNic::pair_with(&MemoryNicConfig {
        queues: cores,
        ring_size: 4096,
        ..MemoryNicConfig::default()
    })
    .map_err(|e| format!("in-memory NIC: {e}"))?;
    let idle = match config.poll {
        PollMode::BusyPoll => IdlePolicy::BusyPoll,
        PollMode::Adaptive => IdlePolicy::default(),
    };
    let cpus = core_affinity::get_core_ids().map_or(0, |ids| ids.len());
    let pin = cpus >= 2 * cores;
    if !pin {
        crate::tokio_peer::note_once(Some(format!(
            "only {cpus} cores for {} threads: threads are not pinned",
            2 * cores
        )));
    }
    let build = |addr, queues, first_cpu| {
        Builder::new()
            .cores(cores)
            .pin_threads(pin)
            .first_cpu(first_cpu)
            .idle_policy(idle)
            .addr(cidr(addr))
            .tcp_config(tcp.clone())
            .nic_queues(queues)
            .build()
            .map_err(|e| format!("mtcp runtime: {e}"))
    };
    let server = build(SERVER, a.split_boxed(), 0)?;
    let client = build([10, 0, 0, 2], b.split_boxed(), cores)?;
    Ok((server, client))
}

/// A server runtime running on its own threads until [`Server::stop`].
struct Server<T> {
    handle: Handle,
    thread: thread::JoinHandle<Vec<Result<T, String>>>,
}

impl<T: Send + 'static> Server<T> {
    /// Runs `main` once per server core; returns when every core listens
    /// (each core's main sends one readiness message first).
    fn start<M, F>(rt: Runtime, main: M) -> Result<Server<T>, String>
    where
        M: Fn(mpsc::Sender<Result<Handle, String>>) -> F + Send + Sync + 'static,
        F: std::future::Future<Output = Result<T, String>> + 'static,
    {
        let cores = rt.cores();
        let (ready_tx, ready_rx) = mpsc::channel();
        let ready_tx = std::sync::Mutex::new(ready_tx);
        let thread = thread::spawn(move || {
            rt.block_on_each_core(move || {
                let ready = ready_tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
                main(ready)
            })
        });
        let mut handle = None;
        for _ in 0..cores {
            match ready_rx.recv_timeout(Duration::from_secs(30)) {
                Ok(Ok(h)) => handle = Some(h),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err("the mtcp server did not start".into()),
            }
        }
        Ok(Server {
            handle: handle.ok_or("no server core")?,
            thread,
        })
    }

    /// Asks every server core to stop and collects their results.
    fn stop(self) -> Result<Vec<T>, String> {
        self.handle.request_shutdown();
        self.thread
            .join()
            .map_err(|_| "the mtcp server panicked".to_string())?
            .into_iter()
            .collect()
    }
}

/// Binds `port` on this core and reports readiness.
async fn listen(
    port: u16,
    ready: &mpsc::Sender<Result<Handle, String>>,
) -> Result<TcpListener, String> {
    match TcpListener::bind(("0.0.0.0", port)).await {
        Ok(l) => {
            let _ = ready.send(Ok(Handle::current()));
            Ok(l)
        }
        Err(e) => {
            let msg = format!("bind: {e}");
            let _ = ready.send(Err(msg.clone()));
            Err(msg)
        }
    }
}

/// Accepts until the runtime is asked to shut down, handing each stream to
/// `handler` as a new task.
async fn accept_until_shutdown<H, F>(listener: &TcpListener, handler: H)
where
    H: Fn(TcpStream) -> F,
    F: std::future::Future<Output = ()> + 'static,
{
    let stop = mtcp::runtime::shutdown_requested();
    mtcp::pin!(stop);
    loop {
        mtcp::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    mtcp::spawn(handler(s));
                }
                Err(_) => mtcp::task::yield_now().await,
            },
            () = &mut stop => return,
        }
    }
}

async fn connect() -> io::Result<TcpStream> {
    let s = TcpStream::connect((Ipv4Address::from(SERVER), PORT)).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Runs `body` once per client core and collects the results; a body still
/// running `GRACE` after the window is reported as stuck.
fn run_clients<B, F, R>(rt: &Runtime, window: Window, body: B) -> Result<Vec<R>, String>
where
    B: Fn(usize) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Result<R, String>> + 'static,
    R: Send + 'static,
{
    let limit = window.end.saturating_duration_since(Instant::now()) + GRACE;
    rt.try_block_on_each_core(move || {
        let i = mtcp::runtime::current_core();
        let f = body(i);
        async move {
            mtcp::time::timeout(limit, f)
                .await
                .map_err(|_| format!("client core {i} still running {GRACE:?} after the run"))?
        }
    })
    .map_err(|e| format!("client runtime: {e}"))?
    .into_iter()
    .collect()
}

fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

/// Spawns `n` client tasks made by `task` on this core and merges their
/// stats.
async fn client_tasks<T, F>(n: usize, task: T) -> Result<TxStats, String>
where
    T: Fn() -> F,
    F: std::future::Future<Output = Result<TxStats, String>> + 'static,
{
    let handles: Vec<_> = (0..n).map(|_| mtcp::spawn(task())).collect();
    let mut total = TxStats::new();
    for h in handles {
        total.merge(&h.await.map_err(|e| format!("client task: {e}"))??);
    }
    Ok(total)
}

fn run_echo(config: &ScenarioConfig) -> Result<Measurement, String> {
    let (server_rt, client_rt) = runtimes(config, config.cores, TcpConfig::default())?;
    let size = config.size;
    let server = Server::start(server_rt, move |ready| async move {
        let l = listen(PORT, &ready).await?;
        accept_until_shutdown(&l, move |s| async move {
            let _ = loops::echo_server(s, size).await;
        })
        .await;
        Ok(())
    })?;
    let window = Window::after_warmup(config);
    let (conns, cores) = (config.conns, config.cores);
    let result = run_clients(&client_rt, window, move |i| {
        client_tasks(share(conns, cores, i), move || async move {
            let mut stats = TxStats::new();
            let mut s = connect().await.map_err(|e| format!("connect: {e}"))?;
            loops::echo_client(&mut s, size, &window, &mut stats)
                .await
                .map_err(|e| format!("echo: {e}"))?;
            Ok(stats)
        })
    });
    server.stop()?;
    let mut total = TxStats::new();
    for s in result? {
        total.merge(&s);
    }
    Ok(total.echo_measurement("mtcp", config, &window))
}

/// `udp`: every server core binds the port and echoes; every client
/// socket binds an ephemeral port and connects (the stack picks a port
/// whose replies RSS steers back to the socket's core).
fn run_udp(config: &ScenarioConfig) -> Result<Measurement, String> {
    let (server_rt, client_rt) = runtimes(config, config.cores, TcpConfig::default())?;
    let server = Server::start(server_rt, move |ready| async move {
        let socket = match UdpSocket::bind(("0.0.0.0", PORT)).await {
            Ok(s) => {
                let _ = ready.send(Ok(Handle::current()));
                s
            }
            Err(e) => {
                let msg = format!("udp bind: {e}");
                let _ = ready.send(Err(msg.clone()));
                return Err(msg);
            }
        };
        let stop = mtcp::runtime::shutdown_requested();
        mtcp::select! {
            r = datagram::udp_echo_server(&socket) => {
                r.map_err(|e| format!("udp server: {e}"))
            }
            () = stop => Ok(()),
        }
    })?;
    let window = Window::after_warmup(config);
    let (conns, cores, size) = (config.conns, config.cores, config.size);
    let result = run_clients(&client_rt, window, move |i| {
        client_tasks(share(conns, cores, i), move || async move {
            let mut stats = TxStats::new();
            let socket = UdpSocket::bind("0.0.0.0:0")
                .await
                .map_err(|e| format!("udp bind: {e}"))?;
            socket
                .connect(SocketAddrV4::new(Ipv4Addr::from(SERVER), PORT))
                .await
                .map_err(|e| format!("udp connect: {e}"))?;
            datagram::udp_client(&socket, size, &window, mtcp::time::sleep, &mut stats)
                .await
                .map_err(|e| format!("udp: {e}"))?;
            Ok(stats)
        })
    });
    server.stop()?;
    let mut total = TxStats::new();
    for s in result? {
        total.merge(&s);
    }
    Ok(total.udp_measurement("mtcp", config, &window))
}

fn run_connect(config: &ScenarioConfig) -> Result<Measurement, String> {
    // The server closes first and holds each 4-tuple in TIME-WAIT for 2×MSL
    // (60 s); a newer SYN may reuse one (RFC 6191). So the server needs a
    // TCB for every client port in use over a minute.
    let tcp = TcpConfig {
        max_connections: 65_536,
        ..TcpConfig::default()
    };
    let (server_rt, client_rt) = runtimes(config, config.cores, tcp)?;
    let size = config.size;
    let server = Server::start(server_rt, move |ready| async move {
        let l = listen(PORT, &ready).await?;
        accept_until_shutdown(&l, move |s| async move {
            let _ = loops::request_once_server(s, size).await;
        })
        .await;
        let stats = mtcp::net::core_stats().map_err(|e| e.to_string())?;
        Ok((stats.time_wait, stats.tcp.time_wait_reused))
    })?;
    let window = Window::after_warmup(config);
    let (loops_total, cores) = (config.conns, config.cores);
    let result = run_clients(&client_rt, window, move |i| {
        client_tasks(share(loops_total, cores, i), move || async move {
            let mut stats = TxStats::new();
            loops::connect_client(connect, size, &window, &mut stats)
                .await
                .map_err(|e| format!("connect loop: {e}"))?;
            Ok(stats)
        })
    });
    let server_side = server.stop()?;
    let mut total = TxStats::new();
    for s in result? {
        total.merge(&s);
    }
    // Honoured: the server ended the run holding closed connections in
    // TIME-WAIT (and reused tuples only through newer SYNs).
    let in_time_wait: usize = server_side.iter().map(|(tw, _)| tw).sum();
    let time_wait = total.total > 0 && in_time_wait > 0;
    Ok(total.connect_measurement("mtcp", config, &window, time_wait))
}

fn run_bulk(config: &ScenarioConfig) -> Result<Measurement, String> {
    let bulk_config = ScenarioConfig {
        cores: 1,
        ..config.clone()
    };
    let (server_rt, client_rt) = runtimes(&bulk_config, 1, TcpConfig::default())?;
    let size = config.size;
    let window = Window::after_warmup(config);
    let server = Server::start(server_rt, move |ready| async move {
        let l = listen(PORT, &ready).await?;
        let (s, _) = l.accept().await.map_err(|e| format!("accept: {e}"))?;
        loops::bulk_receiver(s, size.max(64 * 1024), &window)
            .await
            .map(Some)
            .map_err(|e| format!("receive: {e}"))
    })?;
    let sent = run_clients(&client_rt, window, move |_| async move {
        let mut s = connect().await.map_err(|e| format!("connect: {e}"))?;
        let chunk = loops::request_bytes(size);
        loops::bulk_sender(&mut s, &chunk, &window)
            .await
            .map_err(|e| format!("send: {e}"))
    });
    let received: Vec<Option<BulkStats>> = server.stop()?;
    let sent: u64 = sent?.into_iter().sum();
    let stats = received
        .into_iter()
        .flatten()
        .next()
        .ok_or("the receiver did not finish")?;
    if stats.total != sent {
        return Err(format!("sent {sent} bytes but received {}", stats.total));
    }
    let mut m = stats.measurement("mtcp", config, &window);
    m.cores = 1;
    Ok(m)
}

/// The process's resident memory in bytes.
fn rss() -> Result<u64, String> {
    crate::sys::rss_bytes(std::process::id())
}

fn run_idle(config: &ScenarioConfig) -> Result<Measurement, String> {
    let wanted = config.conns;
    let ports = wanted.div_ceil(IDLE_PER_PORT).max(1);
    let tcp = TcpConfig {
        max_connections: wanted + ports + 1024,
        // Idle connections hold no buffer chunk; keep the pool small.
        chunk_count: 1024,
        ..TcpConfig::default()
    };
    let idle_config = ScenarioConfig {
        cores: 1,
        poll: PollMode::Adaptive,
        ..config.clone()
    };
    let before = rss()?;
    let (server_rt, client_rt) = runtimes(&idle_config, 1, tcp)?;
    let server = Server::start(server_rt, move |ready| async move {
        let held = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        for p in 0..ports {
            let l = listen(PORT + p as u16, &ready).await?;
            let held = held.clone();
            mtcp::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    held.borrow_mut().push(s);
                }
            });
        }
        mtcp::runtime::shutdown_requested().await;
        let n = held.borrow().len();
        Ok(n)
    })?;
    let (tx, rx) = mpsc::channel();
    let client = thread::spawn(move || {
        client_rt.block_on(async move {
            let mut conns = Vec::with_capacity(wanted);
            let mut error = None;
            for i in 0..wanted {
                let port = PORT + (i / IDLE_PER_PORT) as u16;
                match TcpStream::connect((Ipv4Address::from(SERVER), port)).await {
                    Ok(s) => conns.push(s),
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
            let _ = tx.send((conns.len(), error, Handle::current()));
            // Hold them until the measurement is taken.
            mtcp::runtime::shutdown_requested().await;
            drop(conns);
        })
    });
    let (opened, error, client_handle) = rx
        .recv_timeout(Duration::from_secs(600))
        .map_err(|_| "the idle client did not finish opening".to_string())?;
    if let Some(e) = &error {
        eprintln!("mtcp: idle: opened {opened} connections, then: {e}");
    }
    thread::sleep(Duration::from_millis(300));
    let after = rss()?;
    client_handle.request_shutdown();
    let _ = client.join();
    let accepted: usize = server.stop()?.into_iter().sum();
    if opened == 0 || accepted == 0 {
        return Err("no idle connection could be established".into());
    }
    Ok(Measurement {
        system: "mtcp".into(),
        cores: 1,
        conns: opened.min(accepted),
        size: config.size,
        seconds: 0.0,
        rounds: 1,
        metrics: Metrics::Idle {
            requested: wanted,
            // Both stacks live in this process and hold the same state per
            // connection: the growth of the whole process, preallocated
            // pools included, split over both sides.
            bytes_per_conn: after.saturating_sub(before) as f64 / (2 * opened) as f64,
            kernel_bytes_per_conn: None,
        },
    })
}

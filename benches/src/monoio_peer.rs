//! The `monoio` system: a monoio client and a monoio server on the kernel's
//! loopback (127.0.0.1, ephemeral port), each thread driving its sockets
//! through io_uring (monoio's `IoUringDriver`, with its timer).
//!
//! Placement follows [`crate::tokio_peer`]: `cores` threads per side, one
//! runtime per thread, pinned (server on cores `0..cores`, client on
//! `cores..2*cores`), the server listeners sharing the port through
//! `SO_REUSEPORT`.
//!
//! # Why the loops are its own, and how they match [`crate::loops`]
//!
//! monoio's sockets do not implement `AsyncRead`/`AsyncWrite`: their I/O
//! traits (`AsyncReadRent`/`AsyncWriteRent`) take the buffer by value, hand
//! it to the kernel for the life of the operation and give it back with the
//! result. The generic loops borrow their buffers, so they cannot run here;
//! [`rent`] holds the same loops written for owned buffers. Each does the
//! same calls in the same order on buffers of the same sizes, and counts
//! the same way:
//!
//! - `echo` client: `write_all` of the `size`-byte request, `read_exact` of
//!   `size` bytes, one [`TxStats::record`] from before the write to after
//!   the read; the server reads up to `size` bytes and writes back what it
//!   read.
//! - `connect`: connect, request, response, a 1-byte read that must see the
//!   server's close, shutdown, drop; the server reads one request, writes
//!   it back and shuts down first (so TIME-WAIT lands on its side). Failed
//!   cycles count in `errors`, and [`crate::loops::MAX_CONSECUTIVE_ERRORS`] in a row end
//!   the loop.
//! - `bulk`: `write_all` of the same `size`-byte chunk until the window
//!   ends, then shutdown; the receiver reads into a `max(size, 64 KiB)`
//!   buffer and counts the bytes that arrive inside the window.
//!
//! The buffers are allocated once per loop and moved in and out of each
//! call (`std::mem::take` on a `Box<[u8]>` leaves an empty box and does not
//! allocate), so no call allocates, as in the borrowed loops.
//!
//! `idle` is not run: tokio's `idle` reads the resident memory of a server
//! in its own helper process, and there is no such helper for monoio yet;
//! the server and client in one process cannot be told apart. `udp` runs the owned-buffer datagram loops of [`rent_udp`] (one socket
//! per server core on its own port, as tokio's).

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use monoio::net::{ListenerOpts, TcpListener, TcpStream};

use crate::loops::{BulkStats, TxStats, Window, GRACE};
use crate::measurement::Measurement;
use crate::scenario::{Scenario, ScenarioConfig};
use crate::sys;
use crate::System;

/// The listen backlog of the servers.
const BACKLOG: i32 = 4096;

/// Submission queue entries per io_uring.
const RING_ENTRIES: u32 = 1024;

/// The monoio (io_uring) client/server pair on kernel loopback.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonoioSystem;

impl MonoioSystem {
    /// The monoio system.
    pub fn new() -> MonoioSystem {
        MonoioSystem
    }
}

impl System for MonoioSystem {
    fn name(&self) -> &'static str {
        "monoio"
    }

    fn available(&self) -> Result<(), String> {
        runtime().map(drop)?;
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map(drop)
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))
    }

    fn supports(&self, scenario: Scenario) -> Result<(), String> {
        match scenario {
            Scenario::Echo | Scenario::Connect | Scenario::Bulk | Scenario::Udp => Ok(()),
            Scenario::Idle => Err("idle needs the server in a helper process of its own to \
                 read its memory, as tokio's; none is written for monoio"
                .into()),
        }
    }

    fn run(&self, config: &ScenarioConfig) -> Result<Measurement, String> {
        self.supports(config.scenario)?;
        match config.scenario {
            Scenario::Echo => run_echo(config),
            Scenario::Connect => run_connect(config),
            Scenario::Bulk => run_bulk(config),
            Scenario::Udp => run_udp(config),
            Scenario::Idle => Err("not supported".into()),
        }
    }
}

/// A monoio runtime on io_uring, with timers.
type Rt = monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>;

fn runtime() -> Result<Rt, String> {
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(RING_ENTRIES)
        .enable_timer()
        .build()
        .map_err(|e| format!("cannot build a monoio io_uring runtime: {e}"))
}

fn note_once(note: Option<String>) {
    static NOTED: Once = Once::new();
    if let Some(note) = note {
        NOTED.call_once(|| eprintln!("monoio: {note}"));
    }
}

/// Splits `total` connections over `parts` threads; thread `i`'s share.
fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

/// The owned-buffer loops, equivalent to those of [`crate::loops`] (see the
/// module documentation).
pub mod rent {
    use std::io;
    use std::mem::take;
    use std::time::Instant;

    use monoio::buf::IoBuf;
    use monoio::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRent, AsyncWriteRentExt};

    use crate::loops::{request_bytes, BulkStats, TxStats, Window, MAX_CONSECUTIVE_ERRORS};

    /// A boxed buffer of `size` zero bytes.
    fn zeroed(size: usize) -> Box<[u8]> {
        vec![0u8; size].into_boxed_slice()
    }

    /// Writes all of `*buf`, taking it for the call and putting it back.
    async fn write_all<S: AsyncWriteRent>(stream: &mut S, buf: &mut Box<[u8]>) -> io::Result<()> {
        let (r, b) = stream.write_all(take(buf)).await;
        *buf = b;
        r.map(drop)
    }

    /// Fills all of `*buf`, taking it for the call and putting it back.
    async fn read_exact<S: AsyncReadRent>(stream: &mut S, buf: &mut Box<[u8]>) -> io::Result<()> {
        let (r, b) = stream.read_exact(take(buf)).await;
        *buf = b;
        r.map(drop)
    }

    /// Reads once into `*buf`; the bytes read.
    async fn read<S: AsyncReadRent>(stream: &mut S, buf: &mut Box<[u8]>) -> io::Result<usize> {
        let (r, b) = stream.read(take(buf)).await;
        *buf = b;
        r
    }

    /// `echo` client, as [`crate::loops::echo_client`].
    ///
    /// # Errors
    ///
    /// The stream's error, or `UnexpectedEof` when the server closes early.
    pub async fn echo_client<S: AsyncReadRent + AsyncWriteRent>(
        stream: &mut S,
        size: usize,
        window: &Window,
        stats: &mut TxStats,
    ) -> io::Result<()> {
        let mut request = request_bytes(size).into_boxed_slice();
        let mut response = zeroed(size);
        loop {
            let t0 = Instant::now();
            if t0 >= window.end {
                return Ok(());
            }
            write_all(stream, &mut request).await?;
            read_exact(stream, &mut response).await?;
            stats.record(window, t0, Instant::now());
        }
    }

    /// `echo` server, as [`crate::loops::echo_server`]: the bytes echoed.
    ///
    /// # Errors
    ///
    /// The stream's error.
    pub async fn echo_server<S: AsyncReadRent + AsyncWriteRent>(
        mut stream: S,
        buf_size: usize,
    ) -> io::Result<u64> {
        let mut buf = zeroed(buf_size.max(1));
        let mut echoed = 0u64;
        loop {
            let n = read(&mut stream, &mut buf).await?;
            if n == 0 {
                return Ok(echoed);
            }
            let (r, slice) = stream.write_all(take(&mut buf).slice(..n)).await;
            buf = slice.into_inner();
            r?;
            echoed += n as u64;
        }
    }

    /// The buffers of one `connect` client loop.
    struct CycleBuffers {
        request: Box<[u8]>,
        response: Box<[u8]>,
        probe: Box<[u8]>,
    }

    /// One connect/request/response/close cycle.
    async fn cycle<C, F, S>(connect: &mut C, bufs: &mut CycleBuffers) -> io::Result<()>
    where
        C: FnMut() -> F,
        F: std::future::Future<Output = io::Result<S>>,
        S: AsyncReadRent + AsyncWriteRent,
    {
        let mut stream = connect().await?;
        write_all(&mut stream, &mut bufs.request).await?;
        read_exact(&mut stream, &mut bufs.response).await?;
        if read(&mut stream, &mut bufs.probe).await? != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "server sent more than one response",
            ));
        }
        stream.shutdown().await
    }

    /// `connect` client, as [`crate::loops::connect_client`].
    ///
    /// # Errors
    ///
    /// The last error after [`MAX_CONSECUTIVE_ERRORS`] failed cycles in a row.
    pub async fn connect_client<C, F, S>(
        mut connect: C,
        size: usize,
        window: &Window,
        stats: &mut TxStats,
    ) -> io::Result<()>
    where
        C: FnMut() -> F,
        F: std::future::Future<Output = io::Result<S>>,
        S: AsyncReadRent + AsyncWriteRent,
    {
        let mut bufs = CycleBuffers {
            request: request_bytes(size).into_boxed_slice(),
            response: zeroed(size),
            probe: zeroed(1),
        };
        let mut consecutive = 0u64;
        loop {
            let t0 = Instant::now();
            if t0 >= window.end {
                return Ok(());
            }
            match cycle(&mut connect, &mut bufs).await {
                Ok(()) => {
                    consecutive = 0;
                    stats.record(window, t0, Instant::now());
                }
                Err(e) => {
                    stats.errors += 1;
                    consecutive += 1;
                    if consecutive >= MAX_CONSECUTIVE_ERRORS {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// `connect` server, as [`crate::loops::request_once_server`].
    ///
    /// # Errors
    ///
    /// The stream's error.
    pub async fn request_once_server<S: AsyncReadRent + AsyncWriteRent>(
        mut stream: S,
        size: usize,
    ) -> io::Result<()> {
        let mut buf = zeroed(size);
        read_exact(&mut stream, &mut buf).await?;
        write_all(&mut stream, &mut buf).await?;
        stream.shutdown().await
    }

    /// `bulk` sender, as [`crate::loops::bulk_sender`]: the bytes written.
    ///
    /// # Errors
    ///
    /// The stream's error.
    pub async fn bulk_sender<S: AsyncWriteRent>(
        stream: &mut S,
        size: usize,
        window: &Window,
    ) -> io::Result<u64> {
        let mut chunk = request_bytes(size).into_boxed_slice();
        let mut sent = 0u64;
        while Instant::now() < window.end {
            write_all(stream, &mut chunk).await?;
            sent += chunk.len() as u64;
        }
        stream.shutdown().await?;
        Ok(sent)
    }

    /// `bulk` receiver, as [`crate::loops::bulk_receiver`].
    ///
    /// # Errors
    ///
    /// The stream's error.
    pub async fn bulk_receiver<S: AsyncReadRent>(
        mut stream: S,
        buf_size: usize,
        window: &Window,
    ) -> io::Result<BulkStats> {
        let mut buf = zeroed(buf_size.max(1));
        let mut stats = BulkStats::default();
        loop {
            let n = read(&mut stream, &mut buf).await?;
            if n == 0 {
                return Ok(stats);
            }
            stats.total += n as u64;
            if window.contains(Instant::now()) {
                stats.in_window += n as u64;
            }
        }
    }
}

/// The owned-buffer versions of the `udp` loops of [`crate::datagram`].
///
/// The client keeps one receive in flight across loss timeouts instead of
/// dropping it (a dropped io_uring receive would take its buffer with it):
/// when no echo comes within [`crate::datagram::LOSS_TIMEOUT`] the request counts
/// as lost and the next one is sent while the same receive waits; an echo
/// of an earlier request is skipped by its sequence number, as in the
/// borrowed loop.
pub mod rent_udp {
    use std::io;
    use std::mem::take;
    use std::pin::pin;
    use std::time::Instant;

    use monoio::buf::IoBuf;
    use monoio::net::udp::UdpSocket;

    use crate::datagram::{LOSS_TIMEOUT, SERVER_BUFFER};
    use crate::loops::{request_bytes, TxStats, Window};

    /// `udp` client, as [`crate::datagram::udp_client`].
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub async fn udp_client(
        socket: &UdpSocket,
        size: usize,
        window: &Window,
        stats: &mut TxStats,
    ) -> io::Result<()> {
        let mut request = request_bytes(size).into_boxed_slice();
        // One byte more than asked for, so a longer datagram does not match.
        let mut response = vec![0u8; size + 1].into_boxed_slice();
        let tag = size.min(8);
        let mut seq = 0u64;
        let mut t0: Instant;
        let mut deadline = pin!(monoio::time::sleep(LOSS_TIMEOUT));
        // Sends the next request, or returns when the window is over.
        macro_rules! send_next {
            () => {{
                t0 = Instant::now();
                if t0 >= window.end {
                    return Ok(());
                }
                seq = seq.wrapping_add(1);
                request[..tag].copy_from_slice(&seq.to_le_bytes()[..tag]);
                let (r, b) = socket.send(take(&mut request)).await;
                request = b;
                r?;
                deadline.set(monoio::time::sleep(LOSS_TIMEOUT));
            }};
        }
        send_next!();
        loop {
            let mut recv = pin!(socket.recv(take(&mut response)));
            let (r, b) = loop {
                monoio::select! {
                    done = &mut recv => break done,
                    () = &mut deadline => {
                        if window.contains(t0) {
                            stats.lost += 1;
                        }
                        send_next!();
                    }
                }
            };
            response = b;
            let n = r?;
            if response[..n] == request[..] {
                stats.record(window, t0, Instant::now());
                send_next!();
            }
        }
    }

    /// `udp` server, as [`crate::datagram::udp_echo_server`].
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub async fn udp_echo_server(socket: &UdpSocket) -> io::Result<()> {
        let mut buf = vec![0u8; SERVER_BUFFER].into_boxed_slice();
        loop {
            let (r, b) = socket.recv_from(take(&mut buf)).await;
            buf = b;
            let (n, peer) = match r {
                Ok(r) => r,
                Err(e) if reported(&e) => continue,
                Err(e) => return Err(e),
            };
            let (r, slice) = socket.send_to(take(&mut buf).slice(..n), peer).await;
            buf = slice.into_inner();
            match r {
                Ok(_) => {}
                Err(e) if reported(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// An ICMP report about an earlier datagram, not a broken socket.
    fn reported(e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
        )
    }
}

/// A running set of server threads, one listener each on a shared port.
struct Servers {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Servers {
    /// Starts one server thread per core, one after the other (the first
    /// picks the port, the others bind it too), each handing every accepted
    /// stream to `handler`; returns when all of them listen.
    fn start<H, F>(cores: &[Option<CoreId>], handler: H) -> Result<Servers, String>
    where
        H: Fn(TcpStream) -> F + Send + Clone + 'static,
        F: Future<Output = ()> + 'static,
    {
        let mut servers = Servers {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::with_capacity(cores.len()),
        };
        for &core in cores {
            let (ready_tx, ready_rx) = mpsc::channel::<Result<SocketAddr, String>>();
            let stop = Arc::clone(&servers.stop);
            let handler = handler.clone();
            let addr = servers.addr;
            servers.threads.push(thread::spawn(move || {
                sys::pin(core);
                let mut rt = match runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let opts = ListenerOpts::new()
                        .reuse_port(true)
                        .reuse_addr(true)
                        .backlog(BACKLOG);
                    let bound = TcpListener::bind_with_config(addr, &opts)
                        .and_then(|l| l.local_addr().map(|a| (l, a)));
                    let listener = match bound {
                        Ok((l, a)) => {
                            let _ = ready_tx.send(Ok(a));
                            l
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("listen {addr}: {e}")));
                            return;
                        }
                    };
                    accept_until_stopped(listener, &stop, handler).await;
                });
            }));
            match ready_rx.recv() {
                Ok(Ok(a)) => servers.addr = a,
                Ok(Err(e)) => return Err(servers.stop_with(e)),
                Err(_) => return Err(servers.stop_with("a server thread died".into())),
            }
        }
        Ok(servers)
    }

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
    F: Future<Output = ()> + 'static,
{
    let stopped = async {
        while !stop.load(Ordering::Acquire) {
            monoio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let mut stopped = std::pin::pin!(stopped);
    loop {
        monoio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    monoio::spawn(handler(stream));
                }
                // Out of descriptors or memory: let connections close.
                Err(_) => monoio::time::sleep(Duration::from_millis(1)).await,
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
    F: Future<Output = Result<R, String>>,
    R: Send + 'static,
{
    let threads: Vec<_> = cores
        .iter()
        .enumerate()
        .map(|(i, &core)| {
            let body = body.clone();
            thread::spawn(move || -> Result<R, String> {
                sys::pin(core);
                let mut rt = runtime()?;
                let limit = window.end.saturating_duration_since(Instant::now()) + GRACE;
                rt.block_on(async {
                    monoio::time::timeout(limit, body(i)).await.map_err(|_| {
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
    let stream = TcpStream::connect_addr(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Spawns `count` client tasks on this thread's runtime and merges their
/// statistics.
async fn spawn_and_merge<T, F>(count: usize, task: T) -> Result<TxStats, String>
where
    T: Fn() -> F,
    F: Future<Output = Result<TxStats, String>> + 'static,
{
    let handles: Vec<_> = (0..count).map(|_| monoio::spawn(task())).collect();
    let mut total = TxStats::new();
    for handle in handles {
        total.merge(&handle.await?);
    }
    Ok(total)
}

fn run_echo(config: &ScenarioConfig) -> Result<Measurement, String> {
    let (server_cores, client_cores, note) = sys::placement(config.cores);
    note_once(note);
    let size = config.size;
    let servers = Servers::start(&server_cores, move |stream| async move {
        let _ = rent::echo_server(stream, size).await;
    })?;
    let addr = servers.addr;
    let window = Window::after_warmup(config);
    let threads = client_cores.len();
    let conns = config.conns;
    let result = run_clients(&client_cores, window, move |i| {
        spawn_and_merge(share(conns, threads, i), move || async move {
            let mut stats = TxStats::new();
            let mut stream = connect(addr).await.map_err(|e| format!("connect: {e}"))?;
            rent::echo_client(&mut stream, size, &window, &mut stats)
                .await
                .map_err(|e| format!("echo: {e}"))?;
            Ok(stats)
        })
    });
    servers.stop();
    let mut total = TxStats::new();
    for stats in result? {
        total.merge(&stats);
    }
    Ok(total.echo_measurement("monoio", config, &window))
}

fn run_connect(config: &ScenarioConfig) -> Result<Measurement, String> {
    let (server_cores, client_cores, note) = sys::placement(config.cores);
    note_once(note);
    let size = config.size;
    let servers = Servers::start(&server_cores, move |stream| async move {
        let _ = rent::request_once_server(stream, size).await;
    })?;
    let addr = servers.addr;
    let started = Instant::now();
    let window = Window::after_warmup(config);
    let threads = client_cores.len();
    let loops_total = config.conns;
    let result = run_clients(&client_cores, window, move |i| {
        spawn_and_merge(share(loops_total, threads, i), move || async move {
            let mut stats = TxStats::new();
            rent::connect_client(|| connect(addr), size, &window, &mut stats)
                .await
                .map_err(|e| format!("connect loop: {e}"))?;
            Ok(stats)
        })
    });
    servers.stop();
    let mut total = TxStats::new();
    for stats in result? {
        total.merge(&stats);
    }
    let on_port = sys::time_wait_on_port(addr.port());
    let ports = sys::ephemeral_ports().unwrap_or(28_232);
    let time_wait =
        crate::tokio_peer::time_wait_honoured(on_port, total.total, started.elapsed(), ports);
    Ok(total.connect_measurement("monoio", config, &window, time_wait))
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
            let _ = done.send(rent::bulk_receiver(stream, size.max(64 * 1024), &window).await);
        }
    })?;
    let addr = servers.addr;
    let sent = run_clients(&client_cores, window, move |_| async move {
        let mut stream = connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        rent::bulk_sender(&mut stream, size, &window)
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
    let mut m = stats.measurement("monoio", config, &window);
    m.cores = 1;
    Ok(m)
}

fn run_udp(config: &ScenarioConfig) -> Result<Measurement, String> {
    let (server_cores, client_cores, note) = sys::placement(config.cores);
    note_once(note);
    // One socket and thread per server core, each on its own port, as
    // tokio's; the client sockets go to them round robin.
    let stop = Arc::new(AtomicBool::new(false));
    let mut addrs = Vec::with_capacity(server_cores.len());
    let mut servers = Vec::with_capacity(server_cores.len());
    let mut failed = None;
    for &core in &server_cores {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<SocketAddr, String>>();
        let stop = Arc::clone(&stop);
        servers.push(thread::spawn(move || -> Result<(), String> {
            sys::pin(core);
            let mut rt = runtime()?;
            rt.block_on(async move {
                let bound = monoio::net::udp::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                    .and_then(|s| s.local_addr().map(|a| (s, a)));
                let socket = match bound {
                    Ok((s, a)) => {
                        let _ = ready_tx.send(Ok(a));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("udp bind 127.0.0.1: {e}")));
                        return Ok(());
                    }
                };
                let stopped = async {
                    while !stop.load(Ordering::Acquire) {
                        monoio::time::sleep(Duration::from_millis(10)).await;
                    }
                };
                monoio::select! {
                    r = rent_udp::udp_echo_server(&socket) => r.map_err(|e| format!("udp server: {e}")),
                    () = stopped => Ok(()),
                }
            })
        }));
        match ready_rx.recv() {
            Ok(Ok(a)) => addrs.push(a),
            Ok(Err(e)) => failed = Some(e),
            Err(_) => failed = Some("a udp server thread died".into()),
        }
        if failed.is_some() {
            break;
        }
    }
    let stop_servers = |servers: Vec<thread::JoinHandle<Result<(), String>>>| {
        stop.store(true, Ordering::Release);
        let mut result = Ok(());
        for t in servers {
            let r = t
                .join()
                .unwrap_or_else(|_| Err("a udp server thread panicked".into()));
            if result.is_ok() {
                result = r;
            }
        }
        result
    };
    if let Some(e) = failed {
        let _ = stop_servers(servers);
        return Err(e);
    }
    let window = Window::after_warmup(config);
    let threads = client_cores.len();
    let (conns, size) = (config.conns, config.size);
    let result = run_clients(&client_cores, window, move |i| {
        let addrs = addrs.clone();
        async move {
            // Socket k of all of them goes to server k % servers.
            let first: usize = (0..i).map(|j| share(conns, threads, j)).sum();
            let handles: Vec<_> = (first..first + share(conns, threads, i))
                .map(|k| {
                    let addr = addrs[k % addrs.len()];
                    monoio::spawn(async move {
                        let mut stats = TxStats::new();
                        let socket = monoio::net::udp::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                            .map_err(|e| format!("udp bind: {e}"))?;
                        socket
                            .connect(addr)
                            .await
                            .map_err(|e| format!("udp connect: {e}"))?;
                        rent_udp::udp_client(&socket, size, &window, &mut stats)
                            .await
                            .map_err(|e| format!("udp: {e}"))?;
                        Ok::<TxStats, String>(stats)
                    })
                })
                .collect();
            let mut total = TxStats::new();
            for handle in handles {
                total.merge(&handle.await?);
            }
            Ok(total)
        }
    });
    stop_servers(servers)?;
    let mut total = TxStats::new();
    for stats in result? {
        total.merge(&stats);
    }
    Ok(total.udp_measurement("monoio", config, &window))
}

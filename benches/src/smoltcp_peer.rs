//! The `smoltcp` system: two smoltcp `Interface`s with TCP sockets, joined
//! by the same in-memory NIC pair as mtcp's (one queue per port, rings of
//! 4096 frames), each on its own pinned thread with its own poll loop.
//!
//! smoltcp is a library of sockets, not a runtime: the application polls
//! the interface and then looks at its sockets. `Nic` is smoltcp's
//! `phy::Device` over one [`MemoryQueue`]: frames come in by bursts into a
//! queue of [`Frame`]s taken from a preallocated [`FramePool`], and go out
//! by bursts after each poll; a frame is never allocated in steady state.
//! Each side's loop is: poll the interface, flush the transmitted frames,
//! step every connection's state machine over its socket, and, with
//! [`PollMode::Adaptive`], park on the ring when the turn did nothing.
//!
//! The state machines do what the loops of [`crate::loops`] do, with the
//! same sizes and the same counting:
//!
//! - `echo`: each client connection writes the `size`-byte request,
//!   reads `size` bytes back and records one transaction from before the
//!   first byte is queued to after the last byte is read; the server reads
//!   up to `size` bytes and writes back what it read.
//! - `bulk`: the client queues the same `size`-byte chunk again and again,
//!   counting a chunk once all of it is queued, until the window ends, then
//!   closes; the server reads into a `max(size, 64 KiB)` buffer and counts
//!   the bytes that arrive inside the window.
//!
//! Sockets have 256 KiB send and receive buffers, as mtcp's default, and
//! Nagle off (the other systems set `TCP_NODELAY`).
//!
//! - `connect`: each client loop connects, writes the request, reads the
//!   response, waits for the server's FIN (more data is a failed cycle)
//!   and closes, one transaction from before the connect to the close; the
//!   server reads one request, writes it back and closes first. smoltcp
//!   accepts a connection only on a socket already listening, so the
//!   server keeps `2 × loops + 4` sockets and puts each back to listening
//!   once it is closed **or in TIME-WAIT**: a smoltcp socket holds its
//!   TIME-WAIT for 10 s, and keeping tens of thousands of sockets (each
//!   with its buffers, each walked by every poll) is not practical, so
//!   `connect` reports `"time_wait":false`. Failed cycles count in
//!   `errors`, [`crate::loops::MAX_CONSECUTIVE_ERRORS`] in a row end the run.
//!
//! Not run: `idle` (the memory per connection is the buffers the application
//! gives each socket, and every poll walks all sockets, so 100 000 of them
//! measure the caller's choices rather than the stack) and `udp` (this
//! peer builds TCP sockets only; smoltcp's UDP sockets are not wired in).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use mtcp_stack::nic::memory::{MemoryNic, MemoryNicConfig, MemoryQueue};
use mtcp_stack::nic::{Frame, FramePool, NicQueue};
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use crate::loops::{request_bytes, BulkStats, TxStats, Window, GRACE};
use crate::measurement::Measurement;
use crate::scenario::{PollMode, Scenario, ScenarioConfig};
use crate::sys;
use crate::System;

/// The server's port.
const PORT: u16 = 8080;
/// The server's and the client's addresses.
const SERVER: [u8; 4] = [10, 0, 0, 1];
const CLIENT: [u8; 4] = [10, 0, 0, 2];
/// The client's first local port.
const FIRST_LOCAL_PORT: u16 = 49_152;
/// Slots per ring of the in-memory NIC (as mtcp's system).
const RING_SIZE: usize = 4096;
/// Frames per side's pool: a ring's worth in flight plus spares.
const POOL_FRAMES: usize = 2 * RING_SIZE;
/// Frames taken per receive burst.
const BURST: usize = 64;
/// Socket buffers (mtcp's default send and receive buffers).
const SOCKET_BUFFER: usize = 256 * 1024;
/// The longest a side parks with [`PollMode::Adaptive`].
const MAX_PARK: Duration = Duration::from_millis(1);

/// The smoltcp client/server pair over the in-memory NIC.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmoltcpSystem;

impl SmoltcpSystem {
    /// The smoltcp system.
    pub fn new() -> SmoltcpSystem {
        SmoltcpSystem
    }
}

impl System for SmoltcpSystem {
    fn name(&self) -> &'static str {
        "smoltcp"
    }

    fn available(&self) -> Result<(), String> {
        MemoryNic::pair_with(&MemoryNicConfig::default())
            .map(drop)
            .map_err(|e| format!("cannot make an in-memory NIC: {e}"))
    }

    fn supports(&self, scenario: Scenario) -> Result<(), String> {
        match scenario {
            Scenario::Echo | Scenario::Bulk | Scenario::Connect => Ok(()),
            Scenario::Idle => Err("per-connection memory is the socket buffers the caller \
                 allocates, and every poll walks all sockets; not measured"
                .into()),
            Scenario::Udp => Err("this peer has TCP sockets only: smoltcp's UDP sockets \
                 are not wired in (not written)"
                .into()),
        }
    }

    fn run(&self, config: &ScenarioConfig) -> Result<Measurement, String> {
        self.supports(config.scenario)?;
        if config.cores != 1 {
            return Err(format!(
                "runs on one core per side (smoltcp has no multi-core mode), not {}",
                config.cores
            ));
        }
        match config.scenario {
            Scenario::Echo => run_echo(config),
            Scenario::Bulk => run_bulk(config),
            Scenario::Connect => run_connect(config),
            _ => Err("not supported".into()),
        }
    }
}

/// smoltcp's `phy::Device` over one queue of the in-memory NIC.
struct Nic {
    queue: MemoryQueue,
    pool: FramePool,
    /// Received frames not yet handed to the interface, in arrival order.
    rx: VecDeque<Frame>,
    /// The burst being received (preallocated, always empty between calls).
    burst: Vec<Frame>,
    /// Frames the interface has read, to go back to the pool.
    done: Vec<Frame>,
    /// Frames the interface has written, for the next [`Nic::flush`].
    tx: Vec<Frame>,
}

impl Nic {
    fn new(queue: MemoryQueue) -> Nic {
        Nic {
            queue,
            pool: FramePool::new(POOL_FRAMES),
            rx: VecDeque::with_capacity(POOL_FRAMES),
            burst: Vec::with_capacity(BURST),
            done: Vec::with_capacity(POOL_FRAMES),
            tx: Vec::with_capacity(POOL_FRAMES),
        }
    }

    /// Sends what the interface wrote.
    fn flush(&mut self) {
        if !self.tx.is_empty() {
            self.queue.tx_burst(&mut self.tx, &mut self.pool);
        }
    }
}

/// A received frame; read once, then back to the pool (through `done`).
struct RxToken<'a> {
    frame: Frame,
    done: &'a mut Vec<Frame>,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let r = f(self.frame.as_slice());
        self.done.push(self.frame);
        r
    }
}

/// Room for one frame to transmit, taken from the pool.
struct TxToken<'a> {
    pool: &'a mut FramePool,
    tx: &'a mut Vec<Frame>,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // The pool holds twice a ring; it only runs dry if frames pile up
        // unsent, and then a fresh frame keeps the stack going.
        let mut frame = self.pool.alloc().unwrap_or_default();
        frame.set_len(len);
        let r = f(frame.as_mut_slice());
        self.tx.push(frame);
        r
    }
}

impl phy::Device for Nic {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(
        &mut self,
        _timestamp: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        for frame in self.done.drain(..) {
            self.pool.free(frame);
        }
        if self.rx.is_empty() {
            self.queue.rx_burst(&mut self.pool, &mut self.burst, BURST);
            self.rx.extend(self.burst.drain(..));
        }
        let frame = self.rx.pop_front()?;
        Some((
            RxToken {
                frame,
                done: &mut self.done,
            },
            TxToken {
                pool: &mut self.pool,
                tx: &mut self.tx,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        Some(TxToken {
            pool: &mut self.pool,
            tx: &mut self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        // The IP MTU of the in-memory NIC plus the Ethernet header.
        caps.max_transmission_unit = self.queue.info().mtu + 14;
        caps
    }
}

/// One side: an interface, its device and its sockets, polled by one thread.
struct Side {
    nic: Nic,
    iface: Interface,
    sockets: SocketSet<'static>,
    origin: Instant,
    poll: PollMode,
}

impl Side {
    fn new(queue: MemoryQueue, mac: [u8; 6], addr: [u8; 4], poll: PollMode) -> Side {
        let mut nic = Nic::new(queue);
        let origin = Instant::now();
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        config.random_seed =
            u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0]);
        let mut iface = Interface::new(config, &mut nic, smoltcp::time::Instant::ZERO);
        iface.update_ip_addrs(|addrs| {
            let [a, b, c, d] = addr;
            // A fresh interface has room for its first address.
            let _ = addrs.push(IpCidr::new(IpAddress::v4(a, b, c, d), 24));
        });
        Side {
            nic,
            iface,
            sockets: SocketSet::new(Vec::new()),
            origin,
            poll,
        }
    }

    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.origin.elapsed().as_micros() as i64)
    }

    /// A new TCP socket with the benchmark's buffers and Nagle off.
    fn add_socket(&mut self) -> SocketHandle {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; SOCKET_BUFFER]),
            tcp::SocketBuffer::new(vec![0u8; SOCKET_BUFFER]),
        );
        s.set_nagle_enabled(false);
        self.sockets.add(s)
    }

    fn socket(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    /// Polls the interface and sends what it wrote; whether a socket may
    /// have changed.
    fn poll(&mut self) -> bool {
        let now = self.now();
        let changed = self.iface.poll(now, &mut self.nic, &mut self.sockets);
        self.nic.flush();
        changed == PollResult::SocketStateChanged
    }

    /// After a turn that did nothing: parks until a frame may be pending
    /// or smoltcp's next timer, at most [`MAX_PARK`] (adaptive mode only).
    fn idle(&mut self) {
        if self.poll == PollMode::Adaptive {
            let now = self.now();
            let delay = self
                .iface
                .poll_delay(now, &self.sockets)
                .map_or(MAX_PARK, |d| {
                    Duration::from_micros(d.total_micros()).min(MAX_PARK)
                });
            self.nic.queue.wait_rx(delay);
        }
    }
}

/// The two sides over a fresh in-memory NIC pair.
fn sides(poll: PollMode) -> Result<(Side, Side), String> {
    let (a, b) = MemoryNic::pair_with(&MemoryNicConfig {
        queues: 1,
        ring_size: RING_SIZE,
        ..MemoryNicConfig::default()
    })
    .map_err(|e| format!("in-memory NIC: {e}"))?;
    let (mac_a, mac_b) = (a.mac().0, b.mac().0);
    let qa = a.split().pop().ok_or("no queue on port A")?;
    let qb = b.split().pop().ok_or("no queue on port B")?;
    Ok((
        Side::new(qa, mac_a, SERVER, poll),
        Side::new(qb, mac_b, CLIENT, poll),
    ))
}

/// Runs `server` and `client` on their own pinned threads: the server
/// until the client is done, the client to its end.
fn run_pair<S, C, T>(config: &ScenarioConfig, server: S, client: C) -> Result<T, String>
where
    S: FnOnce(Side, &AtomicBool) -> Result<(), String> + Send + 'static,
    C: FnOnce(Side) -> Result<T, String> + Send + 'static,
    T: Send + 'static,
{
    let (server_cores, client_cores, note) = sys::placement(1);
    if let Some(note) = note {
        eprintln!("smoltcp: {note}");
    }
    let (server_side, client_side) = sides(config.poll)?;
    let stop = Arc::new(AtomicBool::new(false));
    let server_thread = {
        let stop = Arc::clone(&stop);
        let core: Option<CoreId> = server_cores[0];
        thread::spawn(move || {
            sys::pin(core);
            server(server_side, &stop)
        })
    };
    let core = client_cores[0];
    let client_thread = thread::spawn(move || {
        sys::pin(core);
        client(client_side)
    });
    let result = client_thread
        .join()
        .map_err(|_| "the smoltcp client panicked".to_string());
    stop.store(true, Ordering::Release);
    let served = server_thread
        .join()
        .map_err(|_| "the smoltcp server panicked".to_string());
    let result = result??;
    served??;
    Ok(result)
}

/// Whether the socket has reached a state with no more data to come.
fn finished(s: &tcp::Socket<'_>) -> bool {
    matches!(
        s.state(),
        tcp::State::Closed | tcp::State::TimeWait | tcp::State::FinWait2 | tcp::State::Closing
    )
}

/// The server side of `echo`: one listening socket per connection.
struct EchoConn {
    handle: SocketHandle,
    /// Bytes read and not yet all written back: `buf[pos..len]`.
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
}

fn echo_server(mut side: Side, conns: usize, size: usize, stop: &AtomicBool) -> Result<(), String> {
    let mut conns: Vec<EchoConn> = (0..conns)
        .map(|_| {
            let handle = side.add_socket();
            EchoConn {
                handle,
                buf: vec![0u8; size.max(1)].into_boxed_slice(),
                pos: 0,
                len: 0,
            }
        })
        .collect();
    for c in &conns {
        side.socket(c.handle)
            .listen(PORT)
            .map_err(|e| format!("listen: {e}"))?;
    }
    while !stop.load(Ordering::Acquire) {
        let mut busy = side.poll();
        for c in &mut conns {
            let s = side.sockets.get_mut::<tcp::Socket>(c.handle);
            loop {
                if c.pos < c.len {
                    let n = s.send_slice(&c.buf[c.pos..c.len]).unwrap_or(0);
                    c.pos += n;
                    busy |= n > 0;
                    if c.pos < c.len {
                        break;
                    }
                }
                let n = s.recv_slice(&mut c.buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                busy = true;
                (c.pos, c.len) = (0, n);
            }
            // The client closed: close our side too.
            if s.state() == tcp::State::CloseWait && c.pos == c.len {
                s.close();
            }
        }
        if !busy {
            side.idle();
        }
    }
    Ok(())
}

/// Where a client connection is in its transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the handshake.
    Connecting,
    /// `sent` bytes of the request queued.
    Writing { sent: usize },
    /// `got` bytes of the response read.
    Reading { got: usize },
    /// Closed after the window.
    Done,
}

struct EchoClient {
    handle: SocketHandle,
    phase: Phase,
    t0: Instant,
}

fn echo_client(
    mut side: Side,
    conns: usize,
    size: usize,
    window: Window,
) -> Result<TxStats, String> {
    let request = request_bytes(size);
    let mut response = vec![0u8; size];
    let mut stats = TxStats::new();
    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        let handle = side.add_socket();
        let local = FIRST_LOCAL_PORT + u16::try_from(i).map_err(|_| "too many connections")?;
        let [a, b, c, d] = SERVER;
        let cx = side.iface.context();
        side.sockets
            .get_mut::<tcp::Socket>(handle)
            .connect(cx, (IpAddress::v4(a, b, c, d), PORT), local)
            .map_err(|e| format!("connect: {e}"))?;
        clients.push(EchoClient {
            handle,
            phase: Phase::Connecting,
            t0: Instant::now(),
        });
    }
    let deadline = window.end + GRACE;
    let mut open = conns;
    while open > 0 {
        let mut busy = side.poll();
        for c in &mut clients {
            let s = side.sockets.get_mut::<tcp::Socket>(c.handle);
            loop {
                match c.phase {
                    Phase::Connecting => {
                        if !s.may_send() {
                            if !s.is_active() {
                                return Err("echo: connection refused or reset".into());
                            }
                            break;
                        }
                        c.phase = Phase::Writing { sent: 0 };
                        c.t0 = Instant::now();
                        if c.t0 >= window.end {
                            s.close();
                            c.phase = Phase::Done;
                            open -= 1;
                        }
                    }
                    Phase::Writing { sent } => {
                        let n = s.send_slice(&request[sent..]).unwrap_or(0);
                        busy |= n > 0;
                        c.phase = if sent + n == size {
                            Phase::Reading { got: 0 }
                        } else {
                            Phase::Writing { sent: sent + n }
                        };
                        if n == 0 && sent + n < size {
                            break;
                        }
                    }
                    Phase::Reading { got } => {
                        let n = s.recv_slice(&mut response[got..]).unwrap_or(0);
                        if n == 0 && got < size {
                            if !s.may_recv() {
                                return Err("echo: the server closed early".into());
                            }
                            break;
                        }
                        busy = true;
                        if got + n < size {
                            c.phase = Phase::Reading { got: got + n };
                            continue;
                        }
                        let t1 = Instant::now();
                        stats.record(&window, c.t0, t1);
                        c.t0 = t1;
                        c.phase = Phase::Writing { sent: 0 };
                        if t1 >= window.end {
                            s.close();
                            c.phase = Phase::Done;
                            open -= 1;
                        }
                    }
                    Phase::Done => break,
                }
                if c.phase == Phase::Done {
                    break;
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{open} connections still running {GRACE:?} after the run"
            ));
        }
        if !busy {
            side.idle();
        }
    }
    // Let the FINs go out.
    let flush_until = Instant::now() + Duration::from_millis(100);
    while Instant::now() < flush_until
        && clients
            .iter()
            .any(|c| !finished(side.sockets.get::<tcp::Socket>(c.handle)))
    {
        if !side.poll() {
            side.idle();
        }
    }
    Ok(stats)
}

fn run_echo(config: &ScenarioConfig) -> Result<Measurement, String> {
    let (conns, size) = (config.conns, config.size);
    let window = Window::after_warmup(config);
    let stats = run_pair(
        config,
        move |side, stop| echo_server(side, conns, size, stop),
        move |side| echo_client(side, conns, size, window),
    )?;
    Ok(stats.echo_measurement("smoltcp", config, &window))
}

fn bulk_receiver(
    mut side: Side,
    buf_size: usize,
    window: Window,
    stop: &AtomicBool,
    done: &mpsc::Sender<BulkStats>,
) -> Result<(), String> {
    let handle = side.add_socket();
    side.socket(handle)
        .listen(PORT)
        .map_err(|e| format!("listen: {e}"))?;
    let mut buf = vec![0u8; buf_size.max(1)];
    let mut stats = BulkStats::default();
    let mut reported = false;
    // The sender is done once our side has acknowledged its FIN, which may
    // be before this loop has read the last bytes: after the stop, keep
    // going until the stream is read to its end, or for a second.
    let mut stopped_at = None;
    loop {
        if stop.load(Ordering::Acquire) {
            let at = *stopped_at.get_or_insert_with(Instant::now);
            if reported || at.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        let mut busy = side.poll();
        let s = side.socket(handle);
        loop {
            let n = s.recv_slice(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            busy = true;
            stats.total += n as u64;
            if window.contains(Instant::now()) {
                stats.in_window += n as u64;
            }
        }
        if !reported && s.state() == tcp::State::CloseWait && !s.can_recv() {
            s.close();
            let _ = done.send(stats);
            reported = true;
        }
        if !busy {
            side.idle();
        }
    }
    Ok(())
}

fn bulk_sender(mut side: Side, size: usize, window: Window) -> Result<u64, String> {
    let chunk = request_bytes(size);
    let handle = side.add_socket();
    let [a, b, c, d] = SERVER;
    let cx = side.iface.context();
    side.sockets
        .get_mut::<tcp::Socket>(handle)
        .connect(cx, (IpAddress::v4(a, b, c, d), PORT), FIRST_LOCAL_PORT)
        .map_err(|e| format!("connect: {e}"))?;
    let deadline = window.end + GRACE;
    let (mut sent, mut pos, mut closed) = (0u64, 0usize, false);
    loop {
        let mut busy = side.poll();
        let s = side.socket(handle);
        if !closed {
            if !s.is_active() {
                return Err("bulk: connection refused or reset".into());
            }
            while s.may_send() {
                let n = s.send_slice(&chunk[pos..]).unwrap_or(0);
                pos += n;
                busy |= n > 0;
                if pos < chunk.len() {
                    break;
                }
                sent += chunk.len() as u64;
                pos = 0;
                if Instant::now() >= window.end {
                    s.close();
                    closed = true;
                    break;
                }
            }
        } else if finished(s) {
            // Our FIN is acknowledged, so is every byte before it.
            return Ok(sent);
        }
        if Instant::now() > deadline {
            return Err(format!("the sender still running {GRACE:?} after the run"));
        }
        if !busy {
            side.idle();
        }
    }
}

fn run_bulk(config: &ScenarioConfig) -> Result<Measurement, String> {
    let size = config.size;
    let window = Window::after_warmup(config);
    let (done_tx, done_rx) = mpsc::channel();
    let sent = run_pair(
        config,
        move |side, stop| bulk_receiver(side, size.max(64 * 1024), window, stop, &done_tx),
        move |side| bulk_sender(side, size, window),
    )?;
    // The server thread has ended: what it reported is in the channel.
    let stats = done_rx
        .try_recv()
        .map_err(|_| "the receiver did not finish".to_string())?;
    if stats.total != sent {
        return Err(format!("sent {sent} bytes but received {}", stats.total));
    }
    Ok(stats.measurement("smoltcp", config, &window))
}

/// A server socket of `connect`: listens, reads one request, writes it
/// back and closes first.
struct OnceConn {
    handle: SocketHandle,
    buf: Box<[u8]>,
    /// Request bytes read.
    got: usize,
    /// Response bytes queued.
    sent: usize,
}

fn request_once_server(
    mut side: Side,
    sockets: usize,
    size: usize,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut conns: Vec<OnceConn> = (0..sockets)
        .map(|_| OnceConn {
            handle: side.add_socket(),
            buf: vec![0u8; size].into_boxed_slice(),
            got: 0,
            sent: 0,
        })
        .collect();
    while !stop.load(Ordering::Acquire) {
        let mut busy = side.poll();
        for c in &mut conns {
            let s = side.sockets.get_mut::<tcp::Socket>(c.handle);
            // Closed, or in TIME-WAIT after our close: listen again (this
            // ends TIME-WAIT early, see the module documentation).
            if !s.is_open() {
                s.listen(PORT).map_err(|e| format!("listen: {e}"))?;
                (c.got, c.sent) = (0, 0);
                busy = true;
                continue;
            }
            if c.got < size {
                let n = s.recv_slice(&mut c.buf[c.got..]).unwrap_or(0);
                c.got += n;
                busy |= n > 0;
            }
            if c.got == size && c.sent < size && s.may_send() {
                let n = s.send_slice(&c.buf[c.sent..]).unwrap_or(0);
                c.sent += n;
                busy |= n > 0;
                if c.sent == size {
                    s.close();
                }
            }
            // A client that went away mid-request: wait for the socket to
            // close by itself, then listen again.
            if s.state() == tcp::State::CloseWait && c.got < size {
                s.close();
            }
        }
        if !busy {
            side.idle();
        }
    }
    Ok(())
}

/// Where a `connect` client loop is in its cycle.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cycle {
    /// Handshake in flight.
    Connecting,
    /// `sent` request bytes queued.
    Writing { sent: usize },
    /// `got` response bytes read.
    Reading { got: usize },
    /// Response read; waiting for the server's FIN.
    Draining,
}

/// One `connect` client loop: its sockets (one in use, the others finishing
/// their close) and its cycle.
struct ConnectLoop {
    sockets: [SocketHandle; 3],
    current: usize,
    cycle: Option<Cycle>,
    t0: Instant,
    consecutive: u64,
    done: bool,
}

/// The next local port of the client, cycling through `49152..=65535`.
fn next_port(port: &mut u16) -> u16 {
    let p = *port;
    *port = if p == u16::MAX {
        FIRST_LOCAL_PORT
    } else {
        p + 1
    };
    p
}

fn connect_client(
    mut side: Side,
    loops: usize,
    size: usize,
    window: Window,
) -> Result<TxStats, String> {
    let request = request_bytes(size);
    let mut response = vec![0u8; size];
    let mut stats = TxStats::new();
    let mut port = FIRST_LOCAL_PORT;
    let mut all: Vec<ConnectLoop> = (0..loops)
        .map(|_| ConnectLoop {
            sockets: [side.add_socket(), side.add_socket(), side.add_socket()],
            current: 0,
            cycle: None,
            t0: Instant::now(),
            consecutive: 0,
            done: false,
        })
        .collect();
    let [a, b, c, d] = SERVER;
    let server = (IpAddress::v4(a, b, c, d), PORT);
    let deadline = window.end + GRACE;
    let mut running = loops;
    while running > 0 {
        let mut busy = side.poll();
        for l in &mut all {
            if l.done {
                continue;
            }
            let Some(cycle) = l.cycle else {
                // Start a cycle on a socket that has finished closing.
                let now = Instant::now();
                if now >= window.end {
                    l.done = true;
                    running -= 1;
                    continue;
                }
                let Some(free) = (0..l.sockets.len()).find(|&i| {
                    side.sockets.get::<tcp::Socket>(l.sockets[i]).state() == tcp::State::Closed
                }) else {
                    continue;
                };
                l.current = free;
                l.t0 = now;
                let cx = side.iface.context();
                side.sockets
                    .get_mut::<tcp::Socket>(l.sockets[free])
                    .connect(cx, server, next_port(&mut port))
                    .map_err(|e| format!("connect: {e}"))?;
                l.cycle = Some(Cycle::Connecting);
                busy = true;
                continue;
            };
            let s = side.sockets.get_mut::<tcp::Socket>(l.sockets[l.current]);
            let mut next = cycle;
            let mut failed = false;
            match cycle {
                Cycle::Connecting => {
                    if s.may_send() {
                        next = Cycle::Writing { sent: 0 };
                    } else if !s.is_active() {
                        failed = true;
                    }
                }
                Cycle::Writing { sent } => {
                    let n = s.send_slice(&request[sent..]).unwrap_or(0);
                    next = if sent + n == size {
                        Cycle::Reading { got: 0 }
                    } else {
                        Cycle::Writing { sent: sent + n }
                    };
                    failed = n == 0 && !s.may_send();
                }
                Cycle::Reading { got } => {
                    let n = s.recv_slice(&mut response[got..]).unwrap_or(0);
                    next = if got + n == size {
                        Cycle::Draining
                    } else {
                        Cycle::Reading { got: got + n }
                    };
                    failed = n == 0 && !s.may_recv();
                }
                Cycle::Draining => {
                    if s.recv_slice(&mut response[..1]).unwrap_or(0) != 0 {
                        // More than one response: a failed cycle.
                        failed = true;
                    } else if !s.may_recv() {
                        // The server's FIN: close our side; the socket
                        // finishes LAST-ACK while the next cycle runs.
                        s.close();
                        l.cycle = None;
                        l.consecutive = 0;
                        stats.record(&window, l.t0, Instant::now());
                        busy = true;
                        continue;
                    }
                }
            }
            busy |= next != cycle;
            l.cycle = Some(next);
            if failed {
                s.abort();
                l.cycle = None;
                stats.errors += 1;
                l.consecutive += 1;
                if l.consecutive >= crate::loops::MAX_CONSECUTIVE_ERRORS {
                    return Err(format!(
                        "connect loop: {} failed cycles in a row",
                        l.consecutive
                    ));
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{running} client loops still running {GRACE:?} after the run"
            ));
        }
        if !busy {
            side.idle();
        }
    }
    Ok(stats)
}

fn run_connect(config: &ScenarioConfig) -> Result<Measurement, String> {
    let (loops, size) = (config.conns, config.size);
    // Each loop has at most one connection in its handshake or request and
    // one closing on the server: twice the loops, and some spare.
    let server_sockets = 2 * loops + 4;
    let window = Window::after_warmup(config);
    let stats = run_pair(
        config,
        move |side, stop| request_once_server(side, server_sockets, size, stop),
        move |side| connect_client(side, loops, size, window),
    )?;
    Ok(stats.connect_measurement("smoltcp", config, &window, false))
}

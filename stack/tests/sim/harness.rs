//! The simulator: two sides of one or more `Stack`s over the in-memory NIC,
//! faults and delay on every queue, applications driven by a seeded plan,
//! and the checks.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use mtcp_stack::nic::faults::{FaultConfig, FaultyQueue};
use mtcp_stack::nic::memory::{MemoryNic, MemoryNicConfig};
use mtcp_stack::nic::NicQueue;
use mtcp_stack::rand::Rng;
use mtcp_stack::stack::{Stack, StackConfig};
use mtcp_stack::tcp::KeepaliveConfig;
use mtcp_stack::tcp::SocketId;
use mtcp_stack::tcp::State;
use mtcp_stack::tcp::TcpError;
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

use crate::delay::{DelayQueue, DelayShared};
use crate::edge::EdgeCheck;

const IPS: [[u8; 4]; 2] = [[10, 0, 0, 1], [10, 0, 0, 2]];
const PORT: u16 = 80;
/// Virtual time one seed may take, start to last socket freed.
const VIRTUAL_LIMIT: Duration = Duration::from_secs(1800);
/// Loop iterations one seed may take.
const ITER_LIMIT: u64 = 3_000_000;
/// An endpoint whose peer aborted gives up (closes) after this long: a lost
/// RST leaves a half-closed peer waiting forever, as in any TCP.
const GIVE_UP_AFTER_PEER_ABORT: Duration = Duration::from_secs(60);

/// What the run did, for the verbose output and the summary line.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Connections planned.
    pub conns: usize,
    /// Bytes delivered, both directions.
    pub bytes: u64,
    /// Virtual time taken.
    pub virtual_ms: u64,
    /// Loop iterations.
    pub iters: u64,
    /// Connections that were reset as planned.
    pub resets: usize,
    /// Connections refused as planned.
    pub refused: usize,
    /// Most chunks one stack held at the end of a tick.
    pub max_chunks: usize,
    /// Data segments checked against the peer's largest right edge.
    pub edge_checks: u64,
}

/// Knobs of a run beyond the seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Force this many queues per port (else chosen by the seed: mostly 1).
    pub queues: Option<usize>,
    /// Print the plan and progress.
    pub verbose: bool,
    /// Keep only this connection of the plan (to reduce a failure).
    pub only: Option<usize>,
    /// Print every change of this connection's ends.
    pub trace: Option<usize>,
    /// Add connection edge cases: connections refused (no listener) and
    /// active opens aborted in SYN-SENT.
    pub edge_cases: bool,
}

/// How an endpoint's application ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Sends everything, shuts down, reads to EOF; then, when `wait`, waits
    /// for CLOSED/TIME-WAIT before `close`, else closes at once.
    Graceful { wait: bool },
    /// `abort` once `after_sent` bytes are queued (and connected).
    Abort { after_sent: usize },
    /// `close` once `after_recv` bytes were read, possibly with unread data
    /// (then it is an abort).
    CloseEarly { after_recv: usize },
}

#[derive(Debug)]
struct Endpoint {
    /// 0: the active opener, 1: the acceptor.
    role: usize,
    /// Side (0 or 1) and stack index.
    stack: usize,
    id: Option<SocketId>,
    key_tx: u64,
    key_rx: u64,
    send_total: usize,
    sent: usize,
    write_max: usize,
    shut: bool,
    got: usize,
    recv_total: usize,
    read_max: usize,
    read_pause: Duration,
    next_read: Instant,
    eof: bool,
    read_first: bool,
    ending: Ending,
    /// `close`/`abort` called: the application is finished with it.
    done: bool,
    error: Option<TcpError>,
    rng: Rng,
}

#[derive(Debug)]
struct Conn {
    start: Instant,
    /// Side and stack of the active opener.
    from: (usize, usize),
    /// Whether either end's plan aborts (or may abort).
    abortive: bool,
    /// Connects to a port nobody listens on: must end `ConnectionRefused`.
    refused: bool,
    /// The active opener aborts right after `connect`, in SYN-SENT.
    syn_abort: bool,
    /// When an end actually aborted or closed early.
    aborted_at: Option<Instant>,
    ends: [Endpoint; 2],
}

/// The random plan of one seed.
struct Plan {
    queues: usize,
    tick: Duration,
    faults: [FaultConfig; 2],
    delay: (Duration, Duration),
    send_buffer: usize,
    recv_buffer: usize,
    conns: Vec<Conn>,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the bytes at `offset..` of the stream named by `key`.
fn stream(key: u64, offset: usize, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let word = mix(key ^ (pos as u64 / 8).wrapping_mul(0xd6e8_feb8_6659_fd93)).to_le_bytes();
        let start = pos % 8;
        let n = (8 - start).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[start..start + n]);
        i += n;
        pos += n;
    }
}

fn size(rng: &mut Rng) -> usize {
    let r = rng.next_f64();
    (if r < 0.15 {
        0
    } else if r < 0.4 {
        rng.range(1, 4096)
    } else if r < 0.75 {
        rng.range(1, 64 * 1024)
    } else if r < 0.97 {
        rng.range(1, 300 * 1024)
    } else {
        rng.range(1, 2 * 1024 * 1024)
    }) as usize
}

/// Per-wrapper probability so that a frame crossing two wrappers (sender's
/// TX, receiver's RX) meets the fault with probability `p`.
fn per_wrapper(p: f64) -> f64 {
    1.0 - (1.0 - p).sqrt()
}

fn plan(seed: u64, opts: &Options) -> Plan {
    let mut rng = Rng::new(seed ^ 0x5eed_0f51_u64);
    let queues = opts.queues.unwrap_or(if rng.chance(0.1) { 2 } else { 1 });
    let tick = Duration::from_micros(rng.range(100, 1001));
    let lossy = !rng.chance(0.2);
    let (drop, dup, reorder, corrupt) = if lossy {
        (
            if rng.chance(0.3) {
                0.0
            } else {
                rng.next_f64() * 0.2
            },
            rng.next_f64() * 0.05,
            rng.next_f64() * 0.10,
            rng.next_f64() * 0.01,
        )
    } else {
        (0.0, 0.0, 0.0, 0.0)
    };
    let fc = |s: u64, corrupt: f64| FaultConfig {
        drop: per_wrapper(drop),
        dup: per_wrapper(dup),
        reorder: per_wrapper(reorder),
        corrupt,
        seed: mix(seed ^ s),
    };
    // Every frame crosses both sides' wrappers (the sender's TX, the
    // receiver's RX), but only side A's corrupts: a frame gets at most one
    // flipped bit, which the ones'-complement checksum always detects. Two
    // flips (one per wrapper) of the same bit column in opposite directions
    // cancel in the checksum, so a corrupted payload would be delivered, as
    // on a real link with such an error pattern: a blind spot of the
    // checksum, not a bug of the engine.
    let faults = [fc(0xa, corrupt), fc(0xb, 0.0)];
    let delay = if rng.chance(0.4) {
        (Duration::ZERO, Duration::ZERO)
    } else {
        let base = rng.range(0, 50_001);
        let jitter = rng.range(0, base / 2 + 2);
        (Duration::from_micros(base), Duration::from_micros(jitter))
    };
    let bufs = [16 * 1024, 64 * 1024, 128 * 1024, 256 * 1024];
    let send_buffer = bufs[rng.range(0, 4) as usize];
    let recv_buffer = bufs[rng.range(0, 4) as usize];
    let nconns = if rng.chance(0.3) {
        rng.range(1, 5)
    } else {
        rng.range(1, 41)
    } as usize;
    let mut conns = Vec::with_capacity(nconns);
    let mut budget: usize = 6 * 1024 * 1024;
    for c in 0..nconns {
        let from_side = rng.range(0, 2) as usize;
        let from_stack = from_side * queues + rng.range(0, queues as u64) as usize;
        let start = Instant::from_micros(1_000_000 + rng.range(0, 2_000_000));
        let mut sizes = [size(&mut rng), size(&mut rng)];
        for s in sizes.iter_mut() {
            // Over a very lossy path, RTOs backed off to a minute make big
            // transfers take hours of virtual time: keep those smaller.
            if drop > 0.1 {
                *s = (*s).min(256 * 1024);
            }
            *s = (*s).min(budget);
            budget -= *s;
        }
        let key = [
            mix(seed ^ mix(c as u64 * 2)),
            mix(seed ^ mix(c as u64 * 2 + 1)),
        ];
        // The acceptor may be a server that reads the whole request first.
        let read_first = rng.chance(0.2);
        let mut ends = [0, 1].map(|role| {
            let r = rng.next_f64();
            let ending = if r < 0.85 {
                Ending::Graceful {
                    wait: rng.chance(0.5),
                }
            } else if r < 0.93 {
                Ending::Abort {
                    after_sent: rng.range(0, sizes[role] as u64 + 1) as usize,
                }
            } else {
                Ending::CloseEarly {
                    after_recv: rng.range(0, sizes[1 - role] as u64 + 1) as usize,
                }
            };
            let pause = if rng.chance(0.15) {
                Duration::from_micros(rng.range(1_000, 50_000))
            } else {
                Duration::ZERO
            };
            Endpoint {
                role,
                stack: usize::MAX,
                id: None,
                key_tx: key[role],
                key_rx: key[1 - role],
                send_total: sizes[role],
                sent: 0,
                write_max: [64usize, 1460, 16 * 1024, 256 * 1024][rng.range(0, 4) as usize],
                shut: false,
                got: 0,
                recv_total: sizes[1 - role],
                read_max: [100usize, 1460, 8 * 1024, 128 * 1024][rng.range(0, 4) as usize],
                read_pause: pause,
                next_read: Instant::ZERO,
                eof: false,
                read_first: role == 1 && read_first,
                ending,
                done: false,
                error: None,
                rng: Rng::new(mix(seed ^ mix(1000 + c as u64 * 2 + role as u64))),
            }
        });
        ends[0].stack = from_stack;
        let abortive = ends
            .iter()
            .any(|e| !matches!(e.ending, Ending::Graceful { .. }));
        conns.push(Conn {
            start,
            from: (from_side, from_stack),
            abortive,
            refused: false,
            syn_abort: false,
            aborted_at: None,
            ends,
        });
    }
    if opts.edge_cases {
        let mut extra = Rng::new(mix(seed ^ 0xed6e));
        for c in conns.iter_mut() {
            let r = extra.next_f64();
            if r < 0.15 {
                c.refused = true;
                c.ends[0].send_total = 0;
                c.ends[0].recv_total = 0;
                c.ends[0].ending = Ending::Graceful { wait: false };
            } else if r < 0.3 {
                c.syn_abort = true;
                c.abortive = true;
            }
        }
    }
    Plan {
        queues,
        tick,
        faults,
        delay,
        send_buffer,
        recv_buffer,
        conns,
    }
}

fn stack_config(side: usize, seed: u64, p: &Plan) -> StackConfig {
    let mut c = StackConfig {
        addr: Ipv4Cidr {
            address: Ipv4Address::from(IPS[side]),
            prefix_len: 24,
        },
        ..StackConfig::default()
    };
    c.frames = 1024;
    c.tcp.max_connections = 256;
    c.tcp.chunk_count = 4096;
    c.tcp.send_buffer = p.send_buffer;
    c.tcp.recv_buffer = p.recv_buffer;
    c.tcp.msl = Duration::from_secs(5);
    c.tcp.syn_retries = 10;
    c.tcp.seed = mix(seed ^ (side as u64 + 77));
    c
}

const KEEPALIVE: KeepaliveConfig = KeepaliveConfig {
    idle: Duration::from_secs(2),
    interval: Duration::from_millis(500),
    count: 30,
};

struct Sim {
    seed: u64,
    now: Instant,
    stacks: Vec<Stack>,
    /// Side of each stack.
    sides: Vec<usize>,
    listeners: Vec<SocketId>,
    delays: Vec<Arc<DelayShared>>,
    conns: Vec<Conn>,
    /// (acceptor side, peer port) → connection.
    by_port: HashMap<(usize, u16), usize>,
    buf: Vec<u8>,
    expect: Vec<u8>,
    log: String,
    verbose: bool,
    trace: Option<usize>,
    summary: Summary,
    /// The right-edge invariant over every transmitted segment.
    edges: Arc<Mutex<EdgeCheck>>,
}

impl Sim {
    fn fail(&self, what: String) -> String {
        let mut s = format!("seed {}: {what}\n", self.seed);
        let _ = writeln!(s, "  at virtual {} ms", self.now.total_millis());
        for (i, c) in self.conns.iter().enumerate() {
            if c.ends.iter().all(|e| e.done) {
                continue;
            }
            let _ = write!(s, "  conn {i}:");
            for e in &c.ends {
                let st =
                    e.id.map(|id| format!("{:?}", self.stacks[e.stack].tcp().state(id)));
                let _ = write!(
                    s,
                    " [role {} {:?} sent {}/{} shut {} got {}/{} eof {} done {} err {:?} state {:?}]",
                    e.role,
                    e.ending,
                    e.sent,
                    e.send_total,
                    e.shut,
                    e.got,
                    e.recv_total,
                    e.eof,
                    e.done,
                    e.error,
                    st
                );
            }
            s.push('\n');
        }
        for (i, st) in self.stacks.iter().enumerate() {
            let _ = writeln!(
                s,
                "  stack {i}: sockets {} chunks {} frames {}/{} timed_out {} resets_in {} retx {} ring_full {} drops {}",
                st.tcp().sockets_in_use(),
                st.tcp().chunks_in_use(),
                st.frames_available(),
                st.frames_capacity(),
                st.tcp().stats().conns_timed_out,
                st.tcp().stats().resets_received,
                st.tcp().stats().retransmits,
                st.nic().counters().ring_full_drops,
                st.stats(),
            );
            let _ = writeln!(s, "    {:?}", st.tcp().stats());
            let _ = writeln!(s, "    {:?}", st.iface().stats());
        }
        s.push_str(&self.log);
        s
    }

    /// Fails the seed when a segment left beyond the peer's right edge.
    fn check_edges(&self) -> Result<(), String> {
        match &self.edges.lock().unwrap().violation {
            Some(v) => Err(self.fail(format!("window overrun: {v}"))),
            None => Ok(()),
        }
    }

    /// Opens due connections and accepts new ones. Returns whether
    /// anything happened.
    fn open(&mut self) -> Result<bool, String> {
        let mut progress = false;
        for c in 0..self.conns.len() {
            let conn = &mut self.conns[c];
            if conn.ends[0].id.is_some() || conn.ends[0].done || conn.start > self.now {
                continue;
            }
            let (side, stack) = conn.from;
            let port = if conn.refused { PORT + 1 } else { PORT };
            let remote = SocketAddrV4::new(Ipv4Address::from(IPS[1 - side]), port);
            let id = self.stacks[stack]
                .tcp_mut()
                .connect(self.now, remote, None)
                .map_err(|e| format!("connect of conn {c}: {e}"))?;
            if conn.abortive {
                let tcp = self.stacks[stack].tcp_mut();
                tcp.set_keepalive_timing(id, KEEPALIVE).unwrap();
                tcp.set_keepalive(id, true).unwrap();
            }
            let port = self.stacks[stack].tcp().local_addr(id).unwrap().port();
            conn.ends[0].id = Some(id);
            if self.trace == Some(c) {
                for (k, d) in self.delays.iter().enumerate() {
                    d.sniff_port.store(u64::from(port), Ordering::Relaxed);
                    d.label.store(k as u64, Ordering::Relaxed);
                }
            }
            // A refused connection is never accepted, and its local port
            // may be shared with a live connection to the real port.
            if !conn.refused {
                self.by_port.insert((1 - side, port), c);
            }
            progress = true;
        }
        for (i, &l) in self.listeners.iter().enumerate() {
            loop {
                let id = match self.stacks[i].tcp_mut().accept(l) {
                    Ok(id) => id,
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => return Err(format!("accept on stack {i}: {e}")),
                };
                progress = true;
                let side = self.sides[i];
                let peer = self.stacks[i].tcp().peer_addr(id).unwrap();
                let Some(&c) = self.by_port.get(&(side, peer.port())) else {
                    return Err(format!(
                        "stack {i} accepted an unknown connection from {peer}"
                    ));
                };
                let conn = &mut self.conns[c];
                if conn.ends[1].id.is_some() || conn.ends[1].done {
                    return Err(format!("conn {c} accepted twice"));
                }
                if conn.abortive {
                    let tcp = self.stacks[i].tcp_mut();
                    tcp.set_keepalive_timing(id, KEEPALIVE).unwrap();
                    tcp.set_keepalive(id, true).unwrap();
                }
                conn.ends[1].id = Some(id);
                conn.ends[1].stack = i;
            }
        }
        Ok(progress)
    }

    /// One application step for every endpoint. Returns (progress, the
    /// earliest time a paused reader wants to run).
    fn apps(&mut self) -> Result<(bool, Option<Instant>), String> {
        let mut progress = false;
        let mut wake: Option<Instant> = None;
        for c in 0..self.conns.len() {
            for role in 0..2 {
                let (p, w) = self.step(c, role)?;
                progress |= p;
                if let Some(w) = w {
                    wake = Some(wake.map_or(w, |x: Instant| x.min(w)));
                }
            }
        }
        Ok((progress, wake))
    }

    fn step(&mut self, c: usize, role: usize) -> Result<(bool, Option<Instant>), String> {
        let now = self.now;
        let conn = &mut self.conns[c];
        let abortive = conn.abortive;
        let refused = conn.refused;
        let syn_abort = conn.syn_abort;
        let allowed = |err: TcpError| {
            (abortive && err == TcpError::ConnectionReset)
                || (refused && err == TcpError::ConnectionRefused)
        };
        let peer_aborted = conn.aborted_at;
        let aborted_at = &mut conn.aborted_at;
        let e = &mut conn.ends[role];
        let Some(id) = e.id else {
            return Ok((false, None));
        };
        if e.done {
            return Ok((false, None));
        }
        let tcp = self.stacks[e.stack].tcp_mut();
        let state = tcp
            .state(id)
            .map_err(|err| format!("conn {c} role {role}: state: {err}"))?;
        if role == 0 && syn_abort {
            tcp.abort(id).map_err(|err| format!("abort: {err}"))?;
            e.done = true;
            *aborted_at = Some(now);
            return Ok((true, None));
        }
        if state == State::SynSent {
            return Ok((false, None));
        }
        let mut progress = false;
        let mut wake = None;
        // Abort midway.
        if let Ending::Abort { after_sent } = e.ending {
            if e.sent >= after_sent.min(e.send_total) && state != State::Closed {
                tcp.abort(id).map_err(|err| format!("abort: {err}"))?;
                e.done = true;
                *aborted_at = Some(now);
                if self.verbose {
                    let _ = writeln!(
                        self.log,
                        "{now}: conn {c} role {role} aborts after {} sent",
                        e.sent
                    );
                }
                return Ok((true, None));
            }
        }
        // Send.
        if (!e.read_first || e.eof) && e.error.is_none() {
            let mut budget = 256 * 1024;
            while e.sent < e.send_total && budget > 0 {
                let want = (e.send_total - e.sent)
                    .min(e.rng.range(1, e.write_max as u64 + 1) as usize)
                    .min(budget);
                stream(e.key_tx, e.sent, &mut self.buf[..want]);
                match tcp.send(id, &self.buf[..want]) {
                    Ok(n) => {
                        e.sent += n;
                        budget -= n.min(budget);
                        progress |= n > 0;
                        if n < want {
                            break;
                        }
                    }
                    Err(TcpError::WouldBlock) => break,
                    Err(err) => {
                        e.error = Some(err);
                        break;
                    }
                }
            }
            if e.sent == e.send_total && !e.shut && e.error.is_none() {
                if let Ending::Abort { .. } = e.ending {
                    // Aborts instead of closing (checked next step).
                } else {
                    tcp.shutdown_write(id)
                        .map_err(|err| format!("conn {c} role {role}: shutdown: {err}"))?;
                    e.shut = true;
                    progress = true;
                }
            }
        }
        // Receive.
        if !e.eof && e.error.is_none() {
            if now < e.next_read {
                wake = Some(e.next_read);
            } else {
                let mut rounds = 0;
                loop {
                    rounds += 1;
                    if rounds > 64 {
                        break;
                    }
                    let want = e.rng.range(1, e.read_max as u64 + 1) as usize;
                    match tcp.recv(id, &mut self.buf[..want]) {
                        Ok(0) => {
                            e.eof = true;
                            progress = true;
                            if !abortive && e.got != e.recv_total {
                                return Err(format!(
                                    "conn {c} role {role}: EOF after {} of {} bytes",
                                    e.got, e.recv_total
                                ));
                            }
                            break;
                        }
                        Ok(n) => {
                            progress = true;
                            if e.got + n > e.recv_total {
                                return Err(format!(
                                    "conn {c} role {role}: {} bytes received, only {} sent",
                                    e.got + n,
                                    e.recv_total
                                ));
                            }
                            stream(e.key_rx, e.got, &mut self.expect[..n]);
                            if self.buf[..n] != self.expect[..n] {
                                let k = (0..n).find(|&k| self.buf[k] != self.expect[k]).unwrap();
                                return Err(format!(
                                    "conn {c} role {role}: wrong byte at offset {} (got {:#04x}, want {:#04x})",
                                    e.got + k,
                                    self.buf[k],
                                    self.expect[k]
                                ));
                            }
                            e.got += n;
                            self.summary.bytes += n as u64;
                            if let Ending::CloseEarly { after_recv } = e.ending {
                                if e.got >= after_recv {
                                    break;
                                }
                            }
                        }
                        Err(TcpError::WouldBlock) => break,
                        Err(err) => {
                            e.error = Some(err);
                            break;
                        }
                    }
                }
                // A slow reader: one batch of reads, then a pause.
                if !e.read_pause.is_zero() {
                    e.next_read = now + e.read_pause;
                    wake = Some(e.next_read);
                }
            }
        }
        // Close early, maybe with unread data.
        if let Ending::CloseEarly { after_recv } = e.ending {
            if e.got >= after_recv.min(e.recv_total) && e.error.is_none() {
                let unread = tcp.recv_queue(id).unwrap_or(0);
                tcp.close(id).map_err(|err| format!("close: {err}"))?;
                e.done = true;
                *aborted_at = Some(now);
                if self.verbose {
                    let _ = writeln!(
                        self.log,
                        "{now}: conn {c} role {role} closes early after {} received ({unread} unread)",
                        e.got
                    );
                }
                return Ok((true, None));
            }
        }
        // A failed connection: only a reset, and only when planned.
        if let Some(err) = e.error {
            if !allowed(err) {
                return Err(format!(
                    "conn {c} role {role}: error {err} (state {state:?})"
                ));
            }
            tcp.close(id).map_err(|err| format!("close: {err}"))?;
            e.done = true;
            if err == TcpError::ConnectionRefused {
                self.summary.refused += 1;
            } else {
                self.summary.resets += 1;
            }
            return Ok((true, None));
        }
        let state = tcp.state(id).unwrap();
        if state == State::Closed {
            if let Some(err) = tcp.take_error(id).unwrap() {
                if !allowed(err) {
                    return Err(format!("conn {c} role {role}: error {err} in CLOSED"));
                }
                e.error = Some(err);
                tcp.close(id).unwrap();
                e.done = true;
                if err == TcpError::ConnectionRefused {
                    self.summary.refused += 1;
                } else {
                    self.summary.resets += 1;
                }
                return Ok((true, None));
            }
        }
        // Finished: both directions done.
        if e.shut && e.eof {
            if let Ending::Graceful { wait: true } = e.ending {
                if !matches!(state, State::Closed | State::TimeWait) {
                    return Ok((progress, wake));
                }
                if let Some(err) = tcp.take_error(id).unwrap() {
                    if !allowed(err) {
                        return Err(format!("conn {c} role {role}: error {err} at the end"));
                    }
                }
            }
            tcp.close(id).map_err(|err| format!("close: {err}"))?;
            e.done = true;
            return Ok((true, None));
        }
        // The peer aborted long ago and the RST was lost: give up.
        if let Some(at) = peer_aborted {
            if now >= at + GIVE_UP_AFTER_PEER_ABORT {
                tcp.close(id).map_err(|err| format!("close: {err}"))?;
                e.done = true;
                return Ok((true, None));
            }
            let w = at + GIVE_UP_AFTER_PEER_ABORT;
            wake = Some(wake.map_or(w, |x: Instant| x.min(w)));
        }
        Ok((progress, wake))
    }

    fn trace_line(&self, k: usize) -> String {
        let Some(c) = self.conns.get(k) else {
            return String::new();
        };
        let mut s = String::new();
        for e in &c.ends {
            let st = e.id.map(|id| self.stacks[e.stack].tcp().state(id));
            let _ = write!(
                s,
                "[{st:?} sent {} got {} shut {} eof {} err {:?} done {}] ",
                e.sent, e.got, e.shut, e.eof, e.error, e.done
            );
        }
        s
    }

    fn all_done(&self) -> bool {
        self.conns.iter().all(|c| {
            c.ends[0].done
                && (c.ends[1].done || ((c.abortive || c.refused) && c.ends[1].id.is_none()))
        })
    }

    /// Polls and flushes every stack once.
    fn tick(&mut self) -> bool {
        for d in &self.delays {
            d.now.store(self.now.total_micros(), Ordering::Relaxed);
        }
        let mut work = false;
        for s in self.stacks.iter_mut() {
            work |= s.poll(self.now);
        }
        for s in self.stacks.iter_mut() {
            work |= s.flush(self.now);
        }
        for s in &self.stacks {
            self.summary.max_chunks = self.summary.max_chunks.max(s.tcp().chunks_in_use());
        }
        work || self
            .stacks
            .iter()
            .any(|s| s.rx_pending() || s.has_pending_work())
    }

    /// The next time anything is due: a timer, a delayed frame.
    fn next_event(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut take = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for s in &self.stacks {
            if let Some(t) = s.next_deadline() {
                take(t);
            }
        }
        for d in &self.delays {
            let due = d.next_due.load(Ordering::Relaxed);
            if due != u64::MAX {
                take(Instant::from_micros(due));
            }
        }
        next
    }

    fn advance(&mut self, busy: bool, tick: Duration, extra: Option<Instant>) {
        if busy {
            self.now += tick;
            return;
        }
        let mut next = self.next_event();
        if let Some(w) = extra {
            next = Some(next.map_or(w, |n| n.min(w)));
        }
        let min = self.now + tick;
        self.now = match next {
            Some(t) if t > min => t,
            Some(_) => min,
            // Nothing is due at all: only the stall limit can end this.
            None => self.now + Duration::from_secs(1),
        };
    }
}

/// Runs one seed; `Err` carries the failure report.
pub fn run(seed: u64, opts: &Options) -> Result<Summary, String> {
    let mut p = plan(seed, opts);
    if let Some(k) = opts.only {
        if k < p.conns.len() {
            let c = p.conns.swap_remove(k);
            p.conns = vec![c];
        }
    }
    let mut log = String::new();
    if opts.verbose {
        let _ = writeln!(
            log,
            "seed {seed}: queues {} tick {:?} faults {} / {} delay {:?}+{:?} bufs {}/{}",
            p.queues,
            p.tick,
            p.faults[0],
            p.faults[1],
            p.delay.0,
            p.delay.1,
            p.send_buffer,
            p.recv_buffer
        );
        for (i, c) in p.conns.iter().enumerate() {
            let _ = writeln!(
                log,
                "  conn {i}: from side {} stack {} at {} ms: {} B {:?} (write ≤{}, read ≤{}, pause {:?}) / {} B {:?} (write ≤{}, read ≤{}, pause {:?}, read_first {})",
                c.from.0,
                c.from.1,
                c.start.total_millis(),
                c.ends[0].send_total,
                c.ends[0].ending,
                c.ends[0].write_max,
                c.ends[0].read_max,
                c.ends[0].read_pause,
                c.ends[1].send_total,
                c.ends[1].ending,
                c.ends[1].write_max,
                c.ends[1].read_max,
                c.ends[1].read_pause,
                c.ends[1].read_first,
            );
        }
    }
    let (a, b) = MemoryNic::pair_with(&MemoryNicConfig {
        queues: p.queues,
        ..MemoryNicConfig::default()
    })
    .map_err(|e| format!("memory NIC: {e}"))?;
    let mut stacks = Vec::new();
    let mut sides = Vec::new();
    let mut delays = Vec::new();
    let edges = Arc::new(Mutex::new(EdgeCheck::default()));
    for (side, port) in [a, b].into_iter().enumerate() {
        for q in port.split() {
            let qi = q.info().queue as u64;
            let faulty = FaultyQueue::new(
                q,
                FaultConfig {
                    seed: mix(p.faults[side].seed ^ qi),
                    ..p.faults[side]
                },
            );
            let shared = Arc::new(DelayShared {
                edges: edges.clone(),
                ..DelayShared::default()
            });
            let dq = DelayQueue::new(
                faulty,
                shared.clone(),
                p.delay.0,
                p.delay.1,
                mix(seed ^ (side as u64 * 16 + qi + 999)),
            );
            let st = Stack::new(stack_config(side, seed, &p), Box::new(dq))
                .map_err(|e| format!("stack: {e}"))?;
            stacks.push(st);
            sides.push(side);
            delays.push(shared);
        }
    }
    let mut listeners = Vec::new();
    for (i, s) in stacks.iter_mut().enumerate() {
        let l = s
            .tcp_mut()
            .listen(SocketAddrV4::new(Ipv4Address::UNSPECIFIED, PORT), 128)
            .map_err(|e| format!("listen on stack {i}: {e}"))?;
        listeners.push(l);
    }
    let max_write = 256 * 1024;
    let mut sim = Sim {
        seed,
        now: Instant::from_secs(1),
        stacks,
        sides,
        listeners,
        delays,
        summary: Summary {
            conns: p.conns.len(),
            ..Summary::default()
        },
        conns: p.conns,
        by_port: HashMap::new(),
        buf: vec![0; max_write],
        expect: vec![0; max_write],
        log,
        verbose: opts.verbose,
        trace: opts.trace,
        edges,
    };
    let start = sim.now;
    let limit = start + VIRTUAL_LIMIT;
    let mut iters = 0u64;
    let mut last_trace = String::new();
    // The applications.
    while !sim.all_done() {
        iters += 1;
        if iters > ITER_LIMIT || sim.now > limit {
            return Err(sim.fail(format!("stalled ({iters} iterations)")));
        }
        let opened = sim.open().map_err(|e| sim.fail(e))?;
        let (progress, wake) = sim.apps().map_err(|e| sim.fail(e))?;
        let busy = sim.tick();
        sim.check_edges()?;
        let next_start = sim
            .conns
            .iter()
            .filter(|c| c.ends[0].id.is_none() && !c.ends[0].done)
            .map(|c| c.start)
            .min();
        let wake = match (wake, next_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        sim.advance(busy || opened || progress, p.tick, wake);
        if let Some(k) = opts.trace {
            let line = sim.trace_line(k);
            if line != last_trace {
                println!("{} {line}", sim.now);
                last_trace = line;
            }
        }
    }
    let apps_done = sim.now;
    // Listeners go; TIME-WAIT and orphans run out.
    for (i, &l) in sim.listeners.clone().iter().enumerate() {
        sim.stacks[i].tcp_mut().close(l).unwrap();
    }
    loop {
        iters += 1;
        let sockets: usize = sim.stacks.iter().map(|s| s.tcp().sockets_in_use()).sum();
        let held: u64 = sim
            .delays
            .iter()
            .map(|d| d.held.load(Ordering::Relaxed))
            .sum();
        let busy = sim.tick();
        sim.check_edges()?;
        if sockets == 0 && held == 0 && !busy {
            break;
        }
        if iters > ITER_LIMIT || sim.now > limit {
            return Err(sim.fail(format!(
                "sockets not released: {sockets} in use {} ms after the applications finished",
                (sim.now - apps_done).as_millis()
            )));
        }
        sim.advance(busy, p.tick, None);
    }
    // A few idle ticks so that nothing held in a wrapper stays there.
    for _ in 0..4 {
        sim.tick();
        sim.now += p.tick;
    }
    for (i, s) in sim.stacks.iter().enumerate() {
        let t = s.tcp();
        if t.chunks_in_use() != 0 || s.frames_available() != s.frames_capacity() {
            return Err(sim.fail(format!(
                "stack {i} leaks: {} chunks in use, frames {}/{}",
                t.chunks_in_use(),
                s.frames_available(),
                s.frames_capacity()
            )));
        }
        if t.stats().conns_timed_out != 0 {
            return Err(sim.fail(format!(
                "stack {i}: {} connections timed out",
                t.stats().conns_timed_out
            )));
        }
    }
    sim.check_edges()?;
    sim.summary.edge_checks = sim.edges.lock().unwrap().checked;
    sim.summary.virtual_ms = (sim.now - start).as_millis() as u64;
    sim.summary.iters = iters;
    if opts.verbose {
        print!("{}", sim.log);
        for (i, s) in sim.stacks.iter().enumerate() {
            println!("stack {i}: {:?}", s.tcp().stats());
        }
    }
    Ok(sim.summary)
}

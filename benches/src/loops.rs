//! Client and server loops, generic over the stream type and the runtime.
//!
//! Every system runs the same loops: they take any stream that implements
//! tokio's [`AsyncRead`] + [`AsyncWrite`] (tokio's and mtcp's `TcpStream`
//! both do) and never touch a runtime-specific timer: deadlines are plain
//! [`std::time::Instant`] checks between transactions, so a loop can run on
//! tokio, on mtcp or on any other executor. The loops own no sockets beyond
//! what they are given; the system decides how connections are opened,
//! accepted, spread over cores and stopped.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::measurement::{latency_histogram, Latency, Measurement, Metrics};
use crate::scenario::ScenarioConfig;

/// The measured part of a timed run: transactions that start at or after
/// `start` are recorded; loops stop starting new ones at `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// End of the warm-up, start of the measurement.
    pub start: Instant,
    /// End of the measurement.
    pub end: Instant,
}

impl Window {
    /// A window that starts after `config.warmup` from now and lasts
    /// `config.duration`.
    pub fn after_warmup(config: &ScenarioConfig) -> Window {
        let start = Instant::now() + config.warmup;
        Window {
            start,
            end: start + config.duration,
        }
    }

    /// The window's length in seconds.
    pub fn seconds(&self) -> f64 {
        self.end.duration_since(self.start).as_secs_f64()
    }

    /// Whether an event at `t` falls in the window.
    pub fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

/// Transactions and their latencies, for `echo`, `connect` and `udp`.
#[derive(Debug, Clone)]
pub struct TxStats {
    /// Latencies in nanoseconds of the transactions that started in the window.
    pub hist: Histogram<u64>,
    /// Transactions that started in the window and completed.
    pub counted: u64,
    /// Every completed transaction, warm-up included.
    pub total: u64,
    /// Failed transactions (connect refused, reset, short read, ...).
    pub errors: u64,
    /// `udp`: requests that started in the window and got no echo in time.
    pub lost: u64,
}

impl Default for TxStats {
    fn default() -> TxStats {
        TxStats::new()
    }
}

impl TxStats {
    /// Empty statistics.
    pub fn new() -> TxStats {
        TxStats {
            hist: latency_histogram(),
            counted: 0,
            total: 0,
            errors: 0,
            lost: 0,
        }
    }

    /// Records one completed transaction that started at `t0` and ended at `t1`.
    pub fn record(&mut self, window: &Window, t0: Instant, t1: Instant) {
        self.total += 1;
        if window.contains(t0) {
            self.counted += 1;
            let ns = t1
                .duration_since(t0)
                .as_nanos()
                .clamp(1, u128::from(u64::MAX)) as u64;
            // Values above the histogram's bound (100 s) are saturated.
            self.hist.saturating_record(ns);
        }
    }

    /// Adds another connection's or thread's statistics.
    pub fn merge(&mut self, other: &TxStats) {
        // Both histograms come from `latency_histogram`, so they fit.
        let _ = self.hist.add(&other.hist);
        self.counted += other.counted;
        self.total += other.total;
        self.errors += other.errors;
        self.lost += other.lost;
    }

    /// Transactions per second over the window.
    pub fn rate(&self, window: &Window) -> f64 {
        self.counted as f64 / window.seconds()
    }

    /// The latency percentiles.
    pub fn latency(&self) -> Latency {
        Latency::from_nanos(&self.hist)
    }

    /// The `echo` measurement of these statistics.
    pub fn echo_measurement(
        &self,
        system: &str,
        config: &ScenarioConfig,
        window: &Window,
    ) -> Measurement {
        Measurement {
            system: system.to_string(),
            cores: config.cores,
            conns: config.conns,
            size: config.size,
            seconds: window.seconds(),
            rounds: 1,
            metrics: Metrics::Echo {
                tx_per_s: self.rate(window),
                latency: self.latency(),
            },
        }
    }

    /// The `udp` measurement of these statistics.
    pub fn udp_measurement(
        &self,
        system: &str,
        config: &ScenarioConfig,
        window: &Window,
    ) -> Measurement {
        Measurement {
            system: system.to_string(),
            cores: config.cores,
            conns: config.conns,
            size: config.size,
            seconds: window.seconds(),
            rounds: 1,
            metrics: Metrics::Udp {
                tx_per_s: self.rate(window),
                latency: self.latency(),
                lost: self.lost,
            },
        }
    }

    /// The `connect` measurement of these statistics.
    pub fn connect_measurement(
        &self,
        system: &str,
        config: &ScenarioConfig,
        window: &Window,
        time_wait: bool,
    ) -> Measurement {
        Measurement {
            system: system.to_string(),
            cores: config.cores,
            conns: config.conns,
            size: config.size,
            seconds: window.seconds(),
            rounds: 1,
            metrics: Metrics::Connect {
                conns_per_s: self.rate(window),
                time_wait,
                latency: self.latency(),
                errors: self.errors,
            },
        }
    }
}

/// `echo` client: on one persistent connection, writes `size` bytes and reads
/// `size` bytes back, again and again until the window ends.
///
/// # Errors
///
/// The stream's error, or `UnexpectedEof` when the server closes early.
pub async fn echo_client<S>(
    stream: &mut S,
    size: usize,
    window: &Window,
    stats: &mut TxStats,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = request_bytes(size);
    let mut response = vec![0u8; size];
    loop {
        let t0 = Instant::now();
        if t0 >= window.end {
            return Ok(());
        }
        stream.write_all(&request).await?;
        stream.read_exact(&mut response).await?;
        stats.record(window, t0, Instant::now());
    }
}

/// `echo` server (and idle server): writes back every byte read, until the
/// peer closes. Returns the number of bytes echoed.
///
/// # Errors
///
/// The stream's error.
pub async fn echo_server<S>(mut stream: S, buf_size: usize) -> io::Result<u64>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; buf_size.max(1)];
    let mut echoed = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(echoed);
        }
        stream.write_all(&buf[..n]).await?;
        echoed += n as u64;
    }
}

/// How many failed connects in a row end a `connect` client loop.
pub const MAX_CONSECUTIVE_ERRORS: u64 = 1000;

/// `connect` client: connect, write `size` bytes, read `size` bytes, wait
/// for the server to close, close; again and again until the window ends.
/// The latency of a transaction is the whole cycle, from the connect call
/// to the close. The server closes first, so TIME-WAIT lands on its side.
///
/// # Errors
///
/// The last error after [`MAX_CONSECUTIVE_ERRORS`] failed cycles in a row;
/// isolated failures are only counted in `stats.errors`.
pub async fn connect_client<C, F, S>(
    mut connect: C,
    size: usize,
    window: &Window,
    stats: &mut TxStats,
) -> io::Result<()>
where
    C: FnMut() -> F,
    F: Future<Output = io::Result<S>>,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = request_bytes(size);
    let mut response = vec![0u8; size];
    let mut consecutive = 0u64;
    loop {
        let t0 = Instant::now();
        if t0 >= window.end {
            return Ok(());
        }
        let cycle = async {
            let mut stream = connect().await?;
            stream.write_all(&request).await?;
            stream.read_exact(&mut response).await?;
            let mut probe = [0u8; 1];
            if stream.read(&mut probe).await? != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "server sent more than one response",
                ));
            }
            stream.shutdown().await?;
            Ok::<(), io::Error>(())
        };
        match cycle.await {
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

/// `connect` server: reads one request of `size` bytes, writes it back and
/// closes (the active close, so this side enters TIME-WAIT).
///
/// # Errors
///
/// The stream's error.
pub async fn request_once_server<S>(mut stream: S, size: usize) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; size];
    stream.read_exact(&mut buf).await?;
    stream.write_all(&buf).await?;
    stream.shutdown().await
}

/// `bulk` sender: writes `chunk` again and again until the window ends, then
/// closes its sending side. Returns the bytes written.
///
/// # Errors
///
/// The stream's error.
pub async fn bulk_sender<S>(stream: &mut S, chunk: &[u8], window: &Window) -> io::Result<u64>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut sent = 0u64;
    while Instant::now() < window.end {
        stream.write_all(chunk).await?;
        sent += chunk.len() as u64;
    }
    stream.shutdown().await?;
    Ok(sent)
}

/// What a `bulk` receiver saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BulkStats {
    /// Bytes that arrived inside the window.
    pub in_window: u64,
    /// Every byte received.
    pub total: u64,
}

impl BulkStats {
    /// Gigabits (10^9 bits) per second over the window.
    pub fn gbit_per_s(&self, window: &Window) -> f64 {
        self.in_window as f64 * 8.0 / window.seconds() / 1e9
    }

    /// The `bulk` measurement.
    pub fn measurement(
        &self,
        system: &str,
        config: &ScenarioConfig,
        window: &Window,
    ) -> Measurement {
        Measurement {
            system: system.to_string(),
            cores: config.cores,
            conns: 1,
            size: config.size,
            seconds: window.seconds(),
            rounds: 1,
            metrics: Metrics::Bulk {
                gbit_per_s: self.gbit_per_s(window),
            },
        }
    }
}

/// `bulk` receiver: reads until the sender closes, counting the bytes that
/// arrive inside the window.
///
/// # Errors
///
/// The stream's error.
pub async fn bulk_receiver<S>(
    mut stream: S,
    buf_size: usize,
    window: &Window,
) -> io::Result<BulkStats>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; buf_size.max(1)];
    let mut stats = BulkStats::default();
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(stats);
        }
        stats.total += n as u64;
        if window.contains(Instant::now()) {
            stats.in_window += n as u64;
        }
    }
}

/// A request of `size` bytes with a recognisable pattern.
pub fn request_bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// How long a run may take past its window before it is declared stuck.
pub const GRACE: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn window_now(warmup_ms: u64, ms: u64) -> Window {
        let start = Instant::now() + Duration::from_millis(warmup_ms);
        Window {
            start,
            end: start + Duration::from_millis(ms),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn window_bounds() {
        let w = window_now(100, 1000);
        assert!(!w.contains(w.start - Duration::from_millis(1)));
        assert!(w.contains(w.start));
        assert!(!w.contains(w.end));
        assert!((w.seconds() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn stats_count_only_the_window() {
        let w = window_now(10, 100);
        let mut s = TxStats::new();
        let before = w.start - Duration::from_millis(5);
        s.record(&w, before, before + Duration::from_micros(3));
        s.record(&w, w.start, w.start + Duration::from_micros(7));
        assert_eq!((s.total, s.counted, s.hist.len()), (2, 1, 1));
        let mut t = TxStats::new();
        t.record(&w, w.start, w.start + Duration::from_micros(9));
        t.errors = 2;
        t.lost = 4;
        s.merge(&t);
        assert_eq!((s.total, s.counted, s.errors, s.hist.len()), (3, 2, 2, 2));
        assert_eq!(s.lost, 4);
        assert!((s.rate(&w) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn echo_over_an_in_memory_duplex() {
        let (mut client, server) = tokio::io::duplex(1024);
        let w = window_now(0, 50);
        let mut stats = TxStats::new();
        let (echoed, ()) = rt().block_on(async {
            let server = echo_server(server, 64);
            let client = async {
                echo_client(&mut client, 64, &w, &mut stats).await.unwrap();
                drop(client);
            };
            let (e, c) = tokio::join!(server, client);
            (e.unwrap(), c)
        });
        assert!(stats.counted > 0);
        assert_eq!(echoed, stats.total * 64);
        assert!(stats.latency().p50_us <= stats.latency().p99_us);
    }

    #[test]
    fn echo_client_reports_an_early_close() {
        let (mut client, server) = tokio::io::duplex(1024);
        drop(server);
        let w = window_now(0, 50);
        let mut stats = TxStats::new();
        let r = rt().block_on(echo_client(&mut client, 64, &w, &mut stats));
        assert!(r.is_err());
        assert_eq!(stats.total, 0);
    }

    #[test]
    fn connect_cycles_over_duplex_pairs() {
        let w = window_now(0, 30);
        let mut stats = TxStats::new();
        let rt = rt();
        rt.block_on(async {
            let connect = || async {
                let (client, server) = tokio::io::duplex(256);
                tokio::spawn(request_once_server(server, 16));
                Ok::<_, io::Error>(client)
            };
            connect_client(connect, 16, &w, &mut stats).await.unwrap();
        });
        assert!(stats.counted > 0);
        assert_eq!(stats.errors, 0);
    }

    #[test]
    fn connect_gives_up_after_consecutive_errors() {
        let w = window_now(0, 10_000);
        let mut stats = TxStats::new();
        let r = rt().block_on(connect_client(
            || async {
                Err::<tokio::io::DuplexStream, _>(io::Error::from(io::ErrorKind::ConnectionRefused))
            },
            16,
            &w,
            &mut stats,
        ));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(stats.errors, MAX_CONSECUTIVE_ERRORS);
        assert_eq!(stats.total, 0);
    }

    #[test]
    fn bulk_over_duplex() {
        let (mut tx, rx) = tokio::io::duplex(64 * 1024);
        let w = window_now(0, 30);
        let chunk = request_bytes(4096);
        let (sent, got) = rt().block_on(async {
            let send = bulk_sender(&mut tx, &chunk, &w);
            let recv = bulk_receiver(rx, 8192, &w);
            let (s, r) = tokio::join!(send, recv);
            (s.unwrap(), r.unwrap())
        });
        assert_eq!(sent, got.total);
        assert!(got.in_window > 0 && got.in_window <= got.total);
        assert!(got.gbit_per_s(&w) > 0.0);
    }
}

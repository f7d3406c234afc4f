//! The quick start: an echo server and a load-generating client, each on its
//! own core with its own user-level stack, joined by the in-memory NIC. No
//! root, no device, no configuration.
//!
//! ```sh
//! cargo run --release -p examples --bin quickstart [-- --seconds 5 --conns 50 --size 64]
//! ```

use std::error::Error;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};
use mtcp::runtime::{Builder, IdlePolicy};
use mtcp::stack::nic::memory::MemoryNic;
use mtcp::stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

/// The quick start: an echo server and a load-generating client, each on
/// its own core with its own user-level stack, joined by the in-memory NIC.
#[derive(Debug, Parser)]
#[command(name = "quickstart", disable_version_flag = true)]
struct Options {
    /// Seconds to run (the first quarter, at most 0.5 s, is warm-up)
    #[arg(long, value_name = "N", default_value_t = 5.0, value_parser = seconds)]
    seconds: f64,
    /// Client connections
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = positive)]
    conns: usize,
    /// Message size in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = positive)]
    size: usize,
}

/// Positive seconds, e.g. 5.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err("expected a number of seconds greater than 0, e.g. 5".into()),
    }
}

/// A positive whole number, e.g. 50.
fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive whole number, e.g. 50".into()),
    }
}

fn cidr(a: [u8; 4]) -> Ipv4Cidr {
    Ipv4Cidr {
        address: Ipv4Address::from(a),
        prefix_len: 24,
    }
}

fn pin(cpu: usize) {
    if let Some(ids) = core_affinity::get_core_ids() {
        if let Some(id) = ids.get(cpu % ids.len()) {
            core_affinity::set_for_current(*id);
        }
    }
}

async fn echo_server(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (mut socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        mtcp::spawn(async move {
            let mut buf = vec![0; 4096];
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if socket.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

async fn client(
    o: &Options,
    warmup: Instant,
    end: Instant,
) -> std::io::Result<(u64, Histogram<u64>)> {
    let mut tasks = Vec::new();
    for _ in 0..o.conns {
        let size = o.size;
        tasks.push(mtcp::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut s = TcpStream::connect("10.0.0.1:8080").await?;
            s.set_nodelay(true)?;
            let msg = vec![0x5a; size];
            let mut back = vec![0; size];
            let mut count = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                s.write_all(&msg).await?;
                s.read_exact(&mut back).await?;
                if t0 >= warmup {
                    count += 1;
                    let _ = hist.record(t0.elapsed().as_nanos().max(1) as u64);
                }
            }
            Ok::<_, std::io::Error>((count, hist))
        }));
    }
    let mut total = 0;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for t in tasks {
        let (n, h) = t.await??;
        total += n;
        hist.add(h).expect("same bounds");
    }
    Ok((total, hist))
}

fn main() -> Result<(), Box<dyn Error>> {
    examples::init_logger();
    let o = Options::parse();
    let (a, b) = MemoryNic::pair(1, 4096);
    let server_rt = Builder::new()
        .addr(cidr([10, 0, 0, 1]))
        .nic_queues(a.split_boxed())
        .idle_policy(IdlePolicy::BusyPoll)
        .build()?;
    let client_rt = Builder::new()
        .addr(cidr([10, 0, 0, 2]))
        .nic_queues(b.split_boxed())
        .idle_policy(IdlePolicy::BusyPoll)
        .build()?;

    eprintln!(
        "mtcp quick start: echo server (10.0.0.1:8080, core 0) and client (10.0.0.2, core 1), \
         in-memory NIC, {} connections, {}-byte messages, {} s",
        o.conns, o.size, o.seconds
    );
    let server = std::thread::spawn(move || {
        pin(0);
        server_rt.block_on(echo_server("0.0.0.0:8080"))
    });
    pin(1);
    let start = Instant::now();
    let warmup = start + Duration::from_millis(500).min(Duration::from_secs_f64(o.seconds / 4.0));
    let end = start + Duration::from_secs_f64(o.seconds);
    let (count, hist) = client_rt.block_on(client(&o, warmup, end))?;
    let measured = end.saturating_duration_since(warmup).as_secs_f64();
    println!(
        "{:.0} transactions/s, p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs ({} transactions)",
        count as f64 / measured,
        hist.value_at_quantile(0.50) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.value_at_quantile(0.999) as f64 / 1000.0,
        count
    );
    // The server thread serves forever; the process ends here.
    drop(server);
    println!();
    println!("The same echo server on a TAP device, reached with nc (needs root):");
    println!("  sudo ip tuntap add mtcp0 mode tap && sudo ip addr add 10.98.0.1/24 dev mtcp0 && sudo ip link set mtcp0 up");
    println!("  sudo MTCP_DEVICE=tap:mtcp0 MTCP_ADDR=10.98.0.2/24 cargo run --release -p examples --bin echo");
    println!("  nc 10.98.0.2 8080");
    std::process::exit(0);
}

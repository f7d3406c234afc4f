//! A deterministic driver for profiling the whole path on one core: the
//! executor, the reactor tick and the stack, with an echo server and its
//! clients as tasks of one single-core runtime, joined through the stack's
//! own address (frames to it loop back inside the stack). Every tick has
//! work, so nothing spins and `valgrind --tool=callgrind` counts what one
//! transaction costs both sides together, executor included.
//!
//! With `--connect`, N is short connections instead, `--conns` at a time,
//! each the `compare connect` cycle (connect, 64 bytes each way, the server
//! closes first and keeps the TIME-WAIT).
//!
//! ```sh
//! cargo run --release -p benches --bin pathbench -- [N] [--conns C] [--connect]
//! valgrind --tool=callgrind target/release/pathbench 100000
//! ```

use std::net::SocketAddr;
use std::time::Instant;

use clap::Parser;
use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};
use mtcp::runtime::{Builder, IdlePolicy};
use mtcp::stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

/// Drives an echo server and its clients on one core, for profiling.
#[derive(Debug, Parser)]
#[command(name = "pathbench", disable_version_flag = true)]
struct Args {
    /// Transactions in all (64-byte request and response each)
    #[arg(default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    n: u64,
    /// Client connections
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    conns: u64,
    /// Short connections (N cycles) instead of transactions on open ones
    #[arg(long)]
    connect: bool,
}

const SIZE: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let short = args.connect;
    let rt = Builder::new()
        .cores(1)
        .pin_threads(false)
        .idle_policy(IdlePolicy::BusyPoll)
        .addr(Ipv4Cidr {
            address: Ipv4Address::new(10, 0, 0, 1),
            prefix_len: 24,
        })
        .build()?;
    let per_conn = args.n.div_ceil(args.conns);
    let elapsed = rt.block_on(async move {
        let listener = TcpListener::bind("10.0.0.1:7000").await?;
        let addr: SocketAddr = listener.local_addr()?;
        mtcp::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                mtcp::spawn(async move {
                    let mut buf = [0u8; SIZE];
                    if short {
                        // One request, its echo, then the active close.
                        if s.read_exact(&mut buf).await.is_ok() {
                            let _ = s.write_all(&buf).await;
                        }
                        return;
                    }
                    while s.read_exact(&mut buf).await.is_ok() {
                        if s.write_all(&buf).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        if short {
            return connect_cycles(addr, per_conn, args.conns).await;
        }
        let mut clients = Vec::new();
        for _ in 0..args.conns {
            clients.push(TcpStream::connect(addr).await?);
        }
        let t0 = Instant::now();
        let mut set = mtcp::task::JoinSet::new();
        for (i, mut s) in clients.into_iter().enumerate() {
            set.spawn_local(async move {
                let mut buf = [i as u8; SIZE];
                for _ in 0..per_conn {
                    s.write_all(&buf).await?;
                    s.read_exact(&mut buf).await?;
                }
                Ok::<_, std::io::Error>(())
            });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
        let elapsed = t0.elapsed();
        if std::env::var_os("PATHBENCH_STATS").is_some() {
            eprintln!("{:#?}", mtcp::net::core_stats()?);
        }
        Ok::<_, Box<dyn std::error::Error>>(elapsed)
    })?;
    let total = per_conn * args.conns;
    let (what, on) = if short {
        ("connections", "at a time")
    } else {
        ("tx", "connections")
    };
    println!(
        "pathbench: {total} {what}, {} {on}, in {:.3} s = {:.0}/s (one core, both sides)",
        args.conns,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// `conns` clients, each `per_conn` cycles of `compare connect`'s: connect,
/// write 64 bytes, read them back, see the server's FIN, close.
async fn connect_cycles(
    addr: SocketAddr,
    per_conn: u64,
    conns: u64,
) -> Result<std::time::Duration, Box<dyn std::error::Error>> {
    // A first cycle alone, so that the timed ones find everything set up.
    cycle(addr, &mut [0; SIZE]).await?;
    let t0 = Instant::now();
    let mut set = mtcp::task::JoinSet::new();
    for i in 0..conns {
        set.spawn_local(async move {
            let mut buf = [i as u8; SIZE];
            for _ in 0..per_conn {
                cycle(addr, &mut buf).await?;
            }
            Ok::<_, std::io::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(t0.elapsed())
}

/// One short connection.
async fn cycle(addr: SocketAddr, buf: &mut [u8; SIZE]) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(buf).await?;
    s.read_exact(buf).await?;
    if s.read(&mut [0u8; 1]).await? != 0 {
        return Err(std::io::Error::other("the server sent more than its echo"));
    }
    s.shutdown().await
}

//! A UDP client that checks every datagram: on each core, a socket bound to
//! an ephemeral port and connected to `ADDR` sends datagrams of every size
//! from 1 to `MAX` bytes, then `BIG_COUNT` datagrams of `BIG` bytes (sent
//! and received in IP fragments when over the MTU), one at a time, and
//! checks that each comes back unchanged from an echo server.
//!
//! ```sh
//! udp_pingpong ADDR [MAX] [BIG] [BIG_COUNT]    # defaults: 1472 8000 20
//! ```
//!
//! A datagram not answered within 200 ms is sent again (up to 25 times);
//! a late answer to an earlier datagram is recognised and counted as a
//! duplicate. Each core prints one line:
//! `udp_pingpong: core C port P sent N ok N resent R duplicates D
//! handoffs_in H` (H: fragmented answers reassembled by the other core and
//! handed to this one), and
//! `udp_pingpong: core C FAILED: ...` (exit status 1) when a datagram
//! came back changed or never came back.
//!
//! With `MTCP_CORES=2` `main` runs on both cores: each socket's port is
//! chosen so that the NIC's RSS brings the replies back to its own core.

use std::error::Error;
use std::time::Duration;

use clap::Parser;
use mtcp::net::UdpSocket;

const TRIES: usize = 25;
const WAIT: Duration = Duration::from_millis(200);

/// Byte `n` of datagram `seq` (of length `len`) sent by core `core`.
fn byte(core: usize, seq: usize, len: usize, n: usize) -> u8 {
    ((n as u64 * 131 + seq as u64 * 17 + len as u64 * 7 + core as u64 * 101) % 251) as u8
}

fn fill(buf: &mut [u8], core: usize, seq: usize) {
    let len = buf.len();
    for (n, b) in buf.iter_mut().enumerate() {
        *b = byte(core, seq, len, n);
    }
}

/// Reports a failed check and ends the process (both cores).
fn fail(core: usize, what: &str) -> ! {
    eprintln!("udp_pingpong: core {core} FAILED: {what}");
    std::process::exit(1);
}

/// On each core, sends datagrams of 1..=MAX bytes, then BIG_COUNT of BIG
/// bytes, to the echo server at ADDR and checks every answer.
#[derive(Debug, Parser)]
#[command(name = "udp_pingpong", disable_version_flag = true)]
struct Args {
    /// The echo server, e.g. 10.99.0.1:7001
    addr: String,
    /// The largest size of the sweep 1..=MAX
    #[arg(default_value_t = 1472)]
    max: usize,
    /// The size of the big datagrams (IP fragments over the MTU)
    #[arg(default_value_t = 8000, value_parser = clap::value_parser!(u32).range(1..=65_507))]
    big: u32,
    /// How many big datagrams
    #[arg(default_value_t = 20)]
    big_count: usize,
}

#[mtcp::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // A bad command line prints clap's message and exits (status 2).
    let Args {
        addr,
        max,
        big,
        big_count,
    } = Args::parse();
    let big = big as usize;
    let core = mtcp::runtime::current_core();

    let socket = UdpSocket::bind("0.0.0.0:0").await?;
    socket.connect(addr.as_str()).await?;
    let port = socket.local_addr()?.port();

    // Datagram `seq` has length `lens[seq]`.
    let lens: Vec<usize> = (1..=max)
        .chain(std::iter::repeat_n(big, big_count))
        .collect();
    let mut sent = vec![0u8; lens.iter().copied().max().unwrap_or(0)];
    let mut back = vec![0u8; 65_536];
    let mut expect = vec![0u8; sent.len()];
    let (mut resent, mut duplicates) = (0usize, 0usize);

    for (seq, &len) in lens.iter().enumerate() {
        fill(&mut sent[..len], core, seq);
        let mut answered = false;
        'tries: for attempt in 0..TRIES {
            if attempt > 0 {
                resent += 1;
            }
            socket.send(&sent[..len]).await?;
            loop {
                let n = match mtcp::time::timeout(WAIT, socket.recv(&mut back)).await {
                    Err(_) => continue 'tries,
                    Ok(r) => r?,
                };
                if back[..n] == sent[..len] {
                    answered = true;
                    break 'tries;
                }
                // A late answer to an earlier datagram of the same length?
                let earlier = (0..seq).rev().find(|&s| {
                    lens[s] == n && {
                        fill(&mut expect[..n], core, s);
                        back[..n] == expect[..n]
                    }
                });
                if earlier.is_some() {
                    duplicates += 1;
                    continue;
                }
                fail(
                    core,
                    &format!("datagram {seq} ({len} bytes) came back as {n} bytes that match no datagram sent"),
                );
            }
        }
        if !answered {
            fail(
                core,
                &format!("datagram {seq} ({len} bytes) not answered after {TRIES} tries"),
            );
        }
    }
    // Fragmented answers the other core reassembled and handed over.
    let handoffs = mtcp::net::core_stats().map_or(0, |s| s.iface.handoffs_in);
    eprintln!(
        "udp_pingpong: core {core} port {port} sent {} ok {} resent {resent} duplicates \
         {duplicates} handoffs_in {handoffs}",
        lens.len(),
        lens.len()
    );
    Ok(())
}

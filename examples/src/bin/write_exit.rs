//! tokio's `hello_world` pattern, made bigger: connect, `write_all`, return
//! from `main` at once, with no `shutdown` and no wait. On the kernel the
//! data and the FIN are delivered after the process is gone; on mtcp the
//! end of the run does it (graceful close of every connection, bounded by
//! `MTCP_SHUTDOWN_LINGER`).
//!
//! ```sh
//! write_exit ADDR [BYTES] [CONNS]    # defaults: 200000 bytes, 1 connection
//! ```
//!
//! Connection `i` carries `BYTES` bytes of a pattern seeded by `i`
//! ([`byte`]), so the peer can check every byte.

use std::error::Error;

use clap::Parser;
use mtcp::io::AsyncWriteExt;
use mtcp::net::TcpStream;

/// Byte `n` of connection `conn`'s payload.
fn byte(conn: usize, n: usize) -> u8 {
    ((n as u64 * 31 + conn as u64 * 7) % 251) as u8
}

/// Connects CONNS times to ADDR, writes BYTES bytes on each connection
/// and returns from `main` at once.
#[derive(Debug, Parser)]
#[command(name = "write_exit", disable_version_flag = true)]
struct Args {
    /// The listener to connect to, e.g. 10.99.0.3:9000
    addr: String,
    /// Bytes to write on each connection
    #[arg(default_value_t = 200_000)]
    bytes: usize,
    /// Connections
    #[arg(default_value_t = 1)]
    conns: usize,
}

#[mtcp::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // A bad command line prints clap's message and exits (status 2)
    // before any connection is opened.
    let Args { addr, bytes, conns } = Args::parse();
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        streams.push(TcpStream::connect(addr.as_str()).await?);
    }
    let mut buf = vec![0u8; bytes];
    for (i, s) in streams.iter_mut().enumerate() {
        for (n, b) in buf.iter_mut().enumerate() {
            *b = byte(i, n);
        }
        s.write_all(&buf).await?;
    }
    eprintln!("write_exit: wrote {bytes} bytes on each of {conns} connections to {addr}");
    // Return at once: the runtime delivers the rest.
    Ok(())
}

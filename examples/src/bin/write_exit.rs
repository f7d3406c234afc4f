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

use mtcp::io::AsyncWriteExt;
use mtcp::net::TcpStream;

/// Byte `n` of connection `conn`'s payload.
fn byte(conn: usize, n: usize) -> u8 {
    ((n as u64 * 31 + conn as u64 * 7) % 251) as u8
}

fn usage(what: &str) -> Box<dyn Error> {
    format!("write_exit: {what}; usage: write_exit ADDR [BYTES] [CONNS]").into()
}

#[mtcp::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().ok_or_else(|| usage("ADDR is missing"))?;
    let bytes: usize = match args.next() {
        Some(v) => v.parse().map_err(|_| usage("BYTES: expected a number"))?,
        None => 200_000,
    };
    let conns: usize = match args.next() {
        Some(v) => v.parse().map_err(|_| usage("CONNS: expected a number"))?,
        None => 1,
    };
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

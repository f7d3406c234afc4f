//! A minimal HTTP/1.1 responder for load generators (`wrk`, `ab`): every
//! request head gets a fixed `200 OK` with the body `Hello, world!`.
//!
//! Argument 1 is the listen address (default `0.0.0.0:8080`). Request
//! bodies are never read: a request with `Connection: close` is answered
//! and the connection closed at once, whatever the client is still sending
//! (the stack then resets it, as Linux does). `GET /stats` answers with the
//! core's counters (`mtcp::net::core_stats`) as the body.
//!
//! ```sh
//! MTCP_DEVICE=af_packet:mtcp-s0 MTCP_ADDR=10.99.0.2/24 \
//!     cargo run --release -p examples --bin http_ok
//! wrk -t1 -c1000 -d5s --latency http://10.99.0.2:8080/
//! ```

use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};

use std::env;
use std::error::Error;

const OK: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!";
const OK_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nHello, world!";
/// The longest request head accepted; a longer one closes the connection.
const MAX_HEAD: usize = 8192;

#[mtcp::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let addr = env::args()
        .nth(1)
        .unwrap_or_else(|| "0.0.0.0:8080".to_string());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on {addr}");
    loop {
        let (socket, _) = listener.accept().await?;
        mtcp::spawn(serve(socket));
    }
}

/// Where the head that starts `buf` ends (after its blank line).
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn has_close(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n').any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with(b"connection:") && line.windows(5).any(|w| w == b"close")
    })
}

async fn serve(mut socket: TcpStream) {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut have = 0;
    loop {
        // Every complete head in the buffer is answered, in order.
        while let Some(end) = head_end(&buf[..have]) {
            let close = has_close(&buf[..end]);
            let r = if buf[..have].starts_with(b"GET /stats ") {
                let body = match mtcp::net::core_stats() {
                    Ok(s) => s.to_string(),
                    Err(e) => e.to_string(),
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n",
                    body.len()
                );
                let mut out = head.into_bytes();
                out.extend_from_slice(body.as_bytes());
                socket.write_all(&out).await
            } else if close {
                socket.write_all(OK_CLOSE).await
            } else {
                socket.write_all(OK).await
            };
            if r.is_err() || close {
                // Dropped without reading what follows the head.
                return;
            }
            buf.copy_within(end..have, 0);
            have -= end;
        }
        if have == buf.len() {
            return;
        }
        match socket.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
}

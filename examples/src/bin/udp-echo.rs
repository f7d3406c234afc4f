//! tokio's UDP echo server (`echo-udp`), ported to mtcp by renaming
//! `tokio` to `mtcp`.
//!
//! Binds the address given as the first argument (default `0.0.0.0:8080`)
//! and sends every datagram back to its sender unchanged (up to 65 507
//! bytes: larger than the MTU comes and goes in IP fragments).
//!
//! ```sh
//! MTCP_DEVICE=tap:mtcp0 MTCP_ADDR=10.98.0.2/24 cargo run --release -p examples --bin udp-echo
//! ```

use mtcp::net::UdpSocket;

use std::error::Error;
use std::net::SocketAddr;
use std::{env, io};

struct Server {
    socket: UdpSocket,
    buf: Vec<u8>,
    to_send: Option<(usize, SocketAddr)>,
}

impl Server {
    async fn run(self) -> Result<(), io::Error> {
        let Server {
            socket,
            mut buf,
            mut to_send,
        } = self;

        loop {
            // First echo what came last time, then wait for the next one.
            if let Some((size, peer)) = to_send {
                let amt = socket.send_to(&buf[..size], &peer).await?;
                log::debug!("echoed {amt}/{size} bytes to {peer}");
            }

            to_send = Some(socket.recv_from(&mut buf).await?);
        }
    }
}

#[mtcp::main]
async fn main() -> Result<(), Box<dyn Error>> {
    examples::init_logger();
    let addr = env::args()
        .nth(1)
        .unwrap_or_else(|| "0.0.0.0:8080".to_string());

    let socket = UdpSocket::bind(&addr).await?;
    eprintln!("listening on {}", socket.local_addr()?);

    let server = Server {
        socket,
        buf: vec![0; 65536],
        to_send: None,
    };

    server.run().await?;

    Ok(())
}

//! tokio's TCP echo server, ported to mtcp by renaming `tokio` to `mtcp`.
//!
//! Listens on the address given as the first argument (default
//! `0.0.0.0:8080`) and echoes every byte back until the peer closes.
//!
//! ```sh
//! MTCP_DEVICE=tap:mtcp0 MTCP_ADDR=10.98.0.2/24 cargo run --release -p examples --bin echo
//! ```

use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::TcpListener;

use std::env;
use std::error::Error;

#[mtcp::main]
async fn main() -> Result<(), Box<dyn Error>> {
    examples::init_logger();
    let addr = env::args()
        .nth(1)
        .unwrap_or_else(|| "0.0.0.0:8080".to_string());

    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on {addr}");

    loop {
        let (mut socket, _) = listener.accept().await?;

        mtcp::spawn(async move {
            let mut buf = vec![0; 1024];

            loop {
                let n = match socket.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) => {
                        eprintln!("failed to read from socket; err = {e:?}");
                        return;
                    }
                };

                if let Err(e) = socket.write_all(&buf[0..n]).await {
                    eprintln!("failed to write to socket; err = {e:?}");
                    return;
                }
            }
        });
    }
}

//! hyper 1.x on mtcp: HTTP/1.1 with keep-alive and HTTP/2 with prior
//! knowledge (h2c) on the same port, through mtcp's hyper glue
//! (`mtcp::hyper`, cargo feature `hyper`).
//!
//! Listens on the address given as the first argument (default
//! `0.0.0.0:8080`); `GET /` answers `200` with the body `Hello, world!`,
//! anything else `404` (the service is `examples::http_hello`, shared with
//! the tokio twin in `benches/src/bin/veth.rs`). A client has 10 s to send
//! a request's headers (the header-read timeout runs on mtcp's timer wheel). With `MTCP_CORES=N`,
//! `main` runs on every core, each with its own listener.
//!
//! ```sh
//! MTCP_DEVICE=af_packet:veth0 MTCP_ADDR=10.99.0.2/24 cargo run --release -p examples --bin http
//! curl http://10.99.0.2:8080/ ; curl --http2-prior-knowledge http://10.99.0.2:8080/
//! ```

use std::env;
use std::error::Error;
use std::time::Duration;

use examples::http_hello::hello;
use hyper::service::service_fn;
use hyper_util::server::conn::auto;
use mtcp::hyper::{MtcpExecutor, MtcpIo, MtcpTimer};
use mtcp::net::TcpListener;

#[mtcp::main]
async fn main() -> Result<(), Box<dyn Error>> {
    examples::init_logger();
    let addr = env::args()
        .nth(1)
        .unwrap_or_else(|| "0.0.0.0:8080".to_string());

    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on {addr}");

    // One builder for every connection: HTTP/1.1 (keep-alive is hyper's
    // default) or HTTP/2 by the connection preface.
    let mut builder = auto::Builder::new(MtcpExecutor);
    builder
        .http1()
        .timer(MtcpTimer)
        .header_read_timeout(Duration::from_secs(10));
    builder.http2().timer(MtcpTimer);

    loop {
        let (stream, _) = listener.accept().await?;
        let builder = builder.clone();
        mtcp::spawn(async move {
            let conn = builder.serve_connection(MtcpIo::new(stream), service_fn(hello));
            if let Err(e) = conn.await {
                log::debug!("http: connection ended with an error: {e}");
            }
        });
    }
}

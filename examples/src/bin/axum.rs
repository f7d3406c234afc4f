//! axum on mtcp: a small router served per connection through mtcp's hyper
//! glue (`mtcp::hyper`) and hyper-util's `TowerToHyperService`, HTTP/1.1
//! and h2c on the same port.
//!
//! Listens on the address given as the first argument (default
//! `0.0.0.0:8080`). Routes: `GET /` (`Hello, world!`), `GET /json` (a JSON
//! object) and `GET /hello/{name}` (`Hello, NAME!`). With `MTCP_CORES=N`,
//! `main` runs on every core, each with its own listener.
//!
//! ```sh
//! MTCP_DEVICE=af_packet:veth0 MTCP_ADDR=10.99.0.2/24 cargo run --release -p examples --bin axum
//! curl http://10.99.0.2:8080/hello/mtcp
//! ```

use std::env;
use std::error::Error;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use mtcp::hyper::{MtcpExecutor, MtcpIo, MtcpTimer};
use mtcp::net::TcpListener;
use serde_json::json;

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello, world!" }))
        .route(
            "/json",
            get(|| async { Json(json!({ "runtime": "mtcp", "ok": true })) }),
        )
        .route(
            "/hello/{name}",
            get(|Path(name): Path<String>| async move { format!("Hello, {name}!") }),
        )
}

#[mtcp::main]
async fn main() -> Result<(), Box<dyn Error>> {
    examples::init_logger();
    let addr = env::args()
        .nth(1)
        .unwrap_or_else(|| "0.0.0.0:8080".to_string());

    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on {addr}");

    let app = app();
    let mut builder = auto::Builder::new(MtcpExecutor);
    builder
        .http1()
        .timer(MtcpTimer)
        .header_read_timeout(Duration::from_secs(10));
    builder.http2().timer(MtcpTimer);

    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        mtcp::spawn(async move {
            if let Err(e) = builder.serve_connection(MtcpIo::new(stream), service).await {
                log::debug!("axum: connection ended with an error: {e}");
            }
        });
    }
}

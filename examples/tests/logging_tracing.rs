//! A program whose first line under `#[mtcp::main]` is
//! `tracing_subscriber::fmt::init()` (as most tokio services start): it must
//! not panic with `SetLoggerError` (mtcp installs no logger), and its own
//! events, `log` records and mtcp's own debug lines (through the subscriber's
//! `log` bridge) must all appear.

mod logging;

use logging::check::{run_child_and_check, CHILD};

#[mtcp::main]
async fn main() {
    if std::env::var_os(CHILD).is_none() {
        run_child_and_check(&[
            "tracing subscriber up under mtcp::main",
            "a log record through the bridge",
            // mtcp's own line, from TcpListener::bind, through `log`.
            "mtcp: listening on",
        ]);
        return;
    }
    tracing_subscriber::fmt::init();
    tracing::info!("tracing subscriber up under mtcp::main");
    log::info!("a log record through the bridge");
    let listener = mtcp::net::TcpListener::bind("0.0.0.0:7001").await.unwrap();
    drop(listener);
}

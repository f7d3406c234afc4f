//! A program whose first line under `#[mtcp::main]` is `env_logger::init()`:
//! it must not panic (mtcp installs no logger), and its records and mtcp's
//! own debug lines must appear, filtered by `RUST_LOG`.

mod logging;

use logging::check::{run_child_and_check, CHILD};

#[mtcp::main]
async fn main() {
    if std::env::var_os(CHILD).is_none() {
        run_child_and_check(&[
            "env_logger up under mtcp::main",
            // mtcp's own line, from TcpListener::bind.
            "mtcp: listening on",
        ]);
        return;
    }
    env_logger::init();
    log::info!("env_logger up under mtcp::main");
    let listener = mtcp::net::TcpListener::bind("0.0.0.0:7002").await.unwrap();
    drop(listener);
}

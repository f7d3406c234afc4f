//! A server that closes first (as HTTP/1.0 without keep-alive does): each
//! connection gets one line and is closed at once, so TIME-WAIT lands on
//! this side. The line carries this core's counters at accept time, so a
//! client can see how TIME-WAIT is held:
//!
//! ```text
//! hello sockets=2 time_wait=19999 reused=1 overflow=0 table_full_resets=0 tw_reset=0
//! ```
//!
//! Listens on the address given as the first argument (default
//! `0.0.0.0:8080`).
//!
//! ```sh
//! MTCP_DEVICE=af_packet:veth0 MTCP_ADDR=10.99.0.2/24 MTCP_MAX_CONNECTIONS=4096 \
//!     cargo run --release -p examples --bin close_first
//! ```

use mtcp::io::AsyncWriteExt;
use mtcp::net::TcpListener;

use std::env;
use std::error::Error;

#[mtcp::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let addr = env::args()
        .nth(1)
        .unwrap_or_else(|| "0.0.0.0:8080".to_string());

    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on {addr}");

    loop {
        let (mut socket, _) = listener.accept().await?;
        let st = mtcp::net::core_stats()?;
        let line = format!(
            "hello sockets={} time_wait={} reused={} overflow={} table_full_resets={} tw_reset={}\n",
            st.sockets,
            st.time_wait,
            st.tcp.time_wait_reused,
            st.tcp.time_wait_overflow,
            st.tcp.table_full_resets,
            st.tcp.time_wait_reset,
        );
        mtcp::spawn(async move {
            if let Err(e) = socket.write_all(line.as_bytes()).await {
                eprintln!("failed to write to socket; err = {e:?}");
            }
            // Dropping the stream closes it: our FIN goes first.
        });
    }
}

//! The `mtcp` system: two mtcp stacks (client and server, each on its own
//! pinned core) over the in-memory NIC.
//!
//! Integration point. The mtcp runtime is not usable yet, so this system
//! reports itself unavailable and `compare` lists it as skipped. To plug it
//! in, replace this file's body only:
//!
//! - `available()` returns `Ok(())` (or why the in-memory NIC cannot run);
//! - `run()` starts a server runtime and a client runtime, one thread each
//!   per core ([`crate::sys::placement`] gives the cores), connected by the
//!   in-memory NIC, honouring `config.poll`;
//! - the server accepts and spawns the same generic loops as the tokio
//!   system, on `mtcp::net::TcpStream` (which implements tokio's
//!   `AsyncRead`/`AsyncWrite`): [`crate::loops::echo_server`],
//!   [`crate::loops::request_once_server`], [`crate::loops::bulk_receiver`];
//! - the client runs [`crate::loops::echo_client`],
//!   [`crate::loops::connect_client`] or [`crate::loops::bulk_sender`]
//!   inside a [`crate::loops::Window`] (deadlines are `std::time::Instant`
//!   checks, no tokio timers), merges [`crate::loops::TxStats`] and turns
//!   them into a [`Measurement`] with `echo_measurement` /
//!   `connect_measurement` / [`crate::loops::BulkStats::measurement`];
//! - `idle` opens `config.conns` connections and reports the stacks' memory
//!   per connection (`Metrics::Idle`), with `kernel_bytes_per_conn: None`
//!   since no socket state lives in the kernel.

use crate::measurement::Measurement;
use crate::scenario::ScenarioConfig;
use crate::System;

/// Why the mtcp system cannot run yet.
const NOT_INTEGRATED: &str = "mtcp runtime not integrated yet";

/// The mtcp client/server pair over the in-memory NIC.
#[derive(Debug, Clone, Copy, Default)]
pub struct MtcpSystem;

impl MtcpSystem {
    /// The mtcp system.
    pub fn new() -> MtcpSystem {
        MtcpSystem
    }
}

impl System for MtcpSystem {
    fn name(&self) -> &'static str {
        "mtcp"
    }

    fn available(&self) -> Result<(), String> {
        Err(NOT_INTEGRATED.to_string())
    }

    fn run(&self, _config: &ScenarioConfig) -> Result<Measurement, String> {
        Err(NOT_INTEGRATED.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_why_it_cannot_run() {
        let m = MtcpSystem::new();
        assert_eq!(m.name(), "mtcp");
        assert_eq!(m.available(), Err(NOT_INTEGRATED.to_string()));
    }
}

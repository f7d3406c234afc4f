//! Benchmarks of mtcp against tokio on the kernel and other peers.
//!
//! The `compare` binary runs one scenario ([`Scenario`]) on every selected
//! [`System`], alternating them, and prints one JSON line per system or a
//! markdown table. Each system is a client/server pair; the client and
//! server bodies are the runtime-agnostic loops of [`loops`], so a new
//! system only has to open, accept and spread connections. `plot` turns the
//! JSON lines into SVG charts.
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod cli;
pub mod datagram;
pub mod loops;
pub mod measurement;
pub mod monoio_peer;
pub mod mtcp_peer;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod smoltcp_peer;
pub mod sys;
pub mod system;
pub mod tokio_idle;
pub mod tokio_peer;
pub mod veth_http;

pub use measurement::{Latency, Measurement, Metrics};
pub use report::Outcome;
pub use scenario::{PollMode, Scenario, ScenarioConfig};
pub use system::System;

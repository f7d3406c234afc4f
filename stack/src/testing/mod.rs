//! Test support shipped behind the `testing` feature (off by default): the
//! packetdrill-like script runner ([`scenario`]) that `tests/tcp_scenarios.rs`
//! and `tests/scenarios/*.pkt` use. Nothing here is part of the stack's
//! runtime API; it drives a [`TcpStack`](crate::tcp::TcpStack) only through
//! its public socket calls.

pub mod scenario;

pub use scenario::{run_script, Scenario, ScenarioError};

//! The user-level TCP/IP stack behind mtcp.
//!
//! Everything below the socket API lives here, with no async and no threads:
//! wire formats ([`wire`]), the NIC layer and its backends ([`nic`]), ARP,
//! IPv4 and ICMP, the TCP engine, flow table, timers, TX priority lists, flow
//! events, per-core pools and statistics. Time is always passed in
//! ([`time::Instant`]) and randomness is seeded ([`rand::Rng`]), so the whole
//! stack is deterministic and testable without a clock.
//!
//! The public surface is the wire formats, the NIC layer, the interface and
//! [`stack::Stack`] entry points, the socket-level TCP ([`tcp::TcpStack`])
//! and UDP APIs, configuration, statistics, time and the seeded RNG. The
//! engine's machinery (TCB slab, flow table, timers, TX lists, buffers, the
//! algorithms) is crate-private. The `testing` feature adds the `testing` module
//! (the script runner of `tests/scenarios/`); it is for this crate's tests.
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod config;
pub mod handoff;
pub mod iface;
pub mod nic;
pub mod rand;
pub mod stack;
pub mod stats;
pub mod tcp;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod udp;
pub mod wake_list;
pub mod wire;

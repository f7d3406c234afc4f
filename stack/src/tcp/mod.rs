//! The TCP engine: RFC 9293 state machine built the mTCP way (per-core flow
//! table, TCB slab, chunk pool, TX priority lists, batched flow events, a
//! millisecond timer wheel and a coarse timer list).
//!
//! [`TcpStack`] is the whole engine of one core, sans-IO: it takes `now` and
//! [`TcpRepr`](crate::wire::tcp::TcpRepr) values, and hands segments back
//! through the `emit` callback of [`TcpStack::dispatch`]. Where things live:
//!
//! | file | what |
//! |---|---|
//! | `stack.rs` | [`TcpStack`], [`TcpConfig`], [`TcpStats`], timers and events entry points |
//! | `socket.rs` | the socket API (listen, accept, connect, send, recv, close, …) and [`TcpError`] |
//! | `input.rs` | RFC 9293 §3.10.7 SEGMENT ARRIVES, RFC 5961, PAWS, SYN cookies |
//! | `output.rs` | dispatch of the control / ACK / send lists, Nagle, SWS, SACK recovery output |
//! | `timeout.rs` | RTO with backoff, delayed ACK, persist, keepalive |
//! | `icmp.rs` | ICMP errors for TCP: RFC 5927 checks, path MTU (RFC 1191), soft errors |
//! | `tcb.rs` | the TCB (hot/cold parts, send/receive sequence spaces) and its slab |
//! | `buffer.rs` | the chunk pool and the send/receive chunk chains |
//! | `flow_table.rs`, `timer.rs`, `tx_list.rs`, `events.rs` | per-core machinery |
//! | `scenario.rs` | the packetdrill-like script runner used by `tests/scenarios/` |
//! | `congestion/`, `rtt.rs`, `sack.rs`, `reassembly.rs`, `isn.rs`, `syncookie.rs` | pure algorithms |

// Algorithms, each pure and separately tested.
pub mod congestion;
pub mod isn;
pub mod reassembly;
pub mod rtt;
pub mod sack;
pub mod syncookie;

// Per-core machinery and the state machine.
pub mod buffer;
mod close_all;
pub mod events;
pub mod flow_table;
mod icmp;
mod input;
mod output;
#[cfg(test)]
mod pool_tests;
pub mod scenario;
pub mod socket;
pub mod stack;
pub mod state;
#[cfg(test)]
mod state_tests;
pub mod tcb;
pub mod time_wait;
mod timeout;
pub mod timer;
pub mod tx_list;

pub use events::FlowEvents;
pub use output::Emit;
pub use socket::TcpError;
pub use stack::{ConfigError, CongestionKind, KeepaliveConfig, TcpConfig, TcpStack, TcpStats};
pub use state::State;
pub use tcb::SocketId;

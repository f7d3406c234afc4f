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
//! | `types.rs` | the shared basic types: [`SocketId`], [`TcpError`], the TCB flag bits (a leaf module) |
//! | `socket.rs` | the socket API (listen, accept, connect, send, recv, close, …) |
//! | `input.rs` | RFC 9293 §3.10.7 SEGMENT ARRIVES, RFC 5961, PAWS, SYN cookies |
//! | `output.rs` | dispatch of the control / ACK / send lists, Nagle, SWS, SACK recovery output |
//! | `timeout.rs` | RTO with backoff, delayed ACK, persist, keepalive |
//! | `lifecycle.rs` | connection set-up, accept queue entry, abort, CLOSED, TIME-WAIT, slot release |
//! | `icmp.rs` | ICMP errors for TCP: RFC 5927 checks, path MTU (RFC 1191), soft errors |
//! | `tcb.rs` | the TCB, a `Connection` (one block, parts grouped by use; send/receive sequence spaces), and its slab |
//! | `effects.rs` | what a connection call may touch (`Cx`: config, pool, stats, …) and the `Effects` it returns, applied by the stack in one place |
//! | `buffer.rs` | the chunk pool and the send/receive chunk chains |
//! | `timer.rs` | the timer wheel, the TIME-WAIT list and a connection's `Timers` (the one place its deadlines change) |
//! | `flow_table.rs`, `accept_queue.rs`, `tx_list.rs`, `events.rs` | per-core machinery |
//! | `congestion/`, `rtt.rs`, `sack.rs`, `reassembly.rs`, `isn.rs`, `syncookie.rs` | pure algorithms |

// Algorithms, each pure and separately tested.
pub(crate) mod congestion;
pub(crate) mod isn;
pub(crate) mod reassembly;
pub(crate) mod rtt;
pub(crate) mod sack;
pub(crate) mod syncookie;

// Per-core machinery and the state machine.
pub(crate) mod accept_queue;
pub(crate) mod buffer;
mod close_all;
mod effects;
pub(crate) mod events;
pub(crate) mod flow_table;
mod icmp;
mod input;
mod lifecycle;
mod output;
#[cfg(test)]
mod pool_tests;
pub(crate) mod socket;
pub(crate) mod stack;
pub(crate) mod state;
#[cfg(test)]
mod state_tests;
pub(crate) mod tcb;
pub(crate) mod time_wait;
mod timeout;
pub(crate) mod timer;
pub(crate) mod tx_list;
pub(crate) mod types;
mod user;

pub use events::FlowEvents;
pub use output::Emit;
pub use stack::{
    ConfigError, CongestionKind, DropStats, Footprint, KeepaliveConfig, TcpConfig, TcpStack,
    TcpStats,
};
pub use state::State;
pub use types::{SocketId, TcpError};

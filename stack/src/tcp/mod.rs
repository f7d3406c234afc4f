//! The TCP engine: RFC 9293 state machine built the mTCP way (per-core flow
//! table, TCB slab, chunk pool, TX priority lists, batched flow events, a
//! millisecond timer wheel and a coarse timer list).

// Algorithms, each pure and separately tested.
pub mod congestion;
pub mod isn;
pub mod reassembly;
pub mod rtt;
pub mod sack;
pub mod syncookie;

// Per-core machinery and the state machine.
pub mod buffer;
pub mod events;
pub mod flow_table;
mod input;
mod output;
pub mod scenario;
pub mod socket;
pub mod stack;
pub mod state;
#[cfg(test)]
mod state_tests;
pub mod tcb;
mod timeout;
pub mod timer;
pub mod tx_list;

pub use events::FlowEvents;
pub use output::Emit;
pub use socket::TcpError;
pub use stack::{ConfigError, CongestionKind, KeepaliveConfig, TcpConfig, TcpStack, TcpStats};
pub use state::State;
pub use tcb::SocketId;

//! TCP networking on the core's user-level stack: [`TcpListener`] and
//! [`TcpStream`], shaped like tokio's `tokio::net`.
//!
//! Every call is a function call into the current core's
//! [`Stack`](mtcp_stack::stack::Stack); no system call is made. The stack
//! runs as the core's reactor: it receives at the start of each tick and
//! sends what the tick's tasks wrote at its end.

mod builder_ext;
pub(crate) mod config;
pub(crate) mod driver;
mod listener;
mod socket;
mod split;
mod stream;

pub use config::NetConfig;
pub use listener::{TcpListener, DEFAULT_BACKLOG};
pub use stream::TcpStream;

/// TCP stream halves, as in `tokio::net::tcp`.
pub mod tcp {
    pub use super::split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
}

//! tokio-style programs ported to mtcp, and what they share: a `RUST_LOG`
//! stderr logger each program installs itself ([`init_logger`]).

pub mod http_hello;
mod logger;

pub use logger::init_logger;

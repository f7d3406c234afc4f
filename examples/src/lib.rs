//! tokio-style programs ported to mtcp, and what they share: a `RUST_LOG`
//! stderr logger each program installs itself ([`init_logger`]).

mod logger;

pub use logger::init_logger;

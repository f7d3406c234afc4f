//! tokio-style programs ported to mtcp.

//! `#[mtcp::main]` and `#[mtcp::test]`.

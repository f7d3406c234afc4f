//! `TcpStack::input` on an established connection (after a valid
//! handshake); nothing leaks after close + drain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtcp_fuzz::tcp_harness::run_established(data));

//! `TcpStack::input` on a listener; nothing leaks after close + drain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtcp_fuzz::tcp_harness::run_listener(data));

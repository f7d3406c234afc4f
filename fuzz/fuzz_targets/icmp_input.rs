//! ICMP errors about an established connection's own segments; data still
//! delivered intact, nothing leaked after close + drain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtcp_fuzz::icmp_harness::run(data));

//! A whole `Stack` fed raw and fuzzer-described frames; nothing leaks after
//! draining.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtcp_fuzz::iface_harness::run(data));

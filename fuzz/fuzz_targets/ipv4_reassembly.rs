//! The IPv4 reassembly pool against a reference model of the fragments
//! supplied; every context free after the timeout.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtcp_fuzz::reassembly_harness::run(data));

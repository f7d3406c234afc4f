//! Every `wire` parser on arbitrary bytes; accepted input round-trips.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtcp_fuzz::wire_checks::check_all(data));

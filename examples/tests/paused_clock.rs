//! The test clock, as mini-redis's tests use it: `tokio_src/paused_kv.rs`
//! (a key-value server with expiring keys, a purge task driven by
//! `time::sleep_until`, and mini-redis-shaped tests calling `time::pause`,
//! `time::advance` and `#[tokio::test(start_paused = true)]`) runs as
//! written against tokio on the kernel's loopback, and ported by renaming
//! against mtcp on the user-level stack's loopback, where the TCP
//! connection's timers run on the same paused clock.

mod original {
    include!("tokio_src/paused_kv.rs");
}

mod ported {
    include!(concat!(env!("OUT_DIR"), "/paused_kv.rs"));
}

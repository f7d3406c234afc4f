//! Benchmarks of mtcp against tokio on the kernel and other peers.

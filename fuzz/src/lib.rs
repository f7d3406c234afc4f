//! Shared code of the mtcp fuzz targets (see `docs/fuzzing.md`).
//!
//! Each target in `fuzz_targets/` is a thin wrapper over one `run` here, so
//! the harnesses can also be driven by the seed generator
//! (`examples/seeds.rs`).

pub mod frames;
pub mod icmp_harness;
pub mod iface_harness;
pub mod model;
pub mod reassembly_harness;
pub mod tcp_harness;
pub mod wire_checks;

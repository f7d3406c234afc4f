//! Per-core statistics counters.

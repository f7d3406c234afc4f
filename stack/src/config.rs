//! Configuration from the environment (MTCP_* variables).

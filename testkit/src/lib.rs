//! Test support shared by every mtcp test suite (a dev-only crate, never
//! published, no dependency on the stack):
//!
//! * [`netns`]: the network namespaces of `scripts/netns.sh`, the suites'
//!   lock that tears them down, threads inside a namespace, and the skip
//!   policy (a clear `SKIP` line without root, a failure when
//!   `MTCP_REQUIRE_NETNS=1`).
//! * [`alloc`]: a global allocator that counts allocations while armed,
//!   for the zero-allocation steady-state tests.

pub mod alloc;
pub mod netns;

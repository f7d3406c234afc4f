//! mtcp: an async runtime whose reactor is a user-level TCP/IP stack.
//!
//! One thread per core; each core owns a NIC queue, a [`mtcp_stack`] stack
//! and an executor, so a socket call is a plain function call.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub use mtcp_stack as stack;

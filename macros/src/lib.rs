//! `#[mtcp::main]` and `#[mtcp::test]`.
//!
//! Use them through the `mtcp` crate. Built like tokio-macros' `entry.rs`:
//! the options are parsed into a configuration with their spans, then
//! checked; on an error the function is still emitted (with a default
//! configuration) next to a `compile_error!`, so editors keep working.
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]

mod entry;

use proc_macro::TokenStream;

/// Runs an async `main` on an mtcp runtime. Options: `cores = N` (run the
/// body once on each of `N` cores), and for tokio compatibility
/// `flavor = "current_thread" | "multi_thread"`, `worker_threads = N` (they
/// do not replicate the body), `start_paused = true` (each core's body
/// starts with `mtcp::time::pause()`) and `crate = "path"`. See
/// `mtcp::main`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::main(args.into(), item.into(), entry::Kind::Main).into()
}

/// Runs an async test on an mtcp runtime; same options as `main`. See
/// `mtcp::test`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::main(args.into(), item.into(), entry::Kind::Test).into()
}

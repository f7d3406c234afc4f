//! A stack sized for a million connections commits almost no memory until
//! connections arrive: the TCB slab, the flow table, the timer wheel and the
//! TIME-WAIT table are reserved (or allocated zeroed) at start and touched
//! only as they are used. One test per binary, so nothing else moves RSS.

use mtcp_stack::tcp::{TcpConfig, TcpStack};
use mtcp_stack::wire::ipv4::Ipv4Address;

/// Resident bytes of this process (`/proc/self/statm`, second field).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm resident field");
    pages * 4096
}

#[test]
fn million_connection_stack_commits_little_memory() {
    let cfg = TcpConfig {
        max_connections: 1 << 20,
        max_time_wait: 1 << 20,
        seed: 1,
        ..TcpConfig::default()
    };
    let before = rss_bytes();
    let s = TcpStack::new(cfg, &[Ipv4Address::new(10, 0, 0, 1)]).unwrap();
    let after = rss_bytes();
    let grown = after.saturating_sub(before);
    println!(
        "RSS before {} KiB, after building a 1 M-connection stack {} KiB (+{} KiB)",
        before / 1024,
        after / 1024,
        grown / 1024
    );
    assert_eq!(s.sockets_built(), 0);
    println!(
        "per connection: TCB {} B, flow-table buckets {} B (two per connection); \
         per TIME-WAIT entry: {} B",
        TcpStack::footprint().tcb,
        TcpStack::footprint().flow_buckets,
        TcpStack::footprint().time_wait_entry
    );
    // Eagerly built, the slab alone would be about 1 GiB and the flow
    // table 40 MiB; the chunk pool's free list (64 KiB) is the only part
    // touched at start.
    assert!(grown < 4 << 20, "RSS grew by {grown} bytes");
    drop(s);
}

//! The engine-driving harness shared by the whole-stack tests (included with
//! `mod support;`): stack configurations, a pair of stacks over the in-memory
//! NIC, the virtual-time tick, and a TCP segment template with its frame.
//!
//! Each test binary uses a different part of it, so unused items are not
//! warned about here.
#![allow(dead_code)]

use std::net::SocketAddrV4;

use mtcp_stack::nic::memory::{MemoryNic, MemoryNicConfig};
use mtcp_stack::nic::{Frame, FramePool};
use mtcp_stack::stack::{Stack, StackConfig};
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::ethernet::{EtherType, EthernetAddress, EthernetRepr};
use mtcp_stack::wire::frame::emit_tcp_frame;
use mtcp_stack::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Repr};
use mtcp_stack::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use mtcp_stack::wire::SeqNumber;

/// The server's address in the whole-stack tests.
pub const SERVER: [u8; 4] = [10, 0, 0, 1];
/// The client's address.
pub const CLIENT: [u8; 4] = [10, 0, 0, 2];

/// A stack at `addr`/24 with `max_connections` TCBs, `chunk_count` buffer chunks
/// and `frames` NIC frames; everything else default.
pub fn stack_cfg(
    addr: [u8; 4],
    max_connections: usize,
    chunk_count: usize,
    frames: usize,
) -> StackConfig {
    let mut c = StackConfig {
        addr: Ipv4Cidr {
            address: Ipv4Address::from(addr),
            prefix_len: 24,
        },
        ..StackConfig::default()
    };
    c.tcp.max_connections = max_connections;
    c.tcp.chunk_count = chunk_count;
    c.frames = frames;
    c
}

/// `ip:port`.
pub fn addr(ip: [u8; 4], port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Address::from(ip), port)
}

/// Server and client stacks over a memory NIC pair of `queues` queues: one
/// stack per queue on each side, built from `server()` and `client()`.
pub fn memory_pair(
    queues: usize,
    server: impl Fn() -> StackConfig,
    client: impl Fn() -> StackConfig,
) -> (Vec<Stack>, Vec<Stack>) {
    let (a, b) = MemoryNic::pair_with(&MemoryNicConfig {
        queues,
        ..MemoryNicConfig::default()
    })
    .unwrap();
    let servers = a
        .split_boxed()
        .into_iter()
        .map(|q| Stack::new(server(), q).unwrap())
        .collect();
    let clients = b
        .split_boxed()
        .into_iter()
        .map(|q| Stack::new(client(), q).unwrap())
        .collect();
    (servers, clients)
}

/// One poll and flush of every stack, then time moves on by `step`.
pub fn tick(stacks: &mut [&mut Stack], now: &mut Instant, step: Duration) {
    for s in stacks.iter_mut() {
        s.poll(*now);
        s.flush(*now);
    }
    *now += step;
}

/// A bare SYN (no options, window 65535) from `src_port` to `dst_port`.
pub fn syn(src_port: u16, dst_port: u16, seq: u32) -> TcpRepr<'static> {
    TcpRepr {
        src_port,
        dst_port,
        seq: SeqNumber(seq),
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 65535,
        urgent: 0,
        options: TcpOptions::default(),
        payload: &[],
    }
}

/// `seg` from `src` to `dst` in one Ethernet frame (`eth`, DF set, TTL 64,
/// IPv4 identification `ident`), checksums filled, in a frame of `pool`.
pub fn tcp_frame(
    pool: &mut FramePool,
    eth: &EthernetRepr,
    src: Ipv4Address,
    dst: Ipv4Address,
    ident: u16,
    seg: &TcpRepr<'_>,
) -> Frame {
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: seg.buffer_len(),
        ttl: 64,
        ident,
        dont_frag: true,
        dscp_ecn: 0,
    };
    let mut f = pool.alloc().unwrap();
    let len = emit_tcp_frame(f.buffer_mut(), eth, &ip, seg, true).unwrap();
    f.set_len(len);
    f
}

/// The Ethernet header of an IPv4 frame from `src` to `dst`.
pub fn ipv4_eth(src: EthernetAddress, dst: EthernetAddress) -> EthernetRepr {
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype: EtherType::Ipv4,
        vlan: None,
    }
}

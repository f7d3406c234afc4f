//! Path MTU discovery end to end (RFC 1191): two whole stacks over the
//! in-memory NIC with a "router" between them whose next hop carries at
//! most 1000 bytes. Every TCP segment carries DF, so the router drops the
//! larger ones and answers with ICMP Fragmentation Needed (MTU 1000); the
//! stacks shrink their MSS and resend, and a 20 kB echo completes. The
//! same path without the ICMP (a black hole) does not: the test can fail.

use std::net::SocketAddrV4;

use mtcp_stack::nic::memory::{MemoryNic, MemoryQueue};
use mtcp_stack::nic::{Frame, FramePool, NicQueue};
use mtcp_stack::stack::{Stack, StackConfig};
use mtcp_stack::tcp::State;
use mtcp_stack::tcp::TcpError;
use mtcp_stack::time::{Duration, Instant};
use mtcp_stack::wire::checksum;
use mtcp_stack::wire::ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use mtcp_stack::wire::icmp::{unreachable, Icmpv4Packet};
use mtcp_stack::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr};

mod support;

use support::{CLIENT, SERVER};
const ROUTER_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 254);
const ROUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0xfe]);
const PATH_MTU: usize = 1000;

fn cfg(addr: [u8; 4]) -> StackConfig {
    let mut c = support::stack_cfg(addr, 64, 1024, 1024);
    c.tcp.seed = u64::from(addr[3]);
    c
}

/// A bridge between two ports whose far side has a 1000-byte MTU.
struct Router {
    left: MemoryQueue,
    right: MemoryQueue,
    pool: FramePool,
    /// Answer too-large DF packets with Frag-Needed (else drop silently).
    send_icmp: bool,
    too_big: u64,
    icmp_sent: u64,
    largest_forwarded: usize,
}

impl Router {
    /// Moves what each side sent to the other, one burst each way.
    fn forward(&mut self) {
        let mut frames = Vec::new();
        let mut back = Vec::new();
        let mut fwd = Vec::new();
        for dir in 0..2 {
            let (from, _) = if dir == 0 {
                (&mut self.left, &mut self.right)
            } else {
                (&mut self.right, &mut self.left)
            };
            from.rx_burst(&mut self.pool, &mut frames, 256);
            for f in frames.drain(..) {
                match self.judge(&f) {
                    Some(icmp) => {
                        self.pool.free(f);
                        if let Some(icmp) = icmp {
                            back.push(icmp);
                        }
                    }
                    None => {
                        self.largest_forwarded = self.largest_forwarded.max(f.len() - 14);
                        fwd.push(f);
                    }
                }
            }
            let (from, to) = if dir == 0 {
                (&mut self.left, &mut self.right)
            } else {
                (&mut self.right, &mut self.left)
            };
            to.tx_burst(&mut fwd, &mut self.pool);
            from.tx_burst(&mut back, &mut self.pool);
            for f in fwd.drain(..).chain(back.drain(..)) {
                self.pool.free(f);
            }
        }
    }

    /// `None`: forward. `Some(reply)`: drop, with Frag-Needed when on.
    fn judge(&mut self, f: &Frame) -> Option<Option<Frame>> {
        let bytes = f.as_slice();
        let eth = EthernetRepr::parse(&EthernetFrame::new_checked(bytes).ok()?).ok()?;
        if eth.ethertype != EtherType::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(&bytes[14..]).ok()?;
        if usize::from(ip.total_len()) <= PATH_MTU || !ip.dont_frag() {
            return None;
        }
        self.too_big += 1;
        if !self.send_icmp {
            return Some(None);
        }
        self.icmp_sent += 1;
        // RFC 1191 §4: type 3 code 4, next-hop MTU, the IP header and 8
        // bytes of the datagram.
        let quote = &bytes[14..14 + ip.header_len() + 8];
        let icmp_len = 8 + quote.len();
        let reply = Ipv4Repr {
            src_addr: ROUTER_IP,
            dst_addr: ip.src_addr(),
            protocol: IpProtocol::Icmp,
            payload_len: icmp_len,
            ttl: 64,
            ident: 1,
            dont_frag: false,
            dscp_ecn: 0,
        };
        let mut out = self.pool.alloc()?;
        out.set_len(14 + reply.buffer_len());
        let buf = out.as_mut_slice();
        let mut e = EthernetFrame::new_unchecked(&mut *buf);
        EthernetRepr {
            src_addr: ROUTER_MAC,
            dst_addr: eth.src_addr,
            ethertype: EtherType::Ipv4,
            vlan: None,
        }
        .emit(&mut e);
        let mut p = Ipv4Packet::new_unchecked(e.payload_mut());
        reply.emit(&mut p, true);
        let m = p.payload_mut();
        m[..8].copy_from_slice(&[3, unreachable::FRAG_NEEDED, 0, 0, 0, 0, 0, 0]);
        m[6..8].copy_from_slice(&(PATH_MTU as u16).to_be_bytes());
        m[8..].copy_from_slice(quote);
        let ck = checksum::finish(checksum::data(m));
        Icmpv4Packet::new_unchecked(m).set_checksum(ck);
        Some(Some(out))
    }
}

fn setup(send_icmp: bool) -> (Stack, Stack, Router) {
    let (a, r1) = MemoryNic::pair(1, 1024);
    let (r2, b) = MemoryNic::pair(1, 1024);
    let server = Stack::new(cfg(SERVER), a.split_boxed().remove(0)).unwrap();
    let client = Stack::new(cfg(CLIENT), b.split_boxed().remove(0)).unwrap();
    let router = Router {
        left: r1.split().remove(0),
        right: r2.split().remove(0),
        pool: FramePool::new(2048),
        send_icmp,
        too_big: 0,
        icmp_sent: 0,
        largest_forwarded: 0,
    };
    (server, client, router)
}

/// A 20 kB echo over the router within `limit` of virtual time; returns
/// the bytes echoed back.
fn echo(server: &mut Stack, client: &mut Stack, router: &mut Router, limit: Duration) -> Vec<u8> {
    let port = 7;
    let l = server
        .tcp_mut()
        .listen(SocketAddrV4::new(Ipv4Address::from(SERVER), port), 8)
        .unwrap();
    let mut now = Instant::from_secs(1);
    let c = client
        .tcp_mut()
        .connect(
            now,
            SocketAddrV4::new(Ipv4Address::from(SERVER), port),
            None,
        )
        .unwrap();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 31 + 7) as u8).collect();
    let (mut sent, mut echoed_sent) = (0, 0);
    let mut at_server = Vec::new();
    let mut back = Vec::new();
    let mut s = None;
    let mut buf = vec![0u8; 65536];
    let end = now + limit;
    while now < end && back.len() < data.len() {
        for st in [&mut *server, &mut *client] {
            st.poll(now);
            st.flush(now);
        }
        router.forward();
        if s.is_none() {
            s = server.tcp_mut().accept(l).ok();
        }
        if client.tcp().state(c).unwrap() == State::Established && sent < data.len() {
            if let Ok(n) = client.tcp_mut().send(c, &data[sent..]) {
                sent += n;
            }
        }
        if let Some(s) = s {
            match server.tcp_mut().recv(s, &mut buf) {
                Ok(n) => at_server.extend_from_slice(&buf[..n]),
                Err(TcpError::WouldBlock) => {}
                Err(e) => panic!("server recv: {e}"),
            }
            if echoed_sent < at_server.len() {
                if let Ok(n) = server.tcp_mut().send(s, &at_server[echoed_sent..]) {
                    echoed_sent += n;
                }
            }
        }
        match client.tcp_mut().recv(c, &mut buf) {
            Ok(n) => back.extend_from_slice(&buf[..n]),
            Err(TcpError::WouldBlock) => {}
            Err(e) => panic!("client recv: {e}"),
        }
        now += Duration::from_micros(100);
    }
    assert_eq!(&back[..], &data[..back.len()], "bytes echoed intact");
    back
}

#[test]
fn echo_of_20kb_completes_over_a_1000_byte_path_thanks_to_frag_needed() {
    let (mut server, mut client, mut router) = setup(true);
    let back = echo(
        &mut server,
        &mut client,
        &mut router,
        Duration::from_secs(20),
    );
    assert_eq!(back.len(), 20_000);
    // Both directions hit the small link and learned it.
    assert!(router.icmp_sent >= 2, "{}", router.icmp_sent);
    assert!(router.largest_forwarded <= PATH_MTU);
    for (st, peer) in [(&server, CLIENT), (&client, SERVER)] {
        assert!(st.tcp().stats().pmtu_shrinks >= 1);
        assert_eq!(
            st.iface().stats().icmp_errors_received,
            st.tcp().stats().icmp_errors
        );
        assert_eq!(
            st.tcp()
                .path_mtu(Ipv4Address::from(peer), Instant::from_secs(2)),
            Some(PATH_MTU as u16)
        );
    }
}

#[test]
fn the_same_path_without_frag_needed_is_a_black_hole() {
    let (mut server, mut client, mut router) = setup(false);
    let back = echo(
        &mut server,
        &mut client,
        &mut router,
        Duration::from_secs(20),
    );
    assert!(back.len() < 20_000, "completed without PMTU discovery?");
    assert!(router.too_big > 0);
}

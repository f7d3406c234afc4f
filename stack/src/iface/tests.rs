//! Interface tests: ARP, ICMP echo, IPv4 filtering, routing, queueing.

use super::*;
use crate::time::Duration;
use crate::wire::checksum;
use proptest::prelude::*;

const OUR_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
const GW_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0xfe]);
const OUR_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const PEER_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const GW_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 254);
const FAR_IP: Ipv4Address = Ipv4Address::new(8, 8, 8, 8);

/// A sink that records frames, with an optional limit.
#[derive(Default)]
struct VecSink {
    frames: Vec<Vec<u8>>,
    limit: Option<usize>,
}

impl FrameSink for VecSink {
    fn with_frame<F: FnOnce(&mut [u8])>(&mut self, len: usize, fill: F) -> bool {
        if self.limit.is_some_and(|l| self.frames.len() >= l) {
            return false;
        }
        let mut buf = vec![0xcc; len];
        fill(&mut buf);
        self.frames.push(buf);
        true
    }
}

fn config() -> InterfaceConfig {
    InterfaceConfig::new(
        OUR_MAC,
        Ipv4Cidr {
            address: OUR_IP,
            prefix_len: 24,
        },
        Some(GW_IP),
    )
}

fn iface() -> Interface {
    Interface::new(config())
}

fn arp_frame(
    op: ArpOperation,
    sha: EthernetAddress,
    spa: Ipv4Address,
    tpa: Ipv4Address,
    dst: EthernetAddress,
) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: op,
        source_hardware_addr: sha,
        source_protocol_addr: spa,
        target_hardware_addr: if op == ArpOperation::Reply {
            dst
        } else {
            EthernetAddress([0; 6])
        },
        target_protocol_addr: tpa,
    };
    let mut buf = vec![0u8; ARP_FRAME_LEN];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: sha,
        dst_addr: dst,
        ethertype: EtherType::Arp,
        vlan: None,
    }
    .emit(&mut f);
    repr.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
    buf
}

fn ipv4_frame(
    src: Ipv4Address,
    dst: Ipv4Address,
    dst_mac: EthernetAddress,
    protocol: IpProtocol,
    payload: &[u8],
) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: payload.len(),
        ttl: 64,
        ident: 77,
        dont_frag: true,
        dscp_ecn: 0,
    };
    let mut buf = vec![0u8; IP_OFFSET + ip.buffer_len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: PEER_MAC,
        dst_addr: dst_mac,
        ethertype: EtherType::Ipv4,
        vlan: None,
    }
    .emit(&mut f);
    let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
    ip.emit(&mut p, true);
    p.payload_mut().copy_from_slice(payload);
    buf
}

fn echo_request(ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let icmp = Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    };
    let mut m = vec![0u8; icmp.buffer_len()];
    icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut m[..]), true);
    m
}

fn parse_arp(frame: &[u8]) -> (EthernetRepr, ArpRepr) {
    let f = EthernetFrame::new_checked(frame).unwrap();
    let eth = EthernetRepr::parse(&f).unwrap();
    assert_eq!(eth.ethertype, EtherType::Arp);
    (
        eth,
        ArpRepr::parse(&ArpPacket::new_checked(f.payload()).unwrap()).unwrap(),
    )
}

fn parse_ip(frame: &[u8]) -> (EthernetRepr, Ipv4Repr, &[u8]) {
    let f = EthernetFrame::new_checked(frame).unwrap();
    let eth = EthernetRepr::parse(&f).unwrap();
    let p = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    let ip = Ipv4Repr::parse(&p, true).unwrap();
    (eth, ip, p.payload())
}

fn send(
    iface: &mut Interface,
    now: Instant,
    dst: Ipv4Address,
    tag: u8,
    out: &mut VecSink,
) -> Result<Sent, SendError> {
    iface.send_ipv4(
        now,
        dst,
        IpProtocol::Udp,
        4,
        |b| b.copy_from_slice(&[tag; 4]),
        out,
    )
}

/// Host `n` of our /24.
fn on_link(n: u32) -> Ipv4Address {
    Ipv4Address::from(u32::from(OUR_IP) & 0xffff_ff00 | n)
}

fn t(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

// ---- ARP ----

#[test]
fn arp_request_answered_and_requester_learned() {
    let mut i = iface();
    let mut out = VecSink::default();
    let req = arp_frame(
        ArpOperation::Request,
        PEER_MAC,
        PEER_IP,
        OUR_IP,
        EthernetAddress::BROADCAST,
    );
    assert_eq!(i.receive(t(1), &req, &mut out), Received::Nothing);
    assert_eq!(out.frames.len(), 1);
    let (eth, arp) = parse_arp(&out.frames[0]);
    assert_eq!(eth.dst_addr, PEER_MAC);
    assert_eq!(eth.src_addr, OUR_MAC);
    assert_eq!(
        arp,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: OUR_MAC,
            source_protocol_addr: OUR_IP,
            target_hardware_addr: PEER_MAC,
            target_protocol_addr: PEER_IP,
        }
    );
    assert_eq!(i.arp_cache().lookup(PEER_IP, t(1)), Some(PEER_MAC));
    assert_eq!(i.stats().arp_replies_sent, 1);
}

#[test]
fn arp_request_for_someone_else_ignored() {
    let mut i = iface();
    let mut out = VecSink::default();
    let req = arp_frame(
        ArpOperation::Request,
        PEER_MAC,
        PEER_IP,
        Ipv4Address::new(10, 0, 0, 9),
        EthernetAddress::BROADCAST,
    );
    assert_eq!(i.receive(t(1), &req, &mut out), Received::Nothing);
    assert!(out.frames.is_empty());
    assert_eq!(i.arp_cache().lookup(PEER_IP, t(1)), None);
}

#[test]
fn arp_from_known_peer_updates_entry() {
    let mut i = iface();
    let mut out = VecSink::default();
    i.arp_cache_mut().insert(PEER_IP, PEER_MAC, t(0));
    let moved = EthernetAddress([2, 0, 0, 0, 0, 0x33]);
    // A gratuitous ARP from the peer (not addressed to us) refreshes it.
    let garp = arp_frame(
        ArpOperation::Request,
        moved,
        PEER_IP,
        PEER_IP,
        EthernetAddress::BROADCAST,
    );
    i.receive(t(1), &garp, &mut out);
    assert_eq!(i.arp_cache().lookup(PEER_IP, t(1)), Some(moved));
    assert!(out.frames.is_empty());
}

#[test]
fn arp_probe_answered_not_learned() {
    let mut i = iface();
    let mut out = VecSink::default();
    let probe = arp_frame(
        ArpOperation::Request,
        PEER_MAC,
        Ipv4Address::UNSPECIFIED,
        OUR_IP,
        EthernetAddress::BROADCAST,
    );
    i.receive(t(1), &probe, &mut out);
    assert_eq!(out.frames.len(), 1);
    assert!(i.arp_cache().is_empty(t(1)));
}

#[test]
fn arp_with_multicast_sender_is_malformed() {
    let mut i = iface();
    let mut out = VecSink::default();
    let bad = arp_frame(
        ArpOperation::Request,
        EthernetAddress::BROADCAST,
        PEER_IP,
        OUR_IP,
        EthernetAddress::BROADCAST,
    );
    assert_eq!(
        i.receive(t(1), &bad, &mut out),
        Received::Dropped(DropReason::Malformed)
    );
    assert!(out.frames.is_empty());
}

#[test]
fn resolution_learns_and_flushes_queue_in_order() {
    let mut i = iface();
    let mut out = VecSink::default();
    for tag in 1..=3 {
        assert_eq!(send(&mut i, t(1), PEER_IP, tag, &mut out), Ok(Sent::Queued));
    }
    // One request only, not one per packet.
    assert_eq!(out.frames.len(), 1);
    let (eth, arp) = parse_arp(&out.frames[0]);
    assert!(eth.dst_addr.is_broadcast());
    let ArpRepr::EthernetIpv4 {
        operation,
        target_protocol_addr,
        source_protocol_addr,
        ..
    } = arp;
    assert_eq!(
        (operation, target_protocol_addr, source_protocol_addr),
        (ArpOperation::Request, PEER_IP, OUR_IP)
    );
    assert_eq!(i.arp_cache().queued(), 3);

    let reply = arp_frame(ArpOperation::Reply, PEER_MAC, PEER_IP, OUR_IP, OUR_MAC);
    assert_eq!(i.receive(t(1), &reply, &mut out), Received::Nothing);
    assert_eq!(out.frames.len(), 4);
    for (k, frame) in out.frames[1..].iter().enumerate() {
        let (eth, ip, payload) = parse_ip(frame);
        assert_eq!(eth.dst_addr, PEER_MAC);
        assert_eq!(eth.src_addr, OUR_MAC);
        assert_eq!(ip.dst_addr, PEER_IP);
        assert_eq!(ip.src_addr, OUR_IP);
        assert_eq!(payload, &[k as u8 + 1; 4]);
    }
    assert_eq!(i.arp_cache().queued(), 0);
    assert_eq!(i.stats().arp_flushed, 3);
    assert_eq!(i.next_poll_at(), None);
    // Now known: sent at once.
    assert_eq!(send(&mut i, t(2), PEER_IP, 9, &mut out), Ok(Sent::Sent));
    assert_eq!(parse_ip(&out.frames[4]).0.dst_addr, PEER_MAC);
}

#[test]
fn unsolicited_reply_not_learned() {
    let mut i = iface();
    let mut out = VecSink::default();
    let reply = arp_frame(
        ArpOperation::Reply,
        PEER_MAC,
        PEER_IP,
        Ipv4Address::new(10, 0, 0, 50),
        PEER_MAC,
    );
    // Addressed to another MAC: dropped at Ethernet.
    assert_eq!(
        i.receive(t(1), &reply, &mut out),
        Received::Dropped(DropReason::NotForUsMac)
    );
    assert!(i.arp_cache().is_empty(t(1)));
}

#[test]
fn stale_entry_still_used_and_reprobed_by_unicast() {
    let mut i = iface();
    let mut out = VecSink::default();
    let reply = arp_frame(ArpOperation::Reply, PEER_MAC, PEER_IP, OUR_IP, OUR_MAC);
    // Learned by answering our own request.
    send(&mut i, t(10), PEER_IP, 1, &mut out).unwrap();
    i.receive(t(10), &reply, &mut out);
    assert_eq!(
        i.arp_cache().state(PEER_IP, t(39)),
        Some(NeighborState::Reachable)
    );
    // 30 s later it is STALE, and still used: sent at once, no broadcast.
    let n = out.frames.len();
    assert_eq!(send(&mut i, t(40), PEER_IP, 2, &mut out), Ok(Sent::Sent));
    assert_eq!(out.frames.len(), n + 1);
    assert_eq!(parse_ip(&out.frames[n]).0.dst_addr, PEER_MAC);
    assert_eq!(
        i.arp_cache().state(PEER_IP, t(40)),
        Some(NeighborState::Delay)
    );
    // DELAY 5 s, then unicast probes to the MAC it had.
    assert_eq!(i.next_poll_at(), Some(t(45)));
    i.poll(t(44), &mut out);
    assert_eq!(out.frames.len(), n + 1);
    i.poll(t(45), &mut out);
    assert_eq!(out.frames.len(), n + 2);
    let (eth, arp) = parse_arp(&out.frames[n + 1]);
    assert_eq!(eth.dst_addr, PEER_MAC, "a probe is unicast");
    let ArpRepr::EthernetIpv4 {
        operation,
        target_protocol_addr,
        ..
    } = arp;
    assert_eq!(
        (operation, target_protocol_addr),
        (ArpOperation::Request, PEER_IP)
    );
    assert_eq!(i.stats().arp_probes_sent, 1);
    // Sends still go out while probing.
    assert_eq!(send(&mut i, t(45), PEER_IP, 3, &mut out), Ok(Sent::Sent));
    // The answer makes it REACHABLE; no more probes.
    i.receive(t(45), &reply, &mut out);
    assert_eq!(
        i.arp_cache().state(PEER_IP, t(46)),
        Some(NeighborState::Reachable)
    );
    let n = out.frames.len();
    for s in 46..60 {
        i.poll(t(s), &mut out);
    }
    assert_eq!(out.frames.len(), n);
    assert_eq!(i.stats().arp_probes_sent, 1);
}

#[test]
fn unanswered_probes_fail_the_entry_then_broadcast() {
    let mut i = iface();
    let mut out = VecSink::default();
    i.arp_cache_mut().insert(PEER_IP, PEER_MAC, t(0));
    assert_eq!(send(&mut i, t(30), PEER_IP, 1, &mut out), Ok(Sent::Sent));
    for s in 31..=40 {
        i.poll(t(s), &mut out);
    }
    assert_eq!(i.stats().arp_probes_sent, 3);
    assert_eq!(i.stats().arp_failed, 1);
    assert_eq!(
        i.arp_cache().state(PEER_IP, t(40)),
        Some(NeighborState::Failed)
    );
    // FAILED: the next send resolves again, by broadcast.
    assert_eq!(send(&mut i, t(40), PEER_IP, 2, &mut out), Ok(Sent::Queued));
    assert_eq!(
        parse_arp(out.frames.last().unwrap()).0.dst_addr,
        EthernetAddress::BROADCAST
    );
}

#[test]
fn forward_progress_confirmation_avoids_probes() {
    let mut i = iface();
    let mut out = VecSink::default();
    i.arp_cache_mut().insert(PEER_IP, PEER_MAC, t(0));
    // Traffic every second for two minutes, each "ACK" confirming (what
    // `Stack::poll` does with `TcpStack::take_progress`).
    for s in 1..120 {
        assert_eq!(send(&mut i, t(s), PEER_IP, 1, &mut out), Ok(Sent::Sent));
        i.confirm(PEER_IP, t(s));
        i.poll(t(s), &mut out);
    }
    assert_eq!(i.stats().arp_probes_sent, 0);
    assert_eq!(i.stats().arp_requests_sent, 0);
    assert_eq!(
        i.arp_cache().state(PEER_IP, t(120)),
        Some(NeighborState::Reachable)
    );
    assert!(i.stats().arp_confirmed >= 119);
    // An off-link peer confirms its gateway.
    i.arp_cache_mut().insert(GW_IP, GW_MAC, t(0));
    i.confirm(FAR_IP, t(120));
    assert_eq!(
        i.arp_cache().state(GW_IP, t(121)),
        Some(NeighborState::Reachable)
    );
}

#[test]
fn flood_of_unresolvable_sources_does_not_block_a_live_peer() {
    let mut i = iface();
    let mut out = VecSink::default();
    // The live peer resolved long ago (its entry is STALE by now).
    let reply = arp_frame(ArpOperation::Reply, PEER_MAC, PEER_IP, OUR_IP, OUR_MAC);
    send(&mut i, t(0), PEER_IP, 0, &mut out).unwrap();
    i.receive(t(0), &reply, &mut out);
    let live2 = Ipv4Address::new(10, 0, 0, 3);
    let live2_mac = EthernetAddress([2, 0, 0, 0, 0, 3]);
    let mut peer_sent = 0;
    let mut live2_done = false;
    // 1000 spoofed on-link sources over 2 s (SYN-ACKs to them need ARP and
    // nobody answers), interleaved with the live peer's traffic.
    for k in 0..1000u64 {
        let now = t(100) + Duration::from_millis(2 * k);
        let spoofed = on_link(10 + (k % 200) as u32);
        let _ = send(&mut i, now, spoofed, 7, &mut out);
        if k % 10 == 0 {
            let n = out.frames.len();
            assert_eq!(
                send(&mut i, now, PEER_IP, 1, &mut out),
                Ok(Sent::Sent),
                "{k}"
            );
            assert_eq!(parse_ip(&out.frames[n]).0.dst_addr, PEER_MAC);
            peer_sent += 1;
            i.confirm(PEER_IP, now);
        }
        if k == 500 {
            // A new live peer starts talking during the flood: its request
            // for us teaches us its MAC, so our answers need no resolution.
            let req = arp_frame(
                ArpOperation::Request,
                live2_mac,
                live2,
                OUR_IP,
                EthernetAddress::BROADCAST,
            );
            i.receive(now, &req, &mut out);
        }
        if k > 500 && !live2_done {
            let n = out.frames.len();
            assert_eq!(send(&mut i, now, live2, 2, &mut out), Ok(Sent::Sent));
            assert_eq!(parse_ip(&out.frames[n]).0.dst_addr, live2_mac);
            live2_done = true;
        }
        i.poll(now, &mut out);
    }
    assert_eq!(peer_sent, 100);
    assert!(live2_done);
    let s = i.stats();
    // The flood was bounded: requests rate-limited, resolutions evicted,
    // each drop counted.
    assert!(s.arp_requests_limited > 0, "{s}");
    assert!(s.arp_requests_sent <= 20 + 2 * 100 + 3 * 16 + 1, "{s}");
    assert!(i.arp_cache().pending_count() <= 16);
    assert!(s.drops(DropReason::ArpRateLimited) > 0);
    assert_eq!(
        i.arp_cache().state(PEER_IP, t(103)),
        Some(NeighborState::Reachable)
    );
}

#[test]
fn resolution_of_a_known_neighbour_survives_a_flood() {
    let mut i = iface();
    let mut out = VecSink::default();
    // The peer resolved before, then its probes failed (it was away).
    i.arp_cache_mut().insert(PEER_IP, PEER_MAC, t(0));
    send(&mut i, t(30), PEER_IP, 0, &mut out).unwrap();
    for s in 31..=40 {
        i.poll(t(s), &mut out);
    }
    assert_eq!(
        i.arp_cache().state(PEER_IP, t(40)),
        Some(NeighborState::Failed)
    );
    // A flood has spent every request token and fills the pending table.
    for k in 0..100u32 {
        let _ = send(&mut i, t(41), on_link(10 + k), 7, &mut out);
    }
    // The known peer still gets a resolution, and it is never evicted.
    assert_eq!(send(&mut i, t(41), PEER_IP, 1, &mut out), Ok(Sent::Queued));
    for k in 0..1000u32 {
        let now = t(41) + Duration::from_millis(u64::from(k));
        let _ = send(&mut i, now, on_link(10 + k % 200), 7, &mut out);
    }
    assert!(i.arp_cache().is_pending(PEER_IP));
    let reply = arp_frame(ArpOperation::Reply, PEER_MAC, PEER_IP, OUR_IP, OUR_MAC);
    let n = out.frames.len();
    i.receive(t(42), &reply, &mut out);
    assert_eq!(out.frames.len(), n + 1);
    assert_eq!(parse_ip(&out.frames[n]).2, &[1; 4]);
    assert!(i.stats().arp_pending_evicted > 0);
}

#[test]
fn unsolicited_reply_and_announcement_create_nothing() {
    let mut i = iface();
    let mut out = VecSink::default();
    // A reply to us that we never asked for.
    let reply = arp_frame(ArpOperation::Reply, PEER_MAC, PEER_IP, OUR_IP, OUR_MAC);
    assert_eq!(i.receive(t(1), &reply, &mut out), Received::Nothing);
    assert!(!i.arp_cache().contains(PEER_IP, t(1)));
    // A gratuitous announcement of an address we never talked to.
    let garp = arp_frame(
        ArpOperation::Request,
        PEER_MAC,
        PEER_IP,
        PEER_IP,
        EthernetAddress::BROADCAST,
    );
    i.receive(t(1), &garp, &mut out);
    let garp_reply = arp_frame(
        ArpOperation::Reply,
        PEER_MAC,
        PEER_IP,
        PEER_IP,
        EthernetAddress::BROADCAST,
    );
    i.receive(t(1), &garp_reply, &mut out);
    assert!(i.arp_cache().is_empty(t(1)));
    assert_eq!(i.stats().arp_unsolicited_ignored, 3);
    assert_eq!(i.stats().arp_learned, 0);
    assert!(out.frames.is_empty());
    // An existing entry is updated by one (RFC 826 merge), made STALE so
    // that it is re-confirmed before it is trusted again.
    i.arp_cache_mut().insert(PEER_IP, GW_MAC, t(1));
    i.receive(t(2), &garp_reply, &mut out);
    assert_eq!(i.arp_cache().lookup(PEER_IP, t(2)), Some(PEER_MAC));
    assert_eq!(
        i.arp_cache().state(PEER_IP, t(2)),
        Some(NeighborState::Stale)
    );
}

#[test]
fn configurable_reachable_time() {
    let mut cfg = config();
    cfg.arp.reachable_time = Duration::from_secs(5);
    let mut i = Interface::new(cfg);
    i.arp_cache_mut().insert(PEER_IP, PEER_MAC, t(0));
    assert_eq!(
        i.arp_cache().state(PEER_IP, t(4)),
        Some(NeighborState::Reachable)
    );
    assert_eq!(
        i.arp_cache().state(PEER_IP, t(5)),
        Some(NeighborState::Stale)
    );
    assert!(i.arp_cache().contains(PEER_IP, t(5)));
}

#[test]
fn retry_every_second_then_give_up() {
    let mut i = iface();
    let mut out = VecSink::default();
    send(&mut i, t(0), PEER_IP, 1, &mut out).unwrap();
    send(&mut i, t(0), PEER_IP, 2, &mut out).unwrap();
    assert_eq!(out.frames.len(), 1);
    assert_eq!(i.next_poll_at(), Some(t(1)));
    i.poll(Instant::from_millis(999), &mut out);
    assert_eq!(out.frames.len(), 1);
    i.poll(t(1), &mut out);
    assert_eq!(out.frames.len(), 2);
    i.poll(t(1), &mut out);
    assert_eq!(out.frames.len(), 2, "one retry per interval");
    i.poll(t(2), &mut out);
    assert_eq!(out.frames.len(), 3);
    assert_eq!(i.stats().arp_requests_sent, 3);
    for f in &out.frames {
        let (
            _,
            ArpRepr::EthernetIpv4 {
                target_protocol_addr,
                ..
            },
        ) = parse_arp(f);
        assert_eq!(target_protocol_addr, PEER_IP);
    }
    i.poll(t(3), &mut out);
    assert_eq!(out.frames.len(), 3, "gave up after three tries");
    assert_eq!(i.stats().drops(DropReason::Unreachable), 2);
    assert_eq!(i.arp_cache().queued(), 0);
    assert_eq!(i.next_poll_at(), None);
    // A late reply is unsolicited now: nothing pending, no entry.
    let reply = arp_frame(ArpOperation::Reply, PEER_MAC, PEER_IP, OUR_IP, OUR_MAC);
    i.receive(t(4), &reply, &mut out);
    assert_eq!(out.frames.len(), 3, "nothing queued to flush");
    assert!(!i.arp_cache().contains(PEER_IP, t(4)));
    assert_eq!(i.stats().arp_unsolicited_ignored, 1);
}

#[test]
fn queue_overflow_dropped_and_counted() {
    let mut cfg = config();
    cfg.arp.queue_slots = 2;
    let mut i = Interface::new(cfg);
    let mut out = VecSink::default();
    assert_eq!(send(&mut i, t(0), PEER_IP, 1, &mut out), Ok(Sent::Queued));
    assert_eq!(send(&mut i, t(0), PEER_IP, 2, &mut out), Ok(Sent::Queued));
    assert_eq!(
        send(&mut i, t(0), PEER_IP, 3, &mut out),
        Err(SendError::QueueFull)
    );
    assert_eq!(i.stats().drops(DropReason::ArpQueueOverflow), 1);
    let reply = arp_frame(ArpOperation::Reply, PEER_MAC, PEER_IP, OUR_IP, OUR_MAC);
    i.receive(t(0), &reply, &mut out);
    // Request + the two that fit.
    assert_eq!(out.frames.len(), 3);
    assert_eq!(parse_ip(&out.frames[2]).2, &[2; 4]);
}

#[test]
fn pending_table_full_evicts_and_counts() {
    let mut cfg = config();
    cfg.arp.max_pending = 1;
    let mut i = Interface::new(cfg);
    let mut out = VecSink::default();
    assert!(send(&mut i, t(0), PEER_IP, 1, &mut out).is_ok());
    assert_eq!(
        send(&mut i, t(0), Ipv4Address::new(10, 0, 0, 3), 1, &mut out),
        Ok(Sent::Queued)
    );
    assert!(!i.arp_cache().is_pending(PEER_IP));
    assert_eq!(i.stats().arp_pending_evicted, 1);
    assert_eq!(i.stats().drops(DropReason::ArpEvicted), 1);
}

#[test]
fn requests_are_rate_limited_globally() {
    let mut cfg = config();
    cfg.arp.max_pending = 64;
    cfg.arp.request_burst = 5;
    cfg.arp.requests_per_sec = 10;
    let mut i = Interface::new(cfg);
    let mut out = VecSink::default();
    for k in 0..20u32 {
        let _ = send(&mut i, t(0), on_link(10 + k), 1, &mut out);
    }
    assert_eq!(i.stats().arp_requests_sent, 5);
    assert_eq!(i.stats().arp_requests_limited, 15);
    assert_eq!(i.stats().drops(DropReason::ArpRateLimited), 15);
    // 10 per second after the burst.
    for k in 0..20u32 {
        let now = t(0) + Duration::from_millis(50 * u64::from(k + 1));
        let _ = send(&mut i, now, on_link(100 + k), 1, &mut out);
    }
    assert_eq!(i.stats().arp_requests_sent, 15);
}

#[test]
fn announce_is_gratuitous_arp() {
    let mut i = iface();
    let mut out = VecSink::default();
    i.announce(t(0), &mut out);
    let (eth, arp) = parse_arp(&out.frames[0]);
    assert!(eth.dst_addr.is_broadcast());
    assert_eq!(
        arp,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: OUR_MAC,
            source_protocol_addr: OUR_IP,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: OUR_IP,
        }
    );
    assert_eq!(out.frames[0].len(), 42);
}

// ---- routing ----

#[test]
fn off_link_goes_through_gateway() {
    let mut i = iface();
    let mut out = VecSink::default();
    assert_eq!(i.route(FAR_IP), Ok(GW_IP));
    assert_eq!(i.route(PEER_IP), Ok(PEER_IP));
    assert_eq!(send(&mut i, t(0), FAR_IP, 5, &mut out), Ok(Sent::Queued));
    let (
        _,
        ArpRepr::EthernetIpv4 {
            target_protocol_addr,
            ..
        },
    ) = parse_arp(&out.frames[0]);
    assert_eq!(target_protocol_addr, GW_IP);
    let reply = arp_frame(ArpOperation::Reply, GW_MAC, GW_IP, OUR_IP, OUR_MAC);
    i.receive(t(0), &reply, &mut out);
    let (eth, ip, _) = parse_ip(&out.frames[1]);
    assert_eq!(eth.dst_addr, GW_MAC);
    assert_eq!(ip.dst_addr, FAR_IP);
    // A second far destination reuses the gateway's entry.
    assert_eq!(
        send(&mut i, t(0), Ipv4Address::new(1, 1, 1, 1), 6, &mut out),
        Ok(Sent::Sent)
    );
    assert_eq!(parse_ip(&out.frames[2]).0.dst_addr, GW_MAC);
}

#[test]
fn off_link_without_gateway_unreachable() {
    let mut cfg = config();
    cfg.gateway = None;
    let mut i = Interface::new(cfg);
    let mut out = VecSink::default();
    let mut called = false;
    let r = i.send_ipv4(
        t(0),
        FAR_IP,
        IpProtocol::Tcp,
        4,
        |_| called = true,
        &mut out,
    );
    assert_eq!(r, Err(SendError::Unreachable));
    assert!(!called);
    assert!(out.frames.is_empty());
    assert_eq!(i.stats().drops(DropReason::Unreachable), 1);
}

#[test]
fn broadcast_sent_without_arp() {
    let mut i = iface();
    let mut out = VecSink::default();
    assert_eq!(
        send(&mut i, t(0), Ipv4Address::new(10, 0, 0, 255), 1, &mut out),
        Ok(Sent::Sent)
    );
    assert_eq!(
        send(&mut i, t(0), Ipv4Address::BROADCAST, 1, &mut out),
        Ok(Sent::Sent)
    );
    for f in &out.frames {
        assert!(parse_ip(f).0.dst_addr.is_broadcast());
    }
}

#[test]
fn send_too_large_and_no_tx_buffer() {
    let mut i = iface();
    let mut out = VecSink {
        limit: Some(0),
        ..VecSink::default()
    };
    i.arp_cache_mut().insert(PEER_IP, PEER_MAC, t(0));
    assert_eq!(
        i.send_ipv4(t(0), PEER_IP, IpProtocol::Tcp, 1481, |_| {}, &mut out),
        Err(SendError::TooLarge)
    );
    assert_eq!(
        i.send_ipv4(t(0), PEER_IP, IpProtocol::Tcp, 1480, |_| {}, &mut out),
        Err(SendError::NoTxBuffer)
    );
    assert_eq!(i.stats().drops(DropReason::NoTxBuffer), 1);
}

#[test]
fn sent_header_is_correct() {
    let mut i = iface();
    let mut out = VecSink::default();
    i.arp_cache_mut().insert(PEER_IP, PEER_MAC, t(0));
    i.send_ipv4(
        t(0),
        PEER_IP,
        IpProtocol::Tcp,
        20,
        |b| b.fill(0xab),
        &mut out,
    )
    .unwrap();
    let f = &out.frames[0];
    assert_eq!(f.len(), 14 + 20 + 20);
    let (_, ip, payload) = parse_ip(f);
    assert_eq!(ip.protocol, IpProtocol::Tcp);
    assert_eq!(ip.ttl, 64);
    assert!(ip.dont_frag);
    assert_eq!(payload, &[0xab; 20]);
}

#[test]
fn tx_checksum_offload_leaves_ip_checksum_zero() {
    let mut cfg = config();
    cfg.fill_tx_checksums = false;
    let mut i = Interface::new(cfg);
    let mut out = VecSink::default();
    i.arp_cache_mut().insert(PEER_IP, PEER_MAC, t(0));
    i.send_ipv4(t(0), PEER_IP, IpProtocol::Tcp, 20, |_| {}, &mut out)
        .unwrap();
    assert_eq!(
        Ipv4Packet::new_checked(&out.frames[0][14..])
            .unwrap()
            .checksum(),
        0
    );
}

// ---- IPv4 and ICMP in ----

#[test]
fn icmp_echo_reply() {
    let mut i = iface();
    let mut out = VecSink::default();
    let req = ipv4_frame(
        PEER_IP,
        OUR_IP,
        OUR_MAC,
        IpProtocol::Icmp,
        &echo_request(0x4242, 7, b"ping data 123"),
    );
    assert_eq!(i.receive(t(0), &req, &mut out), Received::Nothing);
    assert_eq!(out.frames.len(), 1);
    let (eth, ip, payload) = parse_ip(&out.frames[0]);
    assert_eq!(eth.dst_addr, PEER_MAC);
    assert_eq!(eth.src_addr, OUR_MAC);
    assert_eq!(
        (ip.src_addr, ip.dst_addr, ip.protocol),
        (OUR_IP, PEER_IP, IpProtocol::Icmp)
    );
    assert_eq!(checksum::data(payload), 0xffff);
    let p = Icmpv4Packet::new_checked(payload).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&p, true).unwrap(),
        Icmpv4Repr::EchoReply {
            ident: 0x4242,
            seq_no: 7,
            data: b"ping data 123"
        }
    );
    assert_eq!(i.stats().icmp_echo_replies, 1);
}

#[test]
fn icmp_bad_checksum_dropped() {
    let mut i = iface();
    let mut out = VecSink::default();
    let mut icmp = echo_request(1, 1, b"x");
    icmp[8] ^= 1;
    let req = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Icmp, &icmp);
    assert_eq!(
        i.receive(t(0), &req, &mut out),
        Received::Dropped(DropReason::BadChecksum)
    );
    assert!(out.frames.is_empty());
}

#[test]
fn broadcast_ping_ignored_and_other_icmp_unsupported() {
    let mut i = iface();
    let mut out = VecSink::default();
    let req = ipv4_frame(
        PEER_IP,
        Ipv4Address::new(10, 0, 0, 255),
        EthernetAddress::BROADCAST,
        IpProtocol::Icmp,
        &echo_request(1, 1, b""),
    );
    assert_eq!(i.receive(t(0), &req, &mut out), Received::Nothing);
    assert!(out.frames.is_empty());
    // A timestamp request (type 13) is not handled.
    let mut other = [13u8, 0, 0, 0, 0, 0, 0, 0];
    let ck = checksum::finish(checksum::data(&other));
    other[2..4].copy_from_slice(&ck.to_be_bytes());
    let f = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Icmp, &other);
    assert_eq!(
        i.receive(t(0), &f, &mut out),
        Received::Dropped(DropReason::UnsupportedProtocol)
    );
    // A host unreachable quoting nothing of ours is dropped and counted.
    let mut unreach = [3u8, 1, 0, 0, 0, 0, 0, 0];
    let ck = checksum::finish(checksum::data(&unreach));
    unreach[2..4].copy_from_slice(&ck.to_be_bytes());
    let f = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Icmp, &unreach);
    assert_eq!(
        i.receive(t(0), &f, &mut out),
        Received::Dropped(DropReason::IcmpErrorNotOurs)
    );
    assert!(out.frames.is_empty());
}

#[test]
fn tcp_delivered_to_caller() {
    let mut i = iface();
    let mut out = VecSink::default();
    let seg = [0x11u8; 24];
    let f = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Tcp, &seg);
    match i.receive(t(0), &f, &mut out) {
        Received::Tcp { ip, tcp_bytes } => {
            assert_eq!(ip.src_addr, PEER_IP);
            assert_eq!(tcp_bytes, &seg);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(i.stats().tcp_delivered, 1);
    // Ethernet padding after the IP packet is not part of the segment.
    let mut padded = f.clone();
    padded.extend_from_slice(&[0; 10]);
    assert!(
        matches!(i.receive(t(0), &padded, &mut out), Received::Tcp { tcp_bytes, .. } if tcp_bytes.len() == 24)
    );
}

#[test]
fn frames_not_for_us_dropped_and_counted() {
    let mut i = iface();
    let mut out = VecSink::default();
    let other_mac = EthernetAddress([2, 0, 0, 0, 0, 0x77]);
    let f = ipv4_frame(PEER_IP, OUR_IP, other_mac, IpProtocol::Tcp, &[0; 20]);
    assert_eq!(
        i.receive(t(0), &f, &mut out),
        Received::Dropped(DropReason::NotForUsMac)
    );
    let f = ipv4_frame(
        PEER_IP,
        Ipv4Address::new(10, 0, 0, 3),
        OUR_MAC,
        IpProtocol::Tcp,
        &[0; 20],
    );
    assert_eq!(
        i.receive(t(0), &f, &mut out),
        Received::Dropped(DropReason::NotForUsIp)
    );
    let f = ipv4_frame(
        PEER_IP,
        Ipv4Address::BROADCAST,
        EthernetAddress::BROADCAST,
        IpProtocol::Tcp,
        &[0; 20],
    );
    assert_eq!(
        i.receive(t(0), &f, &mut out),
        Received::Dropped(DropReason::NotForUsIp)
    );
    assert_eq!(i.stats().drops(DropReason::NotForUsMac), 1);
    assert_eq!(i.stats().drops(DropReason::NotForUsIp), 2);
    assert_eq!(i.stats().rx_frames, 3);
    assert!(out.frames.is_empty());
}

#[test]
fn martian_sources_dropped_and_counted() {
    // RFC 1122 §3.2.1.3: from the wire, no packet may come from our own
    // address (LAND), loopback, 0.0.0.0, multicast or broadcast.
    let mut i = iface();
    let mut out = VecSink::default();
    let martians = [
        OUR_IP,
        Ipv4Address::new(127, 0, 0, 1),
        Ipv4Address::new(127, 1, 2, 3),
        Ipv4Address::UNSPECIFIED,
        Ipv4Address::new(224, 0, 0, 1),
        Ipv4Address::BROADCAST,
        Ipv4Address::new(10, 0, 0, 255),
    ];
    for src in martians {
        for proto in [IpProtocol::Tcp, IpProtocol::Icmp] {
            let payload = if proto == IpProtocol::Icmp {
                echo_request(1, 1, b"x")
            } else {
                vec![0; 20]
            };
            let f = ipv4_frame(src, OUR_IP, OUR_MAC, proto, &payload);
            assert_eq!(
                i.receive(t(0), &f, &mut out),
                Received::Dropped(DropReason::Martian),
                "source {src} ({proto:?})"
            );
        }
    }
    assert_eq!(i.stats().drops(DropReason::Martian), 14);
    assert_eq!(i.stats().tcp_delivered, 0);
    assert!(out.frames.is_empty(), "a martian was answered");
    // A neighbour is not a martian.
    let f = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Tcp, &[0; 20]);
    assert!(matches!(
        i.receive(t(0), &f, &mut out),
        Received::Tcp { .. }
    ));
}

#[test]
fn point_to_point_peer_is_not_a_martian() {
    // On a /31 (RFC 3021) there is no broadcast address: the other end's
    // address is an ordinary source.
    let mut i = Interface::new(InterfaceConfig::new(
        OUR_MAC,
        Ipv4Cidr {
            address: Ipv4Address::new(10, 0, 0, 0),
            prefix_len: 31,
        },
        None,
    ));
    let mut out = VecSink::default();
    let f = ipv4_frame(
        Ipv4Address::new(10, 0, 0, 1),
        Ipv4Address::new(10, 0, 0, 0),
        OUR_MAC,
        IpProtocol::Tcp,
        &[0; 20],
    );
    assert!(matches!(
        i.receive(t(0), &f, &mut out),
        Received::Tcp { .. }
    ));
}

#[test]
fn tagged_frames_of_either_tpid_are_unsupported() {
    use crate::wire::ethernet::{copy_with_vlan_tag, VlanTag};
    let mut i = iface();
    let mut out = VecSink::default();
    let good = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Tcp, &[0; 20]);
    for tag in [VlanTag::dot1q(7), VlanTag::dot1ad(7)] {
        let mut tagged = vec![0u8; good.len() + 4];
        copy_with_vlan_tag(&mut tagged, &good, tag).unwrap();
        assert_eq!(
            i.receive(t(0), &tagged, &mut out),
            Received::Dropped(DropReason::UnsupportedProtocol)
        );
        // A tag cut short is a truncated header.
        assert_eq!(
            i.receive(t(0), &tagged[..16], &mut out),
            Received::Dropped(DropReason::Truncated)
        );
    }
    assert_eq!(i.stats().drops(DropReason::UnsupportedProtocol), 2);
    assert!(out.frames.is_empty());
}

#[test]
fn bad_ip_frames_dropped_with_reason() {
    let mut i = iface();
    let mut out = VecSink::default();
    let good = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Tcp, &[0; 20]);

    let mut bad_ck = good.clone();
    bad_ck[14 + 8] ^= 1; // TTL
    assert_eq!(
        i.receive(t(0), &bad_ck, &mut out),
        Received::Dropped(DropReason::BadChecksum)
    );

    // A first fragment whose length is no multiple of 8 is inconsistent.
    let mut frag = good.clone();
    let mut p = Ipv4Packet::new_unchecked(&mut frag[14..]);
    p.set_flags_and_offset(false, true, 0);
    p.fill_checksum();
    assert_eq!(
        i.receive(t(0), &frag, &mut out),
        Received::Dropped(DropReason::Fragment)
    );
    assert_eq!(i.stats().fragments_received, 1);

    assert_eq!(
        i.receive(t(0), &good[..30], &mut out),
        Received::Dropped(DropReason::Truncated)
    );
    assert_eq!(
        i.receive(t(0), &good[..10], &mut out),
        Received::Dropped(DropReason::Truncated)
    );

    let mut ihl = good.clone();
    ihl[14] = 0x44;
    assert_eq!(
        i.receive(t(0), &ihl, &mut out),
        Received::Dropped(DropReason::Malformed)
    );

    let udp = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Udp, &[0; 8]);
    assert_eq!(
        i.receive(t(0), &udp, &mut out),
        Received::Dropped(DropReason::NoUdpSocket)
    );
    // Answered with a port unreachable.
    assert_eq!(out.frames.len(), 1);
    out.frames.clear();

    let mut v6 = good.clone();
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(
        i.receive(t(0), &v6, &mut out),
        Received::Dropped(DropReason::UnsupportedProtocol)
    );

    let s = i.stats();
    assert_eq!(s.drops(DropReason::Truncated), 2);
    assert_eq!(s.total_drops(), 7);
    assert!(out.frames.is_empty());
}

#[test]
fn rx_checksum_offload_skips_verification() {
    let mut cfg = config();
    cfg.verify_rx_checksums = false;
    let mut i = Interface::new(cfg);
    let mut out = VecSink::default();
    let mut f = ipv4_frame(PEER_IP, OUR_IP, OUR_MAC, IpProtocol::Tcp, &[0; 20]);
    f[14 + 10] ^= 0xff;
    assert!(matches!(
        i.receive(t(0), &f, &mut out),
        Received::Tcp { .. }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120), kind in 0u8..4) {
        let mut i = iface();
        let mut out = VecSink::default();
        let mut frame = bytes.clone();
        // Steer some inputs past the Ethernet filter into ARP and IPv4.
        if kind > 0 && frame.len() >= 14 {
            frame[..6].copy_from_slice(&OUR_MAC.0);
            frame[12..14].copy_from_slice(match kind { 1 => &[0x08, 0x06], _ => &[0x08, 0x00] });
            if kind == 3 && frame.len() >= 34 {
                frame[14] = 0x45;
                frame[26..30].copy_from_slice(&PEER_IP.octets());
                frame[30..34].copy_from_slice(&OUR_IP.octets());
                let ip_len = (frame.len() - 14) as u16;
                let mut p = Ipv4Packet::new_unchecked(&mut frame[14..]);
                p.set_total_len(ip_len);
                p.set_flags_and_offset(false, false, 0);
                p.fill_checksum();
            }
        }
        let before = i.stats().total_drops();
        let r = i.receive(t(0), &frame, &mut out);
        if let Received::Dropped(_) = r {
            prop_assert_eq!(i.stats().total_drops(), before + 1);
        }
        i.poll(t(5), &mut out);
        for f in &out.frames {
            prop_assert!(EthernetFrame::new_checked(&f[..]).is_ok());
        }
    }
}

mod icmp_and_fragments;

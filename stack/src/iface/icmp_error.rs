//! ICMP errors, both directions: what may be sent (RFC 1122 §3.2.2, rate
//! limited as RFC 1812 §4.3.2.8 asks), how much of the offending datagram
//! is quoted, and what a received error says about one of our TCP
//! segments.
//!
//! Sending: never about an ICMP error, a datagram to or from a broadcast or
//! multicast address, a non-initial fragment, or a source that is no
//! single host (RFC 1122 §3.2.2). The quote is the IP header and as much
//! data as keeps the error within 576 bytes (like Linux; at least the 8
//! bytes RFC 792 asks for).
//!
//! Receiving: the quote must hold a whole IP header and 8 bytes of TCP
//! header, from us; [`TcpIcmpError`] carries the 4-tuple and the quoted
//! sequence number, which the TCP engine checks against SND.UNA..SND.MAX
//! (RFC 5927 §4.1) before acting.

use crate::time::Instant;
use crate::wire::icmp::{self, unreachable};
use crate::wire::ipv4::{self, IpProtocol, Ipv4Address, Ipv4Packet};
use crate::wire::tcp::TcpPacket;
use crate::wire::SeqNumber;

/// Largest ICMP error datagram we send (RFC 1812 §4.3.2.3, Linux).
pub(crate) const MAX_ERROR_LEN: usize = 576;

/// Most bytes of the offending datagram an error quotes.
pub(crate) const MAX_QUOTE: usize = MAX_ERROR_LEN - ipv4::HEADER_LEN - icmp::HEADER_LEN;

/// A token bucket: `rate` messages per second, bursts of `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimit {
    rate: u32,
    burst: u32,
    /// Tokens, in millionths.
    tokens: u64,
    last: Instant,
}

const SCALE: u64 = 1_000_000;

impl RateLimit {
    /// A full bucket.
    pub(crate) fn new(rate: u32, burst: u32) -> RateLimit {
        RateLimit {
            rate,
            burst,
            tokens: u64::from(burst) * SCALE,
            last: Instant::ZERO,
        }
    }

    /// Takes a token at `now`, if one is left.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.total_micros().saturating_sub(self.last.total_micros());
        self.last = self.last.max(now);
        let cap = u64::from(self.burst) * SCALE;
        self.tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(u64::from(self.rate)))
            .min(cap);
        if self.tokens >= SCALE {
            self.tokens -= SCALE;
            true
        } else {
            false
        }
    }
}

/// RFC 1122 §3.2.2: may an error be sent about a datagram from `src` to
/// `dst`, carrying `protocol` with `payload` first bytes (for the ICMP
/// type), at `frag_offset`, that arrived as a link-layer broadcast or not?
pub(crate) fn may_answer(
    src: Ipv4Address,
    dst: Ipv4Address,
    dst_broadcast: bool,
    link_broadcast: bool,
    protocol: IpProtocol,
    payload: &[u8],
    frag_offset: u16,
) -> bool {
    if dst_broadcast || link_broadcast || dst.is_multicast() || frag_offset != 0 {
        return false;
    }
    if src.is_unspecified()
        || src.is_broadcast()
        || src.is_multicast()
        || src.is_loopback()
        || src.octets()[0] >= 240
    {
        return false;
    }
    if protocol == IpProtocol::Icmp {
        // Only queries (echo and the like) may be answered; an error, or
        // an ICMP message too short to tell, may not.
        return match payload.first() {
            Some(&t) => matches!(t, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18),
            None => false,
        };
    }
    true
}

/// What a received ICMP error reports about one of our TCP segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Destination Unreachable, fragmentation needed (RFC 1191): the path
    /// carries at most `mtu` bytes (already guessed from the plateau table
    /// when the router gave none).
    FragNeeded {
        /// The next-hop MTU.
        mtu: u16,
    },
    /// Another Destination Unreachable code.
    Unreachable {
        /// The code.
        code: u8,
    },
    /// Time Exceeded (TTL or reassembly).
    TimeExceeded {
        /// The code.
        code: u8,
    },
}

impl IcmpErrorKind {
    /// Hard errors, as Linux's `icmp_err_convert` marks them fatal
    /// (protocol and port unreachable, codes 6–10 and 13–15): they abort a
    /// connection in SYN-SENT; every other error is soft (RFC 1122
    /// §4.2.3.9; codes 0, 1 and 5 MUST NOT abort, MUST-56).
    pub fn is_hard(self) -> bool {
        match self {
            IcmpErrorKind::Unreachable { code } => matches!(
                code,
                unreachable::PROTOCOL | unreachable::PORT | 6..=10 | 13..=15
            ),
            _ => false,
        }
    }
}

/// An ICMP error about a TCP segment we sent, as the engine needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpIcmpError {
    /// What went wrong.
    pub kind: IcmpErrorKind,
    /// Our address (the quoted source).
    pub local: Ipv4Address,
    /// The peer (the quoted destination).
    pub remote: Ipv4Address,
    /// Our port.
    pub local_port: u16,
    /// The peer's port.
    pub remote_port: u16,
    /// The quoted sequence number.
    pub seq: SeqNumber,
    /// The quoted datagram's Total Length.
    pub sent_len: u16,
}

/// An ICMP error about a UDP datagram we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpIcmpError {
    /// What went wrong.
    pub kind: IcmpErrorKind,
    /// Our address and port (the quoted source).
    pub local: std::net::SocketAddrV4,
    /// The peer (the quoted destination).
    pub remote: std::net::SocketAddrV4,
}

/// The quoted UDP datagram's `(local, remote)` addresses: `None` when the
/// quote is too short (an IP header and the 8-byte UDP header), not IPv4,
/// not UDP, not a first fragment, or not from `ours`.
pub(crate) fn quoted_udp(
    quoted: &[u8],
    ours: Ipv4Address,
) -> Option<(std::net::SocketAddrV4, std::net::SocketAddrV4)> {
    if quoted.len() < ipv4::HEADER_LEN {
        return None;
    }
    let ip = Ipv4Packet::new_unchecked(quoted);
    let hl = ip.header_len();
    if ip.version() != 4 || hl < ipv4::HEADER_LEN || quoted.len() < hl + 8 {
        return None;
    }
    if ip.protocol() != IpProtocol::Udp || ip.frag_offset() != 0 || ip.src_addr() != ours {
        return None;
    }
    let u = &quoted[hl..hl + 8];
    let sport = u16::from_be_bytes([u[0], u[1]]);
    let dport = u16::from_be_bytes([u[2], u[3]]);
    Some((
        std::net::SocketAddrV4::new(ours, sport),
        std::net::SocketAddrV4::new(ip.dst_addr(), dport),
    ))
}

/// The quoted datagram's header and TCP ports: `None` when the quote is
/// too short, not IPv4, not TCP, not a first fragment, or not from `ours`.
pub(crate) fn quoted_tcp(
    quoted: &[u8],
    ours: Ipv4Address,
) -> Option<(Ipv4Address, u16, u16, SeqNumber, u16)> {
    if quoted.len() < ipv4::HEADER_LEN {
        return None;
    }
    let ip = Ipv4Packet::new_unchecked(quoted);
    let hl = ip.header_len();
    if ip.version() != 4 || hl < ipv4::HEADER_LEN || quoted.len() < hl + 8 {
        return None;
    }
    if ip.protocol() != IpProtocol::Tcp || ip.frag_offset() != 0 || ip.src_addr() != ours {
        return None;
    }
    // The first 8 bytes of the TCP header: ports and sequence number.
    let tcp = TcpPacket::new_unchecked(&quoted[hl..hl + 8]);
    Some((
        ip.dst_addr(),
        tcp.src_port(),
        tcp.dst_port(),
        tcp.seq_number(),
        ip.total_len(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    #[test]
    fn token_bucket_bursts_then_refills_at_rate() {
        let mut r = RateLimit::new(10, 3);
        let t = Instant::from_secs(1);
        assert!(r.allow(t) && r.allow(t) && r.allow(t));
        assert!(!r.allow(t));
        // One token per 100 ms.
        assert!(!r.allow(t + Duration::from_millis(99)));
        assert!(r.allow(t + Duration::from_millis(100)));
        assert!(!r.allow(t + Duration::from_millis(100)));
        // Never more than the burst, however long the pause.
        let later = t + Duration::from_secs(60);
        assert!(r.allow(later) && r.allow(later) && r.allow(later));
        assert!(!r.allow(later));
    }

    #[test]
    fn rfc1122_forbidden_answers() {
        let us = Ipv4Address::new(10, 0, 0, 1);
        let peer = Ipv4Address::new(10, 0, 0, 2);
        let ok =
            |src, dst, bc, lbc, proto, p: &[u8], off| may_answer(src, dst, bc, lbc, proto, p, off);
        assert!(ok(peer, us, false, false, IpProtocol::Udp, &[], 0));
        assert!(!ok(peer, us, true, false, IpProtocol::Udp, &[], 0));
        assert!(!ok(peer, us, false, true, IpProtocol::Udp, &[], 0));
        assert!(!ok(
            peer,
            Ipv4Address::new(224, 0, 0, 1),
            false,
            false,
            IpProtocol::Udp,
            &[],
            0
        ));
        assert!(!ok(peer, us, false, false, IpProtocol::Udp, &[], 8));
        for src in [
            Ipv4Address::UNSPECIFIED,
            Ipv4Address::BROADCAST,
            Ipv4Address::new(224, 1, 2, 3),
            Ipv4Address::new(127, 0, 0, 1),
            Ipv4Address::new(240, 0, 0, 1),
        ] {
            assert!(!ok(src, us, false, false, IpProtocol::Udp, &[], 0), "{src}");
        }
        // ICMP: a query may be answered, an error never.
        assert!(ok(peer, us, false, false, IpProtocol::Icmp, &[8, 0], 0));
        assert!(!ok(peer, us, false, false, IpProtocol::Icmp, &[3, 3], 0));
        assert!(!ok(peer, us, false, false, IpProtocol::Icmp, &[11, 0], 0));
        assert!(!ok(peer, us, false, false, IpProtocol::Icmp, &[], 0));
    }

    #[test]
    fn hard_and_soft_codes() {
        assert!(IcmpErrorKind::Unreachable { code: 3 }.is_hard());
        assert!(IcmpErrorKind::Unreachable { code: 2 }.is_hard());
        assert!(IcmpErrorKind::Unreachable { code: 13 }.is_hard());
        assert!(!IcmpErrorKind::Unreachable { code: 0 }.is_hard());
        assert!(!IcmpErrorKind::Unreachable { code: 1 }.is_hard());
        assert!(!IcmpErrorKind::Unreachable { code: 5 }.is_hard());
        assert!(IcmpErrorKind::Unreachable { code: 6 }.is_hard());
        assert!(!IcmpErrorKind::FragNeeded { mtu: 1000 }.is_hard());
        assert!(!IcmpErrorKind::TimeExceeded { code: 0 }.is_hard());
    }

    #[test]
    fn quoted_tcp_needs_header_and_eight_bytes_from_us() {
        let us = Ipv4Address::new(10, 0, 0, 1);
        let mut q = [0u8; 28];
        let repr = crate::wire::ipv4::Ipv4Repr {
            src_addr: us,
            dst_addr: Ipv4Address::new(10, 0, 0, 9),
            protocol: IpProtocol::Tcp,
            payload_len: 1460,
            ttl: 64,
            ident: 1,
            dont_frag: true,
            dscp_ecn: 0,
        };
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut q[..20]), true);
        q[20..28].copy_from_slice(&[0x30, 0x39, 0x00, 0x50, 0, 0, 0x10, 0]);
        assert_eq!(
            quoted_tcp(&q, us),
            Some((
                Ipv4Address::new(10, 0, 0, 9),
                12345,
                80,
                SeqNumber(0x1000),
                1480
            ))
        );
        assert_eq!(quoted_tcp(&q[..27], us), None);
        assert_eq!(quoted_tcp(&q, Ipv4Address::new(10, 0, 0, 2)), None);
        let mut udp = q;
        udp[9] = 17;
        assert_eq!(quoted_tcp(&udp, us), None);
        // The same quote read as UDP: ports 12345 -> 80.
        assert_eq!(
            quoted_udp(&udp, us),
            Some((
                std::net::SocketAddrV4::new(us, 12345),
                std::net::SocketAddrV4::new(Ipv4Address::new(10, 0, 0, 9), 80)
            ))
        );
        assert_eq!(quoted_udp(&q, us), None);
        assert_eq!(quoted_udp(&udp[..27], us), None);
    }
}

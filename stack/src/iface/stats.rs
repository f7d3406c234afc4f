//! Interface counters: frames in and out, ARP and ICMP activity, and drops
//! by reason.

use core::fmt;

/// Why the interface dropped a frame or an outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The destination MAC is neither ours nor broadcast.
    NotForUsMac,
    /// The destination IPv4 address is not ours (nor a broadcast we accept).
    NotForUsIp,
    /// An inconsistent IPv4 fragment (a non-final one whose length is not
    /// a multiple of 8, data past the datagram's end, two different ends):
    /// its datagram is dropped.
    Fragment,
    /// A header or length field runs past the frame.
    Truncated,
    /// A checksum does not verify.
    BadChecksum,
    /// A field holds a forbidden value.
    Malformed,
    /// A well-formed protocol or message type this interface does not handle.
    UnsupportedProtocol,
    /// An outgoing packet waiting for ARP found the queue (or the table of
    /// pending resolutions) full.
    ArpQueueOverflow,
    /// No route (off-link without a gateway), or ARP resolution gave up.
    Unreachable,
    /// The frame sink had no buffer for an outgoing frame.
    NoTxBuffer,
    /// A martian source (RFC 1122 §3.2.1.3) arrived from the wire: our own
    /// address, loopback (127/8), 0.0.0.0, multicast or broadcast.
    Martian,
    /// A fragment overlapping one already held (RFC 5722 spirit): the
    /// whole datagram is dropped.
    FragmentOverlap,
    /// No free reassembly context, or the reassembly byte cap reached.
    ReassemblyFull,
    /// A fragmented datagram over the size cap, or in too many fragments.
    FragmentTooLarge,
    /// A UDP datagram with no socket to take it (answered with ICMP port
    /// unreachable, rate permitting).
    NoUdpSocket,
    /// An ICMP error that quotes no TCP segment of ours (too short a
    /// quote, another protocol or source).
    IcmpErrorNotOurs,
    /// An outgoing packet waited for the resolution of an address never
    /// resolved, and that resolution was evicted for a newer one.
    ArpEvicted,
    /// An outgoing packet for an address never resolved, over the global
    /// ARP request rate.
    ArpRateLimited,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 18] = [
        DropReason::NotForUsMac,
        DropReason::NotForUsIp,
        DropReason::Fragment,
        DropReason::Truncated,
        DropReason::BadChecksum,
        DropReason::Malformed,
        DropReason::UnsupportedProtocol,
        DropReason::ArpQueueOverflow,
        DropReason::Unreachable,
        DropReason::NoTxBuffer,
        DropReason::Martian,
        DropReason::FragmentOverlap,
        DropReason::ReassemblyFull,
        DropReason::FragmentTooLarge,
        DropReason::NoUdpSocket,
        DropReason::IcmpErrorNotOurs,
        DropReason::ArpEvicted,
        DropReason::ArpRateLimited,
    ];

    const fn index(self) -> usize {
        match self {
            DropReason::NotForUsMac => 0,
            DropReason::NotForUsIp => 1,
            DropReason::Fragment => 2,
            DropReason::Truncated => 3,
            DropReason::BadChecksum => 4,
            DropReason::Malformed => 5,
            DropReason::UnsupportedProtocol => 6,
            DropReason::ArpQueueOverflow => 7,
            DropReason::Unreachable => 8,
            DropReason::NoTxBuffer => 9,
            DropReason::Martian => 10,
            DropReason::FragmentOverlap => 11,
            DropReason::ReassemblyFull => 12,
            DropReason::FragmentTooLarge => 13,
            DropReason::NoUdpSocket => 14,
            DropReason::IcmpErrorNotOurs => 15,
            DropReason::ArpEvicted => 16,
            DropReason::ArpRateLimited => 17,
        }
    }

    /// A short snake_case name, used by `Display`.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::NotForUsMac => "not_for_us_mac",
            DropReason::NotForUsIp => "not_for_us_ip",
            DropReason::Fragment => "fragment",
            DropReason::Truncated => "truncated",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::Malformed => "malformed",
            DropReason::UnsupportedProtocol => "unsupported_protocol",
            DropReason::ArpQueueOverflow => "arp_queue_overflow",
            DropReason::Unreachable => "unreachable",
            DropReason::NoTxBuffer => "no_tx_buffer",
            DropReason::Martian => "martian",
            DropReason::FragmentOverlap => "fragment_overlap",
            DropReason::ReassemblyFull => "reassembly_full",
            DropReason::FragmentTooLarge => "fragment_too_large",
            DropReason::NoUdpSocket => "no_udp_socket",
            DropReason::IcmpErrorNotOurs => "icmp_error_not_ours",
            DropReason::ArpEvicted => "arp_evicted",
            DropReason::ArpRateLimited => "arp_rate_limited",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counters owned by an interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfaceStats {
    /// Frames handed to `receive`.
    pub rx_frames: u64,
    /// Frames written to the sink.
    pub tx_frames: u64,
    /// ARP requests sent (resolutions, retries and announcements).
    pub arp_requests_sent: u64,
    /// ARP replies sent.
    pub arp_replies_sent: u64,
    /// ARP entries learned or refreshed.
    pub arp_learned: u64,
    /// ICMP echo replies sent.
    pub icmp_echo_replies: u64,
    /// TCP segments handed to the caller.
    pub tcp_delivered: u64,
    /// UDP datagrams handed to the caller (their port is held).
    pub udp_delivered: u64,
    /// Outgoing packets queued waiting for ARP.
    pub arp_queued: u64,
    /// Queued packets sent after resolution.
    pub arp_flushed: u64,
    /// ICMP errors sent (Destination Unreachable, Time Exceeded).
    pub icmp_errors_sent: u64,
    /// ICMP errors not sent: the token bucket was empty.
    pub icmp_errors_rate_limited: u64,
    /// ICMP errors about our TCP segments handed to the caller.
    pub icmp_errors_received: u64,
    /// IPv4 fragments received.
    pub fragments_received: u64,
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// Reassembled datagrams of flows another queue owns, handed to it.
    pub handoffs_out: u64,
    /// Reassembled datagrams handed over by another queue.
    pub handoffs_in: u64,
    /// Incomplete datagrams given up after the reassembly timeout.
    pub reassembly_timeouts: u64,
    /// Fragments sent (datagrams over the MTU without DF).
    pub fragments_sent: u64,
    /// Unicast probes sent to re-confirm STALE neighbours.
    pub arp_probes_sent: u64,
    /// Confirmations from forward progress (TCP).
    pub arp_confirmed: u64,
    /// Neighbours whose probes went unanswered (FAILED).
    pub arp_failed: u64,
    /// Pending resolutions evicted to make room for a newer one.
    pub arp_pending_evicted: u64,
    /// New resolutions refused by the global request rate.
    pub arp_requests_limited: u64,
    /// Replies and announcements for addresses we never asked about,
    /// ignored (no entry created).
    pub arp_unsolicited_ignored: u64,
    drops: [u64; DropReason::ALL.len()],
}

impl IfaceStats {
    /// Counts one drop.
    pub fn count_drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }

    /// Drops for one reason.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

impl fmt::Display for IfaceStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rx_frames={} tx_frames={} arp_requests_sent={} arp_replies_sent={} arp_learned={} \
             icmp_echo_replies={} tcp_delivered={} udp_delivered={} arp_queued={} arp_flushed={} \
             icmp_errors_sent={} icmp_errors_rate_limited={} icmp_errors_received={} \
             fragments_received={} reassembled={} handoffs_out={} handoffs_in={} reassembly_timeouts={} fragments_sent={} \
             arp_probes_sent={} arp_confirmed={} arp_failed={} arp_pending_evicted={} \
             arp_requests_limited={} arp_unsolicited_ignored={}",
            self.rx_frames,
            self.tx_frames,
            self.arp_requests_sent,
            self.arp_replies_sent,
            self.arp_learned,
            self.icmp_echo_replies,
            self.tcp_delivered,
            self.udp_delivered,
            self.arp_queued,
            self.arp_flushed,
            self.icmp_errors_sent,
            self.icmp_errors_rate_limited,
            self.icmp_errors_received,
            self.fragments_received,
            self.reassembled,
            self.handoffs_out,
            self.handoffs_in,
            self.reassembly_timeouts,
            self.fragments_sent,
            self.arp_probes_sent,
            self.arp_confirmed,
            self.arp_failed,
            self.arp_pending_evicted,
            self.arp_requests_limited,
            self.arp_unsolicited_ignored
        )?;
        for r in DropReason::ALL {
            let n = self.drops(r);
            if n != 0 {
                write!(f, " drop.{r}={n}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_display() {
        let mut s = IfaceStats {
            rx_frames: 3,
            ..IfaceStats::default()
        };
        s.count_drop(DropReason::BadChecksum);
        s.count_drop(DropReason::BadChecksum);
        s.count_drop(DropReason::NotForUsMac);
        assert_eq!(s.drops(DropReason::BadChecksum), 2);
        assert_eq!(s.total_drops(), 3);
        let text = s.to_string();
        assert!(text.starts_with("rx_frames=3 "));
        assert!(text.contains("drop.bad_checksum=2"));
        assert!(text.contains("drop.not_for_us_mac=1"));
        assert!(!text.contains("drop.fragment"));
    }

    #[test]
    fn indices_are_distinct() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}

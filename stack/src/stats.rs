//! Per-core statistics counters.
//!
//! Each core owns one [`Stats`] and bumps plain `u64` fields (no atomics: a
//! core's counters are touched by that core only). To report for the whole
//! process, sum the cores' copies with [`Stats::merge`]. Every dropped frame
//! is counted under the reason it was dropped ([`DropReason`]): the
//! stack-wide summary of the interface's finer reasons
//! ([`iface::DropReason`](crate::iface::DropReason), mapped by `From`),
//! of `wire` parse errors, and of the stack's own. TCP segments the engine
//! refuses are counted by reason in the engine's own counters
//! (`TcpStats::drops`), the device's losses in its queue counters.

use core::fmt;

/// Why the stack dropped a frame (or a packet it was about to send). Every
/// variant is recorded by `Stack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Shorter than a header or a length field claims.
    Truncated,
    /// A checksum did not verify.
    BadChecksum,
    /// A field held a value the protocol forbids.
    Malformed,
    /// Well formed but not handled (other EtherTypes, VLAN tags, IP
    /// protocols), an outgoing TCP segment with no route, or an ICMP error
    /// about no TCP segment of ours.
    Unsupported,
    /// Addressed to another host (MAC or IP).
    NotForUs,
    /// An IPv4 fragment dropped by reassembly (inconsistent, overlapping,
    /// too large; the interface's counters say which).
    Fragment,
    /// An outgoing TCP segment or UDP datagram refused by the ARP queue:
    /// the per-neighbour queue or the table of pending resolutions full, or
    /// a new resolution over the request rate. Frames already queued and
    /// dropped later (their resolution evicted or given up) are counted by
    /// the interface only.
    ArpQueueFull,
    /// No buffer in the frame pool.
    NoBuffer,
    /// A UDP datagram for no socket (answered with ICMP port unreachable,
    /// rate permitting).
    NoSocket,
    /// The IPv4 reassembly pool was full, or the queue of reassembled
    /// datagrams handed to the cores owning their flows.
    ReassemblyFull,
    /// An outgoing packet larger than the MTU (a bug above the interface:
    /// counted, never sent).
    TooLarge,
    /// A frame from the wire with a martian source address (ours, 127/8,
    /// 0.0.0.0, multicast, broadcast; RFC 1122 §3.2.1.3).
    Martian,
    /// A UDP datagram for a socket whose receive queue was full.
    UdpQueueFull,
}

impl DropReason {
    /// Every reason, in declaration order (the order of [`Stats`] output).
    pub const ALL: [DropReason; 13] = [
        DropReason::Truncated,
        DropReason::BadChecksum,
        DropReason::Malformed,
        DropReason::Unsupported,
        DropReason::NotForUs,
        DropReason::Fragment,
        DropReason::ArpQueueFull,
        DropReason::NoBuffer,
        DropReason::NoSocket,
        DropReason::ReassemblyFull,
        DropReason::TooLarge,
        DropReason::Martian,
        DropReason::UdpQueueFull,
    ];

    /// The number of reasons.
    pub const COUNT: usize = DropReason::ALL.len();

    /// A short snake_case name, as printed.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::Malformed => "malformed",
            DropReason::Unsupported => "unsupported",
            DropReason::NotForUs => "not_for_us",
            DropReason::Fragment => "fragment",
            DropReason::ArpQueueFull => "arp_queue_full",
            DropReason::NoBuffer => "no_buffer",
            DropReason::NoSocket => "no_socket",
            DropReason::ReassemblyFull => "reassembly_full",
            DropReason::TooLarge => "too_large",
            DropReason::Martian => "martian",
            DropReason::UdpQueueFull => "udp_queue_full",
        }
    }
}

impl From<crate::wire::Error> for DropReason {
    fn from(e: crate::wire::Error) -> DropReason {
        match e {
            crate::wire::Error::Truncated => DropReason::Truncated,
            crate::wire::Error::BadChecksum => DropReason::BadChecksum,
            crate::wire::Error::Malformed => DropReason::Malformed,
            crate::wire::Error::Unsupported => DropReason::Unsupported,
        }
    }
}

/// The interface's reasons, summarised.
impl From<crate::iface::DropReason> for DropReason {
    fn from(r: crate::iface::DropReason) -> DropReason {
        use crate::iface::DropReason as I;
        match r {
            I::NotForUsMac | I::NotForUsIp => DropReason::NotForUs,
            I::Fragment | I::FragmentOverlap | I::FragmentTooLarge => DropReason::Fragment,
            I::ReassemblyFull => DropReason::ReassemblyFull,
            I::NoUdpSocket => DropReason::NoSocket,
            I::IcmpErrorNotOurs => DropReason::Unsupported,
            I::Truncated => DropReason::Truncated,
            I::BadChecksum => DropReason::BadChecksum,
            I::Malformed => DropReason::Malformed,
            I::UnsupportedProtocol | I::Unreachable => DropReason::Unsupported,
            I::ArpQueueOverflow | I::ArpEvicted | I::ArpRateLimited => DropReason::ArpQueueFull,
            I::NoTxBuffer => DropReason::NoBuffer,
            I::Martian => DropReason::Martian,
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One core's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Frames received from the device.
    pub rx_frames: u64,
    /// Frames sent to the device.
    pub tx_frames: u64,
    /// Bytes in received frames.
    pub rx_bytes: u64,
    /// Bytes in sent frames.
    pub tx_bytes: u64,
    /// Drops, indexed by `DropReason as usize`.
    drops: [u64; DropReason::COUNT],
}

impl Stats {
    /// All counters zero.
    pub const fn new() -> Stats {
        Stats {
            rx_frames: 0,
            tx_frames: 0,
            rx_bytes: 0,
            tx_bytes: 0,
            drops: [0; DropReason::COUNT],
        }
    }

    /// Counts one received frame of `len` bytes.
    #[inline]
    pub fn record_rx(&mut self, len: usize) {
        self.rx_frames += 1;
        self.rx_bytes += len as u64;
    }

    /// Counts one sent frame of `len` bytes.
    #[inline]
    pub fn record_tx(&mut self, len: usize) {
        self.tx_frames += 1;
        self.tx_bytes += len as u64;
    }

    /// Counts one drop.
    #[inline]
    pub fn record_drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// Counts `n` drops.
    #[inline]
    pub fn record_drops(&mut self, reason: DropReason, n: u64) {
        self.drops[reason as usize] += n;
    }

    /// Drops counted for `reason`.
    #[inline]
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Drops for every reason together.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds `other`'s counters to these (to sum cores).
    pub fn merge(&mut self, other: &Stats) {
        self.rx_frames += other.rx_frames;
        self.tx_frames += other.tx_frames;
        self.rx_bytes += other.rx_bytes;
        self.tx_bytes += other.tx_bytes;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
    }
}

/// Nonzero counters only: `rx 10 frames/640 B, tx 9 frames/600 B` on the
/// first line, then `drops: bad_checksum=1 no_socket=2` when there are any.
/// All zero prints `no traffic`.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = 0;
        if self.rx_frames != 0 || self.rx_bytes != 0 {
            write!(f, "rx {} frames/{} B", self.rx_frames, self.rx_bytes)?;
            parts += 1;
        }
        if self.tx_frames != 0 || self.tx_bytes != 0 {
            if parts > 0 {
                f.write_str(", ")?;
            }
            write!(f, "tx {} frames/{} B", self.tx_frames, self.tx_bytes)?;
            parts += 1;
        }
        if self.total_drops() != 0 {
            if parts > 0 {
                f.write_str("\n")?;
            }
            f.write_str("drops:")?;
            for r in DropReason::ALL {
                let n = self.drops(r);
                if n != 0 {
                    write!(f, " {r}={n}")?;
                }
            }
            parts += 1;
        }
        if parts == 0 {
            f.write_str("no traffic")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_reasons_are_listed_once_in_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn every_interface_reason_maps_to_a_stack_reason() {
        use crate::iface::DropReason as I;
        let mut s = Stats::new();
        for r in I::ALL {
            s.record_drop(r.into());
        }
        assert_eq!(s.total_drops(), I::ALL.len() as u64);
        assert_eq!(s.drops(DropReason::NotForUs), 2);
        assert_eq!(s.drops(DropReason::Fragment), 3);
        assert_eq!(s.drops(DropReason::ArpQueueFull), 3);
        assert_eq!(DropReason::from(I::NoUdpSocket), DropReason::NoSocket);
        assert_eq!(DropReason::from(I::NoTxBuffer), DropReason::NoBuffer);
    }

    #[test]
    fn record_and_total() {
        let mut s = Stats::new();
        s.record_rx(60);
        s.record_rx(1514);
        s.record_tx(54);
        s.record_drop(DropReason::BadChecksum);
        s.record_drop(DropReason::BadChecksum);
        s.record_drops(DropReason::NoSocket, 3);
        s.record_drop(crate::wire::Error::Truncated.into());
        assert_eq!((s.rx_frames, s.rx_bytes), (2, 1574));
        assert_eq!((s.tx_frames, s.tx_bytes), (1, 54));
        assert_eq!(s.drops(DropReason::BadChecksum), 2);
        assert_eq!(s.drops(DropReason::Truncated), 1);
        assert_eq!(s.drops(DropReason::Fragment), 0);
        assert_eq!(s.total_drops(), 6);
    }

    #[test]
    fn merge_sums_every_counter() {
        let mut a = Stats::new();
        let mut b = Stats::new();
        a.record_rx(10);
        b.record_rx(20);
        b.record_tx(5);
        for r in DropReason::ALL {
            a.record_drop(r);
            b.record_drops(r, 2);
        }
        a.merge(&b);
        assert_eq!(
            (a.rx_frames, a.rx_bytes, a.tx_frames, a.tx_bytes),
            (2, 30, 1, 5)
        );
        for r in DropReason::ALL {
            assert_eq!(a.drops(r), 3);
        }
        assert_eq!(a.total_drops(), 3 * DropReason::COUNT as u64);
    }

    #[test]
    fn display_prints_nonzero_counters_only() {
        let mut s = Stats::default();
        assert_eq!(s.to_string(), "no traffic");
        s.record_rx(64);
        assert_eq!(s.to_string(), "rx 1 frames/64 B");
        s.record_tx(60);
        s.record_drop(DropReason::NotForUs);
        s.record_drops(DropReason::UdpQueueFull, 4);
        assert_eq!(
            s.to_string(),
            "rx 1 frames/64 B, tx 1 frames/60 B\ndrops: not_for_us=1 udp_queue_full=4"
        );
        let mut d = Stats::new();
        d.record_drop(DropReason::TooLarge);
        assert_eq!(d.to_string(), "drops: too_large=1");
    }
}

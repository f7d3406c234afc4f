//! The NIC layer: the per-queue device trait, frames and their pool, and the
//! backends.
//!
//! A device is seen by a core as one [`NicQueue`]: an RX queue and a TX queue
//! it owns alone, used in bursts. Frames are owned buffers ([`Frame`]) taken
//! from and given back to the core's [`FramePool`], so nothing is allocated
//! per packet.
//!
//! ```text
//!   core 0                 core 1                      (one thread each)
//!   ┌──────────┐           ┌──────────┐
//!   │ NicQueue │  q0       │ NicQueue │  q1             rx_burst / tx_burst
//!   └────┬─────┘           └────┬─────┘
//!        └────────── device ────┘                      RSS steers flows to queues
//! ```
//!
//! Backends: [`memory`] (two ports joined by lock-free rings, RSS by
//! symmetric Toeplitz hash). Wrappers: [`faults`] (seeded loss, duplication,
//! reordering, corruption) and [`pcap`] (capture to a file).

use core::fmt;
use std::os::fd::RawFd;

use crate::time::Duration;
use crate::wire::ethernet::EthernetAddress;

#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod faults;
mod frame;
pub(crate) mod gso;
pub mod memory;
pub mod pcap;

pub mod rss;
pub(crate) mod spsc;

#[cfg(target_os = "linux")]
pub mod af_packet;
#[cfg(target_os = "linux")]
mod bpf;
#[cfg(target_os = "linux")]
pub(crate) mod sys;
#[cfg(target_os = "linux")]
pub mod tap;
#[cfg(target_os = "linux")]
pub mod xdp;

pub use frame::{Frame, FramePool, FRAME_CAPACITY};

/// Offloads a device performs, so the stack can skip the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Received frames' IPv4/TCP/UDP checksums were verified by the device;
    /// frames with bad checksums never reach the stack.
    pub rx_checksum: bool,
    /// The device fills in IPv4/TCP/UDP checksums on transmit.
    pub tx_checksum: bool,
    /// The device segments TCP payloads larger than the MSS (TSO).
    pub tso: bool,
}

/// What a queue tells its core about the device behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device's MAC address, when it has one.
    pub mac: Option<EthernetAddress>,
    /// The IP MTU in bytes (1500 for Ethernet): the largest IPv4 packet the
    /// device carries, without the 14-byte Ethernet header.
    pub mtu: usize,
    /// This queue's index, `0..queues`.
    pub queue: usize,
    /// How many queues the device has (one per core).
    pub queues: usize,
    /// Offloads.
    pub caps: Capabilities,
}

/// Counters a queue keeps about its own traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounters {
    /// Frames handed to the stack by `rx_burst`.
    pub rx_frames: u64,
    /// Bytes in those frames.
    pub rx_bytes: u64,
    /// Frames taken by `tx_burst`.
    pub tx_frames: u64,
    /// Bytes in those frames.
    pub tx_bytes: u64,
    /// Frames the device could not deliver because a receive ring was full.
    pub ring_full_drops: u64,
    /// `rx_burst` calls cut short because the frame pool was empty (the
    /// frames stay in the device until buffers come back).
    pub rx_no_buffer: u64,
    /// Received frames the backend or the kernel dropped for another reason
    /// than a full ring: a frame truncated in its ring slot, GSO segments
    /// lost for want of buffers, AF_XDP `rx_dropped`.
    pub rx_dropped: u64,
    /// AF_XDP `rx_invalid_descs`: RX descriptors the kernel found invalid.
    pub rx_invalid_descs: u64,
    /// Frames taken by `tx_burst` but never sent: larger than a TX slot,
    /// refused by the kernel (`TP_STATUS_WRONG_FORMAT`).
    pub tx_dropped: u64,
    /// AF_XDP `tx_invalid_descs`: TX descriptors the kernel refused.
    pub tx_invalid_descs: u64,
    /// Frames lost because another queue's re-steering ring was full
    /// (multi-queue AF_PACKET, AF_XDP).
    pub handoff_drops: u64,
}

impl QueueCounters {
    /// Every frame the device lost on the way in or out, whatever the
    /// reason (`rx_no_buffer` is not a loss: the frames wait).
    pub fn total_drops(&self) -> u64 {
        self.ring_full_drops
            + self.rx_dropped
            + self.rx_invalid_descs
            + self.tx_dropped
            + self.tx_invalid_descs
            + self.handoff_drops
    }
}

/// One line, nonzero counters only: `nic: rx 10 frames, tx 9 frames,
/// ring_full_drops=3`; all zero prints `nic: no traffic`.
impl fmt::Display for QueueCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nic:")?;
        let fields = [
            ("rx_frames", self.rx_frames),
            ("tx_frames", self.tx_frames),
            ("ring_full_drops", self.ring_full_drops),
            ("rx_no_buffer", self.rx_no_buffer),
            ("rx_dropped", self.rx_dropped),
            ("rx_invalid_descs", self.rx_invalid_descs),
            ("tx_dropped", self.tx_dropped),
            ("tx_invalid_descs", self.tx_invalid_descs),
            ("handoff_drops", self.handoff_drops),
        ];
        let mut any = false;
        for (name, n) in fields {
            if n != 0 {
                write!(f, " {name}={n}")?;
                any = true;
            }
        }
        if !any {
            f.write_str(" no traffic")?;
        }
        Ok(())
    }
}

/// How many slots each ring of an AF_PACKET queue has ([`af_packet`]).
///
/// RX and TX slots are 2 KiB each, 32 to a 64 KiB block; both counts are
/// rounded up to whole blocks. `MTCP_RING_FRAMES` (see [`crate::config`])
/// sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSizes {
    /// RX ring slots (frames the kernel can hold for us between bursts).
    pub rx: usize,
    /// TX ring slots.
    pub tx: usize,
}

impl RingSizes {
    /// The fewest slots a ring may have.
    pub const MIN: usize = 16;
    /// The most slots a ring may have.
    pub const MAX: usize = 65536;

    /// True when both sizes are within [`RingSizes::MIN`]`..=`[`RingSizes::MAX`].
    pub fn valid(&self) -> bool {
        (Self::MIN..=Self::MAX).contains(&self.rx) && (Self::MIN..=Self::MAX).contains(&self.tx)
    }
}

/// 4 096 RX slots and 4 096 TX slots (8 MiB each per queue): a burst from a
/// thousand connections at once, with their delayed ACKs, fits twice over
/// (docs/devices.md).
impl Default for RingSizes {
    fn default() -> RingSizes {
        RingSizes { rx: 4096, tx: 4096 }
    }
}

/// Why a device could not be opened or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicError {
    /// A frame is larger than [`FRAME_CAPACITY`] or the device's MTU.
    FrameTooLarge,
    /// A parameter is out of range (zero queues, zero ring size, …).
    InvalidArgument,
    /// The device or its peer is gone.
    Disconnected,
    /// The device is not supported on this system or build.
    Unsupported,
    /// A system call failed with this `errno`.
    Io(i32),
    /// The named network interface does not exist (in this network
    /// namespace).
    NoSuchInterface,
    /// The caller lacks the privilege (CAP_NET_ADMIN, CAP_NET_RAW,
    /// CAP_BPF) the device needs.
    PermissionDenied,
    /// The device or queue is in use by someone else.
    Busy,
}

impl fmt::Display for NicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NicError::FrameTooLarge => f.write_str("frame too large"),
            NicError::InvalidArgument => f.write_str("invalid argument"),
            NicError::Disconnected => f.write_str("device disconnected"),
            NicError::Unsupported => f.write_str("device not supported"),
            NicError::Io(errno) => write!(
                f,
                "I/O error: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            NicError::NoSuchInterface => {
                f.write_str("no such network interface (check the name and the network namespace)")
            }
            NicError::PermissionDenied => f.write_str(
                "permission denied: the device needs root or CAP_NET_ADMIN/CAP_NET_RAW/CAP_BPF",
            ),
            NicError::Busy => f.write_str("device or queue busy: another program is using it"),
        }
    }
}

impl std::error::Error for NicError {}

/// One RX/TX queue pair of a device, owned by one core.
///
/// All I/O is in bursts. The trait is object safe: the runtime holds a
/// `Box<dyn NicQueue>` and wrappers ([`faults::FaultyQueue`],
/// [`pcap::PcapQueue`]) stack on top of any queue, boxed or not.
pub trait NicQueue: Send {
    /// The device's properties as seen from this queue.
    fn info(&self) -> &DeviceInfo;

    /// Receives up to `max` frames, appending them to `out`; returns how many
    /// were appended. Buffers come from `pool`; when the pool runs dry the
    /// remaining frames stay in the device (or are dropped and counted, as
    /// the device does).
    fn rx_burst(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize) -> usize;

    /// Sends frames from the front of `frames`; returns how many were taken.
    /// Their buffers go back to `pool`. Frames not taken (the device's TX
    /// ring is full) stay in `frames`, in order, for the next call.
    fn tx_burst(&mut self, frames: &mut Vec<Frame>, pool: &mut FramePool) -> usize;

    /// True when `rx_burst` would return at least one frame now (a hint:
    /// a wrapper may still drop it).
    fn rx_pending(&self) -> bool;

    /// Frames waiting in the RX queue now, for a device that can count
    /// them cheaply (the in-memory NIC); `None` (the default) for one that
    /// cannot. A hint, like [`rx_pending`](Self::rx_pending): the stack
    /// sizes its RX bursts by it ([`crate::Stack::poll`]).
    fn rx_backlog(&mut self) -> Option<usize> {
        None
    }

    /// Parks the calling thread until frames may be pending or `timeout`
    /// passes. It may return early; the caller re-checks. Used by the
    /// runtime's idle policy when a tick did nothing.
    fn wait_rx(&self, timeout: Duration);

    /// A file descriptor that becomes readable when frames arrive, for
    /// devices that have one (TAP, AF_PACKET), so the runtime can poll it
    /// together with other descriptors.
    fn raw_fd(&self) -> Option<RawFd> {
        None
    }

    /// This queue's own counters.
    fn counters(&self) -> QueueCounters {
        QueueCounters::default()
    }
}

impl<Q: NicQueue + ?Sized> NicQueue for Box<Q> {
    fn info(&self) -> &DeviceInfo {
        (**self).info()
    }
    fn rx_burst(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize) -> usize {
        (**self).rx_burst(pool, out, max)
    }
    fn tx_burst(&mut self, frames: &mut Vec<Frame>, pool: &mut FramePool) -> usize {
        (**self).tx_burst(frames, pool)
    }
    fn rx_pending(&self) -> bool {
        (**self).rx_pending()
    }
    fn rx_backlog(&mut self) -> Option<usize> {
        (**self).rx_backlog()
    }
    fn wait_rx(&self, timeout: Duration) {
        (**self).wait_rx(timeout)
    }
    fn raw_fd(&self) -> Option<RawFd> {
        (**self).raw_fd()
    }
    fn counters(&self) -> QueueCounters {
        (**self).counters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_counters_line_and_total() {
        let mut c = QueueCounters::default();
        assert_eq!(c.to_string(), "nic: no traffic");
        assert_eq!(c.total_drops(), 0);
        c.rx_frames = 10;
        c.ring_full_drops = 3;
        c.rx_no_buffer = 2;
        c.tx_invalid_descs = 1;
        c.handoff_drops = 4;
        assert_eq!(
            c.to_string(),
            "nic: rx_frames=10 ring_full_drops=3 rx_no_buffer=2 tx_invalid_descs=1 handoff_drops=4"
        );
        // Waiting for buffers is not a loss.
        assert_eq!(c.total_drops(), 8);
    }
}

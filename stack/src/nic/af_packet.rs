//! AF_PACKET with memory-mapped rings: any Linux interface (a veth, a real
//! NIC) as a device, without a driver of our own.
//!
//! # Rings
//!
//! Each queue is one `AF_PACKET`/`SOCK_RAW` socket bound to the interface,
//! with `PACKET_VNET_HDR`, a `TPACKET_V2` RX ring and a `TPACKET_V2` TX
//! ring in one shared mapping:
//!
//! ```text
//!   mapping: [ RX: 4096 slots of 2048 bytes ][ TX: 4096 slots of 2048 bytes ]
//!   RX slot: [ tpacket2_hdr | sockaddr_ll | virtio_net_hdr | frame (≤ 1972 B) ]
//!   larger:  slot holds the start, TP_STATUS_COPY ─▶ whole frame: recv() on the socket
//!   TX slot: [ tpacket2_hdr | virtio_net_hdr (zero) | frame ]
//!            tp_status: KERNEL ⇄ USER (RX), AVAILABLE → SEND_REQUEST → AVAILABLE (TX)
//! ```
//!
//! The RX ring must hold a whole burst of small frames — about one per
//! connection sending at once — arriving while the core is busy, so what
//! matters is the slot *count*: 4096 by default ([`RingSizes`],
//! `MTCP_RING_FRAMES`), 8 MiB per queue. (The earlier ring had 240 slots
//! of 68 KiB, so that a 64 KiB super-frame fitted a slot: a thousand
//! connections sending at once lost most of each burst at the ring, as
//! `tp_drops`; see docs/devices.md.) A kernel peer with TSO/GSO on (a
//! veth's default once TX checksum offload is on), or a NIC's GRO, still
//! hands over TCP super-frames of up to 64 KiB: with `PACKET_COPY_THRESH`
//! the kernel puts the start of such a frame in its slot, flagged
//! `TP_STATUS_COPY`, and queues the whole frame (virtio-net header first)
//! on the socket, where `rx_burst` reads it with one `recv` into a
//! per-queue 64 KiB buffer; the socket's receive buffer (16 MiB with
//! `SO_RCVBUFFORCE`) bounds how many wait. One system call per super-frame,
//! none for ordinary frames.
//!
//! Every loss is counted in [`NicQueue::counters`]: the kernel's
//! `tp_drops` (`PACKET_STATISTICS`, read at each call), frames truncated
//! in their slot or GSO segments lost (`rx_dropped`), frames too large for
//! a TX slot or refused by the kernel (`tx_dropped`), re-steering rings
//! full (`handoff_drops`). A full TX ring drops nothing: `tx_burst` leaves
//! the frames to the caller, and a flush the kernel refuses (`EAGAIN`,
//! `ENOBUFS`) is retried at the next burst.
//!
//! * RX costs no system call: `rx_burst` walks slots whose status is
//!   `TP_STATUS_USER`, copies each frame into a pool [`Frame`] and hands
//!   the slot back to the kernel.
//! * TX fills `TP_STATUS_AVAILABLE` slots, marks them `SEND_REQUEST`, and
//!   flushes the whole burst with one `send()` (`MSG_DONTWAIT`).
//! * `PACKET_QDISC_BYPASS` skips the qdisc layer on TX; `PACKET_LOSS`
//!   makes the kernel skip (not stall on) a malformed TX frame.
//! * `PACKET_MR_PROMISC` membership: the stack's MAC need not be the
//!   interface's. Frames the host itself sends (`PACKET_OUTGOING`) are
//!   ignored (`PACKET_IGNORE_OUTGOING`, and checked per frame).
//!
//! **Why TPACKET_V2 and not V3.** V3 hands the RX ring to user space a
//! *block* at a time: a block is retired when full or when its timer
//! (`tp_retire_blk_tov`, milliseconds, jiffy-granular) fires. Under
//! request/response traffic a block is never full, so every received
//! segment would wait up to the timeout — a millisecond or more added to
//! every round trip of a stack whose whole point is microseconds. V2 makes
//! each frame visible the moment the kernel has copied it.
//!
//! # Checksums
//!
//! A frame the kernel sent with checksum offload (`CHECKSUM_PARTIAL`: the
//! peer end of a veth with `tx on`) arrives flagged
//! `TP_STATUS_CSUMNOTREADY`, its virtio-net header saying `NEEDS_CSUM` at
//! `csum_start + csum_offset`: its TCP/UDP checksum field holds only the
//! pseudo-header sum. `rx_burst` completes it in software (the ones'
//! complement sum from `csum_start` on, the partial field included; when the
//! header carries no such information, the headers are parsed), so the
//! stack verifies it like any other frame and pcap captures stay valid.
//!
//! # GSO super-frames
//!
//! A frame whose virtio-net header says `GSO_TCPV4` is cut into
//! `gso_size`-byte segments, each its own pool [`Frame`], by
//! the crate's GSO splitter, `nic/gso.rs` (headers copied and fixed up, full checksums). A
//! burst that fills up mid-frame keeps the slot and resumes at the next
//! segment; a pool that runs dry mid-frame drops the rest
//! ([`RxOffloadCounters::gso_dropped`]). Frames flagged `TP_STATUS_CSUM_VALID` are still verified by the
//! stack: the flag is per frame and the [`NicQueue`] interface carries no
//! per-frame metadata, so the device reports no RX checksum offload.
//!
//! # Several queues: software re-steering
//!
//! The sockets of one device join a `PACKET_FANOUT` group
//! (`PACKET_FANOUT_HASH`: the kernel's flow hash keeps each flow on one
//! socket, so nothing is reordered). That hash is not the stack's
//! symmetric Toeplitz hash, and the stack chooses ephemeral ports so that
//! *Toeplitz* brings replies back to the connecting core. So each queue
//! re-steers in software:
//!
//! ```text
//!   kernel fanout ─▶ socket q ─▶ rx_burst(q): Rss::steer(frame)
//!                                  ├─ q          → returned to the caller
//!                                  ├─ r ≠ q      → SPSC ring q→r, eventfd r
//!                                  └─ all (ARP)  → returned, and copied to every r
//!   rx_burst(r) first drains its rings from the other queues.
//! ```
//!
//! There is one lock-free single-producer ring (`nic/spsc.rs`) per ordered pair of
//! queues; a queue handing frames over writes the target's `eventfd` once
//! per burst, so a target parked in [`NicQueue::wait_rx`] (or polling
//! [`NicQueue::raw_fd`], an epoll descriptor covering both its socket and
//! its eventfd) wakes up. Frames are copied once more than with hardware
//! RSS, only for the flows the kernel placed on the wrong socket.
#![allow(unsafe_code)]

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::gso::{self, TcpSegments, VnetFlags, VnetHdr, VNET_HDR_LEN};
use super::rss::{Rss, Steer};
use super::spsc::{self, Consumer, Producer};
use super::sys::{self, cvt, owned_fd, setsockopt, Mmap};
use super::{
    Capabilities, DeviceInfo, Frame, FramePool, NicError, NicQueue, QueueCounters, RingSizes,
    FRAME_CAPACITY,
};
use crate::time::Duration;
use crate::wire::checksum;
use crate::wire::ethernet::{self, EtherType, EthernetFrame, VlanTag};
use crate::wire::ipv4::{IpProtocol, Ipv4Packet};
use crate::wire::tcp::TcpPacket;
use crate::wire::udp::UdpPacket;

/// Bytes per TX ring slot: header, virtio-net header and a full frame
/// with a VLAN tag.
const SLOT_SIZE: usize = 2048;
/// Bytes per TX ring block: 32 slots.
const BLOCK_SIZE: usize = 1 << 16;
/// TX slots per block.
const TX_PER_BLOCK: usize = BLOCK_SIZE / SLOT_SIZE;
/// Bytes per RX ring slot: 2 KiB, so an MTU-sized frame (with a VLAN
/// tag) fits behind the slot's headers (76 bytes: `tpacket2_hdr`,
/// `sockaddr_ll`, the virtio-net header). A larger frame (a GSO/GRO
/// super-frame) gets only its start in the slot, flagged `TP_STATUS_COPY`,
/// and the whole of it on the socket's receive queue (`PACKET_COPY_THRESH`),
/// read with one `recv`.
const RX_SLOT_SIZE: usize = 2048;
/// Bytes per RX ring block: 64 KiB, 32 slots.
const RX_BLOCK_SIZE: usize = 1 << 16;
/// RX slots per block.
const RX_PER_BLOCK: usize = RX_BLOCK_SIZE / RX_SLOT_SIZE;
/// `PACKET_COPY_THRESH` (linux/if_packet.h): frames too large for a slot
/// are also queued whole on the socket.
const PACKET_COPY_THRESH: libc::c_int = 7;
/// Bytes of the buffer a copied (too large for a slot) frame is read into:
/// its virtio-net header and the largest IPv4 packet with its Ethernet
/// header.
const BIG_LEN: usize = VNET_HDR_LEN + 14 + 65535;
/// The socket's receive buffer for copied frames (`SO_RCVBUFFORCE`, else
/// `SO_RCVBUF` as far as `rmem_max` allows).
const COPY_RCVBUF: libc::c_int = 16 << 20;
/// `PACKET_VNET_HDR` (linux/if_packet.h).
const PACKET_VNET_HDR: libc::c_int = 15;
/// `TPACKET_ALIGN(sizeof(struct tpacket2_hdr))`: where `sockaddr_ll` is in
/// an RX slot, and where frame data starts in a TX slot.
const HDR_LEN: usize = 32;
const TPACKET_V2: libc::c_int = 1;
/// Slots in each re-steering ring.
const HANDOFF_SLOTS: usize = 256;

// tpacket2_hdr field offsets.
const TP_LEN: usize = 4;
const TP_SNAPLEN: usize = 8;
const TP_MAC: usize = 12;
const TP_VLAN_TCI: usize = 24;
const TP_VLAN_TPID: usize = 26;
// sockaddr_ll.sll_pkttype, relative to the sockaddr_ll.
const SLL_PKTTYPE: usize = 10;

static FANOUT_SEQ: AtomicUsize = AtomicUsize::new(0);

/// Opens AF_PACKET queues on an interface. See the module documentation.
#[derive(Debug)]
pub struct AfPacketDevice;

impl AfPacketDevice {
    /// Opens `queues` queues on `ifname` (in the calling thread's network
    /// namespace). With more than one queue the sockets join one fanout
    /// group and re-steer by symmetric Toeplitz RSS.
    ///
    /// # Errors
    /// [`NicError::NoSuchInterface`], [`NicError::PermissionDenied`]
    /// (needs CAP_NET_RAW), [`NicError::InvalidArgument`] for zero queues,
    /// [`NicError::Io`] for any other failure of the set-up calls.
    pub fn open(ifname: &str, queues: usize) -> Result<Vec<AfPacketQueue>, NicError> {
        AfPacketDevice::open_with(ifname, queues, RingSizes::default())
    }

    /// [`AfPacketDevice::open`] with the given ring sizes (rounded up to
    /// whole ring blocks).
    ///
    /// # Errors
    /// As `open`; [`NicError::InvalidArgument`] for ring sizes outside
    /// [`RingSizes::MIN`]`..=`[`RingSizes::MAX`].
    pub fn open_with(
        ifname: &str,
        queues: usize,
        sizes: RingSizes,
    ) -> Result<Vec<AfPacketQueue>, NicError> {
        if queues == 0 || queues > 64 || !sizes.valid() {
            return Err(NicError::InvalidArgument);
        }
        let geo = Geometry::new(sizes);
        let ifindex = sys::ifindex(ifname)?;
        let mtu = sys::if_mtu(ifname)?;
        let mac = sys::if_mac(ifname).ok();
        let fanout_id = ((std::process::id() as usize)
            .wrapping_mul(31)
            .wrapping_add(FANOUT_SEQ.fetch_add(1, Ordering::Relaxed))
            & 0xffff) as u32;
        let mut out = Vec::with_capacity(queues);
        for queue in 0..queues {
            let (fd, ring) = open_socket(ifindex, &geo)?;
            if queues > 1 {
                let arg = fanout_id | (libc::PACKET_FANOUT_HASH << 16);
                setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)?;
            }
            out.push(AfPacketQueue {
                fd,
                ring,
                geo,
                tx_unflushed: false,
                rx_next: 0,
                tx_next: 0,
                gso_next: 0,
                info: DeviceInfo {
                    mac,
                    mtu,
                    queue,
                    queues,
                    caps: Capabilities::default(),
                },
                counters: QueueCounters::default(),
                offload: RxOffloadCounters::default(),
                kernel_drops: Cell::new(0),
                tx_flush_retries: 0,
                big: vec![0u8; BIG_LEN].into_boxed_slice(),
                big_len: None,
                steering: None,
            });
        }
        if queues > 1 {
            let fds: Vec<RawFd> = out.iter().map(|q| q.fd.as_raw_fd()).collect();
            for (q, st) in out.iter_mut().zip(Steering::set(&fds)?) {
                q.steering = Some(st);
            }
        }
        Ok(out)
    }
}

/// The ring layout of one queue, from [`RingSizes`].
#[derive(Debug, Clone, Copy)]
struct Geometry {
    rx_blocks: usize,
    rx_slots: usize,
    tx_blocks: usize,
    tx_slots: usize,
}

impl Geometry {
    fn new(sizes: RingSizes) -> Geometry {
        let rx_blocks = sizes.rx.div_ceil(RX_PER_BLOCK);
        let tx_blocks = sizes.tx.div_ceil(TX_PER_BLOCK);
        Geometry {
            rx_blocks,
            rx_slots: rx_blocks * RX_PER_BLOCK,
            tx_blocks,
            tx_slots: tx_blocks * TX_PER_BLOCK,
        }
    }

    /// Bytes of the RX ring in the mapping (the TX ring follows).
    fn rx_len(&self) -> usize {
        self.rx_blocks * RX_BLOCK_SIZE
    }

    fn len(&self) -> usize {
        self.rx_len() + self.tx_blocks * BLOCK_SIZE
    }
}

/// Creates, configures and binds one socket; returns it and its rings.
fn open_socket(ifindex: u32, geo: &Geometry) -> Result<(OwnedFd, Mmap), NicError> {
    // Protocol 0: nothing is queued before bind() picks the interface.
    // SAFETY: plain system call.
    let fd = owned_fd(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    let raw = fd.as_raw_fd();
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V2)?;
    let one: libc::c_int = 1;
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one)?;
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_LOSS, &one)?;
    // Since Linux 4.20; older kernels get the per-frame check only.
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one).ok();
    // Before the rings (the kernel refuses it after): every frame in
    // either ring is preceded by a `struct virtio_net_hdr`.
    setsockopt(raw, libc::SOL_PACKET, PACKET_VNET_HDR, &one)?;
    // Frames larger than an RX slot go whole to the receive queue too.
    setsockopt(raw, libc::SOL_PACKET, PACKET_COPY_THRESH, &one)?;
    if setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &COPY_RCVBUF).is_err() {
        setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &COPY_RCVBUF).ok();
    }
    let rx = libc::tpacket_req {
        tp_block_size: RX_BLOCK_SIZE as u32,
        tp_block_nr: geo.rx_blocks as u32,
        tp_frame_size: RX_SLOT_SIZE as u32,
        tp_frame_nr: geo.rx_slots as u32,
    };
    let tx = libc::tpacket_req {
        tp_block_size: BLOCK_SIZE as u32,
        tp_block_nr: geo.tx_blocks as u32,
        tp_frame_size: SLOT_SIZE as u32,
        tp_frame_nr: geo.tx_slots as u32,
    };
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &rx)?;
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_TX_RING, &tx)?;
    let ring = Mmap::shared(raw, geo.len(), 0)?;
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex as libc::c_int,
        mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)?;
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
    cvt(unsafe {
        libc::bind(
            raw,
            (&sll as *const libc::sockaddr_ll).cast(),
            core::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok((fd, ring))
}

/// The software RSS re-steering state of one queue of a multi-queue device
/// (shared by the AF_PACKET and AF_XDP backends; see the module
/// documentation).
#[derive(Debug)]
pub(super) struct Steering {
    me: usize,
    rss: Rss,
    /// Rings to the other queues, by target queue (`None` for ourselves).
    to: Vec<Option<Producer>>,
    /// Rings from the other queues.
    from: Vec<Consumer>,
    /// Every queue's eventfd, by queue.
    events: Vec<Arc<OwnedFd>>,
    /// Targets written to during this burst.
    touched: Vec<bool>,
    /// epoll over our device descriptor and our eventfd, for `raw_fd`.
    epoll: OwnedFd,
    /// Frames handed to other queues.
    handed_over: u64,
}

fn eventfd() -> Result<OwnedFd, NicError> {
    // SAFETY: plain system call.
    owned_fd(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })
}

impl Steering {
    /// The steering states of `fds.len()` queues whose device descriptors
    /// (readable when frames arrive) are `fds`.
    pub(super) fn set(fds: &[RawFd]) -> Result<Vec<Steering>, NicError> {
        let n = fds.len();
        let events: Vec<Arc<OwnedFd>> = (0..n)
            .map(|_| eventfd().map(Arc::new))
            .collect::<Result<_, _>>()?;
        let mut to: Vec<Vec<Option<Producer>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut from: Vec<Vec<Consumer>> = (0..n).map(|_| Vec::new()).collect();
        for (src, row) in to.iter_mut().enumerate() {
            for (dst, slot) in row.iter_mut().enumerate() {
                if src != dst {
                    let (p, c) = spsc::channel(HANDOFF_SLOTS);
                    *slot = Some(p);
                    from[dst].push(c);
                }
            }
        }
        let mut out = Vec::with_capacity(n);
        for (me, (to, from)) in to.into_iter().zip(from).enumerate() {
            // SAFETY: plain system call.
            let epoll = owned_fd(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
            for fd in [fds[me], events[me].as_raw_fd()] {
                let mut ev = libc::epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: fd as u64,
                };
                // SAFETY: `ev` is a valid epoll_event; both descriptors
                // are open.
                cvt(unsafe {
                    libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev)
                })?;
            }
            out.push(Steering {
                me,
                rss: Rss::symmetric(n),
                to,
                from,
                events: events.clone(),
                touched: vec![false; n],
                epoll,
                handed_over: 0,
            });
        }
        Ok(out)
    }

    /// Drains the rings from other queues into `out`.
    pub(super) fn drain(
        &mut self,
        pool: &mut FramePool,
        out: &mut Vec<Frame>,
        max: usize,
        counters: &mut QueueCounters,
    ) -> usize {
        let mut got = 0;
        let mut any = false;
        'rings: for ring in &mut self.from {
            while got < max && ring.has_pending() {
                let Some(mut frame) = pool.alloc() else {
                    counters.rx_no_buffer += 1;
                    ring.release();
                    break 'rings;
                };
                let copied = ring.pop_with(|data| {
                    frame.buffer_mut()[..data.len()].copy_from_slice(data);
                    frame.set_len(data.len());
                });
                if copied.is_none() {
                    pool.free(frame);
                    break;
                }
                any = true;
                counters.rx_bytes += frame.len() as u64;
                out.push(frame);
                got += 1;
            }
            ring.release();
        }
        if any {
            // Clear our wake-up; a later hand-off writes it again.
            let mut v = 0u64;
            // SAFETY: reads 8 bytes into `v`; the eventfd is nonblocking.
            unsafe {
                libc::read(
                    self.events[self.me].as_raw_fd(),
                    (&mut v as *mut u64).cast(),
                    8,
                );
            }
        }
        got
    }

    /// Hands a received frame to the caller (`out`) when it belongs to this
    /// queue, else to the queue it belongs to (or back to `pool`). Returns
    /// whether it was kept here. Shared by every backend that re-steers.
    pub(super) fn deliver(
        steering: Option<&mut Steering>,
        counters: &mut QueueCounters,
        frame: Frame,
        pool: &mut FramePool,
        out: &mut Vec<Frame>,
    ) -> bool {
        let keep = match steering {
            Some(st) => st.keep(&frame, counters),
            None => true,
        };
        if keep {
            counters.rx_bytes += frame.len() as u64;
            out.push(frame);
        } else {
            pool.free(frame);
        }
        keep
    }

    /// Where a received frame goes: `true` to keep it on this queue.
    /// Frames for other queues are copied into their rings (broadcasts to
    /// every other queue, and kept).
    pub(super) fn keep(&mut self, frame: &Frame, counters: &mut QueueCounters) -> bool {
        let data = frame.as_slice();
        let target = match self.rss.steer(data) {
            Steer::Queue(q) if q == self.me => return true,
            Steer::Queue(q) => Some(q),
            Steer::AllQueues => None,
        };
        for (q, p) in self.to.iter_mut().enumerate() {
            if target.is_some_and(|t| t != q) {
                continue;
            }
            if let Some(p) = p {
                if p.push(data).is_ok() {
                    self.touched[q] = true;
                    self.handed_over += 1;
                } else {
                    counters.handoff_drops += 1;
                }
            }
        }
        target.is_none()
    }

    /// Publishes hand-offs and wakes their targets.
    pub(super) fn flush(&mut self) {
        for q in 0..self.touched.len() {
            if !core::mem::take(&mut self.touched[q]) {
                continue;
            }
            if let Some(Some(p)) = self.to.get_mut(q) {
                p.publish();
            }
            let one = 1u64;
            // SAFETY: writes 8 bytes from `one` to an open eventfd.
            unsafe {
                libc::write(self.events[q].as_raw_fd(), (&one as *const u64).cast(), 8);
            }
        }
    }

    /// True when another queue handed frames over.
    pub(super) fn pending(&self) -> bool {
        self.from.iter().any(Consumer::has_pending)
    }

    /// Our eventfd.
    pub(super) fn event_fd(&self) -> RawFd {
        self.events[self.me].as_raw_fd()
    }

    /// The epoll descriptor covering the device descriptor and our eventfd.
    pub(super) fn epoll_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// Frames handed to other queues.
    pub(super) fn handed_over(&self) -> u64 {
        self.handed_over
    }
}

/// One AF_PACKET queue. See the module documentation.
#[derive(Debug)]
pub struct AfPacketQueue {
    fd: OwnedFd,
    ring: Mmap,
    geo: Geometry,
    /// The last flush `send()` failed (EAGAIN, ENOBUFS): SEND_REQUEST slots
    /// may be waiting, so the next burst (RX or TX) flushes again.
    tx_unflushed: bool,
    rx_next: usize,
    /// The next segment to emit from the GSO super-frame in RX slot
    /// `rx_next` (0: no super-frame half done). A burst that fills up
    /// mid-frame keeps the slot and resumes here.
    gso_next: usize,
    tx_next: usize,
    info: DeviceInfo,
    counters: QueueCounters,
    offload: RxOffloadCounters,
    /// Frames the kernel dropped because the RX ring was full
    /// (`PACKET_STATISTICS`, which resets on read, accumulated here).
    kernel_drops: Cell<u64>,
    /// Flushes that failed and were retried.
    tx_flush_retries: u64,
    /// The whole of the frame in RX slot `rx_next` when it was too large
    /// for the slot (`TP_STATUS_COPY`), read from the socket.
    big: Box<[u8]>,
    /// Bytes in `big` (virtio-net header included), once read for the
    /// current slot.
    big_len: Option<usize>,
    steering: Option<Steering>,
}

/// What the receive path did with the kernel's offload metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxOffloadCounters {
    /// Frames whose partial TCP/UDP checksum was completed in software.
    pub csum_completed: u64,
    /// TCPv4 GSO super-frames split in software.
    pub gso_frames: u64,
    /// Segments those super-frames were split into (and handed on).
    pub gso_segments: u64,
    /// Segments lost: the frame pool ran out in the middle of a
    /// super-frame, or the super-frame was malformed or of a GSO type the
    /// stack does not carry (TCPv6, UDP).
    pub gso_dropped: u64,
    /// Frames dropped because the ring slot held only part of them, or
    /// they did not fit a [`Frame`] without being a GSO super-frame.
    pub truncated: u64,
}

/// A received frame's place in its RX slot and its metadata.
#[derive(Debug, Clone, Copy)]
struct RxMeta {
    /// The Ethernet header: in the slot, or in `AfPacketQueue::big`.
    data: *const u8,
    /// Bytes of the frame in the slot.
    len: usize,
    vnet: VnetHdr,
    /// The VLAN tag the kernel stripped (802.1Q or 802.1ad).
    vlan: Option<VlanTag>,
}

impl AfPacketQueue {
    /// Frames whose partial TCP/UDP checksum was completed in software.
    pub fn csum_completed(&self) -> u64 {
        self.offload.csum_completed
    }

    /// Checksum completion, GSO splitting and truncation counters.
    pub fn offload_counters(&self) -> RxOffloadCounters {
        self.offload
    }

    /// TX flushes (`send()`) the kernel refused for the moment and that
    /// were retried at the next burst.
    pub fn tx_flush_retries(&self) -> u64 {
        self.tx_flush_retries
    }

    /// The ring sizes in effect (the requested ones rounded up to whole
    /// blocks).
    pub fn ring_sizes(&self) -> RingSizes {
        RingSizes {
            rx: self.geo.rx_slots,
            tx: self.geo.tx_slots,
        }
    }

    /// Frames this queue received but handed to another queue (RSS
    /// re-steering; broadcast frames count once per target).
    pub fn handed_over(&self) -> u64 {
        self.steering.as_ref().map_or(0, Steering::handed_over)
    }

    #[inline]
    fn rx_slot(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.geo.rx_slots);
        // SAFETY: `i < rx_slots`; slot `i` is at `i / RX_PER_BLOCK` blocks
        // plus `i % RX_PER_BLOCK` slots, inside the RX part of the mapping.
        unsafe {
            self.ring
                .ptr()
                .add((i / RX_PER_BLOCK) * RX_BLOCK_SIZE + (i % RX_PER_BLOCK) * RX_SLOT_SIZE)
        }
    }

    #[inline]
    fn tx_slot(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.geo.tx_slots);
        // SAFETY: `i < tx_slots`, so the slot lies inside the TX part of
        // the mapping, which follows the RX part (TX blocks hold whole
        // slots back to back).
        unsafe { self.ring.ptr().add(self.geo.rx_len() + i * SLOT_SIZE) }
    }

    #[inline]
    fn status(&self, slot: *mut u8) -> &AtomicU32 {
        // SAFETY: `slot` comes from `rx_slot`/`tx_slot`, so it points into
        // `self.ring`, which lives as long as the returned borrow of
        // `self`; every slot starts with the 4-byte-aligned `tp_status`
        // word, which the kernel and we access only atomically.
        unsafe { &*(slot.cast::<AtomicU32>()) }
    }

    /// Asks the kernel to send every SEND_REQUEST slot (one `send()`,
    /// `MSG_DONTWAIT`). When it fails (EAGAIN, ENOBUFS: the device pushed
    /// back) the slots stay SEND_REQUEST and the next burst tries again,
    /// so no frame waits for the stack's next output.
    fn flush_tx(&mut self) {
        // SAFETY: a zero-length send with a null buffer flushes the TX
        // ring; no memory is passed.
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                core::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
            )
        };
        self.tx_unflushed = r < 0;
        if r < 0 {
            self.tx_flush_retries += 1;
        }
    }

    /// Reads the metadata of the frame in RX slot `slot`; `None` when the
    /// frame is to be skipped (outgoing, malformed header, truncated).
    fn rx_meta(&mut self, slot: *mut u8, status: u32) -> Option<RxMeta> {
        // SAFETY: the slot is ours (status USER) until we hand it back;
        // every offset read is inside the slot's header area.
        let (pkttype, wire_len, len, mac, tci, tpid) = unsafe {
            (
                *slot.add(HDR_LEN + SLL_PKTTYPE),
                (slot.add(TP_LEN) as *const u32).read_unaligned() as usize,
                (slot.add(TP_SNAPLEN) as *const u32).read_unaligned() as usize,
                (slot.add(TP_MAC) as *const u16).read_unaligned() as usize,
                (slot.add(TP_VLAN_TCI) as *const u16).read_unaligned(),
                (slot.add(TP_VLAN_TPID) as *const u16).read_unaligned(),
            )
        };
        if pkttype == libc::PACKET_OUTGOING
            || len < ethernet::HEADER_LEN
            || mac < HDR_LEN + VNET_HDR_LEN
            || mac + len > RX_SLOT_SIZE
        {
            return None;
        }
        if wire_len > len {
            // The slot holds only the start of the frame.
            self.offload.truncated += 1;
            return None;
        }
        // SAFETY: `HDR_LEN <= mac - VNET_HDR_LEN` and `mac < RX_SLOT_SIZE`:
        // the header lies inside the slot.
        let vh = unsafe { core::slice::from_raw_parts(slot.add(mac - VNET_HDR_LEN), VNET_HDR_LEN) };
        let vnet = VnetHdr::parse(vh)?;
        let vlan = vlan_of(status, tci, tpid);
        Some(RxMeta {
            // SAFETY: `mac + len <= RX_SLOT_SIZE`: inside the slot.
            data: unsafe { slot.add(mac) },
            len,
            vnet,
            vlan,
        })
    }

    /// The metadata of a frame too large for its slot (`TP_STATUS_COPY`),
    /// whose whole copy is next on the socket's receive queue: reads it
    /// into `big` once (a burst that stops mid-frame resumes on it) and
    /// takes its virtio-net header and bytes from there, the VLAN tag and
    /// packet type from the slot. `None` when it is to be skipped.
    fn copied_meta(&mut self, slot: *mut u8, status: u32) -> Option<RxMeta> {
        let n = match self.big_len {
            Some(n) => n,
            None => {
                // SAFETY: `big` is writable for its length; MSG_TRUNC
                // returns the frame's real length.
                let r = unsafe {
                    libc::recv(
                        self.fd.as_raw_fd(),
                        self.big.as_mut_ptr().cast(),
                        self.big.len(),
                        libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                    )
                };
                let n = usize::try_from(r).unwrap_or(0);
                self.big_len = Some(n);
                n
            }
        };
        // SAFETY: the slot is ours (status USER); the offsets are inside
        // its header area.
        let (pkttype, tci, tpid) = unsafe {
            (
                *slot.add(HDR_LEN + SLL_PKTTYPE),
                (slot.add(TP_VLAN_TCI) as *const u16).read_unaligned(),
                (slot.add(TP_VLAN_TPID) as *const u16).read_unaligned(),
            )
        };
        if pkttype == libc::PACKET_OUTGOING {
            return None;
        }
        if n > self.big.len() || n < VNET_HDR_LEN + ethernet::HEADER_LEN {
            // Nothing queued (the receive buffer was full) or cut short.
            self.offload.truncated += 1;
            return None;
        }
        let vnet = VnetHdr::parse(&self.big[..VNET_HDR_LEN])?;
        Some(RxMeta {
            data: self.big[VNET_HDR_LEN..].as_ptr(),
            len: n - VNET_HDR_LEN,
            vnet,
            vlan: vlan_of(status, tci, tpid),
        })
    }

    /// Copies an ordinary (not GSO) frame into `frame`, completing a
    /// partial checksum; `None` when it does not fit a frame.
    fn take_rx(&mut self, data: &[u8], m: &RxMeta, status: u32, frame: &mut Frame) -> Option<()> {
        let len = data.len();
        let buf = frame.buffer_mut();
        let total = if let Some(tag) = m.vlan {
            ethernet::copy_with_vlan_tag(buf, data, tag)?
        } else {
            if len > buf.len() {
                return None;
            }
            buf[..len].copy_from_slice(data);
            len
        };
        frame.set_len(total);
        // With the virtio-net header the kernel says where the partial
        // checksum is (csum_start counts the re-inserted tag); without it
        // (a kernel that flags the frame but fills no header) the headers
        // are parsed.
        let done = if m.vnet.flags.contains(VnetFlags::NEEDS_CSUM) {
            gso::complete_checksum_at(
                frame.as_mut_slice(),
                usize::from(m.vnet.csum_start),
                usize::from(m.vnet.csum_offset),
            )
        } else {
            status & libc::TP_STATUS_CSUMNOTREADY != 0
                && complete_partial_checksum(frame.as_mut_slice())
        };
        if done {
            self.offload.csum_completed += 1;
        }
        Some(())
    }

    /// Hands a received frame to the caller or another queue; false when
    /// it was not kept here (and went back to the pool or elsewhere).
    fn deliver(&mut self, frame: Frame, pool: &mut FramePool, out: &mut Vec<Frame>) -> bool {
        Steering::deliver(self.steering.as_mut(), &mut self.counters, frame, pool, out)
    }

    /// Splits the TCPv4 GSO super-frame `data` into segments from
    /// `self.gso_next` on, until `budget` were kept. Returns how many were
    /// kept and whether the super-frame is done with (its slot can go
    /// back).
    fn split_rx(
        &mut self,
        data: &[u8],
        m: &RxMeta,
        pool: &mut FramePool,
        out: &mut Vec<Frame>,
        budget: usize,
    ) -> (usize, bool) {
        // The link-layer header each segment carries: the frame's, with
        // the stripped tag put back.
        let mut l2 = [0u8; ethernet::VLAN_HEADER_LEN];
        let (eth, ip) = data.split_at(ethernet::HEADER_LEN);
        let l2_len = match m.vlan {
            Some(tag) => ethernet::copy_with_vlan_tag(&mut l2, eth, tag).unwrap_or(0),
            None => {
                l2[..ethernet::HEADER_LEN].copy_from_slice(eth);
                ethernet::HEADER_LEN
            }
        };
        let Ok(segs) = TcpSegments::new(&l2[..l2_len], ip, usize::from(m.vnet.gso_size)) else {
            self.offload.gso_dropped += 1;
            return (0, true);
        };
        let count = segs.count();
        if segs.max_segment_len() > FRAME_CAPACITY {
            self.offload.gso_dropped += count as u64;
            return (0, true);
        }
        let mut kept = 0;
        // Bounded by the segment count.
        while self.gso_next < count {
            if kept >= budget {
                return (kept, false);
            }
            let Some(mut frame) = pool.alloc() else {
                // Out of buffers mid-frame: the rest is lost (the peer
                // retransmits it) rather than the slot held indefinitely.
                self.offload.gso_dropped += (count - self.gso_next) as u64;
                break;
            };
            let Some(n) = segs.write(self.gso_next, frame.buffer_mut()) else {
                pool.free(frame);
                self.offload.gso_dropped += (count - self.gso_next) as u64;
                break;
            };
            frame.set_len(n);
            self.gso_next += 1;
            self.offload.gso_segments += 1;
            if self.deliver(frame, pool, out) {
                kept += 1;
            }
        }
        self.offload.gso_frames += 1;
        (kept, true)
    }
}

/// The VLAN tag the kernel stripped into the slot header, to be put back
/// where it was on the wire. A kernel that does not report the TPID
/// stripped an 802.1Q tag.
fn vlan_of(status: u32, tci: u16, tpid: u16) -> Option<VlanTag> {
    (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
        let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
            EtherType::from(tpid)
        } else {
            EtherType::Vlan
        };
        VlanTag { tpid, tci }
    })
}

/// Completes the partial checksum of an IPv4 TCP or UDP frame (untagged
/// or with one VLAN tag) whose checksum field holds only the pseudo-header
/// sum (`CHECKSUM_PARTIAL`). Returns false, leaving the frame alone, when
/// it is not such a frame or is truncated.
pub fn complete_partial_checksum(frame: &mut [u8]) -> bool {
    let Ok(mut eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if eth.ethertype() != EtherType::Ipv4 {
        return false;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else {
        return false;
    };
    let protocol = ip.protocol();
    let field_end = match protocol {
        IpProtocol::Tcp => crate::wire::tcp::CHECKSUM_END,
        IpProtocol::Udp => crate::wire::udp::CHECKSUM_END,
        _ => return false,
    };
    if ip.version() != 4 || ip.payload_mut().len() < field_end {
        return false;
    }
    let l4 = ip.payload_mut();
    let mut value = checksum::finish(checksum::data(l4));
    match protocol {
        IpProtocol::Tcp => TcpPacket::new_unchecked(l4).set_checksum(value),
        _ => {
            // A computed zero is sent as all ones (RFC 768).
            if value == 0 {
                value = 0xffff;
            }
            UdpPacket::new_unchecked(l4).set_checksum(value);
        }
    }
    true
}

impl NicQueue for AfPacketQueue {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn rx_burst(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize) -> usize {
        let mut got = match self.steering.as_mut() {
            Some(st) => st.drain(pool, out, max, &mut self.counters),
            None => 0,
        };
        // Bounded: at most one pass over the ring, and `max` frames.
        if self.tx_unflushed {
            self.flush_tx();
        }
        for _ in 0..self.geo.rx_slots {
            if got >= max {
                break;
            }
            let slot = self.rx_slot(self.rx_next);
            let status = self.status(slot).load(Ordering::Acquire);
            if status & libc::TP_STATUS_USER == 0 {
                break;
            }
            let meta = if status & libc::TP_STATUS_COPY != 0 {
                self.copied_meta(slot, status)
            } else {
                self.rx_meta(slot, status)
            };
            // SAFETY: `rx_meta` checked `mac + len <= RX_SLOT_SIZE` and
            // the slot is ours until its status is handed back below;
            // `copied_meta` points into `big`, which nothing below writes
            // (it is refilled only once the slot has been handed back).
            let data = meta.map(|m| unsafe { core::slice::from_raw_parts(m.data, m.len) });
            let done = match (meta, data) {
                (Some(m), Some(data)) if m.vnet.gso() == gso::VNET_GSO_TCPV4 => {
                    let (kept, done) = self.split_rx(data, &m, pool, out, max - got);
                    got += kept;
                    done
                }
                (Some(m), Some(_)) if m.vnet.gso() != gso::VNET_GSO_NONE => {
                    // TCPv6, UDP: nothing the stack carries.
                    self.offload.gso_dropped += 1;
                    true
                }
                (Some(m), Some(data)) => {
                    let Some(mut frame) = pool.alloc() else {
                        self.counters.rx_no_buffer += 1;
                        break;
                    };
                    if self.take_rx(data, &m, status, &mut frame).is_some() {
                        if self.deliver(frame, pool, out) {
                            got += 1;
                        }
                    } else {
                        self.offload.truncated += 1;
                        pool.free(frame);
                    }
                    true
                }
                _ => true,
            };
            if !done {
                break;
            }
            self.gso_next = 0;
            self.big_len = None;
            self.status(slot)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.rx_next = (self.rx_next + 1) % self.geo.rx_slots;
        }
        if let Some(st) = self.steering.as_mut() {
            st.flush();
        }
        self.counters.rx_frames += got as u64;
        got
    }

    fn tx_burst(&mut self, frames: &mut Vec<Frame>, pool: &mut FramePool) -> usize {
        let mut taken = 0;
        for frame in frames.iter_mut() {
            let slot = self.tx_slot(self.tx_next);
            let status = self.status(slot).load(Ordering::Acquire);
            if status == libc::TP_STATUS_WRONG_FORMAT {
                // Rejected earlier (PACKET_LOSS normally skips these): the
                // frame in it was never sent; reclaim the slot.
                self.counters.tx_dropped += 1;
                self.status(slot)
                    .store(libc::TP_STATUS_AVAILABLE, Ordering::Release);
            } else if status != libc::TP_STATUS_AVAILABLE {
                break;
            }
            let len = frame.len();
            let len = sys::pad_frame(frame.buffer_mut(), len);
            if VNET_HDR_LEN + len > SLOT_SIZE - HDR_LEN {
                // Cannot be sent; drop (counted) rather than jam the burst.
                self.counters.tx_dropped += 1;
                taken += 1;
                continue;
            }
            // With PACKET_VNET_HDR the kernel reads a virtio-net header
            // before each frame: an all-zero one (no checksum to
            // complete, no segmentation) for our finished frames.
            // SAFETY: the slot is AVAILABLE, so the kernel does not touch
            // it until we set SEND_REQUEST;
            // `HDR_LEN + VNET_HDR_LEN + len <= SLOT_SIZE`.
            unsafe {
                core::ptr::write_bytes(slot.add(HDR_LEN), 0, VNET_HDR_LEN);
                core::ptr::copy_nonoverlapping(
                    frame.buffer().as_ptr(),
                    slot.add(HDR_LEN + VNET_HDR_LEN),
                    len,
                );
                (slot.add(TP_LEN) as *mut u32).write_unaligned((VNET_HDR_LEN + len) as u32);
            }
            self.status(slot)
                .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
            self.tx_next = (self.tx_next + 1) % self.geo.tx_slots;
            self.counters.tx_frames += 1;
            self.counters.tx_bytes += len as u64;
            taken += 1;
        }
        if taken > 0 || self.tx_unflushed {
            self.flush_tx();
        }
        for frame in frames.drain(..taken) {
            pool.free(frame);
        }
        taken
    }

    fn rx_pending(&self) -> bool {
        if self.tx_unflushed {
            // Not a frame, but the next burst has work: a flush to retry.
            return true;
        }
        let slot = self.rx_slot(self.rx_next);
        self.status(slot).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
            || self.steering.as_ref().is_some_and(Steering::pending)
    }

    fn wait_rx(&self, timeout: Duration) {
        if self.rx_pending() {
            return;
        }
        match &self.steering {
            Some(st) => sys::wait_readable(&[self.fd.as_raw_fd(), st.event_fd()], timeout),
            None => sys::wait_readable(&[self.fd.as_raw_fd()], timeout),
        }
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(match &self.steering {
            Some(st) => st.epoll_fd(),
            None => self.fd.as_raw_fd(),
        })
    }

    fn counters(&self) -> QueueCounters {
        let zero = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        if let Ok(st) = sys::getsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            zero,
        ) {
            self.kernel_drops
                .set(self.kernel_drops.get() + u64::from(st.tp_drops));
        }
        let mut c = self.counters;
        c.ring_full_drops += self.kernel_drops.get();
        c.rx_dropped += self.offload.truncated + self.offload.gso_dropped;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::Ipv4Address;
    use crate::wire::tcp::TcpPacket;

    /// An Ethernet/IPv4/TCP frame whose checksum field holds the
    /// pseudo-header sum, as the kernel leaves it with CHECKSUM_PARTIAL.
    fn partial_tcp_frame(payload: &[u8]) -> Vec<u8> {
        let src = Ipv4Address::new(10, 99, 0, 1);
        let dst = Ipv4Address::new(10, 99, 0, 2);
        let tcp_len = 20 + payload.len();
        let mut f = vec![0u8; 14 + 20 + tcp_len];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&src.octets());
        ip[16..20].copy_from_slice(&dst.octets());
        let tcp = &mut f[34..];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&0x01020304u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x02;
        tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
        tcp[20..].copy_from_slice(payload);
        let pseudo = checksum::pseudo_header_v4(src, dst, 6, tcp_len as u32);
        tcp[16..18].copy_from_slice(&pseudo.to_be_bytes());
        f
    }

    #[test]
    fn partial_checksum_is_completed() {
        for payload in [&b""[..], b"x", b"hello, kernel"] {
            let mut f = partial_tcp_frame(payload);
            {
                let p = TcpPacket::new_checked(&f[34..]).unwrap();
                assert!(!p.verify_checksum([10, 99, 0, 1].into(), [10, 99, 0, 2].into()));
            }
            assert!(complete_partial_checksum(&mut f));
            let p = TcpPacket::new_checked(&f[34..]).unwrap();
            assert!(p.verify_checksum([10, 99, 0, 1].into(), [10, 99, 0, 2].into()));
        }
    }

    #[test]
    fn partial_checksum_is_completed_behind_a_tag_and_for_udp() {
        let (src, dst) = (
            Ipv4Address::new(10, 99, 0, 1),
            Ipv4Address::new(10, 99, 0, 2),
        );
        for tag in [VlanTag::dot1q(5), VlanTag::dot1ad(6)] {
            let untagged = partial_tcp_frame(b"tagged");
            let mut f = vec![0u8; untagged.len() + 4];
            assert_eq!(
                ethernet::copy_with_vlan_tag(&mut f, &untagged, tag),
                Some(f.len())
            );
            assert!(complete_partial_checksum(&mut f));
            assert!(TcpPacket::new_checked(&f[38..])
                .unwrap()
                .verify_checksum(src, dst));
        }
        // UDP: the same frame with protocol 17 and an 8-byte header whose
        // checksum field holds the pseudo-header sum.
        let mut u = partial_tcp_frame(b"");
        u[14 + 9] = 17;
        u[14 + 10..14 + 12].fill(0);
        let udp_len = (u.len() - 34) as u16;
        u[38..40].copy_from_slice(&udp_len.to_be_bytes());
        let pseudo = checksum::pseudo_header_v4(src, dst, 17, u32::from(udp_len));
        u[40..42].copy_from_slice(&pseudo.to_be_bytes());
        assert!(complete_partial_checksum(&mut u));
        assert!(UdpPacket::new_checked(&u[34..])
            .unwrap()
            .verify_checksum(src, dst));
    }

    #[test]
    fn partial_checksum_ignores_other_frames() {
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(!complete_partial_checksum(&mut arp));
        let mut truncated = partial_tcp_frame(b"abc");
        truncated.truncate(40);
        let before = truncated.clone();
        assert!(!complete_partial_checksum(&mut truncated));
        assert_eq!(truncated, before);
        assert!(!complete_partial_checksum(&mut []));
    }

    #[test]
    fn ring_geometry() {
        assert_eq!(BLOCK_SIZE % SLOT_SIZE, 0);
        assert_eq!(
            HDR_LEN,
            (core::mem::size_of::<libc::tpacket2_hdr>() + 15) & !15
        );
        const { assert!(HDR_LEN + VNET_HDR_LEN + 1518 <= SLOT_SIZE) };
        // The kernel puts an RX frame's Ethernet header at
        // TPACKET_ALIGN(TPACKET2_HDRLEN + 16) + vnet header - 14; an
        // MTU-sized frame with a VLAN tag must fit behind it (larger ones
        // are copied to the socket).
        let tpacket2_hdrlen = HDR_LEN + core::mem::size_of::<libc::sockaddr_ll>();
        let macoff = ((tpacket2_hdrlen + 16 + 15) & !15) + VNET_HDR_LEN - 14;
        assert_eq!(macoff, 76);
        assert!(macoff + 1518 <= RX_SLOT_SIZE);
        assert_eq!(RX_SLOT_SIZE % 16, 0);
        assert_eq!(RX_BLOCK_SIZE % 4096, 0);
        assert_eq!(RX_PER_BLOCK, 32);
        let g = Geometry::new(RingSizes::default());
        assert_eq!((g.rx_slots, g.tx_slots), (4096, 4096));
        assert_eq!(g.len(), 16 << 20);
        // Rounded up to whole blocks.
        let g = Geometry::new(RingSizes { rx: 16, tx: 33 });
        assert_eq!(
            (g.rx_blocks, g.rx_slots, g.tx_blocks, g.tx_slots),
            (1, 32, 2, 64)
        );
        assert!(RingSizes::default().valid());
        assert!(!RingSizes { rx: 15, tx: 4096 }.valid());
        assert!(!RingSizes {
            rx: 4096,
            tx: 65537
        }
        .valid());
    }

    #[test]
    fn bad_arguments() {
        assert_eq!(
            AfPacketDevice::open("lo", 0).err(),
            Some(NicError::InvalidArgument)
        );
        assert_eq!(
            AfPacketDevice::open("mtcp-no-such0", 1).err(),
            Some(NicError::NoSuchInterface)
        );
        assert_eq!(
            AfPacketDevice::open_with("lo", 1, RingSizes { rx: 0, tx: 4096 }).err(),
            Some(NicError::InvalidArgument)
        );
    }
}

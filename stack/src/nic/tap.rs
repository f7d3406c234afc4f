//! A TAP device: Ethernet frames exchanged with the local kernel through
//! `/dev/net/tun`.
//!
//! ```text
//!   the stack  ── write(fd) ──▶  tap IF  ──▶ kernel (receives the frame)
//!              ◀── read(fd) ───          ◀── kernel (transmits on IF)
//! ```
//!
//! The kernel side of the TAP interface is the peer: give it an address
//! (`ip addr add 10.98.0.1/24 dev mtcp-t0`) and the kernel routes to the
//! stack through it. The interface's own MAC belongs to the kernel side, so
//! the device reports no MAC and the stack must pick another one.
//!
//! A TAP moves one frame per `read`/`write`; that is inherent to the
//! interface. `rx_burst` reads until the kernel has nothing more (`EAGAIN`)
//! or `max` frames, and `tx_burst` writes a whole burst, once per tick.
//!
//! # Offloads
//!
//! The TAP is opened with `IFF_VNET_HDR`, and `TUNSETOFFLOAD(TUN_F_CSUM |
//! TUN_F_TSO4)` tells the kernel the stack takes partial checksums and TSO
//! super-frames: the kernel side then offers TX checksum offload and TSO,
//! and hands us TCPv4 frames of up to 64 KiB with a `virtio_net_hdr` in
//! front. `rx_burst` reads each into a 64 KiB scratch buffer, completes a
//! partial checksum, or cuts a super-frame into MSS-sized frames with the
//! same code as AF_PACKET (`nic/gso.rs`); `tx_burst` writes a zeroed
//! header before each frame (`writev`).
//!
//! [`TapQueue::open_multi`] opens a multi-queue TAP (`IFF_MULTI_QUEUE`),
//! one descriptor per queue. The kernel spreads the frames it sends over
//! the queues by its own flow hash, not the stack's symmetric Toeplitz
//! hash, so the queues re-steer in software exactly as the AF_PACKET
//! backend does (see [`af_packet`](super::af_packet)).
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::af_packet::{complete_partial_checksum, RxOffloadCounters, Steering};
use super::gso::{self, TcpSegments, VnetFlags, VnetHdr, VNET_HDR_LEN};
use super::sys::{self, errno, owned_fd};
use super::{
    Capabilities, DeviceInfo, Frame, FramePool, NicError, NicQueue, QueueCounters, FRAME_CAPACITY,
};
use crate::time::Duration;
use crate::wire::ethernet;

/// Bytes of the receive scratch buffer: a virtio-net header and a whole
/// 64 KiB TSO super-frame (IPv4 total length up to 65,535, Ethernet
/// header, an 802.1Q tag).
const SCRATCH: usize = VNET_HDR_LEN + 14 + 4 + 65535;

/// One queue of a TAP interface. See the module documentation.
#[derive(Debug)]
pub struct TapQueue {
    fd: OwnedFd,
    info: DeviceInfo,
    counters: QueueCounters,
    offload: RxOffloadCounters,
    tx_errors: u64,
    steering: Option<Steering>,
    /// Where `read` puts a frame (with its virtio-net header) before it is
    /// copied or split into pool frames; allocated once.
    scratch: Box<[u8]>,
    /// A frame read but not yet fully split: its length in `scratch` and
    /// the next segment (a burst that fills up mid-frame resumes here).
    split: Option<(usize, usize)>,
}

impl TapQueue {
    /// Opens (creating when missing) the TAP interface `ifname` with
    /// `IFF_TAP | IFF_NO_PI`, brings it up and makes it nonblocking.
    ///
    /// A TAP created here is not persistent: it disappears when the queue
    /// is dropped. An existing persistent TAP (`ip tuntap add mode tap`) is
    /// attached to and left in place.
    ///
    /// # Errors
    /// [`NicError::PermissionDenied`] without CAP_NET_ADMIN (creating, or
    /// attaching to a TAP owned by another user), [`NicError::Busy`] when
    /// another program holds the interface, [`NicError::Io`]`(EINVAL)`
    /// when the name belongs to an interface that is not a TAP,
    /// [`NicError::NoSuchInterface`] when
    /// `/dev/net/tun` is missing, [`NicError::InvalidArgument`] for a bad
    /// name.
    pub fn open(ifname: &str) -> Result<TapQueue, NicError> {
        let mut queues = Self::open_with_flags(ifname, 1, 0)?;
        queues.pop().ok_or(NicError::InvalidArgument)
    }

    /// Opens (creating when missing) the multi-queue TAP `ifname` with
    /// `queues` queues, re-steered by symmetric Toeplitz RSS when there is
    /// more than one.
    ///
    /// # Errors
    /// As [`TapQueue::open`]; [`NicError::InvalidArgument`] for zero
    /// queues; [`NicError::Io`]`(EINVAL)` when `ifname` is an existing
    /// single-queue TAP.
    pub fn open_multi(ifname: &str, queues: usize) -> Result<Vec<TapQueue>, NicError> {
        if queues > 64 {
            return Err(NicError::InvalidArgument);
        }
        let mut out = Self::open_with_flags(ifname, queues, libc::IFF_MULTI_QUEUE)?;
        if queues > 1 {
            let fds: Vec<RawFd> = out.iter().map(|q| q.fd.as_raw_fd()).collect();
            for (q, st) in out.iter_mut().zip(Steering::set(&fds)?) {
                q.steering = Some(st);
            }
        }
        Ok(out)
    }

    fn open_with_flags(
        ifname: &str,
        queues: usize,
        extra: libc::c_int,
    ) -> Result<Vec<TapQueue>, NicError> {
        if queues == 0 {
            return Err(NicError::InvalidArgument);
        }
        let mut out = Vec::with_capacity(queues);
        for queue in 0..queues {
            let fd = Self::attach(ifname, extra)?;
            out.push(TapQueue {
                fd,
                info: DeviceInfo {
                    mac: None,
                    mtu: 1500,
                    queue,
                    queues,
                    caps: Capabilities::default(),
                },
                counters: QueueCounters::default(),
                offload: RxOffloadCounters::default(),
                tx_errors: 0,
                steering: None,
                scratch: vec![0u8; SCRATCH].into_boxed_slice(),
                split: None,
            });
        }
        sys::if_set_up(ifname)?;
        let mtu = sys::if_mtu(ifname)?;
        for q in &mut out {
            q.info.mtu = mtu;
        }
        Ok(out)
    }

    fn attach(ifname: &str, extra: libc::c_int) -> Result<OwnedFd, NicError> {
        let mut req = sys::ifreq(ifname)?;
        // SAFETY: a constant, NUL-terminated path.
        let fd = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        let fd = owned_fd(fd).map_err(|e| match e {
            NicError::Io(libc::ENOENT) => NicError::NoSuchInterface,
            e => e,
        })?;
        req.ifr_ifru.ifru_flags =
            (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR | extra) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes the `ifreq` it is given, which
        // is valid and exclusively borrowed for the call.
        let r = unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                libc::TUNSETIFF as _,
                &mut req as *mut libc::ifreq,
            )
        };
        if r < 0 {
            // EBUSY: another program holds this (single-queue) TAP.
            // EINVAL: the name belongs to an interface that is not a TAP
            // of this kind (a TUN, a veth, a multi-queue mismatch).
            return Err(sys::last_error());
        }
        let hdr_len = VNET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one c_int from the pointer.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ as _, &hdr_len) };
        if r < 0 {
            return Err(sys::last_error());
        }
        let offload = (libc::TUN_F_CSUM | libc::TUN_F_TSO4) as libc::c_ulong;
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD as _, offload) };
        if r < 0 {
            return Err(sys::last_error());
        }
        Ok(fd)
    }

    /// Checksum completion, TSO splitting and truncation counters.
    pub fn offload_counters(&self) -> RxOffloadCounters {
        self.offload
    }

    /// Hands a received frame to the caller or another queue; false when
    /// it was not kept here.
    fn deliver(&mut self, frame: Frame, pool: &mut FramePool, out: &mut Vec<Frame>) -> bool {
        Steering::deliver(self.steering.as_mut(), &mut self.counters, frame, pool, out)
    }

    /// Turns the frame in `scratch[..len]` (virtio-net header first) into
    /// pool frames, from segment `next` on, until `budget` were kept.
    /// Returns how many were kept and the segment to resume at, `None`
    /// when the frame is done with.
    fn take_scratch(
        &mut self,
        len: usize,
        next: usize,
        pool: &mut FramePool,
        out: &mut Vec<Frame>,
        budget: usize,
    ) -> (usize, Option<usize>) {
        let scratch = core::mem::take(&mut self.scratch);
        let r = self.take_from(&scratch[..len], next, pool, out, budget);
        self.scratch = scratch;
        r
    }

    fn take_from(
        &mut self,
        data: &[u8],
        mut next: usize,
        pool: &mut FramePool,
        out: &mut Vec<Frame>,
        budget: usize,
    ) -> (usize, Option<usize>) {
        let Some(vnet) = VnetHdr::parse(data) else {
            return (0, None);
        };
        let data = &data[VNET_HDR_LEN..];
        if data.len() < ethernet::HEADER_LEN {
            return (0, None);
        }
        match vnet.gso() {
            gso::VNET_GSO_NONE => {
                let Some(mut frame) = pool.alloc() else {
                    self.counters.rx_no_buffer += 1;
                    return (0, None);
                };
                if frame.copy_from(data).is_err() {
                    self.offload.truncated += 1;
                    pool.free(frame);
                    return (0, None);
                }
                let done = if vnet.flags.contains(VnetFlags::NEEDS_CSUM) {
                    gso::complete_checksum_at(
                        frame.as_mut_slice(),
                        usize::from(vnet.csum_start),
                        usize::from(vnet.csum_offset),
                    ) || complete_partial_checksum(frame.as_mut_slice())
                } else {
                    false
                };
                if done {
                    self.offload.csum_completed += 1;
                }
                (usize::from(self.deliver(frame, pool, out)), None)
            }
            gso::VNET_GSO_TCPV4 => {
                let Ok(segs) = TcpSegments::new(
                    &data[..ethernet::HEADER_LEN],
                    &data[ethernet::HEADER_LEN..],
                    usize::from(vnet.gso_size),
                ) else {
                    self.offload.gso_dropped += 1;
                    return (0, None);
                };
                let count = segs.count();
                if segs.max_segment_len() > FRAME_CAPACITY {
                    self.offload.gso_dropped += count as u64;
                    return (0, None);
                }
                let mut kept = 0;
                // Bounded by the segment count.
                while next < count {
                    if kept >= budget {
                        return (kept, Some(next));
                    }
                    let Some(mut frame) = pool.alloc() else {
                        // Out of buffers mid-frame: the rest is lost.
                        self.offload.gso_dropped += (count - next) as u64;
                        break;
                    };
                    let Some(n) = segs.write(next, frame.buffer_mut()) else {
                        pool.free(frame);
                        self.offload.gso_dropped += (count - next) as u64;
                        break;
                    };
                    frame.set_len(n);
                    next += 1;
                    self.offload.gso_segments += 1;
                    if self.deliver(frame, pool, out) {
                        kept += 1;
                    }
                }
                self.offload.gso_frames += 1;
                (kept, None)
            }
            _ => {
                self.offload.gso_dropped += 1;
                (0, None)
            }
        }
    }

    /// Frames that could not be written (other than a full kernel queue)
    /// and were dropped.
    pub fn tx_errors(&self) -> u64 {
        self.tx_errors
    }

    /// Frames handed to another queue by software re-steering.
    pub fn handed_over(&self) -> u64 {
        self.steering.as_ref().map_or(0, Steering::handed_over)
    }
}

impl NicQueue for TapQueue {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn rx_burst(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize) -> usize {
        let mut got = match self.steering.as_mut() {
            Some(st) => st.drain(pool, out, max, &mut self.counters),
            None => 0,
        };
        // A super-frame the last burst left half split.
        if let Some((len, next)) = self.split.take() {
            let (kept, resume) = self.take_scratch(len, next, pool, out, max - got);
            got += kept;
            self.split = resume.map(|n| (len, n));
        }
        // Bounded by `max` kept frames plus as many dropped or handed over.
        let mut reads = 0;
        while self.split.is_none() && got < max && reads < 2 * max {
            reads += 1;
            if pool.available() == 0 {
                self.counters.rx_no_buffer += 1;
                break;
            }
            let buf = &mut self.scratch;
            // SAFETY: `buf` is a writable buffer of `buf.len()` bytes owned
            // by `self` for the duration of the call.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let (kept, resume) = self.take_scratch(n as usize, 0, pool, out, max - got);
            got += kept;
            self.split = resume.map(|next| (n as usize, next));
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
            let len = frame.len();
            let len = sys::pad_frame(frame.buffer_mut(), len);
            let buf = &frame.buffer()[..len];
            // An all-zero virtio-net header: a finished frame.
            let hdr = [0u8; VNET_HDR_LEN];
            let iov = [
                libc::iovec {
                    iov_base: hdr.as_ptr() as *mut libc::c_void,
                    iov_len: VNET_HDR_LEN,
                },
                libc::iovec {
                    iov_base: buf.as_ptr() as *mut libc::c_void,
                    iov_len: len,
                },
            ];
            // SAFETY: both iovecs describe readable memory (`hdr`, `buf`)
            // that lives for the duration of the call; writev only reads.
            let n = unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
            if n < 0 {
                let e = errno();
                if e == libc::EAGAIN || e == libc::EINTR || e == libc::ENOBUFS {
                    break;
                }
                // EIO (interface down), EINVAL (oversized): the frame can
                // never go out; drop it rather than jam the queue.
                self.tx_errors += 1;
            } else {
                self.counters.tx_frames += 1;
                self.counters.tx_bytes += len as u64;
            }
            taken += 1;
        }
        for frame in frames.drain(..taken) {
            pool.free(frame);
        }
        taken
    }

    fn rx_pending(&self) -> bool {
        if self.split.is_some() {
            return true;
        }
        if self.steering.as_ref().is_some_and(Steering::pending) {
            return true;
        }
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut p, 1, 0) > 0 && p.revents & libc::POLLIN != 0 }
    }

    fn wait_rx(&self, timeout: Duration) {
        if self.split.is_some() {
            return;
        }
        match &self.steering {
            Some(st) => {
                if !st.pending() {
                    sys::wait_readable(&[self.fd.as_raw_fd(), st.event_fd()], timeout);
                }
            }
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
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_rejected_before_any_system_call() {
        assert_eq!(TapQueue::open("").err(), Some(NicError::InvalidArgument));
        assert_eq!(
            TapQueue::open("name-longer-than-ifnamsiz").err(),
            Some(NicError::InvalidArgument)
        );
    }
}

//! AF_XDP: frames move between the driver and the stack through rings
//! shared with the kernel, steered by an XDP program of our own.
//!
//! ```text
//!   NIC/veth RX ─▶ XDP program ─▶ XSKMAP[rx_queue] ─▶ XSK q: RX ring ─▶ rx_burst
//!                    (bpf.rs)                          fill ring ◀── addresses back
//!   tx_burst ─▶ TX ring ─▶ sendto() kick ─▶ driver ─▶ completion ring ─▶ reused
//! ```
//!
//! Each queue owns one XDP socket (XSK) bound to `(ifindex, queue)` with its
//! own UMEM: 4096 chunks of 2048 bytes, half posted to the fill ring for
//! RX, half kept for TX. RX copies a frame out of the UMEM into a pool
//! [`Frame`] and returns the chunk to the fill ring at once; TX copies a
//! frame into a free chunk, posts it on the TX ring and kicks the kernel
//! with one `sendto(MSG_DONTWAIT)` per burst; finished chunks come back on
//! the completion ring.
//!
//! # Modes
//!
//! `open` tries, in order: zero-copy bind (`XDP_ZEROCOPY`) and copy bind
//! (`XDP_COPY`); then native (driver) XDP for the program, else generic
//! (skb) XDP. A veth supports native XDP but not zero-copy AF_XDP (it has
//! no XSK buffer-pool support), so on a veth the result is native XDP with
//! copy-mode sockets; [`XdpQueue::zero_copy`] and [`XdpQueue::native`] say
//! what was obtained.
//!
//! # Queues
//!
//! Queue `q` binds RX queue `q` of the interface, so the interface must
//! have at least as many RX queues as the stack has cores. A veth has as
//! many as it was created with (`ip link add A numrxqueues 4 numtxqueues 4
//! type veth peer B numrxqueues 4 numtxqueues 4`; the default is one); a
//! bind to a queue the interface lacks fails with
//! [`NicError::InvalidArgument`]. The kernel picks the RX queue of a
//! frame with its own hash (or the NIC's RSS key), not the stack's
//! symmetric Toeplitz, so several queues re-steer in software exactly as
//! the AF_PACKET backend does ([`af_packet`](super::af_packet)).
//!
//! # Checksums
//!
//! XDP carries no checksum metadata: a frame the kernel sent with a partial
//! checksum (veth peer with TX offload on) arrives with only the
//! pseudo-header sum in its checksum field and fails verification. Keep TX
//! checksum offload off on the peer (`scripts/netns.sh` does).
//!
//! The program is attached through a BPF link, so it is detached when the
//! last queue of the device is dropped, or when the process dies.
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::af_packet::Steering;
use super::bpf;
use super::sys::{self, cvt, owned_fd, setsockopt, Mmap};
use super::{Capabilities, DeviceInfo, Frame, FramePool, NicError, NicQueue, QueueCounters};
use crate::time::Duration;

/// UMEM chunk size: one frame.
const CHUNK: usize = 2048;
/// Chunks per UMEM.
const CHUNKS: usize = 4096;
/// Chunks posted for RX; the rest are for TX.
const RX_CHUNKS: usize = CHUNKS / 2;
/// Entries in every ring (a power of two).
const RING: u32 = 2048;

/// The XDP program, map and link of a device, shared by its queues.
#[derive(Debug)]
struct Program {
    /// Detaches the program when closed.
    _link: OwnedFd,
    _prog: OwnedFd,
    _map: OwnedFd,
    native: bool,
}

/// One mapped ring: producer and consumer words, flags, descriptors.
#[derive(Debug)]
struct Ring {
    map: Mmap,
    producer: usize,
    consumer: usize,
    flags: usize,
    desc: usize,
    /// Our private copy of the index we own (producer of a fill/TX ring,
    /// consumer of an RX/completion ring).
    local: u32,
}

impl Ring {
    fn open(
        fd: RawFd,
        off: &libc::xdp_ring_offset,
        entry: usize,
        pgoff: u64,
    ) -> Result<Ring, NicError> {
        let len = off.desc as usize + RING as usize * entry;
        let map = Mmap::shared(fd, len, pgoff as i64)?;
        Ok(Ring {
            map,
            producer: off.producer as usize,
            consumer: off.consumer as usize,
            flags: off.flags as usize,
            desc: off.desc as usize,
            local: 0,
        })
    }

    #[inline]
    fn word(&self, at: usize) -> &AtomicU32 {
        // SAFETY: the kernel's offsets point at 4-byte-aligned u32 words
        // inside the mapping, which lives as long as `self`; the kernel
        // accesses them atomically too.
        unsafe { &*(self.map.ptr().add(at).cast::<AtomicU32>()) }
    }

    #[inline]
    fn entry(&self, index: u32, size: usize) -> *mut u8 {
        // SAFETY: `index & (RING - 1)` is within the ring's RING entries
        // of `size` bytes, which lie inside the mapping after `desc`.
        unsafe {
            self.map
                .ptr()
                .add(self.desc + (index & (RING - 1)) as usize * size)
        }
    }

    fn needs_wakeup(&self) -> bool {
        self.word(self.flags).load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Consumer side: entries ready to read.
    fn available(&self) -> u32 {
        self.word(self.producer)
            .load(Ordering::Acquire)
            .wrapping_sub(self.local)
    }

    /// Consumer side: gives `n` read entries back.
    fn release(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.word(self.consumer)
            .store(self.local, Ordering::Release);
    }

    /// Producer side: free entries.
    fn free(&self) -> u32 {
        RING - self
            .local
            .wrapping_sub(self.word(self.consumer).load(Ordering::Acquire))
    }

    /// Producer side: publishes the entries written since the last call.
    fn submit(&mut self) {
        self.word(self.producer)
            .store(self.local, Ordering::Release);
    }
}

/// Opens AF_XDP queues on an interface. See the module documentation.
#[derive(Debug)]
pub struct XdpDevice;

impl XdpDevice {
    /// Opens `queues` AF_XDP queues on `ifname` (in the calling thread's
    /// network namespace), loads and attaches the redirect program.
    ///
    /// # Errors
    /// [`NicError::NoSuchInterface`]; [`NicError::PermissionDenied`]
    /// (needs CAP_NET_RAW, CAP_BPF and CAP_NET_ADMIN, or root);
    /// [`NicError::Busy`] when another XDP program is attached to the
    /// interface or another socket holds a queue; [`NicError::InvalidArgument`]
    /// for zero queues or more queues than the interface has RX queues;
    /// [`NicError::Unsupported`] without AF_XDP in the kernel.
    ///
    /// The kernel releases a closed XSK's queue and a closed link's program
    /// asynchronously, so a device closed a moment ago may still look busy:
    /// `open` retries for up to 300 ms before reporting
    /// [`NicError::Busy`].
    pub fn open(ifname: &str, queues: usize) -> Result<Vec<XdpQueue>, NicError> {
        let start = std::time::Instant::now();
        loop {
            match Self::open_once(ifname, queues) {
                Err(NicError::Busy) if start.elapsed() < std::time::Duration::from_millis(300) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                r => return r,
            }
        }
    }

    fn open_once(ifname: &str, queues: usize) -> Result<Vec<XdpQueue>, NicError> {
        if queues == 0 || queues > 64 {
            return Err(NicError::InvalidArgument);
        }
        let ifindex = sys::ifindex(ifname)?;
        let mtu = sys::if_mtu(ifname)?;
        let mac = sys::if_mac(ifname).ok();
        let map = bpf::xskmap_create(queues as u32)?;
        let prog = bpf::load_redirect_program(&map)?;
        let mut out = Vec::with_capacity(queues);
        for queue in 0..queues {
            let sock = Socket::open(ifindex, queue as u32)?;
            bpf::xskmap_set(&map, queue as u32, &sock.fd)?;
            out.push(sock);
        }
        let (link, native) = match bpf::link_xdp(&prog, ifindex, bpf::XDP_FLAGS_DRV_MODE) {
            Ok(link) => (link, true),
            Err(NicError::Busy) => return Err(NicError::Busy),
            Err(_) => (
                bpf::link_xdp(&prog, ifindex, bpf::XDP_FLAGS_SKB_MODE)?,
                false,
            ),
        };
        let program = Arc::new(Program {
            _link: link,
            _prog: prog,
            _map: map,
            native,
        });
        let mut steering: Vec<Option<Steering>> = if queues > 1 {
            let fds: Vec<RawFd> = out.iter().map(|s| s.fd.as_raw_fd()).collect();
            Steering::set(&fds)?.into_iter().map(Some).collect()
        } else {
            vec![None]
        };
        Ok(out
            .into_iter()
            .zip(steering.drain(..))
            .enumerate()
            .map(|(queue, (sock, steering))| XdpQueue {
                sock,
                program: program.clone(),
                info: DeviceInfo {
                    mac,
                    mtu,
                    queue,
                    queues,
                    caps: Capabilities::default(),
                },
                counters: QueueCounters::default(),
                steering,
                kicks: 0,
                oversize: 0,
            })
            .collect())
    }
}

/// One XSK with its UMEM and four rings.
#[derive(Debug)]
struct Socket {
    // Field order: the socket closes before the memory it uses is unmapped.
    fd: OwnedFd,
    rx: Ring,
    tx: Ring,
    fill: Ring,
    comp: Ring,
    umem: Mmap,
    /// TX chunks not in flight (UMEM offsets).
    tx_free: Vec<u64>,
    zero_copy: bool,
}

impl Socket {
    fn open(ifindex: u32, queue: u32) -> Result<Socket, NicError> {
        // SAFETY: plain system call.
        let fd =
            owned_fd(unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })
                .map_err(|e| match e {
                    NicError::Io(libc::EAFNOSUPPORT) => NicError::Unsupported,
                    e => e,
                })?;
        let raw = fd.as_raw_fd();
        let umem = Mmap::anonymous(CHUNKS * CHUNK)?;
        let reg = libc::xdp_umem_reg {
            addr: umem.ptr() as u64,
            len: umem.len() as u64,
            chunk_size: CHUNK as u32,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(raw, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)?;
        for opt in [
            libc::XDP_UMEM_FILL_RING,
            libc::XDP_UMEM_COMPLETION_RING,
            libc::XDP_RX_RING,
            libc::XDP_TX_RING,
        ] {
            setsockopt(raw, libc::SOL_XDP, opt, &RING)?;
        }
        // SAFETY: all-zero is a valid xdp_mmap_offsets.
        let mut off: libc::xdp_mmap_offsets = unsafe { core::mem::zeroed() };
        let mut len = core::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` is writable for `len` bytes.
        cvt(unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut len,
            )
        })?;
        let desc = core::mem::size_of::<libc::xdp_desc>();
        let rx = Ring::open(raw, &off.rx, desc, libc::XDP_PGOFF_RX_RING as u64)?;
        let tx = Ring::open(raw, &off.tx, desc, libc::XDP_PGOFF_TX_RING as u32 as u64)?;
        let mut fill = Ring::open(raw, &off.fr, 8, libc::XDP_UMEM_PGOFF_FILL_RING)?;
        let comp = Ring::open(raw, &off.cr, 8, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;
        for i in 0..RX_CHUNKS as u32 {
            // SAFETY: the fill ring has RING >= RX_CHUNKS entries of 8
            // bytes; nothing else writes it before bind.
            unsafe { (fill.entry(fill.local, 8) as *mut u64).write(u64::from(i) * CHUNK as u64) };
            fill.local = fill.local.wrapping_add(1);
        }
        fill.submit();
        let mut zero_copy = true;
        let mut r = bind(
            raw,
            ifindex,
            queue,
            libc::XDP_ZEROCOPY | libc::XDP_USE_NEED_WAKEUP,
        );
        if let Err(e) = r {
            // A veth answers EOPNOTSUPP: no XSK buffer-pool support.
            log::debug!("AF_XDP zero-copy bind refused ({e}); using copy mode");
            zero_copy = false;
            r = bind(
                raw,
                ifindex,
                queue,
                libc::XDP_COPY | libc::XDP_USE_NEED_WAKEUP,
            );
        }
        // EINVAL: most often a queue the interface does not have.
        r.map_err(|e| match e {
            NicError::Io(libc::EINVAL) => NicError::InvalidArgument,
            e => e,
        })?;
        Ok(Socket {
            fd,
            rx,
            tx,
            fill,
            comp,
            umem,
            tx_free: (RX_CHUNKS..CHUNKS).map(|i| (i * CHUNK) as u64).collect(),
            zero_copy,
        })
    }

    /// Returns finished TX chunks to the free list.
    fn reclaim(&mut self) {
        let n = self.comp.available();
        for i in 0..n {
            let e = self.comp.entry(self.comp.local.wrapping_add(i), 8);
            // SAFETY: entries below the producer index are written by the
            // kernel (Acquire in `available`) and 8-byte aligned.
            let addr = unsafe { (e as *const u64).read() };
            self.tx_free.push(addr & !(CHUNK as u64 - 1));
        }
        if n > 0 {
            self.comp.release(n);
        }
    }

    fn kick(&self) {
        // SAFETY: a zero-length sendto with null buffer and address only
        // wakes the kernel's TX path.
        unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                core::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                core::ptr::null(),
                0,
            )
        };
    }
}

fn bind(fd: RawFd, ifindex: u32, queue: u32, flags: u16) -> Result<(), NicError> {
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: 0,
    };
    // SAFETY: `sa` is a valid sockaddr_xdp of the size passed.
    cvt(unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_xdp).cast(),
            core::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// One AF_XDP queue. See the module documentation.
#[derive(Debug)]
pub struct XdpQueue {
    // Field order: the socket (and its UMEM) go before the program.
    sock: Socket,
    program: Arc<Program>,
    info: DeviceInfo,
    counters: QueueCounters,
    steering: Option<Steering>,
    kicks: u64,
    /// RX descriptors dropped because they described more than a frame
    /// holds (or lay outside the UMEM).
    oversize: u64,
}

impl XdpQueue {
    /// Received frames dropped because they were larger than a [`Frame`]
    /// (or their descriptor lay outside the UMEM). Frames larger than a
    /// UMEM chunk never get this far: the kernel drops them and counts
    /// them in `XDP_STATISTICS` (`rx_dropped`, which includes these).
    pub fn oversize_drops(&self) -> u64 {
        self.oversize
    }

    /// True when the socket is bound in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.sock.zero_copy
    }

    /// True when the program runs in the driver (native XDP), false for
    /// generic (skb) XDP.
    pub fn native(&self) -> bool {
        self.program.native
    }

    /// TX kicks (`sendto`) issued.
    pub fn kicks(&self) -> u64 {
        self.kicks
    }

    /// Frames handed to another queue by software re-steering.
    pub fn handed_over(&self) -> u64 {
        self.steering.as_ref().map_or(0, Steering::handed_over)
    }
}

impl NicQueue for XdpQueue {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn rx_burst(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize) -> usize {
        let mut got = match self.steering.as_mut() {
            Some(st) => st.drain(pool, out, max, &mut self.counters),
            None => 0,
        };
        let sock = &mut self.sock;
        let avail = sock.rx.available().min(RING);
        let mut used = 0;
        while used < avail && got < max {
            let Some(mut frame) = pool.alloc() else {
                self.counters.rx_no_buffer += 1;
                break;
            };
            let e = sock.rx.entry(sock.rx.local.wrapping_add(used), 16);
            // SAFETY: descriptors below the producer index were written by
            // the kernel (Acquire in `available`); `xdp_desc` is 16 bytes,
            // 8-byte aligned.
            let d = unsafe { (e as *const libc::xdp_desc).read() };
            used += 1;
            let addr = d.addr as usize;
            let len = d.len as usize;
            let ok = len <= frame.capacity()
                && addr
                    .checked_add(len)
                    .is_some_and(|end| end <= sock.umem.len());
            if ok {
                // SAFETY: `addr + len` is inside the UMEM (checked); the
                // kernel does not touch the chunk until it is back on the
                // fill ring.
                let src = unsafe { core::slice::from_raw_parts(sock.umem.ptr().add(addr), len) };
                frame.buffer_mut()[..len].copy_from_slice(src);
                frame.set_len(len);
            }
            // Recycle the chunk at once.
            let f = sock.fill.entry(sock.fill.local, 8);
            // SAFETY: the fill ring has room: RX_CHUNKS chunks circulate
            // among fill ring, kernel and RX ring, and RING >= RX_CHUNKS.
            unsafe { (f as *mut u64).write((addr & !(CHUNK - 1)) as u64) };
            sock.fill.local = sock.fill.local.wrapping_add(1);
            if !ok {
                self.oversize += 1;
            }
            if !ok {
                pool.free(frame);
            } else if Steering::deliver(
                self.steering.as_mut(),
                &mut self.counters,
                frame,
                pool,
                out,
            ) {
                got += 1;
            }
        }
        if used > 0 {
            sock.rx.release(used);
            sock.fill.submit();
            if sock.zero_copy && sock.fill.needs_wakeup() {
                // SAFETY: a zero-length, nonblocking recvfrom only wakes
                // the driver to refill.
                unsafe {
                    libc::recvfrom(
                        sock.fd.as_raw_fd(),
                        core::ptr::null_mut(),
                        0,
                        libc::MSG_DONTWAIT,
                        core::ptr::null_mut(),
                        core::ptr::null_mut(),
                    )
                };
            }
        }
        if let Some(st) = self.steering.as_mut() {
            st.flush();
        }
        self.counters.rx_frames += got as u64;
        got
    }

    fn tx_burst(&mut self, frames: &mut Vec<Frame>, pool: &mut FramePool) -> usize {
        let sock = &mut self.sock;
        sock.reclaim();
        let mut room = sock.tx.free();
        let mut taken = 0;
        let mut posted = 0;
        for frame in frames.iter_mut() {
            if room == 0 {
                break;
            }
            let len = frame.len();
            let len = sys::pad_frame(frame.buffer_mut(), len);
            if len > CHUNK {
                // Cannot be sent; dropped and counted.
                self.counters.tx_dropped += 1;
                taken += 1;
                continue;
            }
            let Some(addr) = sock.tx_free.pop() else {
                break;
            };
            // SAFETY: the chunk at `addr` is free (not posted), inside the
            // UMEM, and `len <= CHUNK`.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    frame.buffer().as_ptr(),
                    sock.umem.ptr().add(addr as usize),
                    len,
                )
            };
            let e = sock.tx.entry(sock.tx.local, 16);
            let d = libc::xdp_desc {
                addr,
                len: len as u32,
                options: 0,
            };
            // SAFETY: the entry is free (room > 0) and 8-byte aligned.
            unsafe { (e as *mut libc::xdp_desc).write(d) };
            sock.tx.local = sock.tx.local.wrapping_add(1);
            room -= 1;
            posted += 1;
            taken += 1;
            self.counters.tx_frames += 1;
            self.counters.tx_bytes += len as u64;
        }
        if posted > 0 {
            sock.tx.submit();
        }
        // Copy mode sends only from sendto(), and at most 32 frames per call
        // (the kernel's TX batch), so kick while descriptors are left
        // (bounded; the rest go with the next burst). Zero-copy asks for a
        // kick through the ring flag.
        for _ in 0..(RING / 32) {
            let outstanding = RING - sock.tx.free();
            if outstanding == 0 || (sock.zero_copy && !sock.tx.needs_wakeup()) {
                break;
            }
            let before = outstanding;
            sock.kick();
            self.kicks += 1;
            if RING - sock.tx.free() >= before {
                // No progress (the device is busy): try again next burst.
                break;
            }
        }
        for frame in frames.drain(..taken) {
            pool.free(frame);
        }
        taken
    }

    fn rx_pending(&self) -> bool {
        self.sock.rx.available() > 0 || self.steering.as_ref().is_some_and(Steering::pending)
    }

    fn wait_rx(&self, timeout: Duration) {
        if self.rx_pending() {
            return;
        }
        match &self.steering {
            Some(st) => sys::wait_readable(&[self.sock.fd.as_raw_fd(), st.event_fd()], timeout),
            None => sys::wait_readable(&[self.sock.fd.as_raw_fd()], timeout),
        }
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(match &self.steering {
            Some(st) => st.epoll_fd(),
            None => self.sock.fd.as_raw_fd(),
        })
    }

    fn counters(&self) -> QueueCounters {
        let mut c = self.counters;
        // SAFETY: all-zero is a valid xdp_statistics.
        let zero: libc::xdp_statistics = unsafe { core::mem::zeroed() };
        if let Ok(st) = sys::getsockopt(
            self.sock.fd.as_raw_fd(),
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
            zero,
        ) {
            // Cumulative in the kernel: frames lost for want of RX ring
            // space, dropped for another reason (no fill-ring chunk, larger
            // than a chunk), and descriptors the kernel refused.
            c.ring_full_drops += st.rx_ring_full;
            c.rx_dropped += st.rx_dropped;
            c.rx_invalid_descs += st.rx_invalid_descs;
            c.tx_invalid_descs += st.tx_invalid_descs;
        }
        c.rx_dropped += self.oversize;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        const { assert!(RING.is_power_of_two()) };
        const { assert!(RING as usize >= RX_CHUNKS) };
        const { assert!(CHUNK >= 1518 && CHUNK.is_power_of_two()) };
        assert_eq!(core::mem::size_of::<libc::xdp_desc>(), 16);
    }

    #[test]
    fn bad_arguments() {
        assert_eq!(
            XdpDevice::open("lo", 0).err(),
            Some(NicError::InvalidArgument)
        );
        assert_eq!(
            XdpDevice::open("mtcp-no-such0", 1).err(),
            Some(NicError::NoSuchInterface)
        );
    }
}

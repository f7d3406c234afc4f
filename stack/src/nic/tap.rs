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
//! [`TapQueue::open_multi`] opens a multi-queue TAP (`IFF_MULTI_QUEUE`),
//! one descriptor per queue. The kernel spreads the frames it sends over
//! the queues by its own flow hash, not the stack's symmetric Toeplitz
//! hash, so the queues re-steer in software exactly as the AF_PACKET
//! backend does (see [`af_packet`](super::af_packet)).
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::af_packet::Steering;
use super::sys::{self, errno, owned_fd};
use super::{Capabilities, DeviceInfo, Frame, FramePool, NicError, NicQueue, QueueCounters};
use crate::time::Duration;

/// One queue of a TAP interface. See the module documentation.
#[derive(Debug)]
pub struct TapQueue {
    fd: OwnedFd,
    info: DeviceInfo,
    counters: QueueCounters,
    tx_errors: u64,
    steering: Option<Steering>,
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
                tx_errors: 0,
                steering: None,
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
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | extra) as libc::c_short;
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
        Ok(fd)
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
        // Bounded by `max` kept frames plus as many handed over.
        let mut reads = 0;
        while got < max && reads < 2 * max {
            reads += 1;
            let Some(mut frame) = pool.alloc() else {
                self.counters.rx_no_buffer += 1;
                break;
            };
            let buf = frame.buffer_mut();
            // SAFETY: `buf` is a writable buffer of `buf.len()` bytes owned
            // by `frame` for the duration of the call.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                pool.free(frame);
                break;
            }
            frame.set_len(n as usize);
            let keep = match self.steering.as_mut() {
                Some(st) => st.keep(&frame, &mut self.counters),
                None => true,
            };
            if !keep {
                pool.free(frame);
                continue;
            }
            self.counters.rx_bytes += n as u64;
            out.push(frame);
            got += 1;
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
            // SAFETY: `buf` is `len` readable bytes for the duration of the
            // call.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), buf.as_ptr().cast(), len) };
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

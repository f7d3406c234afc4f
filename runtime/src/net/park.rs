//! Parking a core on an fd device: one `ppoll` over the device's descriptor
//! and an eventfd that the core's unparker writes (the pattern of mio's
//! `Waker`).
//!
//! A cross-thread wake must cost no system call while the core is busy, and
//! must never be lost when it races with the core going to sleep. The
//! parker keeps one atomic state, as `std::thread::park` does:
//!
//! ```text
//!   EMPTY ──park: CAS──▶ PARKED ──ppoll returns: swap──▶ EMPTY
//!     ▲                    │
//!     │                unpark: swap NOTIFIED, saw PARKED → write eventfd
//!     │
//!   NOTIFIED ◀──unpark: swap (core not parked: no system call)
//!     └──park: CAS fails → store EMPTY, return at once
//! ```
//!
//! The core sets PARKED *before* it waits, and every caller of the unparker
//! has already queued its work (the inbox message is pushed first), so
//! either the park sees NOTIFIED and returns, or the unparker sees PARKED
//! and writes the eventfd, which makes the `ppoll` (current or about to
//! start) return.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::io_driver::Unparker;

const EMPTY: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;

/// What the core and its unparkers share.
#[derive(Debug)]
struct Shared {
    state: AtomicU8,
    event: OwnedFd,
    /// Eventfd writes made by unparkers (each one a system call).
    writes: AtomicU64,
}

impl Shared {
    fn unpark(&self) {
        if self.state.swap(NOTIFIED, Ordering::SeqCst) == PARKED {
            self.writes.fetch_add(1, Ordering::Relaxed);
            let one = 1u64;
            // SAFETY: writes 8 bytes from `one` to an open eventfd; a full
            // counter (EAGAIN) still leaves it readable.
            unsafe {
                libc::write(self.event.as_raw_fd(), (&one as *const u64).cast(), 8);
            }
        }
    }

    fn clear_event(&self) {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into `v`; the eventfd is nonblocking.
        unsafe {
            libc::read(self.event.as_raw_fd(), (&mut v as *mut u64).cast(), 8);
        }
    }
}

/// One core's parker for an fd device.
#[derive(Debug)]
pub(crate) struct FdParker {
    shared: Arc<Shared>,
}

impl FdParker {
    /// A parker with its own eventfd.
    pub(crate) fn new() -> io::Result<FdParker> {
        // SAFETY: plain system call.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        let event = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(FdParker {
            shared: Arc::new(Shared {
                state: AtomicU8::new(EMPTY),
                event,
                writes: AtomicU64::new(0),
            }),
        })
    }

    /// Makes the current or the next [`park`](Self::park) return; callable
    /// from any thread.
    pub(crate) fn unparker(&self) -> Unparker {
        let shared = self.shared.clone();
        Arc::new(move || shared.unpark())
    }

    /// How many unparks had to write the eventfd (the core was parked).
    #[cfg(test)]
    pub(crate) fn eventfd_writes(&self) -> u64 {
        self.shared.writes.load(Ordering::Relaxed)
    }

    /// Waits until `device` is readable, `timeout` passes (`None`: no
    /// limit) or an unparker is called (before or during the wait).
    /// Returns whether it waited (false: an unpark was already pending).
    pub(crate) fn park(&self, device: RawFd, timeout: Option<Duration>) -> bool {
        let s = &*self.shared;
        if s.state
            .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // NOTIFIED: consume it.
            s.state.store(EMPTY, Ordering::SeqCst);
            return false;
        }
        let mut pfds = [
            libc::pollfd {
                fd: device,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: s.event.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(core::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: two initialised pollfds that outlive the call; `ts_ptr` is
        // null (no limit) or a valid timespec; a null signal mask is allowed.
        unsafe {
            libc::ppoll(pfds.as_mut_ptr(), 2, ts_ptr, core::ptr::null());
        }
        s.state.swap(EMPTY, Ordering::SeqCst);
        // A write seen (or one racing in after the swap, which only makes the
        // next park return early): clear it so the eventfd stops being
        // readable.
        if pfds[1].revents != 0 {
            s.clear_event();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        assert_eq!(r, 0);
        // SAFETY: fresh descriptors, owned here.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    mod empty {
        use super::*;

        #[test]
        fn times_out() {
            let (r, _w) = pipe();
            let p = FdParker::new().unwrap();
            let t = Instant::now();
            assert!(p.park(r.as_raw_fd(), Some(Duration::from_millis(20))));
            assert!(t.elapsed() >= Duration::from_millis(19));
        }

        #[test]
        fn an_unpark_while_busy_makes_no_system_call() {
            let (r, _w) = pipe();
            let p = FdParker::new().unwrap();
            let u = p.unparker();
            u();
            u();
            assert_eq!(p.eventfd_writes(), 0);
            // The pending unpark is not lost: the next park returns at once.
            let t = Instant::now();
            assert!(!p.park(r.as_raw_fd(), Some(Duration::from_secs(5))));
            assert!(t.elapsed() < Duration::from_secs(1));
            // And it was consumed: the one after waits.
            assert!(p.park(r.as_raw_fd(), Some(Duration::from_millis(10))));
        }

        #[test]
        fn device_input_ends_the_wait() {
            let (r, w) = pipe();
            let p = FdParker::new().unwrap();
            // SAFETY: writes one byte from a live buffer.
            unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) };
            let t = Instant::now();
            assert!(p.park(r.as_raw_fd(), Some(Duration::from_secs(5))));
            assert!(t.elapsed() < Duration::from_secs(1));
        }
    }

    mod parked {
        use super::*;

        #[test]
        fn an_unpark_from_another_thread_ends_the_wait() {
            let (r, _w) = pipe();
            let p = FdParker::new().unwrap();
            let u = p.unparker();
            let waker = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                u();
            });
            let t = Instant::now();
            assert!(p.park(r.as_raw_fd(), Some(Duration::from_secs(10))));
            assert!(t.elapsed() < Duration::from_secs(5));
            waker.join().unwrap();
            assert_eq!(p.eventfd_writes(), 1);
            // The eventfd was cleared: the next park waits its timeout.
            let t = Instant::now();
            p.park(r.as_raw_fd(), Some(Duration::from_millis(20)));
            assert!(t.elapsed() >= Duration::from_millis(19));
        }

        #[test]
        fn racing_unparks_are_never_lost() {
            // Every round: the other thread unparks once, at a random point
            // around our park; the park must return well before its
            // (long) timeout.
            let (r, _w) = pipe();
            let p = FdParker::new().unwrap();
            for i in 0..200u32 {
                let u = p.unparker();
                let h = std::thread::spawn(move || {
                    for _ in 0..(i % 7) * 50 {
                        std::hint::spin_loop();
                    }
                    u();
                });
                let t = Instant::now();
                p.park(r.as_raw_fd(), Some(Duration::from_secs(10)));
                h.join().unwrap();
                assert!(t.elapsed() < Duration::from_secs(5), "round {i}");
                // Drain a notification that came after the park returned.
                p.park(r.as_raw_fd(), Some(Duration::ZERO));
            }
        }
    }
}

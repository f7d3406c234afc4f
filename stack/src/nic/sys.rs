//! Thin, checked wrappers over the Linux system calls the device backends
//! share: interface queries (`ioctl`), `poll`, memory maps, and entering a
//! network namespace.
//!
//! Every wrapper turns `errno` into a [`NicError`] with [`errno_to_error`],
//! so a missing interface, a missing privilege or a busy device reads as one
//! clear line.
#![allow(unsafe_code)]

use core::ptr::NonNull;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::NicError;
use crate::time::Duration;
use crate::wire::ethernet::EthernetAddress;

/// The smallest Ethernet frame without its FCS; shorter frames are padded
/// with zeros on transmit.
pub(crate) const MIN_FRAME_LEN: usize = 60;

/// The calling thread's `errno`.
#[inline]
pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Maps an `errno` to the [`NicError`] that explains it best.
pub(crate) fn errno_to_error(errno: i32) -> NicError {
    match errno {
        libc::ENODEV | libc::ENXIO => NicError::NoSuchInterface,
        libc::EPERM | libc::EACCES => NicError::PermissionDenied,
        libc::EBUSY => NicError::Busy,
        e => NicError::Io(e),
    }
}

/// The last `errno` as a [`NicError`].
#[inline]
pub(crate) fn last_error() -> NicError {
    errno_to_error(errno())
}

/// `Ok(r)` when a system call returned `r >= 0`, else the `errno` mapped.
#[inline]
pub(crate) fn cvt(r: libc::c_int) -> Result<libc::c_int, NicError> {
    if r < 0 {
        Err(last_error())
    } else {
        Ok(r)
    }
}

/// Wraps a descriptor a system call just returned.
pub(crate) fn owned_fd(r: libc::c_int) -> Result<OwnedFd, NicError> {
    let fd = cvt(r)?;
    // SAFETY: `fd` was just returned by a successful system call and is
    // owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `ifreq` with its name field set to `ifname`.
///
/// # Errors
/// [`NicError::InvalidArgument`] when the name is empty, too long for
/// `IFNAMSIZ` or holds a NUL byte.
pub(crate) fn ifreq(ifname: &str) -> Result<libc::ifreq, NicError> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(NicError::InvalidArgument);
    }
    // SAFETY: `ifreq` is plain old data (a name array and a union of plain
    // fields) for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { core::mem::zeroed() };
    for (dst, &b) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = b as libc::c_char;
    }
    Ok(req)
}

/// A datagram socket used only as a handle for interface `ioctl`s.
fn control_socket() -> Result<OwnedFd, NicError> {
    // SAFETY: plain system call with constant arguments.
    owned_fd(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })
}

/// Runs an interface `ioctl` on a control socket.
fn if_ioctl(request: libc::c_ulong, req: &mut libc::ifreq) -> Result<(), NicError> {
    let sock = control_socket()?;
    // SAFETY: `req` is a valid, exclusively borrowed `ifreq` for the
    // duration of the call; every request passed here reads and writes
    // only an `ifreq`.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), request as _, req as *mut libc::ifreq) })?;
    Ok(())
}

/// The interface index of `ifname` in the calling thread's network
/// namespace.
///
/// # Errors
/// [`NicError::NoSuchInterface`] when there is no such interface.
pub(crate) fn ifindex(ifname: &str) -> Result<u32, NicError> {
    let name = CString::new(ifname).map_err(|_| NicError::InvalidArgument)?;
    // SAFETY: `name` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        let e = errno();
        return Err(if e == libc::ENODEV || e == 0 {
            NicError::NoSuchInterface
        } else {
            errno_to_error(e)
        });
    }
    Ok(index)
}

/// The IP MTU of `ifname`.
///
/// # Errors
/// [`NicError::NoSuchInterface`] when there is no such interface.
pub(crate) fn if_mtu(ifname: &str) -> Result<usize, NicError> {
    let mut req = ifreq(ifname)?;
    if_ioctl(libc::SIOCGIFMTU, &mut req)?;
    // SAFETY: SIOCGIFMTU filled the `ifru_mtu` member.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    usize::try_from(mtu).map_err(|_| NicError::InvalidArgument)
}

/// The MAC address of `ifname`.
///
/// # Errors
/// [`NicError::NoSuchInterface`] when there is no such interface.
pub(crate) fn if_mac(ifname: &str) -> Result<EthernetAddress, NicError> {
    let mut req = ifreq(ifname)?;
    if_ioctl(libc::SIOCGIFHWADDR, &mut req)?;
    // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (dst, &b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *dst = b as u8;
    }
    Ok(EthernetAddress(mac))
}

/// Brings `ifname` up (IFF_UP), leaving its other flags alone.
///
/// # Errors
/// [`NicError::PermissionDenied`] without CAP_NET_ADMIN;
/// [`NicError::NoSuchInterface`].
pub(crate) fn if_set_up(ifname: &str) -> Result<(), NicError> {
    let mut req = ifreq(ifname)?;
    if_ioctl(libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    if_ioctl(libc::SIOCSIFFLAGS, &mut req)
}

/// Waits until one of `fds` is readable or `timeout` passes (microsecond
/// resolution, through `ppoll`). Interrupted waits return early.
pub(crate) fn wait_readable(fds: &[RawFd], timeout: Duration) {
    const MAX: usize = 4;
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX];
    let n = fds.len().min(MAX);
    for (p, &fd) in pfds.iter_mut().zip(&fds[..n]) {
        p.fd = fd;
        p.events = libc::POLLIN;
    }
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `pfds` holds `n` initialised entries and outlives the call;
    // `ts` is a valid timespec; a null signal mask is allowed.
    unsafe {
        libc::ppoll(pfds.as_mut_ptr(), n as libc::nfds_t, &ts, core::ptr::null());
    }
}

/// A memory mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; sharing the
// pointer across threads is as safe as the accesses the owners make, which
// go through the ring protocols documented where they are used.
unsafe impl Send for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `fd` at `offset`, shared and read-write
    /// (`MAP_POPULATE`, so the first packets do not fault).
    pub(crate) fn shared(fd: RawFd, len: usize, offset: i64) -> Result<Mmap, NicError> {
        // SAFETY: a fresh mapping chosen by the kernel aliases no Rust
        // object; the arguments are checked by the kernel.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                offset as libc::off_t,
            )
        };
        Self::from_raw(p, len)
    }

    /// Maps `len` bytes of zeroed anonymous memory, private and read-write.
    pub(crate) fn anonymous(len: usize) -> Result<Mmap, NicError> {
        // SAFETY: as for `shared`; no file is involved.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Self::from_raw(p, len)
    }

    fn from_raw(p: *mut libc::c_void, len: usize) -> Result<Mmap, NicError> {
        if p == libc::MAP_FAILED {
            return Err(last_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or(NicError::Io(libc::ENOMEM))?;
        Ok(Mmap { ptr, len })
    }

    /// The start of the mapping.
    #[inline]
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Its length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value created and
        // owns; nothing refers to it after drop.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// `setsockopt` with a plain value.
pub(crate) fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> Result<(), NicError> {
    // SAFETY: `value` is a valid `T` for the duration of the call and its
    // size is passed along; the kernel copies it.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            core::mem::size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `getsockopt` of a plain value (all-zero is a valid `T`).
pub(crate) fn getsockopt<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    zero: T,
) -> Result<T, NicError> {
    let mut value = zero;
    let mut len = core::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is writable for `len` bytes for the duration of the
    // call; the kernel writes at most `len` bytes.
    cvt(unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut T).cast(), &mut len) })?;
    Ok(value)
}

/// Pads `frame` (a buffer of at least [`MIN_FRAME_LEN`] bytes) with zeros
/// from `len` to the Ethernet minimum and returns the padded length.
#[inline]
pub(crate) fn pad_frame(buf: &mut [u8], len: usize) -> usize {
    if len < MIN_FRAME_LEN && buf.len() >= MIN_FRAME_LEN {
        buf[len..MIN_FRAME_LEN].fill(0);
        MIN_FRAME_LEN
    } else {
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        assert_eq!(errno_to_error(libc::ENODEV), NicError::NoSuchInterface);
        assert_eq!(errno_to_error(libc::EPERM), NicError::PermissionDenied);
        assert_eq!(errno_to_error(libc::EACCES), NicError::PermissionDenied);
        assert_eq!(errno_to_error(libc::EBUSY), NicError::Busy);
        assert_eq!(errno_to_error(libc::EINVAL), NicError::Io(libc::EINVAL));
    }

    #[test]
    fn interface_names_are_checked() {
        assert_eq!(ifreq("").err(), Some(NicError::InvalidArgument));
        assert_eq!(
            ifreq("a-name-far-too-long-for-linux").err(),
            Some(NicError::InvalidArgument)
        );
        assert!(ifreq("lo").is_ok());
        assert_eq!(
            ifindex("mtcp-no-such0").err(),
            Some(NicError::NoSuchInterface)
        );
    }

    #[test]
    fn loopback_is_queryable() {
        assert!(ifindex("lo").unwrap() > 0);
        assert_eq!(if_mtu("lo").unwrap(), 65536);
        assert_eq!(
            if_mtu("mtcp-no-such0").err(),
            Some(NicError::NoSuchInterface)
        );
    }

    #[test]
    fn padding() {
        let mut buf = [0xffu8; 64];
        assert_eq!(pad_frame(&mut buf, 42), 60);
        assert!(buf[42..60].iter().all(|&b| b == 0));
        assert_eq!(pad_frame(&mut buf, 62), 62);
    }

    #[test]
    fn anonymous_map_is_zeroed() {
        let m = Mmap::anonymous(8192).unwrap();
        assert_eq!(m.len(), 8192);
        // SAFETY: the mapping is 8192 readable bytes owned by `m`.
        let s = unsafe { core::slice::from_raw_parts(m.ptr(), m.len()) };
        assert!(s.iter().all(|&b| b == 0));
    }
}

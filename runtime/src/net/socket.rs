//! A socket id bound to the core whose stack owns it.

use std::fmt;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;

use mtcp_stack::tcp::tcb::SocketId;

use super::driver::{to_io, try_with_stack, with_stack};
use crate::task::waker::{Msg, Remote};

/// A TCP socket of one core's stack. Closing happens on drop, on the owning
/// core (sent to its inbox if the handle was dropped on any other thread;
/// if that core's run is over, its end of run already closed the socket).
pub(crate) struct Socket {
    pub(crate) id: SocketId,
    pub(crate) core: usize,
    /// The owning core's inbox (of the run that created the socket).
    remote: Option<Arc<Remote>>,
    /// `SO_LINGER` as set by `set_linger`, in microseconds; `NO_LINGER`
    /// when unset. Only zero changes anything: the close becomes a reset.
    pub(crate) linger_us: std::sync::atomic::AtomicU64,
}

/// `Socket::linger_us` when no linger is set.
pub(crate) const NO_LINGER: u64 = u64::MAX;

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("core", &self.core)
            .finish()
    }
}

impl Socket {
    pub(crate) fn new(id: SocketId) -> Socket {
        Socket {
            id,
            core: crate::runtime::current_core(),
            remote: crate::context::with_core(|c| c.remote.clone()),
            linger_us: std::sync::atomic::AtomicU64::new(NO_LINGER),
        }
    }

    /// Checks that the caller runs on the socket's core.
    pub(crate) fn check_core(&self) -> io::Result<()> {
        if crate::context::in_runtime() && crate::runtime::current_core() == self.core {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "mtcp: a socket of core {} used from another thread; sockets stay on the \
                 core that created them",
                self.core
            )))
        }
    }

    /// Runs `f` on this socket's stack.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut mtcp_stack::stack::Stack, mtcp_stack::time::Instant, SocketId) -> R,
    ) -> io::Result<R> {
        self.check_core()?;
        with_stack(|s, now| f(s, now, self.id))
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.with(|s, _, id| s.tcp().local_addr(id))?
            .map(SocketAddr::V4)
            .map_err(to_io)
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with(|s, _, id| s.tcp().peer_addr(id))?
            .map(SocketAddr::V4)
            .map_err(to_io)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let id = self.id;
        // A zero linger closes with a reset, as SO_LINGER { 0 } does.
        let reset = *self.linger_us.get_mut() == 0;
        let close = move |s: &mut mtcp_stack::stack::Stack| {
            if reset {
                let _ = s.tcp_mut().abort(id);
            } else {
                let _ = s.tcp_mut().close(id);
            }
        };
        if self.check_core().is_ok() {
            let _ = try_with_stack(|s, _| close(s));
        } else if let Some(remote) = &self.remote {
            // Dropped on another core or a plain thread: close it where it
            // lives. If that core has stopped, the send fails: its end of
            // run closed every socket already.
            remote.send(Msg::Run(Box::new(move || {
                let _ = try_with_stack(|s, _| close(s));
            })));
        }
    }
}

/// Resolves `addr` to IPv4 socket addresses (the stack is IPv4 only).
pub(crate) fn resolve_v4(addr: impl std::net::ToSocketAddrs) -> io::Result<Vec<SocketAddrV4>> {
    let all: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let v4: Vec<SocketAddrV4> = all
        .iter()
        .filter_map(|a| match a {
            SocketAddr::V4(a) => Some(*a),
            SocketAddr::V6(a) => a
                .ip()
                .to_ipv4_mapped()
                .map(|ip| SocketAddrV4::new(ip, a.port())),
        })
        .collect();
    if v4.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("mtcp: no IPv4 address among {all:?} (the stack is IPv4 only)"),
        ));
    }
    Ok(v4)
}

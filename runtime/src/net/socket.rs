//! A socket id bound to the core whose stack owns it.

use std::fmt;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;

use mtcp_stack::tcp::SocketId;

use super::driver::try_with_stack;
use super::error;
use crate::task::waker::{Msg, Remote};

/// A TCP socket of one core's stack. It holds its core's key (the core's
/// index: a core's stack outlives one run of the runtime) and that core's
/// inbox, so a call costs one thread-local read and one borrow
/// ([`Core::with_stack`](crate::reactor::Core::with_stack)), and a drop
/// anywhere else posts the close to the owning core (if that core's run is
/// over, its end of run already closed the socket).
pub(crate) struct Socket {
    pub(crate) id: SocketId,
    /// `SO_LINGER` as set by `set_linger`, in whole milliseconds (rounded
    /// up, so only zero reads as zero); `NO_LINGER` when unset. Only zero
    /// changes anything: the close becomes a reset.
    pub(crate) linger_ms: std::sync::atomic::AtomicU32,
    /// The owning core's index (a `u32`: with the linger, 8 bytes, so a
    /// stream, which holds its socket inline, is 24 bytes).
    pub(crate) core: u32,
    /// The owning core's inbox (of the run that created the socket).
    remote: Option<Arc<Remote>>,
}

/// `Socket::linger_ms` when no linger is set.
pub(crate) const NO_LINGER: u32 = u32::MAX;

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("core", &self.core)
            .finish()
    }
}

impl Socket {
    /// A socket of the current core's stack (call it on that core).
    pub(crate) fn new(id: SocketId) -> Socket {
        let (core, remote) = super::current::with_current(|c| (c.index, Some(c.remote.clone())))
            .unwrap_or((0, None));
        Socket {
            id,
            linger_ms: std::sync::atomic::AtomicU32::new(NO_LINGER),
            core: u32::try_from(core).expect("fewer than 2^32 cores"),
            remote,
        }
    }

    fn wrong_thread(&self) -> io::Error {
        io::Error::other(format!(
            "mtcp: a socket of core {} used from another thread; sockets stay on the \
             core that created them",
            self.core
        ))
    }

    /// Checks that the caller runs on the socket's core.
    pub(crate) fn check_core(&self) -> io::Result<()> {
        match super::current::with_current(|c| c.index == self.core as usize) {
            Some(true) => Ok(()),
            _ => Err(self.wrong_thread()),
        }
    }

    /// Runs `f` on this socket's stack: one thread-local read (the current
    /// core, checked against the socket's), one borrow.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut mtcp_stack::stack::Stack, mtcp_stack::time::Instant, SocketId) -> R,
    ) -> io::Result<R> {
        super::current::with_current(|c| {
            if c.index != self.core as usize {
                return Err(self.wrong_thread());
            }
            c.with_stack(|s, now| f(s, now, self.id))
        })
        .unwrap_or_else(|| Err(self.wrong_thread()))
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.with(|s, _, id| s.tcp().local_addr(id))?
            .map(SocketAddr::V4)
            .map_err(error::tcp)
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with(|s, _, id| s.tcp().peer_addr(id))?
            .map(SocketAddr::V4)
            .map_err(error::tcp)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let id = self.id;
        // A zero linger closes with a reset, as SO_LINGER { 0 } does.
        let reset = *self.linger_ms.get_mut() == 0;
        let close = move |s: &mut mtcp_stack::stack::Stack| {
            if reset {
                let _ = s.tcp_mut().abort(id);
            } else {
                let _ = s.tcp_mut().close(id);
            }
        };
        // On the owning core with its stack free: close now. Otherwise
        // (another core, a plain thread, or a waker run inside the stack's
        // own poll) post the close to the owning core's inbox. If that core
        // has stopped, the send fails: its end of run closed every socket.
        let closed = super::current::with_current(|c| {
            c.index == self.core as usize && !c.busy() && {
                let _ = c.with_stack(|s, _| close(s));
                true
            }
        });
        if closed != Some(true) {
            if let Some(remote) = &self.remote {
                remote.send(Msg::Run(Box::new(move || {
                    let _ = try_with_stack(|s, _| close(s));
                })));
            }
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Wake, Waker};
    use std::time::Duration;

    use crate::io::{AsyncReadExt, AsyncWriteExt};
    use crate::net::{TcpListener, TcpStream};

    #[test]
    fn a_stream_holds_its_socket_inline() {
        // Every idle connection holds one stream: its socket is inline, no
        // heap block (docs/benchmarks.md, idle; it was a 48-byte `Arc`).
        assert!(
            core::mem::size_of::<TcpStream>() <= 24,
            "{}",
            core::mem::size_of::<TcpStream>()
        );
    }

    /// A foreign waker that uses its socket as soon as it is woken, as an
    /// executor polling inside `wake` would. The stack's `poll` made it
    /// due; it is woken after the stack's borrow ended.
    struct UsesSocket {
        stream: Mutex<Option<TcpStream>>,
        seen: Mutex<Option<String>>,
    }

    impl Wake for UsesSocket {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            let mut stream = self.stream.lock().unwrap();
            if let Some(s) = stream.as_ref() {
                let seen = match s.local_addr() {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => e.to_string(),
                };
                *self.seen.lock().unwrap() = Some(seen);
            }
            // Dropped from inside the wake: the close must still happen.
            stream.take();
        }
    }

    #[test]
    fn a_socket_used_and_dropped_from_a_wake_finds_the_stack_free() {
        let rt = crate::runtime::Builder::from_env()
            .unwrap()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let (server, _) = l.accept().await.unwrap();
            let foreign = Arc::new(UsesSocket {
                stream: Mutex::new(None),
                seen: Mutex::new(None),
            });
            let waker = Waker::from(foreign.clone());
            assert!(server
                .poll_read_ready(&mut Context::from_waker(&waker))
                .is_pending());
            *foreign.stream.lock().unwrap() = Some(server);
            // The FIN makes the server readable: `foreign` is woken once the
            // stack's poll has returned.
            client.shutdown().await.unwrap();
            let mut buf = [0u8; 8];
            let n = crate::time::timeout(Duration::from_secs(10), client.read(&mut buf))
                .await
                .expect("the close made from inside the wake reached the peer")
                .unwrap();
            assert_eq!(n, 0);
            let seen = foreign.seen.lock().unwrap().clone().unwrap();
            assert_eq!(
                seen, "ok",
                "the socket call from the wake reached the stack"
            );
            assert!(foreign.stream.lock().unwrap().is_none());
        });
    }
}

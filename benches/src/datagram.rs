//! The `udp` scenario's client and server loops, generic over the socket
//! ([`Datagram`]: tokio's and mtcp's `UdpSocket`) and the runtime's timer.
//!
//! As with the stream loops of [`crate::loops`], every system runs the same
//! bodies; the system only binds, connects and spreads the sockets. The one
//! difference: a datagram may be lost (on the kernel side a full socket
//! buffer drops it), so the client needs a timer to stop waiting. The loops
//! take the runtime's `sleep` as a function, and nothing else of it.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::loops::{request_bytes, TxStats, Window};

/// How long a client waits for the echo of a datagram before it counts it
/// as lost and sends the next one.
pub const LOSS_TIMEOUT: Duration = Duration::from_millis(100);

/// The largest datagram the server echoes whole (a UDP payload is at most
/// 65 507 bytes over IPv4).
pub const SERVER_BUFFER: usize = 65_536;

/// A UDP socket as the loops use it: the four calls tokio's `UdpSocket`
/// has, with its semantics (one datagram per call; a receive into a short
/// buffer truncates).
pub trait Datagram {
    /// Sends one datagram to the connected peer.
    fn send(&self, buf: &[u8]) -> impl Future<Output = io::Result<usize>>;
    /// Receives one datagram from the connected peer.
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>>;
    /// Sends one datagram to `target`.
    fn send_to(&self, buf: &[u8], target: SocketAddr) -> impl Future<Output = io::Result<usize>>;
    /// Receives one datagram and its sender.
    fn recv_from(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<(usize, SocketAddr)>>;
}

impl Datagram for tokio::net::UdpSocket {
    fn send(&self, buf: &[u8]) -> impl Future<Output = io::Result<usize>> {
        tokio::net::UdpSocket::send(self, buf)
    }
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> {
        tokio::net::UdpSocket::recv(self, buf)
    }
    fn send_to(&self, buf: &[u8], target: SocketAddr) -> impl Future<Output = io::Result<usize>> {
        tokio::net::UdpSocket::send_to(self, buf, target)
    }
    fn recv_from(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<(usize, SocketAddr)>> {
        tokio::net::UdpSocket::recv_from(self, buf)
    }
}

impl Datagram for mtcp::net::UdpSocket {
    fn send(&self, buf: &[u8]) -> impl Future<Output = io::Result<usize>> {
        mtcp::net::UdpSocket::send(self, buf)
    }
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> {
        mtcp::net::UdpSocket::recv(self, buf)
    }
    fn send_to(&self, buf: &[u8], target: SocketAddr) -> impl Future<Output = io::Result<usize>> {
        mtcp::net::UdpSocket::send_to(self, buf, target)
    }
    fn recv_from(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<(usize, SocketAddr)>> {
        mtcp::net::UdpSocket::recv_from(self, buf)
    }
}

/// Which of two futures finished first.
enum First<A, B> {
    /// The first one.
    A(A),
    /// The second one.
    B(B),
}

/// Polls `a` then `b` until one is ready; drops `a` (a receive: cancel
/// safe) and leaves `b` where it was.
async fn first<A, B>(a: A, b: &mut B) -> First<A::Output, B::Output>
where
    A: Future,
    B: Future + Unpin,
{
    let mut a = pin!(a);
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(First::A(v));
        }
        if let Poll::Ready(v) = Pin::new(&mut *b).poll(cx) {
            return Poll::Ready(First::B(v));
        }
        Poll::Pending
    })
    .await
}

/// `udp` client: on one connected socket, sends a `size`-byte datagram and
/// waits for the same bytes to come back, again and again until the window
/// ends. Each request carries a sequence number in its first (up to) eight
/// bytes; an echo that does not match the request in flight (a late echo of
/// one given up on) is skipped. When no echo comes within [`LOSS_TIMEOUT`]
/// (timed with the runtime's `sleep`), the request counts as lost
/// (`stats.lost`, when it started in the window) and the next one is sent.
///
/// # Errors
///
/// The socket's error (e.g. `ConnectionRefused` when nobody listens).
pub async fn udp_client<S, T, F>(
    socket: &S,
    size: usize,
    window: &Window,
    sleep: T,
    stats: &mut TxStats,
) -> io::Result<()>
where
    S: Datagram,
    T: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let mut request = request_bytes(size);
    // One byte more than asked for, so a longer datagram does not match.
    let mut response = vec![0u8; size + 1];
    let tag = size.min(8);
    let mut seq = 0u64;
    loop {
        let t0 = Instant::now();
        if t0 >= window.end {
            return Ok(());
        }
        seq = seq.wrapping_add(1);
        request[..tag].copy_from_slice(&seq.to_le_bytes()[..tag]);
        socket.send(&request).await?;
        let mut deadline = pin!(sleep(LOSS_TIMEOUT));
        loop {
            match first(socket.recv(&mut response), &mut deadline).await {
                First::A(Ok(n)) => {
                    if response[..n] == request[..] {
                        stats.record(window, t0, Instant::now());
                        break;
                    }
                }
                First::A(Err(e)) => return Err(e),
                First::B(()) => {
                    if window.contains(t0) {
                        stats.lost += 1;
                    }
                    break;
                }
            }
        }
    }
}

/// `udp` server: sends every datagram back to its sender, until an error
/// other than an ICMP report about an earlier datagram (`ConnectionRefused`,
/// `ConnectionReset`: skipped). It never returns otherwise: the system
/// stops it by dropping the future.
///
/// # Errors
///
/// The socket's error.
pub async fn udp_echo_server<S: Datagram>(socket: &S) -> io::Result<()> {
    let mut buf = vec![0u8; SERVER_BUFFER];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) if reported(&e) => continue,
            Err(e) => return Err(e),
        };
        match socket.send_to(&buf[..n], peer).await {
            Ok(_) => {}
            Err(e) if reported(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// An error that reports an ICMP message about an earlier datagram, not a
/// broken socket.
fn reported(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn window(ms: u64) -> Window {
        let start = Instant::now();
        Window {
            start,
            end: start + Duration::from_millis(ms),
        }
    }

    async fn pair() -> (tokio::net::UdpSocket, tokio::net::UdpSocket) {
        let server = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let client = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        client.connect(server.local_addr().unwrap()).await.unwrap();
        (server, client)
    }

    #[test]
    fn echo_over_loopback() {
        let mut stats = TxStats::new();
        let w = window(50);
        rt().block_on(async {
            let (server, client) = pair().await;
            tokio::select! {
                r = udp_client(&client, 64, &w, tokio::time::sleep, &mut stats) => r.unwrap(),
                r = udp_echo_server(&server) => panic!("server ended: {r:?}"),
            }
        });
        assert!(stats.counted > 0, "{stats:?}");
        assert_eq!(stats.lost, 0);
        assert!(stats.latency().p50_us <= stats.latency().p99_us);
    }

    #[test]
    fn tiny_datagrams_still_match() {
        let mut stats = TxStats::new();
        let w = window(20);
        rt().block_on(async {
            let (server, client) = pair().await;
            tokio::select! {
                r = udp_client(&client, 1, &w, tokio::time::sleep, &mut stats) => r.unwrap(),
                r = udp_echo_server(&server) => panic!("server ended: {r:?}"),
            }
        });
        assert!(stats.counted > 0, "{stats:?}");
    }

    #[test]
    fn a_silent_server_counts_losses() {
        // The server socket exists but never answers: every request of the
        // window is lost after LOSS_TIMEOUT.
        let mut stats = TxStats::new();
        let w = window(250);
        rt().block_on(async {
            let (_server, client) = pair().await;
            udp_client(&client, 64, &w, tokio::time::sleep, &mut stats)
                .await
                .unwrap();
        });
        assert_eq!(stats.counted, 0);
        // Requests at about 0, 100 and 200 ms (2 if the timers ran late).
        assert!((2..=3).contains(&stats.lost), "{stats:?}");
    }

    #[test]
    fn late_and_wrong_echoes_are_skipped() {
        let mut stats = TxStats::new();
        let w = window(20);
        rt().block_on(async {
            let (server, client) = pair().await;
            // A server that first answers with a stale datagram, then with
            // a longer one, then echoes properly.
            let answer = async {
                let mut buf = vec![0u8; 256];
                let (n, peer) = server.recv_from(&mut buf).await.unwrap();
                let mut stale = buf[..n].to_vec();
                stale[0] ^= 0xff;
                server.send_to(&stale, peer).await.unwrap();
                let mut longer = buf[..n].to_vec();
                longer.push(0);
                server.send_to(&longer, peer).await.unwrap();
                server.send_to(&buf[..n], peer).await.unwrap();
                udp_echo_server(&server).await
            };
            tokio::select! {
                r = udp_client(&client, 64, &w, tokio::time::sleep, &mut stats) => r.unwrap(),
                r = answer => panic!("server ended: {r:?}"),
            }
        });
        assert!(stats.counted > 0, "{stats:?}");
        assert_eq!(stats.lost, 0);
    }
}

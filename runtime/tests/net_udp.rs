//! UdpSocket over the in-stack loopback and the in-memory NIC.

use std::io;
use std::time::Duration;

use mtcp::io::ReadBuf;
use mtcp::net::UdpSocket;
use mtcp::runtime::Builder;
use mtcp::stack::nic::memory::MemoryNic;
use mtcp::stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

fn cidr(a: [u8; 4]) -> Ipv4Cidr {
    Ipv4Cidr {
        address: Ipv4Address::from(a),
        prefix_len: 24,
    }
}

fn small(b: Builder) -> Builder {
    let mut tcp = b.net_config().stack.tcp;
    tcp.max_connections = 64;
    tcp.chunk_count = 256;
    b.tcp_config(tcp)
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + seed) as u8).collect()
}

#[test]
fn echo_over_loopback_keeps_boundaries() {
    let rt = small(Builder::new().addr(cidr([10, 0, 0, 1])))
        .build()
        .unwrap();
    rt.block_on(async {
        let server = UdpSocket::bind("0.0.0.0:7000").await.unwrap();
        assert_eq!(server.local_addr().unwrap().to_string(), "0.0.0.0:7000");
        let echo = mtcp::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let (n, peer) = server.recv_from(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                assert_eq!(server.send_to(&buf[..n], peer).await.unwrap(), n);
            }
        });
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.connect("127.0.0.1:7000").await.unwrap();
        assert_eq!(c.peer_addr().unwrap().to_string(), "127.0.0.1:7000");
        let mut back = vec![0u8; 65536];
        for len in (1..3000).step_by(7).chain([8000, 65_507]) {
            let d = pattern(len, len);
            assert_eq!(c.send(&d).await.unwrap(), len);
            let n = c.recv(&mut back).await.unwrap();
            assert_eq!(&back[..n], &d[..], "len {len}");
        }
        c.send(&[]).await.unwrap();
        echo.await.unwrap();
    });
}

#[test]
fn truncation_peek_try_and_readiness() {
    let rt = small(Builder::new()).build().unwrap();
    rt.block_on(async {
        let a = UdpSocket::bind("0.0.0.0:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:5000").await.unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(
            b.try_recv_from(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        a.send_to(b"0123456789", "127.0.0.1:5000").await.unwrap();
        a.send_to(b"next", "127.0.0.1:5000").await.unwrap();
        b.readable().await.unwrap();
        b.writable().await.unwrap();
        let (n, from) = b.peek_from(&mut buf).await.unwrap();
        assert_eq!((n, &buf), (4, b"0123"));
        assert_eq!(from.port(), a.local_addr().unwrap().port());
        // A short buffer truncates; the rest of that datagram is lost.
        let (n, _) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((n, &buf), (4, b"0123"));
        let mut store = [0u8; 16];
        let mut rb = ReadBuf::new(&mut store);
        let from2 = std::future::poll_fn(|cx| b.poll_recv_from(cx, &mut rb))
            .await
            .unwrap();
        assert_eq!(rb.filled(), b"next");
        assert_eq!(from2, from);
        // Options.
        a.set_ttl(7).unwrap();
        assert_eq!(a.ttl().unwrap(), 7);
        assert!(!a.broadcast().unwrap());
        let e = a.send_to(b"x", "255.255.255.255:9").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        a.set_broadcast(true).unwrap();
        assert!(a.broadcast().unwrap());
        assert_eq!(
            a.peer_addr().unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
        assert_eq!(
            a.send(b"x").await.unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
        // Bind errors.
        let e = UdpSocket::bind("127.0.0.1:5000").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        drop(b);
        UdpSocket::bind("127.0.0.1:5000").await.unwrap();
        let s = mtcp::net::core_stats().unwrap();
        assert!(s.udp.rx_datagrams >= 2, "{}", s.udp);
    });
}

#[test]
fn port_unreachable_is_connection_refused_on_the_next_call() {
    let rt = small(Builder::new()).build().unwrap();
    rt.block_on(async {
        let c = UdpSocket::bind("0.0.0.0:0").await.unwrap();
        c.connect("127.0.0.1:9").await.unwrap();
        c.send(b"anyone").await.unwrap();
        let mut buf = [0u8; 8];
        let e = mtcp::time::timeout(Duration::from_secs(5), c.recv(&mut buf))
            .await
            .expect("the error wakes the reader")
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn two_runtimes_over_a_memory_nic_pair_every_size_and_fragments() {
    let (a, b) = MemoryNic::pair(1, 1024);
    let server_rt = small(
        Builder::new()
            .addr(cidr([10, 0, 0, 1]))
            .nic_queues(a.split_boxed()),
    )
    .build()
    .unwrap();
    let client_rt = small(
        Builder::new()
            .addr(cidr([10, 0, 0, 2]))
            .nic_queues(b.split_boxed()),
    )
    .build()
    .unwrap();
    let server = std::thread::spawn(move || {
        server_rt.block_on(async {
            let s = UdpSocket::bind("0.0.0.0:8080").await.unwrap();
            let mut buf = vec![0u8; 65536];
            let mut count = 0u32;
            // 1472 sizes, 20 of 8000 bytes, 3 more in fragments.
            while count < 1495 {
                let (n, peer) = s.recv_from(&mut buf).await.unwrap();
                count += 1;
                s.send_to(&buf[..n], peer).await.unwrap();
            }
            // Let the last echo leave before the runtime stops.
            mtcp::time::sleep(Duration::from_millis(200)).await;
            count
        })
    });
    let sent = client_rt.block_on(async {
        let c = UdpSocket::bind("0.0.0.0:0").await.unwrap();
        c.connect("10.0.0.1:8080").await.unwrap();
        let mut back = vec![0u8; 65536];
        let mut sent = 0u32;
        let sizes = (1..=1472).chain([8000; 20]).chain([1473, 2960, 65_507]);
        for (k, len) in sizes.enumerate() {
            let d = pattern(len, k);
            c.send(&d).await.unwrap();
            sent += 1;
            let n = mtcp::time::timeout(Duration::from_secs(10), c.recv(&mut back))
                .await
                .unwrap_or_else(|_| panic!("echo of datagram {k} ({len} bytes) timed out"))
                .unwrap();
            assert_eq!(&back[..n], &d[..], "datagram {k} of {len} bytes");
        }
        let s = mtcp::net::core_stats().unwrap();
        assert!(
            s.iface.fragments_sent > 0 && s.iface.reassembled > 0,
            "{}",
            s.iface
        );
        sent
    });
    assert_eq!(server.join().unwrap(), sent);
}

/// A UDP socket dropped on a plain thread (not its core) is closed on its
/// core: the port can be bound again (the drop posted the close to the
/// owning core's inbox).
#[test]
fn a_socket_dropped_on_another_thread_is_closed_on_its_core() {
    let rt = small(Builder::new().addr(cidr([10, 0, 0, 1])))
        .build()
        .unwrap();
    rt.block_on(async {
        let s = UdpSocket::bind("0.0.0.0:7100").await.unwrap();
        let e = UdpSocket::bind("0.0.0.0:7100").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        std::thread::spawn(move || drop(s)).join().unwrap();
        // The close runs when the core next reads its inbox.
        let mut again = None;
        for _ in 0..100 {
            mtcp::time::sleep(Duration::from_millis(1)).await;
            if let Ok(s) = UdpSocket::bind("0.0.0.0:7100").await {
                again = Some(s);
                break;
            }
        }
        assert!(again.is_some(), "the port stayed taken after the drop");
    });
}

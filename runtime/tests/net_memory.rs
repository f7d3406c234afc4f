//! TcpListener/TcpStream over the in-memory NIC and the in-stack loopback.

use std::io;
use std::time::Duration;

use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};
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
    tcp.max_connections = 1024;
    tcp.chunk_count = 4096;
    b.tcp_config(tcp)
}

#[test]
fn echo_over_loopback_in_one_runtime() {
    let rt = small(Builder::new().addr(cidr([10, 0, 0, 1])))
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("0.0.0.0:7000").await.unwrap();
        let server = mtcp::spawn(async move {
            let (mut s, peer) = listener.accept().await.unwrap();
            assert_eq!(peer.ip().to_string(), "10.0.0.1");
            let mut buf = vec![0u8; 4096];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
            s.shutdown().await.unwrap();
        });
        let mut c = TcpStream::connect("10.0.0.1:7000").await.unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = c.split();
        let writer = async {
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let reader = async {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = mtcp::join!(writer, reader);
        assert_eq!(got, data);
        server.await.unwrap();
    });
}

#[test]
fn connect_refused_and_bind_errors() {
    let rt = small(Builder::new()).build().unwrap();
    rt.block_on(async {
        let e = TcpStream::connect("10.0.0.1:9").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let l = TcpListener::bind("0.0.0.0:7001").await.unwrap();
        let e = TcpListener::bind("0.0.0.0:7001").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        let e = TcpListener::bind("10.9.9.9:80").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrNotAvailable);
        let any = TcpListener::bind("0.0.0.0:0").await.unwrap();
        assert_ne!(any.local_addr().unwrap().port(), 0);
        drop(l);
        // The port is free again once the listener is dropped.
        TcpListener::bind("0.0.0.0:7001").await.unwrap();
    });
}

#[test]
fn no_network_runtime_says_so() {
    let rt = mtcp::runtime::Builder::new().build().unwrap();
    let e = rt
        .block_on(async { TcpListener::bind("0.0.0.0:1").await })
        .unwrap_err();
    assert!(e.to_string().contains("no network device"), "{e}");
}

#[test]
fn two_runtimes_over_a_memory_nic_pair() {
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
            let listener = TcpListener::bind("0.0.0.0:8080").await.unwrap();
            let mut handles = Vec::new();
            for _ in 0..20 {
                let (mut s, _) = listener.accept().await.unwrap();
                handles.push(mtcp::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let mut total = 0;
                    loop {
                        let n = s.read(&mut buf).await.unwrap();
                        if n == 0 {
                            break total;
                        }
                        total += n;
                        s.write_all(&buf[..n]).await.unwrap();
                    }
                }));
            }
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        })
    });
    let total = client_rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..20u32 {
            tasks.push(mtcp::spawn(async move {
                let mut s = TcpStream::connect("10.0.0.1:8080").await.unwrap();
                s.set_nodelay(true).unwrap();
                for round in 0..50u32 {
                    let msg = [(i + round) as u8; 64];
                    s.write_all(&msg).await.unwrap();
                    let mut back = [0u8; 64];
                    s.read_exact(&mut back).await.unwrap();
                    assert_eq!(back, msg);
                }
                s.shutdown().await.unwrap();
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).await.unwrap();
                assert!(rest.is_empty());
                64 * 50
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += mtcp::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("echo client timed out")
                .unwrap();
        }
        total
    });
    assert_eq!(server.join().unwrap(), total);
}

#[test]
fn the_stack_outlives_one_block_on() {
    let rt = small(Builder::new()).build().unwrap();
    for round in 0..3u16 {
        rt.block_on(async move {
            let port = 7100 + round;
            let l = TcpListener::bind(("0.0.0.0", port)).await.unwrap();
            let server = mtcp::spawn(async move {
                let (mut s, _) = l.accept().await.unwrap();
                s.write_all(b"again").await.unwrap();
            });
            let mut c = TcpStream::connect(("10.0.0.1", port)).await.unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"again");
            server.await.unwrap();
        });
    }
}

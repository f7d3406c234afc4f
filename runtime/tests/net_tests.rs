//! Sockets under `#[mtcp::test]` (configured from the environment: the
//! in-memory NIC by default) and between runtimes joined by a memory NIC.

use std::io;
use std::time::Duration;

use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};
use mtcp::runtime::Builder;
use mtcp::stack::nic::memory::{MemoryNic, MemoryNicConfig};
use mtcp::stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

async fn echo_once(listener: TcpListener) {
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = [0u8; 2048];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        s.write_all(&buf[..n]).await.unwrap();
    }
}

#[mtcp::test]
async fn echo_on_localhost() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = mtcp::spawn(echo_once(listener));
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr);
    c.write_all(b"hello mtcp").await.unwrap();
    let mut buf = [0u8; 10];
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello mtcp");
    drop(c);
    server.await.unwrap();
}

#[mtcp::test]
async fn many_concurrent_connections() {
    let listener = TcpListener::bind("0.0.0.0:9000").await.unwrap();
    let server = mtcp::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..300 {
            let (mut s, _) = listener.accept().await.unwrap();
            tasks.push(mtcp::spawn(async move {
                let mut buf = [0u8; 100];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(&buf).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let mut clients = Vec::new();
    for i in 0..300u32 {
        clients.push(mtcp::spawn(async move {
            let mut c = TcpStream::connect("10.0.0.1:9000").await.unwrap();
            let msg = [(i % 256) as u8; 100];
            c.write_all(&msg).await.unwrap();
            let mut back = [0u8; 100];
            c.read_exact(&mut back).await.unwrap();
            assert_eq!(back, msg);
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    server.await.unwrap();
}

#[mtcp::test]
async fn half_close_delivers_eof_and_keeps_the_other_direction() {
    let listener = TcpListener::bind("0.0.0.0:9001").await.unwrap();
    let server = mtcp::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        // The client's write side is closed; ours still works.
        s.write_all(&all).await.unwrap();
        s.write_all(b"-done").await.unwrap();
        s.shutdown().await.unwrap();
        all.len()
    });
    let mut c = TcpStream::connect("10.0.0.1:9001").await.unwrap();
    let data = vec![7u8; 100_000];
    c.write_all(&data).await.unwrap();
    c.shutdown().await.unwrap();
    assert!(
        c.write_all(b"x").await.is_err(),
        "write after shutdown fails"
    );
    let mut back = Vec::new();
    c.read_to_end(&mut back).await.unwrap();
    assert_eq!(back.len(), data.len() + 5);
    assert!(back.ends_with(b"-done"));
    assert_eq!(server.await.unwrap(), data.len());
}

#[mtcp::test]
async fn abort_resets_the_peer() {
    let listener = TcpListener::bind("0.0.0.0:9002").await.unwrap();
    let server = mtcp::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        // Close with unread data: the kernel (and we) answer with RST.
        let mut s = s;
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.unwrap();
        drop(s);
    });
    let mut c = TcpStream::connect("10.0.0.1:9002").await.unwrap();
    c.write_all(&[1u8; 5000]).await.unwrap();
    server.await.unwrap();
    let mut buf = [0u8; 64];
    let mut result = Ok(1);
    for _ in 0..100 {
        result = c.read(&mut buf).await;
        if !matches!(result, Ok(n) if n > 0) {
            break;
        }
    }
    let e = result.expect_err("reset expected");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
}

#[mtcp::test]
async fn connect_to_a_closed_port_is_refused() {
    let e = TcpStream::connect("10.0.0.1:1").await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn connect_to_nobody_times_out() {
    let mut tcp = mtcp::runtime::Builder::new().net_config().stack.tcp;
    tcp.syn_retries = 1;
    tcp.rto_initial = Duration::from_millis(50);
    tcp.rto_min = Duration::from_millis(50);
    let rt = Builder::new().tcp_config(tcp).build().unwrap();
    rt.block_on(async {
        // On the subnet but nobody answers ARP.
        let t0 = std::time::Instant::now();
        let e = TcpStream::connect("10.0.0.77:80").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(t0.elapsed() < Duration::from_secs(10));
        // And a user-level timeout around a connect works too.
        let r = mtcp::time::timeout(
            Duration::from_millis(20),
            TcpStream::connect("10.0.0.78:80"),
        )
        .await;
        assert!(r.is_err(), "elapsed");
    });
}

fn cidr(a: [u8; 4]) -> Ipv4Cidr {
    Ipv4Cidr {
        address: Ipv4Address::from(a),
        prefix_len: 24,
    }
}

#[test]
fn two_cores_each_accept_the_flows_steered_to_them() {
    let (a, b) = MemoryNic::pair_with(&MemoryNicConfig {
        queues: 2,
        ..MemoryNicConfig::default()
    })
    .unwrap();
    let server = Builder::new()
        .cores(2)
        .pin_threads(false)
        .addr(cidr([10, 0, 0, 1]))
        .nic_queues(a.split_boxed())
        .build()
        .unwrap();
    let client = Builder::new()
        .cores(2)
        .pin_threads(false)
        .addr(cidr([10, 0, 0, 2]))
        .nic_queues(b.split_boxed())
        .build()
        .unwrap();
    const PER_CORE: usize = 20;
    let server = std::thread::spawn(move || {
        server.block_on_each_core(|| async {
            let listener = TcpListener::bind("0.0.0.0:7777").await.unwrap();
            let mut served = 0;
            // Each client core's flows land on the matching server core.
            while served < PER_CORE {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 8];
                s.read_exact(&mut buf).await.unwrap();
                assert_eq!(
                    u64::from_be_bytes(buf) as usize,
                    mtcp::runtime::current_core(),
                    "a flow from client core k must land on server core k"
                );
                s.write_all(&buf).await.unwrap();
                served += 1;
            }
            served
        })
    });
    let done = client.block_on_each_core(|| async {
        let me = mtcp::runtime::current_core() as u64;
        for _ in 0..PER_CORE {
            // The server runtime starts concurrently: until its core has
            // bound the port, a SYN gets a reset. Retry those.
            let mut tries = 0;
            let mut c = loop {
                match TcpStream::connect("10.0.0.1:7777").await {
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && tries < 100 => {
                        tries += 1;
                        mtcp::time::sleep(Duration::from_millis(5)).await;
                    }
                    r => break r.unwrap(),
                }
            };
            c.write_all(&me.to_be_bytes()).await.unwrap();
            let mut buf = [0u8; 8];
            c.read_exact(&mut buf).await.unwrap();
            assert_eq!(u64::from_be_bytes(buf), me);
        }
        PER_CORE
    });
    assert_eq!(done, vec![PER_CORE, PER_CORE]);
    assert_eq!(server.join().unwrap(), vec![PER_CORE, PER_CORE]);
}

/// A waker that makes a socket call the moment it is woken, as a foreign
/// executor's may (one that polls its task inside `wake`). It records what
/// the call returned.
#[derive(Default)]
struct CallsTheStack {
    results: std::sync::Mutex<Vec<Result<(), String>>>,
}

impl std::task::Wake for CallsTheStack {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        let r = mtcp::net::core_stats()
            .map(|_| ())
            .map_err(|e| e.to_string());
        self.results.lock().unwrap().push(r);
    }
}

/// Wakes never run while the stack is borrowed: the read waker, woken by
/// the flow event of the server's data, reaches the stack from inside
/// `wake` and finds it free.
#[mtcp::test]
async fn a_waker_that_calls_the_stack_at_once_finds_it_free() {
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = mtcp::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        // Once the client's read is pending.
        mtcp::time::sleep(Duration::from_millis(5)).await;
        s.write_all(b"hi").await.unwrap();
        s
    });
    let mut c = TcpStream::connect(addr).await.unwrap();
    let probe = Arc::new(CallsTheStack::default());
    let waker = Waker::from(probe.clone());
    let mut buf = [0u8; 16];
    {
        let mut read = std::pin::pin!(c.read(&mut buf));
        let mut cx = Context::from_waker(&waker);
        assert!(read.as_mut().poll(&mut cx).is_pending());
        // The data arrives in a later tick; its wake runs the probe.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while probe.results.lock().unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the read waker was never woken"
            );
            mtcp::task::yield_now().await;
        }
        assert_eq!(*probe.results.lock().unwrap(), vec![Ok(())]);
        match read.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(n)) => assert_eq!(n, 2),
            other => panic!("read after the wake: {other:?}"),
        }
    }
    assert_eq!(&buf[..2], b"hi");
    drop(server.await.unwrap());
}

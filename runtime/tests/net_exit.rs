//! Nothing is lost at the end of a run: a program that writes and returns
//! from `main` at once still delivers every byte and its FIN, as it would
//! on the kernel; a socket dropped on any thread closes on its own core.
//! Two runtimes joined by an in-memory NIC pair: the client (the program
//! that ends) and the server (the peer that must see everything).

use std::time::{Duration, Instant};

use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};
use mtcp::runtime::{Builder, Runtime};
use mtcp::stack::nic::memory::MemoryNic;
use mtcp::stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

const PORT: u16 = 8080;
const SERVER: &str = "10.0.0.1:8080";

fn cidr(a: [u8; 4]) -> Ipv4Cidr {
    Ipv4Cidr {
        address: Ipv4Address::from(a),
        prefix_len: 24,
    }
}

fn small(b: Builder, recv_buffer: usize) -> Builder {
    let mut tcp = b.net_config().stack.tcp;
    tcp.max_connections = 256;
    tcp.chunk_count = 8192;
    tcp.recv_buffer = recv_buffer;
    b.tcp_config(tcp)
}

/// A server runtime (10.0.0.1) and a client runtime (10.0.0.2).
fn pair(client: impl FnOnce(Builder) -> Builder, server_recv: usize) -> (Runtime, Runtime) {
    let (a, b) = MemoryNic::pair(1, 1024);
    let server = small(
        Builder::new()
            .addr(cidr([10, 0, 0, 1]))
            .nic_queues(a.split_boxed()),
        server_recv,
    )
    .build()
    .unwrap();
    let client = client(small(
        Builder::new()
            .addr(cidr([10, 0, 0, 2]))
            .nic_queues(b.split_boxed()),
        256 * 1024,
    ))
    .build()
    .unwrap();
    (server, client)
}

fn pattern(len: usize, salt: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(13).wrapping_add(salt) % 251) as u8)
        .collect()
}

/// Runs a server on its own thread that accepts `conns` connections and
/// reads each to EOF (within 20 s); returns what each one received, in
/// accept order, once all ended. `ready` is sent once it listens.
fn serve(
    rt: Runtime,
    conns: usize,
    ready: std::sync::mpsc::Sender<()>,
) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    std::thread::spawn(move || {
        rt.block_on(async move {
            let listener = TcpListener::bind(("0.0.0.0", PORT)).await.unwrap();
            ready.send(()).unwrap();
            let mut tasks = Vec::new();
            for _ in 0..conns {
                let (mut s, _) = mtcp::time::timeout(Duration::from_secs(20), listener.accept())
                    .await
                    .expect("accepted within 20 s")
                    .unwrap();
                tasks.push(mtcp::spawn(async move {
                    let mut got = Vec::new();
                    mtcp::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got))
                        .await
                        .expect("EOF within 20 s")
                        .expect("no reset");
                    got
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.push(t.await.unwrap());
            }
            all
        })
    })
}

#[test]
fn main_returning_right_after_write_all_loses_nothing() {
    let (server_rt, client_rt) = pair(|b| b, 256 * 1024);
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let server = serve(server_rt, 1, ready_tx);
    ready.recv().unwrap();
    let data = pattern(200_000, 1);
    let sent = data.clone();
    let start = Instant::now();
    client_rt.block_on(async move {
        let mut s = TcpStream::connect(SERVER).await.unwrap();
        s.write_all(&sent).await.unwrap();
        // `main` returns: no shutdown, no flush, the stream is dropped.
    });
    let took = start.elapsed();
    let got = server.join().unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        got[0] == data,
        "received {} of {} bytes",
        got[0].len(),
        data.len()
    );
    assert!(took < Duration::from_secs(4), "block_on took {took:?}");
    // The FIN was acknowledged: nothing was reset at the linger bound.
    let stats = client_rt.block_on(async { mtcp::net::core_stats().unwrap() });
    assert_eq!(stats.tcp.linger_resets, 0);
    assert_eq!(stats.tcp.resets_sent, 0);
}

#[test]
fn twenty_connections_written_then_main_returns() {
    let (server_rt, client_rt) = pair(|b| b, 256 * 1024);
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let server = serve(server_rt, 20, ready_tx);
    ready.recv().unwrap();
    let data: Vec<Vec<u8>> = (0..20).map(|i| pattern(200_000, i)).collect();
    let sent = data.clone();
    client_rt.block_on(async move {
        let mut streams = Vec::new();
        for _ in 0..20 {
            streams.push(TcpStream::connect(SERVER).await.unwrap());
        }
        // Each connection's first byte says which payload it carries.
        for (s, d) in streams.iter_mut().zip(&sent) {
            s.write_all(d).await.unwrap();
        }
        // Some streams are still held by a spawned task: dropped with it.
        let held = streams.split_off(10);
        mtcp::spawn(async move {
            let _held = held;
            std::future::pending::<()>().await;
        });
    });
    let mut got = server.join().unwrap();
    assert_eq!(got.len(), 20);
    let mut want = data;
    got.sort();
    want.sort();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            g == w,
            "connection {i}: received {} of {} bytes",
            g.len(),
            w.len()
        );
    }
}

#[test]
fn linger_bound_exceeded_resets_and_counts() {
    // The server never reads and offers a small window: the client's data
    // cannot all go out before its 200 ms linger bound.
    let (server_rt, client_rt) = pair(|b| b.shutdown_linger(Duration::from_millis(200)), 16 * 1024);
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (go_tx, go) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        server_rt.block_on(async move {
            let listener = TcpListener::bind(("0.0.0.0", PORT)).await.unwrap();
            ready_tx.send(()).unwrap();
            let (mut s, _) = listener.accept().await.unwrap();
            // Read only once the client's run is over.
            mtcp::task::spawn_blocking(move || go.recv().unwrap())
                .await
                .unwrap();
            let mut buf = vec![0u8; 65536];
            loop {
                let read = mtcp::time::timeout(Duration::from_secs(20), s.read(&mut buf));
                match read.await.expect("reset or EOF within 20 s") {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
        })
    });
    ready.recv().unwrap();
    let start = Instant::now();
    client_rt.block_on(async move {
        let mut s = TcpStream::connect(SERVER).await.unwrap();
        s.write_all(&pattern(200_000, 3)).await.unwrap();
    });
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(3),
        "the run ended after {took:?}"
    );
    go_tx.send(()).unwrap();
    let e = server
        .join()
        .unwrap()
        .expect_err("the connection was reset");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    let stats = client_rt.block_on(async { mtcp::net::core_stats().unwrap() });
    assert_eq!(stats.tcp.linger_resets, 1);
    assert_eq!(stats.sockets, 0, "nothing left open");
}

#[test]
fn a_stream_dropped_on_a_plain_thread_closes_on_its_core() {
    let (server_rt, client_rt) = pair(|b| b, 256 * 1024);
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (eof_tx, eof_rx) = mtcp::sync::oneshot::channel::<Vec<u8>>();
    let server = std::thread::spawn(move || {
        server_rt.block_on(async move {
            let listener = TcpListener::bind(("0.0.0.0", PORT)).await.unwrap();
            ready_tx.send(()).unwrap();
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let eof = mtcp::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got));
            eof.await.expect("EOF within 20 s").unwrap();
            let _ = eof_tx.send(got);
        })
    });
    ready.recv().unwrap();
    client_rt.block_on(async move {
        let mut s = TcpStream::connect(SERVER).await.unwrap();
        s.write_all(b"hello").await.unwrap();
        // Dropped off any runtime thread, while this run goes on.
        std::thread::spawn(move || drop(s)).join().unwrap();
        let got = mtcp::time::timeout(Duration::from_secs(5), eof_rx)
            .await
            .expect("the server saw EOF while the client still runs")
            .unwrap();
        assert_eq!(got, b"hello");
    });
    server.join().unwrap();
}

#[test]
fn a_stream_kept_past_block_on_was_closed_by_the_end_of_the_run() {
    let (server_rt, client_rt) = pair(|b| b, 256 * 1024);
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let server = serve(server_rt, 1, ready_tx);
    ready.recv().unwrap();
    let kept = client_rt.block_on(async move {
        let mut s = TcpStream::connect(SERVER).await.unwrap();
        s.write_all(b"kept").await.unwrap();
        s
    });
    // The run is over: its end closed the stream gracefully.
    assert_eq!(server.join().unwrap(), vec![b"kept".to_vec()]);
    // Dropping it later, on this plain thread, has nothing left to do.
    drop(kept);
    let stats = client_rt.block_on(async { mtcp::net::core_stats().unwrap() });
    assert_eq!(stats.tcp.resets_sent, 0);
}

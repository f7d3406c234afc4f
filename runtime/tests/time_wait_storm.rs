//! A server that closes first under a storm of short connections, over the
//! in-memory NIC: two runtimes (client and server stacks), 100 000
//! connections, each answered with a greeting and closed by the server. The
//! server ends every one in TIME-WAIT, held as compact entries outside the
//! TCB slab, so a `max_connections` of 1024 is enough however many
//! TIME-WAIT flows it holds; 4-tuples whose ephemeral port comes round again
//! reopen their TIME-WAIT entry (RFC 6191, timestamps).

use std::time::{Duration, Instant};

use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};
use mtcp::runtime::Builder;
use mtcp::stack::nic::memory::MemoryNic;
use mtcp::stack::tcp::TcpStack;
use mtcp::stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

const CONNECTIONS: usize = 100_000;
const CONCURRENT: usize = 64;
const GREETING: &[u8] = b"hello, and goodbye\n";

fn cidr(a: [u8; 4]) -> Ipv4Cidr {
    Ipv4Cidr {
        address: Ipv4Address::from(a),
        prefix_len: 24,
    }
}

#[test]
fn server_closes_first_storm_keeps_time_wait_out_of_the_slab() {
    let (a, b) = MemoryNic::pair(1, 4096);
    let server_rt = Builder::new()
        .addr(cidr([10, 0, 0, 1]))
        .nic_queues(a.split_boxed())
        .max_connections(1024)
        .build()
        .unwrap();
    let client_rt = Builder::new()
        .addr(cidr([10, 0, 0, 2]))
        .nic_queues(b.split_boxed())
        .max_connections(1024)
        .build()
        .unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        server_rt.block_on(async move {
            let listener = TcpListener::bind("0.0.0.0:8080").await.unwrap();
            ready_tx.send(()).unwrap();
            let mut peak_sockets = 0;
            for _ in 0..CONNECTIONS {
                let (mut s, _) = listener.accept().await.unwrap();
                mtcp::spawn(async move {
                    s.write_all(GREETING).await.unwrap();
                    // Close first: the server's side goes to TIME-WAIT.
                    drop(s);
                });
                peak_sockets = peak_sockets.max(mtcp::net::core_stats().unwrap().sockets);
            }
            // Let the last closes finish.
            let deadline = mtcp::time::Instant::now() + Duration::from_secs(10);
            loop {
                let st = mtcp::net::core_stats().unwrap();
                if st.sockets == 1 || mtcp::time::Instant::now() > deadline {
                    break;
                }
                mtcp::time::sleep(Duration::from_millis(10)).await;
            }
            (mtcp::net::core_stats().unwrap(), peak_sockets)
        })
    });
    ready_rx.recv().unwrap();
    let started = Instant::now();
    let failures = client_rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..CONCURRENT {
            tasks.push(mtcp::spawn(async move {
                let mut failures = 0usize;
                for _ in (w..CONNECTIONS).step_by(CONCURRENT) {
                    let one = async {
                        let mut s = TcpStream::connect("10.0.0.1:8080").await?;
                        let mut got = Vec::new();
                        s.read_to_end(&mut got).await?;
                        s.shutdown().await.ok();
                        Ok::<_, std::io::Error>(got)
                    };
                    match mtcp::time::timeout(Duration::from_secs(20), one).await {
                        Ok(Ok(got)) if got == GREETING => {}
                        other => {
                            failures += 1;
                            eprintln!("connection failed: {other:?}");
                        }
                    }
                }
                failures
            }));
        }
        let mut failures = 0;
        for t in tasks {
            failures += t.await.unwrap();
        }
        failures
    });
    let elapsed = started.elapsed();
    let (st, peak_sockets) = server.join().unwrap();
    println!(
        "{CONNECTIONS} connections in {elapsed:?} ({:.0}/s); server: peak TCBs {peak_sockets}, \
         TIME-WAIT entries {} ({} bytes each), reused {}, overflow {}, table-full RSTs {}",
        CONNECTIONS as f64 / elapsed.as_secs_f64(),
        st.time_wait,
        TcpStack::footprint().time_wait_entry,
        st.tcp.time_wait_reused,
        st.tcp.time_wait_overflow,
        st.tcp.table_full_resets,
    );
    assert_eq!(failures, 0);
    assert!(peak_sockets <= 1024);
    // Every connection ended in TIME-WAIT on the server: as a held entry,
    // or taken over by a later SYN of the same 4-tuple.
    assert!(st.time_wait > 1024, "{}", st.time_wait);
    assert_eq!(
        st.time_wait as u64 + st.tcp.time_wait_reused,
        CONNECTIONS as u64
    );
    assert_eq!(st.tcp.time_wait_overflow, 0);
    assert_eq!(st.tcp.table_full_resets, 0);
    assert_eq!(st.sockets, 1, "only the listener holds a TCB");
}

use std::time::Instant;

use mtcp::net::{TcpListener, TcpStream};

#[test]
fn socket_call_cost() {
    let rt = mtcp::runtime::Builder::from_env().unwrap().build().unwrap();
    rt.block_on(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (_s, _) = l.accept().await.unwrap();
        let n = 5_000_000u32;
        for round in 0..5 {
            let t = Instant::now();
            let mut acc = 0u64;
            for _ in 0..n {
                acc += u64::from(std::hint::black_box(&c).local_addr().unwrap().port());
            }
            let el = t.elapsed();
            eprintln!(
                "CALLCOST round {round}: local_addr {:.1} ns/call ({acc})",
                el.as_nanos() as f64 / f64::from(n)
            );
        }
    });
}

//! mtcp's hyper glue (feature `hyper`) over the in-stack loopback: the
//! timer's sleeps and resets, the header-read timeout it drives, and
//! HTTP/2 (which needs the executor) between a hyper client and server.
#![cfg(feature = "hyper")]

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::rt::Timer;
use hyper::service::service_fn;
use hyper::{Request, Response};
use mtcp::hyper::{MtcpExecutor, MtcpIo, MtcpTimer};
use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};
use mtcp::runtime::{Builder, Runtime};
use mtcp::stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

fn runtime() -> Runtime {
    let mut b = Builder::new().addr(Ipv4Cidr {
        address: Ipv4Address::from([10, 0, 0, 1]),
        prefix_len: 24,
    });
    let mut tcp = b.net_config().stack.tcp;
    tcp.max_connections = 256;
    tcp.chunk_count = 2048;
    b = b.tcp_config(tcp);
    b.build().unwrap()
}

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

#[test]
fn timer_sleeps_and_resets_on_the_wheel() {
    runtime().block_on(async {
        let t = MtcpTimer;
        let start = t.now();
        t.sleep(Duration::from_millis(30)).await;
        let slept = t.now() - start;
        assert!(slept >= Duration::from_millis(30), "slept {slept:?}");

        // A far deadline moved close: it fires at the new one.
        let start = t.now();
        let mut s = t.sleep_until(start + Duration::from_secs(30));
        t.reset(&mut s, start + Duration::from_millis(20));
        mtcp::time::timeout(Duration::from_secs(5), s)
            .await
            .expect("the reset sleep fires at its new deadline");
        let slept = t.now() - start;
        assert!(
            slept >= Duration::from_millis(20) && slept < Duration::from_secs(5),
            "{slept:?}"
        );
    });
}

#[test]
fn header_read_timeout_closes_a_silent_client() {
    runtime().block_on(async {
        let listener = TcpListener::bind("0.0.0.0:8001").await.unwrap();
        let server = mtcp::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            hyper::server::conn::http1::Builder::new()
                .timer(MtcpTimer)
                .header_read_timeout(Duration::from_millis(200))
                .serve_connection(MtcpIo::new(stream), service_fn(hello))
                .await
        });
        let mut c = TcpStream::connect("10.0.0.1:8001").await.unwrap();
        // Half a request, then silence.
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut got = Vec::new();
        let read = mtcp::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got)).await;
        assert!(
            read.is_ok(),
            "the server kept a silent client past its header-read timeout"
        );
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
        let err = server
            .await
            .unwrap()
            .expect_err("the connection ends by timeout");
        assert!(err.is_timeout(), "{err}");
    });
}

#[test]
fn http2_client_and_server_through_the_executor() {
    runtime().block_on(async {
        let listener = TcpListener::bind("0.0.0.0:8002").await.unwrap();
        let server = mtcp::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            hyper::server::conn::http2::Builder::new(MtcpExecutor)
                .timer(MtcpTimer)
                .serve_connection(MtcpIo::new(stream), service_fn(hello))
                .await
        });
        let stream = TcpStream::connect("10.0.0.1:8002").await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::Builder::new(MtcpExecutor)
            .timer(MtcpTimer)
            .handshake::<_, Empty<Bytes>>(MtcpIo::new(stream))
            .await
            .unwrap();
        let conn = mtcp::spawn(conn);
        for _ in 0..10 {
            let req = Request::get("http://10.0.0.1:8002/")
                .body(Empty::new())
                .unwrap();
            let res = sender.send_request(req).await.unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.version(), hyper::Version::HTTP_2);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"Hello, world!");
        }
        drop(sender);
        conn.await.unwrap().unwrap();
        server.await.unwrap().unwrap();
    });
}

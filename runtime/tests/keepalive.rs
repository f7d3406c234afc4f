//! Keepalive through the API (tokio's `set_keepalive`, socket2's
//! `TcpKeepalive`, the Builder's and `MTCP_KEEPALIVE`'s stack-wide default)
//! reaches the engine: probes go out on the in-stack loopback.

use std::time::Duration;

use mtcp::net::{core_stats, NetConfig, TcpKeepalive, TcpListener, TcpSocket, TcpStream};
use mtcp::runtime::Builder;
use mtcp::stack::config::EnvConfig;
use mtcp::stack::wire::ipv4::{Ipv4Address, Ipv4Cidr};

fn builder() -> Builder {
    let b = Builder::new().addr(Ipv4Cidr {
        address: Ipv4Address::new(10, 0, 0, 1),
        prefix_len: 24,
    });
    let mut tcp = b.net_config().stack.tcp;
    tcp.max_connections = 64;
    tcp.chunk_count = 1024;
    b.tcp_config(tcp)
}

#[test]
fn set_tcp_keepalive_sends_probes_that_keep_the_connection() {
    let rt = builder().build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("0.0.0.0:7100").await.unwrap();
        let (c, accepted) = mtcp::join!(TcpStream::connect("10.0.0.1:7100"), listener.accept());
        let c = c.unwrap();
        let (s, _) = accepted.unwrap();
        assert!(!c.keepalive().unwrap(), "off by default");
        assert!(!s.keepalive().unwrap());
        let ka = TcpKeepalive::new()
            .with_time(Duration::from_millis(300))
            .with_interval(Duration::from_millis(200))
            .with_retries(2);
        c.set_tcp_keepalive(&ka).unwrap();
        assert!(c.keepalive().unwrap());
        let got = c.tcp_keepalive().unwrap();
        assert_eq!(got.time(), Some(Duration::from_millis(300)));
        assert_eq!(got.interval(), Some(Duration::from_millis(200)));
        assert_eq!(got.retries(), Some(2));
        assert_eq!(core_stats().unwrap().tcp.keepalive_probes, 0);
        mtcp::time::sleep(Duration::from_millis(1000)).await;
        let stats = core_stats().unwrap().tcp;
        // The peer (the accepted end) answers every probe: still open.
        assert!(stats.keepalive_probes >= 2, "{}", stats.keepalive_probes);
        assert_eq!(stats.keepalive_timeouts, 0);
        assert!(c.take_error().unwrap().is_none());
        // Off again: no more probes.
        c.set_keepalive(false).unwrap();
        assert!(!c.keepalive().unwrap());
        let before = core_stats().unwrap().tcp.keepalive_probes;
        mtcp::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(core_stats().unwrap().tcp.keepalive_probes, before);
        // A zero retry count is refused.
        let bad = TcpKeepalive::new().with_retries(0);
        assert_eq!(
            c.set_tcp_keepalive(&bad).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        drop(s);
    });
}

#[test]
fn builder_default_turns_keepalive_on_for_every_connection() {
    let ka = TcpKeepalive::new().with_time(Duration::from_secs(30));
    let rt = builder().keepalive(Some(ka)).build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("0.0.0.0:7101").await.unwrap();
        let sock = TcpSocket::new_v4().unwrap();
        let (c, accepted) = mtcp::join!(
            sock.connect("10.0.0.1:7101".parse().unwrap()),
            listener.accept()
        );
        let c = c.unwrap();
        let (s, _) = accepted.unwrap();
        assert!(c.keepalive().unwrap());
        assert!(s.keepalive().unwrap());
        assert_eq!(
            s.tcp_keepalive().unwrap().time(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(s.tcp_keepalive().unwrap().retries(), Some(9));
    });
}

#[test]
fn tcp_socket_keepalive_options_reach_the_connection() {
    let rt = builder().build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("0.0.0.0:7102").await.unwrap();
        let sock = TcpSocket::new_v4().unwrap();
        let ka = TcpKeepalive::new()
            .with_interval(Duration::from_secs(5))
            .with_retries(4);
        sock.set_tcp_keepalive(&ka).unwrap();
        assert!(sock.keepalive().unwrap());
        assert!(sock
            .set_tcp_keepalive(&TcpKeepalive::new().with_time(Duration::ZERO))
            .is_err());
        let (c, accepted) = mtcp::join!(
            sock.connect("10.0.0.1:7102".parse().unwrap()),
            listener.accept()
        );
        let c = c.unwrap();
        accepted.unwrap();
        assert!(c.keepalive().unwrap());
        let got = c.tcp_keepalive().unwrap();
        assert_eq!(got.interval(), Some(Duration::from_secs(5)));
        assert_eq!(got.retries(), Some(4));
        assert_eq!(got.time(), Some(Duration::from_secs(7200)));
    });
}

#[test]
fn mtcp_keepalive_variable_sets_the_stack_default() {
    let config = EnvConfig::from_lookup(|k| {
        (k == "MTCP_KEEPALIVE").then(|| "idle=10s,interval=2s,count=3".to_owned())
    })
    .unwrap();
    let net: NetConfig = config.net;
    assert!(net.stack.tcp.keepalive_default);
    assert_eq!(net.stack.tcp.keepalive.idle, Duration::from_secs(10));
    assert_eq!(net.stack.tcp.keepalive.count, 3);
    let bad = EnvConfig::from_lookup(|k| (k == "MTCP_KEEPALIVE").then(|| "idle=10".to_owned()))
        .unwrap_err()
        .to_string();
    assert!(
        bad.starts_with("MTCP_KEEPALIVE=\"idle=10\": expected "),
        "{bad}"
    );
    assert!(!bad.contains('\n'));
    // A bad Builder timing is the runtime's one-line start error.
    let rt = builder()
        .keepalive(Some(TcpKeepalive::new().with_retries(0)))
        .build()
        .unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {});
    }))
    .unwrap_err();
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.contains("keepalive.count = 0"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

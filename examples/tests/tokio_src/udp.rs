// A tokio UDP program in tokio's spelling (the shape of tokio's `echo-udp`
// and `udp-client` examples, plus the calls around them), compiled as is
// against tokio and renamed to mtcp; both must print the same transcript.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;

// tokio's echo-udp server, bounded to `n` datagrams.
struct Server {
    socket: UdpSocket,
    buf: Vec<u8>,
    to_send: Option<(usize, SocketAddr)>,
}

impl Server {
    async fn run(self, n: usize) -> Result<(), io::Error> {
        let Server {
            socket,
            mut buf,
            mut to_send,
        } = self;
        let mut done = 0;
        loop {
            if let Some((size, peer)) = to_send {
                socket.send_to(&buf[..size], &peer).await?;
                done += 1;
                if done == n {
                    return Ok(());
                }
            }
            to_send = Some(socket.recv_from(&mut buf).await?);
        }
    }
}

#[tokio::main]
pub async fn run() -> Vec<String> {
    let mut t = Vec::new();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_addr = socket.local_addr().unwrap();
    t.push(format!("server bound: port nonzero {}", server_addr.port() != 0));
    let server = tokio::spawn(
        Server {
            socket,
            buf: vec![0; 65_536],
            to_send: None,
        }
        .run(5),
    );

    // The udp-client shape: bind, connect, send, recv.
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(server_addr).await.unwrap();
    t.push(format!("peer is server: {}", client.peer_addr().unwrap() == server_addr));
    for msg in ["hello", "drop-in UDP", ""] {
        let n = client.send(msg.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 1500];
        let m = client.recv(&mut buf).await.unwrap();
        t.push(format!("sent {n} {msg:?} -> {:?}", String::from_utf8_lossy(&buf[..m])));
    }
    // Bigger than one frame: fragments on a real device.
    let big = vec![7u8; 20_000];
    client.send(&big).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    let m = client.recv(&mut buf).await.unwrap();
    t.push(format!("big: {m} bytes, intact {}", buf[..m] == big[..]));
    // A buffer shorter than the datagram truncates it.
    client.send(b"0123456789").await.unwrap();
    client.readable().await.unwrap();
    let mut short = [0u8; 4];
    let (m, from) = client.peek_from(&mut short).await.unwrap();
    t.push(format!("peek {m} {:?} from server {}", &short[..m], from == server_addr));
    let m = client.recv(&mut short).await.unwrap();
    t.push(format!("short recv {m} {:?}", &short[..m]));
    server.await.unwrap().unwrap();

    // Nothing queued: try_recv_from would block.
    let e = client.try_recv_from(&mut buf).unwrap_err();
    t.push(format!("empty: {:?}", e.kind()));

    // send_to/recv_from between two unconnected sockets.
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b_addr = b.local_addr().unwrap();
    a.send_to(b"ping", b_addr).await.unwrap();
    let (m, from) = b.recv_from(&mut buf).await.unwrap();
    t.push(format!(
        "b got {:?} from a {}",
        String::from_utf8_lossy(&buf[..m]),
        from == a.local_addr().unwrap()
    ));
    b.send_to(b"pong", from).await.unwrap();
    let (m, _) = a.recv_from(&mut buf).await.unwrap();
    t.push(format!("a got {:?}", String::from_utf8_lossy(&buf[..m])));

    // Options.
    t.push(format!("broadcast default {}", a.broadcast().unwrap()));
    a.set_broadcast(true).unwrap();
    t.push(format!("broadcast set {}", a.broadcast().unwrap()));
    a.set_ttl(17).unwrap();
    t.push(format!("ttl set {}", a.ttl().unwrap()));

    // A connected socket to a port nobody holds: refused on a later call.
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.local_addr().unwrap()
    };
    let lonely = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    lonely.connect(closed).await.unwrap();
    lonely.send(b"anyone?").await.unwrap();
    let r = timeout(Duration::from_secs(2), lonely.recv(&mut buf)).await;
    t.push(format!("closed port: {:?}", r.map(|r| r.map_err(|e| e.kind()))));
    t
}

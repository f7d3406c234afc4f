// A tokio program, kept in tokio's spelling. The test compiles it twice:
// as is, against tokio, and with every `tokio` replaced by `mtcp` (the
// build script writes that copy), then checks both print the same
// transcript. This is the drop-in promise: port by renaming.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout, Instant};

async fn serve(listener: TcpListener, log: mpsc::UnboundedSender<String>) {
    for _ in 0..4 {
        let (mut socket, _) = listener.accept().await.unwrap();
        let log = log.clone();
        tokio::spawn(async move {
            // A length-prefixed request; the reply is the upper-cased body,
            // then the server half-closes.
            let mut len = [0u8; 2];
            socket.read_exact(&mut len).await.unwrap();
            let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
            socket.read_exact(&mut body).await.unwrap();
            log.send(format!("server got {} bytes", body.len()))
                .unwrap();
            body.make_ascii_uppercase();
            socket.write_all(&body).await.unwrap();
            socket.shutdown().await.unwrap();
            // The client closes its side too: read_to_end sees EOF.
            let mut rest = Vec::new();
            socket.read_to_end(&mut rest).await.unwrap();
            log.send(format!("server saw eof after {} extra bytes", rest.len()))
                .unwrap();
        });
    }
}

async fn request(addr: std::net::SocketAddr, msg: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .write_all(&(msg.len() as u16).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(msg.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    stream.shutdown().await.unwrap();
    String::from_utf8(reply).unwrap()
}

#[tokio::main]
pub async fn run() -> Vec<String> {
    let mut transcript = Vec::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(serve(listener, tx));

    let start = Instant::now();
    sleep(Duration::from_millis(20)).await;
    transcript.push(format!(
        "slept at least 20 ms: {}",
        start.elapsed() >= Duration::from_millis(20)
    ));

    for msg in ["hello", "drop-in", "ported by renaming"] {
        let reply = request(addr, msg).await;
        transcript.push(format!("{msg} -> {reply}"));
    }
    // A bigger body, written in pieces by a spawned task.
    let big = "abc".repeat(10_000);
    let reply = tokio::spawn(async move { request(addr, &big).await })
        .await
        .unwrap();
    transcript.push(format!("big reply: {} bytes", reply.len()));

    // Nothing listens on this port of ours: refused.
    let refused = TcpStream::connect("127.0.0.1:1").await;
    transcript.push(format!(
        "closed port: {:?}",
        refused.map(|_| ()).map_err(|e| e.kind())
    ));

    // A timeout that fires, and one that does not.
    let slow = timeout(Duration::from_millis(10), sleep(Duration::from_secs(5))).await;
    transcript.push(format!("timeout fired: {}", slow.is_err()));
    let quick = timeout(Duration::from_secs(5), async { 42 }).await;
    transcript.push(format!("timeout passed: {:?}", quick));

    server.await.unwrap();
    let mut server_log = Vec::new();
    while let Ok(line) = rx.try_recv() {
        server_log.push(line);
    }
    server_log.sort();
    transcript.extend(server_log);
    transcript
}

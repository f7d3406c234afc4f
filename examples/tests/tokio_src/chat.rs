// A tokio chat server and its clients, kept in tokio's spelling. The test
// compiles it twice: as is, against tokio, and with every `tokio` replaced
// by `mtcp` (the build script writes that copy), then checks both print
// the same transcript.
//
// Exercised: TcpListener, into_split, BufReader::lines, a broadcast
// channel, JoinSet (server connections and client tasks), select! between
// a socket and a channel, select! with a sleep as a timeout, timeout,
// lookup_host, TcpStream::peek.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{lookup_host, TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};

const CLIENTS: usize = 3;

/// One connection: the first line is the name; every later line goes to
/// the others, until "/quit". Returns the name and lines relayed.
async fn handle(
    id: usize,
    stream: TcpStream,
    tx: broadcast::Sender<(usize, String)>,
    mut rx: broadcast::Receiver<(usize, String)>,
) -> (String, usize) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let name = lines.next_line().await.unwrap().unwrap();
    write
        .write_all(format!("welcome {name}\n").as_bytes())
        .await
        .unwrap();
    let mut relayed = 0;
    loop {
        tokio::select! {
            line = lines.next_line() => match line.unwrap() {
                Some(l) if l == "/quit" => {
                    write.write_all(b"bye\n").await.unwrap();
                    write.shutdown().await.unwrap();
                    break;
                }
                Some(l) => {
                    tx.send((id, format!("{name}: {l}"))).unwrap();
                    relayed += 1;
                }
                None => break,
            },
            msg = rx.recv() => {
                let (from, text) = msg.unwrap();
                if from != id {
                    write.write_all(format!("{text}\n").as_bytes()).await.unwrap();
                }
            }
        }
    }
    (name, relayed)
}

async fn serve(listener: TcpListener) -> Vec<String> {
    let (tx, _) = broadcast::channel(16);
    let mut conns = JoinSet::new();
    for id in 0..CLIENTS {
        let (stream, _) = listener.accept().await.unwrap();
        // Subscribed before the welcome: the client misses nothing.
        let rx = tx.subscribe();
        conns.spawn(handle(id, stream, tx.clone(), rx));
    }
    let mut log = Vec::new();
    while let Some(done) = conns.join_next().await {
        let (name, relayed) = done.unwrap();
        log.push(format!("server: {name} relayed {relayed} lines"));
    }
    log.sort();
    log
}

struct Client {
    name: String,
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

async fn next_line(lines: &mut Lines<BufReader<OwnedReadHalf>>) -> Option<String> {
    timeout(Duration::from_secs(5), lines.next_line())
        .await
        .expect("no line within 5 s")
        .unwrap()
}

async fn join(addr: std::net::SocketAddr, name: &str) -> (Client, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (read, mut write) = stream.into_split();
    write
        .write_all(format!("{name}\n").as_bytes())
        .await
        .unwrap();
    let mut lines = BufReader::new(read).lines();
    let welcome = next_line(&mut lines).await.unwrap();
    let client = Client {
        name: name.to_string(),
        lines,
        write,
    };
    (client, welcome)
}

#[tokio::main]
pub async fn run() -> Vec<String> {
    let mut transcript = Vec::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener));

    let resolved: Vec<_> = lookup_host(("127.0.0.1", addr.port()))
        .await
        .unwrap()
        .collect();
    transcript.push(format!("lookup_host: {}", resolved == vec![addr]));

    let mut clients = Vec::new();
    for name in ["ada", "bob", "cyd"] {
        let (client, welcome) = join(resolved[0], name).await;
        transcript.push(format!("{name} <- {welcome}"));
        clients.push(client);
    }

    // Each client speaks in turn; the others hear it.
    for speaker in 0..CLIENTS {
        let text = format!("hello from {}\n", clients[speaker].name);
        clients[speaker]
            .write
            .write_all(text.as_bytes())
            .await
            .unwrap();
        for (i, c) in clients.iter_mut().enumerate() {
            if i != speaker {
                let line = next_line(&mut c.lines).await.unwrap();
                transcript.push(format!("{} <- {line}", c.name));
            }
        }
    }

    // Nobody speaks now: select! with a sleep times out.
    let quiet = tokio::select! {
        line = clients[0].lines.next_line() => format!("unexpected {line:?}"),
        _ = sleep(Duration::from_millis(50)) => "quiet for 50 ms".to_string(),
    };
    transcript.push(format!("{} <- {quiet}", clients[0].name));

    // Everyone quits at once; each client task reads to the end.
    let mut tasks = JoinSet::new();
    for mut c in clients {
        tasks.spawn(async move {
            c.write.write_all(b"/quit\n").await.unwrap();
            let mut got = Vec::new();
            while let Some(line) = next_line(&mut c.lines).await {
                got.push(line);
            }
            format!("{} got {:?} then end of stream", c.name, got)
        });
    }
    let mut ends = Vec::new();
    while let Some(end) = tasks.join_next().await {
        ends.push(end.unwrap());
    }
    ends.sort();
    transcript.extend(ends);

    transcript.extend(server.await.unwrap());

    // peek: the bytes stay for the next read.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let writer = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"peeked line\n").await.unwrap();
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut head = [0u8; 6];
    let n = timeout(Duration::from_secs(5), stream.peek(&mut head))
        .await
        .unwrap()
        .unwrap();
    let mut lines = BufReader::new(stream).lines();
    let line = timeout(Duration::from_secs(5), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    transcript.push(format!(
        "peek saw a prefix: {}; then read {line:?}",
        line.as_bytes().starts_with(&head[..n]) && n > 0
    ));
    writer.await.unwrap();
    transcript
}

// A key-value server with expiring keys and its tests, in the shape of
// mini-redis (its `Db` with a purge task, its `tests/server.rs` and
// `tests/client.rs`), kept in tokio's spelling. `tests/paused_clock.rs`
// compiles this file twice: as is, against tokio, and with every `tokio`
// replaced by `mtcp` (the build script writes that copy). The same tests,
// with the same `time::pause`, `time::advance` and `start_paused` calls,
// must pass on both: expiry is tested on a paused clock, over TCP on the
// loopback (the kernel's, or the user-level stack's).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{self, Duration, Instant};

/// The keys, their expiry instants in order, and the purge task's signal.
struct Shared {
    state: Mutex<State>,
    purge: Notify,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, (Vec<u8>, Option<Instant>)>,
    expirations: BTreeSet<(Instant, String)>,
}

#[derive(Clone)]
struct Db {
    shared: Arc<Shared>,
}

impl Db {
    /// A database and its purge task (which ends with the server's task).
    fn new() -> Db {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            purge: Notify::new(),
        });
        tokio::spawn(purge_expired(shared.clone()));
        Db { shared }
    }

    /// The value, unless it expired (as Redis, a read checks the expiry
    /// too: the purge task may not have run yet at this instant).
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let state = self.shared.state.lock().unwrap();
        let now = Instant::now();
        match state.entries.get(key) {
            Some((_, Some(when))) if *when <= now => None,
            Some((v, _)) => Some(v.clone()),
            None => None,
        }
    }

    fn set(&self, key: String, value: Vec<u8>, expire: Option<Duration>) {
        let mut state = self.shared.state.lock().unwrap();
        let when = expire.map(|d| Instant::now() + d);
        // The purge task sleeps until the earliest expiry: wake it when this
        // key expires sooner.
        let earlier = when.is_some_and(|w| {
            state
                .expirations
                .iter()
                .next()
                .is_none_or(|(first, _)| w < *first)
        });
        if let Some((_, Some(old))) = state.entries.insert(key.clone(), (value, when)) {
            state.expirations.remove(&(old, key.clone()));
        }
        if let Some(w) = when {
            state.expirations.insert((w, key));
        }
        drop(state);
        if earlier {
            self.shared.purge.notify_one();
        }
    }

    fn len(&self) -> usize {
        self.shared.state.lock().unwrap().entries.len()
    }
}

impl Shared {
    /// Removes every expired key; returns the next expiry, if any.
    fn purge_expired_keys(&self) -> Option<Instant> {
        let mut state = self.state.lock().unwrap();
        let now = Instant::now();
        while let Some((when, key)) = state.expirations.iter().next().cloned() {
            if when > now {
                return Some(when);
            }
            state.entries.remove(&key);
            state.expirations.remove(&(when, key));
        }
        None
    }
}

async fn purge_expired(shared: Arc<Shared>) {
    loop {
        match shared.purge_expired_keys() {
            Some(when) => {
                tokio::select! {
                    _ = time::sleep_until(when) => {}
                    _ = shared.purge.notified() => {}
                }
            }
            None => shared.purge.notified().await,
        }
    }
}

/// Reads one line without its CRLF; `None` at end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Option<String> {
    let mut line = String::new();
    if r.read_line(&mut line).await.unwrap() == 0 {
        return None;
    }
    Some(line.trim_end_matches("\r\n").to_owned())
}

/// One RESP array of bulk strings, simple strings and integers.
async fn read_command<R: AsyncBufRead + Unpin>(r: &mut R) -> Option<Vec<Vec<u8>>> {
    let head = read_line(r).await?;
    let n: usize = head.strip_prefix('*')?.parse().ok()?;
    let mut parts = Vec::with_capacity(n);
    for _ in 0..n {
        let line = read_line(r).await?;
        match line.as_bytes().first()? {
            b'$' => {
                let len: usize = line[1..].parse().ok()?;
                let mut data = vec![0u8; len + 2];
                r.read_exact(&mut data).await.ok()?;
                data.truncate(len);
                parts.push(data);
            }
            b'+' | b':' => parts.push(line.as_bytes()[1..].to_vec()),
            _ => return None,
        }
    }
    Some(parts)
}

fn parse_expiry(unit: &[u8], amount: &[u8]) -> Option<Duration> {
    let n: u64 = std::str::from_utf8(amount).ok()?.parse().ok()?;
    match unit.to_ascii_uppercase().as_slice() {
        b"EX" => Some(Duration::from_secs(n)),
        b"PX" => Some(Duration::from_millis(n)),
        _ => None,
    }
}

async fn handle(socket: TcpStream, db: Db) {
    let mut conn = BufReader::new(socket);
    while let Some(cmd) = read_command(&mut conn).await {
        let name = cmd[0].to_ascii_uppercase();
        let reply = match (name.as_slice(), cmd.len()) {
            (b"GET", 2) => match db.get(&String::from_utf8_lossy(&cmd[1])) {
                Some(v) => {
                    let mut out = format!("${}\r\n", v.len()).into_bytes();
                    out.extend_from_slice(&v);
                    out.extend_from_slice(b"\r\n");
                    out
                }
                None => b"$-1\r\n".to_vec(),
            },
            (b"SET", 3 | 5) => {
                let expire = match cmd.len() {
                    5 => parse_expiry(&cmd[3], &cmd[4]),
                    _ => None,
                };
                if cmd.len() == 5 && expire.is_none() {
                    b"-ERR bad expiry\r\n".to_vec()
                } else {
                    let key = String::from_utf8_lossy(&cmd[1]).into_owned();
                    db.set(key, cmd[2].clone(), expire);
                    b"+OK\r\n".to_vec()
                }
            }
            _ => b"-ERR unknown command\r\n".to_vec(),
        };
        conn.write_all(&reply).await.unwrap();
    }
}

/// Binds the loopback, serves connections on a task; returns the address
/// and the database (for looking inside).
async fn start_server() -> (SocketAddr, Db) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = Db::new();
    let server_db = db.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(handle(socket, server_db.clone()));
        }
    });
    (addr, db)
}

/// A small client, as mini-redis's `Client`: one request, one reply.
struct Client {
    conn: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        Client {
            conn: BufReader::new(stream),
        }
    }

    async fn request(&mut self, parts: &[&[u8]]) -> String {
        let mut out = format!("*{}\r\n", parts.len()).into_bytes();
        for p in parts {
            out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
        }
        self.conn.write_all(&out).await.unwrap();
        let line = read_line(&mut self.conn).await.expect("a reply");
        match line.strip_prefix('$') {
            Some("-1") => "(nil)".to_owned(),
            Some(len) => {
                let len: usize = len.parse().unwrap();
                let mut data = vec![0u8; len + 2];
                self.conn.read_exact(&mut data).await.unwrap();
                String::from_utf8_lossy(&data[..len]).into_owned()
            }
            None => line,
        }
    }

    async fn get(&mut self, key: &str) -> String {
        self.request(&[b"GET", key.as_bytes()]).await
    }

    async fn set_px(&mut self, key: &str, value: &str, ms: u64) -> String {
        let ms = ms.to_string();
        self.request(&[b"SET", key.as_bytes(), value.as_bytes(), b"PX", ms.as_bytes()])
            .await
    }
}

// ---- mini-redis's tests/server.rs, same bytes on the wire ----

#[tokio::test]
async fn key_value_get_set() {
    let (addr, _) = start_server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();

    stream
        .write_all(b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n")
        .await
        .unwrap();
    let mut response = [0; 5];
    stream.read_exact(&mut response).await.unwrap();
    assert_eq!(b"$-1\r\n", &response);

    stream
        .write_all(b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\n")
        .await
        .unwrap();
    let mut response = [0; 5];
    stream.read_exact(&mut response).await.unwrap();
    assert_eq!(b"+OK\r\n", &response);

    stream
        .write_all(b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n")
        .await
        .unwrap();
    let mut response = [0; 11];
    stream.read_exact(&mut response).await.unwrap();
    assert_eq!(b"$5\r\nworld\r\n", &response);
}

/// mini-redis's `key_value_timeout`: pause, SET with `EX 1`, advance one
/// second, GET finds nothing.
#[tokio::test]
async fn key_value_timeout() {
    tokio::time::pause();

    let (addr, _) = start_server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();

    stream
        .write_all(b"*5\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\n+EX\r\n:1\r\n")
        .await
        .unwrap();
    let mut response = [0; 5];
    stream.read_exact(&mut response).await.unwrap();
    assert_eq!(b"+OK\r\n", &response);

    stream
        .write_all(b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n")
        .await
        .unwrap();
    let mut response = [0; 11];
    stream.read_exact(&mut response).await.unwrap();
    assert_eq!(b"$5\r\nworld\r\n", &response);

    // Wait for the key to expire.
    time::advance(Duration::from_secs(1)).await;

    stream
        .write_all(b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n")
        .await
        .unwrap();
    let mut response = [0; 5];
    stream.read_exact(&mut response).await.unwrap();
    assert_eq!(b"$-1\r\n", &response);
}

// ---- in the shape of mini-redis's tests/client.rs ----

/// Advancing short of the expiry keeps the key; reaching it purges it.
#[tokio::test(start_paused = true)]
async fn client_set_px_expires_exactly_at_its_deadline() {
    let (addr, db) = start_server().await;
    let mut client = Client::connect(addr).await;
    assert_eq!(client.set_px("k", "v", 1500).await, "+OK");
    let set_at = Instant::now();

    time::advance(Duration::from_millis(1499)).await;
    assert_eq!(client.get("k").await, "v");
    assert_eq!(db.len(), 1);

    time::advance(Duration::from_millis(1)).await;
    assert_eq!(client.get("k").await, "(nil)");
    assert_eq!(db.len(), 0);
    // The round trips on the loopback took no time on the paused clock.
    assert_eq!(set_at.elapsed(), Duration::from_millis(1500));
}

/// Auto-advance: the client sleeps a virtual hour, the purge task's timer
/// fires on the way, and the idle connection still works.
#[tokio::test(start_paused = true)]
async fn keys_expire_while_the_client_sleeps() {
    let real = std::time::Instant::now();
    let (addr, db) = start_server().await;
    let mut client = Client::connect(addr).await;
    for (key, ms) in [("a", 10_000u64), ("b", 60_000), ("c", 7_200_000)] {
        assert_eq!(client.set_px(key, "x", ms).await, "+OK");
    }
    let start = Instant::now();

    time::sleep(Duration::from_secs(30)).await;
    assert_eq!(client.get("a").await, "(nil)");
    assert_eq!(client.get("b").await, "x");

    time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(client.get("b").await, "(nil)");
    assert_eq!(client.get("c").await, "x");
    assert_eq!(db.len(), 1);

    assert_eq!(start.elapsed(), Duration::from_secs(3630));
    assert!(
        real.elapsed() < Duration::from_secs(10),
        "a paused hour took {:?}",
        real.elapsed()
    );
}

/// A new SET with an earlier expiry wakes the purge task from its longer
/// sleep; overwriting without expiry keeps the key.
#[tokio::test(start_paused = true)]
async fn earlier_expiry_and_overwrite() {
    let (addr, db) = start_server().await;
    let mut client = Client::connect(addr).await;
    assert_eq!(client.set_px("late", "1", 100_000).await, "+OK");
    assert_eq!(client.set_px("soon", "2", 1_000).await, "+OK");
    assert_eq!(client.set_px("kept", "3", 1_000).await, "+OK");
    assert_eq!(client.request(&[b"SET", b"kept", b"4"]).await, "+OK");

    time::sleep(Duration::from_secs(2)).await;
    assert_eq!(client.get("soon").await, "(nil)");
    assert_eq!(client.get("kept").await, "4");
    assert_eq!(client.get("late").await, "1");
    assert_eq!(db.len(), 2);

    // A timeout on the paused clock: the reply comes at once, the timer not.
    let reply = time::timeout(Duration::from_secs(5), client.get("late")).await;
    assert_eq!(reply.unwrap(), "1");
    let never = time::timeout(Duration::from_secs(5), std::future::pending::<()>()).await;
    assert!(never.is_err());
}

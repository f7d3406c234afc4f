//! More of tokio's common surface on mtcp, written as a tokio user would:
//! `JoinSet`, `LocalSet`, `AbortHandle`, signals, `lookup_host`,
//! `TcpStream::{peek, linger, ttl}`, `Handle::spawn`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};
use mtcp::runtime::{Handle, Runtime};
use mtcp::signal::unix::{signal, SignalKind};
use mtcp::sync::oneshot;
use mtcp::task::{JoinSet, LocalSet};
use mtcp::time::{sleep, timeout, Instant};

// ---- JoinSet ----

#[mtcp::test]
async fn join_set_yields_in_completion_order() {
    let mut set = JoinSet::new();
    for i in [30u64, 10, 20] {
        set.spawn(async move {
            sleep(Duration::from_millis(i)).await;
            i
        });
    }
    assert_eq!(set.len(), 3);
    let mut order = Vec::new();
    while let Some(r) = set.join_next().await {
        order.push(r.unwrap());
    }
    assert_eq!(order, vec![10, 20, 30]);
    assert!(set.is_empty());
    assert!(set.join_next().await.is_none());
}

#[mtcp::test]
async fn join_set_finds_the_one_finished_member_among_many() {
    // 1000 members wait forever; one finishes. join_next returns it, and
    // the idle members' futures are not polled again (the set's own
    // bookkeeping is checked by its unit tests).
    let polls = Rc::new(Cell::new(0u32));
    let mut set = JoinSet::new();
    for _ in 0..1000 {
        let polls = polls.clone();
        set.spawn(std::future::poll_fn(move |_| {
            polls.set(polls.get() + 1);
            std::task::Poll::<u32>::Pending
        }));
    }
    let (tx, rx) = oneshot::channel::<u32>();
    set.spawn(async move { rx.await.unwrap() });
    // Let every member run once and the set register with each.
    assert!(set.try_join_next().is_none());
    // The core polls a budget of tasks per tick: yield until all ran.
    for _ in 0..100 {
        if polls.get() == 1000 {
            break;
        }
        mtcp::task::yield_now().await;
    }
    let before = polls.get();
    assert_eq!(before, 1000);
    tx.send(7).unwrap();
    assert_eq!(set.join_next().await.unwrap().unwrap(), 7);
    assert_eq!(polls.get(), before, "idle members were polled again");
    assert_eq!(set.len(), 1000);
    set.shutdown().await;
    assert!(set.is_empty());
}

#[mtcp::test]
async fn join_set_errors_abort_and_try_join_next() {
    let mut set = JoinSet::new();
    set.spawn(async { panic!("boom") });
    let err = set.join_next().await.unwrap().unwrap_err();
    assert!(err.is_panic());

    let abort = set.spawn(std::future::pending::<u8>());
    set.spawn(async { 5u8 });
    abort.abort();
    let mut got = Vec::new();
    while let Some(r) = set.join_next().await {
        got.push(r.map_err(|e| e.is_cancelled()));
    }
    got.sort();
    assert_eq!(got, vec![Ok(5), Err(true)]);
    assert!(abort.is_finished());

    set.spawn(async { 9u8 });
    assert!(set.try_join_next().is_none(), "not run yet");
    mtcp::task::yield_now().await;
    mtcp::task::yield_now().await;
    assert_eq!(set.try_join_next().unwrap().unwrap(), 9);
}

#[mtcp::test]
async fn join_set_abort_all_shutdown_detach_and_drop() {
    let mut set: JoinSet<()> = (0..5).map(|_| std::future::pending()).collect();
    assert_eq!(set.len(), 5);
    set.abort_all();
    let mut cancelled = 0;
    while let Some(r) = set.join_next().await {
        assert!(r.unwrap_err().is_cancelled());
        cancelled += 1;
    }
    assert_eq!(cancelled, 5);

    // Drop aborts: the task's future is dropped, so its sender is too.
    let (tx, rx) = oneshot::channel::<()>();
    let mut set = JoinSet::new();
    set.spawn(async move {
        std::future::pending::<()>().await;
        drop(tx);
    });
    mtcp::task::yield_now().await;
    drop(set);
    assert!(rx.await.is_err());

    // detach_all: the task runs on.
    let (tx, rx) = oneshot::channel();
    let mut set = JoinSet::new();
    set.spawn(async move {
        sleep(Duration::from_millis(5)).await;
        tx.send("ran").unwrap();
    });
    set.detach_all();
    assert!(set.is_empty());
    drop(set);
    assert_eq!(rx.await.unwrap(), "ran");

    // shutdown empties the set.
    let mut set = JoinSet::new();
    set.spawn(sleep(Duration::from_secs(60)));
    set.spawn_blocking(|| std::thread::sleep(Duration::from_millis(1)));
    set.shutdown().await;
    assert!(set.is_empty());

    let set: JoinSet<u32> = (1..=4).map(|i| async move { i * i }).collect();
    let mut all = set.join_all().await;
    all.sort();
    assert_eq!(all, vec![1, 4, 9, 16]);
}

// ---- AbortHandle ----

#[mtcp::test]
async fn abort_handle_from_join_handle() {
    let h = mtcp::spawn(sleep(Duration::from_secs(60)));
    let a = h.abort_handle();
    assert!(!a.is_finished());
    a.abort();
    assert!(h.await.unwrap_err().is_cancelled());
    assert!(a.is_finished());
}

// ---- LocalSet ----

#[test]
fn local_set_block_on_and_spawns_before_the_runtime_runs() {
    let rt = Runtime::new().unwrap();
    let local = LocalSet::new();
    let counter = Rc::new(Cell::new(0));
    let c = counter.clone();
    // Spawned before any runtime runs: held until the set runs.
    let early = local.spawn_local(async move {
        c.set(c.get() + 1);
        "early"
    });
    let c = counter.clone();
    let v = local.block_on(&rt, async move {
        let c2 = c.clone();
        let inner = mtcp::task::spawn_local(async move {
            c2.set(c2.get() + 10);
        });
        inner.await.unwrap();
        early.await.unwrap()
    });
    assert_eq!(v, "early");
    assert_eq!(counter.get(), 11);
}

#[test]
fn awaiting_a_local_set_waits_for_its_tasks() {
    let rt = Runtime::new().unwrap();
    let local = LocalSet::new();
    let done = Rc::new(Cell::new(0));
    for i in 0..3u64 {
        let done = done.clone();
        local.spawn_local(async move {
            sleep(Duration::from_millis(5 * i)).await;
            // Nested spawn_local from a set task joins the set too.
            let d = done.clone();
            mtcp::task::spawn_local(async move {
                sleep(Duration::from_millis(5)).await;
                d.set(d.get() + 1);
            });
            done.set(done.get() + 1);
        });
    }
    let start = std::time::Instant::now();
    rt.block_on(local);
    assert_eq!(done.get(), 6);
    assert!(start.elapsed() >= Duration::from_millis(15));
}

#[mtcp::test]
async fn local_set_run_until_and_drop_aborts() {
    let local = LocalSet::new();
    let (tx, rx) = oneshot::channel::<()>();
    let v = local
        .run_until(async {
            mtcp::task::spawn_local(async move {
                let _tx = tx;
                std::future::pending::<()>().await;
            });
            mtcp::task::spawn_local(async { 4 }).await.unwrap()
        })
        .await;
    assert_eq!(v, 4);
    // The pending task is in the set: dropping the set aborts it.
    drop(local);
    assert!(rx.await.is_err());

    let local = LocalSet::new();
    let h = local.spawn_local(async { 1 });
    assert_eq!(h.await.unwrap(), 1);
    local.await;
}

// ---- signals ----

fn raise(sig: libc::c_int) {
    // SAFETY: raise(3) delivers `sig` to this process; every caller has
    // installed mtcp's handler for it first.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

#[mtcp::test]
async fn signal_streams_receive_each_delivery() {
    for (kind, raw) in [
        (SignalKind::user_defined1(), libc::SIGUSR1),
        (SignalKind::user_defined2(), libc::SIGUSR2),
        (SignalKind::hangup(), libc::SIGHUP),
        (SignalKind::terminate(), libc::SIGTERM),
    ] {
        assert_eq!(kind.as_raw_value(), raw);
        let mut a = signal(kind).unwrap();
        let mut b = signal(kind).unwrap();
        // Nothing delivered yet.
        assert!(timeout(Duration::from_millis(5), a.recv()).await.is_err());
        raise(raw);
        assert_eq!(
            timeout(Duration::from_secs(5), a.recv()).await.unwrap(),
            Some(())
        );
        assert_eq!(
            timeout(Duration::from_secs(5), b.recv()).await.unwrap(),
            Some(())
        );
        // One delivery, one recv each.
        assert!(timeout(Duration::from_millis(5), a.recv()).await.is_err());
        // A waiting task is woken.
        let waiter = mtcp::spawn(async move { a.recv().await });
        sleep(Duration::from_millis(2)).await;
        raise(raw);
        assert_eq!(
            timeout(Duration::from_secs(5), waiter)
                .await
                .unwrap()
                .unwrap(),
            Some(())
        );
    }
}

#[mtcp::test]
async fn ctrl_c_resolves_on_sigint() {
    // Install the handler before anything raises SIGINT.
    let _guard = signal(SignalKind::interrupt()).unwrap();
    let task = mtcp::spawn(mtcp::signal::ctrl_c());
    sleep(Duration::from_millis(2)).await;
    assert!(!task.is_finished());
    raise(libc::SIGINT);
    timeout(Duration::from_secs(5), task)
        .await
        .expect("ctrl_c did not resolve")
        .unwrap()
        .unwrap();
}

#[mtcp::test]
async fn forbidden_and_bad_signals_are_refused() {
    assert!(signal(SignalKind::from_raw(libc::SIGKILL)).is_err());
    assert!(signal(SignalKind::from_raw(libc::SIGSEGV)).is_err());
    assert_eq!(
        signal(SignalKind::from_raw(0)).unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
    assert!(signal(SignalKind::from_raw(1000)).is_err());
}

// ---- net ----

#[mtcp::test]
async fn lookup_host_resolves_addresses_and_names() {
    let v: Vec<_> = mtcp::net::lookup_host("10.0.0.1:80")
        .await
        .unwrap()
        .collect();
    assert_eq!(v, vec!["10.0.0.1:80".parse().unwrap()]);
    let v: Vec<_> = mtcp::net::lookup_host(("127.0.0.1", 7))
        .await
        .unwrap()
        .collect();
    assert_eq!(v, vec!["127.0.0.1:7".parse().unwrap()]);
    let name = String::from("localhost:8080");
    let v: Vec<_> = mtcp::net::lookup_host(&name).await.unwrap().collect();
    assert!(!v.is_empty());
    assert!(v.iter().all(|a| a.port() == 8080 && a.ip().is_loopback()));
    assert!(mtcp::net::lookup_host("no-port-here").await.is_err());
}

/// Generic tokio code bounded by `tokio::net::ToSocketAddrs` can hand its
/// argument to both `lookup_host` and `connect`.
async fn connect_generic<A: mtcp::net::ToSocketAddrs + Copy>(
    addr: A,
) -> std::io::Result<TcpStream> {
    let n = mtcp::net::lookup_host(addr).await?.count();
    assert!(n > 0);
    TcpStream::connect(addr).await
}

#[mtcp::test]
async fn to_socket_addrs_bound_works_for_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = mtcp::spawn(async move { listener.accept().await.map(|_| ()) });
    let s = connect_generic(addr).await.unwrap();
    assert_eq!(s.peer_addr().unwrap(), addr);
    accept.await.unwrap().unwrap();
}

#[mtcp::test]
async fn peek_linger_and_ttl() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = mtcp::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"hello world").await.unwrap();
        // Wait for the client's close; with linger 0 it is a reset.
        let mut buf = [0u8; 16];
        s.read(&mut buf).await
    });
    let mut c = TcpStream::connect(addr).await.unwrap();
    let mut head = [0u8; 5];
    let n = c.peek(&mut head).await.unwrap();
    assert_eq!(&head[..n], &b"hello"[..n]);
    let mut again = [0u8; 5];
    assert_eq!(c.try_peek(&mut again).unwrap(), n);
    let mut all = [0u8; 11];
    c.read_exact(&mut all).await.unwrap();
    assert_eq!(&all, b"hello world");
    assert_eq!(
        c.try_peek(&mut again).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );

    assert_eq!(c.ttl().unwrap(), 64);
    c.set_ttl(32).unwrap();
    assert!(c.set_ttl(0).is_err());
    assert_eq!(c.linger().unwrap(), None);
    c.set_linger(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(c.linger().unwrap(), Some(Duration::from_secs(3)));
    // Kept in whole milliseconds, rounded up: never the zero that resets.
    c.set_linger(Some(Duration::from_nanos(1))).unwrap();
    assert_eq!(c.linger().unwrap(), Some(Duration::from_millis(1)));
    c.set_linger(Some(Duration::ZERO)).unwrap();
    drop(c);
    let r = timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset,
        "linger 0 closes with a reset"
    );
}

// ---- Handle::spawn ----

#[mtcp::test]
async fn handle_spawn_on_and_off_the_runtime() {
    let handle = Handle::current();
    assert_eq!(Handle::try_current().unwrap().core_count(), 1);
    assert!(std::thread::spawn(|| Handle::try_current().is_err())
        .join()
        .unwrap());
    assert_eq!(handle.spawn(async { 3 }).await.unwrap(), 3);
    let h2 = handle.clone();
    let from_thread = std::thread::spawn(move || {
        let a = h2.spawn(async {
            sleep(Duration::from_millis(2)).await;
            "from a plain thread"
        });
        let b = h2.spawn(std::future::pending::<()>());
        b.abort();
        // Awaited on another runtime's thread.
        Runtime::new()
            .unwrap()
            .block_on(async move { (a.await.unwrap(), b.await.unwrap_err().is_cancelled()) })
    });
    // Keep this core turning while the thread waits on it.
    let start = Instant::now();
    while !from_thread.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(10));
        sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(from_thread.join().unwrap(), ("from a plain thread", true));
    assert_eq!(
        handle
            .spawn_blocking(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap()
            .as_deref(),
        Some("mtcp-blocking")
    );
}

// ---- Runtime::spawn ----

#[test]
fn runtime_spawn_before_and_during_block_on() {
    let rt = Runtime::new().unwrap();
    // Queued: starts when block_on begins.
    let early = rt.spawn(async {
        sleep(Duration::from_millis(1)).await;
        mtcp::runtime::current_core()
    });
    let rt = std::sync::Arc::new(rt);
    let rt2 = rt.clone();
    let v = rt.block_on(async move {
        let core = early.await.unwrap();
        // During the run, from this runtime's thread: a local spawn.
        let here = rt2.spawn(async { 5 }).await.unwrap();
        // From another thread: sent to core 0, awaited on that thread.
        let rt3 = rt2.clone();
        let t = std::thread::spawn(move || {
            let h = rt3.spawn(async { "remote" });
            Runtime::new().unwrap().block_on(h).unwrap()
        });
        while !t.is_finished() {
            sleep(Duration::from_millis(1)).await;
        }
        (core, here, t.join().unwrap())
    });
    assert_eq!(v, (0, 5, "remote"));
    // block_on_each_core runs queued tasks on core 0 too.
    let multi = mtcp::runtime::Builder::new().cores(2).build().unwrap();
    let queued = multi.spawn(async { mtcp::runtime::current_core() + 100 });
    let cores = multi.block_on_each_core(|| async {
        sleep(Duration::from_millis(10)).await;
        mtcp::runtime::current_core()
    });
    assert_eq!(cores, vec![0, 1]);
    assert_eq!(multi.block_on(queued).unwrap(), 100);
    // A queued task whose runtime never runs again is cancelled when the
    // runtime is dropped.
    let rt = std::sync::Arc::into_inner(rt).unwrap();
    let never = rt.spawn(async { 1 });
    drop(rt);
    let r = Runtime::new().unwrap().block_on(never);
    assert!(r.unwrap_err().is_cancelled());
}

// ---- io::stdin / stdout ----

/// Run by `stdin_lines_reach_the_task` as a child process, stdin piped.
#[mtcp::test]
async fn stdin_child() {
    use mtcp::io::AsyncBufReadExt;
    if std::env::var_os("MTCP_STDIN_CHILD").is_none() {
        return;
    }
    let mut out = mtcp::io::stdout();
    let mut lines = mtcp::io::BufReader::new(mtcp::io::stdin()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        out.write_all(format!("got {line}\n").as_bytes())
            .await
            .unwrap();
    }
    out.write_all(b"got eof\n").await.unwrap();
    out.flush().await.unwrap();
}

#[test]
fn stdin_lines_reach_the_task() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["stdin_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("MTCP_STDIN_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"one\ntwo\n").unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("got one\ngot two\ngot eof\n"), "{text}");
}

// ---- fs ----

#[mtcp::test]
async fn fs_functions_file_and_read_dir() {
    use mtcp::fs::{self, File, OpenOptions};
    use mtcp::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
    let dir = std::env::temp_dir().join(format!("mtcp-fs-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("sub")).await.unwrap();
    let a = dir.join("a.txt");
    fs::write(&a, "one\ntwo\n").await.unwrap();
    assert_eq!(fs::read_to_string(&a).await.unwrap(), "one\ntwo\n");
    assert_eq!(fs::metadata(&a).await.unwrap().len(), 8);
    assert!(fs::try_exists(&a).await.unwrap());

    let mut f = OpenOptions::new().append(true).open(&a).await.unwrap();
    f.write_all(b"three\n").await.unwrap();
    f.flush().await.unwrap();
    drop(f);
    let mut lines = BufReader::new(File::open(&a).await.unwrap()).lines();
    let mut got = Vec::new();
    while let Some(l) = lines.next_line().await.unwrap() {
        got.push(l);
    }
    assert_eq!(got, ["one", "two", "three"]);

    let mut f = File::open(&a).await.unwrap();
    assert_eq!(f.seek(std::io::SeekFrom::Start(4)).await.unwrap(), 4);
    let mut s = String::new();
    f.read_to_string(&mut s).await.unwrap();
    assert_eq!(s, "two\nthree\n");

    let b = dir.join("sub").join("b.txt");
    assert_eq!(fs::copy(&a, &b).await.unwrap(), 14);
    fs::rename(&b, dir.join("c.txt")).await.unwrap();
    let mut names = Vec::new();
    let mut rd = fs::read_dir(&dir).await.unwrap();
    while let Some(e) = rd.next_entry().await.unwrap() {
        names.push(e.file_name().into_string().unwrap());
    }
    names.sort();
    assert_eq!(names, ["a.txt", "c.txt", "sub"]);
    assert_eq!(
        fs::read(dir.join("missing")).await.unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    fs::remove_dir_all(&dir).await.unwrap();
    assert!(!fs::try_exists(&dir).await.unwrap());
}

// ---- TcpSocket ----

#[mtcp::test]
async fn tcp_socket_listen_and_connect_with_options() {
    use mtcp::net::TcpSocket;
    assert!(TcpSocket::new_v6().is_err());
    let s = TcpSocket::new_v4().unwrap();
    s.set_reuseaddr(true).unwrap();
    assert!(s.reuseaddr().unwrap());
    assert!(s.local_addr().is_err());
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = s.listen(16).unwrap();
    let addr = listener.local_addr().unwrap();
    assert_ne!(addr.port(), 0);

    let c = TcpSocket::new_v4().unwrap();
    c.set_nodelay(true).unwrap();
    c.set_keepalive(true).unwrap();
    c.set_linger(Some(Duration::ZERO)).unwrap();
    let server = mtcp::spawn(async move {
        let (mut s, peer) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        // The client drops with linger 0: a reset.
        let end = s.read(&mut buf).await;
        (peer, buf, end.map_err(|e| e.kind()))
    });
    let mut stream = c.connect(addr).await.unwrap();
    assert!(stream.nodelay().unwrap());
    assert_eq!(stream.linger().unwrap(), Some(Duration::ZERO));
    let local = stream.local_addr().unwrap();
    stream.write_all(b"ping").await.unwrap();
    sleep(Duration::from_millis(5)).await;
    drop(stream);
    let (peer, buf, end) = server.await.unwrap();
    assert_eq!(peer, local);
    assert_eq!(&buf, b"ping");
    assert_eq!(end, Err(std::io::ErrorKind::ConnectionReset));

    // Nothing listens there: refused.
    let c = TcpSocket::new_v4().unwrap();
    let e = c.connect("127.0.0.1:1".parse().unwrap()).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
}

// ---- task_local! ----

mtcp::task_local! {
    static NAME: String;
    pub static DEPTH: u32;
}

#[mtcp::test]
async fn task_locals_follow_their_task() {
    // Two tasks on one core interleave; each sees its own value.
    let mut set = JoinSet::new();
    for name in ["a", "b"] {
        set.spawn(NAME.scope(name.to_string(), async {
            let mut seen = Vec::new();
            for _ in 0..3 {
                mtcp::task::yield_now().await;
                seen.push(NAME.get());
            }
            seen
        }));
    }
    while let Some(seen) = set.join_next().await {
        let seen = seen.unwrap();
        assert!(seen.iter().all(|n| n == &seen[0]), "{seen:?}");
    }
    assert!(NAME.try_with(|_| ()).is_err());

    // Nested scopes restore the outer value; sync_scope too.
    let v = DEPTH
        .scope(1, async {
            let inner = DEPTH.scope(2, async { DEPTH.get() }).await;
            let sync = DEPTH.sync_scope(3, || DEPTH.get());
            (inner, sync, DEPTH.get())
        })
        .await;
    assert_eq!(v, (2, 3, 1));

    // A panic inside a scope does not leave the value set.
    let r = std::panic::catch_unwind(|| DEPTH.sync_scope(9, || panic!("inside")));
    assert!(r.is_err());
    assert!(DEPTH.try_with(|d| *d).is_err());
    assert_eq!(mtcp::task::block_in_place(|| 5), 5);
}

// ---- process ----

#[mtcp::test]
async fn process_output_status_pipes_and_kill() {
    use mtcp::io::{AsyncBufReadExt, BufReader};
    use mtcp::process::Command;
    use std::process::Stdio;

    let out = Command::new("sh")
        .args(["-c", "echo out; echo err >&2; exit 3"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert!(Command::new("true").status().await.unwrap().success());
    assert!(Command::new("/nonexistent/program").spawn().is_err());

    // cat: write to its stdin, read its stdout line by line.
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(child.id().is_some());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"alpha\nbeta\n").await.unwrap();
    drop(stdin);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut got = Vec::new();
    while let Some(l) = timeout(Duration::from_secs(5), lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        got.push(l);
    }
    assert_eq!(got, ["alpha", "beta"]);
    assert!(child.wait().await.unwrap().success());
    assert!(child.id().is_none());

    // A long child, killed.
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    assert!(child.try_wait().unwrap().is_none());
    let start = Instant::now();
    child.kill().await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!child.try_wait().unwrap().unwrap().success());

    let child = Command::new("sh")
        .args(["-c", "echo piped"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.stdout, b"piped\n");
}

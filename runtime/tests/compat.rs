//! `#[mtcp::test]`, and tokio's runtime-independent pieces (select!, join!,
//! try_join!, pin!, sync, io) working on mtcp.

use std::time::Duration;

use mtcp::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use mtcp::sync::{mpsc, oneshot, Mutex, Notify};

#[mtcp::test]
async fn test_attribute_runs_on_a_runtime() {
    assert_eq!(mtcp::runtime::core_count(), 1);
    assert_eq!(mtcp::spawn(async { 2 }).await.unwrap(), 2);
}

#[mtcp::test]
async fn test_attribute_with_result() -> Result<(), Box<dyn std::error::Error>> {
    let v: u32 = "12".parse()?;
    assert_eq!(v, 12);
    Ok(())
}

#[mtcp::test(cores = 2)]
async fn test_attribute_runs_on_each_core() {
    assert_eq!(mtcp::runtime::core_count(), 2);
    assert!(mtcp::runtime::current_core() < 2);
}

#[mtcp::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokio_options_are_accepted_and_run_once() {
    assert_eq!(mtcp::runtime::core_count(), 1);
}

#[mtcp::test]
#[should_panic(expected = "body panicked")]
async fn a_panicking_test_body_fails_the_test() {
    panic!("body panicked");
}

#[mtcp::test]
async fn select_picks_the_ready_branch() {
    let (tx, rx) = oneshot::channel::<u8>();
    tx.send(5).unwrap();
    let v = mtcp::select! {
        v = rx => v.unwrap(),
        _ = mtcp::time::sleep(Duration::from_secs(10)) => 0,
    };
    assert_eq!(v, 5);

    let sleep = mtcp::time::sleep(Duration::from_millis(5));
    mtcp::pin!(sleep);
    let mut ticks = 0;
    loop {
        mtcp::select! {
            biased;
            _ = &mut sleep => break,
            _ = mtcp::task::yield_now() => ticks += 1,
        }
    }
    assert!(ticks > 0);
}

#[mtcp::test]
async fn join_and_try_join() {
    let (a, b) = mtcp::join!(async { 1 }, async {
        mtcp::time::sleep(Duration::from_millis(2)).await;
        2
    });
    assert_eq!((a, b), (1, 2));
    let r: Result<(u8, u8), &str> = mtcp::try_join!(async { Ok(1) }, async { Err("no") });
    assert_eq!(r, Err("no"));
}

#[mtcp::test]
async fn sync_primitives_work_across_tasks() {
    let (tx, mut rx) = mpsc::channel(4);
    let producer = mtcp::spawn(async move {
        for i in 0..100 {
            tx.send(i).await.unwrap();
        }
    });
    let mut sum = 0;
    while let Some(v) = rx.recv().await {
        sum += v;
    }
    producer.await.unwrap();
    assert_eq!(sum, 4950);

    let notify = std::rc::Rc::new(Notify::new());
    let n = notify.clone();
    let waiter = mtcp::spawn(async move { n.notified().await });
    mtcp::task::yield_now().await;
    notify.notify_one();
    waiter.await.unwrap();

    let m = Mutex::new(1);
    *m.lock().await += 1;
    assert_eq!(*m.lock().await, 2);
}

#[mtcp::test]
async fn io_utilities_work() {
    let (mut a, b) = mtcp::io::duplex(64);
    let writer = mtcp::spawn(async move {
        a.write_all(b"hello\nworld\n").await.unwrap();
        a.shutdown().await.unwrap();
    });
    let mut lines = BufReader::new(b).lines();
    let mut got = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        got.push(line);
    }
    writer.await.unwrap();
    assert_eq!(got, ["hello", "world"]);

    let mut buf = Vec::new();
    mtcp::io::repeat(7)
        .take(3)
        .read_to_end(&mut buf)
        .await
        .unwrap();
    assert_eq!(buf, [7, 7, 7]);
    let n = mtcp::io::copy(&mut &b"abc"[..], &mut mtcp::io::sink())
        .await
        .unwrap();
    assert_eq!(n, 3);
}

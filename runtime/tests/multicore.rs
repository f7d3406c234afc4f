//! Thread per core: block_on_each_core, run_on, shutdown, panics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mtcp::runtime::{self, Builder, RunOnError};
use mtcp::sync::{mpsc, oneshot};

#[test]
fn main_runs_once_on_each_core() {
    let rt = Builder::new().cores(2).build().unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let out = rt.block_on_each_core(move || {
        let r = r.clone();
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            assert_eq!(runtime::core_count(), 2);
            let thread = std::thread::current().name().map(str::to_owned);
            (runtime::current_core(), thread)
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(
        out,
        vec![
            (0, Some("mtcp-core-0".to_owned())),
            (1, Some("mtcp-core-1".to_owned()))
        ]
    );
}

#[test]
fn run_on_messages_between_cores() {
    let rt = Builder::new().cores(2).build().unwrap();
    let out = rt.block_on_each_core(|| async {
        let me = runtime::current_core();
        let other = 1 - me;
        // Ask the other core to spawn a task that answers with its index.
        let (tx, rx) = oneshot::channel();
        runtime::run_on(other, move || {
            mtcp::spawn(async move {
                mtcp::task::yield_now().await;
                tx.send(runtime::current_core()).unwrap();
            });
        })
        .unwrap();
        let answer = rx.await.unwrap();
        assert_eq!(runtime::run_on(7, || {}), Err(RunOnError::NoSuchCore));
        (me, answer)
    });
    assert_eq!(out, vec![(0, 1), (1, 0)]);
}

#[test]
fn ping_pong_over_channels_between_cores() {
    let rt = Builder::new().cores(2).build().unwrap();
    let total = rt.block_on(async {
        let (to_1, mut on_1) = mpsc::channel::<u32>(8);
        let (to_0, mut on_0) = mpsc::channel::<u32>(8);
        runtime::run_on(1, move || {
            mtcp::spawn(async move {
                while let Some(v) = on_1.recv().await {
                    assert_eq!(runtime::current_core(), 1);
                    if to_0.send(v + 1).await.is_err() {
                        break;
                    }
                }
            });
        })
        .unwrap();
        let mut v = 0;
        for _ in 0..500 {
            to_1.send(v).await.unwrap();
            v = on_0.recv().await.unwrap() + 1;
        }
        v
    });
    assert_eq!(total, 1000);
}

#[test]
fn a_core_whose_main_returned_keeps_serving_until_all_are_done() {
    let rt = Builder::new().cores(2).build().unwrap();
    let out = rt.block_on_each_core(|| async {
        if runtime::current_core() == 1 {
            // Returns at once; must still run what core 0 sends later.
            return 1;
        }
        mtcp::time::sleep(Duration::from_millis(20)).await;
        let (tx, rx) = oneshot::channel();
        runtime::run_on(1, move || {
            let _ = tx.send(runtime::current_core());
        })
        .unwrap();
        rx.await.unwrap() + 10
    });
    assert_eq!(out, vec![11, 1]);
}

#[test]
fn a_panic_on_one_core_stops_the_others_and_propagates() {
    let rt = Builder::new().cores(2).build().unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on_each_core(|| async {
            if runtime::current_core() == 1 {
                mtcp::time::sleep(Duration::from_millis(10)).await;
                panic!("core 1 failed");
            }
            // Core 0 would wait forever: it must be stopped.
            std::future::pending::<()>().await;
        })
    }));
    let payload = result.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"core 1 failed"));
}

#[test]
fn graceful_shutdown_signal_reaches_every_core() {
    let rt = Builder::new().cores(2).build().unwrap();
    let out = rt.block_on_each_core(|| async {
        if runtime::current_core() == 0 {
            mtcp::time::sleep(Duration::from_millis(10)).await;
            runtime::request_shutdown();
        }
        runtime::shutdown_requested().await;
        runtime::is_shutdown_requested()
    });
    assert_eq!(out, vec![true, true]);
}

#[test]
fn block_on_with_several_cores_starts_workers() {
    let rt = Builder::new().cores(3).build().unwrap();
    let seen = rt.block_on(async {
        assert_eq!(runtime::current_core(), 0);
        assert_eq!(runtime::core_count(), 3);
        let mut seen = Vec::new();
        for core in 0..3 {
            let (tx, rx) = oneshot::channel();
            runtime::run_on(core, move || {
                tx.send(runtime::current_core()).unwrap();
            })
            .unwrap();
            seen.push(rx.await.unwrap());
        }
        seen
    });
    assert_eq!(seen, vec![0, 1, 2]);
}

#[test]
fn a_run_on_panic_is_contained() {
    let rt = Builder::new().cores(2).build().unwrap();
    rt.block_on(async {
        runtime::run_on(1, || panic!("closure failed")).unwrap();
        let (tx, rx) = oneshot::channel();
        runtime::run_on(1, move || tx.send(()).unwrap()).unwrap();
        rx.await.unwrap();
    });
}

#[test]
fn a_driver_that_fails_to_start_is_reported_with_its_core() {
    let rt = Builder::new()
        .cores(2)
        .io_driver_factory(Arc::new(|cx: &mtcp::driver::DriverContext| {
            if cx.core().index() == 1 {
                Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such device: tap9",
                ))
            } else {
                Ok(Box::new(mtcp::driver::NoNetwork::new()) as Box<dyn mtcp::driver::IoDriver>)
            }
        }))
        .build()
        .unwrap();
    let err = rt.try_block_on(async {}).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        "mtcp: core 1: failed to start its I/O driver: no such device: tap9"
    );
    let err = rt
        .try_block_on_each_core(|| async { runtime::current_core() })
        .unwrap_err();
    assert!(err.to_string().contains("core 1"), "{err}");
}

#[test]
fn extra_config_reaches_the_driver_factory() {
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let rt = Builder::new()
        .cores(2)
        .extra(7usize)
        .io_driver_factory(Arc::new(move |cx: &mtcp::driver::DriverContext| {
            assert_eq!(cx.core().count(), 2);
            s.fetch_add(*cx.extra_as::<usize>().unwrap(), Ordering::SeqCst);
            Ok(Box::new(mtcp::driver::NoNetwork::new()) as Box<dyn mtcp::driver::IoDriver>)
        }))
        .build()
        .unwrap();
    rt.block_on_each_core(|| async {});
    assert_eq!(seen.load(Ordering::SeqCst), 14);
}

#[test]
fn runtimes_run_one_after_another_and_side_by_side() {
    let a = std::thread::spawn(|| {
        let rt = Builder::new().cores(2).build().unwrap();
        rt.block_on_each_core(|| async { runtime::current_core() })
    });
    let rt = Builder::new().cores(2).build().unwrap();
    for _ in 0..3 {
        assert_eq!(
            rt.block_on_each_core(|| async { runtime::current_core() }),
            vec![0, 1]
        );
    }
    assert_eq!(a.join().unwrap(), vec![0, 1]);
}

#[test]
fn a_handle_works_from_plain_threads() {
    let rt = Builder::new().cores(2).build().unwrap();
    let out = rt.block_on_each_core(|| async {
        if runtime::current_core() == 0 {
            let handle = runtime::Handle::current();
            assert_eq!(handle.core_count(), 2);
            let (tx, rx) = oneshot::channel();
            std::thread::spawn(move || {
                handle
                    .run_on(1, move || {
                        mtcp::spawn(async move { tx.send(runtime::current_core()).unwrap() });
                    })
                    .unwrap();
                assert_eq!(handle.run_on(2, || {}), Err(RunOnError::NoSuchCore));
                handle.request_shutdown();
            });
            assert_eq!(rx.await.unwrap(), 1);
        }
        runtime::shutdown_requested().await;
        runtime::current_core()
    });
    assert_eq!(out, vec![0, 1]);
    // After the run, a kept handle reports the cores as stopped.
    let kept = rt.block_on(async { runtime::Handle::current() });
    assert_eq!(kept.run_on(0, || {}), Err(RunOnError::Stopped));
}

thread_local! {
    static PARKS_AT_WAKE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn parks() -> u64 {
    mtcp::driver::with_io_driver(|d: &mut mtcp::driver::NoNetwork| d.parks()).unwrap()
}

#[test]
fn a_finished_main_woken_again_does_not_keep_its_core_busy() {
    let rt = Builder::new().cores(2).build().unwrap();
    let out = rt.block_on_each_core(|| async {
        if runtime::current_core() == 1 {
            // Leave a clone of main's waker behind, woken after main returns.
            let waker = std::future::poll_fn(|cx| std::task::Poll::Ready(cx.waker().clone())).await;
            mtcp::spawn(async move {
                mtcp::time::sleep(Duration::from_millis(5)).await;
                waker.wake();
                PARKS_AT_WAKE.with(|p| p.set(parks()));
            });
            return (0, 0);
        }
        mtcp::time::sleep(Duration::from_millis(60)).await;
        let (tx, rx) = oneshot::channel();
        runtime::run_on(1, move || {
            tx.send((PARKS_AT_WAKE.with(|p| p.get()), parks())).unwrap();
        })
        .unwrap();
        rx.await.unwrap()
    });
    // Core 1 parked again after the stale wake of its finished main.
    let (at_wake, later) = out[0];
    assert!(at_wake >= 1 && later > at_wake, "{:?}", out[0]);
}

//! Tasks: spawn, join, panic, abort, detach, cross-thread wakes, fairness,
//! the task budget.

use std::cell::{Cell, RefCell};
use std::future::{pending, poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mtcp::driver::{IoDriver, NoNetwork, Unparker};
use mtcp::runtime::{Builder, Runtime};
use mtcp::task::{self, JoinError};

fn rt() -> Runtime {
    Runtime::new().unwrap()
}

#[test]
fn spawn_and_join_many_tasks() {
    let sum = rt().block_on(async {
        let handles: Vec<_> = (0..10_000u64)
            .map(|i| mtcp::spawn(async move { i }))
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 10_000 * 9_999 / 2);
}

#[test]
fn tasks_spawn_tasks() {
    let n = rt().block_on(async {
        let outer = mtcp::spawn(async {
            let inner = task::spawn_local(async { 7 });
            inner.await.unwrap() * 6
        });
        outer.await.unwrap()
    });
    assert_eq!(n, 42);
}

#[test]
fn non_send_futures_can_be_spawned() {
    let v = rt().block_on(async {
        let shared = Rc::new(Cell::new(1));
        let s = shared.clone();
        mtcp::spawn(async move { s.set(s.get() + 1) })
            .await
            .unwrap();
        shared.get()
    });
    assert_eq!(v, 2);
}

#[test]
fn a_panicking_task_gives_a_join_error_and_the_runtime_goes_on() {
    rt().block_on(async {
        let err = mtcp::spawn(async {
            panic!("task failed on purpose");
        })
        .await
        .unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert_eq!(
            err.to_string(),
            "task panicked with message \"task failed on purpose\""
        );
        let payload = err.into_panic();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"task failed on purpose")
        );
        // The core still runs tasks.
        assert_eq!(mtcp::spawn(async { 5 }).await.unwrap(), 5);
    });
}

#[test]
fn join_error_is_a_send_sync_error() {
    fn check<E: std::error::Error + Send + Sync + 'static>() {}
    check::<JoinError>();
    let err = rt().block_on(async {
        let h = mtcp::spawn(pending::<()>());
        h.abort();
        h.await.unwrap_err()
    });
    assert_eq!(err.to_string(), "task was cancelled");
    assert_eq!(format!("{err:?}"), "JoinError::Cancelled");
    assert!(err.try_into_panic().is_err());
    let io: std::io::Error = rt()
        .block_on(async {
            let h = mtcp::spawn(pending::<()>());
            h.abort();
            h.await.unwrap_err()
        })
        .into();
    assert_eq!(io.kind(), std::io::ErrorKind::Other);
}

struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn abort_cancels_and_drops_the_future() {
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    rt().block_on(async move {
        let guard = DropFlag(d);
        let h = mtcp::spawn(async move {
            let _guard = guard;
            pending::<()>().await;
        });
        mtcp::task::yield_now().await; // let it start
        assert!(!h.is_finished());
        h.abort();
        let err = h.await.unwrap_err();
        assert!(err.is_cancelled());
        assert!(!err.is_panic());
    });
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn abort_before_start_and_after_finish() {
    rt().block_on(async {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let h = mtcp::spawn(async move { r.set(true) });
        h.abort();
        assert!(h.await.unwrap_err().is_cancelled());
        assert!(!ran.get(), "aborted before its first poll");

        let h = mtcp::spawn(async { 3 });
        while !h.is_finished() {
            mtcp::task::yield_now().await;
        }
        h.abort();
        assert_eq!(h.await.unwrap(), 3);
    });
}

#[test]
fn a_task_can_abort_itself() {
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    rt().block_on(async move {
        let slot: Rc<RefCell<Option<mtcp::task::JoinHandle<()>>>> = Rc::new(RefCell::new(None));
        let s = slot.clone();
        let h = mtcp::spawn(async move {
            let _guard = DropFlag(d);
            mtcp::task::yield_now().await;
            let me = s.borrow_mut().take().expect("handle was stored");
            me.abort();
            assert!(!me.is_finished());
            drop(me);
            mtcp::task::yield_now().await;
            unreachable!("aborted at the previous await");
        });
        *slot.borrow_mut() = Some(h);
        for _ in 0..100 {
            mtcp::task::yield_now().await;
        }
    });
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn dropping_the_handle_detaches() {
    let done = rt().block_on(async {
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        drop(mtcp::spawn(async move {
            mtcp::task::yield_now().await;
            d.set(true);
        }));
        for _ in 0..10 {
            mtcp::task::yield_now().await;
        }
        done.get()
    });
    assert!(done);
}

#[test]
fn tasks_left_running_are_dropped_at_shutdown() {
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    rt().block_on(async move {
        let guard = DropFlag(d);
        mtcp::spawn(async move {
            let _guard = guard;
            pending::<()>().await;
        });
        mtcp::task::yield_now().await;
    });
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
#[should_panic(expected = "mtcp::spawn must be called from a thread running an mtcp runtime")]
fn spawn_off_runtime_panics_clearly() {
    drop(mtcp::spawn(async {}));
}

#[test]
#[should_panic(expected = "Cannot start an mtcp runtime from within a runtime")]
fn nested_block_on_panics() {
    rt().block_on(async {
        rt().block_on(async {});
    });
}

#[test]
fn a_panic_in_block_on_propagates() {
    let r = std::panic::catch_unwind(|| {
        rt().block_on(async {
            mtcp::spawn(pending::<()>());
            panic!("main failed");
        })
    });
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"main failed"));
    // The thread can run a runtime again.
    assert_eq!(rt().block_on(async { 1 }), 1);
}

/// A future woken by a plain std thread after a delay.
struct External {
    state: Arc<Mutex<(bool, Option<Waker>)>>,
}

impl Future for External {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.state.lock().unwrap();
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

fn external_pair() -> (External, impl FnOnce() + Send) {
    let state = Arc::new(Mutex::new((false, None::<Waker>)));
    let s = state.clone();
    let fire = move || {
        let waker = {
            let mut g = s.lock().unwrap();
            g.0 = true;
            g.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    };
    (External { state }, fire)
}

#[test]
fn wake_from_another_thread_unparks_the_core() {
    rt().block_on(async {
        // A task and the main future, both woken from std threads while the
        // core is parked (no timers pending, so it parks without timeout).
        let (ext_task, fire_task) = external_pair();
        let (ext_main, fire_main) = external_pair();
        let h = mtcp::spawn(ext_task);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            fire_task();
            std::thread::sleep(Duration::from_millis(30));
            fire_main();
        });
        h.await.unwrap();
        ext_main.await;
        t.join().unwrap();
    });
}

#[test]
fn many_cross_thread_wakes() {
    rt().block_on(async {
        for _ in 0..200 {
            let (ext, fire) = external_pair();
            let t = std::thread::spawn(fire);
            ext.await;
            t.join().unwrap();
        }
    });
}

#[test]
fn yield_now_is_fair() {
    let order = rt().block_on(async {
        let order = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let order = order.clone();
                mtcp::spawn(async move {
                    for _ in 0..3 {
                        order.borrow_mut().push(name);
                        mtcp::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    assert_eq!(order, ["a", "b", "c", "a", "b", "c", "a", "b", "c"]);
}

/// A driver that counts ticks, to observe the reactor loop.
struct Counting {
    inner: NoNetwork,
    polls: Arc<AtomicUsize>,
    flushes: Arc<AtomicUsize>,
}

impl IoDriver for Counting {
    fn poll(&mut self, _now: mtcp::stack::time::Instant) -> bool {
        self.polls.fetch_add(1, Ordering::SeqCst);
        false
    }
    fn flush(&mut self, _now: mtcp::stack::time::Instant) -> bool {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        false
    }
    fn next_deadline(&self) -> Option<mtcp::stack::time::Instant> {
        None
    }
    fn park(&mut self, timeout: Option<Duration>) {
        self.inner.park(timeout)
    }
    fn unparker(&self) -> Unparker {
        self.inner.unparker()
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

fn counting_runtime(budget: usize) -> (Runtime, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let polls = Arc::new(AtomicUsize::new(0));
    let flushes = Arc::new(AtomicUsize::new(0));
    let (p, f) = (polls.clone(), flushes.clone());
    let rt = Builder::new()
        .task_budget(budget)
        .io_driver_factory(Arc::new(move |_cx: &mtcp::driver::DriverContext| {
            Ok(Box::new(Counting {
                inner: NoNetwork::new(),
                polls: p.clone(),
                flushes: f.clone(),
            }) as Box<dyn IoDriver>)
        }))
        .build()
        .unwrap();
    (rt, polls, flushes)
}

#[test]
fn the_task_budget_bounds_polls_per_tick() {
    let (rt, polls, flushes) = counting_runtime(10);
    rt.block_on(async {
        // 1000 tasks that each need one poll: with a budget of 10 polls per
        // tick, at least 100 ticks pass (I/O polled and flushed each time).
        let handles: Vec<_> = (0..1000).map(|i| mtcp::spawn(async move { i })).collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    assert!(polls.load(Ordering::SeqCst) >= 100, "{polls:?}");
    assert!(flushes.load(Ordering::SeqCst) >= 100, "{flushes:?}");

    // A task that never stops yielding does not starve I/O either.
    let (rt, polls, _) = counting_runtime(16);
    rt.block_on(async {
        let stop = Rc::new(Cell::new(false));
        let s = stop.clone();
        let spinner = mtcp::spawn(async move {
            while !s.get() {
                mtcp::task::yield_now().await;
            }
        });
        mtcp::time::sleep(Duration::from_millis(20)).await;
        stop.set(true);
        spinner.await.unwrap();
    });
    assert!(polls.load(Ordering::SeqCst) > 10);
}

#[test]
fn with_io_driver_reaches_the_cores_driver() {
    let (rt, _, _) = counting_runtime(8);
    rt.block_on(async {
        let polls = mtcp::driver::with_io_driver(|d: &mut Counting| d.polls.load(Ordering::SeqCst));
        assert!(polls.unwrap() >= 1);
        assert!(mtcp::driver::with_io_driver(|_: &mut NoNetwork| ()).is_none());
    });
    assert!(mtcp::driver::with_io_driver(|_: &mut Counting| ()).is_none());
}

#[test]
fn busy_poll_never_parks() {
    let rt = Builder::new().busy_poll(true).build().unwrap();
    rt.block_on(async {
        mtcp::time::sleep(Duration::from_millis(5)).await;
        let parks = mtcp::driver::with_io_driver(|d: &mut NoNetwork| d.parks()).unwrap();
        assert_eq!(parks, 0);
    });
    let rt = Builder::new().build().unwrap();
    rt.block_on(async {
        mtcp::time::sleep(Duration::from_millis(5)).await;
        let parks = mtcp::driver::with_io_driver(|d: &mut NoNetwork| d.parks()).unwrap();
        assert!(parks >= 1);
    });
}

#[test]
fn a_main_future_that_polls_itself_ready_via_poll_fn() {
    let mut n = 0;
    rt().block_on(poll_fn(|cx| {
        n += 1;
        if n < 3 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }));
    assert_eq!(n, 3);
}

#[test]
fn tick_time_is_shared_with_the_stack() {
    assert!(mtcp::driver::tick_now().is_none());
    rt().block_on(async {
        let t0 = mtcp::driver::tick_now().unwrap();
        mtcp::time::sleep(Duration::from_millis(3)).await;
        let t1 = mtcp::driver::tick_now().unwrap();
        assert!(t1 - t0 >= Duration::from_millis(3), "{t0} {t1}");
        let now = mtcp::time::Instant::now();
        let s = mtcp::driver::to_stack_instant(now).unwrap();
        assert!(s >= t1);
        let back = mtcp::driver::from_stack_instant(s).unwrap();
        assert!(back <= now && now - back < Duration::from_micros(2));
    });
}

#[test]
fn public_types_have_the_expected_auto_traits() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Runtime>();
    send_sync::<Builder>();
    send_sync::<mtcp::time::error::Elapsed>();
    send::<mtcp::time::Sleep>();
    send::<mtcp::time::Interval>();
    send::<mtcp::time::Timeout<mtcp::time::Sleep>>();
}

#[test]
fn spawn_blocking_runs_off_the_core() {
    rt().block_on(async {
        let core_thread = std::thread::current().id();
        let h = mtcp::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(10));
            assert_ne!(std::thread::current().id(), core_thread);
            6 * 7
        });
        assert!(!h.is_finished());
        assert_eq!(h.await.unwrap(), 42);
        let err = mtcp::task::spawn_blocking(|| panic!("blocking failed"))
            .await
            .unwrap_err();
        assert!(err.is_panic());
    });
}

#[test]
fn no_wake_is_lost_under_a_cross_thread_storm() {
    rt().block_on(async {
        let (tx, mut rx) = mtcp::sync::mpsc::unbounded_channel::<u32>();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        tx.send(t * 10_000 + i).unwrap();
                        if i % 64 == 0 {
                            // Let the core go idle and park now and then.
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let received = mtcp::time::timeout(Duration::from_secs(30), async {
            let mut n = 0;
            while rx.recv().await.is_some() {
                n += 1;
            }
            n
        })
        .await
        .expect("a lost wake-up would hang here");
        assert_eq!(received, 8000);
        for t in threads {
            t.join().unwrap();
        }
    });
}

//! Timers: sleep, timeout, interval. Only lower bounds on durations are
//! asserted (the machine is shared and noisy).

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use mtcp::runtime::{Builder, Runtime};
use mtcp::time::{self, Instant, MissedTickBehavior};

fn rt() -> Runtime {
    Runtime::new().unwrap()
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn sleep_waits_at_least_its_duration() {
    rt().block_on(async {
        for ms in [0, 1, 3, 20, 65] {
            let start = Instant::now();
            time::sleep(MS * ms).await;
            assert!(start.elapsed() >= MS * ms, "sleep({ms}ms)");
        }
        let deadline = Instant::now() + MS * 15;
        time::sleep_until(deadline).await;
        assert!(Instant::now() >= deadline);
    });
}

#[test]
fn sleeps_complete_in_deadline_order() {
    let order = rt().block_on(async {
        let order = Rc::new(RefCell::new(Vec::new()));
        let handles: Vec<_> = [40u64, 10, 30, 20, 1]
            .into_iter()
            .map(|ms| {
                let order = order.clone();
                mtcp::spawn(async move {
                    time::sleep(MS * ms as u32).await;
                    order.borrow_mut().push(ms);
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    assert_eq!(order, [1, 10, 20, 30, 40]);
}

#[test]
fn many_concurrent_sleeps() {
    rt().block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..2000u32)
            .map(|i| {
                mtcp::spawn(async move {
                    let d = MS * (i % 50);
                    let t = Instant::now();
                    time::sleep(d).await;
                    assert!(t.elapsed() >= d);
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        assert!(start.elapsed() >= MS * 49);
    });
}

#[test]
fn timeout_elapses_or_passes_the_value_through() {
    rt().block_on(async {
        assert_eq!(time::timeout(MS * 50, async { 9 }).await, Ok(9));
        // A ready future wins even with a zero timeout.
        assert_eq!(time::timeout(Duration::ZERO, async { 1 }).await, Ok(1));

        let start = Instant::now();
        let err = time::timeout(MS * 20, time::sleep(Duration::from_secs(30)))
            .await
            .unwrap_err();
        assert!(start.elapsed() >= MS * 20);
        assert_eq!(err.to_string(), "deadline has elapsed");
        let io: std::io::Error = err.into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);

        let r = time::timeout_at(Instant::now() + MS * 5, std::future::pending::<()>()).await;
        assert!(r.is_err());

        let slow = async {
            time::sleep(MS * 5).await;
            "slow"
        };
        assert_eq!(
            time::timeout(Duration::from_secs(5), slow).await,
            Ok("slow")
        );
    });
}

#[test]
fn a_dropped_timeout_cancels_its_timer() {
    rt().block_on(async {
        // Many abandoned long timers must not keep the runtime busy or fire.
        for _ in 0..1000 {
            let t = time::timeout(Duration::from_secs(3600), std::future::ready(()));
            assert!(t.await.is_ok());
        }
        let mut s = Box::pin(time::sleep(Duration::from_secs(3600)));
        let polled = std::future::poll_fn(|cx| {
            assert!(s.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        });
        polled.await;
        drop(s);
        time::sleep(MS * 2).await;
    });
}

#[test]
fn interval_ticks_on_schedule() {
    rt().block_on(async {
        let start = Instant::now();
        let mut iv = time::interval(MS * 10);
        assert_eq!(iv.period(), MS * 10);
        assert_eq!(iv.missed_tick_behavior(), MissedTickBehavior::Burst);
        let first = iv.tick().await;
        assert!(first <= Instant::now());
        let mut last = first;
        for i in 1..=4u32 {
            let t = iv.tick().await;
            assert_eq!(
                t.duration_since(first),
                MS * 10 * i,
                "ticks keep the schedule"
            );
            assert!(Instant::now() >= t);
            assert!(t > last);
            last = t;
        }
        assert!(start.elapsed() >= MS * 40);
    });
}

#[test]
fn interval_at_starts_later() {
    rt().block_on(async {
        let start = Instant::now() + MS * 15;
        let mut iv = time::interval_at(start, MS * 5);
        assert_eq!(iv.tick().await, start);
        assert!(Instant::now() >= start);
        assert_eq!(iv.tick().await, start + MS * 5);
    });
}

#[test]
fn missed_ticks_burst_skip_and_delay() {
    rt().block_on(async {
        // Burst: after a stall, missed ticks come back to back on the
        // original schedule.
        let mut iv = time::interval(MS * 10);
        let t0 = iv.tick().await;
        std::thread::sleep(MS * 35); // stall the core
        let a = iv.tick().await;
        let b = iv.tick().await;
        let c = iv.tick().await;
        assert_eq!((a - t0, b - t0, c - t0), (MS * 10, MS * 20, MS * 30));

        // Delay: the next tick is a full period after the late one.
        let mut iv = time::interval(MS * 10);
        iv.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let t0 = iv.tick().await;
        std::thread::sleep(MS * 25);
        let late = iv.tick().await;
        assert_eq!(late - t0, MS * 10, "the late tick reports its schedule");
        let next = iv.tick().await;
        // Polled late at t0 + 25ms or later, so the next is 10ms after that
        // (Burst would give t0 + 20ms).
        assert!(next - t0 >= MS * 35, "{:?}", next - t0);

        // Skip: the next tick is on the original schedule, past now.
        let mut iv = time::interval(MS * 10);
        iv.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let t0 = iv.tick().await;
        std::thread::sleep(MS * 25);
        iv.tick().await;
        let next = iv.tick().await;
        let offset = next - t0;
        assert_eq!(offset.as_millis() % 10, 0, "on the grid: {offset:?}");
        assert!(offset >= MS * 30);
    });
}

#[test]
fn interval_reset() {
    rt().block_on(async {
        let mut iv = time::interval(MS * 10);
        iv.tick().await;
        let before = Instant::now();
        iv.reset();
        let t = iv.tick().await;
        assert!(t >= before + MS * 10);
        iv.reset_immediately();
        let t2 = iv.tick().await;
        assert!(t2 >= t);
        iv.reset_after(MS * 3);
        let before = Instant::now();
        iv.tick().await;
        assert!(Instant::now() >= before + MS * 3);
    });
}

#[test]
fn sleep_reset_moves_the_deadline() {
    rt().block_on(async {
        let start = Instant::now();
        let mut s = pin!(time::sleep(Duration::from_secs(3600)));
        assert!(!s.is_elapsed());
        // Register first, then pull the deadline in.
        std::future::poll_fn(|cx| {
            assert!(s.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        s.as_mut().reset(start + MS * 10);
        assert_eq!(s.deadline(), start + MS * 10);
        s.as_mut().await;
        assert!(start.elapsed() >= MS * 10);
        assert!(s.is_elapsed());
        // Reset after completion re-arms it.
        s.as_mut().reset(Instant::now() + MS * 5);
        let before = Instant::now();
        s.as_mut().await;
        assert!(before.elapsed() >= MS * 4);
    });
}

#[test]
fn reset_into_the_past_wakes_the_task() {
    rt().block_on(async {
        let sleep = Rc::new(RefCell::new(Box::pin(time::sleep(Duration::from_secs(
            3600,
        )))));
        let s = sleep.clone();
        let waiter = mtcp::spawn(async move {
            std::future::poll_fn(|cx| s.borrow_mut().as_mut().poll(cx)).await;
        });
        mtcp::task::yield_now().await;
        mtcp::task::yield_now().await;
        // The waiter is parked on the sleep; reset it to the past from here
        // without polling it: the waiter must be woken.
        sleep.borrow_mut().as_mut().reset(Instant::now() - MS * 5);
        time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("reset woke the waiter")
            .unwrap();
    });
}

#[test]
fn a_sleep_moved_to_another_core_still_fires() {
    let rt = Builder::new().cores(2).build().unwrap();
    rt.block_on(async {
        let (tx, rx) = mtcp::sync::oneshot::channel();
        // Register on core 0, then move it to core 1 and await it there.
        let start = Instant::now();
        let mut s = Box::pin(time::sleep(MS * 20));
        std::future::poll_fn(|cx| {
            assert!(s.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        mtcp::runtime::run_on(1, move || {
            mtcp::spawn(async move {
                s.await;
                tx.send(mtcp::runtime::current_core()).unwrap();
            });
        })
        .unwrap();
        assert_eq!(rx.await.unwrap(), 1);
        assert!(start.elapsed() >= MS * 20);
    });
}

#[test]
#[should_panic(expected = "mtcp::time::sleep must be called from a thread running an mtcp runtime")]
fn polling_a_sleep_off_runtime_panics() {
    let mut s = pin!(time::sleep(MS));
    let waker = std::task::Waker::noop();
    let _ = s.as_mut().poll(&mut std::task::Context::from_waker(waker));
}

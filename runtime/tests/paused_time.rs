//! The test clock: `time::pause`, `resume`, `advance`, auto-advance and
//! `#[mtcp::test(start_paused = true)]`, with tokio's semantics, and the
//! stack's timers following the paused clock.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant as StdInstant};

use mtcp::io::{AsyncReadExt, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};
use mtcp::time::{self, Instant, MissedTickBehavior};

/// Real time a paused test may take at most: far below what it simulates.
const REAL_LIMIT: Duration = Duration::from_secs(5);

mod pause_resume {
    use super::*;

    #[mtcp::test]
    async fn resume_lets_time_move_forward_instead_of_resetting_it() {
        let start = Instant::now();
        time::pause();
        time::advance(Duration::from_secs(10)).await;
        let advanced = Instant::now();
        assert!(advanced - start >= Duration::from_secs(10));
        assert!(advanced - start < Duration::from_secs(11));
        time::resume();
        assert!(advanced <= Instant::now());
        assert!(Instant::now() - advanced < Duration::from_secs(1));
    }

    #[mtcp::test]
    async fn can_pause_after_resume() {
        let start = Instant::now();
        time::pause();
        time::advance(Duration::from_secs(10)).await;
        time::resume();
        time::pause();
        time::advance(Duration::from_secs(10)).await;
        assert!(Instant::now() - start >= Duration::from_secs(20));
        assert!(Instant::now() - start < Duration::from_secs(21));
    }

    #[mtcp::test(start_paused = true)]
    async fn paused_time_stands_still() {
        let a = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        mtcp::task::yield_now().await;
        assert_eq!(Instant::now(), a);
        time::advance(Duration::from_millis(1500)).await;
        assert_eq!(Instant::now() - a, Duration::from_millis(1500));
        assert_eq!(a.elapsed(), Duration::from_millis(1500));
    }

    #[mtcp::test]
    #[should_panic(expected = "time is already frozen")]
    async fn freezing_time_while_frozen_panics() {
        time::pause();
        time::pause();
    }

    #[mtcp::test]
    #[should_panic(expected = "time is not frozen")]
    async fn advancing_time_when_time_is_not_frozen_panics() {
        time::advance(Duration::from_secs(1)).await;
    }

    #[mtcp::test]
    #[should_panic(expected = "time is not frozen")]
    async fn resuming_time_when_not_frozen_panics() {
        time::pause();
        time::resume();
        time::resume();
    }

    #[test]
    #[should_panic(expected = "must be called from a thread running an mtcp runtime")]
    fn pause_off_a_runtime_panics() {
        time::pause();
    }

    /// Each core has its own clock: pausing one leaves the others running.
    #[mtcp::test(cores = 2)]
    async fn pause_is_per_core() {
        if mtcp::runtime::current_core() == 0 {
            time::pause();
            let a = Instant::now();
            std::thread::sleep(Duration::from_millis(10));
            assert_eq!(Instant::now(), a);
        } else {
            let a = Instant::now();
            std::thread::sleep(Duration::from_millis(10));
            assert!(Instant::now() - a >= Duration::from_millis(10));
        }
    }
}

mod advance {
    use super::*;

    /// Timers reached by `advance` fire, and their tasks run, before the
    /// advancing task continues; timers not reached stay pending.
    #[mtcp::test(start_paused = true)]
    async fn fires_due_timers_before_returning() {
        let fired = Rc::new(Cell::new(0u32));
        for secs in [1, 5, 9] {
            let fired = fired.clone();
            mtcp::spawn(async move {
                time::sleep(Duration::from_secs(secs)).await;
                fired.set(fired.get() + 1);
            });
        }
        mtcp::task::yield_now().await; // the sleeps register
        time::advance(Duration::from_millis(999)).await;
        assert_eq!(fired.get(), 0);
        time::advance(Duration::from_millis(1)).await;
        assert_eq!(fired.get(), 1);
        time::advance(Duration::from_secs(6)).await;
        assert_eq!(fired.get(), 2);
        time::advance(Duration::from_secs(2)).await;
        assert_eq!(fired.get(), 3);
    }

    /// A `sleep` whose deadline `advance` passes completes at its next
    /// poll; the sleep sees the advanced time.
    #[mtcp::test(start_paused = true)]
    async fn sleep_and_interval_follow_advance() {
        let start = Instant::now();
        let mut sleep = std::pin::pin!(time::sleep(Duration::from_secs(30)));
        assert!(!sleep.is_elapsed());
        time::advance(Duration::from_secs(30)).await;
        assert!(sleep.is_elapsed());
        sleep.as_mut().await;
        assert_eq!(start.elapsed(), Duration::from_secs(30));

        let mut iv = time::interval(Duration::from_secs(10));
        iv.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let first = iv.tick().await;
        assert_eq!(first, Instant::now());
        time::advance(Duration::from_secs(10)).await;
        assert_eq!(iv.tick().await, first + Duration::from_secs(10));
        // At 35 s the tick due at 20 s comes at once; skipping the missed
        // one at 30 s, the next is at 40 s (reached by auto-advance).
        time::advance(Duration::from_secs(25)).await;
        assert_eq!(iv.tick().await, first + Duration::from_secs(20));
        assert_eq!(Instant::now() - first, Duration::from_secs(35));
        assert_eq!(iv.tick().await, first + Duration::from_secs(40));
        assert_eq!(Instant::now() - first, Duration::from_secs(40));
    }
}

mod auto_advance {
    use super::*;

    #[mtcp::test(start_paused = true)]
    async fn an_hour_of_sleep_passes_at_once() {
        let real = StdInstant::now();
        let start = Instant::now();
        time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3600));
        assert!(real.elapsed() < REAL_LIMIT, "took {:?}", real.elapsed());
    }

    /// Auto-advance goes to the earliest timer first: concurrent sleeps
    /// finish in deadline order, each at its own deadline.
    #[mtcp::test(start_paused = true)]
    async fn jumps_to_the_next_timer_in_order() {
        let start = Instant::now();
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for secs in [300u64, 7, 60, 1] {
            let order = order.clone();
            tasks.push(mtcp::spawn(async move {
                time::sleep(Duration::from_secs(secs)).await;
                order.borrow_mut().push((secs, start.elapsed()));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.borrow();
        let secs: Vec<u64> = order.iter().map(|(s, _)| *s).collect();
        assert_eq!(secs, [1, 7, 60, 300]);
        for (s, at) in order.iter() {
            assert_eq!(*at, Duration::from_secs(*s));
        }
    }

    #[mtcp::test(start_paused = true)]
    async fn timeout_elapses_at_its_deadline() {
        let real = StdInstant::now();
        let start = Instant::now();
        let never = std::future::pending::<()>();
        let r = time::timeout(Duration::from_secs(90), never).await;
        assert!(r.is_err());
        assert_eq!(start.elapsed(), Duration::from_secs(90));
        // A future that finishes first wins, however long the timeout.
        let r = time::timeout(Duration::from_secs(10), time::sleep(Duration::from_secs(9))).await;
        assert!(r.is_ok());
        assert_eq!(start.elapsed(), Duration::from_secs(99));
        assert!(real.elapsed() < REAL_LIMIT);
    }

    #[mtcp::test(start_paused = true)]
    async fn interval_ticks_on_the_virtual_clock() {
        let real = StdInstant::now();
        let mut iv = time::interval(Duration::from_secs(60));
        let first = iv.tick().await;
        for n in 1..=60u32 {
            let t = iv.tick().await;
            assert_eq!(t - first, Duration::from_secs(60) * n);
        }
        assert_eq!(first.elapsed(), Duration::from_secs(3600));
        assert!(real.elapsed() < REAL_LIMIT);
    }

    /// tokio's rule: while blocking work started from the core runs, the
    /// paused clock waits for it instead of jumping to the next timer.
    #[mtcp::test(start_paused = true)]
    async fn blocking_work_holds_auto_advance_back() {
        let start = Instant::now();
        let work = mtcp::task::spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(50));
            7
        });
        let r = time::timeout(Duration::from_secs(1), work).await;
        assert_eq!(r.expect("the timeout must not auto-advance").unwrap(), 7);
        assert!(start.elapsed() < Duration::from_secs(1));
        // Once it is done, auto-advance is back.
        time::sleep(Duration::from_secs(100)).await;
        assert!(start.elapsed() >= Duration::from_secs(100));
    }

    /// Work coming from another thread (here a `run_on` wake) is not
    /// skipped: the core only jumps when its inbox is empty too.
    #[mtcp::test(start_paused = true)]
    async fn paused_core_without_timers_waits_for_wakes() {
        let (tx, rx) = mtcp::sync::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let _ = tx.send(5);
        });
        let start = Instant::now();
        assert_eq!(rx.await.unwrap(), 5);
        assert_eq!(Instant::now(), start);
    }
}

mod stack_clock {
    use super::*;

    /// TCP over the loopback works while paused, and auto-advance does not
    /// fire retransmissions: with no loss, nothing is retransmitted even
    /// across long idle waits with data and ACKs in flight.
    #[mtcp::test(start_paused = true)]
    async fn loopback_tcp_while_paused_retransmits_nothing() {
        let real = StdInstant::now();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = mtcp::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                // A slow server: every reply waits a (virtual) second.
                time::sleep(Duration::from_secs(1)).await;
                s.write_all(&buf[..n]).await.unwrap();
            }
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        let start = Instant::now();
        let mut got = vec![0u8; 1000];
        for round in 0..20u8 {
            let data = vec![round; 1000];
            c.write_all(&data).await.unwrap();
            c.read_exact(&mut got).await.unwrap();
            assert_eq!(got, data);
        }
        assert!(start.elapsed() >= Duration::from_secs(20));
        drop(c);
        server.await.unwrap();
        let stats = mtcp::net::core_stats().unwrap();
        assert_eq!(stats.tcp.retransmits, 0, "{stats}");
        assert_eq!(stats.tcp.rto_expired, 0, "{stats}");
        assert!(real.elapsed() < REAL_LIMIT, "took {:?}", real.elapsed());
    }

    /// The stack's timers see the paused clock: TIME-WAIT (2 MSL, 60 s by
    /// default) ends when the core auto-advances past it, at once in real
    /// time, and not before.
    #[mtcp::test(start_paused = true)]
    async fn time_wait_ends_on_the_virtual_clock() {
        let real = StdInstant::now();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = mtcp::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            s.shutdown().await.unwrap();
            buf
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"bye").await.unwrap();
        c.shutdown().await.unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).await.unwrap();
        drop(c);
        assert_eq!(server.await.unwrap(), b"bye");
        // Let the last ACK go out.
        time::sleep(Duration::from_millis(1)).await;
        let closed_at = Instant::now();
        assert_eq!(mtcp::net::core_stats().unwrap().time_wait, 1);
        time::sleep(Duration::from_secs(59)).await;
        assert_eq!(mtcp::net::core_stats().unwrap().time_wait, 1);
        time::sleep(Duration::from_secs(2)).await;
        assert_eq!(mtcp::net::core_stats().unwrap().time_wait, 0);
        assert!(closed_at.elapsed() >= Duration::from_secs(61));
        assert!(real.elapsed() < REAL_LIMIT, "took {:?}", real.elapsed());
    }
}

/// A timer's waker may be anyone's: one that moves the paused clock from
/// inside `wake` (so the wheel fires again, re-entrantly) finds the wheel
/// and its buffer free, and both timers fire.
#[mtcp::test]
async fn a_timer_waker_that_advances_paused_time_finds_the_wheel_free() {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct AdvanceOnWake(AtomicUsize);
    impl Wake for AdvanceOnWake {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                let mut advance = pin!(time::advance(Duration::from_millis(5)));
                let _ = advance
                    .as_mut()
                    .poll(&mut Context::from_waker(Waker::noop()));
            }
        }
    }

    time::pause();
    let first = Arc::new(AdvanceOnWake(AtomicUsize::new(0)));
    let second = Arc::new(AdvanceOnWake(AtomicUsize::new(1)));
    let (w1, w2) = (Waker::from(first.clone()), Waker::from(second.clone()));
    let mut a = pin!(time::sleep(Duration::from_millis(10)));
    let mut b = pin!(time::sleep(Duration::from_millis(15)));
    assert!(a.as_mut().poll(&mut Context::from_waker(&w1)).is_pending());
    assert!(b.as_mut().poll(&mut Context::from_waker(&w2)).is_pending());
    let start = Instant::now();
    // Fires `a`, whose waker advances 5 ms more from inside `wake`: `b` is
    // then due and fires in the nested pass.
    time::advance(Duration::from_millis(10)).await;
    assert_eq!(Instant::now() - start, Duration::from_millis(15));
    assert_eq!(first.0.load(Ordering::SeqCst), 1);
    assert_eq!(second.0.load(Ordering::SeqCst), 2);
    let noop = &mut Context::from_waker(Waker::noop());
    assert_eq!(a.poll(noop), Poll::Ready(()));
    assert_eq!(b.poll(noop), Poll::Ready(()));
}

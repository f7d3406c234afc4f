//! Runtime handles: `Runtime::handle`, `Handle::current` / `try_current`,
//! `Handle::spawn` and `Handle::block_on` from plain threads, and the
//! runtime's shutdown calls.

use std::time::Duration;

use mtcp::runtime::{Builder, Handle, RunOnError, Runtime};

fn message(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| p.downcast_ref::<&str>().copied())
        .unwrap_or_default()
}

#[test]
fn handle_current_off_a_runtime_panics_like_tokio() {
    let p = std::panic::catch_unwind(Handle::current).unwrap_err();
    let msg = message(&*p);
    assert_eq!(
        msg,
        "there is no reactor running, must be called from the context of an mtcp runtime"
    );
    let e = Handle::try_current().unwrap_err();
    assert_eq!(e.to_string(), msg);
}

#[test]
fn runtime_handle_between_runs_spawns_for_the_next_and_blocks_on_itself() {
    let rt = Builder::new().cores(2).build().unwrap();
    let handle = rt.handle().clone();
    assert_eq!(handle.core_count(), 2);
    assert_eq!(handle.run_on(0, || {}), Err(RunOnError::Stopped));
    assert_eq!(handle.run_on(2, || {}), Err(RunOnError::NoSuchCore));
    // Queued until a run starts, as Runtime::spawn.
    let queued = handle.spawn(async { mtcp::runtime::current_core() + 40 });
    // Between runs, block_on runs the runtime on this thread.
    assert_eq!(rt.block_on(queued).unwrap(), 40);
    let v = handle.block_on(async { mtcp::runtime::core_count() + 40 });
    assert_eq!(v, 42);
    let v = std::thread::spawn(move || handle.block_on(async { 7 }))
        .join()
        .unwrap();
    assert_eq!(v, 7);
}

#[test]
fn handle_block_on_from_a_plain_thread_runs_on_core_0_during_a_run() {
    let rt = Builder::new().cores(2).build().unwrap();
    let handle = rt.handle().clone();
    let out = rt.block_on(async move {
        let current = Handle::current();
        let t = std::thread::spawn(move || {
            let a = handle.block_on(async {
                mtcp::time::sleep(Duration::from_millis(5)).await;
                (
                    mtcp::runtime::current_core(),
                    std::thread::current().name().map(str::to_owned),
                )
            });
            let b = current.block_on(async { mtcp::runtime::core_count() });
            (a, b)
        });
        while !t.is_finished() {
            mtcp::time::sleep(Duration::from_millis(1)).await;
        }
        t.join().unwrap()
    });
    let ((core, _thread), count) = out;
    assert_eq!(core, 0);
    assert_eq!(count, 2);
}

#[test]
#[should_panic(expected = "Cannot start a runtime from within a runtime")]
fn handle_block_on_on_a_core_panics() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        Handle::current().block_on(async {});
    });
}

#[test]
fn handle_block_on_after_the_run_ended_panics_with_a_message() {
    let rt = Builder::new().build().unwrap();
    let kept = rt.block_on(async { Handle::current() });
    let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        kept.block_on(async { 1 })
    }))
    .unwrap_err();
    let msg = message(&*p);
    assert!(msg.contains("the runtime's run ended"), "{msg:?}");
}

#[test]
fn handle_spawn_from_a_plain_thread_during_a_run() {
    let rt = Builder::new().cores(2).build().unwrap();
    let handle = rt.handle().clone();
    let v = rt.block_on(async move {
        let (tx, rx) = mtcp::sync::oneshot::channel();
        std::thread::spawn(move || {
            let j = handle.spawn(async { mtcp::runtime::current_core() + 10 });
            // The handle is awaited on another executor.
            tx.send(mtcp::runtime::block_on(j).unwrap()).ok();
        });
        rx.await.unwrap()
    });
    assert_eq!(v, 10);
}

#[test]
fn shutdown_timeout_and_background_return_at_once() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {});
    let start = std::time::Instant::now();
    rt.shutdown_timeout(Duration::from_secs(10));
    Runtime::new().unwrap().shutdown_background();
    assert!(start.elapsed() < Duration::from_secs(1));
}

// tokio's `start_paused` option: the body starts with time paused, on each
// core, and a long sleep completes as soon as the core is idle.
use std::time::Duration;

#[mtcp::test(start_paused = true)]
async fn paused() {
    let start = mtcp::time::Instant::now();
    mtcp::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(3600));
}

#[mtcp::test(flavor = "current_thread", start_paused = true)]
async fn paused_current_thread() -> Result<(), String> {
    mtcp::time::advance(Duration::from_secs(1)).await;
    Ok(())
}

#[mtcp::test(cores = 2, start_paused = true)]
async fn paused_on_each_core() {
    mtcp::time::resume();
}

#[mtcp::test(start_paused = false)]
async fn not_paused() {
    mtcp::time::pause();
}

#[mtcp::main(start_paused = true)]
async fn main() {
    mtcp::time::resume();
}

use std::sync::atomic::{AtomicUsize, Ordering};

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[mtcp::main(cores = 2)]
async fn main() {
    assert_eq!(mtcp::runtime::core_count(), 2);
    RUNS.fetch_add(1, Ordering::SeqCst);
    // Wait until both cores ran the body: each core runs it once.
    while RUNS.load(Ordering::SeqCst) < 2 {
        mtcp::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

// A tokio program ported by renaming keeps its options.
#[mtcp::main(flavor = "multi_thread", worker_threads = 4, crate = "mtcp")]
async fn main() {
    assert_eq!(mtcp::runtime::core_count(), 1);
}

#[mtcp::test(flavor = "current_thread")]
async fn a_test() {}

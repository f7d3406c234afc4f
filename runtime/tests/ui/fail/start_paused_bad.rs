#[mtcp::test(start_paused = "yes")]
async fn t() {}

#[mtcp::test(flavor = "multi_thread", start_paused = true)]
async fn u() {}

fn main() {}

#[mtcp::main(cores = "four")]
async fn main() {}

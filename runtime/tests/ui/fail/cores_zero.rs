#[mtcp::main(cores = 0)]
async fn main() {}

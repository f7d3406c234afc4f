#[mtcp::main(cores = 2, cores = 3)]
async fn main() {}

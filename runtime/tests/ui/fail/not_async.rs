#[mtcp::main]
fn main() {}

#[mtcp::main]
async fn run() -> u32 {
    7
}

fn main() {
    assert_eq!(run(), 7);
}

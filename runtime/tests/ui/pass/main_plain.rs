#[mtcp::main]
async fn main() {
    let h = mtcp::spawn(async { 1 });
    assert_eq!(h.await.unwrap(), 1);
}

// The option error is reported, and the body is still type-checked.
#[mtcp::main(bogus = 1)]
async fn main() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "1".parse()?;
    let s: String = n;
    Ok(())
}

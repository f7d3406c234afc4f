use std::error::Error;

#[mtcp::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let n: u32 = "42".parse()?;
    if n != 42 {
        return Err("wrong".into());
    }
    Ok(())
}

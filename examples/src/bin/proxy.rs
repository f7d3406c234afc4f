//! tokio's TCP proxy, ported to mtcp by renaming `tokio` to `mtcp`.
//!
//! Arguments: the listen address (default `0.0.0.0:8081`) and the server
//! address (default `127.0.0.1:8080`). Every accepted connection is relayed
//! to the server in both directions, half-closes included.

use mtcp::io::{self, AsyncWriteExt};
use mtcp::net::{TcpListener, TcpStream};

use std::env;
use std::error::Error;

#[mtcp::main]
async fn main() -> Result<(), Box<dyn Error>> {
    examples::init_logger();
    let listen_addr = env::args()
        .nth(1)
        .unwrap_or_else(|| "0.0.0.0:8081".to_string());
    let server_addr = env::args()
        .nth(2)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());

    let listener = TcpListener::bind(&listen_addr).await?;
    eprintln!("listening on {listen_addr}; proxying to {server_addr}");

    while let Ok((inbound, _)) = listener.accept().await {
        let server_addr = server_addr.clone();
        mtcp::spawn(async move {
            if let Err(e) = transfer(inbound, server_addr).await {
                eprintln!("failed to transfer; error={e}");
            }
        });
    }

    Ok(())
}

async fn transfer(mut inbound: TcpStream, proxy_addr: String) -> Result<(), Box<dyn Error>> {
    let mut outbound = TcpStream::connect(proxy_addr).await?;

    let (mut ri, mut wi) = inbound.split();
    let (mut ro, mut wo) = outbound.split();

    let client_to_server = async {
        io::copy(&mut ri, &mut wo).await?;
        wo.shutdown().await
    };

    let server_to_client = async {
        io::copy(&mut ro, &mut wi).await?;
        wi.shutdown().await
    };

    mtcp::try_join!(client_to_server, server_to_client)?;

    Ok(())
}

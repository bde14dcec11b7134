//! Run against the mock: `cargo run -p connmix-mock`, then `cargo run -p connmix-client --example http_publish -- 127.0.0.1:6789 room_101 "hello, world"`.
//!
//! A pusher that needs no WebSocket: publishes one message to a channel over a node's HTTP
//! API, as a web handler would, and prints how many connections received it.

use connmix_client::PushClient;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let node = args.next().unwrap_or_else(|| "127.0.0.1:6789".into());
    let channel = args.next().unwrap_or_else(|| "broadcast".into());
    let text = args.next().unwrap_or_else(|| "hello".into());
    let mut builder = PushClient::builder(node);
    // Credentials come from the environment, never from the command line (shell history).
    if let (Ok(user), Ok(password)) = (
        std::env::var("CONNMIX_API_USER"),
        std::env::var("CONNMIX_API_PASSWORD"),
    ) {
        builder = builder.credentials(user, password);
    }
    let push = builder.build()?;
    let sent = push.publish(&channel, text).await?;
    println!(
        "{channel}: delivered to {}, failed for {}",
        sent.delivered, sent.failed
    );
    Ok(())
}

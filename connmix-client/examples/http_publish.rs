//! Run against the mock: `cargo run -p connmix-mock`, then `cargo run -p connmix-client --example http_publish -- 127.0.0.1:6789 room_101 "hello, world"`.
//!
//! A pusher that needs no WebSocket: publishes one message to a channel over a node's HTTP
//! API, as a web handler would, and prints how many connections received it.
//!
//! What it publishes is a chat delivery, the frame the chat consumer sends for a room message:
//! `{"event":"subscribe","channel":<channel>,"data":"uid:0,message:<text>","uid":0,
//! "from":"http_publish","text":<text>}`. The chat page (`http://127.0.0.1:6790/` on the mock)
//! shows it in that channel, from `http_publish`, to every page subscribed to it (join the
//! room, or use `broadcast`, the channel every logged-in page is on). The engine delivers the
//! data as given: a plain text such as `hello` would reach the same pages as a frame they
//! cannot read.

use connmix_client::protocol::chat::{ChatReply, Delivery};
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
    // uid 0 is no user: the page shows the `from` name instead.
    let delivery = Delivery::new(&channel, 0, Some("http_publish"), &text, None);
    let sent = push
        .publish(&channel, ChatReply::Delivery(delivery).to_json())
        .await?;
    println!(
        "{channel}: delivered to {}, failed for {}",
        sent.delivered, sent.failed
    );
    Ok(())
}

//! Run against the mock: `cargo run -p connmix-mock -- --nodes 2`, then `cargo run -p connmix-client --example echo_consumer -- 127.0.0.1:6787`, and send text to `ws://127.0.0.1:6790/chat` from any WebSocket client.
//!
//! A minimal consumer: every text frame a browser sends comes back to it, through the engine.

use std::time::Duration;

use connmix_client::protocol::script::ScriptEvent;
use connmix_client::Client;
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let center = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6787".into());
    let client = Client::builder(center).connect().await?;
    let mut events = client.consume(&["chat"]).await?;
    println!("echoing; Ctrl-C to stop");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = events.next() => {
                let Some(event) = event else { break };
                match ScriptEvent::decode(event.data.get()) {
                    Ok(ScriptEvent::Message { frame, .. }) => {
                        if let Err(error) = client.send(event.client, frame.data).await {
                            eprintln!("echo to {} failed: {error}", event.client);
                        }
                    }
                    Ok(_) => {}
                    Err(error) => eprintln!("not a script event: {error}"),
                }
            }
        }
    }
    client.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

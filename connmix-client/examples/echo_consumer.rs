//! Run against the mock: `cargo run -p connmix-mock -- --nodes 2`, then `cargo run -p connmix-client --example echo_consumer -- 127.0.0.1:6787`, and send text to `ws://127.0.0.1:6790/chat` from any WebSocket client.
//!
//! A minimal consumer: every JSON text frame a browser sends comes back to it, through the
//! engine. Handshakes and closes are only printed; a failed answer (the browser left) is logged
//! and the loop goes on.

use std::time::Duration;

use connmix_client::protocol::script::ScriptEvent;
use connmix_client::{Client, ClientErrorKind, ErrorCode, EventKind};
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
                match event.kind() {
                    EventKind::Handshake => println!("{} opened", event.client),
                    EventKind::Close => println!("{} closed", event.client),
                    EventKind::Message => match ScriptEvent::decode(event.data.get()) {
                        Ok(ScriptEvent::Message { frame, .. }) => {
                            match client.send_to(&event.conn(), frame.data).await {
                                Ok(()) => {}
                                Err(error)
                                    if error.kind()
                                        == ClientErrorKind::Engine(ErrorCode::SendFailed) =>
                                {
                                    println!("{} left before the echo: {error}", event.client)
                                }
                                Err(error) => eprintln!("echo to {} failed: {error}", event.client),
                            }
                        }
                        Ok(_) => {}
                        Err(error) => eprintln!("not a script event: {error}"),
                    },
                    _ => {}
                }
            }
        }
    }
    client.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

//! Run against the mock: `cargo run -p connmix-mock -- --nodes 2`, then `cargo run -p connmix-client --example watch_events -- 127.0.0.1:6787`; stop and restart the mock to watch reconnects.
//!
//! Prints every connection event (nodes added and removed, connects, disconnects, reconnect
//! attempts) and the number of connected nodes after each change, until Ctrl-C.

use std::time::Duration;

use connmix_client::Client;
use tokio::sync::broadcast::error::RecvError;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let center = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6787".into());
    let client = Client::builder(center)
        .resync_interval(Duration::from_secs(5))
        .connect()
        .await?;
    let mut events = client.events();
    let mut state = client.state();
    println!("nodes: {:?}", client.nodes());
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = events.recv() => match event {
                Ok(event) => println!("{event:?}"),
                Err(RecvError::Lagged(missed)) => println!("(missed {missed} events)"),
                Err(RecvError::Closed) => break,
            },
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                let connected = state.borrow_and_update().connected();
                println!("connected nodes: {connected}");
            }
        }
    }
    client.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

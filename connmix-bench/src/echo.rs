//! The ceiling: a consumer with no logic that answers every browser frame with one `mesh.send`
//! of the frame itself. Whatever it reaches is what the engine link allows a consumer built on
//! `connmix-client`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use connmix_client::protocol::script::ScriptEvent;
use connmix_client::Client;
use tokio::sync::Semaphore;

/// Sends waiting for their results at once; beyond it, reading pauses.
const IN_FLIGHT: usize = 1024;

/// Echoes frames from `queue` until SIGTERM or Ctrl-C.
pub async fn run(host: &str, queue: &str) -> anyhow::Result<()> {
    let client = Client::builder(host)
        .connect()
        .await
        .with_context(|| format!("cannot reach the engine at {host}"))?;
    client
        .wait_connected(Duration::from_secs(10))
        .await
        .with_context(|| format!("cannot reach the engine at {host}"))?;
    let mut events = client.consume(&[queue]).await?;
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let event = tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            event = events.recv() => event,
        };
        let Some(event) = event else { break };
        let frame = match ScriptEvent::decode(event.data.get()) {
            Ok(ScriptEvent::Message { frame, .. }) => frame,
            Ok(_) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "not a script event");
                continue;
            }
        };
        let permit = Arc::clone(&limit).acquire_owned().await?;
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(err) = client.send(event.client, frame.data).await {
                tracing::warn!(client_id = %event.client, error = %err, "echo failed");
            }
            drop(permit);
        });
    }
    client.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

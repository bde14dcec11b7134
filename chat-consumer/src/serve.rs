//! The consumer's main loop: take events from the engine, hand them to workers, and on
//! cancellation drain.
//!
//! The engine's memory queue is at-most-once: an event the consumer has taken is lost if the
//! consumer drops it. So shutdown first stops the engine sending (`queue.unpop`), then handles
//! every event already received, within the drain deadline, and only then closes the client.

use std::sync::Arc;
use std::time::Duration;

use connmix_client::{Client, EventStream, QueueEvent};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::chat::Chat;
use crate::engine::Conn;
use crate::error::{Error, ErrorKind, Result};
use crate::workers::Workers;

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Cancelled and every received event was handled.
    Drained,
    /// Cancelled, but the deadline passed with events still in hand.
    DeadlinePassed,
}

/// Consumes `queue` through `client` until `cancel`, answering with `chat`.
pub async fn serve(
    chat: Arc<Chat<Client>>,
    queue: &str,
    cancel: CancellationToken,
) -> Result<Stopped> {
    let client = chat.engine().clone();
    let limits = chat.limits().clone();
    let mut events = client.consume(&[queue]).await.map_err(|err| {
        Error::new(ErrorKind::Engine, format!("cannot consume queue `{queue}`")).with_source(err)
    })?;
    tracing::info!(queue, workers = limits.workers, "consuming");
    let workers = Workers::spawn(Arc::clone(&chat), limits.workers, limits.worker_queue);
    // Only the wait for the next event is cancelled, never a submit in progress: an event
    // already received must reach a worker.
    let ended = loop {
        let event = tokio::select! {
            () = cancel.cancelled() => break false,
            event = events.recv() => event,
        };
        match event {
            Some(event) => submit(&workers, event).await,
            None => break true,
        }
    };
    let deadline = Instant::now() + limits.drain_timeout;
    if ended {
        // Still drain what was taken: those events exist nowhere else.
        workers.drain(limits.drain_timeout).await;
        client.shutdown(limits.drain_timeout).await;
        return Err(Error::new(
            ErrorKind::Engine,
            "the engine client stopped delivering events",
        ));
    }
    tracing::info!("stopping: no new events, finishing those received");
    if let Err(err) = client.unpop().await {
        tracing::warn!(error = %err, "cannot stop consuming; draining until the deadline");
    }
    let pumped = tokio::time::timeout_at(deadline, pump(&mut events, &workers)).await;
    let remaining = deadline.saturating_duration_since(Instant::now());
    let drained = workers.drain(remaining).await && pumped.is_ok();
    client
        .shutdown(deadline.saturating_duration_since(Instant::now()))
        .await;
    if drained {
        tracing::info!("drained");
        Ok(Stopped::Drained)
    } else {
        tracing::warn!("drain deadline passed; some events were not handled");
        Ok(Stopped::DeadlinePassed)
    }
}

/// Waits until the client has connected to at least one engine node.
///
/// The client retries an unreachable center in the background forever; at start an operator
/// wants to hear about a wrong `--host` instead.
pub async fn wait_for_engine(client: &Client, timeout: Duration) -> Result<()> {
    let mut state = client.state();
    let connected = tokio::time::timeout(timeout, state.wait_for(|s| s.connected() > 0)).await;
    match connected {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(Error::new(ErrorKind::Engine, "the engine client closed")),
        Err(_) => Err(Error::new(
            ErrorKind::Engine,
            format!("no engine node connected within {timeout:?}"),
        )),
    }
}

/// Hands every event to the workers until the stream ends.
async fn pump(events: &mut EventStream, workers: &Workers) {
    while let Some(event) = events.recv().await {
        submit(workers, event).await;
    }
}

async fn submit(workers: &Workers, event: QueueEvent) {
    let conn = Conn::new(event.node, event.client);
    workers.submit(conn, event.data).await;
}

//! The engine's memory queue: what `queue.pop` delivers, at most once.

use std::time::Duration;

use connmix_client::{Client, EventStream};
use tokio_util::sync::CancellationToken;

use super::{Delivery, Source};
use crate::engine::Conn;
use crate::error::{Error, ErrorKind, Result};

/// Consumes one queue of the engine through the chat's own client.
///
/// An event taken is lost if the consumer drops it, so [`stop`](Source::stop) first tells the
/// engine to stop sending (`queue.unpop`), and [`rest`](Source::rest) yields what was already
/// on the way.
#[derive(Debug)]
pub struct EngineSource {
    client: Client,
    queue: String,
    events: EventStream,
}

impl EngineSource {
    /// Starts consuming `queue` on every node of `client`.
    pub async fn start(client: &Client, queue: &str) -> Result<Self> {
        let events = client.consume(&[queue]).await.map_err(|err| {
            Error::new(ErrorKind::Engine, format!("cannot consume queue `{queue}`"))
                .with_source(err)
        })?;
        Ok(Self {
            client: client.clone(),
            queue: queue.to_owned(),
            events,
        })
    }

    async fn recv(&mut self) -> Option<Delivery> {
        let event = self.events.recv().await?;
        Some(Delivery {
            conn: Conn::new(event.node, event.client),
            data: event.data,
            receipt: None,
        })
    }
}

impl Source for EngineSource {
    async fn next(&mut self, cancel: &CancellationToken) -> Option<Delivery> {
        // The event stream's `recv` is cancel-safe: nothing is lost by abandoning it.
        tokio::select! {
            () = cancel.cancelled() => None,
            delivery = self.recv() => delivery,
        }
    }

    async fn stop(&mut self) {
        if let Err(err) = self.client.unpop().await {
            tracing::warn!(error = %err, "cannot stop consuming; draining until the deadline");
        }
    }

    async fn rest(&mut self) -> Option<Delivery> {
        self.recv().await
    }

    async fn finish(self, _deadline: Duration) {}

    fn describe(&self) -> String {
        format!("engine queue {}", self.queue)
    }
}

//! A synthetic producer: virtual browser connections and queue pushes without sockets, so
//! benchmarks measure the consumer, not a browser simulator.

use std::sync::Arc;

use connmix_protocol::{ClientId, ConnFunc, Payload, RawJson};
use serde_json::json;
use tokio::sync::mpsc;

use crate::cluster::Cluster;
use crate::counters::bump;
use crate::error::QueueFull;
use crate::node::NodeShared;
use crate::queue::QueueItem;

/// Pushes onto one node's memory queue as that node's script would. A cheap `Clone` handle.
///
/// It acts on the node's current run: after a kill it does nothing until a restart.
#[derive(Debug, Clone)]
pub struct Producer {
    cluster: Arc<Cluster>,
    node: Arc<NodeShared>,
}

impl Producer {
    pub(crate) fn new(cluster: Arc<Cluster>, node: Arc<NodeShared>) -> Self {
        Self { cluster, node }
    }

    /// Creates a virtual browser connection on the node, with the context value `auth_key`
    /// set to `uid` when given. It can be subscribed and sent to like a real one; what it
    /// receives is counted in [`Counters::frames_out`](crate::Counters::frames_out).
    pub fn register_client(&self, uid: Option<u64>) -> ClientId {
        let Some(runtime) = self.node.runtime() else {
            // A stopped node hands out an id nobody can reach, as a dead node's would be.
            return self.node.next_client_id();
        };
        let client = runtime.register(None, &self.cluster.counters);
        if let Some(uid) = uid {
            client.set_context_value(
                self.cluster.config.auth_key.clone(),
                json!(uid),
                &self.cluster.config.auth_key,
            );
        }
        client.id
    }

    /// Captures what a virtual connection receives from now on; `None` for an unknown client.
    pub fn receiver(&self, client: ClientId) -> Option<mpsc::Receiver<Payload>> {
        Some(self.node.runtime()?.client(client)?.capture())
    }

    /// Subscribes a virtual connection to `channels`, as a consumer's `subscribe` call would;
    /// false for an unknown client.
    pub fn subscribe(&self, client: ClientId, channels: Vec<String>) -> bool {
        let Some(runtime) = self.node.runtime() else {
            return false;
        };
        runtime
            .conn_call(
                client,
                ConnFunc::Subscribe { channels },
                &self.cluster.config.auth_key,
            )
            .is_ok()
    }

    /// Closes a virtual connection; false when it was not open.
    pub fn unregister_client(&self, client: ClientId) -> bool {
        self.node
            .runtime()
            .is_some_and(|runtime| runtime.unregister(client, &self.cluster.counters))
    }

    /// Pushes `value` onto `topic` as coming from `client`, failing when the topic is full
    /// (or the node is down).
    ///
    /// A [`RawJson`] is queued as it is; a `Value` is serialized first.
    pub fn push(
        &self,
        topic: &str,
        client: ClientId,
        value: impl Into<RawJson>,
    ) -> Result<(), QueueFull> {
        let runtime = self.node.runtime().ok_or(QueueFull)?;
        let pushed = runtime.queues.push(
            topic,
            QueueItem {
                client,
                data: value.into(),
            },
        );
        match pushed {
            Ok(()) => bump(&self.cluster.counters.queued),
            Err(_) => bump(&self.cluster.counters.rejected),
        }
        pushed
    }

    /// Pushes `value`, waiting for room in the topic; false when the node is down.
    pub async fn push_wait(
        &self,
        topic: &str,
        client: ClientId,
        value: impl Into<RawJson>,
    ) -> bool {
        let Some(runtime) = self.node.runtime() else {
            return false;
        };
        let item = QueueItem {
            client,
            data: value.into(),
        };
        let pushed = tokio::select! {
            _ = runtime.stop.cancelled() => false,
            pushed = runtime.queues.push_wait(topic, item) => pushed,
        };
        if pushed {
            bump(&self.cluster.counters.queued);
        }
        pushed
    }
}

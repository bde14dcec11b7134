//! State shared by every node of one mock engine: the node list, mesh routing, totals.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

use connmix_protocol::{CallResult, ClientId, EngineError, ErrorCode, NodeId, Payload};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::MockConfig;
use crate::counters::{bump, LiveCounters};
use crate::node::NodeShared;
use crate::sync::{read, write};

/// The cluster: what the center lists and what the mesh routes over.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) config: MockConfig,
    pub(crate) counters: LiveCounters,
    /// Listed nodes, killed ones included.
    nodes: RwLock<Vec<Arc<NodeShared>>>,
    /// Consumer connections per topic over all nodes.
    consumers: watch::Sender<HashMap<String, usize>>,
    pub(crate) next_index: AtomicUsize,
    pub(crate) stop: CancellationToken,
    pub(crate) tracker: TaskTracker,
}

impl Cluster {
    pub(crate) fn new(config: MockConfig) -> Self {
        Self {
            config,
            counters: LiveCounters::default(),
            nodes: RwLock::new(Vec::new()),
            consumers: watch::Sender::new(HashMap::new()),
            next_index: AtomicUsize::new(0),
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    pub(crate) fn nodes(&self) -> Vec<Arc<NodeShared>> {
        read(&self.nodes).clone()
    }

    pub(crate) fn add(&self, node: Arc<NodeShared>) {
        write(&self.nodes).push(node);
    }

    pub(crate) fn remove(&self, id: &NodeId) -> Option<Arc<NodeShared>> {
        let mut nodes = write(&self.nodes);
        let at = nodes.iter().position(|n| &n.addrs.id == id)?;
        Some(nodes.remove(at))
    }

    pub(crate) fn find(&self, id: &NodeId) -> Option<Arc<NodeShared>> {
        self.nodes().into_iter().find(|n| &n.addrs.id == id)
    }

    fn by_index(&self, index: usize) -> Option<Arc<NodeShared>> {
        read(&self.nodes).iter().find(|n| n.index == index).cloned()
    }

    /// `mesh.send`: routes by the node index inside the client id.
    pub(crate) fn send(&self, client: ClientId, data: Payload) -> Result<CallResult, EngineError> {
        let target = NodeShared::index_of(client)
            .and_then(|i| self.by_index(i))
            .and_then(|node| node.runtime())
            .and_then(|runtime| runtime.client(client));
        let Some(target) = target else {
            return Err(EngineError::new(
                ErrorCode::SendFailed,
                format!("client {client} is not connected"),
            ));
        };
        if !target.deliver(data) {
            return Err(EngineError::new(
                ErrorCode::SendFailed,
                format!("client {client} cannot take more data"),
            ));
        }
        bump(&self.counters.sent);
        self.counters
            .frames_out
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(CallResult::ok())
    }

    /// `mesh.publish`: every subscriber on every running node.
    pub(crate) fn publish(&self, channel: &str, data: Payload) -> CallResult {
        let (delivered, failed) = self
            .nodes()
            .iter()
            .filter_map(|node| node.runtime())
            .map(|runtime| runtime.publish_local(channel, &data))
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        bump(&self.counters.published);
        self.counters
            .frames_out
            .fetch_add(delivered, std::sync::atomic::Ordering::Relaxed);
        CallResult::counts(delivered, failed)
    }

    /// Counts a consumer of `topic` until the guard drops.
    pub(crate) fn consumer_guard(self: &Arc<Self>, topic: &str) -> ConsumerGuard {
        self.consumers
            .send_modify(|m| *m.entry(topic.to_owned()).or_default() += 1);
        ConsumerGuard {
            cluster: self.clone(),
            topic: topic.to_owned(),
        }
    }

    pub(crate) async fn wait_for_consumers(&self, topic: &str, n: usize) {
        let mut rx = self.consumers.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = rx
            .wait_for(|m| m.get(topic).copied().unwrap_or(0) >= n)
            .await;
    }
}

/// Keeps one consumer counted in [`Cluster::wait_for_consumers`].
#[derive(Debug)]
pub(crate) struct ConsumerGuard {
    cluster: Arc<Cluster>,
    topic: String,
}

impl Drop for ConsumerGuard {
    fn drop(&mut self) {
        self.cluster.consumers.send_modify(|m| {
            if let Some(n) = m.get_mut(&self.topic) {
                *n = n.saturating_sub(1);
            }
        });
    }
}

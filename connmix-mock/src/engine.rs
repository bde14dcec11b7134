//! [`MockEngine`]: the handle that starts, inspects, breaks and stops a mock engine.

use std::net::SocketAddr;
use std::sync::Arc;

use connmix_protocol::NodeId;
use tokio_util::sync::DropGuard;

use crate::cluster::Cluster;
use crate::config::MockConfig;
use crate::counters::Counters;
use crate::error::MockError;
use crate::node::NodeAddrs;
use crate::producer::Producer;
use crate::{admin, center, lua, server};

/// A running mock engine: a center and its nodes. A cheap `Clone` handle; dropping the last
/// clone stops the engine (without waiting, unlike [`shutdown`](Self::shutdown)).
#[derive(Debug, Clone)]
pub struct MockEngine {
    cluster: Arc<Cluster>,
    center_addr: SocketAddr,
    _stop_on_drop: Arc<DropGuard>,
}

impl MockEngine {
    /// Binds the center and `config.nodes` nodes and serves them in the background.
    pub async fn start(config: MockConfig) -> Result<MockEngine, MockError> {
        if config.topic_size == 0 {
            return Err(MockError::Config("topic_size must be at least 1".into()));
        }
        if !config.chat_path.starts_with('/') {
            return Err(MockError::Config("chat_path must start with `/`".into()));
        }
        if let Some(script) = &config.script {
            // A syntax error stops the start here, naming file and line.
            lua::check_syntax(script)?;
        }
        let center_listener =
            server::bind(SocketAddr::new(config.bind, config.center_port)).await?;
        let center_addr = center_listener
            .local_addr()
            .map_err(|source| MockError::Bind {
                addr: SocketAddr::new(config.bind, config.center_port),
                source,
            })?;
        let nodes = config.nodes;
        let cluster = Arc::new(Cluster::new(config));
        let engine = MockEngine {
            cluster: cluster.clone(),
            center_addr,
            _stop_on_drop: Arc::new(cluster.stop.clone().drop_guard()),
        };
        for _ in 0..nodes {
            if let Err(err) = engine.add_node().await {
                engine.clone().shutdown().await;
                return Err(err);
            }
        }
        server::serve(
            &cluster.tracker,
            center_listener,
            center::router(cluster.clone()),
            cluster.stop.clone(),
        );
        tracing::info!(center = %center_addr, nodes, "mock engine started");
        Ok(engine)
    }

    /// The center's address.
    pub fn center_addr(&self) -> SocketAddr {
        self.center_addr
    }

    /// The center as `host:port`, what a consumer is given as `--host`.
    pub fn center_host(&self) -> String {
        self.center_addr.to_string()
    }

    /// Every listed node, killed ones included, in the order they were added.
    pub fn nodes(&self) -> Vec<NodeAddrs> {
        self.cluster
            .nodes()
            .iter()
            .map(|n| n.addrs.clone())
            .collect()
    }

    /// The listed node at a position of [`nodes`](Self::nodes).
    pub fn node(&self, index: usize) -> Option<NodeAddrs> {
        self.cluster.nodes().get(index).map(|n| n.addrs.clone())
    }

    /// Starts a new node and lists it on the center.
    pub async fn add_node(&self) -> Result<NodeAddrs, MockError> {
        admin::add_node(&self.cluster).await
    }

    /// Unlists a node from the center and stops it; false when no node has that id.
    pub async fn remove_node(&self, id: &NodeId) -> bool {
        admin::remove_node(&self.cluster, id).await
    }

    /// Closes a node's listeners and drops every connection and queued message; the center
    /// still lists it, as it would a crashed node.
    pub async fn kill_node(&self, id: &NodeId) {
        admin::kill_node(&self.cluster, id).await;
    }

    /// Starts a killed node again with the same id and ports, and empty queues. A running
    /// node is killed first.
    pub async fn restart_node(&self, id: &NodeId) -> Result<(), MockError> {
        admin::restart_node(&self.cluster, id).await
    }

    /// Closes every API WebSocket of a node; the node keeps running.
    pub fn drop_consumers(&self, id: &NodeId) {
        if let Some(runtime) = self.cluster.find(id).and_then(|n| n.runtime()) {
            runtime.drop_consumers();
        }
    }

    /// Makes a node's API connections half-open (`on`): sockets stay open but the node reads
    /// and answers nothing, pongs and events included. `false` resumes them.
    pub fn set_unresponsive(&self, id: &NodeId, on: bool) {
        if let Some(node) = self.cluster.find(id) {
            node.unresponsive.send_replace(on);
        }
    }

    /// The totals so far.
    pub fn counters(&self) -> Counters {
        self.cluster.counters.snapshot()
    }

    /// Resolves once at least `n` consumer connections (over all nodes) consume `topic`.
    pub async fn wait_for_consumers(&self, topic: &str, n: usize) {
        self.cluster.wait_for_consumers(topic, n).await;
    }

    /// A synthetic producer on a node, for benchmarks; `None` when no node has that id.
    pub fn producer(&self, id: &NodeId) -> Option<Producer> {
        let node = self.cluster.find(id)?;
        Some(Producer::new(self.cluster.clone(), node))
    }

    /// Stops every node and the center and waits for their tasks.
    pub async fn shutdown(self) {
        self.cluster.stop.cancel();
        for node in self.cluster.nodes() {
            server::kill(&node).await;
        }
        self.cluster.tracker.close();
        self.cluster.tracker.wait().await;
        tracing::info!("mock engine stopped");
    }
}

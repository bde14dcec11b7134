//! One engine node: its fixed identity and the state of its current run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use connmix_protocol::{CallResult, ClientId, ConnFunc, EngineError, ErrorCode, NodeId, Payload};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::ClientState;
use crate::counters::{bump, drop_one, LiveCounters};
use crate::queue::Queues;
use crate::sync::{lock, read, write};

/// Where one node listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddrs {
    /// The node's id, as the center lists it.
    pub id: NodeId,
    /// Its API server (`/ws/v1` and the HTTP push API).
    pub api_addr: SocketAddr,
    /// Its browser-facing chat WebSocket server.
    pub chat_addr: SocketAddr,
}

/// The part of a node that outlives kill and restart: id, addresses, switches.
#[derive(Debug)]
pub(crate) struct NodeShared {
    pub(crate) addrs: NodeAddrs,
    pub(crate) index: usize,
    pub(crate) unresponsive: watch::Sender<bool>,
    next_client: AtomicU64,
    runtime: RwLock<Option<Arc<Runtime>>>,
}

/// Client ids carry `index + 1` in their top byte, so any node can route a send by id alone,
/// and every id exceeds 2^53 as the engine's snowflake ids do.
const NODE_SHIFT: u32 = 56;

impl NodeShared {
    pub(crate) fn new(addrs: NodeAddrs, index: usize) -> Self {
        Self {
            addrs,
            index,
            unresponsive: watch::Sender::new(false),
            next_client: AtomicU64::new(1),
            runtime: RwLock::new(None),
        }
    }

    pub(crate) fn next_client_id(&self) -> ClientId {
        let n = self.next_client.fetch_add(1, Ordering::Relaxed);
        ClientId(((self.index as u64 + 1) << NODE_SHIFT) | n)
    }

    /// The node index a client id was issued by.
    pub(crate) fn index_of(client: ClientId) -> Option<usize> {
        usize::try_from(client.get() >> NODE_SHIFT)
            .ok()?
            .checked_sub(1)
    }

    pub(crate) fn runtime(&self) -> Option<Arc<Runtime>> {
        read(&self.runtime).clone()
    }

    pub(crate) fn set_runtime(&self, runtime: Option<Arc<Runtime>>) -> Option<Arc<Runtime>> {
        std::mem::replace(&mut *write(&self.runtime), runtime)
    }
}

/// The state of one run of a node; killing the node drops it with its queues and clients.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) node: Arc<NodeShared>,
    clients: RwLock<HashMap<ClientId, Arc<ClientState>>>,
    channels: RwLock<HashMap<String, HashMap<ClientId, Arc<ClientState>>>>,
    pub(crate) queues: Queues,
    /// Cancelled when the node is killed.
    pub(crate) stop: CancellationToken,
    /// Parent of every API connection's token; replaced by `drop_consumers`.
    api_generation: Mutex<CancellationToken>,
    pub(crate) tracker: TaskTracker,
}

impl Runtime {
    pub(crate) fn new(node: Arc<NodeShared>, topic_size: usize, stop: CancellationToken) -> Self {
        Self {
            node,
            clients: RwLock::new(HashMap::new()),
            channels: RwLock::new(HashMap::new()),
            queues: Queues::new(topic_size),
            api_generation: Mutex::new(stop.child_token()),
            stop,
            tracker: TaskTracker::new(),
        }
    }

    /// A token for a new API connection, cancelled by kill or `drop_consumers`.
    pub(crate) fn api_token(&self) -> CancellationToken {
        lock(&self.api_generation).child_token()
    }

    pub(crate) fn drop_consumers(&self) {
        let mut current = lock(&self.api_generation);
        current.cancel();
        *current = self.stop.child_token();
    }

    /// Adds a browser connection with a fresh id.
    pub(crate) fn register(
        &self,
        sink: Option<tokio::sync::mpsc::Sender<Payload>>,
        counters: &LiveCounters,
    ) -> Arc<ClientState> {
        let client = Arc::new(ClientState::new(
            self.node.next_client_id(),
            sink,
            self.stop.child_token(),
        ));
        write(&self.clients).insert(client.id, client.clone());
        bump(&counters.browser_connections);
        client
    }

    /// Removes a browser connection and its subscriptions; false when it was not there.
    pub(crate) fn unregister(&self, id: ClientId, counters: &LiveCounters) -> bool {
        let removed = write(&self.clients).remove(&id);
        let Some(client) = removed else {
            return false;
        };
        client.closed.cancel();
        // Read the subscriptions under the index lock: `subscribe` checks `closed` under the
        // same lock, so a subscription racing with this removal cannot be left behind.
        {
            let mut index = write(&self.channels);
            let channels: Vec<String> = lock(&client.subscriptions).iter().cloned().collect();
            for channel in channels {
                if let Some(members) = index.get_mut(&channel) {
                    members.remove(&id);
                    if members.is_empty() {
                        index.remove(&channel);
                    }
                }
            }
        }
        drop_one(&counters.browser_connections);
        true
    }

    pub(crate) fn client(&self, id: ClientId) -> Option<Arc<ClientState>> {
        read(&self.clients).get(&id).cloned()
    }

    /// Runs a `conn.call` function on a connection of this node.
    pub(crate) fn conn_call(
        &self,
        id: ClientId,
        func: ConnFunc,
        auth_key: &str,
    ) -> Result<CallResult, EngineError> {
        let Some(client) = self.client(id) else {
            return Err(EngineError::new(
                ErrorCode::ConnCallFailed,
                format!("client {id} is not connected to this node"),
            ));
        };
        match func {
            ConnFunc::SetContextValue { key, value } => {
                client.set_context_value(key, value, auth_key)
            }
            ConnFunc::SetContext { context } => client.set_context(context, auth_key),
            ConnFunc::Subscribe { channels } => self.subscribe(&client, channels),
            ConnFunc::Unsubscribe { channels } => self.unsubscribe(&client, channels),
            ConnFunc::Other { name, .. } => {
                return Err(EngineError::new(
                    ErrorCode::InvalidArgument,
                    format!("unknown function `{name}`"),
                ))
            }
            // A function a later connmix-protocol knows and this mock does not implement yet.
            other => {
                return Err(EngineError::new(
                    ErrorCode::InvalidArgument,
                    format!("function `{}` is not supported by the mock", other.name()),
                ))
            }
        }
        Ok(CallResult::ok())
    }

    fn subscribe(&self, client: &Arc<ClientState>, channels: Vec<String>) {
        let mut index = write(&self.channels);
        let mut mine = lock(&client.subscriptions);
        if client.closed.is_cancelled() {
            return;
        }
        for channel in channels {
            index
                .entry(channel.clone())
                .or_default()
                .insert(client.id, client.clone());
            mine.insert(channel);
        }
    }

    fn unsubscribe(&self, client: &Arc<ClientState>, channels: Vec<String>) {
        let mut index = write(&self.channels);
        let mut mine = lock(&client.subscriptions);
        for channel in channels {
            if let Some(members) = index.get_mut(&channel) {
                members.remove(&client.id);
                if members.is_empty() {
                    index.remove(&channel);
                }
            }
            mine.remove(&channel);
        }
    }

    /// Delivers to every subscriber of a channel on this node: (delivered, failed).
    pub(crate) fn publish_local(&self, channel: &str, data: &Payload) -> (u64, u64) {
        let index = read(&self.channels);
        let Some(members) = index.get(channel) else {
            return (0, 0);
        };
        members.values().fold((0, 0), |(ok, failed), client| {
            if client.deliver(data.clone()) {
                (ok + 1, failed)
            } else {
                (ok, failed + 1)
            }
        })
    }
}

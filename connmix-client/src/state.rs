//! What the application can observe: connection state and connection events.

use std::collections::BTreeMap;
use std::time::Duration;

use connmix_protocol::NodeId;

/// Something that happened to the client's node connections.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The center listed a node the client did not know.
    NodeAdded {
        /// The node.
        node: NodeId,
    },
    /// The center no longer lists a node; its connection was closed.
    NodeRemoved {
        /// The node.
        node: NodeId,
    },
    /// A node's WebSocket is open (first time or again).
    Connected {
        /// The node.
        node: NodeId,
    },
    /// A node's WebSocket was lost; its pending requests failed.
    Disconnected {
        /// The node.
        node: NodeId,
        /// Why.
        reason: DisconnectReason,
    },
    /// A connect attempt will be made after a delay.
    Reconnecting {
        /// The node.
        node: NodeId,
        /// The attempt about to be made, from 1.
        attempt: u32,
        /// The delay before it.
        delay: Duration,
    },
}

/// Why a node connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The engine closed the WebSocket or the TCP connection.
    ClosedByPeer,
    /// Nothing arrived within the pong timeout after a ping: the peer is gone.
    PongTimeout,
    /// Reading or writing the socket failed.
    Transport(String),
    /// A connect attempt failed.
    ConnectFailed(String),
    /// The engine refused to consume the topics again on a new connection; the client drops
    /// it and reconnects, with backoff, rather than stay connected consuming nothing.
    ConsumeRefused(String),
    /// The node left the cluster, the client shut down, or the last handle was dropped.
    Stopped,
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisconnectReason::ClosedByPeer => f.write_str("closed by the engine"),
            DisconnectReason::PongTimeout => f.write_str("no pong in time"),
            DisconnectReason::Transport(e) => write!(f, "transport error: {e}"),
            DisconnectReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            DisconnectReason::ConsumeRefused(e) => write!(f, "consuming again was refused: {e}"),
            DisconnectReason::Stopped => f.write_str("stopped"),
        }
    }
}

/// The state of one node connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeState {
    /// The first connect attempt is under way.
    Connecting,
    /// The WebSocket is open.
    Connected,
    /// Waiting to retry; `attempt` attempts have failed since the last connection.
    Reconnecting {
        /// Failed attempts so far.
        attempt: u32,
    },
}

/// A snapshot of every node connection, published through a `watch` channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientState {
    /// Each known node and its connection state.
    pub nodes: BTreeMap<NodeId, NodeState>,
    /// True once the client is shut down or dropped.
    pub closed: bool,
}

impl ClientState {
    /// How many node connections are open.
    pub fn connected(&self) -> usize {
        self.nodes
            .values()
            .filter(|s| **s == NodeState::Connected)
            .count()
    }

    /// True when every known node is connected (and at least one is known).
    pub fn all_connected(&self) -> bool {
        !self.nodes.is_empty() && self.connected() == self.nodes.len()
    }
}

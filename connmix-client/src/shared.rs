//! State shared by the handle, the supervisor and the node tasks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};
use connmix_protocol::NodeId;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::ClientError;
use crate::node::NodeMap;
use crate::options::Options;
use crate::state::{ClientState, ConnectionEvent, NodeState};
use crate::transport::TlsConfig;

/// Everything the background tasks need; never holds the handle itself, so dropping the last
/// [`Client`](crate::Client) is seen by the tasks through `cancel`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: Options,
    pub(crate) tls: TlsConfig,
    pub(crate) events: broadcast::Sender<ConnectionEvent>,
    pub(crate) state: watch::Sender<ClientState>,
    /// The current nodes; read lock-free on every call.
    pub(crate) nodes: ArcSwap<NodeMap>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    closed: AtomicBool,
    /// Engine frames over `max_frame_bytes`, skipped, on every node since start.
    pub(crate) oversized: AtomicU64,
    /// The latest failure to read the center or open a node connection since the last success
    /// of either: what an application tells its operator when nothing connects.
    last_error: ArcSwapOption<ClientError>,
}

impl Shared {
    pub(crate) fn new(options: Options, tls: TlsConfig) -> Self {
        let (events, _) = broadcast::channel(256);
        let (state, _) = watch::channel(ClientState::default());
        Self {
            options,
            tls,
            events,
            state,
            nodes: ArcSwap::from_pointee(NodeMap::default()),
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            closed: AtomicBool::new(false),
            oversized: AtomicU64::new(0),
            last_error: ArcSwapOption::empty(),
        }
    }

    /// Remembers why reading the center or connecting to a node failed.
    pub(crate) fn failed(&self, error: &ClientError) {
        self.last_error
            .store(Some(std::sync::Arc::new(error.clone())));
    }

    /// Forgets the last failure: the center answered, or a node connected.
    pub(crate) fn succeeded(&self) {
        self.last_error.store(None);
    }

    pub(crate) fn last_error(&self) -> Option<ClientError> {
        self.last_error.load_full().map(|e| ClientError::clone(&e))
    }

    pub(crate) fn emit(&self, event: ConnectionEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    /// Updates a node's state, if the node is still listed (a removed node's task may still
    /// be winding down and must not bring its entry back).
    pub(crate) fn set_node_state(&self, node: &NodeId, new: NodeState) {
        self.state
            .send_if_modified(|state| match state.nodes.get_mut(node) {
                Some(current) if *current != new => {
                    *current = new;
                    true
                }
                _ => false,
            });
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
        self.state.send_modify(|state| state.closed = true);
    }
}

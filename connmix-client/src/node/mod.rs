//! One engine node: the handle the client keeps, and the task that owns the socket.

mod connect;
mod pending;
mod session;
mod task;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use connmix_protocol::{Call, CallResult, NodeId, NodeInfo};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::ClientError;
use crate::queue::QueueEvent;
use crate::shared::Shared;

/// Topics consumed together and where their messages go.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub(crate) topics: Vec<String>,
    pub(crate) sink: mpsc::Sender<QueueEvent>,
}

/// The reply channel of a command that answers with `T`.
pub(crate) type Responder<T> = oneshot::Sender<Result<T, ClientError>>;

/// When a caller stops waiting for a request's reply, and what to call the request then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) op: &'static str,
}

/// What a node task can be asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send a request and answer with its reply.
    Call {
        call: Call,
        reply: Responder<CallResult>,
        deadline: Deadline,
    },
    /// Consume more topics, now and after every reconnect.
    Consume {
        sub: Subscription,
        reply: Responder<()>,
        deadline: Deadline,
    },
    /// Stop consuming everything.
    Unpop {
        reply: Responder<()>,
        deadline: Deadline,
    },
    /// Unpop, let pending requests finish until `deadline`, close the socket and end.
    Shutdown {
        deadline: Instant,
        done: oneshot::Sender<()>,
    },
}

/// The client's handle on one node task.
#[derive(Debug, Clone)]
pub(crate) struct NodeHandle {
    pub(crate) id: NodeId,
    pub(crate) api_server: String,
    tx: mpsc::Sender<Command>,
    connected: Arc<AtomicBool>,
    stop: CancellationToken,
}

impl NodeHandle {
    /// Starts the task of a node; it connects at once and reconnects until stopped.
    pub(crate) fn spawn(
        shared: &Arc<Shared>,
        info: NodeInfo,
        api: &str,
        subs: Vec<Subscription>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(shared.options.command_buffer);
        let connected = Arc::new(AtomicBool::new(false));
        let stop = shared.cancel.child_token();
        let url = crate::endpoint::node_ws_url(&info.api_server, api, shared.options.tls);
        let task = task::NodeTask::new(
            info.id.clone(),
            url,
            Arc::clone(shared),
            rx,
            subs,
            stop.clone(),
            Arc::clone(&connected),
        );
        shared.tracker.spawn(task.run());
        Self {
            id: info.id,
            api_server: info.api_server,
            tx,
            connected,
            stop,
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Ends the task without the shutdown courtesies (the node left the cluster).
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// Sends a command built around a fresh reply channel and waits for the answer.
    ///
    /// The caller arms no timer of its own: the node task fails the request with a timeout
    /// when its deadline passes (one sweep per node rather than a timer per call), and fails it
    /// as disconnected at once when the connection drops. Only a caller that finds the command
    /// queue full waits for room under a timer.
    pub(crate) async fn request<T>(
        &self,
        op: &'static str,
        timeout: Duration,
        make: impl FnOnce(Responder<T>, Deadline) -> Command,
    ) -> Result<T, ClientError> {
        let (reply, rx) = oneshot::channel();
        let deadline = Deadline {
            at: Instant::now() + timeout,
            op,
        };
        match self.tx.try_send(make(reply, deadline)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(ClientError::disconnected(&self.id))
            }
            Err(mpsc::error::TrySendError::Full(command)) => {
                match tokio::time::timeout_at(deadline.at, self.tx.send(command)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err(ClientError::disconnected(&self.id)),
                    Err(_) => return Err(ClientError::timeout(op)),
                }
            }
        }
        // The task dropped the reply without answering: it is gone.
        rx.await.map_err(|_| ClientError::disconnected(&self.id))?
    }

    /// Asks the task to shut down; returns when it has closed its socket.
    pub(crate) async fn shutdown(&self, deadline: Instant) {
        let (done, rx) = oneshot::channel();
        let command = Command::Shutdown { deadline, done };
        if self.tx.send(command).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// The nodes the client knows, published as one immutable snapshot.
#[derive(Debug, Default)]
pub(crate) struct NodeMap {
    pub(crate) list: Vec<NodeHandle>,
    index: HashMap<NodeId, usize>,
}

impl NodeMap {
    pub(crate) fn new(mut list: Vec<NodeHandle>) -> Self {
        list.sort_by(|a, b| a.id.cmp(&b.id));
        let index = list
            .iter()
            .enumerate()
            .map(|(i, h)| (h.id.clone(), i))
            .collect();
        Self { list, index }
    }

    pub(crate) fn get(&self, id: &NodeId) -> Option<&NodeHandle> {
        self.index.get(id).map(|&i| &self.list[i])
    }

    /// A connected node, starting the search at `start` so callers can spread the load.
    pub(crate) fn any_connected(&self, start: usize) -> Option<&NodeHandle> {
        let n = self.list.len();
        (0..n)
            .map(|k| &self.list[(start + k) % n])
            .find(|h| h.is_connected())
    }
}

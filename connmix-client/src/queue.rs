//! Consumed queue messages and the stream that yields them.

use std::pin::Pin;
use std::task::{Context, Poll};

use connmix_protocol::{ClientId, NodeId, RawJson};
use futures_util::Stream;
use tokio::sync::mpsc;

/// One message a node's script pushed onto a consumed queue.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueueEvent {
    /// The node that delivered it, which holds the browser connection.
    pub node: NodeId,
    /// The browser connection that caused it.
    pub client: ClientId,
    /// The queue topic.
    pub topic: String,
    /// The value the script pushed, as its JSON text: parse it once, into your own types, with
    /// [`RawJson::parse`] (or [`RawJson::to_value`] for a `serde_json::Value`).
    pub data: RawJson,
}

impl QueueEvent {
    /// An event as `node` would deliver it: for tests of code that consumes, and for sources
    /// other than the engine that yield the same events.
    pub fn new(
        node: impl Into<NodeId>,
        client: impl Into<ClientId>,
        topic: impl Into<String>,
        data: RawJson,
    ) -> Self {
        Self {
            node: node.into(),
            client: client.into(),
            topic: topic.into(),
            data,
        }
    }

    /// The browser connection, to answer it with `conn.call`s.
    pub fn conn(&self) -> ConnRef {
        ConnRef {
            node: self.node.clone(),
            client: self.client,
        }
    }
}

/// One browser connection: the node that holds it and its client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnRef {
    /// The node holding the connection; `conn.call`s must go there.
    pub node: NodeId,
    /// The connection's id.
    pub client: ClientId,
}

impl ConnRef {
    /// The connection `client` held by `node`.
    pub fn new(node: impl Into<NodeId>, client: impl Into<ClientId>) -> Self {
        Self {
            node: node.into(),
            client: client.into(),
        }
    }
}

/// Queue messages of the topics passed to [`Client::consume`](crate::Client::consume), from
/// every node, in arrival order per node.
///
/// Backed by a bounded channel: when the application falls behind, node connections stop
/// reading new messages until it catches up. Ends after [`Client::unpop`](crate::Client::unpop),
/// shutdown, or when every `Client` handle is dropped.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<QueueEvent>,
}

impl EventStream {
    pub(crate) fn new(rx: mpsc::Receiver<QueueEvent>) -> Self {
        Self { rx }
    }

    /// The next message; `None` once the stream has ended.
    pub async fn recv(&mut self) -> Option<QueueEvent> {
        self.rx.recv().await
    }
}

impl Stream for EventStream {
    type Item = QueueEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<QueueEvent>> {
        self.rx.poll_recv(cx)
    }
}

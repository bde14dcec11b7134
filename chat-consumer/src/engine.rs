//! What the chat handlers need from the CONNMIX engine, as a trait.
//!
//! Handlers depend on this trait rather than on a network client so they can be tested against
//! a recording fake, and so the consumer does not care which engine client carries the calls.

use std::future::Future;

use connmix_protocol::{ClientId, NodeId};

/// The context key the tutorial's script waits on after an `auth` frame.
pub const UID_KEY: &str = "uid";

/// One browser connection: the engine node that holds it and its id on that node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Conn {
    /// The node that pushed the event (and that must receive `conn.call`s for it).
    pub node: NodeId,
    /// The connection's id.
    pub client: ClientId,
}

impl Conn {
    /// A connection on `node` with id `client`.
    pub fn new(node: impl Into<NodeId>, client: impl Into<ClientId>) -> Self {
        Self {
            node: node.into(),
            client: client.into(),
        }
    }
}

/// An engine call that failed; handlers log it and carry on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EngineCallError(#[source] pub Box<dyn std::error::Error + Send + Sync + 'static>);

impl EngineCallError {
    /// Wraps any error.
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(err))
    }
}

/// The engine operations the chat uses.
pub trait ChatEngine: Send + Sync + 'static {
    /// Sets the connection's context value `uid`, releasing the script's `wait_context_value`.
    fn set_uid(
        &self,
        conn: &Conn,
        uid: u64,
    ) -> impl Future<Output = Result<(), EngineCallError>> + Send;

    /// Subscribes the connection to channels.
    fn subscribe(
        &self,
        conn: &Conn,
        channels: &[String],
    ) -> impl Future<Output = Result<(), EngineCallError>> + Send;

    /// Unsubscribes the connection from channels.
    fn unsubscribe(
        &self,
        conn: &Conn,
        channels: &[String],
    ) -> impl Future<Output = Result<(), EngineCallError>> + Send;

    /// Sends one text frame to the connection.
    fn send(
        &self,
        conn: &Conn,
        text: String,
    ) -> impl Future<Output = Result<(), EngineCallError>> + Send;

    /// Publishes one text frame to every subscriber of `channel`; returns how many received it.
    fn publish(
        &self,
        channel: &str,
        text: String,
    ) -> impl Future<Output = Result<u64, EngineCallError>> + Send;
}

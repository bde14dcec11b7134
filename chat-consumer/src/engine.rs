//! What the chat handlers need from the CONNMIX engine, as a trait.
//!
//! Handlers depend on this trait rather than on a network client so they can be tested against
//! a recording fake, and so the consumer does not care which engine client carries the calls.

use std::future::Future;

/// One browser connection: the engine node that holds it (and that must receive its
/// `conn.call`s) and its id there. The client's type, so that no call converts it.
pub use connmix_client::ConnRef as Conn;

/// The context key the tutorial's script waits on after an `auth` frame.
pub const UID_KEY: &str = "uid";

/// An engine call that failed; handlers log it and carry on.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct EngineCallError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
    gone: bool,
}

impl EngineCallError {
    /// Wraps any error.
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            source: Box::new(err),
            gone: false,
        }
    }

    /// The engine no longer holds the connection (its browser went away): nothing is wrong,
    /// and nobody is left to tell.
    pub fn connection_gone(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            gone: true,
            ..Self::new(err)
        }
    }

    /// Whether the call failed only because the connection is gone.
    pub fn is_connection_gone(&self) -> bool {
        self.gone
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

    /// Whether the engine still holds the connection, asked with a call that changes nothing
    /// (leaving a channel nobody joins). `Ok(false)` when the engine says it has no such
    /// connection.
    fn probe(&self, conn: &Conn) -> impl Future<Output = Result<bool, EngineCallError>> + Send;
}

/// The channel [`ChatEngine::probe`] leaves: no chat channel has this name (chat channels are
/// `room_*`, `user_*` and `broadcast`).
pub const PROBE_CHANNEL: &str = "presence.probe";

//! One chat op per file. Each handler answers the sender itself and never fails: engine and
//! database errors are logged with the connection and op, and the browser gets an error reply.

pub mod auth;
pub mod close;
pub mod ping;
pub mod publish;
pub mod send_broadcast;
pub mod send_to_room;
pub mod send_to_user;
pub mod subscribe;
pub mod unsubscribe;

use connmix_protocol::chat::ChatReply;

use crate::chat::Chat;
use crate::engine::{ChatEngine, Conn};

/// Error texts the browser sees.
pub mod reason {
    /// Not logged in, or someone else's channel.
    pub const NO_ACCESS: &str = "No access";
    /// Wrong name or password (or an unknown name: the two are not told apart).
    pub const BAD_LOGIN: &str = "Invalid name or password";
    /// The database or engine failed; trying again may work.
    pub const INTERNAL: &str = "Internal error, please retry";
    /// An empty message.
    pub const EMPTY_MESSAGE: &str = "Message is empty";
    /// A message over the size limit.
    pub const MESSAGE_TOO_LONG: &str = "Message too long";
    /// Over the per-user message rate.
    pub const RATE_LIMITED: &str = "Too many messages, slow down";
    /// `sendtouser` to a user that does not exist.
    pub const UNKNOWN_USER: &str = "Unknown user";
    /// Too many channels in one request.
    pub const TOO_MANY_CHANNELS: &str = "Too many channels";
}

/// Sends `reply` to the connection; a failure is logged, since the browser cannot be told.
pub(crate) async fn reply<E: ChatEngine>(chat: &Chat<E>, conn: &Conn, reply: ChatReply) {
    if let Err(err) = chat.engine.send(conn, reply.to_json()).await {
        tracing::warn!(node = %conn.node, client_id = %conn.client, error = %err, "cannot send reply");
    }
}

/// The logged-in user id, if any: the script reports `None` before login and 0 after a
/// failed one.
pub(crate) fn member(uid: Option<u64>) -> Option<u64> {
    uid.filter(|uid| *uid > 0)
}

//! One chat op per file (`subscribe` and `unsubscribe` share [`membership`]). Each handler
//! takes the frame's [`Ctx`] and the request's fields, answers the sender itself and never
//! fails: engine and database errors are logged (inside the `event` span, which names the node,
//! connection and op) and the browser gets an error reply.

pub mod auth;
pub mod close;
pub mod history;
pub mod membership;
mod outgoing;
pub mod ping;
pub mod presence;
pub mod send_broadcast;
pub mod send_to_room;
pub mod send_to_user;

use connmix_protocol::chat::ChatReply;

use std::sync::atomic::Ordering;

use crate::channel::Channel;
use crate::chat::Chat;
use crate::engine::{ChatEngine, Conn};
use crate::telemetry::{Outcome, OutcomeCell};

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
    /// A session token that is malformed, expired, forged or revoked (a new password).
    pub const BAD_SESSION: &str = "Session expired, please log in again";
    /// `history` on a consumer that keeps none.
    pub const HISTORY_OFF: &str = "History is turned off";
    /// `presence` on a consumer that keeps no room records.
    pub const PRESENCE_OFF: &str = "Presence is turned off";
    /// `presence` of something else than a room.
    pub const ROOMS_ONLY: &str = "Presence is kept for rooms only";
    /// Too many channels in one request.
    pub const TOO_MANY_CHANNELS: &str = "Too many channels";

    /// Too many failed logins for the name or the connection; `retry_in` until the next may
    /// be tried (whole seconds, rounded up).
    pub fn too_many_logins(retry_in: std::time::Duration) -> String {
        let secs = retry_in.as_secs() + u64::from(retry_in.subsec_nanos() > 0);
        format!("Too many login attempts, retry in {secs} s")
    }
}

/// What every handler gets: the chat, the connection the frame came on, and who is logged in
/// there.
#[derive(Debug)]
pub struct Ctx<'a, E> {
    /// The chat service.
    pub chat: &'a Chat<E>,
    /// The connection the frame came on, which the reply goes to.
    pub conn: &'a Conn,
    /// The user logged in on the connection: `None` before login and after a failed one (the
    /// script's `uid` 0 is decoded to `None` once, in dispatch).
    pub user: Option<u64>,
    /// The id of the queue entry the frame came in (a Redis stream entry id), when the source
    /// may deliver it again; its message is then published only once.
    pub entry: Option<&'a str>,
    /// How the event ended, for the metrics: set by [`Ctx::reply`].
    pub(crate) outcome: OutcomeCell,
}

impl<'a, E: ChatEngine> Ctx<'a, E> {
    /// The context of a frame from `conn`, on which `user` is logged in.
    pub fn new(chat: &'a Chat<E>, conn: &'a Conn, user: Option<u64>) -> Self {
        Self {
            chat,
            conn,
            user,
            entry: None,
            outcome: OutcomeCell::default(),
        }
    }

    /// `name` as a channel the logged-in user may use, by `subscribe`'s rules (rooms,
    /// `broadcast`, one's own `user_<id>`); otherwise the reason for the browser.
    pub(crate) fn member_channel(&self, name: &str) -> Result<Channel, String> {
        let uid = self.user.ok_or_else(|| reason::NO_ACCESS.to_owned())?;
        Channel::parse_for_member(name, uid, self.chat.limits.max_room_name)
            .map_err(|err| format!("{err}: {name}"))
    }

    /// Sends `reply` to the connection; a failure is logged, since the browser cannot be told.
    /// A browser that has left is no failure: counted ([`Chat::replies_to_gone`]), logged at
    /// debug.
    pub(crate) async fn reply(&self, reply: ChatReply) {
        match &reply {
            ChatReply::Error { error, .. } if error == reason::INTERNAL => {
                self.outcome.report(Outcome::Failed);
            }
            ChatReply::Error { .. } | ChatReply::FormatError => {
                self.outcome.report(Outcome::Refused);
            }
            _ => {}
        }
        match self.chat.engine.send(self.conn, reply.to_json()).await {
            Ok(()) => {}
            Err(err) if err.is_connection_gone() => {
                self.chat.replies_to_gone.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %err, "reply to a connection that is gone");
            }
            Err(err) => {
                self.outcome.report(Outcome::Failed);
                tracing::warn!(error = %err, "cannot send reply");
            }
        }
    }
}

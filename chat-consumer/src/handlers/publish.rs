//! What the three send ops share: check the sender and the text, publish a delivery built by
//! serde, answer the sender.

use std::time::{SystemTime, UNIX_EPOCH};

use connmix_protocol::chat::{ChatReply, DeliveryRef};

use super::{member, reason, reply};
use crate::channel::Channel;
use crate::chat::Chat;
use crate::engine::{ChatEngine, Conn};

/// A message that passed the checks, ready to publish.
pub(crate) struct Outgoing<'a> {
    /// The sender.
    pub(crate) uid: u64,
    /// The text as typed.
    pub(crate) text: &'a str,
}

/// Checks login, message size and the sender's rate; the reason for the browser on refusal.
///
/// The rate is checked last so that refused (empty, oversized) messages cost no tokens.
pub(crate) fn admit<'a, E>(
    chat: &Chat<E>,
    uid: Option<u64>,
    text: &'a str,
) -> Result<Outgoing<'a>, &'static str> {
    let Some(uid) = member(uid) else {
        return Err(reason::NO_ACCESS);
    };
    if text.is_empty() {
        return Err(reason::EMPTY_MESSAGE);
    }
    if text.len() > chat.limits.max_message_bytes {
        return Err(reason::MESSAGE_TOO_LONG);
    }
    if !chat.rate.try_acquire(uid) {
        return Err(reason::RATE_LIMITED);
    }
    Ok(Outgoing { uid, text })
}

/// Publishes `message` on `channel`, then tells the sender how it went.
pub(crate) async fn publish<E: ChatEngine>(
    chat: &Chat<E>,
    conn: &Conn,
    op: &str,
    channel: &Channel,
    message: Outgoing<'_>,
) {
    // A missing name only loses the `from` field; the message still goes out.
    let from = match chat.names.get(&chat.db, message.uid).await {
        Ok(name) => name,
        Err(err) => {
            tracing::warn!(uid = message.uid, error = %err, "cannot look up sender name");
            None
        }
    };
    let channel = channel.to_string();
    let delivery = DeliveryRef {
        channel: &channel,
        uid: message.uid,
        from: from.as_deref(),
        text: message.text,
        time: Some(now_millis()),
    };
    let answer = match chat.engine.publish(&channel, delivery.to_json()).await {
        Ok(delivered) => {
            tracing::debug!(node = %conn.node, client_id = %conn.client, op, channel, delivered, "published");
            ChatReply::success(op)
        }
        Err(err) => {
            tracing::warn!(node = %conn.node, client_id = %conn.client, op, channel, error = %err, "cannot publish");
            ChatReply::error(op, reason::INTERNAL)
        }
    };
    reply(chat, conn, answer).await;
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

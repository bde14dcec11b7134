//! Not an op: what the three send ops share. Check the sender and the text, publish the
//! delivery, answer the sender.

use std::time::{SystemTime, UNIX_EPOCH};

use connmix_protocol::chat::{ChatReply, DeliveryRef};

use super::{reason, Ctx};
use crate::channel::Channel;
use crate::engine::ChatEngine;
use crate::history::Stored;

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
pub(crate) async fn admit<'a, E>(
    cx: &Ctx<'_, E>,
    text: &'a str,
) -> Result<Outgoing<'a>, &'static str> {
    let chat = cx.chat;
    let Some(uid) = cx.user else {
        return Err(reason::NO_ACCESS);
    };
    if text.is_empty() {
        return Err(reason::EMPTY_MESSAGE);
    }
    if text.len() > chat.limits.max_message_bytes {
        return Err(reason::MESSAGE_TOO_LONG);
    }
    let limits = &chat.limits;
    let admitted = match &chat.shared {
        Some(shared) => match shared
            .admit(uid, limits.messages_per_second, limits.message_burst)
            .await
        {
            Ok(admitted) => admitted,
            Err(err) => {
                shared.degraded("message rate limited per process", &err);
                chat.rate.try_acquire(uid)
            }
        },
        None => chat.rate.try_acquire(uid),
    };
    if !admitted {
        metrics::counter!(crate::telemetry::names::RATE_LIMITED).increment(1);
        return Err(reason::RATE_LIMITED);
    }
    Ok(Outgoing { uid, text })
}

/// Publishes `message` on `channel`, then tells the sender how it went.
pub(crate) async fn publish<E: ChatEngine>(
    cx: &Ctx<'_, E>,
    op: &str,
    channel: &Channel,
    message: Outgoing<'_>,
) {
    let chat = cx.chat;
    // A missing name only loses the `from` field; the message still goes out.
    let from = match chat.names.get(&chat.db, message.uid).await {
        Ok(name) => name,
        Err(err) => {
            tracing::warn!(uid = message.uid, error = %err, "cannot look up sender name");
            None
        }
    };
    let channel = channel.to_string();
    let delivery = DeliveryRef::new(
        &channel,
        message.uid,
        from.as_deref(),
        message.text,
        Some(now_millis()),
    );
    if let (Some(shared), Some(entry)) = (&chat.shared, cx.entry) {
        match shared.first_publish(entry).await {
            Ok(true) => {}
            Ok(false) => {
                // A redelivered stream entry: its message went out the first time.
                tracing::debug!(channel, entry, "already published; not again");
                return cx.reply(ChatReply::success(op)).await;
            }
            Err(err) => shared.degraded("a redelivered message may be published twice", &err),
        }
    }
    let time = delivery.time.unwrap_or_default();
    let answer = match chat.engine.publish(&channel, delivery.to_json()).await {
        Ok(delivered) => {
            tracing::debug!(channel, delivered, "published");
            if chat.history.is_on() {
                chat.history.record(Stored {
                    uid: message.uid,
                    from,
                    text: message.text.to_owned(),
                    time,
                    channel,
                });
            }
            ChatReply::success(op)
        }
        Err(err) => {
            tracing::warn!(channel, error = %err, "cannot publish");
            ChatReply::error(op, reason::INTERNAL)
        }
    };
    cx.reply(answer).await;
}

/// Now, in milliseconds since the Unix epoch: the `time` of what the chat publishes.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

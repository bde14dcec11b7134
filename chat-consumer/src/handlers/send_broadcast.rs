//! `sendbroadcast`: publish to the `broadcast` channel.

use connmix_protocol::chat::{op, ChatReply};

use super::outgoing::{admit, publish};
use super::Ctx;
use crate::channel::Channel;
use crate::engine::ChatEngine;

/// Sends `text` to everyone subscribed to `broadcast`.
pub async fn send_broadcast<E: ChatEngine>(cx: &Ctx<'_, E>, text: &str) {
    match admit(cx, text).await {
        Ok(message) => publish(cx, op::SEND_BROADCAST, &Channel::Broadcast, message).await,
        Err(why) => cx.reply(ChatReply::error(op::SEND_BROADCAST, why)).await,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::handlers::reason;
    use crate::testing::{add_user, conn, test_chat, Call};

    #[tokio::test]
    async fn broadcast_goes_to_the_broadcast_channel() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        send_broadcast(&Ctx::new(&chat, &conn(1), Some(uid)), "hello").await;
        let calls = chat.engine().take();
        let Call::Publish(channel, delivered) = &calls[0] else {
            panic!("expected a publish, got {calls:?}");
        };
        assert_eq!(channel, "broadcast");
        assert_eq!(delivered["channel"], "broadcast");
        assert_eq!(delivered["data"], format!("uid:{uid},message:hello"));
        assert_eq!(
            calls[1],
            Call::Send(conn(1), json!({"op":"sendbroadcast","success":true}))
        );
    }

    #[tokio::test]
    async fn engine_failure_is_reported_to_the_sender() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        chat.engine().fail_calls(true);
        send_broadcast(&Ctx::new(&chat, &conn(1), Some(uid)), "hello").await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(
                conn(1),
                json!({"op":"sendbroadcast","error":reason::INTERNAL})
            )]
        );
    }
}

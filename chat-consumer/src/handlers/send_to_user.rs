//! `sendtouser`: publish to an existing user's `user_<id>` channel.

use connmix_protocol::chat::{op, ChatReply};

use super::outgoing::{admit, publish};
use super::{reason, Ctx};
use crate::channel::Channel;
use crate::engine::ChatEngine;

/// Sends `text` to every device of the user named by the channel `user`.
pub async fn send_to_user<E: ChatEngine>(cx: &Ctx<'_, E>, user: &str, text: &str) {
    let chat = cx.chat;
    let message = match admit(cx, text).await {
        Ok(message) => message,
        Err(why) => return cx.reply(ChatReply::error(op::SEND_TO_USER, why)).await,
    };
    let Ok(channel @ Channel::User(target)) = Channel::parse(user, chat.limits.max_room_name)
    else {
        let why = ChatReply::error(op::SEND_TO_USER, format!("Invalid channel: {user}"));
        return cx.reply(why).await;
    };
    match chat.names.get(&chat.db, target).await {
        Ok(Some(_)) => publish(cx, op::SEND_TO_USER, &channel, message).await,
        Ok(None) => {
            let why = ChatReply::error(op::SEND_TO_USER, reason::UNKNOWN_USER);
            cx.reply(why).await
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot look up user");
            cx.reply(ChatReply::error(op::SEND_TO_USER, reason::INTERNAL))
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{add_user, conn, test_chat, Call};

    #[tokio::test]
    async fn message_reaches_an_existing_users_channel() {
        let chat = test_chat().await;
        let from = add_user(&chat, "user1", "123456").await;
        let to = add_user(&chat, "user2", "123456").await;
        let target = format!("user_{to}");
        send_to_user(&Ctx::new(&chat, &conn(1), Some(from)), &target, "psst").await;
        let calls = chat.engine().take();
        let Call::Publish(channel, delivered) = &calls[0] else {
            panic!("expected a publish, got {calls:?}");
        };
        assert_eq!(channel, &target);
        assert_eq!(delivered["from"], "user1");
        assert_eq!(
            calls[1],
            Call::Send(conn(1), json!({"op":"sendtouser","success":true}))
        );
    }

    #[tokio::test]
    async fn unknown_users_and_non_user_channels_are_refused() {
        let chat = test_chat().await;
        let from = add_user(&chat, "user1", "123456").await;
        send_to_user(&Ctx::new(&chat, &conn(1), Some(from)), "user_999", "psst").await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(
                conn(1),
                json!({"op":"sendtouser","error":"Unknown user"})
            )]
        );
        send_to_user(&Ctx::new(&chat, &conn(1), Some(from)), "room_1", "psst").await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(
                conn(1),
                json!({"op":"sendtouser","error":"Invalid channel: room_1"})
            )]
        );
    }
}

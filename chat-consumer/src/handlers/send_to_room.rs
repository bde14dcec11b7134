//! `sendtoroom`: publish to a `room_<name>` channel.

use connmix_protocol::chat::{op, ChatReply};

use super::outgoing::{admit, publish};
use super::Ctx;
use crate::channel::Channel;
use crate::engine::ChatEngine;

/// Sends `text` to everyone in `room`.
pub async fn send_to_room<E: ChatEngine>(cx: &Ctx<'_, E>, room: &str, text: &str) {
    let message = match admit(cx, text).await {
        Ok(message) => message,
        Err(why) => return cx.reply(ChatReply::error(op::SEND_TO_ROOM, why)).await,
    };
    match Channel::parse(room, cx.chat.limits.max_room_name) {
        Ok(channel @ Channel::Room(_)) => publish(cx, op::SEND_TO_ROOM, &channel, message).await,
        _ => {
            let why = ChatReply::error(op::SEND_TO_ROOM, format!("Invalid channel: {room}"));
            cx.reply(why).await
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::handlers::reason;
    use crate::testing::{add_user, conn, delivery_fields, test_chat, Call};

    #[tokio::test]
    async fn room_message_is_published_in_the_tutorial_shape_then_acknowledged() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        send_to_room(
            &Ctx::new(&chat, &conn(1), Some(uid)),
            "room_101",
            "hello,world!",
        )
        .await;
        let calls = chat.engine().take();
        let Call::Publish(channel, delivered) = &calls[0] else {
            panic!("expected a publish first, got {calls:?}");
        };
        assert_eq!(channel, "room_101");
        assert_eq!(
            delivery_fields(delivered),
            json!({"event":"subscribe","channel":"room_101",
                   "data":format!("uid:{uid},message:hello,world!"),
                   "uid":uid,"from":"user1","text":"hello,world!"})
        );
        assert_eq!(
            calls[1],
            Call::Send(conn(1), json!({"op":"sendtoroom","success":true}))
        );
    }

    #[tokio::test]
    async fn quotes_in_the_text_cannot_add_fields() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        let sneaky = r#"x","admin":true,"y":""#;
        send_to_room(&Ctx::new(&chat, &conn(1), Some(uid)), "room_1", sneaky).await;
        let Call::Publish(_, delivered) = &chat.engine().take()[0] else {
            panic!("expected a publish");
        };
        assert_eq!(delivered["text"], sneaky);
        assert!(delivered.get("admin").is_none());
    }

    #[tokio::test]
    async fn non_room_channels_are_refused() {
        let chat = test_chat().await;
        for target in ["broadcast", "user_1", "room_a b", "lobby"] {
            send_to_room(&Ctx::new(&chat, &conn(1), Some(1)), target, "hi").await;
            assert_eq!(
                chat.engine().take(),
                vec![Call::Send(
                    conn(1),
                    json!({"op":"sendtoroom","error":format!("Invalid channel: {target}")})
                )]
            );
        }
    }

    #[tokio::test]
    async fn anonymous_empty_and_oversized_messages_are_refused() {
        let chat = test_chat().await;
        let long = "x".repeat(chat.limits().max_message_bytes + 1);
        for (uid, text, why) in [
            (None, "hi", reason::NO_ACCESS),
            (Some(1), "", reason::EMPTY_MESSAGE),
            (Some(1), long.as_str(), reason::MESSAGE_TOO_LONG),
        ] {
            send_to_room(&Ctx::new(&chat, &conn(1), uid), "room_1", text).await;
            assert_eq!(
                chat.engine().take(),
                vec![Call::Send(conn(1), json!({"op":"sendtoroom","error":why}))]
            );
        }
    }

    #[tokio::test]
    async fn a_flood_is_cut_at_the_burst() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        let burst = chat.limits().message_burst as usize;
        for _ in 0..burst + 3 {
            send_to_room(&Ctx::new(&chat, &conn(1), Some(uid)), "room_1", "spam").await;
        }
        let published = chat
            .engine()
            .take()
            .iter()
            .filter(|call| matches!(call, Call::Publish(..)))
            .count();
        assert_eq!(published, burst);
    }
}

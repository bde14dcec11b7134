//! `sendtouser`: publish to an existing user's `user_<id>` channel, the user named by id
//! (`user_<id>`) or by name (`user_name:<name>`).

use connmix_protocol::chat::{op, ChatReply};

use super::outgoing::{admit, publish};
use super::{reason, Ctx};
use crate::channel::Channel;
use crate::engine::ChatEngine;
use crate::service::users;

/// How a target names its user by name: `user_name:<name>`. A colon is in no channel name, so
/// the two forms cannot be confused.
pub const BY_NAME: &str = "user_name:";

/// Sends `text` to every device of the user `user` names: `user_<id>` or `user_name:<name>`.
/// A message to oneself is published once, like any other: one's own devices get it on their
/// `user_<id>` channel.
pub async fn send_to_user<E: ChatEngine>(cx: &Ctx<'_, E>, user: &str, text: &str) {
    let chat = cx.chat;
    let message = match admit(cx, text).await {
        Ok(message) => message,
        Err(why) => return cx.reply(ChatReply::error(op::SEND_TO_USER, why)).await,
    };
    let found = match user.strip_prefix(BY_NAME) {
        // No user has a longer name: not worth a query.
        Some(name) if name.len() > super::auth::MAX_NAME => Ok(None),
        Some(name) => users::find_by_name(&chat.db, name)
            .await
            .map(|found| found.and_then(|u| u64::try_from(u.id).ok()))
            .map_err(|err| err.to_string()),
        None => {
            let Ok(Channel::User(target)) = Channel::parse(user, chat.limits.max_room_name) else {
                let why = ChatReply::error(op::SEND_TO_USER, format!("Invalid channel: {user}"));
                return cx.reply(why).await;
            };
            chat.names
                .get(&chat.db, target)
                .await
                .map(|found| found.map(|_| target))
                .map_err(|err| err.to_string())
        }
    };
    match found {
        Ok(Some(target)) => publish(cx, op::SEND_TO_USER, &Channel::User(target), message).await,
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
    async fn a_user_named_by_name_gets_the_message_on_their_id_channel() {
        let chat = test_chat().await;
        let from = add_user(&chat, "user1", "123456").await;
        let to = add_user(&chat, "user2", "123456").await;
        send_to_user(
            &Ctx::new(&chat, &conn(1), Some(from)),
            "user_name:user2",
            "psst",
        )
        .await;
        let calls = chat.engine().take();
        let Call::Publish(channel, delivered) = &calls[0] else {
            panic!("expected a publish, got {calls:?}");
        };
        assert_eq!(channel, &format!("user_{to}"));
        assert_eq!(delivered["from"], "user1");
        assert_eq!(delivered["text"], "psst");
        // Names are exact: another case or a trailing space is someone else.
        let long = format!("user_name:{}", "x".repeat(100_000));
        for other in ["user_name:User2", "user_name:user2 ", "user_name:", &long] {
            send_to_user(&Ctx::new(&chat, &conn(1), Some(from)), other, "psst").await;
            let calls = chat.engine().take();
            assert_eq!(calls.len(), 1, "{calls:?}");
            let Call::Send(_, reply) = &calls[0] else {
                panic!("{calls:?}");
            };
            assert_eq!(reply["error"], "Unknown user");
        }
    }

    #[tokio::test]
    async fn a_message_to_oneself_is_published_once() {
        let chat = test_chat().await;
        let me = add_user(&chat, "user1", "123456").await;
        for target in [format!("user_{me}"), "user_name:user1".to_owned()] {
            send_to_user(&Ctx::new(&chat, &conn(1), Some(me)), &target, "note").await;
            let calls = chat.engine().take();
            let publishes: Vec<_> = calls
                .iter()
                .filter(|c| matches!(c, Call::Publish(..)))
                .collect();
            assert_eq!(publishes.len(), 1, "{target}: {calls:?}");
            assert!(
                matches!(publishes[0], Call::Publish(channel, _) if *channel == format!("user_{me}")),
                "{calls:?}"
            );
        }
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

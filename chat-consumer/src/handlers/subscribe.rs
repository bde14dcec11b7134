//! `subscribe`: join rooms, `broadcast`, or one's own `user_<uid>` channel.

use connmix_protocol::chat::{op, ChatReply};

use super::{member, reason, reply};
use crate::channel::Channel;
use crate::chat::Chat;
use crate::engine::{ChatEngine, Conn};

/// Subscribes the connection to `channels`: all of them, or none if any is refused.
pub async fn subscribe<E: ChatEngine>(
    chat: &Chat<E>,
    conn: &Conn,
    uid: Option<u64>,
    channels: &[String],
) {
    let names = match checked(chat, uid, channels) {
        Ok(names) => names,
        Err(why) => return reply(chat, conn, ChatReply::error(op::SUBSCRIBE, why)).await,
    };
    let answer = match chat.engine.subscribe(conn, &names).await {
        Ok(()) => ChatReply::success(op::SUBSCRIBE),
        Err(err) => {
            tracing::warn!(node = %conn.node, client_id = %conn.client, op = op::SUBSCRIBE, error = %err, "engine refused");
            ChatReply::error(op::SUBSCRIBE, reason::INTERNAL)
        }
    };
    reply(chat, conn, answer).await;
}

/// The channels in canonical form if the user may use every one of them, else the reason
/// for the first refusal.
pub(crate) fn checked<E>(
    chat: &Chat<E>,
    uid: Option<u64>,
    channels: &[String],
) -> Result<Vec<String>, String> {
    let Some(uid) = member(uid) else {
        return Err(reason::NO_ACCESS.to_owned());
    };
    if channels.len() > chat.limits.max_channels_per_request {
        return Err(reason::TOO_MANY_CHANNELS.to_owned());
    }
    channels
        .iter()
        .map(|name| {
            Channel::parse_for_member(name, uid, chat.limits.max_room_name)
                .map(|channel| channel.to_string())
                .map_err(|err| format!("{err}: {name}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{conn, test_chat, Call};

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn member_joins_rooms_broadcast_and_own_channel() {
        let chat = test_chat().await;
        let channels = strings(&["room_101", "broadcast", "user_7"]);
        subscribe(&chat, &conn(1), Some(7), &channels).await;
        assert_eq!(
            chat.engine().take(),
            vec![
                Call::Subscribe(conn(1), channels),
                Call::Send(conn(1), json!({"op":"subscribe","success":true})),
            ]
        );
    }

    #[tokio::test]
    async fn anonymous_or_failed_login_gets_no_access() {
        let chat = test_chat().await;
        for uid in [None, Some(0)] {
            subscribe(&chat, &conn(1), uid, &strings(&["room_101"])).await;
            assert_eq!(
                chat.engine().take(),
                vec![Call::Send(
                    conn(1),
                    json!({"op":"subscribe","error":"No access"})
                )]
            );
        }
    }

    #[tokio::test]
    async fn another_users_channel_refuses_the_whole_request() {
        let chat = test_chat().await;
        subscribe(&chat, &conn(1), Some(7), &strings(&["room_101", "user_8"])).await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(
                conn(1),
                json!({"op":"subscribe","error":"No access: user_8"})
            )]
        );
    }

    #[tokio::test]
    async fn invalid_names_are_refused() {
        let chat = test_chat().await;
        subscribe(&chat, &conn(1), Some(7), &strings(&["room_a\"b"])).await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(
                conn(1),
                json!({"op":"subscribe","error":"Invalid channel: room_a\"b"})
            )]
        );
    }

    #[tokio::test]
    async fn too_many_channels_are_refused() {
        let chat = test_chat().await;
        let many: Vec<String> = (0..=chat.limits().max_channels_per_request)
            .map(|i| format!("room_{i}"))
            .collect();
        subscribe(&chat, &conn(1), Some(7), &many).await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(
                conn(1),
                json!({"op":"subscribe","error":"Too many channels"})
            )]
        );
    }

    #[tokio::test]
    async fn engine_failure_is_reported_to_the_browser() {
        let chat = test_chat().await;
        chat.engine().fail_calls(true);
        subscribe(&chat, &conn(1), Some(7), &strings(&["room_1"])).await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(
                conn(1),
                json!({"op":"subscribe","error":reason::INTERNAL})
            )]
        );
    }
}

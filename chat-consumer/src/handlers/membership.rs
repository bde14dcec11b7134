//! `subscribe` and `unsubscribe`: join or leave rooms, `broadcast`, or one's own `user_<uid>`
//! channel. Both take the same names and the same permission checks.

use connmix_protocol::chat::{op, ChatReply, MembershipEvent};

use super::outgoing::now_millis;
use super::{reason, Ctx};
use crate::chat::Chat;
use crate::engine::ChatEngine;
use crate::service::rooms;

/// Which way a membership request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `subscribe`.
    Join,
    /// `unsubscribe`.
    Leave,
}

impl Change {
    /// The op answered.
    pub fn op(self) -> &'static str {
        match self {
            Change::Join => op::SUBSCRIBE,
            Change::Leave => op::UNSUBSCRIBE,
        }
    }
}

/// Subscribes the connection to `channels` or unsubscribes it from them: all of them, or none
/// if any is refused.
pub async fn membership<E: ChatEngine>(cx: &Ctx<'_, E>, change: Change, channels: &[String]) {
    let op = change.op();
    let names = match checked(cx, channels) {
        Ok(names) => names,
        Err(why) => return cx.reply(ChatReply::error(op, why)).await,
    };
    let engine = &cx.chat.engine;
    let done = match change {
        Change::Join => engine.subscribe(cx.conn, &names).await,
        Change::Leave => engine.unsubscribe(cx.conn, &names).await,
    };
    let answer = match done {
        Ok(()) => ChatReply::success(op),
        Err(err) => {
            tracing::warn!(error = %err, "engine refused");
            return cx.reply(ChatReply::error(op, reason::INTERNAL)).await;
        }
    };
    // The engine took it: the records follow, and the room hears of a first join or a last
    // leave after the sender has its answer.
    let uid = cx.user.unwrap_or_default();
    let mut changed = Vec::new();
    let recorded_rooms = names
        .iter()
        .filter(|name| cx.chat.limits.room_presence.records() && is_room(name));
    for name in recorded_rooms {
        let recorded = match change {
            Change::Join => rooms::join(&cx.chat.db, cx.conn, uid, name).await,
            Change::Leave => rooms::leave(&cx.chat.db, cx.conn, uid, name).await,
        };
        match recorded {
            Ok(true) => changed.push((name.clone(), uid)),
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(channel = name, error = %err, "cannot record room membership")
            }
        }
    }
    cx.reply(answer).await;
    announce(cx.chat, change, &changed).await;
}

fn is_room(name: &str) -> bool {
    name.starts_with(crate::channel::ROOM_PREFIX)
}

/// Publishes a join or leave event on each room of `changed` for its user, when the chat
/// sends them (`--room-presence events`). Failures are logged: the change itself stands.
pub(crate) async fn announce<E: ChatEngine>(
    chat: &Chat<E>,
    change: Change,
    changed: &[rooms::Left],
) {
    if !chat.limits.room_presence.events() {
        return;
    }
    for (room, uid) in changed {
        let name = match chat.names.get(&chat.db, *uid).await {
            Ok(Some(name)) => name,
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(uid, error = %err, "cannot look up a member's name");
                continue;
            }
        };
        let event = match change {
            Change::Join => MembershipEvent::join(room, *uid, &name, now_millis()),
            Change::Leave => MembershipEvent::leave(room, *uid, &name, now_millis()),
        };
        if let Err(err) = chat.engine.publish(room, event.to_json()).await {
            tracing::warn!(channel = room, error = %err, "cannot announce a join or leave");
        }
    }
}

/// The channels in canonical form if the user may use every one of them, else the reason
/// for the first refusal.
fn checked<E: ChatEngine>(cx: &Ctx<'_, E>, channels: &[String]) -> Result<Vec<String>, String> {
    if cx.user.is_none() {
        return Err(reason::NO_ACCESS.to_owned());
    }
    if channels.len() > cx.chat.limits.max_channels_per_request {
        return Err(reason::TOO_MANY_CHANNELS.to_owned());
    }
    channels
        .iter()
        .map(|name| cx.member_channel(name).map(|channel| channel.to_string()))
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
        membership(&Ctx::new(&chat, &conn(1), Some(7)), Change::Join, &channels).await;
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
        for change in [Change::Join, Change::Leave] {
            let sender = conn(1);
            let cx = Ctx::new(&chat, &sender, None);
            membership(&cx, change, &strings(&["room_101"])).await;
            assert_eq!(
                chat.engine().take(),
                vec![Call::Send(
                    conn(1),
                    json!({"op":change.op(),"error":"No access"})
                )]
            );
        }
    }

    #[tokio::test]
    async fn another_users_channel_refuses_the_whole_request() {
        let chat = test_chat().await;
        membership(
            &Ctx::new(&chat, &conn(1), Some(7)),
            Change::Join,
            &strings(&["room_101", "user_8"]),
        )
        .await;
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
        membership(
            &Ctx::new(&chat, &conn(1), Some(7)),
            Change::Join,
            &strings(&["room_a\"b"]),
        )
        .await;
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
        membership(&Ctx::new(&chat, &conn(1), Some(7)), Change::Join, &many).await;
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
        membership(
            &Ctx::new(&chat, &conn(1), Some(7)),
            Change::Join,
            &strings(&["room_1"]),
        )
        .await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(
                conn(1),
                json!({"op":"subscribe","error":reason::INTERNAL})
            )]
        );
    }

    #[tokio::test]
    async fn member_leaves_a_room() {
        let chat = test_chat().await;
        let rooms = vec!["room_101".to_owned()];
        membership(&Ctx::new(&chat, &conn(1), Some(3)), Change::Leave, &rooms).await;
        assert_eq!(
            chat.engine().take(),
            vec![
                Call::Unsubscribe(conn(1), rooms),
                Call::Send(conn(1), json!({"op":"unsubscribe","success":true})),
            ]
        );
    }
}

//! `presence`: who is in a room now, across every node and consumer.

use connmix_protocol::chat::{op, ChatReply, Member};

use super::{reason, Ctx};
use crate::channel::Channel;
use crate::engine::ChatEngine;
use crate::service::rooms;

/// Most users one answer lists.
pub const MAX_LISTED: u64 = 1000;

/// Answers the users with a connection in `room`, each once, by name.
pub async fn presence<E: ChatEngine>(cx: &Ctx<'_, E>, room: &str) {
    let chat = cx.chat;
    let name = match cx.member_channel(room) {
        Ok(channel @ Channel::Room(_)) => channel.to_string(),
        Ok(_) => {
            return cx
                .reply(ChatReply::error(op::PRESENCE, reason::ROOMS_ONLY))
                .await
        }
        Err(why) => return cx.reply(ChatReply::error(op::PRESENCE, why)).await,
    };
    if !chat.limits.room_presence.records() {
        return cx
            .reply(ChatReply::error(op::PRESENCE, reason::PRESENCE_OFF))
            .await;
    }
    let answer = match rooms::members(&chat.db, &name, MAX_LISTED).await {
        Ok(members) => {
            let users = members
                .into_iter()
                .map(|(uid, name)| Member::new(uid, name))
                .collect();
            ChatReply::presence(&name, users)
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot read room members");
            ChatReply::error(op::PRESENCE, reason::INTERNAL)
        }
    };
    cx.reply(answer).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::handlers::close::close;
    use crate::handlers::membership::{membership, Change};
    use crate::limits::RoomPresence;
    use crate::testing::{add_user, conn, test_chat, Call};

    fn rooms(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn last_reply(calls: &[Call]) -> serde_json::Value {
        match calls.last() {
            Some(Call::Send(_, reply)) => reply.clone(),
            other => panic!("no reply: {other:?}"),
        }
    }

    fn events(calls: &[Call]) -> Vec<(String, String, serde_json::Value)> {
        calls
            .iter()
            .filter_map(|call| match call {
                Call::Publish(channel, event) => Some((
                    channel.clone(),
                    event["event"].as_str()?.to_owned(),
                    event["from"].clone(),
                )),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_room_lists_each_user_once_and_hears_first_joins_and_last_leaves() {
        let chat = test_chat().await;
        let one = add_user(&chat, "user1", "123456").await;
        let two = add_user(&chat, "user2", "123456").await;
        let room = rooms(&["room_101"]);
        membership(&Ctx::new(&chat, &conn(1), Some(one)), Change::Join, &room).await;
        let calls = chat.engine().take();
        assert_eq!(
            events(&calls),
            vec![("room_101".into(), "join".into(), json!("user1"))]
        );
        let Some(Call::Publish(_, join)) = calls.last() else {
            panic!("the join is announced after the answer: {calls:?}");
        };
        assert_eq!(join["uid"], one);
        assert!(join["time"].as_u64().unwrap() > 0);

        // A second device of user1, then user2.
        membership(&Ctx::new(&chat, &conn(2), Some(one)), Change::Join, &room).await;
        membership(&Ctx::new(&chat, &conn(3), Some(two)), Change::Join, &room).await;
        assert_eq!(
            events(&chat.engine().take()),
            vec![("room_101".into(), "join".into(), json!("user2"))]
        );
        presence(&Ctx::new(&chat, &conn(3), Some(two)), "room_101").await;
        assert_eq!(
            last_reply(&chat.engine().take()),
            json!({"op":"presence","success":true,"channel":"room_101",
                   "users":[{"uid":one,"name":"user1"},{"uid":two,"name":"user2"}]})
        );

        // user1 closes one device: still there; unsubscribes the other: gone.
        close(&Ctx::new(&chat, &conn(1), Some(one))).await;
        assert!(events(&chat.engine().take()).is_empty());
        membership(&Ctx::new(&chat, &conn(2), Some(one)), Change::Leave, &room).await;
        assert_eq!(
            events(&chat.engine().take()),
            vec![("room_101".into(), "leave".into(), json!("user1"))]
        );
        close(&Ctx::new(&chat, &conn(3), Some(two))).await;
        assert_eq!(
            events(&chat.engine().take()),
            vec![("room_101".into(), "leave".into(), json!("user2"))]
        );
        presence(&Ctx::new(&chat, &conn(4), Some(two)), "room_101").await;
        assert_eq!(last_reply(&chat.engine().take())["users"], json!([]));
    }

    #[tokio::test]
    async fn only_rooms_and_only_for_logged_in_users() {
        let chat = test_chat().await;
        let one = add_user(&chat, "user1", "123456").await;
        presence(&Ctx::new(&chat, &conn(1), None), "room_1").await;
        assert_eq!(
            last_reply(&chat.engine().take()),
            json!({"op":"presence","error":"No access"})
        );
        for channel in ["broadcast", &format!("user_{one}")] {
            presence(&Ctx::new(&chat, &conn(1), Some(one)), channel).await;
            assert_eq!(
                last_reply(&chat.engine().take()),
                json!({"op":"presence","error":reason::ROOMS_ONLY})
            );
        }
        presence(&Ctx::new(&chat, &conn(1), Some(one)), "room_a b").await;
        assert_eq!(
            last_reply(&chat.engine().take()),
            json!({"op":"presence","error":"Invalid channel: room_a b"})
        );
    }

    #[tokio::test]
    async fn without_room_records_presence_is_refused_and_nothing_is_announced() {
        let mut chat = test_chat().await;
        chat.limits.room_presence = RoomPresence::Off;
        let one = add_user(&chat, "user1", "123456").await;
        let room = rooms(&["room_1"]);
        membership(&Ctx::new(&chat, &conn(1), Some(one)), Change::Join, &room).await;
        let calls = chat.engine().take();
        assert!(events(&calls).is_empty(), "{calls:?}");
        assert_eq!(last_reply(&calls), json!({"op":"subscribe","success":true}));
        presence(&Ctx::new(&chat, &conn(1), Some(one)), "room_1").await;
        assert_eq!(
            last_reply(&chat.engine().take()),
            json!({"op":"presence","error":reason::PRESENCE_OFF})
        );
        assert!(rooms::members(chat.db(), "room_1", 10)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn join_and_leave_events_can_be_turned_off() {
        let mut chat = test_chat().await;
        chat.limits.room_presence = RoomPresence::Records;
        let one = add_user(&chat, "user1", "123456").await;
        let room = rooms(&["room_1"]);
        membership(&Ctx::new(&chat, &conn(1), Some(one)), Change::Join, &room).await;
        assert!(events(&chat.engine().take()).is_empty());
        presence(&Ctx::new(&chat, &conn(1), Some(one)), "room_1").await;
        assert_eq!(
            last_reply(&chat.engine().take())["users"],
            json!([{"uid":one,"name":"user1"}])
        );
    }
}

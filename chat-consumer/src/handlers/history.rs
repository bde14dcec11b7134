//! `history`: a channel's latest messages, for a page that joins a room or reloads.

use connmix_protocol::chat::{op, ChatReply, DEFAULT_HISTORY};

use super::{reason, Ctx};
use crate::engine::ChatEngine;

/// Answers the latest `count` (default [`DEFAULT_HISTORY`]) messages of `channel`, oldest
/// first. The channel rules are `subscribe`'s: rooms, `broadcast` and one's own `user_<id>`.
pub async fn history<E: ChatEngine>(cx: &Ctx<'_, E>, channel: &str, count: Option<u32>) {
    let chat = cx.chat;
    let name = match cx.member_channel(channel) {
        Ok(parsed) => parsed.to_string(),
        Err(why) => return cx.reply(ChatReply::error(op::HISTORY, why)).await,
    };
    if !chat.history.is_on() {
        return cx
            .reply(ChatReply::error(op::HISTORY, reason::HISTORY_OFF))
            .await;
    }
    let count = count.unwrap_or(DEFAULT_HISTORY);
    let answer = match chat.history.latest(&chat.db, &name, count).await {
        Ok(messages) => ChatReply::history(&name, messages),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the history");
            ChatReply::error(op::HISTORY, reason::INTERNAL)
        }
    };
    cx.reply(answer).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::handlers::send_to_room::send_to_room;
    use crate::handlers::send_to_user::send_to_user;
    use crate::testing::{add_user, conn, test_chat, Call};

    fn reply(calls: Vec<Call>) -> serde_json::Value {
        match calls.into_iter().last() {
            Some(Call::Send(_, reply)) => reply,
            other => panic!("no reply: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_late_joiner_reads_what_was_said_in_the_room() {
        let chat = test_chat().await;
        let one = add_user(&chat, "user1", "123456").await;
        let two = add_user(&chat, "user2", "123456").await;
        for text in ["first", "second", "third"] {
            send_to_room(&Ctx::new(&chat, &conn(1), Some(one)), "room_101", text).await;
        }
        chat.history().flush().await;
        chat.engine().take();
        history(&Ctx::new(&chat, &conn(2), Some(two)), "room_101", Some(2)).await;
        let mut answer = reply(chat.engine().take());
        for message in answer["messages"].as_array_mut().unwrap() {
            assert!(message["time"].as_u64().unwrap() > 0);
            message.as_object_mut().unwrap().remove("time");
        }
        assert_eq!(
            answer,
            json!({"op":"history","success":true,"channel":"room_101","messages":[
                {"event":"subscribe","channel":"room_101","data":format!("uid:{one},message:second"),
                 "uid":one,"from":"user1","text":"second"},
                {"event":"subscribe","channel":"room_101","data":format!("uid:{one},message:third"),
                 "uid":one,"from":"user1","text":"third"},
            ]})
        );
    }

    #[tokio::test]
    async fn ones_own_direct_messages_are_kept_and_nobody_elses_can_be_read() {
        let chat = test_chat().await;
        let one = add_user(&chat, "user1", "123456").await;
        let two = add_user(&chat, "user2", "123456").await;
        let to_two = format!("user_{two}");
        send_to_user(&Ctx::new(&chat, &conn(1), Some(one)), &to_two, "psst").await;
        chat.history().flush().await;
        chat.engine().take();

        history(&Ctx::new(&chat, &conn(2), Some(two)), &to_two, None).await;
        let answer = reply(chat.engine().take());
        assert_eq!(answer["messages"][0]["text"], "psst");

        history(&Ctx::new(&chat, &conn(1), Some(one)), &to_two, None).await;
        assert_eq!(
            reply(chat.engine().take()),
            json!({"op":"history","error":format!("No access: {to_two}")})
        );
        history(&Ctx::new(&chat, &conn(3), None), "room_1", None).await;
        assert_eq!(
            reply(chat.engine().take()),
            json!({"op":"history","error":"No access"})
        );
    }

    #[tokio::test]
    async fn a_consumer_without_history_says_so() {
        let mut chat = test_chat().await;
        chat.history = crate::history::History::off();
        let one = add_user(&chat, "user1", "123456").await;
        history(&Ctx::new(&chat, &conn(1), Some(one)), "room_1", None).await;
        assert_eq!(
            reply(chat.engine().take()),
            json!({"op":"history","error":"History is turned off"})
        );
    }
}

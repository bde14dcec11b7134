//! `unsubscribe`: leave channels. The same names are accepted as for `subscribe`.

use connmix_protocol::chat::{op, ChatReply};

use super::subscribe::checked;
use super::{reason, reply};
use crate::chat::Chat;
use crate::engine::{ChatEngine, Conn};

/// Unsubscribes the connection from `channels`.
pub async fn unsubscribe<E: ChatEngine>(
    chat: &Chat<E>,
    conn: &Conn,
    uid: Option<u64>,
    channels: &[String],
) {
    let names = match checked(chat, uid, channels) {
        Ok(names) => names,
        Err(why) => return reply(chat, conn, ChatReply::error(op::UNSUBSCRIBE, why)).await,
    };
    let answer = match chat.engine.unsubscribe(conn, &names).await {
        Ok(()) => ChatReply::success(op::UNSUBSCRIBE),
        Err(err) => {
            tracing::warn!(node = %conn.node, client_id = %conn.client, op = op::UNSUBSCRIBE, error = %err, "engine refused");
            ChatReply::error(op::UNSUBSCRIBE, reason::INTERNAL)
        }
    };
    reply(chat, conn, answer).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{conn, test_chat, Call};

    #[tokio::test]
    async fn member_leaves_a_room() {
        let chat = test_chat().await;
        let rooms = vec!["room_101".to_owned()];
        unsubscribe(&chat, &conn(1), Some(3), &rooms).await;
        assert_eq!(
            chat.engine().take(),
            vec![
                Call::Unsubscribe(conn(1), rooms),
                Call::Send(conn(1), json!({"op":"unsubscribe","success":true})),
            ]
        );
    }

    #[tokio::test]
    async fn anonymous_connection_gets_no_access() {
        let chat = test_chat().await;
        unsubscribe(&chat, &conn(1), None, &["room_101".to_owned()]).await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(
                conn(1),
                json!({"op":"unsubscribe","error":"No access"})
            )]
        );
    }
}

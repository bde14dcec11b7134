//! `auth`: log a connection in.
//!
//! The script holds every later frame of the connection until the context value `uid` is set,
//! so this handler sets it on every path: the user id on success, 0 on any failure. (The
//! tutorial set a different key on failure and so froze the connection for good.)

use connmix_protocol::chat::{op, ChatReply};

use super::{member, reason, reply};
use crate::chat::Chat;
use crate::engine::{ChatEngine, Conn};
use crate::service::{auth, users};

/// Longest name worth looking up: the column holds 255 bytes.
const MAX_NAME: usize = 255;
/// Longest password worth hashing; bounds the work one frame can cause.
const MAX_PASSWORD: usize = 1024;

/// Logs the connection in as `name`. `previous` is the connection's `uid` before this frame
/// (set when it logs in again).
pub async fn auth<E: ChatEngine>(
    chat: &Chat<E>,
    conn: &Conn,
    previous: Option<u64>,
    name: &str,
    password: &str,
) {
    if name.len() > MAX_NAME || password.len() > MAX_PASSWORD {
        return refuse(
            chat,
            conn,
            previous,
            ChatReply::error(op::AUTH, reason::BAD_LOGIN),
        )
        .await;
    }
    match auth::login(&chat.db, &chat.hasher, name, password).await {
        Ok(Some(user)) => {
            chat.names.remember(user.id, &user.name);
            if set_uid(chat, conn, previous, user.id).await {
                tracing::info!(node = %conn.node, client_id = %conn.client, uid = user.id, "logged in");
                reply(chat, conn, ChatReply::auth_success(user.id, &user.name)).await;
            } else {
                reply(chat, conn, ChatReply::error(op::AUTH, reason::INTERNAL)).await;
            }
        }
        Ok(None) => {
            tracing::info!(node = %conn.node, client_id = %conn.client, "login refused");
            refuse(
                chat,
                conn,
                previous,
                ChatReply::error(op::AUTH, reason::BAD_LOGIN),
            )
            .await;
        }
        Err(err) => {
            tracing::error!(node = %conn.node, client_id = %conn.client, error = %err, "login failed");
            refuse(
                chat,
                conn,
                previous,
                ChatReply::error(op::AUTH, reason::INTERNAL),
            )
            .await;
        }
    }
}

/// Any failed `auth`, including one with bad arguments: sets `uid` to 0 so the script lets the
/// connection go on, then tells the browser why.
pub async fn refuse<E: ChatEngine>(
    chat: &Chat<E>,
    conn: &Conn,
    previous: Option<u64>,
    why: ChatReply,
) {
    set_uid(chat, conn, previous, 0).await;
    reply(chat, conn, why).await;
}

/// Sets the context value and moves the `online` count from the previous user to the new one.
/// Counts change only once the engine took the value: otherwise the connection's close event
/// will still carry the previous uid.
async fn set_uid<E: ChatEngine>(
    chat: &Chat<E>,
    conn: &Conn,
    previous: Option<u64>,
    uid: u64,
) -> bool {
    if let Err(err) = chat.engine.set_uid(conn, uid).await {
        tracing::warn!(node = %conn.node, client_id = %conn.client, uid, error = %err, "cannot set uid");
        return false;
    }
    let previous = member(previous);
    if previous == member(Some(uid)) {
        return true;
    }
    if let Some(old) = previous {
        if let Err(err) = users::decrement_online(&chat.db, old).await {
            tracing::warn!(client_id = %conn.client, uid = old, error = %err, "cannot count connection out");
        }
    }
    if uid > 0 {
        if let Err(err) = users::increment_online(&chat.db, uid).await {
            tracing::warn!(client_id = %conn.client, uid, error = %err, "cannot count connection in");
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::service::users;
    use crate::testing::{add_user, conn, online, test_chat, Call};

    #[tokio::test]
    async fn good_password_sets_uid_then_replies_success_and_counts_online() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        auth(&chat, &conn(1), None, "user1", "123456").await;
        assert_eq!(
            chat.engine().take(),
            vec![
                Call::SetUid(conn(1), uid),
                Call::Send(
                    conn(1),
                    json!({"op":"auth","success":true,"uid":uid,"name":"user1"})
                ),
            ]
        );
        assert_eq!(online(&chat, uid).await, 1);
    }

    #[tokio::test]
    async fn wrong_password_and_unknown_user_set_uid_zero_with_the_same_reply() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        for (name, password) in [("user1", "nope"), ("nobody", "123456")] {
            auth(&chat, &conn(1), None, name, password).await;
            assert_eq!(
                chat.engine().take(),
                vec![
                    Call::SetUid(conn(1), 0),
                    Call::Send(
                        conn(1),
                        json!({"op":"auth","error":"Invalid name or password"})
                    ),
                ]
            );
        }
        assert_eq!(online(&chat, uid).await, 0);
    }

    #[tokio::test]
    async fn database_failure_still_sets_uid_zero() {
        let chat = test_chat().await;
        chat.db().clone().close().await.unwrap();
        auth(&chat, &conn(1), None, "user1", "123456").await;
        let calls = chat.engine().take();
        assert_eq!(calls[0], Call::SetUid(conn(1), 0));
        assert_eq!(
            calls[1],
            Call::Send(conn(1), json!({"op":"auth","error":reason::INTERNAL}))
        );
    }

    #[tokio::test]
    async fn plain_text_password_from_the_tutorial_logs_in_and_is_rehashed() {
        let chat = test_chat().await;
        let user = users::create(chat.db(), "legacy", "l@example.com", "123456".into())
            .await
            .unwrap();
        auth(&chat, &conn(1), None, "legacy", "123456").await;
        assert_eq!(
            chat.engine().take()[0],
            Call::SetUid(conn(1), user.id as u64)
        );
        let stored = users::find_by_name(chat.db(), "legacy")
            .await
            .unwrap()
            .unwrap();
        assert!(stored.password.starts_with("$argon2id$"));
        auth(&chat, &conn(2), None, "legacy", "123456").await;
        assert_eq!(
            chat.engine().take()[0],
            Call::SetUid(conn(2), user.id as u64)
        );
    }

    #[tokio::test]
    async fn logging_in_again_as_another_user_moves_the_online_count() {
        let chat = test_chat().await;
        let one = add_user(&chat, "user1", "123456").await;
        let two = add_user(&chat, "user2", "654321").await;
        auth(&chat, &conn(1), None, "user1", "123456").await;
        auth(&chat, &conn(1), Some(one), "user1", "123456").await;
        assert_eq!(
            online(&chat, one).await,
            1,
            "same user again: no double count"
        );
        auth(&chat, &conn(1), Some(one), "user2", "654321").await;
        assert_eq!((online(&chat, one).await, online(&chat, two).await), (0, 1));
        auth(&chat, &conn(1), Some(two), "user2", "wrong").await;
        assert_eq!(online(&chat, two).await, 0, "a failed re-login logs out");
    }

    #[tokio::test]
    async fn refused_engine_leaves_the_count_alone_and_says_so() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        chat.engine().fail_set_uid(true);
        auth(&chat, &conn(1), None, "user1", "123456").await;
        assert_eq!(online(&chat, uid).await, 0);
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(
                conn(1),
                json!({"op":"auth","error":reason::INTERNAL})
            )]
        );
    }

    #[tokio::test]
    async fn oversized_credentials_are_refused_without_a_lookup() {
        let chat = test_chat().await;
        add_user(&chat, "user1", "123456").await;
        auth(
            &chat,
            &conn(1),
            None,
            "user1",
            &"x".repeat(MAX_PASSWORD + 1),
        )
        .await;
        assert_eq!(chat.engine().take()[0], Call::SetUid(conn(1), 0));
    }
}

//! `auth`: log a connection in.
//!
//! The script holds every later frame of the connection until the context value `uid` is set,
//! so this handler sets it on every path: the user id on success, 0 on any failure. (The
//! tutorial set a different key on failure and so froze the connection for good.)

use connmix_protocol::chat::{op, ChatReply};
use metrics::counter;

use super::membership::{announce, Change};
use super::{reason, Ctx};
use crate::engine::ChatEngine;
use crate::service::auth::LoggedIn;
use crate::service::{auth, presence, rooms};
use crate::telemetry::names::LOGINS;

/// Longest name worth looking up: the column holds 255 bytes.
pub(crate) const MAX_NAME: usize = 255;
/// Longest password worth hashing; bounds the work one frame can cause.
const MAX_PASSWORD: usize = 1024;

/// Logs the connection in as `name`. `cx.user` is who was logged in on it before this frame
/// (set when it logs in again).
pub async fn auth<E: ChatEngine>(cx: &Ctx<'_, E>, name: &str, password: &str) {
    if name.len() > MAX_NAME || password.len() > MAX_PASSWORD {
        return refuse(cx, ChatReply::error(op::AUTH, reason::BAD_LOGIN)).await;
    }
    if let Err(retry_in) = cx.chat.logins.check(name, cx.conn) {
        tracing::info!(?retry_in, "login throttled");
        counter!(LOGINS, "result" => "throttled").increment(1);
        let why = ChatReply::error(op::AUTH, reason::too_many_logins(retry_in));
        return refuse(cx, why).await;
    }
    match auth::login(&cx.chat.db, &cx.chat.hasher, name, password).await {
        Ok(Some(user)) => accept(cx, &user).await,
        Ok(None) => {
            cx.chat.logins.failed(name, cx.conn);
            tracing::info!("login refused");
            counter!(LOGINS, "result" => "failed").increment(1);
            refuse(cx, ChatReply::error(op::AUTH, reason::BAD_LOGIN)).await;
        }
        Err(err) => {
            tracing::error!(error = %err, "login failed");
            counter!(LOGINS, "result" => "error").increment(1);
            refuse(cx, ChatReply::error(op::AUTH, reason::INTERNAL)).await;
        }
    }
}

/// Logs the connection in with a session token an earlier login returned.
///
/// Not throttled: checking a token hashes nothing, and its signature cannot be guessed.
pub async fn auth_token<E: ChatEngine>(cx: &Ctx<'_, E>, token: &str) {
    let Some(sessions) = &cx.chat.sessions else {
        return refuse(cx, ChatReply::error(op::AUTH, reason::BAD_SESSION)).await;
    };
    match sessions.login(&cx.chat.db, token).await {
        Ok(Some(user)) => accept(cx, &user).await,
        Ok(None) => {
            tracing::info!("session token refused");
            counter!(LOGINS, "result" => "failed").increment(1);
            refuse(cx, ChatReply::error(op::AUTH, reason::BAD_SESSION)).await;
        }
        Err(err) => {
            tracing::error!(error = %err, "login failed");
            counter!(LOGINS, "result" => "error").increment(1);
            refuse(cx, ChatReply::error(op::AUTH, reason::INTERNAL)).await;
        }
    }
}

/// A login that checked valid: the connection is `user`'s now, and the browser gets a fresh
/// session token.
async fn accept<E: ChatEngine>(cx: &Ctx<'_, E>, user: &LoggedIn) {
    cx.chat.names.remember(user.id, &user.name);
    if set_uid(cx, user.id).await {
        tracing::info!(uid = user.id, "logged in");
        counter!(LOGINS, "result" => "ok").increment(1);
        let token = cx
            .chat
            .sessions
            .as_ref()
            .map(|sessions| sessions.issue(user));
        cx.reply(ChatReply::auth_success(user.id, &user.name, token))
            .await;
    } else {
        counter!(LOGINS, "result" => "error").increment(1);
        cx.reply(ChatReply::error(op::AUTH, reason::INTERNAL)).await;
    }
}

/// Any failed `auth`, including one with bad arguments: sets `uid` to 0 so the script lets the
/// connection go on, then tells the browser why.
pub async fn refuse<E: ChatEngine>(cx: &Ctx<'_, E>, why: ChatReply) {
    set_uid(cx, 0).await;
    cx.reply(why).await;
}

/// Sets the context value and moves the connection's presence record to the new user (or
/// removes it). The record changes only once the engine took the value: otherwise the
/// connection's close event will still carry the previous uid.
async fn set_uid<E: ChatEngine>(cx: &Ctx<'_, E>, uid: u64) -> bool {
    let db = &cx.chat.db;
    if let Err(err) = cx.chat.engine.set_uid(cx.conn, uid).await {
        tracing::warn!(uid, error = %err, "cannot set uid");
        return false;
    }
    let next = Some(uid).filter(|uid| *uid > 0);
    if cx.user == next {
        return true;
    }
    let recorded = match next {
        Some(uid) => presence::connect(db, cx.conn, uid).await,
        None => presence::disconnect(db, cx.conn).await.map(drop),
    };
    if let Err(err) = recorded {
        tracing::warn!(uid, error = %err, "cannot record presence");
    }
    // The rooms were the previous user's: they left them (the page joins again as the new
    // one).
    if cx.user.is_some() && cx.chat.limits.room_presence.records() {
        match rooms::leave_all(db, cx.conn).await {
            Ok(left) => announce(cx.chat, Change::Leave, &left).await,
            Err(err) => tracing::warn!(uid, error = %err, "cannot remove room memberships"),
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
        auth(&Ctx::new(&chat, &conn(1), None), "user1", "123456").await;
        let calls = chat.engine().take();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0], Call::SetUid(conn(1), uid));
        let Call::Send(to, mut reply) = calls[1].clone() else {
            panic!("no reply: {calls:?}");
        };
        assert_eq!(to, conn(1));
        let token = reply["token"].take();
        assert!(token.as_str().is_some_and(|t| t.len() > 40), "{token}");
        assert_eq!(
            reply,
            json!({"op":"auth","success":true,"uid":uid,"name":"user1","token":null})
        );
        assert_eq!(online(&chat, uid).await, 1);
    }

    fn token_of(calls: &[Call]) -> String {
        calls
            .iter()
            .find_map(|call| match call {
                Call::Send(_, reply) => reply["token"].as_str().map(str::to_owned),
                _ => None,
            })
            .expect("a token")
    }

    #[tokio::test]
    async fn the_token_of_a_login_logs_in_again_until_the_password_changes() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        auth(&Ctx::new(&chat, &conn(1), None), "user1", "123456").await;
        let token = token_of(&chat.engine().take());

        // A reload: a new connection, nobody logged in on it yet.
        auth_token(&Ctx::new(&chat, &conn(2), None), &token).await;
        let calls = chat.engine().take();
        assert_eq!(calls[0], Call::SetUid(conn(2), uid));
        assert!(
            matches!(&calls[1], Call::Send(_, r) if r["success"] == true && r["name"] == "user1"),
            "{calls:?}"
        );
        assert_eq!(online(&chat, uid).await, 2);

        users::set_password(chat.db(), "user1", chat.hasher.hash("new").await.unwrap())
            .await
            .unwrap();
        auth_token(&Ctx::new(&chat, &conn(3), None), &token).await;
        assert_eq!(
            chat.engine().take(),
            vec![
                Call::SetUid(conn(3), 0),
                Call::Send(conn(3), json!({"op":"auth","error":reason::BAD_SESSION})),
            ],
            "a new password revokes the token, and the engine's wait is released"
        );
    }

    #[tokio::test]
    async fn a_garbage_token_is_a_failed_login() {
        let chat = test_chat().await;
        add_user(&chat, "user1", "123456").await;
        auth_token(&Ctx::new(&chat, &conn(1), None), "user1").await;
        assert_eq!(
            chat.engine().take(),
            vec![
                Call::SetUid(conn(1), 0),
                Call::Send(conn(1), json!({"op":"auth","error":reason::BAD_SESSION})),
            ]
        );
    }

    #[tokio::test]
    async fn wrong_password_and_unknown_user_set_uid_zero_with_the_same_reply() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        for (name, password) in [("user1", "nope"), ("nobody", "123456")] {
            auth(&Ctx::new(&chat, &conn(1), None), name, password).await;
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
        auth(&Ctx::new(&chat, &conn(1), None), "user1", "123456").await;
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
        auth(&Ctx::new(&chat, &conn(1), None), "legacy", "123456").await;
        assert_eq!(
            chat.engine().take()[0],
            Call::SetUid(conn(1), user.id as u64)
        );
        let stored = users::find_by_name(chat.db(), "legacy")
            .await
            .unwrap()
            .unwrap();
        assert!(stored.password.starts_with("$argon2id$"));
        auth(&Ctx::new(&chat, &conn(2), None), "legacy", "123456").await;
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
        auth(&Ctx::new(&chat, &conn(1), None), "user1", "123456").await;
        auth(&Ctx::new(&chat, &conn(1), Some(one)), "user1", "123456").await;
        assert_eq!(
            online(&chat, one).await,
            1,
            "same user again: no double count"
        );
        auth(&Ctx::new(&chat, &conn(1), Some(one)), "user2", "654321").await;
        assert_eq!((online(&chat, one).await, online(&chat, two).await), (0, 1));
        auth(&Ctx::new(&chat, &conn(1), Some(two)), "user2", "wrong").await;
        assert_eq!(online(&chat, two).await, 0, "a failed re-login logs out");
    }

    #[tokio::test]
    async fn refused_engine_leaves_the_count_alone_and_says_so() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        chat.engine().fail_set_uid(true);
        auth(&Ctx::new(&chat, &conn(1), None), "user1", "123456").await;
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
        let long = "x".repeat(MAX_PASSWORD + 1);
        auth(&Ctx::new(&chat, &conn(1), None), "user1", &long).await;
        assert_eq!(chat.engine().take()[0], Call::SetUid(conn(1), 0));
    }

    #[tokio::test]
    async fn many_devices_logging_in_at_once_are_not_throttled() {
        let chat = test_chat().await;
        add_user(&chat, "user1", "123456").await;
        let devices: Vec<_> = (0..20).map(conn).collect();
        let logins = devices
            .iter()
            .map(|device| async { auth(&Ctx::new(&chat, device, None), "user1", "123456").await });
        futures_util::future::join_all(logins).await;
        let successes = chat
            .engine()
            .take()
            .into_iter()
            .filter(|call| matches!(call, Call::Send(_, reply) if reply["success"] == true))
            .count();
        assert_eq!(successes, 20);
    }

    #[tokio::test]
    async fn repeated_wrong_passwords_are_throttled_and_still_release_the_connection() {
        let chat = test_chat().await;
        add_user(&chat, "user1", "123456").await;
        let allowed = chat.limits().login_failures;
        for _ in 0..allowed {
            auth(&Ctx::new(&chat, &conn(1), None), "user1", "guess").await;
        }
        chat.engine().take();
        // Even the right password waits for the window now: the name is under attack.
        auth(&Ctx::new(&chat, &conn(2), None), "user1", "123456").await;
        let calls = chat.engine().take();
        assert_eq!(calls[0], Call::SetUid(conn(2), 0));
        let Call::Send(_, reply) = &calls[1] else {
            panic!("expected a reply, got {calls:?}");
        };
        let error = reply["error"].as_str().unwrap();
        assert!(
            error.starts_with("Too many login attempts, retry in "),
            "{error}"
        );
    }
}

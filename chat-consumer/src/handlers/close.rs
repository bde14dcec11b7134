//! The `close` event: a logged-in connection ended, so its presence record and room
//! memberships go.

use super::membership::{announce, Change};
use super::Ctx;
use crate::engine::ChatEngine;
use crate::service::{presence, rooms};

/// Removes the connection's presence record and memberships; rooms its user is no longer in
/// hear that they left.
pub async fn close<E: ChatEngine>(cx: &Ctx<'_, E>) {
    let Some(uid) = cx.user else {
        return;
    };
    if let Err(err) = presence::disconnect(&cx.chat.db, cx.conn).await {
        tracing::warn!(uid, error = %err, "cannot remove presence record");
    }
    if !cx.chat.limits.room_presence.records() {
        return;
    }
    match rooms::leave_all(&cx.chat.db, cx.conn).await {
        Ok(left) => announce(cx.chat, Change::Leave, &left).await,
        Err(err) => tracing::warn!(uid, error = %err, "cannot remove room memberships"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{add_user, conn, online, test_chat};

    #[tokio::test]
    async fn closing_a_logged_in_connection_removes_only_its_own_record() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        presence::connect(chat.db(), &conn(1), uid).await.unwrap();
        presence::connect(chat.db(), &conn(2), uid).await.unwrap();
        close(&Ctx::new(&chat, &conn(1), Some(uid))).await;
        assert_eq!(online(&chat, uid).await, 1, "the other connection stays");
        close(&Ctx::new(&chat, &conn(1), Some(uid))).await;
        assert_eq!(
            online(&chat, uid).await,
            1,
            "a second close of one connection"
        );
        close(&Ctx::new(&chat, &conn(2), Some(uid))).await;
        assert_eq!(online(&chat, uid).await, 0);
        assert!(
            chat.engine().take().is_empty(),
            "a closed connection gets no reply"
        );
    }

    #[tokio::test]
    async fn closing_an_anonymous_connection_changes_nothing() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        presence::connect(chat.db(), &conn(1), uid).await.unwrap();
        close(&Ctx::new(&chat, &conn(1), None)).await;
        assert_eq!(online(&chat, uid).await, 1);
    }
}

//! The `close` event: a logged-in connection ended, so its user has one connection fewer.

use super::Ctx;
use crate::engine::ChatEngine;
use crate::service::users;

/// Counts the connection out of its user's `online`.
pub async fn close<E: ChatEngine>(cx: &Ctx<'_, E>) {
    let Some(uid) = cx.user else {
        return;
    };
    if let Err(err) = users::decrement_online(&cx.chat.db, uid).await {
        tracing::warn!(uid, error = %err, "cannot count connection out");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{add_user, conn, online, test_chat};

    #[tokio::test]
    async fn closing_a_logged_in_connection_counts_it_out_but_never_below_zero() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        users::increment_online(chat.db(), uid).await.unwrap();
        close(&Ctx::new(&chat, &conn(1), Some(uid))).await;
        assert_eq!(online(&chat, uid).await, 0);
        close(&Ctx::new(&chat, &conn(1), Some(uid))).await;
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
        users::increment_online(chat.db(), uid).await.unwrap();
        close(&Ctx::new(&chat, &conn(1), None)).await;
        assert_eq!(online(&chat, uid).await, 1);
    }
}

//! `ping` -> `{"op":"pong"}`, for anyone, logged in or not.

use connmix_protocol::chat::ChatReply;

use super::Ctx;
use crate::engine::ChatEngine;

/// Answers a ping.
pub async fn ping<E: ChatEngine>(cx: &Ctx<'_, E>) {
    cx.reply(ChatReply::pong()).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{conn, test_chat, Call};

    #[tokio::test]
    async fn ping_is_answered_with_pong() {
        let chat = test_chat().await;
        ping(&Ctx::new(&chat, &conn(1), None)).await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(conn(1), json!({"op":"pong"}))]
        );
    }

    #[tokio::test]
    async fn a_reply_to_a_browser_that_left_is_counted_not_failed() {
        let chat = test_chat().await;
        chat.engine().browser_gone(true);
        ping(&Ctx::new(&chat, &conn(1), None)).await;
        ping(&Ctx::new(&chat, &conn(2), None)).await;
        assert_eq!(chat.replies_to_gone(), 2);
        assert!(chat.engine().take().is_empty());
    }
}

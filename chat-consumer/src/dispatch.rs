//! From a queue event to a handler: decode once, then one match.

use std::time::Instant;

use connmix_protocol::chat::{op, ChatReply, ChatRequest, ChatRequestError};
use connmix_protocol::script::ScriptEvent;
use connmix_protocol::RawJson;
use tracing::Instrument;

use crate::chat::Chat;
use crate::engine::{ChatEngine, Conn};
use crate::handlers::membership::{membership, Change};
use crate::handlers::{
    auth, close, history, ping, presence, send_broadcast, send_to_room, send_to_user, Ctx,
};
use crate::telemetry;

/// A queue event, decoded and parsed, ready for its handler.
pub(crate) enum Decoded {
    /// Nothing to do (undecodable, a handshake, a binary frame).
    Nothing,
    /// The connection closed.
    Close {
        /// Who was logged in on it.
        user: Option<u64>,
    },
    /// A browser frame.
    Request {
        /// Who is logged in on the connection.
        user: Option<u64>,
        /// The frame parsed, or why it is not a request.
        request: Result<ChatRequest, ChatRequestError>,
    },
}

impl Decoded {
    /// Whether this is a login attempt, which may take long (a password hash) and after which
    /// the engine script holds the connection's next frames until the login is answered.
    pub(crate) fn is_login(&self) -> bool {
        match self {
            Decoded::Request {
                request: Ok(request),
                ..
            } => request.op() == op::AUTH,
            Decoded::Request {
                request: Err(err), ..
            } => err.op() == Some(op::AUTH),
            _ => false,
        }
    }
}

impl<E: ChatEngine> Chat<E> {
    /// Handles one value the engine script pushed for `conn`.
    ///
    /// The value is parsed once, from its JSON text; a `serde_json::Value` is accepted too.
    pub async fn handle_event(&self, conn: &Conn, data: impl Into<RawJson>) {
        self.handle_decoded(conn, decode(&data.into()), None).await;
    }

    /// Handles an event [`decode`] made, in a span naming the node, connection and op, which
    /// every log line of the handlers inherits. `entry`: the queue entry's id when it may be
    /// delivered again.
    pub(crate) async fn handle_decoded(&self, conn: &Conn, decoded: Decoded, entry: Option<&str>) {
        // A debug span: at the default level an info span would format its fields into a
        // string of its own for every event.
        let span = tracing::debug_span!("event", node = %conn.node, client_id = %conn.client, op = tracing::field::Empty);
        let started = Instant::now();
        let (user, request) = match decoded {
            Decoded::Nothing => return,
            Decoded::Close { user } => {
                let cx = Ctx::new(self, conn, user);
                close::close(&cx).instrument(span).await;
                let op = telemetry::close_index();
                return self.metrics.handled(op, &cx.outcome, started.elapsed());
            }
            Decoded::Request { user, request } => (user, request),
        };
        let cx = Ctx {
            entry,
            ..Ctx::new(self, conn, user)
        };
        let op = telemetry::op_index(match &request {
            Ok(request) => Some(request.op()),
            Err(err) => err.op(),
        });
        Self::dispatch(&cx, request).instrument(span).await;
        self.metrics.handled(op, &cx.outcome, started.elapsed());
    }

    async fn dispatch(cx: &Ctx<'_, E>, request: Result<ChatRequest, ChatRequestError>) {
        let request = match request {
            Ok(request) => request,
            Err(err) => {
                tracing::Span::current().record("op", err.op().unwrap_or(""));
                tracing::debug!(error = %err, "bad request");
                if err.op() == Some(op::AUTH) {
                    // The script is waiting for `uid` after any auth frame, well-formed or not.
                    return auth::refuse(cx, err.reply()).await;
                }
                return cx.reply(err.reply()).await;
            }
        };
        tracing::Span::current().record("op", request.op());
        match &request {
            ChatRequest::Auth { name, password } => auth::auth(cx, name, password).await,
            ChatRequest::AuthToken { token } => auth::auth_token(cx, token).await,
            ChatRequest::Subscribe { channels } => membership(cx, Change::Join, channels).await,
            ChatRequest::Unsubscribe { channels } => membership(cx, Change::Leave, channels).await,
            ChatRequest::SendToRoom { room, text } => {
                send_to_room::send_to_room(cx, room, text).await
            }
            ChatRequest::SendToUser { user, text } => {
                send_to_user::send_to_user(cx, user, text).await
            }
            ChatRequest::SendBroadcast { text } => send_broadcast::send_broadcast(cx, text).await,
            ChatRequest::Ping => ping::ping(cx).await,
            ChatRequest::History { channel, count } => history::history(cx, channel, *count).await,
            ChatRequest::Presence { channel } => presence::presence(cx, channel).await,
            // An op a later connmix-protocol parses and this consumer does not handle yet:
            // the browser hears so rather than waiting for an answer.
            other => {
                cx.reply(ChatReply::error(other.op(), "unsupported op"))
                    .await
            }
        }
    }
}

/// Decodes a value the engine script pushed and parses its frame. The script's `uid` becomes
/// the logged-in user here, once: it reports none before login and 0 after a failed one.
pub(crate) fn decode(data: &RawJson) -> Decoded {
    let event = match ScriptEvent::decode(data.get()) {
        Ok(event) => event,
        Err(err) => {
            // The script, not the browser, produced this: nobody to answer.
            tracing::warn!(error = %err, "undecodable queue value");
            return Decoded::Nothing;
        }
    };
    let logged_in = |uid: Option<u64>| uid.filter(|uid| *uid > 0);
    match event {
        ScriptEvent::Handshake { .. } => {
            tracing::debug!("connection opened");
            Decoded::Nothing
        }
        ScriptEvent::Close { uid } => Decoded::Close {
            user: logged_in(uid),
        },
        ScriptEvent::Message { uid, frame, .. } => {
            if frame.kind != "text" {
                tracing::debug!(kind = %frame.kind, "ignored non-text frame");
                return Decoded::Nothing;
            }
            Decoded::Request {
                user: logged_in(uid),
                request: ChatRequest::parse(&frame.data),
            }
        }
        // A kind of script event a later connmix-protocol decodes: nothing to answer.
        other => {
            tracing::debug!(event = ?other, "ignored script event");
            Decoded::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use connmix_protocol::script::WsFrame;
    use serde_json::{json, Value};

    use super::*;
    use crate::testing::{add_user, conn, online, test_chat, Call};

    fn message(uid: Option<u64>, text: &str) -> Value {
        ScriptEvent::Message {
            uid,
            frame: WsFrame::text(text),
            headers: None,
        }
        .to_value()
    }

    #[tokio::test]
    async fn tutorial_frames_without_event_field_are_handled() {
        let chat = test_chat().await;
        let frame =
            json!({"frame":{"type":"text","data":"{\"op\":\"ping\"}","finish":true},"uid":null});
        chat.handle_event(&conn(1), frame).await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(conn(1), json!({"op":"pong"}))]
        );
    }

    #[tokio::test]
    async fn malformed_json_gets_the_tutorial_format_error() {
        let chat = test_chat().await;
        chat.handle_event(&conn(1), message(Some(1), "{not json"))
            .await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(conn(1), json!({"error":"Json format error"}))]
        );
    }

    #[tokio::test]
    async fn unknown_ops_and_bad_arguments_get_error_replies_and_change_nothing() {
        let chat = test_chat().await;
        let cases = [
            (r#"{"op":"dance"}"#, "dance"),
            (
                r#"{"op":"sendtoroom","args":["room_1","a","b"]}"#,
                "sendtoroom",
            ),
            (r#"{"op":"subscribe","args":[5]}"#, "subscribe"),
        ];
        for (frame, op) in cases {
            chat.handle_event(&conn(1), message(Some(1), frame)).await;
            let calls = chat.engine().take();
            assert_eq!(calls.len(), 1, "{frame}: {calls:?}");
            let Call::Send(_, reply) = &calls[0] else {
                panic!("{frame}: expected only a reply, got {calls:?}");
            };
            assert_eq!(reply["op"], op, "{frame}");
            assert!(reply["error"].is_string(), "{frame}");
        }
    }

    #[tokio::test]
    async fn auth_with_bad_arguments_still_releases_the_connection() {
        let chat = test_chat().await;
        chat.handle_event(&conn(1), message(None, r#"{"op":"auth","args":["user1"]}"#))
            .await;
        let calls = chat.engine().take();
        assert_eq!(calls[0], Call::SetUid(conn(1), 0));
        assert!(
            matches!(&calls[1], Call::Send(_, reply) if reply["op"] == "auth" && reply["error"].is_string())
        );
    }

    #[tokio::test]
    async fn login_then_close_counts_the_connection_in_and_out() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        chat.handle_event(
            &conn(1),
            message(None, r#"{"op":"auth","args":["user1","123456"]}"#),
        )
        .await;
        assert_eq!(online(&chat, uid).await, 1);
        chat.handle_event(&conn(1), json!({"event":"close","uid":uid}))
            .await;
        assert_eq!(online(&chat, uid).await, 0);
    }

    #[tokio::test]
    async fn uid_zero_after_a_failed_login_is_nobody() {
        let chat = test_chat().await;
        let uid = add_user(&chat, "user1", "123456").await;
        crate::service::presence::connect(chat.db(), &conn(9), uid)
            .await
            .unwrap();
        let subscribe = r#"{"op":"subscribe","args":["room_1"]}"#;
        chat.handle_event(&conn(1), message(Some(0), subscribe))
            .await;
        assert_eq!(
            chat.engine().take(),
            vec![Call::Send(
                conn(1),
                json!({"op":"subscribe","error":"No access"})
            )]
        );
        chat.handle_event(&conn(1), json!({"event":"close","uid":0}))
            .await;
        assert_eq!(online(&chat, uid).await, 1, "nobody was counted out");
    }

    #[tokio::test]
    async fn handshakes_binary_frames_and_garbage_values_are_ignored() {
        let chat = test_chat().await;
        chat.handle_event(&conn(1), json!({"event":"handshake","headers":{}}))
            .await;
        chat.handle_event(
            &conn(1),
            json!({"event":"message","uid":1,"frame":{"type":"binary","data":"AAA="}}),
        )
        .await;
        chat.handle_event(&conn(1), json!(42)).await;
        assert!(chat.engine().take().is_empty());
    }
}

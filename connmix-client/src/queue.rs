//! Consumed queue messages and the stream that yields them.

use std::pin::Pin;
use std::task::{Context, Poll};

use connmix_protocol::{ClientId, NodeId, RawJson};
use futures_util::stream::{FusedStream, Stream};
use tokio::sync::mpsc;

/// One message a node's script pushed onto a consumed queue.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueueEvent {
    /// The node that delivered it, which holds the browser connection.
    pub node: NodeId,
    /// The browser connection that caused it.
    pub client: ClientId,
    /// The queue topic.
    pub topic: String,
    /// The value the script pushed, as its JSON text: parse it once, into your own types, with
    /// [`RawJson::parse`] (or [`RawJson::to_value`] for a `serde_json::Value`).
    pub data: RawJson,
}

impl QueueEvent {
    /// An event as `node` would deliver it: for tests of code that consumes, and for sources
    /// other than the engine that yield the same events.
    pub fn new(
        node: impl Into<NodeId>,
        client: impl Into<ClientId>,
        topic: impl Into<String>,
        data: RawJson,
    ) -> Self {
        Self {
            node: node.into(),
            client: client.into(),
            topic: topic.into(),
            data,
        }
    }

    /// What happened on the browser connection, read from the `event` key the engine script
    /// put in [`data`](Self::data) (see [`EventKind`]).
    ///
    /// Only a connection's messages are something to answer; a handshake or a close is news
    /// about the connection. This reads the one key and leaves decoding `data` to you.
    ///
    /// ```
    /// use connmix_client::{protocol::RawJson, ClientId, EventKind, QueueEvent};
    ///
    /// let data = RawJson::from_text(r#"{"event":"handshake","headers":{}}"#)?;
    /// let event = QueueEvent::new("1", ClientId(7), "chat", data);
    /// assert_eq!(event.kind(), EventKind::Handshake);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn kind(&self) -> EventKind {
        EventKind::of(self.data.get())
    }

    /// The browser connection, to answer it with `conn.call`s.
    pub fn conn(&self) -> ConnRef {
        ConnRef {
            node: self.node.clone(),
            client: self.client,
        }
    }
}

/// The kind of a [`QueueEvent`], as the engine script names it in the value's `event` key.
///
/// The chat script of the engine's tutorial (`examples/engine/entry.lua` in the repository)
/// pushes `{"event":"handshake",..}` when a connection opens, `{"event":"message",..,"frame":..}`
/// for each text frame and `{"event":"close",..}` when it closes; the original tutorial's
/// script pushes messages without `event`, as `{"uid":..,"frame":..}`. Decode the whole value
/// with [`ScriptEvent::decode`](crate::protocol::script::ScriptEvent::decode) when it comes
/// from that script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A connection opened (`"event":"handshake"`).
    Handshake,
    /// A browser sent a frame (`"event":"message"`, or no `event` but a `frame`).
    Message,
    /// A connection closed (`"event":"close"`).
    Close,
    /// Anything else: another `event` name, or a value that is not such an object.
    Other,
}

impl EventKind {
    fn of(text: &str) -> Self {
        /// The keys `kind` looks at; the rest of the value is skipped unparsed.
        #[derive(serde::Deserialize)]
        struct Keys<'a> {
            #[serde(borrow, default)]
            event: Option<std::borrow::Cow<'a, str>>,
            #[serde(default)]
            frame: Option<serde::de::IgnoredAny>,
        }
        match serde_json::from_str::<Keys<'_>>(text) {
            Ok(keys) => match keys.event.as_deref() {
                Some("handshake") => EventKind::Handshake,
                Some("message") => EventKind::Message,
                Some("close") => EventKind::Close,
                Some(_) => EventKind::Other,
                None if keys.frame.is_some() => EventKind::Message,
                None => EventKind::Other,
            },
            // A script may push the object as a JSON string.
            Err(_) => match serde_json::from_str::<String>(text) {
                Ok(inner) if inner.trim_start().starts_with('{') => EventKind::of(&inner),
                _ => EventKind::Other,
            },
        }
    }
}

/// One browser connection: the node that holds it and its client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnRef {
    /// The node holding the connection; `conn.call`s must go there.
    pub node: NodeId,
    /// The connection's id.
    pub client: ClientId,
}

impl ConnRef {
    /// The connection `client` held by `node`.
    pub fn new(node: impl Into<NodeId>, client: impl Into<ClientId>) -> Self {
        Self {
            node: node.into(),
            client: client.into(),
        }
    }
}

/// Queue messages of the topics passed to [`Client::consume`](crate::Client::consume), from
/// every node, in arrival order per node.
///
/// Backed by a bounded channel: when the application falls behind, node connections stop
/// reading new messages until it catches up. Ends after [`Client::unpop`](crate::Client::unpop),
/// shutdown, or when every `Client` handle is dropped.
///
/// A [`FusedStream`]: once it has yielded `None` it reports
/// [`is_terminated`](FusedStream::is_terminated) and keeps yielding `None`, so it can sit in a
/// `select!` loop with `select_next_some`.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<QueueEvent>,
    ended: bool,
}

impl EventStream {
    pub(crate) fn new(rx: mpsc::Receiver<QueueEvent>) -> Self {
        Self { rx, ended: false }
    }

    /// The next message; `None` once the stream has ended.
    pub async fn recv(&mut self) -> Option<QueueEvent> {
        if self.ended {
            return None;
        }
        let next = self.rx.recv().await;
        self.ended = next.is_none();
        next
    }
}

impl Stream for EventStream {
    type Item = QueueEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<QueueEvent>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let next = self.rx.poll_recv(cx);
        if let Poll::Ready(None) = next {
            self.ended = true;
        }
        next
    }
}

impl FusedStream for EventStream {
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> QueueEvent {
        let data = RawJson::from_text(data.to_owned()).expect("valid JSON");
        QueueEvent::new("n1", ClientId(42), "chat", data)
    }

    #[test]
    fn kinds_follow_the_event_key_of_the_chat_script() {
        let handshake = event(r#"{"event":"handshake","headers":{"Host":"x"}}"#);
        assert_eq!(handshake.kind(), EventKind::Handshake);
        let message = r#"{"event":"message","uid":3,"frame":{"type":"text","data":"{}"}}"#;
        assert_eq!(event(message).kind(), EventKind::Message);
        assert_eq!(
            event(r#"{"event":"close","uid":3}"#).kind(),
            EventKind::Close
        );
    }

    #[test]
    fn a_frame_without_event_is_the_original_tutorials_message() {
        let data = r#"{"uid":null,"frame":{"type":"text","data":"hi"}}"#;
        assert_eq!(event(data).kind(), EventKind::Message);
    }

    #[test]
    fn a_script_value_pushed_as_a_json_string_is_read_inside() {
        let data = r#""{\"event\":\"close\",\"uid\":1}""#;
        assert_eq!(event(data).kind(), EventKind::Close);
    }

    #[test]
    fn anything_else_is_other() {
        for data in [
            r#"{"event":"joined"}"#,
            r#"{"event":7}"#,
            r#"{"uid":1}"#,
            r#"[1,2]"#,
            r#""hello""#,
            "42",
            "null",
        ] {
            assert_eq!(event(data).kind(), EventKind::Other, "{data}");
        }
    }

    #[tokio::test]
    async fn the_stream_reports_terminated_after_its_end_and_stays_ended() {
        use futures_util::StreamExt;

        let (tx, rx) = mpsc::channel(4);
        let mut stream = EventStream::new(rx);
        tx.send(event("{}")).await.expect("stream open");
        drop(tx);
        assert!(!stream.is_terminated());
        assert_eq!(stream.next().await.map(|e| e.client), Some(ClientId(42)));
        assert!(!stream.is_terminated(), "the end is not known before None");
        assert!(stream.next().await.is_none());
        assert!(stream.is_terminated());
        assert!(stream.next().await.is_none());
        assert!(stream.recv().await.is_none());
    }

    #[tokio::test]
    async fn recv_reaching_the_end_terminates_the_stream_too() {
        let (tx, rx) = mpsc::channel::<QueueEvent>(1);
        let mut stream = EventStream::new(rx);
        drop(tx);
        assert!(stream.recv().await.is_none());
        assert!(stream.is_terminated());
    }

    #[test]
    fn an_event_built_by_hand_answers_its_connection() {
        let e = event("{}");
        assert_eq!(e.conn(), ConnRef::new("n1", ClientId(42)));
        assert_eq!(e.topic, "chat");
    }
}

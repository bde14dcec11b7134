//! The browser-facing chat server: what the tutorial's `entry.lua` does for each connection.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use axum::http::HeaderMap;
use connmix_protocol::script::{ScriptEvent, WsFrame};
use connmix_protocol::{Payload, RawJson};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::api::CLOSE_GRACE;
use crate::client::{ClientState, BROWSER_BUFFER};
use crate::counters::bump;
use crate::error::QueueFull;
use crate::queue::{QueueItem, Topic};
use crate::server::NodeState;

/// Frames read from a browser while it waits for login; beyond this the socket is simply not
/// read, so a flooding browser is held back by TCP instead of by our memory.
const MAX_HELD: usize = 1024;

/// The upgrade request's headers as the script sees them: lower-case names, text values.
pub(crate) fn header_map(headers: &HeaderMap) -> Map<String, Value> {
    headers
        .iter()
        .map(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), Value::String(text))
        })
        .collect()
}

/// Serves one browser until it closes, the node dies or its queue overflows.
pub(crate) async fn serve(state: NodeState, socket: WebSocket, headers: Map<String, Value>) {
    let (tx, rx) = mpsc::channel(BROWSER_BUFFER);
    let client = state.runtime.register(Some(tx), &state.cluster.counters);
    tracing::debug!(node = %state.runtime.node.addrs.id, client_id = %client.id, "browser connected");
    let (sink, stream) = socket.split();
    state.runtime.tracker.spawn(write(sink, rx, client.clone()));

    let script = Script {
        topic: state.runtime.queues.topic(&state.cluster.config.queue),
        state: state.clone(),
        client: client.clone(),
        headers,
    };
    script.run(stream).await;

    client.closed.cancel();
    let uid = client.uid(&state.cluster.config.auth_key);
    state.runtime.unregister(client.id, &state.cluster.counters);
    // A full queue loses the close event, as it would in the engine.
    let _ = script.push(ScriptEvent::Close { uid });
    tracing::debug!(node = %state.runtime.node.addrs.id, client_id = %client.id, "browser closed");
}

/// Writes delivered frames to the browser until the connection closes.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Payload>,
    client: Arc<ClientState>,
) {
    loop {
        let payload = tokio::select! {
            _ = client.closed.cancelled() => break,
            payload = rx.recv() => payload,
        };
        let message = match payload {
            Some(Payload::Text(text)) => Message::Text(text.into()),
            Some(Payload::Binary(bytes)) => Message::Binary(bytes.into()),
            None => break,
        };
        // A browser that stopped reading must not keep this task once it is closed.
        let sent = tokio::select! {
            sent = sink.send(message) => sent.is_ok(),
            _ = client.closed.cancelled() => false,
        };
        if !sent {
            client.closed.cancel();
            return;
        }
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
}

/// The script of one connection.
struct Script {
    state: NodeState,
    /// Looked up once: pushes then touch no lock shared with other connections.
    topic: Topic,
    client: Arc<ClientState>,
    headers: Map<String, Value>,
}

impl Script {
    fn push(&self, event: ScriptEvent) -> Result<(), QueueFull> {
        let cluster = &self.state.cluster;
        let item = QueueItem {
            client: self.client.id,
            data: RawJson::from(event.to_value()),
        };
        match self.topic.tx.try_send(item).map_err(|_| QueueFull) {
            Ok(()) => {
                bump(&cluster.counters.queued);
                Ok(())
            }
            Err(full) => {
                bump(&cluster.counters.rejected);
                Err(full)
            }
        }
    }

    async fn run(&self, mut stream: SplitStream<WebSocket>) {
        let config = &self.state.cluster.config;
        let handshake = ScriptEvent::Handshake {
            headers: self.headers.clone(),
        };
        if self.push(handshake).is_err() {
            return;
        }
        let mut held: VecDeque<String> = VecDeque::new();
        loop {
            let text = match held.pop_front() {
                Some(text) => text,
                None => match self.read(&mut stream).await {
                    Some(text) => text,
                    None => return,
                },
            };
            let Ok(json) = serde_json::from_str::<Value>(&text) else {
                tracing::debug!(client_id = %self.client.id, "frame is not JSON: dropped");
                continue;
            };
            let is_auth = json.get("op").and_then(Value::as_str) == Some(config.auth_op.as_str());
            let generation = self.client.auth_generation();
            let event = ScriptEvent::Message {
                uid: self.client.uid(&config.auth_key),
                frame: WsFrame::text(text),
                headers: is_auth.then(|| self.headers.clone()),
            };
            if self.push(event).is_err() {
                tracing::debug!(client_id = %self.client.id, "queue full: closing the browser");
                return;
            }
            if is_auth && !self.hold(&mut stream, &mut held, generation).await {
                return;
            }
        }
    }

    /// Reads the next text frame; `None` when the connection is over.
    async fn read(&self, stream: &mut SplitStream<WebSocket>) -> Option<String> {
        loop {
            let message = tokio::select! {
                _ = self.client.closed.cancelled() => return None,
                message = stream.next() => message,
            };
            match message? {
                Ok(Message::Text(text)) => return Some(text.as_str().to_owned()),
                Ok(Message::Close(_)) | Err(_) => return None,
                // The script queues text frames only.
                Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_)) => {}
            }
        }
    }

    /// `wait_context_value`: keeps later frames, in order, until a consumer sets the auth key.
    /// False when the connection ended while waiting.
    async fn hold(
        &self,
        stream: &mut SplitStream<WebSocket>,
        held: &mut VecDeque<String>,
        generation: u64,
    ) -> bool {
        let released = self.client.auth_set_after(generation);
        tokio::pin!(released);
        loop {
            tokio::select! {
                _ = &mut released => return true,
                text = self.read(stream), if held.len() < MAX_HELD => match text {
                    Some(text) => held.push_back(text),
                    None => return false,
                },
                _ = self.client.closed.cancelled(), if held.len() >= MAX_HELD => return false,
            }
        }
    }
}

//! One consumer's WebSocket on a node's API server (`/ws/v1`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use connmix_protocol::frame::PONG_TEXT;
use connmix_protocol::reply::Status;
use connmix_protocol::{
    Call, CallResult, ClientFrame, EngineError, ErrorCode, Event, QueueMessage, Reply, Request,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cluster::ConsumerGuard;
use crate::counters::{bump, drop_one};
use crate::queue::Topic;
use crate::server::NodeState;

/// Frames (replies and events) a consumer connection may have waiting to be written. Queue
/// pumps hand over a message only when there is room here, so a slow consumer leaves the rest
/// queued for others instead of making the node buffer it.
const OUT_BUFFER: usize = 256;

/// How long closing a socket may take before it is simply dropped.
pub(crate) const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Why an API connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The consumer closed it or the socket broke.
    Gone,
    /// It sent nothing for the read timeout.
    TimedOut,
    /// The node was killed or `drop_consumers` was called.
    Dropped,
}

/// The state of one consumer connection.
struct ApiConnection {
    state: NodeState,
    out: mpsc::Sender<Message>,
    /// Topics this connection consumes, each with the token stopping its pump and the pump.
    topics: HashMap<String, (CancellationToken, JoinHandle<()>)>,
    done: CancellationToken,
}

/// Serves one upgraded `/ws/v1` socket until it ends.
pub(crate) async fn serve(state: NodeState, socket: WebSocket) {
    let cluster = state.cluster.clone();
    let runtime = state.runtime.clone();
    let node = runtime.node.addrs.id.clone();
    let token = runtime.api_token();
    let done = token.child_token();
    bump(&cluster.counters.api_connections);
    tracing::debug!(%node, "API connection opened");

    let (sink, mut stream) = socket.split();
    let (out, out_rx) = mpsc::channel(OUT_BUFFER);
    runtime
        .tracker
        .spawn(write(sink, out_rx, token.clone(), done.clone()));
    let mut conn = ApiConnection {
        state,
        out,
        topics: HashMap::new(),
        done: done.clone(),
    };
    let mut unresponsive = runtime.node.unresponsive.subscribe();
    let read_timeout = cluster.config.read_timeout;

    let end = loop {
        if *unresponsive.borrow_and_update() {
            // Half-open: read nothing (so no pongs), answer nothing, and time nothing out.
            tokio::select! {
                _ = token.cancelled() => break End::Dropped,
                changed = unresponsive.changed() => if changed.is_err() { break End::Dropped },
            }
            continue;
        }
        let message = tokio::select! {
            _ = token.cancelled() => break End::Dropped,
            _ = unresponsive.changed() => continue,
            read = tokio::time::timeout(read_timeout, stream.next()) => match read {
                Err(_) => break End::TimedOut,
                Ok(None | Some(Err(_))) => break End::Gone,
                Ok(Some(Ok(message))) => message,
            },
        };
        match message {
            Message::Text(text) => {
                let reply = Message::Text(conn.handle(text.as_str()).await.into());
                // A consumer that does not read its replies must not hold up a kill.
                let sent = tokio::select! {
                    _ = token.cancelled() => break End::Dropped,
                    sent = conn.out.send(reply) => sent,
                };
                if sent.is_err() {
                    break End::Gone;
                }
            }
            Message::Close(_) => break End::Gone,
            // Pings are answered by the WebSocket layer; any frame resets the read timeout.
            Message::Ping(_) | Message::Pong(_) | Message::Binary(_) => {}
        }
    };

    if end == End::TimedOut {
        // Queued before `done` so the writer still sends it, if the socket has room.
        let _ = conn.out.try_send(Message::Close(None));
    }
    done.cancel();
    drop_one(&cluster.counters.api_connections);
    tracing::debug!(%node, ?end, "API connection closed");
}

/// Frames written before one flush.
const WRITE_BURST: usize = 64;

/// Feeds `burst` in order (stopping after a close frame), then flushes once.
async fn write_all(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    burst: Vec<Message>,
) -> Result<(), axum::Error> {
    for message in burst {
        let closing = matches!(message, Message::Close(_));
        sink.feed(message).await?;
        if closing {
            break;
        }
    }
    sink.flush().await
}

/// Writes replies and events until the connection ends. A kill drops the socket without a
/// close frame, as a crashed engine would; otherwise what is queued is written while the
/// socket takes it, then the socket is closed.
async fn write(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Message>,
    kill: CancellationToken,
    done: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            biased;
            message = rx.recv() => message,
            _ = done.cancelled() => None,
        };
        let Some(message) = message else { break };
        // Whatever else is already queued goes out with it in one flush, as the real engine
        // coalesces writes under load: one syscall per burst rather than one per frame.
        let mut burst = vec![message];
        while burst.len() < WRITE_BURST {
            match rx.try_recv() {
                Ok(message) => burst.push(message),
                Err(_) => break,
            }
        }
        let closing = burst.iter().any(|m| matches!(m, Message::Close(_)));
        // Biased towards the write, so a frame is sent when the socket has room even after
        // the connection is done; a consumer that stopped reading cannot keep this task.
        let sent = tokio::select! {
            biased;
            sent = write_all(&mut sink, burst) => sent.is_ok(),
            _ = done.cancelled() => false,
        };
        if !sent || closing {
            return;
        }
    }
    if !kill.is_cancelled() {
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
    }
}

impl ApiConnection {
    /// Answers one text frame.
    async fn handle(&mut self, text: &str) -> String {
        let dialect = self.state.cluster.config.dialect;
        let Request { id, call } = match ClientFrame::decode_answerable(text) {
            Ok(ClientFrame::Request(request)) => request,
            Ok(ClientFrame::Ping) => return PONG_TEXT.to_owned(),
            // Error 101 still names the request, when the frame had an id.
            Err(bad) => return invalid(bad.id, bad.error).encode(dialect),
        };
        tracing::trace!(node = %self.state.runtime.node.addrs.id, op = call.method(), ?id, "request");
        if call == Call::ServerPing {
            return connmix_protocol::reply::server_pong(id, dialect);
        }
        let outcome = self.execute(call).await;
        Reply { id, outcome }.encode(dialect)
    }

    async fn execute(&mut self, call: Call) -> Result<CallResult, EngineError> {
        let cluster = &self.state.cluster;
        match call {
            Call::QueuePop { topics } => self.pop(topics),
            Call::QueueUnpop => self.unpop().await,
            Call::ConnCall { client, func } => {
                let result = self
                    .state
                    .runtime
                    .conn_call(client, func, &cluster.config.auth_key);
                if result.is_ok() {
                    bump(&cluster.counters.conn_calls);
                }
                result
            }
            Call::MeshSend { client, data } => cluster.send(client, data),
            Call::MeshPublish { channel, data } => Ok(cluster.publish(&channel, data)),
            Call::ServerPing => Ok(CallResult {
                status: Status::Text("server.pong".to_owned()),
                failed: None,
                total: None,
            }),
            Call::Other { method, .. } => Err(EngineError::new(
                ErrorCode::InvalidArgument,
                format!("unknown method `{method}`"),
            )),
            // A call a later connmix-protocol knows and this mock does not implement yet.
            other => Err(EngineError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "method `{}` is not supported by the mock",
                    other.known_method().unwrap_or("?")
                ),
            )),
        }
    }

    /// Stops every pump and waits until each has stopped, so that no message follows the
    /// reply: a consumer may take the reply as the end of its messages.
    async fn unpop(&mut self) -> Result<CallResult, EngineError> {
        let pumps: Vec<_> = self
            .topics
            .drain()
            .map(|(_, (token, pump))| {
                token.cancel();
                pump
            })
            .collect();
        for pump in pumps {
            // A pump that panicked has stopped too.
            let _ = pump.await;
        }
        Ok(CallResult::ok())
    }

    fn pop(&mut self, topics: Vec<String>) -> Result<CallResult, EngineError> {
        if topics.is_empty() || topics.iter().any(String::is_empty) {
            return Err(EngineError::new(
                ErrorCode::InvalidArgument,
                "queue.pop needs at least one topic name",
            ));
        }
        if let Some(topic) = topics.iter().find(|t| self.topics.contains_key(*t)) {
            return Err(EngineError::new(
                ErrorCode::AlreadyConsumed,
                format!("topic `{topic}` is already consumed on this connection"),
            ));
        }
        for name in topics {
            let token = self.done.child_token();
            let pump = Pump {
                state: self.state.clone(),
                out: self.out.clone(),
                topic: self.state.runtime.queues.topic(&name),
                guard: self.state.cluster.consumer_guard(&name),
                unresponsive: self.state.runtime.node.unresponsive.subscribe(),
                token: token.clone(),
                name: name.clone(),
            };
            let pump = self.state.runtime.tracker.spawn(pump.run());
            self.topics.insert(name, (token, pump));
        }
        Ok(CallResult::ok())
    }
}

fn invalid(id: Option<u64>, err: impl std::fmt::Display) -> Reply {
    Reply::err(
        id,
        EngineError::new(ErrorCode::InvalidArgument, err.to_string()),
    )
}

/// Moves messages of one topic to one consumer connection.
struct Pump {
    state: NodeState,
    out: mpsc::Sender<Message>,
    topic: Topic,
    guard: ConsumerGuard,
    unresponsive: watch::Receiver<bool>,
    token: CancellationToken,
    name: String,
}

impl Pump {
    async fn run(mut self) {
        let node = Some(self.state.runtime.node.addrs.id.clone());
        let dialect = self.state.cluster.config.dialect;
        let cluster = Arc::clone(&self.state.cluster);
        loop {
            let responsive = tokio::select! {
                _ = self.token.cancelled() => break,
                ok = self.unresponsive.wait_for(|on| !*on) => ok.is_ok(),
            };
            if !responsive {
                break;
            }
            // Take a message only with room to write it: backpressure reaches the queue.
            let permit = tokio::select! {
                _ = self.token.cancelled() => break,
                permit = self.out.reserve() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let item = tokio::select! {
                // Stopping wins over a message that is also ready: after an unpop, take nothing.
                biased;
                _ = self.token.cancelled() => break,
                item = self.topic.rx.recv() => match item {
                    Ok(item) => item,
                    Err(_) => break,
                },
            };
            let event = Event::QueuePop(QueueMessage {
                node: node.clone(),
                client: item.client,
                topic: self.name.clone(),
                data: item.data,
            });
            permit.send(Message::Text(event.encode(dialect).into()));
            bump(&cluster.counters.delivered);
        }
        drop(self.guard);
    }
}

//! The [`Client`] handle and every call it offers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use connmix_protocol::request::method;
use connmix_protocol::{Call, CallResult, ClientId, ConnFunc, NodeId, Payload};
use futures_util::future::join_all;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::DropGuard;
use tracing::{debug, info, warn};

use crate::center::Center;
use crate::endpoint::CenterUrl;
use crate::error::{ClientError, ClientErrorKind};
use crate::node::{Command, NodeHandle, Subscription};
use crate::options::{ClientBuilder, Options};
use crate::queue::{ConnRef, EventStream};
use crate::shared::Shared;
use crate::state::{ClientState, ConnectionEvent, NodeState};
use crate::supervisor::{Supervisor, SupervisorCommand};
use crate::transport::{http_client, require_tls, tls_config};

/// A connection to a CONNMIX cluster: every engine node, kept connected.
///
/// Cheap to clone; every clone drives the same connections. Dropping the last clone stops the
/// background tasks (prefer [`shutdown`](Self::shutdown), which also stops consuming cleanly).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    supervisor: mpsc::Sender<SupervisorCommand>,
    /// Spreads mesh calls over the connected nodes.
    next: AtomicUsize,
    _stop_tasks: DropGuard,
}

/// What `mesh.publish` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PublishResult {
    /// Connections the data was delivered to.
    pub delivered: u64,
    /// Subscribed connections it could not be delivered to.
    pub failed: u64,
}

impl PublishResult {
    /// A result of `delivered` connections reached and `failed` missed: for test doubles of
    /// code that publishes.
    pub fn new(delivered: u64, failed: u64) -> Self {
        Self { delivered, failed }
    }

    pub(crate) fn from_result(result: &CallResult) -> Self {
        Self {
            delivered: result.delivered().unwrap_or(0),
            failed: result.failed.unwrap_or(0),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("center", &self.inner.shared.options.center)
            .field("nodes", &self.nodes())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts building a client for the center at `center` (`host[:port]`, the port
    /// [`DEFAULT_CENTER_PORT`](crate::DEFAULT_CENTER_PORT) when absent, or an `http(s)://`
    /// URL).
    pub fn builder(center: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(center.into())
    }

    pub(crate) async fn start(options: Options) -> Result<Self, ClientError> {
        let url = CenterUrl::parse(&options.center, options.tls)?;
        let mut options = options;
        options.tls = url.tls();
        require_tls(options.tls)?;
        let tls = tls_config(&options.root_certificates)?;
        let http = http_client(&tls, options.connect_timeout)?;
        let center = Center::new(
            http,
            url,
            options.credentials.clone(),
            options.connect_timeout,
        );
        let connect_timeout = options.connect_timeout;
        let shared = Arc::new(Shared::new(options, tls));
        let (tx, rx) = mpsc::channel(16);
        shared
            .tracker
            .spawn(Supervisor::new(Arc::clone(&shared), center, rx).run());
        let client = Self {
            inner: Arc::new(Inner {
                _stop_tasks: shared.cancel.clone().drop_guard(),
                shared,
                supervisor: tx,
                next: AtomicUsize::new(0),
            }),
        };
        match client.resync().await {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ClientErrorKind::Auth | ClientErrorKind::Config) => {
                return Err(e)
            }
            Err(e) => warn!(error = %e, "center not reachable yet; retrying in the background"),
        }
        // Give every node its first connect attempt, so calls right after `connect` work.
        let mut state = client.state();
        let first_attempts =
            state.wait_for(|s| s.nodes.values().all(|n| *n != NodeState::Connecting));
        let _ = tokio::time::timeout(connect_timeout, first_attempts).await;
        info!(nodes = client.nodes().len(), "client started");
        Ok(client)
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    fn check_open(&self) -> Result<(), ClientError> {
        if self.shared().is_closed() {
            return Err(ClientError::closed());
        }
        Ok(())
    }

    async fn ask_supervisor<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> SupervisorCommand,
    ) -> Result<T, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .supervisor
            .send(make(reply))
            .await
            .map_err(|_| ClientError::closed())?;
        rx.await.map_err(|_| ClientError::closed())
    }

    /// Consumes queue topics on every node: now, after every reconnect, and on nodes added
    /// later. Messages of all nodes come out of one stream.
    ///
    /// Nodes that are down accept the topics for their next connection. Fails with the
    /// engine's error when a connected node refuses (for example
    /// [`AlreadyConsumed`](connmix_protocol::ErrorCode::AlreadyConsumed)); the topics stay
    /// registered until [`unpop`](Self::unpop).
    pub async fn consume<S: AsRef<str>>(&self, topics: &[S]) -> Result<EventStream, ClientError> {
        self.check_open()?;
        let topics: Vec<String> = topics.iter().map(|t| t.as_ref().to_owned()).collect();
        if topics.is_empty() || topics.iter().any(String::is_empty) {
            return Err(ClientError::new(
                ClientErrorKind::InvalidInput,
                "consume needs at least one non-empty topic",
            ));
        }
        let (sink, rx) = mpsc::channel(self.shared().options.event_buffer);
        let sub = Subscription { topics, sink };
        let handles = self
            .ask_supervisor(|reply| SupervisorCommand::Consume {
                sub: sub.clone(),
                reply,
            })
            .await?;
        let timeout = self.shared().options.request_timeout;
        let replies = join_all(handles.iter().map(|h| {
            let sub = sub.clone();
            h.request(method::QUEUE_POP, timeout, move |reply, deadline| {
                Command::Consume {
                    sub,
                    reply,
                    deadline,
                }
            })
        }))
        .await;
        settle(replies)?;
        debug!(topics = ?sub.topics, nodes = handles.len(), "consuming");
        Ok(EventStream::new(rx))
    }

    /// Stops consuming every topic on every node; the event streams end.
    pub async fn unpop(&self) -> Result<(), ClientError> {
        self.check_open()?;
        let handles = self.ask_supervisor(SupervisorCommand::Unpop).await?;
        let timeout = self.shared().options.request_timeout;
        let replies = join_all(handles.iter().map(|h| {
            h.request(method::QUEUE_UNPOP, timeout, |reply, deadline| {
                Command::Unpop { reply, deadline }
            })
        }))
        .await;
        settle(replies)
    }

    /// Sends any call and returns the engine's raw result: to `node`, or to any connected
    /// node when `None` (right for `mesh.*` calls; `conn.call` must go to the node holding
    /// the connection).
    pub async fn call(&self, node: Option<&NodeId>, call: Call) -> Result<CallResult, ClientError> {
        self.route(node.map_or(Route::Any, Route::Only), call).await
    }

    async fn route(&self, route: Route<'_>, call: Call) -> Result<CallResult, ClientError> {
        self.check_open()?;
        // One atomic increment, no allocation; the snapshot stays valid across the await.
        let nodes = self.shared().nodes.load_full();
        let any = || {
            let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
            nodes
                .any_connected(start)
                .ok_or_else(|| ClientError::no_node("no node is connected"))
        };
        let handle: &NodeHandle = match route {
            Route::Only(id) => nodes
                .get(id)
                .ok_or_else(|| ClientError::no_node(format!("node {id} is not in the cluster")))?,
            Route::Prefer(id) => match nodes.get(id) {
                Some(handle) if handle.is_connected() => handle,
                _ => any()?,
            },
            Route::Any => any()?,
        };
        let op = call.known_method().unwrap_or("call");
        let timeout = self.shared().options.request_timeout;
        handle
            .request(op, timeout, |reply, deadline| Command::Call {
                call,
                reply,
                deadline,
            })
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(node = %conn.node, client_id = %conn.client, op = func.name()))]
    async fn conn_call(&self, conn: &ConnRef, func: ConnFunc) -> Result<(), ClientError> {
        let call = Call::ConnCall {
            client: conn.client,
            func,
        };
        let result = self.call(Some(&conn.node), call).await?;
        require_success(&result)
    }

    /// Sets one key of a connection's context (releasing a script's `wait_context_value`).
    pub async fn set_context_value(
        &self,
        conn: &ConnRef,
        key: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<(), ClientError> {
        let func = ConnFunc::SetContextValue {
            key: key.into(),
            value: value.into(),
        };
        self.conn_call(conn, func).await
    }

    /// Replaces a connection's whole context.
    pub async fn set_context(
        &self,
        conn: &ConnRef,
        context: Map<String, Value>,
    ) -> Result<(), ClientError> {
        self.conn_call(conn, ConnFunc::SetContext { context }).await
    }

    /// Subscribes a connection to channels.
    pub async fn subscribe<S: AsRef<str>>(
        &self,
        conn: &ConnRef,
        channels: &[S],
    ) -> Result<(), ClientError> {
        let channels = channels.iter().map(|c| c.as_ref().to_owned()).collect();
        self.conn_call(conn, ConnFunc::Subscribe { channels }).await
    }

    /// Unsubscribes a connection from channels.
    pub async fn unsubscribe<S: AsRef<str>>(
        &self,
        conn: &ConnRef,
        channels: &[S],
    ) -> Result<(), ClientError> {
        let channels = channels.iter().map(|c| c.as_ref().to_owned()).collect();
        self.conn_call(conn, ConnFunc::Unsubscribe { channels })
            .await
    }

    /// Sends a frame to one connection, wherever it is (`mesh.send` via any node).
    pub async fn send(
        &self,
        client: ClientId,
        data: impl Into<Payload>,
    ) -> Result<(), ClientError> {
        let call = Call::MeshSend {
            client,
            data: data.into(),
        };
        require_success(&self.call(None, call).await?)
    }

    /// Sends a frame to one connection through the node that holds it (`mesh.send`), or through
    /// any connected node while that one is not.
    ///
    /// Requests to one node are written in the order they are made, so the frames sent to a
    /// connection this way keep their order with each other and with its `conn.call`s
    /// (a login's `set_context_value`, then its reply), which [`send`](Self::send) through any
    /// node does not promise.
    pub async fn send_to(
        &self,
        conn: &ConnRef,
        data: impl Into<Payload>,
    ) -> Result<(), ClientError> {
        let call = Call::MeshSend {
            client: conn.client,
            data: data.into(),
        };
        require_success(&self.route(Route::Prefer(&conn.node), call).await?)
    }

    /// Sends a frame to every connection subscribed to `channel` (`mesh.publish`), as given
    /// (see [`PushClient::publish`](crate::PushClient::publish) on what a page can show).
    pub async fn publish(
        &self,
        channel: &str,
        data: impl Into<Payload>,
    ) -> Result<PublishResult, ClientError> {
        let call = Call::MeshPublish {
            channel: channel.to_owned(),
            data: data.into(),
        };
        let result = self.call(None, call).await?;
        Ok(PublishResult::from_result(&result))
    }

    /// The nodes the client knows, connected or not.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.shared()
            .nodes
            .load()
            .list
            .iter()
            .map(|h| h.id.clone())
            .collect()
    }

    /// Connection events from now on. A receiver that falls more than 256 events behind
    /// loses the oldest (`RecvError::Lagged`).
    pub fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.shared().events.subscribe()
    }

    /// Engine frames skipped because they were over
    /// [`max_frame_bytes`](crate::ClientBuilder::max_frame_bytes), on every node since start.
    pub fn oversized_frames(&self) -> u64 {
        self.shared().oversized.load(Ordering::Relaxed)
    }

    /// The connection state of every node, updated as it changes.
    pub fn state(&self) -> watch::Receiver<ClientState> {
        self.shared().state.subscribe()
    }

    /// Waits until at least one engine node is connected, at most `timeout`.
    ///
    /// The client retries an unreachable center and its nodes in the background forever; a
    /// program starting up usually wants to hear about a wrong address instead. Fails with
    /// [`ClientErrorKind::Timeout`] when no node connected in time, and with
    /// [`ClientErrorKind::Closed`] once the client is shut down.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), ClientError> {
        self.check_open()?;
        let mut state = self.state();
        let connected = tokio::time::timeout(timeout, state.wait_for(|s| s.connected() > 0)).await;
        match connected {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ClientError::closed()),
            Err(_) => {
                let why = match self.last_error() {
                    Some(error) => format!("; last error: {error}"),
                    None if self.nodes().is_empty() => "; the center lists no node".to_owned(),
                    None => String::new(),
                };
                Err(ClientError::new(
                    ClientErrorKind::Timeout,
                    format!("no engine node connected within {timeout:?}{why}"),
                ))
            }
        }
    }

    /// Why the client cannot reach the engine: the latest failure to read the center or to
    /// open a node's connection, forgotten when the center answers or a node connects.
    ///
    /// The client retries such failures in the background and only logs them; a program whose
    /// [`wait_connected`](Self::wait_connected) timed out tells its operator this instead. The
    /// kind is [`Auth`](ClientErrorKind::Auth) for refused credentials, and the text names the
    /// cause (`GET /version: connection refused`, `node n1 at ws://...: connection refused`,
    /// `GET /version: cannot resolve the host name (...)`).
    pub fn last_error(&self) -> Option<ClientError> {
        self.shared().last_error()
    }

    /// Reads the center now: connects to new nodes, stops removed ones.
    pub async fn resync(&self) -> Result<(), ClientError> {
        self.check_open()?;
        self.ask_supervisor(SupervisorCommand::Resync).await?
    }

    /// Stops consuming on every node, lets requests in flight finish within `deadline`,
    /// closes every connection and ends the background tasks. Later calls fail with
    /// [`ClientErrorKind::Closed`].
    pub async fn shutdown(&self, deadline: Duration) {
        if self.shared().is_closed() {
            return;
        }
        let deadline = Instant::now() + deadline;
        self.shared().mark_closed();
        let handles = match self.ask_supervisor(SupervisorCommand::Shutdown).await {
            Ok(handles) => handles,
            Err(_) => self.shared().nodes.load().list.clone(),
        };
        let nodes_done = join_all(handles.iter().map(|h| h.shutdown(deadline)));
        if tokio::time::timeout_at(deadline, nodes_done).await.is_err() {
            warn!("shutdown deadline passed before every node closed");
        }
        let shared = self.shared();
        shared.cancel.cancel();
        shared.tracker.close();
        let _ = tokio::time::timeout_at(deadline, shared.tracker.wait()).await;
        info!("client shut down");
    }
}

/// Which node a call goes to.
#[derive(Clone, Copy)]
enum Route<'a> {
    /// That node, connected or not (`conn.call`).
    Only(&'a NodeId),
    /// That node while it is connected, else any connected one.
    Prefer(&'a NodeId),
    /// Any connected node, in turn.
    Any,
}

/// Combines the answers of every node to a consumption change. A node whose connection
/// dropped meanwhile is no failure: the change is recorded in its task and applied when it
/// reconnects.
fn settle(replies: Vec<Result<(), ClientError>>) -> Result<(), ClientError> {
    for reply in replies {
        match reply {
            Err(e) if e.kind() != ClientErrorKind::Disconnected => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// A result of `{"s": false}` without an engine error is still a failure.
pub(crate) fn require_success(result: &CallResult) -> Result<(), ClientError> {
    if result.is_success() {
        Ok(())
    } else {
        Err(ClientError::protocol(format!(
            "the engine reported no success: {:?}",
            result.status
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connmix_protocol::{EngineError, ErrorCode};

    #[test]
    fn consumption_changes_tolerate_nodes_that_dropped_but_not_engine_refusals() {
        let dropped = Err(ClientError::disconnected("n2"));
        assert!(settle(vec![Ok(()), dropped.clone()]).is_ok());
        let refused = Err(ClientError::from(EngineError::new(
            ErrorCode::AlreadyConsumed,
            "dup",
        )));
        let err = settle(vec![dropped, refused, Ok(())]).unwrap_err();
        assert_eq!(
            err.kind(),
            ClientErrorKind::Engine(ErrorCode::AlreadyConsumed)
        );
    }

    #[test]
    fn a_false_status_is_not_success() {
        assert!(require_success(&CallResult::ok()).is_ok());
        let mut refused = CallResult::ok();
        refused.status = connmix_protocol::Status::Flag(false);
        assert_eq!(
            require_success(&refused).unwrap_err().kind(),
            ClientErrorKind::Protocol
        );
    }

    #[test]
    fn publish_results_read_counts_and_default_to_zero() {
        assert_eq!(
            PublishResult::from_result(&CallResult::counts(4, 1)),
            PublishResult {
                delivered: 4,
                failed: 1
            }
        );
        assert_eq!(
            PublishResult::from_result(&CallResult::ok()),
            PublishResult::default()
        );
    }
}

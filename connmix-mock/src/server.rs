//! Binding and running a node's two listeners, and stopping them again.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::Router;
use connmix_protocol::center::websocket_path;
use connmix_protocol::http::{publish_path, send_path};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::center::API;
use crate::cluster::Cluster;
use crate::error::MockError;
use crate::node::{NodeShared, Runtime};
use crate::{api, auth, chat, lua, push};

/// What every handler of one node run gets.
#[derive(Debug, Clone)]
pub(crate) struct NodeState {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) runtime: Arc<Runtime>,
}

pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, MockError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| MockError::Bind { addr, source })
}

/// Serves a router until `stop` is cancelled; waits for open requests to end.
pub(crate) fn serve(
    tracker: &tokio_util::task::TaskTracker,
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
) {
    tracker.spawn(async move {
        // Nagle off, as the real engine does: small frames would otherwise wait up to 40 ms
        // for the peer's delayed ACK, which stalls request/reply traffic at low concurrency.
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "cannot disable Nagle's algorithm");
            }
        });
        let server = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(err) = server.await {
            tracing::warn!(error = %err, "listener failed");
        }
    });
}

/// Starts a run of a node on already bound listeners. With a script, its VM starts first
/// (running `init()`), and a script that fails to start fails the node's start.
pub(crate) async fn start(
    cluster: &Arc<Cluster>,
    node: &Arc<NodeShared>,
    api_listener: TcpListener,
    chat_listener: TcpListener,
) -> Result<Arc<Runtime>, MockError> {
    let stop = cluster.stop.child_token();
    let runtime = Arc::new(Runtime::new(
        node.clone(),
        cluster.config.topic_size,
        stop.clone(),
    ));
    let state = NodeState {
        cluster: cluster.clone(),
        runtime: runtime.clone(),
    };
    // The VM first: `init()` may create queue topics before any consumer can pop them.
    let script = match &cluster.config.script {
        Some(config) => {
            let (host, done) = lua::spawn(state.clone(), config.clone()).await?;
            // A node is stopped once its VM has run every `on_close` and ended.
            runtime.tracker.spawn(async move {
                let _ = done.await;
            });
            Some(host)
        }
        None => None,
    };
    serve(
        &runtime.tracker,
        api_listener,
        api_router(state.clone()),
        stop.clone(),
    );
    match script {
        Some(host) => lua::net::serve(state, chat_listener, host, stop),
        None => serve(&runtime.tracker, chat_listener, chat_router(state), stop),
    }
    node.set_runtime(Some(runtime.clone()));
    tracing::info!(node = %node.addrs.id, api = %node.addrs.api_addr, chat = %node.addrs.chat_addr, "node started");
    Ok(runtime)
}

/// Kills a node's current run: listeners closed, connections dropped, queues lost.
pub(crate) async fn kill(node: &NodeShared) {
    let Some(runtime) = node.set_runtime(None) else {
        return;
    };
    runtime.stop.cancel();
    runtime.tracker.close();
    runtime.tracker.wait().await;
    tracing::info!(node = %node.addrs.id, "node stopped");
}

fn api_router(state: NodeState) -> Router {
    let credentials = Arc::new(state.cluster.config.credentials.clone());
    Router::new()
        .route(&websocket_path(API), get(api_upgrade))
        .route(&send_path(API), post(push::send))
        .route(&publish_path(API), post(push::publish))
        .layer(axum::middleware::from_fn_with_state(
            credentials,
            auth::require,
        ))
        .with_state(state)
}

/// The browser chat page, one self-contained file.
const CHAT_PAGE: &str = include_str!("../assets/chat.html");

fn chat_router(state: NodeState) -> Router {
    let path = state.cluster.config.chat_path.clone();
    let router = Router::new().route(&path, get(chat_upgrade));
    if path == "/" {
        return router.with_state(state);
    }
    // The page opens its WebSocket at the configured path, which it reads from a meta tag.
    let page = Html(CHAT_PAGE.replace(
        r#"<meta name="chat-path" content="/chat">"#,
        &format!(r#"<meta name="chat-path" content="{}">"#, html_attr(&path)),
    ));
    router
        .route("/", get(move || std::future::ready(page.clone())))
        .with_state(state)
}

/// Escapes text for a double-quoted HTML attribute.
fn html_attr(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn api_upgrade(State(state): State<NodeState>, ws: WebSocketUpgrade) -> Response {
    let tracker = state.runtime.tracker.clone();
    // tungstenite zero-fills its whole read buffer before each read; requests are small.
    ws.read_buffer_size(8 * 1024)
        .on_upgrade(move |socket| tracker.track_future(api::serve(state, socket)))
}

async fn chat_upgrade(
    State(state): State<NodeState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let headers = chat::header_map(&headers);
    let tracker = state.runtime.tracker.clone();
    let limit = state.cluster.config.max_browser_frame;
    ws.max_frame_size(limit)
        .max_message_size(limit)
        .on_upgrade(move |socket| tracker.track_future(chat::serve(state, socket, headers)))
}

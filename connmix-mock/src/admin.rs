//! Starting, stopping and restarting nodes at runtime, for [`MockEngine`](crate::MockEngine)
//! and for the center's admin HTTP API, so that clients in any language can exercise their
//! node resync against the mock:
//!
//! | request | effect | answer |
//! |---|---|---|
//! | `GET /admin/nodes` | | 200, `{"nodes":[{"id","api_server","chat_server","running"}]}` |
//! | `POST /admin/nodes` | starts and lists a new node | 201, that node |
//! | `DELETE /admin/nodes/{id}` | unlists and stops it | 204; 404 |
//! | `POST /admin/nodes/{id}/kill` | stops it, still listed (a crash) | 204; 404 |
//! | `POST /admin/nodes/{id}/restart` | starts it again, same id and ports | 204; 404; 500 |
//!
//! The admin API sits behind the same credentials as the rest of the center.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use connmix_protocol::NodeId;
use serde_json::{json, Value};

use crate::cluster::Cluster;
use crate::config::MockConfig;
use crate::error::MockError;
use crate::node::{NodeAddrs, NodeShared};
use crate::server;

pub(crate) async fn add_node(cluster: &Arc<Cluster>) -> Result<NodeAddrs, MockError> {
    if cluster.stop.is_cancelled() {
        return Err(MockError::Shutdown);
    }
    let config = &cluster.config;
    let index = cluster.next_index.fetch_add(1, Ordering::Relaxed);
    let api_want = SocketAddr::new(config.bind, MockConfig::node_port(config.api_port, index));
    let chat_want = SocketAddr::new(config.bind, MockConfig::node_port(config.chat_port, index));
    let api = server::bind(api_want).await?;
    let chat = server::bind(chat_want).await?;
    let local = |listener: &tokio::net::TcpListener, want| {
        listener
            .local_addr()
            .map_err(|source| MockError::Bind { addr: want, source })
    };
    let addrs = NodeAddrs {
        id: NodeId((index + 1).to_string()),
        api_addr: local(&api, api_want)?,
        chat_addr: local(&chat, chat_want)?,
    };
    let node = Arc::new(NodeShared::new(addrs.clone(), index));
    server::start(cluster, &node, api, chat).await?;
    cluster.add(node);
    Ok(addrs)
}

pub(crate) async fn remove_node(cluster: &Cluster, id: &NodeId) -> bool {
    let Some(node) = cluster.remove(id) else {
        return false;
    };
    server::kill(&node).await;
    true
}

/// False when no node has that id.
pub(crate) async fn kill_node(cluster: &Cluster, id: &NodeId) -> bool {
    let Some(node) = cluster.find(id) else {
        return false;
    };
    server::kill(&node).await;
    true
}

pub(crate) async fn restart_node(cluster: &Arc<Cluster>, id: &NodeId) -> Result<(), MockError> {
    let node = cluster
        .find(id)
        .ok_or_else(|| MockError::UnknownNode(id.to_string()))?;
    server::kill(&node).await;
    if cluster.stop.is_cancelled() {
        return Err(MockError::Shutdown);
    }
    let api = server::bind(node.addrs.api_addr).await?;
    let chat = server::bind(node.addrs.chat_addr).await?;
    // A restarted process starts healthy.
    node.unresponsive.send_replace(false);
    server::start(cluster, &node, api, chat).await?;
    Ok(())
}

/// The admin routes, merged into the center's router.
pub(crate) fn router() -> Router<Arc<Cluster>> {
    Router::new()
        .route("/admin/nodes", get(list).post(add))
        .route("/admin/nodes/{id}", delete(remove))
        .route("/admin/nodes/{id}/kill", post(kill))
        .route("/admin/nodes/{id}/restart", post(restart))
}

fn node_json(addrs: &NodeAddrs, running: bool) -> Value {
    json!({
        "id": addrs.id.to_string(),
        "api_server": addrs.api_addr.to_string(),
        "chat_server": addrs.chat_addr.to_string(),
        "running": running,
    })
}

fn error(status: StatusCode, err: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": err.to_string() }))).into_response()
}

async fn list(State(cluster): State<Arc<Cluster>>) -> Json<Value> {
    let nodes: Vec<Value> = cluster
        .nodes()
        .iter()
        .map(|n| node_json(&n.addrs, n.runtime().is_some()))
        .collect();
    Json(json!({ "nodes": nodes }))
}

async fn add(State(cluster): State<Arc<Cluster>>) -> Response {
    match add_node(&cluster).await {
        Ok(addrs) => (StatusCode::CREATED, Json(node_json(&addrs, true))).into_response(),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}

fn unknown(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("no node `{id}`"))
}

async fn remove(State(cluster): State<Arc<Cluster>>, Path(id): Path<String>) -> Response {
    if remove_node(&cluster, &NodeId(id.clone())).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        unknown(&id)
    }
}

async fn kill(State(cluster): State<Arc<Cluster>>, Path(id): Path<String>) -> Response {
    if kill_node(&cluster, &NodeId(id.clone())).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        unknown(&id)
    }
}

async fn restart(State(cluster): State<Arc<Cluster>>, Path(id): Path<String>) -> Response {
    match restart_node(&cluster, &NodeId(id.clone())).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(MockError::UnknownNode(_)) => unknown(&id),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}

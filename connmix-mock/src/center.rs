//! The center's HTTP API: `GET /version` and `GET /v1/nodes`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use connmix_protocol::center::{nodes_path, VERSION_PATH};
use connmix_protocol::{Dialect, NodeInfo, NodeList, VersionInfo};
use serde_json::{json, Value};

use crate::auth;
use crate::cluster::Cluster;

/// The API version the mock speaks.
pub(crate) const API: &str = "v1";

pub(crate) fn router(cluster: Arc<Cluster>) -> Router {
    let credentials = Arc::new(cluster.config.credentials.clone());
    Router::new()
        .route(VERSION_PATH, get(version))
        .route(&nodes_path(API), get(nodes))
        .merge(crate::admin::router())
        .layer(axum::middleware::from_fn_with_state(
            credentials,
            auth::require,
        ))
        .with_state(cluster)
}

async fn version() -> Json<VersionInfo> {
    Json(VersionInfo {
        apis: vec![API.to_owned()],
    })
}

async fn nodes(State(cluster): State<Arc<Cluster>>) -> Response {
    if cluster.config.dialect == Dialect::Legacy {
        // Engine 1.0.1 called the address `host`, and clients of its time read only that key.
        let nodes: Vec<Value> = cluster
            .nodes()
            .iter()
            .map(|node| {
                let addr = node.addrs.api_addr.to_string();
                json!({ "id": node.addrs.id.to_string(), "host": addr })
            })
            .collect();
        return Json(json!({ "nodes": nodes })).into_response();
    }
    let nodes = cluster
        .nodes()
        .iter()
        .map(|node| NodeInfo {
            id: node.addrs.id.clone(),
            api_server: node.addrs.api_addr.to_string(),
        })
        .collect();
    Json(NodeList { nodes }).into_response()
}

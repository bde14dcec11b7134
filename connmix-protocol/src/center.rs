//! The center's HTTP API: API versions and the list of engine nodes.

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// Path of the version document.
pub const VERSION_PATH: &str = "/version";

/// Path of the node list for an API version (`/v1/nodes` for `v1`).
pub fn nodes_path(api: &str) -> String {
    format!("/{api}/nodes")
}

/// Path of the node API's WebSocket for an API version (`/ws/v1` for `v1`).
pub fn websocket_path(api: &str) -> String {
    format!("/ws/{api}")
}

/// `GET /version`: the API versions the center speaks, preferred first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// API version names, such as `v1`. A client uses the first.
    pub apis: Vec<String>,
}

/// `GET /v1/nodes`: every engine node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeList {
    /// The nodes, in no particular order.
    pub nodes: Vec<NodeInfo>,
}

/// One engine node as the center lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's id.
    pub id: NodeId,
    /// `host:port` of the node's API server (older engines called this `host`).
    #[serde(alias = "host")]
    pub api_server: String,
}

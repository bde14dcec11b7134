//! The center's HTTP API: API versions and the list of engine nodes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{json_type, DecodeError};
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

/// An entry of the node list that is not a usable node, skipped by [`NodeList::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedNode {
    /// Its position in the list, from 0.
    pub index: usize,
    /// Why it is unusable (a missing address, an id of the wrong type...).
    pub reason: String,
}

impl NodeList {
    /// Decodes `GET /v1/nodes`, keeping every usable entry: one malformed entry (a node without
    /// an address, say) does not hide the good ones, and is returned among the skipped.
    ///
    /// Fails when the document is not an object with a `nodes` list, or when it lists entries
    /// and none of them is usable: that is a wrong endpoint or format, not one bad node.
    pub fn decode(text: &str) -> Result<(Self, Vec<SkippedNode>), DecodeError> {
        let mut document = crate::wire::parse_object(text)?;
        let entries = match crate::wire::require(&mut document, &["nodes"])? {
            Value::Array(entries) => entries,
            other => {
                return Err(DecodeError::invalid(
                    "nodes",
                    format!("expected a list, found a {}", json_type(&other)),
                ))
            }
        };
        let listed = entries.len();
        let mut nodes = Vec::with_capacity(listed);
        let mut skipped = Vec::new();
        for (index, entry) in entries.into_iter().enumerate() {
            match serde_json::from_value::<NodeInfo>(entry) {
                Ok(node) => nodes.push(node),
                Err(err) => skipped.push(SkippedNode {
                    index,
                    reason: err.to_string(),
                }),
            }
        }
        if nodes.is_empty() {
            if let Some(first) = skipped.first() {
                return Err(DecodeError::invalid(
                    "nodes",
                    format!("none of the {listed} entries is usable: {}", first.reason),
                ));
            }
        }
        Ok((Self { nodes }, skipped))
    }
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

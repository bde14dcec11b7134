//! The node API server's HTTP push API: `POST /v1/mesh/send` and `POST /v1/mesh/publish`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use connmix_protocol::http::decode_push;
use connmix_protocol::request::method;
use connmix_protocol::{Call, EngineError, ErrorCode, Reply};

use crate::server::NodeState;

pub(crate) async fn send(State(state): State<NodeState>, body: String) -> impl IntoResponse {
    push(&state, method::MESH_SEND, &body)
}

pub(crate) async fn publish(State(state): State<NodeState>, body: String) -> impl IntoResponse {
    push(&state, method::MESH_PUBLISH, &body)
}

/// Answers like the WebSocket call of the same name, without an id; errors are in the body,
/// as the engine reports them, not in the HTTP status.
fn push(state: &NodeState, method: &str, body: &str) -> impl IntoResponse {
    let cluster = &state.cluster;
    let outcome = match decode_push(method, body) {
        Ok(Call::MeshSend { client, data }) => cluster.send(client, data),
        Ok(Call::MeshPublish { channel, data }) => Ok(cluster.publish(&channel, data)),
        Ok(_) => Err(EngineError::new(
            ErrorCode::InvalidArgument,
            "not a push call",
        )),
        Err(err) => Err(EngineError::new(
            ErrorCode::InvalidArgument,
            err.to_string(),
        )),
    };
    let reply = Reply { id: None, outcome }.encode(cluster.config.dialect);
    ([(header::CONTENT_TYPE, "application/json")], reply)
}

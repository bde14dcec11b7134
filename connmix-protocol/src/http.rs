//! The HTTP push API of an engine node's API server.
//!
//! `POST /v1/mesh/send` and `POST /v1/mesh/publish` take the params object of the WebSocket
//! call of the same name as their JSON body, and answer a [`Reply`](crate::Reply) without an id.

use serde_json::Value;

use crate::error::DecodeError;
use crate::wire;
use crate::Call;

/// Path of the HTTP send for an API version (`/v1/mesh/send`).
pub fn send_path(api: &str) -> String {
    format!("/{api}/mesh/send")
}

/// Path of the HTTP publish for an API version (`/v1/mesh/publish`).
pub fn publish_path(api: &str) -> String {
    format!("/{api}/mesh/publish")
}

/// Decodes a push body for a method ([`MESH_SEND`](crate::request::method::MESH_SEND) or [`MESH_PUBLISH`](crate::request::method::MESH_PUBLISH)).
pub fn decode_push(method: &str, body: &str) -> Result<Call, DecodeError> {
    let params = Value::Object(wire::parse_object(body)?);
    Call::from_wire(method, params)
}

/// The JSON body of a push call; `None` for calls that are not pushes.
pub fn encode_push(call: &Call) -> Option<String> {
    crate::fast::encode_push(call)
}

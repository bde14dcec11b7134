//! Events: what an engine node pushes to a consumer without being asked.

#[cfg(feature = "structural-serde")]
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::DecodeError;
use crate::wire;
use crate::{ClientId, Dialect, NodeId, RawJson};

/// Event names on the wire.
pub mod name {
    /// A queued message delivered to a consumer (current dialect).
    pub const QUEUE_POP: &str = "queue.pop";
    /// A queued message delivered to a consumer (engine 1.0.1).
    pub const QUEUE_CONSUME: &str = "queue.consume";
}

/// An event pushed by the engine.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "structural-serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Event {
    /// One message taken from a queue this connection consumes.
    QueuePop(QueueMessage),
    /// An event this crate does not know, kept as it came.
    Other {
        /// The event name.
        name: String,
        /// Its params.
        params: Value,
    },
}

/// One message from an engine's memory queue.
///
/// The engine hands each queued message to exactly one consumer connection and forgets it:
/// delivery is at most once.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
pub struct QueueMessage {
    /// `n`: the node that holds the browser connection (absent in engine 1.0.1).
    pub node: Option<NodeId>,
    /// `c`: the browser connection whose script pushed the message.
    pub client: ClientId,
    /// `t`: the topic (queue) it came from.
    pub topic: String,
    /// `d`: the value the script pushed, as JSON text.
    pub data: RawJson,
}

impl Event {
    /// Builds an event from the fields of a decoded object (any dialect).
    pub(crate) fn from_object(
        name: String,
        mut obj: Map<String, Value>,
    ) -> Result<Self, DecodeError> {
        let params = wire::take(&mut obj, &["p", "params", "result"]).unwrap_or(Value::Null);
        if name != name::QUEUE_POP && name != name::QUEUE_CONSUME {
            return Ok(Event::Other { name, params });
        }
        let mut params = wire::object(params, "p")?;
        let node = wire::take(&mut params, &["n", "node_id", "node"])
            .map(|v| wire::convert(v, "n"))
            .transpose()?;
        let client = wire::convert(wire::require(&mut params, &["c", "client_id"])?, "c")?;
        let topic = wire::string(wire::require(&mut params, &["t", "queue", "topic"])?, "t")?;
        let data =
            wire::take(&mut params, &["d", "data"]).map_or_else(RawJson::null, RawJson::from);
        Ok(Event::QueuePop(QueueMessage {
            node,
            client,
            topic,
            data,
        }))
    }

    /// Encodes the event as a JSON object in a dialect.
    pub fn to_value(&self, dialect: Dialect) -> Value {
        match (self, dialect) {
            (Event::QueuePop(msg), Dialect::Current) => json!({
                "e": name::QUEUE_POP,
                "p": { "n": msg.node, "c": msg.client, "t": msg.topic, "d": msg.data.to_value() },
                // The engine writes this key as `id`, not `i`.
                "id": null,
            }),
            (Event::QueuePop(msg), Dialect::Legacy) => json!({
                "event": name::QUEUE_CONSUME,
                "result": { "client_id": msg.client.get(), "queue": msg.topic, "data": msg.data.to_value() },
            }),
            (Event::Other { name, params }, Dialect::Current) => {
                json!({ "e": name, "p": params, "id": null })
            }
            (Event::Other { name, params }, Dialect::Legacy) => {
                json!({ "event": name, "result": params })
            }
        }
    }

    /// Encodes the event as a text frame in a dialect.
    pub fn encode(&self, dialect: Dialect) -> String {
        match dialect {
            Dialect::Current => crate::fast::encode_event(self),
            Dialect::Legacy => self.to_value(dialect).to_string(),
        }
    }
}

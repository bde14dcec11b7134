//! Queue payloads pushed by the chat tutorial's engine script (`entry.lua`).
//!
//! The engine does not define these: the Lua script running in the engine does. They are here
//! because the mock engine produces them and the chat consumer reads them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{json_type, DecodeError};
use crate::wire;

/// A WebSocket frame as the engine's `websocket` Lua module decodes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsFrame {
    /// `text` or `binary` (the script queues only text frames).
    #[serde(rename = "type")]
    pub kind: String,
    /// The frame's content.
    pub data: String,
    /// Whether this is the final fragment.
    #[serde(default = "yes")]
    pub finish: bool,
}

fn yes() -> bool {
    true
}

impl WsFrame {
    /// A complete text frame.
    pub fn text(data: impl Into<String>) -> Self {
        Self {
            kind: "text".to_owned(),
            data: data.into(),
            finish: true,
        }
    }
}

/// What the script pushes onto the queue for one browser connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptEvent {
    /// `{"event":"handshake","headers":{..}}`: the connection opened.
    Handshake {
        /// The HTTP headers of the WebSocket upgrade request.
        headers: Map<String, Value>,
    },
    /// `{"event":"message","uid":..,"frame":{..}}`: the browser sent a text frame. The original
    /// tutorial's script pushes the same without `event`.
    Message {
        /// The connection's context value `uid` when the frame arrived: `None` before login,
        /// `Some(0)` after a failed login.
        uid: Option<u64>,
        /// The frame.
        frame: WsFrame,
        /// The handshake headers, attached by the later script to `auth` frames only.
        headers: Option<Map<String, Value>>,
    },
    /// `{"event":"close","uid":..}`: the connection closed.
    Close {
        /// The connection's context value `uid` when it closed.
        uid: Option<u64>,
    },
}

impl ScriptEvent {
    /// Decodes a queued value.
    pub fn from_value(value: Value) -> Result<Self, DecodeError> {
        let mut obj = match value {
            Value::Object(obj) => obj,
            // A script may push a JSON string rather than a table.
            Value::String(text) => wire::parse_object(&text)?,
            other => return Err(DecodeError::NotAnObject(json_type(&other))),
        };
        let event = match wire::take(&mut obj, &["event"]) {
            Some(event) => wire::string(event, "event")?,
            None => "message".to_owned(),
        };
        let uid = uid(wire::take(&mut obj, &["uid"]));
        match event.as_str() {
            "handshake" => Ok(ScriptEvent::Handshake {
                headers: headers(wire::take(&mut obj, &["headers"])).unwrap_or_default(),
            }),
            "message" => Ok(ScriptEvent::Message {
                uid,
                frame: wire::convert(wire::require(&mut obj, &["frame"])?, "frame")?,
                headers: headers(wire::take(&mut obj, &["headers"])),
            }),
            "close" => Ok(ScriptEvent::Close { uid }),
            other => Err(DecodeError::invalid(
                "event",
                format!("unknown script event `{other}`"),
            )),
        }
    }

    /// The value the later (handshake/close) script pushes for this event.
    pub fn to_value(&self) -> Value {
        match self {
            ScriptEvent::Handshake { headers } => {
                json!({ "event": "handshake", "headers": headers })
            }
            ScriptEvent::Message {
                uid,
                frame,
                headers,
            } => {
                let mut value = json!({ "event": "message", "uid": uid, "frame": frame });
                if let (Some(headers), Value::Object(map)) = (headers, &mut value) {
                    map.insert("headers".to_owned(), Value::Object(headers.clone()));
                }
                value
            }
            ScriptEvent::Close { uid } => json!({ "event": "close", "uid": uid }),
        }
    }
}

/// The context value `uid`: a number, or digits in a string; anything else counts as unset.
fn uid(value: Option<Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Lua encodes an empty table as `[]`, so an empty list counts as no headers.
fn headers(value: Option<Value>) -> Option<Map<String, Value>> {
    match value? {
        Value::Object(map) => Some(map),
        _ => Some(Map::new()),
    }
}

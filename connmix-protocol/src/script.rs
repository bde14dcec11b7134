//! Queue payloads pushed by the chat tutorial's engine script (`entry.lua`).
//!
//! The engine does not define these: the Lua script running in the engine does. They are here
//! because the mock engine produces them and the chat consumer reads them.

use std::borrow::Cow;

use serde::de::{self, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
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
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "structural-serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
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

/// The keys of a pushed value, read without a `Value` tree.
#[derive(Deserialize)]
struct ScriptIn<'a> {
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(default)]
    uid: Uid,
    #[serde(default)]
    frame: Option<WsFrame>,
    #[serde(borrow, default)]
    headers: Option<&'a RawValue>,
}

/// The context value `uid` as [`uid`] reads it, from any JSON value.
#[derive(Default)]
struct Uid(Option<u64>);

impl<'de> Deserialize<'de> for Uid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Uid;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Uid, E> {
                Ok(Uid(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Uid, E> {
                Ok(Uid(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Uid, E> {
                Ok(Uid(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Uid, E> {
                Ok(Uid(None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Uid, E> {
                Ok(Uid(v.parse().ok()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Uid, E> {
                Ok(Uid(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Uid, E> {
                Ok(Uid(None))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Uid, D::Error> {
                Uid::deserialize(d)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Uid, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Uid(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Uid, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Uid(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl ScriptEvent {
    /// Decodes a queued value from its JSON text.
    ///
    /// The value is read into typed fields that borrow from the text; only a value those do
    /// not describe (a JSON string holding the object, a duplicate key, a wrong type) goes
    /// through a `Value` tree, which names what is wrong.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        if let Ok(event) = serde_json::from_str::<ScriptIn<'_>>(text) {
            let headers = || event.headers.map(raw_headers);
            let typed = match event.event.as_deref().unwrap_or("message") {
                "message" => event.frame.map(|frame| ScriptEvent::Message {
                    uid: event.uid.0,
                    frame,
                    headers: headers(),
                }),
                "handshake" => Some(ScriptEvent::Handshake {
                    headers: headers().unwrap_or_default(),
                }),
                "close" => Some(ScriptEvent::Close { uid: event.uid.0 }),
                _ => None,
            };
            if let Some(typed) = typed {
                return Ok(typed);
            }
        }
        match serde_json::from_str::<Value>(text) {
            Ok(value) => Self::from_value(value),
            Err(err) => Err(DecodeError::Json(err.to_string())),
        }
    }

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

/// Headers from their raw JSON, as [`headers`] reads them.
fn raw_headers(raw: &RawValue) -> Map<String, Value> {
    serde_json::from_str(raw.get()).unwrap_or_default()
}

/// Lua encodes an empty table as `[]`, so an empty list counts as no headers.
fn headers(value: Option<Value>) -> Option<Map<String, Value>> {
    match value? {
        Value::Object(map) => Some(map),
        _ => Some(Map::new()),
    }
}

/// Where a value came from when the script put it on a Redis list or stream rather than on the
/// engine's memory queue.
///
/// A `queue.pop` delivery names its node and connection in its envelope; a Redis entry carries
/// them itself, beside the event's own fields:
/// `{"node":"1","client_id":42,"event":"message","uid":null,"frame":{..}}`. The rest of the
/// text is the same event [`ScriptEvent::decode`] reads, which ignores these two fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisRoute {
    /// The node holding the connection (`mix.server.option("node_id")` in the script); `None`
    /// when the script did not say, which only a one-node engine can answer.
    pub node: Option<crate::NodeId>,
    /// The connection's id (`conn:client_id()`).
    pub client: crate::ClientId,
}

#[derive(Deserialize)]
struct RouteIn<'a> {
    #[serde(borrow, default)]
    node: Option<NodeText<'a>>,
    client_id: Option<crate::ClientId>,
}

/// A node id written as a string or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum NodeText<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Number(u64),
}

impl RedisRoute {
    /// Reads the route of one Redis entry's text.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        let route: RouteIn<'_> = serde_json::from_str(text).map_err(|err| {
            if err.is_data() {
                DecodeError::invalid("node", err)
            } else {
                DecodeError::Json(err.to_string())
            }
        })?;
        let client = route.client_id.ok_or(DecodeError::Missing("client_id"))?;
        let node = match route.node {
            None => None,
            Some(NodeText::Text(text)) if text.is_empty() => None,
            Some(NodeText::Text(text)) => Some(crate::NodeId(text.into_owned())),
            Some(NodeText::Number(n)) => Some(crate::NodeId(n.to_string())),
        };
        Ok(Self { node, client })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_route_reads_node_and_client_beside_the_event() {
        let text = r#"{"node":"n2","client_id":"42","event":"close","uid":7}"#;
        let route = RedisRoute::decode(text).unwrap();
        assert_eq!(route.node, Some(crate::NodeId::from("n2")));
        assert_eq!(route.client, crate::ClientId(42));
        assert_eq!(
            ScriptEvent::decode(text).unwrap(),
            ScriptEvent::Close { uid: Some(7) }
        );
        let numeric = RedisRoute::decode(r#"{"node":3,"client_id":5}"#).unwrap();
        assert_eq!(numeric.node, Some(crate::NodeId::from("3")));
        assert_eq!(RedisRoute::decode(r#"{"client_id":5}"#).unwrap().node, None);
    }

    #[test]
    fn a_redis_route_without_a_client_or_json_is_refused() {
        assert_eq!(
            RedisRoute::decode(r#"{"node":"1","event":"close"}"#),
            Err(DecodeError::Missing("client_id"))
        );
        assert!(matches!(
            RedisRoute::decode("BRPOP"),
            Err(DecodeError::Json(_))
        ));
        assert!(RedisRoute::decode(r#"{"node":[1],"client_id":1}"#).is_err());
        assert!(RedisRoute::decode(r#"{"client_id":-1}"#).is_err());
    }

    #[test]
    fn typed_decoding_agrees_with_the_value_path() {
        for text in [
            r#"{"event":"message","uid":3,"frame":{"type":"text","data":"{\"op\":\"ping\"}","finish":true}}"#,
            r#"{"frame":{"type":"text","data":"x"},"uid":null}"#,
            r#"{"event":"message","uid":"12","frame":{"type":"text","data":"x"},"headers":{"host":"h"}}"#,
            r#"{"event":"message","uid":-1,"frame":{"type":"binary","data":"AA=="},"headers":[]}"#,
            r#"{"event":"message","uid":{"a":[1]},"frame":{"type":"text","data":"x"}}"#,
            r#"{"event":"handshake","headers":{"host":"h"}}"#,
            r#"{"event":"handshake","headers":[]}"#,
            r#"{"event":"close","uid":1.5}"#,
            r#""{\"event\":\"close\",\"uid\":2}""#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                ScriptEvent::decode(text).unwrap(),
                ScriptEvent::from_value(value).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn undecodable_values_name_the_problem() {
        for (text, why) in [
            (r#"{"event":"message","uid":1}"#, "frame"),
            (r#"{"event":"dance"}"#, "dance"),
            ("[1]", "array"),
            ("{oops", "JSON"),
        ] {
            let err = ScriptEvent::decode(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}

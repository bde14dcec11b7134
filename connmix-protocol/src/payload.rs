//! Data carried by `mesh.send` and `mesh.publish`: text, or binary sent as base64.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
#[cfg(feature = "structural-serde")]
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::DecodeError;
use crate::wire;

/// What a browser connection receives: one WebSocket text frame or one binary frame.
///
/// On the wire the data is the field `d`; binary data is base64 and marked `"t":"binary"`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "structural-serde", serde(rename_all = "snake_case"))]
pub enum Payload {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(#[cfg_attr(feature = "structural-serde", serde(with = "base64_field"))] Vec<u8>),
}

impl Payload {
    /// The number of bytes the browser receives.
    pub fn len(&self) -> usize {
        match self {
            Payload::Text(s) => s.len(),
            Payload::Binary(b) => b.len(),
        }
    }

    /// True when there is nothing to deliver.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads `d` and `t` (with their legacy names) from request params.
    pub(crate) fn from_params(params: &mut Map<String, Value>) -> Result<Self, DecodeError> {
        let kind = match wire::take(params, &["t", "type"]) {
            None => "text".to_owned(),
            Some(t) => wire::string(t, "t")?,
        };
        let data = wire::require(params, &["d", "data"])?;
        match kind.as_str() {
            "text" => Ok(Payload::Text(match data {
                Value::String(s) => s,
                // Tolerated: a peer that sent structured data meant its JSON text.
                other => other.to_string(),
            })),
            "binary" => {
                let text = wire::string(data, "d")?;
                BASE64
                    .decode(text.as_bytes())
                    .map(Payload::Binary)
                    .map_err(|err| DecodeError::invalid("d", format!("invalid base64: {err}")))
            }
            other => Err(DecodeError::invalid(
                "t",
                format!("unknown message type `{other}` (expected `text` or `binary`)"),
            )),
        }
    }

    /// Writes `d` (and `t` for binary) into request params under the given data key.
    pub(crate) fn write_params(&self, params: &mut Map<String, Value>, data_key: &str) {
        match self {
            Payload::Text(s) => {
                params.insert(data_key.to_owned(), Value::String(s.clone()));
            }
            Payload::Binary(b) => {
                params.insert(data_key.to_owned(), Value::String(BASE64.encode(b)));
                params.insert("t".to_owned(), Value::String("binary".to_owned()));
            }
        }
    }
}

impl From<String> for Payload {
    fn from(value: String) -> Self {
        Payload::Text(value)
    }
}

impl From<&str> for Payload {
    fn from(value: &str) -> Self {
        Payload::Text(value.to_owned())
    }
}

impl From<Vec<u8>> for Payload {
    fn from(value: Vec<u8>) -> Self {
        Payload::Binary(value)
    }
}

#[cfg(feature = "structural-serde")]
/// Serde adapter: bytes as a base64 string in the structural representation.
mod base64_field {
    use super::BASE64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        BASE64.decode(text).map_err(serde::de::Error::custom)
    }
}

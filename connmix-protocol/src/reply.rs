//! Replies: the engine's answer to one request, and its error codes.

#[cfg(feature = "structural-serde")]
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{json_type, DecodeError};
use crate::wire;
use crate::Dialect;

/// The engine's answer to one request.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
pub struct Reply {
    /// The id of the request answered; `None` when the request had none.
    pub id: Option<u64>,
    /// The result, or the engine's error.
    pub outcome: Result<CallResult, EngineError>,
}

/// A successful result (`r`).
///
/// Most calls answer `{"s": true}`; `mesh.publish` answers the number of connections reached
/// and missed (`{"s": 9, "f": 0}`); engine 1.0.1 also sent a `total`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
pub struct CallResult {
    /// `s`: a success flag, or a count of deliveries.
    pub status: Status,
    /// `f`: deliveries that failed, where the call reports it.
    pub failed: Option<u64>,
    /// `t` (1.0.1: `total`): deliveries attempted, where the call reports it.
    pub total: Option<u64>,
}

/// The `s` of a result.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "structural-serde", serde(rename_all = "snake_case"))]
pub enum Status {
    /// `true` or `false`.
    Flag(bool),
    /// A count of successful deliveries (`mesh.publish`).
    Count(u64),
    /// A word (`"server.pong"` answering `server.ping`).
    Text(String),
    /// Anything else, kept as it came (`null` when `s` was absent).
    Other(Value),
}

impl CallResult {
    /// `{"s": true}`.
    pub fn ok() -> Self {
        Self {
            status: Status::Flag(true),
            failed: None,
            total: None,
        }
    }

    /// A publish result: delivered and failed counts.
    pub fn counts(delivered: u64, failed: u64) -> Self {
        Self {
            status: Status::Count(delivered),
            failed: Some(failed),
            total: None,
        }
    }

    /// True for `s: true` or any count; false for `s: false`.
    pub fn is_success(&self) -> bool {
        match &self.status {
            Status::Flag(flag) => *flag,
            Status::Count(_) | Status::Text(_) => true,
            Status::Other(_) => false,
        }
    }

    /// Deliveries made, when `s` is a count.
    pub fn delivered(&self) -> Option<u64> {
        match self.status {
            Status::Count(n) => Some(n),
            _ => None,
        }
    }

    fn from_wire(value: Value) -> Result<Self, DecodeError> {
        let mut map = match value {
            Value::Object(map) => map,
            // Tolerated: a bare `true` or count.
            other => {
                let mut map = Map::new();
                map.insert("s".to_owned(), other);
                map
            }
        };
        // `status` (engine 1.0.1) and `m` (August 2022) carry `server.pong` in the docs.
        let status = match wire::take(&mut map, &["s", "success", "status", "m"]) {
            Some(Value::Bool(b)) => Status::Flag(b),
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                Status::Count(n.as_u64().unwrap_or_default())
            }
            Some(Value::String(s)) => Status::Text(s),
            Some(other) => Status::Other(other),
            None => Status::Other(Value::Null),
        };
        let count = |map: &mut Map<String, Value>, names, field| {
            wire::take(map, names)
                .map(|v| {
                    v.as_u64().ok_or_else(|| {
                        DecodeError::invalid(field, format!("expected a count, found {v}"))
                    })
                })
                .transpose()
        };
        Ok(Self {
            failed: count(&mut map, &["f", "fail"], "f")?,
            total: count(&mut map, &["t", "total"], "t")?,
            status,
        })
    }

    fn to_wire(&self, dialect: Dialect) -> Value {
        let legacy = dialect == Dialect::Legacy;
        let mut map = Map::new();
        let status = match &self.status {
            Status::Flag(b) => json!(b),
            Status::Count(n) => json!(n),
            Status::Text(s) => json!(s),
            Status::Other(v) => v.clone(),
        };
        map.insert(if legacy { "success" } else { "s" }.to_owned(), status);
        if let Some(failed) = self.failed {
            map.insert(if legacy { "fail" } else { "f" }.to_owned(), json!(failed));
        }
        if let Some(total) = self.total {
            map.insert(if legacy { "total" } else { "t" }.to_owned(), json!(total));
        }
        Value::Object(map)
    }
}

/// An error the engine reports for a request (`E`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
#[error("engine error {}: {message}", code.as_i64())]
pub struct EngineError {
    /// `c`: what kind of failure.
    pub code: ErrorCode,
    /// `m`: the engine's explanation.
    pub message: String,
}

impl EngineError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn from_wire(value: Value) -> Result<Self, DecodeError> {
        match value {
            Value::Object(mut map) => {
                let code = match wire::take(&mut map, &["c", "code"]) {
                    Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                        DecodeError::invalid("E", format!("error code {n} is not an integer"))
                    })?,
                    Some(other) => {
                        return Err(DecodeError::invalid(
                            "E",
                            format!("error code is a {}", json_type(&other)),
                        ))
                    }
                    None => 0,
                };
                let message = match wire::take(&mut map, &["m", "message", "msg"]) {
                    Some(Value::String(s)) => s,
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                Ok(Self::new(ErrorCode::from_i64(code), message))
            }
            // Tolerated: an error given as bare text.
            Value::String(message) => Ok(Self::new(ErrorCode::Unknown(0), message)),
            other => Err(DecodeError::invalid(
                "E",
                format!("expected an error object, found a {}", json_type(&other)),
            )),
        }
    }

    fn to_wire(&self, dialect: Dialect) -> Value {
        match dialect {
            Dialect::Current => json!({ "c": self.code.as_i64(), "m": self.message }),
            Dialect::Legacy => json!({ "code": self.code.as_i64(), "message": self.message }),
        }
    }
}

/// The engine's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "structural-serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ErrorCode {
    /// 101: a param is missing or of the wrong type.
    InvalidArgument,
    /// 201: the queue could not be consumed.
    ConsumeFailed,
    /// 202: this connection already consumes that topic.
    AlreadyConsumed,
    /// 203: consumption could not be cancelled.
    UnpopFailed,
    /// 301: `conn.call` failed, for example because no connection has that client id.
    ConnCallFailed,
    /// 401: the data could not be sent.
    SendFailed,
    /// A code this crate does not know (0 when the engine gave none).
    Unknown(i64),
}

impl ErrorCode {
    /// The numeric code.
    pub fn as_i64(self) -> i64 {
        match self {
            ErrorCode::InvalidArgument => 101,
            ErrorCode::ConsumeFailed => 201,
            ErrorCode::AlreadyConsumed => 202,
            ErrorCode::UnpopFailed => 203,
            ErrorCode::ConnCallFailed => 301,
            ErrorCode::SendFailed => 401,
            ErrorCode::Unknown(code) => code,
        }
    }

    /// The code for a number.
    pub fn from_i64(code: i64) -> Self {
        match code {
            101 => ErrorCode::InvalidArgument,
            201 => ErrorCode::ConsumeFailed,
            202 => ErrorCode::AlreadyConsumed,
            203 => ErrorCode::UnpopFailed,
            301 => ErrorCode::ConnCallFailed,
            401 => ErrorCode::SendFailed,
            other => ErrorCode::Unknown(other),
        }
    }
}

impl Reply {
    /// A successful reply.
    pub fn ok(id: Option<u64>, result: CallResult) -> Self {
        Self {
            id,
            outcome: Ok(result),
        }
    }

    /// An error reply.
    pub fn err(id: Option<u64>, error: EngineError) -> Self {
        Self {
            id,
            outcome: Err(error),
        }
    }

    /// Builds a reply from the fields of a decoded object (any dialect).
    pub(crate) fn from_object(mut obj: Map<String, Value>) -> Result<Self, DecodeError> {
        let id = wire::take(&mut obj, &["i", "id"])
            .map(|v| wire::request_id(v, "i"))
            .transpose()?;
        let outcome = match wire::take(&mut obj, &["E", "error"]) {
            Some(error) => Err(EngineError::from_wire(error)?),
            None => Ok(match wire::take(&mut obj, &["r", "result"]) {
                Some(result) => CallResult::from_wire(result)?,
                None => return Err(DecodeError::Missing("r")),
            }),
        };
        Ok(Self { id, outcome })
    }

    /// Decodes a reply body as the HTTP push API returns it (`{"E":..,"r":..}`, no id).
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Self::from_object(wire::parse_object(text)?)
    }

    /// Encodes the reply as a JSON object in a dialect; the id key is left out when there is
    /// no id (as in HTTP push replies).
    pub fn to_value(&self, dialect: Dialect) -> Value {
        let (e, r, i) = match dialect {
            Dialect::Current => ("E", "r", "i"),
            Dialect::Legacy => ("error", "result", "id"),
        };
        let mut map = Map::new();
        match &self.outcome {
            Ok(result) => {
                map.insert(e.to_owned(), Value::Null);
                map.insert(r.to_owned(), result.to_wire(dialect));
            }
            Err(error) => {
                map.insert(e.to_owned(), error.to_wire(dialect));
            }
        }
        if let Some(id) = self.id {
            map.insert(i.to_owned(), json!(id));
        }
        Value::Object(map)
    }

    /// Encodes the reply as a text frame in a dialect.
    pub fn encode(&self, dialect: Dialect) -> String {
        match dialect {
            Dialect::Current => crate::fast::encode_reply(self),
            Dialect::Legacy => self.to_value(dialect).to_string(),
        }
    }
}

/// The engine's answer to `server.ping`, as each dialect's documentation shows it. Engine 1.0.1:
/// `{"error":null,"result":{"status":"server.pong"},"id":..}`. The short-key engines answered
/// `{"E":null,"r":{"s":"server.pong"},"i":..}` (May 2022) and are documented from August 2022
/// with `"r":{"m":"server.pong"}`; the current dialect carries both keys, so a client written
/// for either finds its own.
pub fn server_pong(id: Option<u64>, dialect: Dialect) -> String {
    const PONG: &str = "server.pong";
    let reply = match dialect {
        Dialect::Legacy => json!({ "error": null, "result": { "status": PONG }, "id": id }),
        Dialect::Current => json!({ "E": null, "r": { "s": PONG, "m": PONG }, "i": id }),
    };
    reply.to_string()
}

//! Whole WebSocket text frames of `/ws/v1`, one enum per direction.

#[cfg(feature = "structural-serde")]
use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::request::RequestEnvelope;
use crate::wire;
use crate::{Dialect, Event, Reply, Request};

/// The text a peer sends to check the link, outside JSON.
pub const PING_TEXT: &str = "ping";
/// The engine's answer to [`PING_TEXT`].
pub const PONG_TEXT: &str = "pong";

/// A text frame from a consumer to an engine node.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "structural-serde", serde(rename_all = "snake_case"))]
pub enum ClientFrame {
    /// The bare text `ping`, answered with `pong`.
    Ping,
    /// A JSON request.
    Request(Request),
}

/// A consumer's frame that is not a valid request, with the request id when the frame named
/// one: an engine still answers it (error 101) under that id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct InvalidRequest {
    /// The frame's request id, if it had a readable one.
    pub id: Option<u64>,
    /// What is wrong with it.
    #[source]
    pub error: DecodeError,
}

impl ClientFrame {
    /// Decodes a text frame in any dialect.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Self::decode_answerable(text).map_err(|invalid| invalid.error)
    }

    /// Decodes like [`decode`](Self::decode), keeping the id of a request whose method or
    /// params are invalid, so that the error reply can name the request.
    pub fn decode_answerable(text: &str) -> Result<Self, InvalidRequest> {
        if text.trim() == PING_TEXT {
            return Ok(ClientFrame::Ping);
        }
        Request::decode(text)
            .map(ClientFrame::Request)
            .map_err(|error| InvalidRequest {
                id: RequestEnvelope::decode(text).ok().and_then(|e| e.id),
                error,
            })
    }

    /// Encodes the frame's text in a dialect.
    pub fn encode(&self, dialect: Dialect) -> String {
        match self {
            ClientFrame::Ping => PING_TEXT.to_owned(),
            ClientFrame::Request(request) => request.encode(dialect),
        }
    }
}

/// A text frame from an engine node to a consumer.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "structural-serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "structural-serde", serde(rename_all = "snake_case"))]
pub enum EngineFrame {
    /// The bare text `pong`.
    Pong,
    /// The answer to a request.
    Reply(Reply),
    /// Something pushed without a request.
    Event(Event),
}

impl EngineFrame {
    /// Decodes a text frame in any dialect.
    ///
    /// A frame naming an event (`e`, or `event` in 1.0.1) is an event; any other object is a
    /// reply, which must carry an error (`E`/`error`) or a result (`r`/`result`).
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        if text.trim() == PONG_TEXT {
            return Ok(EngineFrame::Pong);
        }
        // The current dialect's frames, typed and borrowed; anything else the general way.
        match crate::fast::decode_engine(text) {
            Some(crate::fast::EngineIn::Reply(reply)) => Ok(EngineFrame::Reply(reply)),
            Some(crate::fast::EngineIn::Event(event)) => Ok(EngineFrame::Event(event)),
            None => Self::decode_general(text),
        }
    }

    /// Decodes any dialect through a `Value` tree, naming what is wrong in the error.
    pub(crate) fn decode_general(text: &str) -> Result<Self, DecodeError> {
        let mut obj = wire::parse_object(text)?;
        match wire::take(&mut obj, &["e", "event"]) {
            Some(name) => {
                let name = wire::string(name, "e")?;
                Event::from_object(name, obj).map(EngineFrame::Event)
            }
            None => Reply::from_object(obj).map(EngineFrame::Reply),
        }
    }

    /// Encodes the frame's text in a dialect.
    pub fn encode(&self, dialect: Dialect) -> String {
        match self {
            EngineFrame::Pong => PONG_TEXT.to_owned(),
            EngineFrame::Reply(reply) => reply.encode(dialect),
            EngineFrame::Event(event) => event.encode(dialect),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_request_keeps_its_id_for_the_error_reply() {
        let bad = ClientFrame::decode_answerable(r#"{"i":7,"m":"conn.call","p":{}}"#).unwrap_err();
        assert_eq!(bad.id, Some(7));
        assert_eq!(bad.error, DecodeError::Missing("c"));
        let unnamed = ClientFrame::decode_answerable("{not json").unwrap_err();
        assert_eq!(unnamed.id, None);
        assert_eq!(
            ClientFrame::decode_answerable(" ping "),
            Ok(ClientFrame::Ping)
        );
    }
}

//! Whole WebSocket text frames of `/ws/v1`, one enum per direction.

use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::wire;
use crate::{Dialect, Event, Reply, Request};

/// The text a peer sends to check the link, outside JSON.
pub const PING_TEXT: &str = "ping";
/// The engine's answer to [`PING_TEXT`].
pub const PONG_TEXT: &str = "pong";

/// A text frame from a consumer to an engine node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientFrame {
    /// The bare text `ping`, answered with `pong`.
    Ping,
    /// A JSON request.
    Request(Request),
}

impl ClientFrame {
    /// Decodes a text frame in any dialect.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        if text.trim() == PING_TEXT {
            return Ok(ClientFrame::Ping);
        }
        Request::decode(text).map(ClientFrame::Request)
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

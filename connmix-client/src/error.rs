//! The client's error type and the kinds tests and applications match on.

use connmix_protocol::{EngineError, ErrorCode};

/// What went wrong, without the details: the thing to `match` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientErrorKind {
    /// The engine answered the request with an error of this code.
    Engine(ErrorCode),
    /// No reply arrived within the request timeout.
    Timeout,
    /// The node's connection is down, or dropped while the request was pending.
    Disconnected,
    /// No (connected) node can take the request, or the node named is unknown.
    NoNode,
    /// A peer sent something that is not the protocol.
    Protocol,
    /// An HTTP request (center or push API) failed or answered an unexpected status.
    Http,
    /// The center could not be read or its answer was unusable.
    Discovery,
    /// The engine refused the credentials (HTTP 401/403).
    Auth,
    /// The client was shut down, or every handle was dropped.
    Closed,
    /// An option or address given to the client is invalid.
    Config,
    /// An argument of a call is unusable (for example an empty topic list).
    InvalidInput,
}

/// An error of the CONNMIX client.
///
/// Use [`ClientError::kind`] to decide what to do; the text is for logs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ClientError {
    kind: ClientErrorKind,
    message: String,
    engine: Option<EngineError>,
}

impl ClientError {
    pub(crate) fn new(kind: ClientErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            engine: None,
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ClientErrorKind {
        self.kind
    }

    /// The engine's error (code and message) when the engine refused the request.
    pub fn engine_error(&self) -> Option<&EngineError> {
        self.engine.as_ref()
    }

    pub(crate) fn timeout(op: &str) -> Self {
        Self::new(ClientErrorKind::Timeout, format!("{op}: no reply in time"))
    }

    pub(crate) fn disconnected(node: impl std::fmt::Display) -> Self {
        Self::new(
            ClientErrorKind::Disconnected,
            format!("node {node}: connection is down"),
        )
    }

    pub(crate) fn closed() -> Self {
        Self::new(ClientErrorKind::Closed, "the client is shut down")
    }

    pub(crate) fn no_node(what: impl std::fmt::Display) -> Self {
        Self::new(ClientErrorKind::NoNode, what.to_string())
    }

    pub(crate) fn protocol(what: impl std::fmt::Display) -> Self {
        Self::new(ClientErrorKind::Protocol, what.to_string())
    }

    pub(crate) fn config(what: impl std::fmt::Display) -> Self {
        Self::new(ClientErrorKind::Config, what.to_string())
    }
}

impl From<EngineError> for ClientError {
    fn from(error: EngineError) -> Self {
        Self {
            kind: ClientErrorKind::Engine(error.code),
            message: error.to_string(),
            engine: Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_code_and_message() {
        let err = ClientError::from(EngineError::new(
            ErrorCode::ConnCallFailed,
            "no such client",
        ));
        assert_eq!(
            err.kind(),
            ClientErrorKind::Engine(ErrorCode::ConnCallFailed)
        );
        let engine = err.engine_error().map(|e| e.message.as_str());
        assert_eq!(engine, Some("no such client"));
        assert!(err.to_string().contains("301"));
    }

    #[test]
    fn local_errors_have_no_engine_error() {
        let err = ClientError::disconnected("n1");
        assert_eq!(err.kind(), ClientErrorKind::Disconnected);
        assert!(err.engine_error().is_none());
        assert!(err.to_string().contains("n1"));
    }
}

//! What can go wrong when starting or managing a mock engine.

use std::net::SocketAddr;

/// An error of the mock engine's management API.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// A listener could not bind its address (most often: the port is in use).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration cannot work (for example a topic size of 0).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No node has that id.
    #[error("no node `{0}`")]
    UnknownNode(String),
    /// The engine has been shut down.
    #[error("the mock engine is shut down")]
    Shutdown,
    /// The engine script cannot be read, compiled or started (`file:line: message`).
    #[error("engine script: {0}")]
    Script(String),
}

/// The kind of a [`MockError`], for matching in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MockErrorKind {
    /// See [`MockError::Bind`].
    Bind,
    /// See [`MockError::Config`].
    Config,
    /// See [`MockError::UnknownNode`].
    UnknownNode,
    /// See [`MockError::Shutdown`].
    Shutdown,
    /// See [`MockError::Script`].
    Script,
}

impl MockError {
    /// What kind of error this is.
    pub fn kind(&self) -> MockErrorKind {
        match self {
            MockError::Bind { .. } => MockErrorKind::Bind,
            MockError::Config(_) => MockErrorKind::Config,
            MockError::UnknownNode(_) => MockErrorKind::UnknownNode,
            MockError::Shutdown => MockErrorKind::Shutdown,
            MockError::Script(_) => MockErrorKind::Script,
        }
    }
}

/// The synthetic producer's push found the topic full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the queue topic is full")]
pub struct QueueFull;

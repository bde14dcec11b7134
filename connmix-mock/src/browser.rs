//! [`Browser`]: a minimal chat client for end-to-end tests.

use std::net::SocketAddr;
use std::time::Duration;

use connmix_protocol::chat::ChatRequest;
use connmix_protocol::Payload;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long [`Browser::recv`] waits unless told otherwise.
pub const DEFAULT_RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong in a [`Browser`].
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// The WebSocket could not be opened.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL tried.
        url: String,
        /// Why.
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// Nothing arrived within the receive timeout.
    #[error("nothing received within {0:?}")]
    Timeout(Duration),
    /// The server closed the connection.
    #[error("the connection is closed")]
    Closed,
    /// A frame of the wrong type (binary where text was expected) or not JSON.
    #[error("unexpected frame: {0}")]
    Unexpected(String),
    /// Writing or reading the socket failed.
    #[error("websocket error: {0}")]
    Socket(Box<tokio_tungstenite::tungstenite::Error>),
}

/// The kind of a [`BrowserError`], for matching in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrowserErrorKind {
    /// See [`BrowserError::Connect`].
    Connect,
    /// See [`BrowserError::Timeout`].
    Timeout,
    /// See [`BrowserError::Closed`].
    Closed,
    /// See [`BrowserError::Unexpected`].
    Unexpected,
    /// See [`BrowserError::Socket`].
    Socket,
}

impl BrowserError {
    /// What kind of error this is.
    pub fn kind(&self) -> BrowserErrorKind {
        match self {
            BrowserError::Connect { .. } => BrowserErrorKind::Connect,
            BrowserError::Timeout(_) => BrowserErrorKind::Timeout,
            BrowserError::Closed => BrowserErrorKind::Closed,
            BrowserError::Unexpected(_) => BrowserErrorKind::Unexpected,
            BrowserError::Socket(_) => BrowserErrorKind::Socket,
        }
    }
}

/// A browser on a node's chat server.
#[derive(Debug)]
pub struct Browser {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    timeout: Duration,
}

impl Browser {
    /// Connects to `ws://<chat_addr>/chat`.
    pub async fn connect(chat_addr: SocketAddr) -> Result<Self, BrowserError> {
        Self::connect_url(&format!("ws://{chat_addr}/chat")).await
    }

    /// Connects to any WebSocket URL.
    pub async fn connect_url(url: &str) -> Result<Self, BrowserError> {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|source| BrowserError::Connect {
                url: url.to_owned(),
                source: Box::new(source),
            })?;
        Ok(Self {
            socket,
            timeout: DEFAULT_RECV_TIMEOUT,
        })
    }

    /// Sets how long each receive waits.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends a text frame.
    pub async fn send(&mut self, text: &str) -> Result<(), BrowserError> {
        self.socket
            .send(Message::text(text))
            .await
            .map_err(|e| BrowserError::Socket(Box::new(e)))
    }

    /// Sends a chat request as its JSON frame.
    pub async fn send_request(&mut self, request: &ChatRequest) -> Result<(), BrowserError> {
        self.send(&request.to_frame()).await
    }

    /// The next text or binary frame.
    pub async fn recv_payload(&mut self) -> Result<Payload, BrowserError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .map_err(|_| BrowserError::Timeout(self.timeout))?;
            match next {
                None | Some(Ok(Message::Close(_))) => return Err(BrowserError::Closed),
                Some(Err(err)) => return Err(BrowserError::Socket(Box::new(err))),
                Some(Ok(Message::Text(text))) => return Ok(Payload::Text(text.as_str().into())),
                Some(Ok(Message::Binary(bytes))) => return Ok(Payload::Binary(bytes.to_vec())),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next text frame; a binary frame is an error.
    pub async fn recv(&mut self) -> Result<String, BrowserError> {
        match self.recv_payload().await? {
            Payload::Text(text) => Ok(text),
            Payload::Binary(bytes) => Err(BrowserError::Unexpected(format!(
                "binary frame of {} bytes",
                bytes.len()
            ))),
        }
    }

    /// The next text frame, parsed as JSON.
    pub async fn recv_json(&mut self) -> Result<Value, BrowserError> {
        let text = self.recv().await?;
        serde_json::from_str(&text)
            .map_err(|e| BrowserError::Unexpected(format!("not JSON ({e}): {text}")))
    }

    /// Resolves once the server has closed the connection, failing on timeout or on any
    /// frame other than a close.
    pub async fn closed(&mut self) -> Result<(), BrowserError> {
        match self.recv_payload().await {
            Err(BrowserError::Closed) => Ok(()),
            Err(BrowserError::Socket(_)) => Ok(()),
            Err(other) => Err(other),
            Ok(frame) => Err(BrowserError::Unexpected(format!("{frame:?}"))),
        }
    }

    /// Closes the connection.
    pub async fn close(mut self) -> Result<(), BrowserError> {
        self.socket
            .close(None)
            .await
            .map_err(|e| BrowserError::Socket(Box::new(e)))
    }
}

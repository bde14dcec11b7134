//! Opening one node's WebSocket.

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{HeaderValue, AUTHORIZATION};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::credentials::Credentials;
use crate::error::{ClientError, ClientErrorKind};
use crate::transport::{io_failure, TlsConfig};

/// A node connection.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bytes read from the socket at a time. tungstenite zero-fills this much of its buffer
/// before every read, so its 128 KiB default cost more per event than decoding the event; a
/// queue event is a few hundred bytes, and reads took about one frame each under load anyway
/// (callgrind: 1.2 reads per event). 2 KiB cost 47k instructions per chat event against 50.5k at
/// 4 KiB with no difference in CPU time; 1 KiB saved nothing more and split larger frames into
/// more reads.
const READ_BUFFER: usize = 2 * 1024;

/// Frames are read up to four times `max_frame_bytes`, so that one somewhat over the limit is
/// skipped by the session instead of breaking the connection.
fn socket_config(max_frame_bytes: usize) -> WebSocketConfig {
    let hard_limit = Some(max_frame_bytes.saturating_mul(4));
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_frame_size(hard_limit)
        .max_message_size(hard_limit)
}

/// Opens `url`, sending `credentials` on the upgrade request. The caller retries whatever the
/// error; its kind is [`ClientErrorKind::Auth`] when the engine refused the credentials,
/// [`ClientErrorKind::Config`] for an unusable URL or credentials, and
/// [`ClientErrorKind::Disconnected`] otherwise.
pub(crate) async fn open(
    url: &str,
    credentials: Option<&Credentials>,
    tls: &TlsConfig,
    max_frame_bytes: usize,
) -> Result<Ws, ClientError> {
    let mut request = url.into_client_request().map_err(ClientError::config)?;
    if let Some(credentials) = credentials {
        let value = HeaderValue::from_str(&credentials.authorization())
            .map_err(|_| ClientError::config("credentials are not valid header text"))?;
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    let config = Some(socket_config(max_frame_bytes));
    // Nagle off: requests are small and latency matters more than packet count.
    #[cfg(feature = "tls")]
    let connected = {
        use tokio_tungstenite::Connector;
        let connector = if url.starts_with("wss:") {
            Connector::Rustls(std::sync::Arc::clone(tls))
        } else {
            Connector::Plain
        };
        tokio_tungstenite::connect_async_tls_with_config(request, config, true, Some(connector))
            .await
    };
    #[cfg(not(feature = "tls"))]
    let connected = {
        let _ = tls;
        if url.starts_with("wss:") {
            return Err(ClientError::config(
                "wss needs the `tls` feature of connmix-client",
            ));
        }
        tokio_tungstenite::connect_async_with_config(request, config, true).await
    };
    let (ws, _response) = connected.map_err(|e| {
        use tokio_tungstenite::tungstenite::Error;
        let disconnected = |text: String| ClientError::new(ClientErrorKind::Disconnected, text);
        match e {
            Error::Http(response) => {
                let status = response.status();
                let kind = match status.as_u16() {
                    401 | 403 => ClientErrorKind::Auth,
                    _ => ClientErrorKind::Disconnected,
                };
                ClientError::new(kind, format!("upgrade refused: HTTP {status}"))
            }
            Error::Io(io) => disconnected(io_failure(&io)),
            other => disconnected(other.to_string()),
        }
    })?;
    Ok(ws)
}

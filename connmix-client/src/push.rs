//! The HTTP push API: `mesh.send` and `mesh.publish` without a WebSocket.

use std::time::Duration;

use connmix_protocol::http::{encode_push, publish_path, send_path};
use connmix_protocol::{Call, CallResult, ClientId, Payload, Reply};

use crate::client::{require_success, PublishResult};
use crate::credentials::Credentials;
use crate::endpoint::node_http_base;
use crate::error::{ClientError, ClientErrorKind};
use crate::transport::{check_status, http_client, require_tls, tls_config, with_causes};

/// Pushes to browser connections through one node's HTTP API: for programs that only push,
/// such as web handlers. The engine routes across the mesh, so any node will do.
///
/// Cheap to clone (shares one connection pool).
#[derive(Clone)]
pub struct PushClient {
    http: reqwest::Client,
    base: String,
    api: String,
    credentials: Option<Credentials>,
}

impl std::fmt::Debug for PushClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushClient")
            .field("base", &self.base)
            .field("api", &self.api)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Options of a [`PushClient`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PushClientBuilder {
    node: String,
    api: String,
    tls: bool,
    root_certificates: Vec<Vec<u8>>,
    timeout: Duration,
    credentials: Option<Credentials>,
}

impl PushClientBuilder {
    /// Basic credentials sent with every push.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::new(user, password));
        self
    }

    /// Use `https` (default: off, unless the node address is an `https://` URL).
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Also trust this certificate authority (DER), besides the webpki roots.
    pub fn root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(der.into());
        self
    }

    /// The API version in the path (default `v1`).
    pub fn api(mut self, api: impl Into<String>) -> Self {
        self.api = api.into();
        self
    }

    /// How long one push may take (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the client; fails only on an unusable address or TLS setup.
    pub fn build(self) -> Result<PushClient, ClientError> {
        let node = self.node.trim();
        let tls = self.tls || node.starts_with("https://");
        if node.is_empty() {
            return Err(ClientError::config("push: empty node address"));
        }
        require_tls(tls)?;
        let tls_config = tls_config(&self.root_certificates)?;
        Ok(PushClient {
            http: http_client(&tls_config, self.timeout)?,
            base: node_http_base(node, tls),
            api: self.api,
            credentials: self.credentials,
        })
    }
}

impl PushClient {
    /// Starts building a push client for a node's API server (`host:port` or URL).
    pub fn builder(node_api: impl Into<String>) -> PushClientBuilder {
        PushClientBuilder {
            node: node_api.into(),
            api: "v1".to_owned(),
            tls: false,
            root_certificates: Vec::new(),
            timeout: Duration::from_secs(10),
            credentials: None,
        }
    }

    /// `POST /v1/mesh/send`: a frame to one connection, as given (see
    /// [`publish`](Self::publish) on what a page can show).
    pub async fn send(
        &self,
        client: ClientId,
        data: impl Into<Payload>,
    ) -> Result<(), ClientError> {
        let call = Call::MeshSend {
            client,
            data: data.into(),
        };
        let result = self.push(&send_path(&self.api), &call).await?;
        require_success(&result)
    }

    /// `POST /v1/mesh/publish`: a frame to every subscriber of a channel.
    ///
    /// The engine sends `data` to each subscriber as one WebSocket frame, as given (text or
    /// binary): nothing is wrapped around it. Whether a browser can show it is up to its page;
    /// the tutorial's chat page shows only chat deliveries (publish
    /// `ChatReply::Delivery(..).to_json()` of [`connmix_protocol::chat`]) and reports any other
    /// frame as unreadable.
    pub async fn publish(
        &self,
        channel: &str,
        data: impl Into<Payload>,
    ) -> Result<PublishResult, ClientError> {
        let call = Call::MeshPublish {
            channel: channel.to_owned(),
            data: data.into(),
        };
        let result = self.push(&publish_path(&self.api), &call).await?;
        Ok(PublishResult::from_result(&result))
    }

    async fn push(&self, path: &str, call: &Call) -> Result<CallResult, ClientError> {
        let body = encode_push(call)
            .ok_or_else(|| ClientError::new(ClientErrorKind::InvalidInput, "not a push call"))?;
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(credentials) = &self.credentials {
            request = request.header(reqwest::header::AUTHORIZATION, credentials.authorization());
        }
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                ClientErrorKind::Timeout
            } else {
                ClientErrorKind::Http
            };
            ClientError::new(kind, format!("POST {path}: {}", with_causes(&e)))
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            ClientError::new(
                ClientErrorKind::Http,
                format!("POST {path}: {}", with_causes(&e)),
            )
        })?;
        // An engine error may come with an error status; its code says more than the status.
        match Reply::decode(&text) {
            Ok(reply) if status.is_success() || reply.outcome.is_err() => Ok(reply.outcome?),
            Ok(_) => {
                check_status(status, &format!("POST {path}"), ClientErrorKind::Http)?;
                Err(ClientError::protocol(format!("POST {path}: HTTP {status}")))
            }
            Err(e) => {
                check_status(status, &format!("POST {path}"), ClientErrorKind::Http)?;
                Err(ClientError::protocol(format!(
                    "POST {path}: bad reply: {e}"
                )))
            }
        }
    }
}

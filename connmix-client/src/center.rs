//! Reading the center: the API version and the node list.

use connmix_protocol::center::{nodes_path, VERSION_PATH};
use connmix_protocol::{NodeInfo, NodeList, SkippedNode, VersionInfo};
use serde::de::DeserializeOwned;

use crate::credentials::Credentials;
use crate::endpoint::CenterUrl;
use crate::error::{ClientError, ClientErrorKind};
use crate::transport::{check_status, request_failure, with_causes};

/// What one read of the center found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Discovery {
    /// The API version to use (the first the center lists).
    pub(crate) api: String,
    /// Every usable engine node.
    pub(crate) nodes: Vec<NodeInfo>,
    /// Entries of the list that were not a usable node.
    pub(crate) skipped: Vec<SkippedNode>,
}

/// The center's HTTP API.
#[derive(Debug, Clone)]
pub(crate) struct Center {
    http: reqwest::Client,
    url: CenterUrl,
    credentials: Option<Credentials>,
    /// The HTTP client's per-request timeout, named when it passes.
    timeout: std::time::Duration,
}

impl Center {
    pub(crate) fn new(
        http: reqwest::Client,
        url: CenterUrl,
        credentials: Option<Credentials>,
        timeout: std::time::Duration,
    ) -> Self {
        Self {
            http,
            url,
            credentials,
            timeout,
        }
    }

    /// Reads `/version`, then the node list of the first API version.
    pub(crate) async fn discover(&self) -> Result<Discovery, ClientError> {
        let version: VersionInfo = self.get(VERSION_PATH).await?;
        let api = version
            .apis
            .into_iter()
            .next()
            .ok_or_else(|| discovery_error("GET /version listed no API version"))?;
        let path = nodes_path(&api);
        let body = self.get_body(&path).await?;
        let text = String::from_utf8_lossy(&body);
        let (list, skipped) = NodeList::decode(&text)
            .map_err(|e| discovery_error(format!("GET {path}: unusable answer: {e}")))?;
        Ok(Discovery {
            api,
            nodes: list.nodes,
            skipped,
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self.get_body(path).await?;
        serde_json::from_slice(&body)
            .map_err(|e| discovery_error(format!("GET {path}: unusable answer: {e}")))
    }

    async fn get_body(&self, path: &str) -> Result<bytes::Bytes, ClientError> {
        let mut request = self.http.get(self.url.url(path));
        if let Some(credentials) = &self.credentials {
            request = request.header(reqwest::header::AUTHORIZATION, credentials.authorization());
        }
        let response = request.send().await.map_err(|e| {
            discovery_error(format!("GET {path}: {}", request_failure(&e, self.timeout)))
        })?;
        check_status(
            response.status(),
            &format!("GET {path}"),
            ClientErrorKind::Discovery,
        )?;
        response
            .bytes()
            .await
            .map_err(|e| discovery_error(format!("GET {path}: {}", with_causes(&e))))
    }
}

fn discovery_error(message: impl Into<String>) -> ClientError {
    ClientError::new(ClientErrorKind::Discovery, message)
}

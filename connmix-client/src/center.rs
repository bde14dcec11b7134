//! Reading the center: the API version and the node list.

use connmix_protocol::center::{nodes_path, VERSION_PATH};
use connmix_protocol::{NodeInfo, NodeList, VersionInfo};
use serde::de::DeserializeOwned;

use crate::credentials::Credentials;
use crate::endpoint::CenterUrl;
use crate::error::{ClientError, ClientErrorKind};
use crate::transport::check_status;

/// What one read of the center found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Discovery {
    /// The API version to use (the first the center lists).
    pub(crate) api: String,
    /// Every engine node.
    pub(crate) nodes: Vec<NodeInfo>,
}

/// The center's HTTP API.
#[derive(Debug, Clone)]
pub(crate) struct Center {
    http: reqwest::Client,
    url: CenterUrl,
    credentials: Option<Credentials>,
}

impl Center {
    pub(crate) fn new(
        http: reqwest::Client,
        url: CenterUrl,
        credentials: Option<Credentials>,
    ) -> Self {
        Self {
            http,
            url,
            credentials,
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
        let list: NodeList = self.get(&nodes_path(&api)).await?;
        Ok(Discovery {
            api,
            nodes: list.nodes,
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let mut request = self.http.get(self.url.url(path));
        if let Some(credentials) = &self.credentials {
            request = request.header(reqwest::header::AUTHORIZATION, credentials.authorization());
        }
        let response = request
            .send()
            .await
            .map_err(|e| discovery_error(format!("GET {path}: {e}")))?;
        check_status(
            response.status(),
            &format!("GET {path}"),
            ClientErrorKind::Discovery,
        )?;
        let body = response
            .bytes()
            .await
            .map_err(|e| discovery_error(format!("GET {path}: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| discovery_error(format!("GET {path}: unusable answer: {e}")))
    }
}

fn discovery_error(message: impl Into<String>) -> ClientError {
    ClientError::new(ClientErrorKind::Discovery, message)
}

//! Addresses: the center's base URL and each node's WebSocket and HTTP URLs.

use crate::error::ClientError;

/// The port of the center's HTTP API when an address names none: the engine's default.
pub const DEFAULT_CENTER_PORT: u16 = 6787;

/// The center's base URL (`http://host:port`, no trailing slash), parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CenterUrl {
    base: String,
    tls: bool,
}

impl CenterUrl {
    /// Parses `host[:port]` or an `http(s)://` URL. Without a scheme, `tls` picks `https`.
    ///
    /// A bare host means the engine's port, [`DEFAULT_CENTER_PORT`], not HTTP's 80: `localhost`
    /// is `localhost:6787`. A URL keeps the meaning URLs have (`http://c.example` is port 80),
    /// for a center behind a proxy.
    pub(crate) fn parse(input: &str, tls: bool) -> Result<Self, ClientError> {
        let input = input.trim();
        let (tls, rest, bare) = match split_scheme(input) {
            Some(("http", rest)) => (tls, rest, false),
            Some(("https", rest)) => (true, rest, false),
            Some((other, _)) => {
                return Err(ClientError::config(format!(
                    "center `{input}`: scheme `{other}` is not http or https"
                )))
            }
            None => (tls, input, true),
        };
        let rest = rest.trim_end_matches('/');
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains(char::is_whitespace) {
            return Err(ClientError::config(format!(
                "center `{input}`: expected host[:port] or an http(s) URL"
            )));
        }
        let scheme = if tls { "https" } else { "http" };
        let base = if bare && !has_port(authority) {
            let path = &rest[authority.len()..];
            format!("{scheme}://{authority}:{DEFAULT_CENTER_PORT}{path}")
        } else {
            format!("{scheme}://{rest}")
        };
        Ok(Self { base, tls })
    }

    /// Whether the cluster is reached over TLS.
    pub(crate) fn tls(&self) -> bool {
        self.tls
    }

    /// The URL of a path on the center (`path` starts with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Whether `authority` (`host`, `host:port`, `[v6]` or `[v6]:port`) names a port.
fn has_port(authority: &str) -> bool {
    match authority.rsplit_once(']') {
        Some((_, after)) => after.starts_with(':'),
        None => authority.contains(':'),
    }
}

fn split_scheme(input: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = input.split_once("://")?;
    Some((scheme, rest))
}

/// The `host:port` of a node's API server, whatever prefix the center put on it.
fn authority(api_server: &str) -> &str {
    let rest = split_scheme(api_server).map_or(api_server, |(_, rest)| rest);
    rest.trim_end_matches('/')
}

/// `ws(s)://<api_server>/ws/<api>`: where a consumer talks to a node.
pub(crate) fn node_ws_url(api_server: &str, api: &str, tls: bool) -> String {
    let scheme = if tls { "wss" } else { "ws" };
    format!(
        "{scheme}://{}{}",
        authority(api_server),
        connmix_protocol::center::websocket_path(api)
    )
}

/// `http(s)://<api_server>`: the base of a node's HTTP push API.
#[cfg(feature = "http-push")]
pub(crate) fn node_http_base(api_server: &str, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}", authority(api_server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientErrorKind;

    #[test]
    fn host_port_becomes_http_unless_tls_is_asked() {
        let plain = CenterUrl::parse("127.0.0.1:6787", false).unwrap();
        assert_eq!(plain.url("/version"), "http://127.0.0.1:6787/version");
        assert!(!plain.tls());
        let tls = CenterUrl::parse("center.example:6787", true).unwrap();
        assert_eq!(tls.url("/v1/nodes"), "https://center.example:6787/v1/nodes");
    }

    #[test]
    fn a_host_without_a_port_means_the_engine_port_not_80() {
        let bare = CenterUrl::parse("localhost", false).unwrap();
        assert_eq!(bare.url("/version"), "http://localhost:6787/version");
        let v6 = CenterUrl::parse("[::1]", true).unwrap();
        assert_eq!(v6.url("/version"), "https://[::1]:6787/version");
        let v6_port = CenterUrl::parse("[::1]:7000", false).unwrap();
        assert_eq!(v6_port.url("/version"), "http://[::1]:7000/version");
        let with_path = CenterUrl::parse("center.example/api/", false).unwrap();
        assert_eq!(
            with_path.url("/version"),
            "http://center.example:6787/api/version"
        );
        // A URL means what URLs mean: port 80 (or 443) unless it names one.
        let url = CenterUrl::parse("http://localhost", false).unwrap();
        assert_eq!(url.url("/version"), "http://localhost/version");
    }

    #[test]
    fn explicit_scheme_and_trailing_slash_are_honoured() {
        let https = CenterUrl::parse("https://c.example:443/", false).unwrap();
        assert!(https.tls());
        assert_eq!(https.url("/version"), "https://c.example:443/version");
        let prefixed = CenterUrl::parse("http://c.example/api/", false).unwrap();
        assert_eq!(prefixed.url("/version"), "http://c.example/api/version");
    }

    #[test]
    fn bad_centers_are_config_errors() {
        for bad in ["", "ftp://x:1", "http://", "  ", "a b:1"] {
            let err = CenterUrl::parse(bad, false).unwrap_err();
            assert_eq!(err.kind(), ClientErrorKind::Config, "{bad:?}");
        }
    }

    #[test]
    fn node_urls_use_the_api_version_and_tls() {
        assert_eq!(
            node_ws_url("127.0.0.1:6789", "v1", false),
            "ws://127.0.0.1:6789/ws/v1"
        );
        assert_eq!(
            node_ws_url("http://10.0.0.2:6789/", "v2", true),
            "wss://10.0.0.2:6789/ws/v2"
        );
        #[cfg(feature = "http-push")]
        assert_eq!(
            node_http_base("10.0.0.2:6789", true),
            "https://10.0.0.2:6789"
        );
    }
}

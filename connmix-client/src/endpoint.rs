//! Addresses: the center's base URL and each node's WebSocket and HTTP URLs.

use crate::error::ClientError;

/// The center's base URL (`http://host:port`, no trailing slash), parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CenterUrl {
    base: String,
    tls: bool,
}

impl CenterUrl {
    /// Parses `host:port` or an `http(s)://` URL. Without a scheme, `tls` picks `https`.
    pub(crate) fn parse(input: &str, tls: bool) -> Result<Self, ClientError> {
        let input = input.trim();
        let (tls, rest) = match split_scheme(input) {
            Some(("http", rest)) => (tls, rest),
            Some(("https", rest)) => (true, rest),
            Some((other, _)) => {
                return Err(ClientError::config(format!(
                    "center `{input}`: scheme `{other}` is not http or https"
                )))
            }
            None => (tls, input),
        };
        let rest = rest.trim_end_matches('/');
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains(char::is_whitespace) {
            return Err(ClientError::config(format!(
                "center `{input}`: expected host:port or an http(s) URL"
            )));
        }
        let scheme = if tls { "https" } else { "http" };
        Ok(Self {
            base: format!("{scheme}://{rest}"),
            tls,
        })
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

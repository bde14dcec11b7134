//! What an operator reads when the engine cannot be reached at start: the cause the engine
//! client saw, and what to do about it.

use connmix_client::{ClientBuilder, ClientError, ClientErrorKind};

use crate::error::{Error, ErrorKind};

/// The center as messages name it: `host:port` with the default port filled in (`localhost`
/// is `localhost:6787`), the scheme only when it is not plain `http`.
pub(crate) fn center_shown(engine: &ClientBuilder) -> String {
    match engine.center_url() {
        Ok(url) => match url.strip_prefix("http://") {
            Some(plain) => plain.to_owned(),
            None => url,
        },
        Err(_) => engine.center().to_owned(),
    }
}

/// `cannot reach the engine at <center>: <cause> (<next step>)`.
pub(crate) fn engine_unreachable(center: &str, error: &ClientError) -> Error {
    let cause = error.to_string();
    let hint = hint(error.kind(), &cause);
    let message = match hint {
        Some(hint) => format!("cannot reach the engine at {center}: {cause} ({hint})"),
        None => format!("cannot reach the engine at {center}: {cause}"),
    };
    Error::new(ErrorKind::Engine, message)
}

/// What to try next for a cause, when there is something to say.
fn hint(kind: ClientErrorKind, cause: &str) -> Option<&'static str> {
    if kind == ClientErrorKind::Auth {
        return Some(
            "the engine wants other credentials: set --api-user and --api-password, or \
             CONNMIX_API_USER and CONNMIX_API_PASSWORD",
        );
    }
    if kind == ClientErrorKind::Config {
        return Some("check --host or CONNMIX_HOST");
    }
    if cause.contains("connection refused") {
        Some("is it running? `chat-consumer dev` or `connmix-mock` start one locally")
    } else if cause.contains("cannot resolve the host name") {
        Some("check the host name in --host or CONNMIX_HOST")
    } else if cause.contains("no answer within") {
        Some("is a firewall dropping the packets, or is the address wrong?")
    } else if cause.contains("the center lists no node") {
        Some("start the engine's nodes, or check their registration with the center")
    } else if cause.contains("HTTP ") {
        Some("is --host the engine center's HTTP API, port 6787 by default?")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connmix_client::Client;

    #[test]
    fn a_bare_host_is_shown_with_the_engine_port() {
        assert_eq!(
            center_shown(&Client::builder("localhost")),
            "localhost:6787"
        );
        assert_eq!(
            center_shown(&Client::builder("10.0.0.1:7000")),
            "10.0.0.1:7000"
        );
        assert_eq!(
            center_shown(&Client::builder("https://c.example")),
            "https://c.example"
        );
    }

    #[test]
    fn each_cause_gets_its_next_step() {
        let cases = [
            ("GET /version: connection refused", "is it running?"),
            (
                "GET /version: cannot resolve the host name (failed to lookup address)",
                "check the host name",
            ),
            ("GET /version: no answer within 10s", "firewall"),
            ("GET /version: HTTP 404 Not Found", "port 6787"),
            (
                "no engine node connected within 1s; the center lists no node",
                "start the engine's nodes",
            ),
        ];
        for (cause, expected) in cases {
            let hint = hint(ClientErrorKind::Discovery, cause).unwrap_or_default();
            assert!(hint.contains(expected), "{cause}: {hint}");
        }
        let auth = hint(ClientErrorKind::Auth, "GET /version: HTTP 401 Unauthorized");
        assert!(auth.unwrap_or_default().contains("CONNMIX_API_USER"));
        assert_eq!(hint(ClientErrorKind::Protocol, "odd"), None);
    }
}

//! HTTP basic credentials, checked on every listener of the API and the center.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Credentials;

/// True when no credentials are configured or the request carries the right ones.
pub(crate) fn allowed(expected: Option<&Credentials>, headers: &HeaderMap) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    Credentials::from_authorization(value).as_ref() == Some(expected)
}

/// Middleware refusing requests without the configured credentials with 401.
pub(crate) async fn require(
    State(expected): State<Arc<Option<Credentials>>>,
    request: Request,
    next: Next,
) -> Response {
    if allowed(expected.as_ref().as_ref(), request.headers()) {
        return next.run(request).await;
    }
    tracing::debug!(path = %request.uri().path(), "refused: missing or wrong credentials");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"connmix\"")],
        "unauthorized",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine as _;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_matching_basic_credentials_pass() {
        let creds = Credentials::new("admin", "pw:with:colons");
        let good = format!("Basic {}", BASE64.encode("admin:pw:with:colons"));
        let bad = format!("Basic {}", BASE64.encode("admin:nope"));
        assert!(allowed(Some(&creds), &with_auth(&good)));
        assert!(!allowed(Some(&creds), &with_auth(&bad)));
        assert!(!allowed(Some(&creds), &HeaderMap::new()));
        assert!(allowed(None, &HeaderMap::new()));
    }
}

//! TLS configuration and the HTTP client shared by center reads and pushes.

#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ClientError, ClientErrorKind};

/// The TLS client configuration every connection of a client shares.
#[cfg(feature = "tls")]
pub(crate) type TlsConfig = Arc<rustls::ClientConfig>;

/// Without the `tls` feature there is nothing to configure: `https` and `wss` are refused.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub(crate) struct TlsConfig;

/// Refuses TLS when the crate was built without its `tls` feature, at setup rather than at
/// every connect attempt.
pub(crate) fn require_tls(tls: bool) -> Result<(), ClientError> {
    if tls && !cfg!(feature = "tls") {
        return Err(ClientError::config(
            "TLS (https, wss) needs the `tls` feature of connmix-client",
        ));
    }
    Ok(())
}

/// Without TLS support, extra root certificates cannot be used.
#[cfg(not(feature = "tls"))]
pub(crate) fn tls_config(extra_roots: &[Vec<u8>]) -> Result<TlsConfig, ClientError> {
    if !extra_roots.is_empty() {
        return Err(ClientError::config(
            "root certificates need the `tls` feature of connmix-client",
        ));
    }
    Ok(TlsConfig)
}

/// A rustls client configuration with the `ring` provider, the webpki root certificates and
/// `extra_roots` (DER), for clusters behind a private certificate authority.
///
/// Built explicitly rather than through a process-wide default provider, so that linking this
/// crate never depends on what else the application installed.
#[cfg(feature = "tls")]
pub(crate) fn tls_config(extra_roots: &[Vec<u8>]) -> Result<TlsConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| ClientError::config(format!("root certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An HTTP client using `tls`, with a per-request timeout.
pub(crate) fn http_client(
    tls: &TlsConfig,
    timeout: Duration,
) -> Result<reqwest::Client, ClientError> {
    let builder = reqwest::Client::builder();
    #[cfg(feature = "tls")]
    let builder = builder.tls_backend_preconfigured(rustls::ClientConfig::clone(tls));
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    builder
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| ClientError::config(format!("HTTP client setup: {e}")))
}

/// Maps an HTTP status that is not success to an error of `kind` (or `Auth` for 401/403).
pub(crate) fn check_status(
    status: reqwest::StatusCode,
    what: &str,
    kind: ClientErrorKind,
) -> Result<(), ClientError> {
    if status.is_success() {
        return Ok(());
    }
    let kind = match status.as_u16() {
        401 | 403 => ClientErrorKind::Auth,
        _ => kind,
    };
    Err(ClientError::new(kind, format!("{what}: HTTP {status}")))
}

/// Why a request to the center failed, in a few words where the cause is a common one
/// (`connection refused`, `cannot resolve the host name (...)`, `no answer within ...`), the
/// whole chain of causes otherwise.
pub(crate) fn request_failure(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return format!("no answer within {timeout:?}");
    }
    let chain = with_causes(err);
    // hyper's connector says "dns error" before the resolver's own text.
    if chain.contains("dns error") {
        let resolver = io_cause(err).map_or(chain.clone(), ToString::to_string);
        return format!("cannot resolve the host name ({resolver})");
    }
    match io_cause(err) {
        Some(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => io_failure(io),
        _ => chain,
    }
}

/// An I/O error as a short phrase: `connection refused` rather than `Connection refused (os
/// error 111)`.
pub(crate) fn io_failure(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        _ => err.to_string(),
    }
}

/// The deepest I/O error among `err`'s causes.
fn io_cause<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut found = None;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            found = Some(io);
        }
        cause = current.source();
    }
    found
}

/// An error with its causes, `outer: inner: root`: reqwest's own text says only "error sending
/// request for url", the cause says "connection refused".
pub(crate) fn with_causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their cause in their own text.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_credentials_are_auth_errors() {
        let err = check_status(
            reqwest::StatusCode::UNAUTHORIZED,
            "GET /version",
            ClientErrorKind::Discovery,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ClientErrorKind::Auth);
        let err = check_status(
            reqwest::StatusCode::BAD_GATEWAY,
            "GET /version",
            ClientErrorKind::Discovery,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ClientErrorKind::Discovery);
        assert!(check_status(reqwest::StatusCode::OK, "x", ClientErrorKind::Http).is_ok());
    }

    #[test]
    fn tls_is_refused_only_without_the_tls_feature() {
        assert!(require_tls(false).is_ok());
        assert_eq!(require_tls(true).is_ok(), cfg!(feature = "tls"));
    }

    #[test]
    fn a_root_certificate_that_is_not_der_is_a_config_error() {
        let err = tls_config(&[b"not a certificate".to_vec()]).unwrap_err();
        assert_eq!(err.kind(), ClientErrorKind::Config);
    }

    #[test]
    fn tls_and_http_clients_build_without_a_global_provider() {
        let tls = tls_config(&[]).unwrap();
        http_client(&tls, Duration::from_secs(1)).unwrap();
    }
}

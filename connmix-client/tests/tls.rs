//! TLS: `https` to the center and pushes, `wss` to the nodes, trusting a private CA.
#![cfg(all(feature = "tls", feature = "http-push"))]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::*;
use connmix_client::protocol::{CallResult, Reply, Request};
use connmix_client::{ClientErrorKind, Dialect, PushClient};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Accepts TCP connections and completes the TLS handshake before handing them to axum.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client refusing our certificate fails here; wait for the next one.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// A center and node on one TLS port, named `localhost`; answers every request with success.
/// Returns the `host:port` and the DER of its self-signed certificate.
async fn tls_engine() -> (String, Vec<u8>) {
    init_tracing();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = certified.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone().into()], key)
        .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = format!("localhost:{}", tcp.local_addr().unwrap().port());
    let app = Router::new()
        .route("/version", get(|| async { Json(json!({ "apis": ["v1"] })) }))
        .route(
            "/v1/nodes",
            get({
                let host = host.clone();
                move || async move { Json(json!({ "nodes": [{ "id": "n1", "api_server": host }] })) }
            }),
        )
        .route(
            "/v1/mesh/publish",
            post(|| async { Reply::ok(None, CallResult::counts(3, 0)).encode(Dialect::Current) }),
        )
        .route(
            "/ws/v1",
            get(|upgrade: WebSocketUpgrade| async move {
                upgrade.on_upgrade(|mut socket| async move {
                    while let Some(Ok(message)) = socket.recv().await {
                        if let Message::Text(text) = message {
                            let request = Request::decode(text.as_str()).unwrap();
                            let reply = Reply::ok(request.id, CallResult::counts(3, 0));
                            let text = reply.encode(Dialect::Current);
                            if socket.send(Message::Text(text.into())).await.is_err() {
                                break;
                            }
                        }
                    }
                })
            }),
        );
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (host, cert_der)
}

#[tokio::test]
async fn wss_and_https_work_with_a_trusted_private_certificate() {
    let (host, cert) = tls_engine().await;
    let client = fast(host.clone())
        .tls(true)
        .root_certificate(cert.clone())
        .connect()
        .await
        .unwrap();
    all_connected(&client, 1).await;
    assert_eq!(client.publish("room", "x").await.unwrap().delivered, 3);
    client.shutdown(WAIT).await;

    let push = PushClient::builder(format!("https://{host}"))
        .root_certificate(cert)
        .build()
        .unwrap();
    assert_eq!(push.publish("room", "x").await.unwrap().delivered, 3);
}

#[tokio::test]
async fn an_untrusted_certificate_is_never_accepted() {
    let (host, _cert) = tls_engine().await;
    let client = fast(format!("https://{host}")).connect().await.unwrap();
    assert!(client.nodes().is_empty());
    let err = client.resync().await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Discovery);
    client.shutdown(WAIT).await;

    let push = PushClient::builder(host).tls(true).build().unwrap();
    let err = push.publish("room", "x").await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Http);
}

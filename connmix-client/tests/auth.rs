//! Basic credentials on the center, the node WebSockets and the HTTP push API.
#![cfg(feature = "http-push")]

mod common;

use common::*;
use connmix_client::{ClientErrorKind, PushClient};
use connmix_mock::{Credentials, MockConfig, MockEngine};

async fn guarded_engine() -> MockEngine {
    init_tracing();
    MockEngine::start(MockConfig {
        credentials: Some(Credentials::new("consumer", "right-password")),
        ..MockConfig::ephemeral()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn right_credentials_are_accepted_everywhere() {
    let engine = guarded_engine().await;
    let client = fast(engine.center_host())
        .credentials("consumer", "right-password")
        .connect()
        .await
        .unwrap();
    all_connected(&client, 1).await;
    let _stream = client.consume(&["chat"]).await.unwrap();
    within("a consumer", engine.wait_for_consumers("chat", 1)).await;
    let push = PushClient::builder(engine.node(0).unwrap().api_addr.to_string())
        .credentials("consumer", "right-password")
        .build()
        .unwrap();
    assert_eq!(push.publish("room", "x").await.unwrap().delivered, 0);
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_refused_with_auth() {
    let engine = guarded_engine().await;
    let err = fast(engine.center_host())
        .credentials("consumer", "wrong")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Auth);
    assert!(
        !err.to_string().contains("wrong"),
        "the password leaked: {err}"
    );
    let err = fast(engine.center_host()).connect().await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Auth);

    let push = PushClient::builder(engine.node(0).unwrap().api_addr.to_string())
        .build()
        .unwrap();
    let err = push.send(1.into(), "x").await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Auth);
}

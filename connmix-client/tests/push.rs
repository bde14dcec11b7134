//! The HTTP push API client.
#![cfg(feature = "http-push")]

mod common;

use common::*;
use connmix_client::{ClientErrorKind, ConnRef, ErrorCode, Payload, PushClient};

#[tokio::test]
async fn http_send_and_publish_reach_connections_on_other_nodes() {
    let engine = engine(2).await;
    let target = engine.node(1).unwrap().id;
    let producer = engine.producer(&target).unwrap();
    let browser = producer.register_client(None);
    let mut inbox = producer.receiver(browser).unwrap();
    let client = fast(engine.center_host()).connect().await.unwrap();
    client
        .subscribe(
            &ConnRef {
                node: target,
                client: browser,
            },
            &["room"],
        )
        .await
        .unwrap();

    // Push through the other node: the mesh routes it.
    let push = PushClient::builder(format!("http://{}", engine.node(0).unwrap().api_addr))
        .build()
        .unwrap();
    push.send(browser, "direct").await.unwrap();
    assert_eq!(
        within("send", inbox.recv()).await,
        Some(Payload::Text("direct".into()))
    );
    let sent = push.publish("room", vec![0u8, 255]).await.unwrap();
    assert_eq!((sent.delivered, sent.failed), (1, 0));
    assert_eq!(
        within("publish", inbox.recv()).await,
        Some(Payload::Binary(vec![0, 255]))
    );
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn http_push_errors_keep_the_engine_code() {
    let engine = engine(1).await;
    let push = PushClient::builder(engine.node(0).unwrap().api_addr.to_string())
        .build()
        .unwrap();
    let err = push.send(123_456.into(), "x").await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Engine(ErrorCode::SendFailed));
}

#[tokio::test]
async fn http_push_to_nothing_listening_is_an_http_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let push = PushClient::builder(format!("127.0.0.1:{port}"))
        .build()
        .unwrap();
    let err = push.publish("room", "x").await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Http);
}

//! Every node API call: results, engine error kinds, and matching under concurrency.

mod common;

use common::*;
use connmix_client::protocol::script::ScriptEvent;
use connmix_client::{Call, ClientErrorKind, ConnRef, ErrorCode, Payload};
use connmix_mock::browser::Browser;
use futures_util::future::join_all;
use serde_json::{json, Map};

#[tokio::test]
async fn set_context_value_releases_the_script_and_tags_later_frames() {
    let engine = engine(1).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    let mut stream = client.consume(&["chat"]).await.unwrap();
    within("a consumer", engine.wait_for_consumers("chat", 1)).await;
    let mut browser = Browser::connect(engine.node(0).unwrap().chat_addr)
        .await
        .unwrap();
    browser
        .send(r#"{"op":"auth","args":["u","p"]}"#)
        .await
        .unwrap();
    let auth = loop {
        let event = next_event(&mut stream).await;
        if let Ok(ScriptEvent::Message { frame, .. }) = ScriptEvent::decode(event.data.get()) {
            if frame.data.contains("auth") {
                break event;
            }
        }
    };
    client
        .set_context_value(&auth.conn(), "uid", 42)
        .await
        .unwrap();
    browser.send(r#"{"op":"ping"}"#).await.unwrap();
    let next = loop {
        let event = next_event(&mut stream).await;
        if let Ok(ScriptEvent::Message { uid, .. }) = ScriptEvent::decode(event.data.get()) {
            break uid;
        }
    };
    assert_eq!(next, Some(42));
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn subscribe_publish_send_and_unsubscribe_reach_the_connection() {
    let engine = engine(2).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    all_connected(&client, 2).await;
    let node = engine.node(1).unwrap().id;
    let producer = engine.producer(&node).unwrap();
    let browser = producer.register_client(Some(7));
    let mut inbox = producer.receiver(browser).unwrap();
    let conn = ConnRef {
        node: node.clone(),
        client: browser,
    };

    client
        .subscribe(&conn, &["room_101", "broadcast"])
        .await
        .unwrap();
    let sent = client.publish("room_101", "hello").await.unwrap();
    assert_eq!((sent.delivered, sent.failed), (1, 0));
    assert_eq!(
        within("publish", inbox.recv()).await,
        Some(Payload::Text("hello".into()))
    );

    client.send(browser, vec![1u8, 2, 3]).await.unwrap();
    assert_eq!(
        within("send", inbox.recv()).await,
        Some(Payload::Binary(vec![1, 2, 3]))
    );

    client.unsubscribe(&conn, &["room_101"]).await.unwrap();
    let sent = client.publish("room_101", "again").await.unwrap();
    assert_eq!(sent.delivered, 0);

    let mut context = Map::new();
    context.insert("uid".into(), json!(8));
    client.set_context(&conn, context).await.unwrap();
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn engine_errors_arrive_as_their_kinds_with_the_engine_message() {
    let engine = engine(1).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    all_connected(&client, 1).await;
    let node = engine.node(0).unwrap().id;

    let nobody = ConnRef {
        node: node.clone(),
        client: 999_999.into(),
    };
    let err = client.subscribe(&nobody, &["room"]).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ClientErrorKind::Engine(ErrorCode::ConnCallFailed)
    );
    assert!(!err.engine_error().unwrap().message.is_empty());

    let err = client.send(999_999.into(), "x").await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Engine(ErrorCode::SendFailed));

    let unknown = Call::Other {
        method: "no.such".into(),
        params: json!({}),
    };
    let err = client.call(Some(&node), unknown).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ClientErrorKind::Engine(ErrorCode::InvalidArgument)
    );
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn raw_calls_return_the_engine_result() {
    let engine = engine(1).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    all_connected(&client, 1).await;
    let call = Call::MeshPublish {
        channel: "empty".into(),
        data: "x".into(),
    };
    let result = client.call(None, call).await.unwrap();
    assert_eq!(result.delivered(), Some(0));
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn many_concurrent_calls_each_get_their_own_reply() {
    let engine = engine(2).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    all_connected(&client, 2).await;
    // Channel `room_k` has k subscribers, so each publish's count names the request it answers.
    let node = engine.node(1).unwrap().id;
    let producer = engine.producer(&node).unwrap();
    for k in 1..=10u64 {
        for _ in 0..k {
            let browser = producer.register_client(None);
            let conn = ConnRef {
                node: node.clone(),
                client: browser,
            };
            client
                .subscribe(&conn, &[format!("room_{k}")])
                .await
                .unwrap();
        }
    }
    let calls = (0..500u64).map(|i| {
        let client = client.clone();
        async move {
            let k = i % 11;
            let sent = client.publish(&format!("room_{k}"), "x").await.unwrap();
            (k, sent.delivered)
        }
    });
    for (k, delivered) in join_all(calls).await {
        assert_eq!(delivered, k);
    }
    client.shutdown(WAIT).await;
}

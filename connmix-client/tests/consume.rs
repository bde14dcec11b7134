//! Queue consumption: every node, one stream, backpressure, unpop.

mod common;

use std::collections::HashSet;

use common::*;
use connmix_client::{ClientErrorKind, Dialect, ErrorCode};
use connmix_mock::{MockConfig, MockEngine};
use futures_util::stream::FusedStream;
use futures_util::StreamExt;
use serde_json::json;

#[tokio::test]
async fn one_stream_yields_messages_from_every_node_with_their_origin() {
    let engine = engine(2).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    let mut stream = client.consume(&["chat"]).await.unwrap();
    within("two consumers", engine.wait_for_consumers("chat", 2)).await;

    let mut expected = HashSet::new();
    for node in engine.nodes() {
        let producer = engine.producer(&node.id).unwrap();
        let browser = producer.register_client(None);
        producer
            .push("chat", browser, json!({ "from": node.id.to_string() }))
            .unwrap();
        expected.insert((node.id.clone(), browser));
    }
    let mut seen = HashSet::new();
    for _ in 0..2 {
        let event = next_event(&mut stream).await;
        assert_eq!(event.topic, "chat");
        assert_eq!(event.data.to_value()["from"], json!(event.node.to_string()));
        seen.insert((event.node.clone(), event.client));
        assert_eq!(event.conn().client, event.client);
    }
    assert_eq!(seen, expected);
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn consuming_a_topic_twice_reports_already_consumed() {
    let engine = engine(1).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    let _stream = client.consume(&["chat"]).await.unwrap();
    let err = client.consume(&["chat"]).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ClientErrorKind::Engine(ErrorCode::AlreadyConsumed)
    );
    assert_eq!(err.engine_error().unwrap().code.as_i64(), 202);
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn consume_without_topics_is_refused_locally() {
    let engine = engine(1).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    let none: [&str; 0] = [];
    let err = client.consume(&none).await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::InvalidInput);
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn unpop_ends_the_stream_and_stops_consumption() {
    let engine = engine(1).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    let mut stream = client.consume(&["chat"]).await.unwrap();
    within("a consumer", engine.wait_for_consumers("chat", 1)).await;
    client.unpop().await.unwrap();
    assert!(within("stream end", stream.next()).await.is_none());
    // A fused stream: a select! loop can tell it has ended.
    assert!(stream.is_terminated());
    // The topic is free again: consuming it anew is no error.
    let _again = client.consume(&["chat"]).await.unwrap();
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn a_slow_application_loses_nothing_and_calls_still_complete() {
    let Consuming {
        engine,
        client,
        mut stream,
        node,
    } = consuming_with(engine(1).await, |client| client.event_buffer(4)).await;
    let producer = engine.producer(&node).unwrap();
    let browser = producer.register_client(None);
    const N: u64 = 300;
    for i in 0..N {
        producer.push("chat", browser, json!(i)).unwrap();
    }
    // Take the messages one by one, making a call for each while the rest wait.
    for i in 0..N {
        let event = next_event(&mut stream).await;
        assert_eq!(event.data, json!(i), "messages arrive in order");
        if i % 50 == 0 {
            client.publish("nobody", "x").await.unwrap();
        }
    }
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn legacy_dialect_consumes_from_a_legacy_engine() {
    init_tracing();
    let engine = MockEngine::start(MockConfig {
        dialect: Dialect::Legacy,
        ..MockConfig::ephemeral()
    })
    .await
    .unwrap();
    let Consuming {
        engine,
        client,
        mut stream,
        node,
    } = consuming_with(engine, |client| client.dialect(Dialect::Legacy)).await;
    let producer = engine.producer(&node).unwrap();
    let browser = producer.register_client(None);
    producer.push("chat", browser, json!({"k": 1})).unwrap();
    let event = next_event(&mut stream).await;
    assert_eq!(event.client, browser);
    assert_eq!(event.node, node);
    client.subscribe(&event.conn(), &["room"]).await.unwrap();
    let sent = client.publish("room", "hi").await.unwrap();
    assert_eq!(sent.delivered, 1);
    client.shutdown(WAIT).await;
}

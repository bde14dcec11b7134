//! The chat script and the memory queue, as a consumer and a browser observe them.

mod common;

use std::collections::HashSet;

use common::{event_name, frame_text, Consumer, Mode};
use connmix_mock::browser::Browser;
use connmix_mock::{MockConfig, MockEngine};
use connmix_protocol::{Call, ClientId, ConnFunc};
use serde_json::json;

async fn engine() -> anyhow::Result<MockEngine> {
    Ok(MockEngine::start(MockConfig::ephemeral()).await?)
}

async fn engine_in(mode: Mode) -> anyhow::Result<MockEngine> {
    Ok(MockEngine::start(mode.config(MockConfig::ephemeral())).await?)
}

both_modes!(
    browser_lifecycle_is_queued_as_handshake_messages_and_close,
    lifecycle
);
async fn lifecycle(mode: Mode) -> anyhow::Result<()> {
    let engine = engine_in(mode).await?;
    let node = engine.node(0).unwrap();
    let mut consumer = Consumer::popping(node.api_addr, "chat").await?;

    let mut browser = Browser::connect(node.chat_addr).await?;
    let hello = consumer.next_message().await?;
    assert_eq!(event_name(&hello).as_deref(), Some("handshake"));
    assert!(
        hello.data.to_value()["headers"]["host"].is_string(),
        "{}",
        hello.data
    );
    assert!(
        hello.client.get() > 1 << 53,
        "ids exceed 2^53 like the engine's"
    );
    assert_eq!(hello.node.as_ref(), Some(&node.id));

    browser.send("not json").await?; // dropped, as the script does
    browser.send_binary(b"{}").await?; // binary frames are not queued either
    browser.send(r#"{"op":"ping"}"#).await?;
    let msg = consumer.next_message().await?;
    assert_eq!(msg.client, hello.client);
    assert_eq!(frame_text(&msg).as_deref(), Some(r#"{"op":"ping"}"#));
    assert!(msg.data.to_value()["uid"].is_null());

    browser.close().await?;
    let bye = consumer.next_message().await?;
    assert_eq!(event_name(&bye).as_deref(), Some("close"));
    assert_eq!(bye.client, hello.client);
    engine.shutdown().await;
    Ok(())
}

both_modes!(frames_after_auth_wait_for_uid_then_arrive_in_order, held);
async fn held(mode: Mode) -> anyhow::Result<()> {
    let engine = engine_in(mode).await?;
    let node = engine.node(0).unwrap();
    let mut consumer = Consumer::popping(node.api_addr, "chat").await?;
    let mut browser = Browser::connect(node.chat_addr).await?;
    let client = consumer.next_message().await?.client;

    browser
        .send(r#"{"op":"auth","args":["user1","123456"]}"#)
        .await?;
    for i in 0..5 {
        browser.send(&format!(r#"{{"op":"ping","n":{i}}}"#)).await?;
    }
    let auth = consumer.next_message().await?;
    assert!(frame_text(&auth).unwrap().contains("auth"));
    assert!(
        auth.data.to_value()["headers"].is_object(),
        "auth frames carry the headers"
    );

    // Held: nothing more is queued until the uid is set. Prove it with a second browser whose
    // frame is queued behind anything the first one could have pushed.
    let mut other = Browser::connect(node.chat_addr).await?;
    let other_hello = consumer.next_message().await?;
    assert_eq!(event_name(&other_hello).as_deref(), Some("handshake"));
    other.send(r#"{"op":"marker"}"#).await?;
    let marker = consumer.next_message().await?;
    assert_eq!(frame_text(&marker).as_deref(), Some(r#"{"op":"marker"}"#));

    consumer
        .ok(Call::ConnCall {
            client,
            func: ConnFunc::SetContextValue {
                key: "uid".into(),
                value: json!(42),
            },
        })
        .await?;
    for i in 0..5 {
        let msg = consumer.next_message().await?;
        assert_eq!(msg.client, client);
        assert_eq!(
            frame_text(&msg),
            Some(format!(r#"{{"op":"ping","n":{i}}}"#))
        );
        assert_eq!(msg.data.to_value()["uid"], json!(42));
        assert!(msg.data.to_value().get("headers").is_none());
    }
    engine.shutdown().await;
    Ok(())
}

both_modes!(
    set_context_with_the_auth_key_also_releases_held_frames,
    released_by_set_context
);
async fn released_by_set_context(mode: Mode) -> anyhow::Result<()> {
    let engine = engine_in(mode).await?;
    let node = engine.node(0).unwrap();
    let mut consumer = Consumer::popping(node.api_addr, "chat").await?;
    let mut browser = Browser::connect(node.chat_addr).await?;
    let client = consumer.next_message().await?.client;
    browser.send(r#"{"op":"auth","args":["a","b"]}"#).await?;
    browser.send(r#"{"op":"after"}"#).await?;
    consumer.next_message().await?;
    let mut context = serde_json::Map::new();
    context.insert("uid".into(), json!(0));
    consumer
        .ok(Call::ConnCall {
            client,
            func: ConnFunc::SetContext { context },
        })
        .await?;
    let after = consumer.next_message().await?;
    assert_eq!(frame_text(&after).as_deref(), Some(r#"{"op":"after"}"#));
    assert_eq!(after.data.to_value()["uid"], json!(0));
    engine.shutdown().await;
    Ok(())
}

both_modes!(
    full_queue_rejects_the_push_and_closes_the_browser,
    full_queue
);
async fn full_queue(mode: Mode) -> anyhow::Result<()> {
    let config = mode.config(MockConfig {
        topic_size: 3,
        ..MockConfig::ephemeral()
    });
    let engine = MockEngine::start(config).await?;
    let node = engine.node(0).unwrap();
    let mut browser = Browser::connect(node.chat_addr).await?;
    // handshake + 2 messages fill the topic; the third message does not fit.
    for i in 0..3 {
        browser.send(&format!(r#"{{"n":{i}}}"#)).await?;
    }
    browser.closed().await?;
    let counters = engine.counters();
    assert_eq!(counters.queued, 3);
    assert!(counters.rejected >= 1);

    // What was queued is still there for a consumer that comes later.
    let mut consumer = Consumer::popping(node.api_addr, "chat").await?;
    assert_eq!(
        event_name(&consumer.next_message().await?).as_deref(),
        Some("handshake")
    );
    assert_eq!(
        frame_text(&consumer.next_message().await?).as_deref(),
        Some(r#"{"n":0}"#)
    );
    assert_eq!(
        frame_text(&consumer.next_message().await?).as_deref(),
        Some(r#"{"n":1}"#)
    );
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn messages_queued_before_any_consumer_are_delivered_when_one_comes() -> anyhow::Result<()> {
    let engine = engine().await?;
    let node = engine.node(0).unwrap();
    let producer = engine.producer(&node.id).unwrap();
    let client = producer.register_client(None);
    for i in 0..10 {
        producer.push("jobs", client, json!(i))?;
    }
    let mut consumer = Consumer::popping(node.api_addr, "jobs").await?;
    for i in 0..10 {
        let msg = consumer.next_message().await?;
        assert_eq!(msg.data, json!(i));
        assert_eq!(msg.topic, "jobs");
        assert_eq!(msg.client, client);
    }
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn competing_consumers_each_get_every_message_exactly_once() -> anyhow::Result<()> {
    let engine = engine().await?;
    let node = engine.node(0).unwrap();
    let mut a = Consumer::popping(node.api_addr, "chat").await?;
    let mut b = Consumer::popping(node.api_addr, "chat").await?;
    engine.wait_for_consumers("chat", 2).await;

    let producer = engine.producer(&node.id).unwrap();
    let client = producer.register_client(Some(7));
    let total = 400;
    for i in 0..total {
        assert!(producer.push_wait("chat", client, json!(i)).await);
    }
    let mut seen = HashSet::new();
    let (mut from_a, mut from_b) = (0, 0);
    while seen.len() < total {
        tokio::select! {
            msg = a.next_message() => { assert!(seen.insert(msg?.data.to_string()), "duplicate"); from_a += 1; }
            msg = b.next_message() => { assert!(seen.insert(msg?.data.to_string()), "duplicate"); from_b += 1; }
        }
    }
    assert!(
        from_a > 0 && from_b > 0,
        "both compete: a={from_a} b={from_b}"
    );
    assert_eq!(engine.counters().delivered, total as u64);
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unpop_stops_delivery_to_that_connection() -> anyhow::Result<()> {
    let engine = engine().await?;
    let node = engine.node(0).unwrap();
    let mut leaving = Consumer::connect(node.api_addr).await?;
    let mut staying = Consumer::connect(node.api_addr).await?;
    leaving.pop("chat").await?;
    leaving.ok(Call::QueueUnpop).await?;
    staying.pop("chat").await?;
    let producer = engine.producer(&node.id).unwrap();
    let client: ClientId = producer.register_client(None);
    for i in 0..20 {
        producer.push("chat", client, json!(i))?;
    }
    for i in 0..20 {
        assert_eq!(staying.next_message().await?.data, json!(i));
    }
    // The unpopped connection still answers calls, and got no event in between.
    leaving.ok(Call::ServerPing).await?;
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_message_handed_to_a_consumer_that_dies_is_not_delivered_again() -> anyhow::Result<()> {
    let engine = engine().await?;
    let node = engine.node(0).unwrap();
    let producer = engine.producer(&node.id).unwrap();
    let client = producer.register_client(None);
    let mut dying = Consumer::popping(node.api_addr, "chat").await?;
    producer.push("chat", client, json!("first"))?;
    assert_eq!(dying.next_message().await?.data, json!("first"));
    drop(dying);

    let mut next = Consumer::popping(node.api_addr, "chat").await?;
    producer.push("chat", client, json!("second"))?;
    assert_eq!(next.next_message().await?.data, json!("second"));
    assert_eq!(engine.counters().delivered, 2);
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_consumer_that_stops_reading_leaves_the_rest_to_the_others() -> anyhow::Result<()> {
    let engine = engine().await?;
    let node = engine.node(0).unwrap();
    let _stalled = Consumer::popping(node.api_addr, "chat").await?;
    let mut reading = Consumer::popping(node.api_addr, "chat").await?;
    engine.wait_for_consumers("chat", 2).await;

    let producer = engine.producer(&node.id).unwrap();
    let client = producer.register_client(None);
    let total = 10_000;
    let filler = "x".repeat(2_000);
    let feeder = tokio::spawn(async move {
        for i in 0..total {
            producer
                .push_wait("chat", client, json!({"n": i, "pad": filler}))
                .await;
        }
    });
    // Round-robin alone would give each half. The stalled one stops taking messages once its
    // socket and its small outgoing buffer are full, so the reading one gets the rest (if it
    // did not, this would time out waiting for more than half).
    let mut got = 0;
    while got <= total / 2 {
        reading.next_message().await?;
        got += 1;
    }
    let taken_by_stalled = engine.counters().delivered - got as u64;
    assert!(
        taken_by_stalled < (total / 2) as u64,
        "stalled took {taken_by_stalled}"
    );
    feeder.abort();
    // Must not hang on the stalled consumer's full socket.
    engine.shutdown().await;
    Ok(())
}

//! The node API server's WebSocket: replies, errors, heartbeats, timeouts, dialects, access.

mod common;

use std::time::Duration;

use common::{Consumer, WAIT};
use connmix_mock::{Credentials, MockConfig, MockEngine};
use connmix_protocol::reply::Status;
use connmix_protocol::{Call, ClientId, ConnFunc, Dialect, EngineFrame, ErrorCode, Reply};
use serde_json::{json, Value};

async fn engine_with(config: MockConfig) -> anyhow::Result<(MockEngine, Consumer)> {
    let engine = MockEngine::start(config).await?;
    let consumer = Consumer::connect(engine.node(0).unwrap().api_addr).await?;
    Ok((engine, consumer))
}

fn code(reply: &Reply) -> Option<ErrorCode> {
    reply.outcome.as_ref().err().map(|e| e.code)
}

#[tokio::test]
async fn second_pop_of_a_topic_on_one_connection_is_error_202() -> anyhow::Result<()> {
    let (engine, mut consumer) = engine_with(MockConfig::ephemeral()).await?;
    consumer.pop("chat").await?;
    let again = consumer
        .call(Call::QueuePop {
            topics: vec!["chat".into()],
        })
        .await?;
    assert_eq!(code(&again), Some(ErrorCode::AlreadyConsumed));
    // Another connection may still consume it.
    let mut other = Consumer::connect(engine.node(0).unwrap().api_addr).await?;
    other.pop("chat").await?;
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn conn_call_on_an_unknown_client_is_error_301() -> anyhow::Result<()> {
    let (engine, mut consumer) = engine_with(MockConfig::ephemeral()).await?;
    let reply = consumer
        .call(Call::ConnCall {
            client: ClientId(123),
            func: ConnFunc::Subscribe {
                channels: vec!["room".into()],
            },
        })
        .await?;
    assert_eq!(code(&reply), Some(ErrorCode::ConnCallFailed));
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn mesh_send_to_an_unknown_client_is_error_401() -> anyhow::Result<()> {
    let (engine, mut consumer) = engine_with(MockConfig::ephemeral()).await?;
    let reply = consumer
        .call(Call::MeshSend {
            client: ClientId((1 << 56) | 999),
            data: "hi".into(),
        })
        .await?;
    assert_eq!(code(&reply), Some(ErrorCode::SendFailed));
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn bad_params_are_error_101_with_the_request_id() -> anyhow::Result<()> {
    let (engine, mut consumer) = engine_with(MockConfig::ephemeral()).await?;
    consumer
        .send_text(r#"{"m":"conn.call","p":{"c":"x1","f":"subscribe"},"i":77}"#)
        .await?;
    let EngineFrame::Reply(reply) = consumer.recv_frame().await? else {
        anyhow::bail!("expected a reply");
    };
    assert_eq!(reply.id, Some(77));
    assert_eq!(code(&reply), Some(ErrorCode::InvalidArgument));

    consumer
        .send_text(r#"{"m":"queue.pop","p":{"t":[]},"i":78}"#)
        .await?;
    let EngineFrame::Reply(reply) = consumer.recv_frame().await? else {
        anyhow::bail!("expected a reply");
    };
    assert_eq!(
        (reply.id, code(&reply)),
        (Some(78), Some(ErrorCode::InvalidArgument))
    );
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unparseable_frame_is_error_101_without_id_and_the_connection_stays() -> anyhow::Result<()>
{
    let (engine, mut consumer) = engine_with(MockConfig::ephemeral()).await?;
    consumer.send_text("{not json").await?;
    let EngineFrame::Reply(reply) = consumer.recv_frame().await? else {
        anyhow::bail!("expected a reply");
    };
    assert_eq!(reply.id, None);
    assert_eq!(code(&reply), Some(ErrorCode::InvalidArgument));
    consumer.ok(Call::ServerPing).await?;
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unknown_method_is_error_101_saying_so() -> anyhow::Result<()> {
    let (engine, mut consumer) = engine_with(MockConfig::ephemeral()).await?;
    let reply = consumer
        .call(Call::Other {
            method: "queue.frobnicate".into(),
            params: json!({}),
        })
        .await?;
    let err = reply.outcome.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(err.message.contains("unknown method"), "{}", err.message);
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn websocket_ping_frame_gets_a_pong_frame() -> anyhow::Result<()> {
    let (engine, mut consumer) = engine_with(MockConfig::ephemeral()).await?;
    consumer.send_ping_frame().await?;
    let frame = consumer.recv_any().await?;
    assert!(frame.is_pong(), "{frame:?}");
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn text_ping_gets_pong_and_server_ping_gets_server_pong() -> anyhow::Result<()> {
    let (engine, mut consumer) = engine_with(MockConfig::ephemeral()).await?;
    consumer.send_text("ping").await?;
    assert_eq!(consumer.recv_text().await?, "pong");
    consumer
        .send_text(r#"{"m":"server.ping","p":{},"i":5}"#)
        .await?;
    let raw: Value = serde_json::from_str(&consumer.recv_text().await?)?;
    // Both documented short-key shapes: May 2022's `s`, August 2022's `m`.
    assert_eq!(raw["r"]["s"], json!("server.pong"));
    assert_eq!(raw["r"]["m"], json!("server.pong"));
    assert_eq!(raw["i"], json!(5));
    let result = consumer.ok(Call::ServerPing).await?;
    assert_eq!(result.status, Status::Text("server.pong".into()));
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_legacy_dialect_answers_server_ping_as_engine_1_0_1_did() -> anyhow::Result<()> {
    let config = MockConfig {
        dialect: connmix_protocol::Dialect::Legacy,
        ..MockConfig::ephemeral()
    };
    let (engine, mut consumer) = engine_with(config).await?;
    consumer
        .send_text(r#"{"method":"server.ping","params":[],"id":12345}"#)
        .await?;
    let raw: Value = serde_json::from_str(&consumer.recv_text().await?)?;
    assert_eq!(
        raw,
        json!({"error": null, "result": {"status": "server.pong"}, "id": 12345})
    );
    engine.shutdown().await;
    Ok(())
}

fn short_timeout() -> MockConfig {
    MockConfig {
        read_timeout: Duration::from_millis(200),
        ..MockConfig::ephemeral()
    }
}

#[tokio::test]
async fn read_timeout_closes_an_idle_api_connection() -> anyhow::Result<()> {
    let (engine, mut consumer) = engine_with(short_timeout()).await?;
    consumer.closed_within(WAIT).await?;
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_connection_that_pings_outlives_the_read_timeout() -> anyhow::Result<()> {
    let (engine, mut consumer) = engine_with(short_timeout()).await?;
    // Pings paced well inside the timeout for three times its length.
    let mut every = tokio::time::interval(Duration::from_millis(40));
    for _ in 0..15 {
        every.tick().await;
        consumer.send_ping_frame().await?;
    }
    consumer.ok(Call::ServerPing).await?;
    assert_eq!(engine.counters().api_connections, 1);
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn legacy_dialect_writes_long_keys_in_replies_and_events() -> anyhow::Result<()> {
    let config = MockConfig {
        dialect: Dialect::Legacy,
        ..MockConfig::ephemeral()
    };
    let (engine, mut consumer) = engine_with(config).await?;
    consumer
        .send_text(r#"{"method":"queue.consume","params":["chat"],"id":1}"#)
        .await?;
    let reply: Value = serde_json::from_str(&consumer.recv_text().await?)?;
    assert_eq!(
        reply,
        json!({"error": null, "result": {"success": true}, "id": 1})
    );

    let node = engine.node(0).unwrap();
    let producer = engine.producer(&node.id).unwrap();
    let client = producer.register_client(None);
    producer.push("chat", client, json!({"x": 1}))?;
    let event: Value = serde_json::from_str(&consumer.recv_text().await?)?;
    assert_eq!(event["event"], json!("queue.consume"));
    assert_eq!(event["result"]["client_id"], json!(client.get()));
    assert_eq!(event["result"]["data"], json!({"x": 1}));

    consumer
        .send_text(r#"{"method":"mesh.send","params":{"client_id":1,"data":"x"},"id":2}"#)
        .await?;
    let error: Value = serde_json::from_str(&consumer.recv_text().await?)?;
    assert_eq!(error["error"]["code"], json!(401));
    assert_eq!(error["id"], json!(2));
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn every_frame_the_mock_writes_decodes_as_an_engine_frame() -> anyhow::Result<()> {
    let (engine, mut consumer) = engine_with(MockConfig::ephemeral()).await?;
    let node = engine.node(0).unwrap();
    let producer = engine.producer(&node.id).unwrap();
    let client = producer.register_client(Some(5));
    producer.push("chat", client, json!({"event": "message"}))?;
    let requests = [
        r#"{"m":"queue.pop","p":{"t":["chat"]},"i":1}"#.to_owned(),
        format!(r#"{{"m":"conn.call","p":{{"c":"{client}","f":"subscribe","a":["r"]}},"i":2}}"#),
        r#"{"m":"mesh.publish","p":{"c":"r","d":"hi"},"i":3}"#.to_owned(),
        r#"{"m":"mesh.send","p":{"c":"1","d":"aGk=","t":"binary"},"i":4}"#.to_owned(),
        r#"{"m":"queue.pop","p":{"t":["chat"]},"i":5}"#.to_owned(),
        r#"{"m":"nope","i":6}"#.to_owned(),
        "[]".to_owned(),
        "ping".to_owned(),
    ];
    for request in &requests {
        consumer.send_text(request).await?;
    }
    let (mut replies, mut events, mut pongs) = (0, 0, 0);
    for _ in 0..requests.len() + 1 {
        let text = consumer.recv_text().await?;
        match EngineFrame::decode(&text) {
            Ok(EngineFrame::Reply(_)) => replies += 1,
            Ok(EngineFrame::Event(_)) => events += 1,
            Ok(EngineFrame::Pong) => pongs += 1,
            Err(err) => anyhow::bail!("mock wrote an undecodable frame {text}: {err}"),
        }
    }
    assert_eq!((replies, events, pongs), (7, 1, 1));
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn api_websocket_requires_the_configured_credentials() -> anyhow::Result<()> {
    let config = MockConfig {
        credentials: Some(Credentials::new("admin", "secret")),
        ..MockConfig::ephemeral()
    };
    let engine = MockEngine::start(config).await?;
    let api = engine.node(0).unwrap().api_addr;
    for basic in [None, Some(("admin", "wrong"))] {
        let Err(refused) = Consumer::connect_as(api, basic).await else {
            anyhow::bail!("{basic:?} was let in");
        };
        assert!(refused.to_string().contains("401"), "{refused}");
    }
    let mut ok = Consumer::connect_as(api, Some(("admin", "secret"))).await?;
    ok.pop("chat").await?;
    engine.shutdown().await;
    Ok(())
}

//! Managing the mock: adding, removing, killing and restarting nodes, breaking connections,
//! and the synthetic producer.

mod common;

use std::time::Duration;

use common::{Consumer, WAIT};
use connmix_mock::browser::Browser;
use connmix_mock::{MockConfig, MockEngine, MockErrorKind};
use connmix_protocol::{Call, ConnFunc, NodeList, Payload};
use serde_json::json;

async fn listed(engine: &MockEngine) -> anyhow::Result<Vec<String>> {
    let list: NodeList = common::http()
        .get(format!("http://{}/v1/nodes", engine.center_host()))
        .send()
        .await?
        .json()
        .await?;
    Ok(list.nodes.into_iter().map(|n| n.id.to_string()).collect())
}

#[tokio::test]
async fn added_and_removed_nodes_show_in_the_center_list() -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig::ephemeral()).await?;
    let first = engine.node(0).unwrap();
    let added = engine.add_node().await?;
    assert_ne!(added.id, first.id);
    assert_eq!(
        listed(&engine).await?,
        vec![first.id.to_string(), added.id.to_string()]
    );
    // The new node serves at once.
    Consumer::connect(added.api_addr).await?.pop("chat").await?;

    assert!(engine.remove_node(&first.id).await);
    assert!(!engine.remove_node(&first.id).await, "already gone");
    assert_eq!(listed(&engine).await?, vec![added.id.to_string()]);
    assert!(Consumer::connect(first.api_addr).await.is_err(), "stopped");
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn killed_node_drops_everything_and_restarts_on_the_same_ports() -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig::ephemeral()).await?;
    let node = engine.node(0).unwrap();
    let mut consumer = Consumer::connect(node.api_addr).await?;
    let mut browser = Browser::connect(node.chat_addr).await?;
    let producer = engine.producer(&node.id).unwrap();
    let client = producer.register_client(None);
    producer.push("jobs", client, json!("lost"))?;

    engine.kill_node(&node.id).await;
    consumer.closed_within(WAIT).await?;
    browser.closed().await?;
    assert!(
        Consumer::connect(node.api_addr).await.is_err(),
        "listener closed"
    );
    assert_eq!(
        listed(&engine).await?,
        vec![node.id.to_string()],
        "still listed"
    );
    assert!(producer.push("jobs", client, json!("down")).is_err());

    engine.restart_node(&node.id).await?;
    assert_eq!(engine.node(0).unwrap(), node, "same id and addresses");
    let mut consumer = Consumer::popping(node.api_addr, "jobs").await?;
    let fresh = producer.register_client(None);
    producer.push("jobs", fresh, json!("after"))?;
    let msg = consumer.next_message().await?;
    assert_eq!(
        msg.data,
        json!("after"),
        "the queue was emptied by the kill"
    );
    Browser::connect(node.chat_addr).await?;
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn restarting_an_unknown_node_is_an_unknown_node_error() -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig::ephemeral()).await?;
    let err = engine.restart_node(&"nope".into()).await.unwrap_err();
    assert_eq!(err.kind(), MockErrorKind::UnknownNode);
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_port_in_use_is_a_bind_error_naming_the_address() -> anyhow::Result<()> {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = taken.local_addr()?.port();
    let err = MockEngine::start(MockConfig {
        center_port: port,
        ..MockConfig::ephemeral()
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind(), MockErrorKind::Bind);
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn drop_consumers_closes_api_sockets_but_the_node_keeps_serving() -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig::ephemeral()).await?;
    let node = engine.node(0).unwrap();
    let mut a = Consumer::popping(node.api_addr, "chat").await?;
    let mut b = Consumer::popping(node.api_addr, "chat").await?;
    engine.wait_for_consumers("chat", 2).await;
    engine.drop_consumers(&node.id);
    a.closed_within(WAIT).await?;
    b.closed_within(WAIT).await?;
    // The node still takes consumers after dropping them all.
    let _again = Consumer::popping(node.api_addr, "chat").await?;
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unresponsive_node_answers_nothing_until_switched_back() -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig {
        read_timeout: Duration::from_millis(100),
        ..MockConfig::ephemeral()
    })
    .await?;
    let node = engine.node(0).unwrap();
    let mut consumer = Consumer::popping(node.api_addr, "chat").await?;
    engine.set_unresponsive(&node.id, true);
    consumer.send_ping_frame().await?;
    consumer.send_text("ping").await?;
    // Longer than the read timeout: a half-open socket is neither answered nor closed.
    assert!(!consumer.any_frame_within(Duration::from_millis(300)).await);

    engine.set_unresponsive(&node.id, false);
    assert_eq!(
        consumer.recv_text().await?,
        "pong",
        "the held ping is read now"
    );
    let result = consumer.ok(Call::ServerPing).await;
    assert!(result.is_ok(), "answers again: {result:?}");
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn producer_clients_can_be_subscribed_and_capture_what_they_receive() -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig {
        nodes: 2,
        ..MockConfig::ephemeral()
    })
    .await?;
    let node = engine.node(1).unwrap();
    let producer = engine.producer(&node.id).unwrap();
    let client = producer.register_client(Some(9));
    let mut inbox = producer.receiver(client).unwrap();
    let mut consumer = Consumer::connect(node.api_addr).await?;
    consumer
        .ok(Call::ConnCall {
            client,
            func: ConnFunc::Subscribe {
                channels: vec!["room".into()],
            },
        })
        .await?;
    let mut elsewhere = Consumer::connect(engine.node(0).unwrap().api_addr).await?;
    let result = elsewhere
        .ok(Call::MeshPublish {
            channel: "room".into(),
            data: "hi".into(),
        })
        .await?;
    assert_eq!(result.delivered(), Some(1));
    let got = tokio::time::timeout(WAIT, inbox.recv()).await?;
    assert_eq!(got, Some(Payload::Text("hi".into())));
    assert_eq!(engine.counters().frames_out, 1);
    assert!(producer.unregister_client(client));
    let gone = elsewhere
        .call(Call::MeshSend {
            client,
            data: "x".into(),
        })
        .await?;
    assert!(gone.outcome.is_err());
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_center_admin_api_adds_kills_restarts_and_removes_nodes() -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig::ephemeral()).await?;
    let http = common::http();
    let admin = format!("http://{}/admin/nodes", engine.center_host());

    let added = http.post(&admin).send().await?;
    assert_eq!(added.status(), 201);
    let added: serde_json::Value = added.json().await?;
    assert_eq!(added["id"], "2");
    assert_eq!(added["running"], true);
    assert_eq!(listed(&engine).await?, ["1", "2"]);

    // Killed: still listed, not running; its API port refuses consumers.
    let kill = http.post(format!("{admin}/2/kill")).send().await?;
    assert_eq!(kill.status(), 204);
    let list: serde_json::Value = http.get(&admin).send().await?.json().await?;
    assert_eq!(list["nodes"][1]["running"], false);
    let api: std::net::SocketAddr = added["api_server"].as_str().unwrap().parse()?;
    assert!(Consumer::connect(api).await.is_err());
    assert_eq!(listed(&engine).await?, ["1", "2"]);

    let restart = http.post(format!("{admin}/2/restart")).send().await?;
    assert_eq!(restart.status(), 204);
    Consumer::popping(api, "chat").await?;

    let removed = http.delete(format!("{admin}/2")).send().await?;
    assert_eq!(removed.status(), 204);
    assert_eq!(listed(&engine).await?, ["1"]);
    for unknown in [
        http.delete(format!("{admin}/9")).send().await?,
        http.post(format!("{admin}/9/kill")).send().await?,
        http.post(format!("{admin}/9/restart")).send().await?,
    ] {
        assert_eq!(unknown.status(), 404);
    }
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_admin_api_needs_the_centers_credentials() -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig {
        credentials: Some(connmix_mock::Credentials::new("admin", "secret")),
        ..MockConfig::ephemeral()
    })
    .await?;
    let admin = format!("http://{}/admin/nodes", engine.center_host());
    let refused = common::http().post(&admin).send().await?;
    assert_eq!(refused.status(), 401);
    assert_eq!(engine.nodes().len(), 1);
    let allowed = common::http()
        .post(&admin)
        .basic_auth("admin", Some("secret"))
        .send()
        .await?;
    assert_eq!(allowed.status(), 201);
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_legacy_dialect_lists_nodes_under_host_as_engine_1_0_1_did() -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig {
        dialect: connmix_protocol::Dialect::Legacy,
        ..MockConfig::ephemeral()
    })
    .await?;
    let list: serde_json::Value = common::http()
        .get(format!("http://{}/v1/nodes", engine.center_host()))
        .send()
        .await?
        .json()
        .await?;
    let node = engine.node(0).unwrap();
    assert_eq!(
        list,
        serde_json::json!({"nodes": [{"id": "1", "host": node.api_addr.to_string()}]})
    );
    engine.shutdown().await;
    Ok(())
}

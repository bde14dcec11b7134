//! Routing between nodes (mesh.send / mesh.publish), over WebSocket and the HTTP push API, and
//! the center's HTTP API.

mod common;

use common::Consumer;
use connmix_mock::browser::Browser;
use connmix_mock::{Credentials, MockConfig, MockEngine};
use connmix_protocol::{Call, ClientId, ConnFunc, NodeList, Payload, VersionInfo};
use serde_json::{json, Value};

async fn two_nodes() -> anyhow::Result<MockEngine> {
    Ok(MockEngine::start(MockConfig {
        nodes: 2,
        ..MockConfig::ephemeral()
    })
    .await?)
}

/// A browser on a node and a consumer of that node's queue, with the browser's client id.
async fn browser_on(
    engine: &MockEngine,
    index: usize,
) -> anyhow::Result<(Browser, Consumer, ClientId)> {
    let node = engine.node(index).unwrap();
    let mut consumer = Consumer::popping(node.api_addr, "chat").await?;
    let browser = Browser::connect(node.chat_addr).await?;
    let client = consumer.next_message().await?.client;
    Ok((browser, consumer, client))
}

#[tokio::test]
async fn mesh_send_on_one_node_reaches_a_browser_on_another() -> anyhow::Result<()> {
    let engine = two_nodes().await?;
    let (mut browser, _on_node_1, client) = browser_on(&engine, 1).await?;
    let mut on_node_0 = Consumer::connect(engine.node(0).unwrap().api_addr).await?;
    on_node_0
        .ok(Call::MeshSend {
            client,
            data: r#"{"op":"auth","success":true}"#.into(),
        })
        .await?;
    assert_eq!(browser.recv().await?, r#"{"op":"auth","success":true}"#);

    on_node_0
        .ok(Call::MeshSend {
            client,
            data: Payload::Binary(vec![0, 159, 255]),
        })
        .await?;
    assert_eq!(
        browser.recv_payload().await?,
        Payload::Binary(vec![0, 159, 255])
    );
    assert_eq!(engine.counters().sent, 2);
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn publish_reaches_subscribers_on_every_node_and_counts_them() -> anyhow::Result<()> {
    let engine = two_nodes().await?;
    let (mut a, mut consumer_0, client_a) = browser_on(&engine, 0).await?;
    let (mut b, mut consumer_1, client_b) = browser_on(&engine, 1).await?;
    let _not_subscribed = Browser::connect(engine.node(1).unwrap().chat_addr).await?;
    let subscribe = |client| Call::ConnCall {
        client,
        func: ConnFunc::Subscribe {
            channels: vec!["room_101".into()],
        },
    };
    consumer_0.ok(subscribe(client_a)).await?;
    // A conn.call only reaches connections of the node it is sent to.
    let wrong_node = consumer_0.call(subscribe(client_b)).await?;
    assert!(wrong_node.outcome.is_err());
    consumer_1.ok(subscribe(client_b)).await?;

    let result = consumer_1
        .ok(Call::MeshPublish {
            channel: "room_101".into(),
            data: "hello".into(),
        })
        .await?;
    assert_eq!((result.delivered(), result.failed), (Some(2), Some(0)));
    assert_eq!(a.recv().await?, "hello");
    assert_eq!(b.recv().await?, "hello");

    consumer_0
        .ok(Call::ConnCall {
            client: client_a,
            func: ConnFunc::Unsubscribe {
                channels: vec!["room_101".into()],
            },
        })
        .await?;
    let result = consumer_0
        .ok(Call::MeshPublish {
            channel: "room_101".into(),
            data: "again".into(),
        })
        .await?;
    assert_eq!(result.delivered(), Some(1));
    assert_eq!(b.recv().await?, "again");
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn http_push_sends_and_publishes_like_the_websocket_calls() -> anyhow::Result<()> {
    let engine = two_nodes().await?;
    let (mut browser, mut consumer, client) = browser_on(&engine, 1).await?;
    consumer
        .ok(Call::ConnCall {
            client,
            func: ConnFunc::Subscribe {
                channels: vec!["broadcast".into()],
            },
        })
        .await?;
    let api_0 = engine.node(0).unwrap().api_addr;
    let http = common::http();

    let sent: Value = http
        .post(format!("http://{api_0}/v1/mesh/send"))
        .body(json!({"c": client.to_string(), "d": "direct"}).to_string())
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(sent, json!({"E": null, "r": {"s": true}}));
    assert_eq!(browser.recv().await?, "direct");

    let published: Value = http
        .post(format!("http://{api_0}/v1/mesh/publish"))
        .body(r#"{"c":"broadcast","d":"to all"}"#)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(published, json!({"E": null, "r": {"s": 1, "f": 0}}));
    assert_eq!(browser.recv().await?, "to all");

    let unknown: Value = http
        .post(format!("http://{api_0}/v1/mesh/send"))
        .body(r#"{"c":"1","d":"x"}"#)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(unknown["E"]["c"], json!(401));
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn center_lists_versions_and_nodes() -> anyhow::Result<()> {
    let engine = two_nodes().await?;
    let center = engine.center_host();
    let version: VersionInfo = common::http()
        .get(format!("http://{center}/version"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(version.apis, vec!["v1".to_owned()]);
    let list: NodeList = common::http()
        .get(format!("http://{center}/v1/nodes"))
        .send()
        .await?
        .json()
        .await?;
    let listed: Vec<_> = list.nodes.iter().map(|n| n.api_server.clone()).collect();
    let expected: Vec<_> = engine
        .nodes()
        .iter()
        .map(|n| n.api_addr.to_string())
        .collect();
    assert_eq!(listed, expected);
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn http_push_and_center_refuse_requests_without_the_credentials() -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig {
        credentials: Some(Credentials::new("admin", "secret")),
        ..MockConfig::ephemeral()
    })
    .await?;
    let api = engine.node(0).unwrap().api_addr;
    let center = engine.center_host();
    let urls = [
        (format!("http://{center}/v1/nodes"), false),
        (format!("http://{center}/version"), false),
        (format!("http://{api}/v1/mesh/publish"), true),
    ];
    let http = common::http();
    for (url, post) in &urls {
        let request = |user: Option<(&str, &str)>| {
            let builder = if *post {
                http.post(url.as_str()).body(r#"{"c":"room","d":"x"}"#)
            } else {
                http.get(url.as_str())
            };
            match user {
                Some((u, p)) => builder.basic_auth(u, Some(p)),
                None => builder,
            }
        };
        assert_eq!(request(None).send().await?.status(), 401, "{url}");
        let wrong = request(Some(("admin", "nope"))).send().await?.status();
        assert_eq!(wrong, 401, "{url}");
        let right = request(Some(("admin", "secret"))).send().await?.status();
        assert_eq!(right, 200, "{url}");
    }
    engine.shutdown().await;
    Ok(())
}

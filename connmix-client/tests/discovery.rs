//! Discovery through the center: initial connect, resync, unreachable center.

mod common;

use common::*;
use connmix_client::{ClientErrorKind, ConnectionEvent, NodeId, NodeState};
use connmix_mock::{MockConfig, MockEngine};

#[tokio::test]
async fn connect_discovers_and_connects_every_node() {
    let engine = engine(2).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    let mut ids: Vec<NodeId> = engine.nodes().into_iter().map(|n| n.id).collect();
    ids.sort();
    assert_eq!(client.nodes(), ids);
    all_connected(&client, 2).await;
    until("two API connections", || {
        engine.counters().api_connections == 2
    })
    .await;
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn resync_connects_added_nodes_and_stops_removed_ones() {
    let engine = engine(1).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    let mut events = client.events();
    let added = engine.add_node().await.unwrap();
    client.resync().await.unwrap();
    wait_event(&mut events, |e| {
        *e == ConnectionEvent::NodeAdded {
            node: added.id.clone(),
        }
    })
    .await;
    wait_event(&mut events, |e| {
        *e == ConnectionEvent::Connected {
            node: added.id.clone(),
        }
    })
    .await;
    assert_eq!(client.nodes().len(), 2);

    let first = engine.node(0).unwrap().id;
    assert!(engine.remove_node(&first).await);
    client.resync().await.unwrap();
    wait_event(&mut events, |e| {
        *e == ConnectionEvent::NodeRemoved {
            node: first.clone(),
        }
    })
    .await;
    assert_eq!(client.nodes(), vec![added.id.clone()]);
    let state = client.state().borrow().clone();
    assert_eq!(state.nodes.len(), 1);
    assert_eq!(state.nodes.get(&added.id), Some(&NodeState::Connected));
    // Calls to the removed node fail fast instead of waiting.
    let err = client
        .set_context_value(
            &connmix_client::ConnRef {
                node: first,
                client: 1.into(),
            },
            "uid",
            1,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::NoNode);
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn periodic_resync_finds_new_nodes_without_being_asked() {
    let engine = engine(1).await;
    let client = fast(engine.center_host())
        .resync_interval(std::time::Duration::from_millis(50))
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let added = engine.add_node().await.unwrap();
    wait_event(&mut events, |e| {
        *e == ConnectionEvent::Connected {
            node: added.id.clone(),
        }
    })
    .await;
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn unreachable_center_at_connect_is_retried_not_fatal() {
    init_tracing();
    // A port that is free now: nothing listens there until the engine starts.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = fast(format!("127.0.0.1:{port}")).connect().await.unwrap();
    assert!(client.nodes().is_empty());
    let mut events = client.events();
    let engine = MockEngine::start(MockConfig {
        center_port: port,
        ..MockConfig::ephemeral()
    })
    .await
    .unwrap();
    let node = engine.node(0).unwrap().id;
    wait_event(&mut events, |e| {
        *e == ConnectionEvent::Connected { node: node.clone() }
    })
    .await;
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn calls_without_a_connected_node_fail_with_no_node() {
    init_tracing();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = fast(format!("127.0.0.1:{port}")).connect().await.unwrap();
    let err = client.publish("room", "x").await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::NoNode);
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn a_bad_center_address_is_a_config_error() {
    let err = fast("ftp://nowhere:1").connect().await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Config);
}

#[tokio::test]
async fn a_malformed_node_list_entry_is_skipped_and_the_good_nodes_are_used() {
    let engine = engine(1).await;
    let node = engine.node(0).unwrap();
    // A center of our own, listing one node without an address before the real one.
    let listing = serde_json::json!({"nodes": [
        {"id": "broken"},
        {"id": node.id.to_string(), "api_server": node.api_addr.to_string()},
    ]});
    let app = axum::Router::new()
        .route(
            "/version",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"apis": ["v1"]})) }),
        )
        .route(
            "/v1/nodes",
            axum::routing::get(move || async move { axum::Json(listing) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let center = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = fast(center).connect().await.unwrap();
    assert_eq!(client.nodes(), vec![node.id.clone()]);
    all_connected(&client, 1).await;
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn an_unreachable_center_is_reported_with_its_cause() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = fast(format!("127.0.0.1:{port}")).connect().await.unwrap();
    let err = client.resync().await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Discovery);
    assert!(
        err.to_string().to_lowercase().contains("refused"),
        "the cause is named: {err}"
    );
    client.shutdown(std::time::Duration::ZERO).await;
}

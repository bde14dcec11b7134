//! Connection health: heartbeat, dropped connections, killed nodes, half-open peers.

mod common;

use std::time::Duration;

use common::*;
use connmix_client::{ClientErrorKind, ConnectionEvent, DisconnectReason};
use connmix_mock::{MockConfig, MockEngine};
use serde_json::json;

async fn engine_with_read_timeout(read_timeout: Duration) -> MockEngine {
    init_tracing();
    MockEngine::start(MockConfig {
        read_timeout,
        ..MockConfig::ephemeral()
    })
    .await
    .unwrap()
}

fn is_disconnect(event: &ConnectionEvent) -> bool {
    matches!(event, ConnectionEvent::Disconnected { .. })
}

#[tokio::test]
async fn pings_keep_an_idle_consumer_past_the_engine_read_timeout() {
    let read_timeout = Duration::from_millis(300);
    let engine = engine_with_read_timeout(read_timeout).await;
    let Consuming {
        engine,
        client,
        mut stream,
        node,
    } = consuming_with(engine, |client| {
        client.ping_interval(Duration::from_millis(50))
    })
    .await;
    let mut events = client.events();
    // Several read timeouts pass with nothing to do but ping.
    let waited = tokio::time::timeout(read_timeout * 4, async {
        loop {
            if is_disconnect(&events.recv().await.unwrap()) {
                break;
            }
        }
    })
    .await;
    assert!(waited.is_err(), "the idle connection was dropped");
    assert_eq!(engine.counters().api_connections, 1);
    let producer = engine.producer(&node).unwrap();
    let browser = producer.register_client(None);
    producer.push("chat", browser, json!(1)).unwrap();
    assert_eq!(next_event(&mut stream).await.data, json!(1));
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn without_pings_inside_the_read_timeout_the_engine_drops_the_consumer() {
    // The control case of the test above: it shows the read timeout is real.
    let engine = engine_with_read_timeout(Duration::from_millis(100)).await;
    let client = fast(engine.center_host())
        .ping_interval(Duration::from_secs(3600))
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let event = wait_event(&mut events, is_disconnect).await;
    assert!(matches!(
        event,
        ConnectionEvent::Disconnected {
            reason: DisconnectReason::ClosedByPeer,
            ..
        }
    ));
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn dropped_connection_reconnects_and_consumes_again() {
    let Consuming {
        engine,
        client,
        mut stream,
        node,
    } = consuming().await;
    let mut events = client.events();
    engine.drop_consumers(&node);
    wait_event(&mut events, is_disconnect).await;
    wait_event(&mut events, |e| {
        matches!(e, ConnectionEvent::Reconnecting { attempt: 1, .. })
    })
    .await;
    reconnected_and_consuming(&engine, &mut events, &mut stream, &node).await;
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn killed_node_restarted_on_the_same_port_is_reconnected_and_consumed() {
    let Consuming {
        engine,
        client,
        mut stream,
        node,
    } = consuming().await;
    let mut events = client.events();
    engine.kill_node(&node).await;
    wait_event(&mut events, is_disconnect).await;
    // While it is down, calls fail at once rather than waiting for their timeout.
    let conn = connmix_client::ConnRef {
        node: node.clone(),
        client: 1.into(),
    };
    let err = client.subscribe(&conn, &["r"]).await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Disconnected);
    // Attempts keep failing and backing off until the node is back.
    wait_event(&mut events, |e| {
        matches!(e, ConnectionEvent::Reconnecting { attempt: 2, .. })
    })
    .await;
    engine.restart_node(&node).await.unwrap();
    reconnected_and_consuming(&engine, &mut events, &mut stream, &node).await;
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn half_open_peer_is_detected_and_pending_requests_fail_as_disconnected() {
    let Consuming {
        engine,
        client,
        mut stream,
        node,
    } = consuming().await;
    let mut events = client.events();
    engine.set_unresponsive(&node, true);
    // Request timeout is 5 s, pong timeout 300 ms: the call must end by the disconnect.
    let err = within("the pending call to fail", client.publish("room", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Disconnected);
    let event = wait_event(&mut events, is_disconnect).await;
    assert!(matches!(
        event,
        ConnectionEvent::Disconnected {
            reason: DisconnectReason::PongTimeout,
            ..
        }
    ));
    engine.set_unresponsive(&node, false);
    reconnected_and_consuming(&engine, &mut events, &mut stream, &node).await;
    client.shutdown(WAIT).await;
}

#[tokio::test]
async fn a_call_the_engine_never_answers_times_out() {
    let engine = engine(1).await;
    let client = fast(engine.center_host())
        .request_timeout(Duration::from_millis(50))
        .pong_timeout(Duration::from_secs(3600))
        .ping_interval(Duration::from_secs(3600))
        .connect()
        .await
        .unwrap();
    all_connected(&client, 1).await;
    engine.set_unresponsive(&engine.node(0).unwrap().id, true);
    let err = client.publish("room", "x").await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Timeout);
    client.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn wait_connected_returns_with_a_node_up_and_times_out_without_one() {
    let engine = engine(1).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    client.wait_connected(WAIT).await.unwrap();
    client.shutdown(WAIT).await;
    let err = client.wait_connected(WAIT).await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Closed, "{err}");

    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = fast(format!("127.0.0.1:{port}")).connect().await.unwrap();
    let err = nowhere
        .wait_connected(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Timeout, "{err}");
    // The cause is kept, so that a program can tell its operator what is wrong.
    let cause = "GET /version: connection refused";
    assert!(
        err.to_string().ends_with(&format!("; last error: {cause}")),
        "{err}"
    );
    let last = nowhere
        .last_error()
        .expect("the refused center read is kept");
    assert_eq!(last.kind(), ClientErrorKind::Discovery);
    assert_eq!(last.to_string(), cause);
    nowhere.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_connected_client_reports_no_last_error() {
    let engine = engine(1).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    client.wait_connected(WAIT).await.unwrap();
    assert!(client.last_error().is_none());
    client.shutdown(WAIT).await;
}

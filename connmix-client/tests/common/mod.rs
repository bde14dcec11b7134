//! Shared helpers of the integration tests: a mock engine, a client tuned for fast tests,
//! and bounded waits on events.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use connmix_client::protocol::NodeId;
use connmix_client::{Backoff, Client, ClientBuilder, ConnectionEvent, EventStream, QueueEvent};
use connmix_mock::{MockConfig, MockEngine};
use tokio::sync::broadcast;

/// Every wait is bounded by this; nothing should come close to it.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub async fn engine(nodes: usize) -> MockEngine {
    init_tracing();
    MockEngine::start(MockConfig {
        nodes,
        ..MockConfig::ephemeral()
    })
    .await
    .expect("mock engine starts")
}

/// What most tests start from: an engine, a client consuming `chat` on every node of it, and
/// the first node's id.
pub struct Consuming {
    pub engine: MockEngine,
    pub client: Client,
    pub stream: EventStream,
    pub node: NodeId,
}

/// A one-node engine and a [`fast`] client consuming `chat` there.
pub async fn consuming() -> Consuming {
    consuming_with(engine(1).await, |client| client).await
}

/// `engine` and a [`fast`] client, adjusted by `tune`, consuming `chat` on every node, once
/// the engine counts a consumer on each.
pub async fn consuming_with(
    engine: MockEngine,
    tune: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Consuming {
    let client = tune(fast(engine.center_host())).connect().await.unwrap();
    let stream = client.consume(&["chat"]).await.unwrap();
    let nodes = engine.nodes();
    within(
        "a consumer on every node",
        engine.wait_for_consumers("chat", nodes.len()),
    )
    .await;
    let node = nodes[0].id.clone();
    Consuming {
        engine,
        client,
        stream,
        node,
    }
}

/// Short timeouts so failures and reconnects take milliseconds, not minutes.
pub fn fast(center: impl Into<String>) -> ClientBuilder {
    Client::builder(center)
        .request_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(300))
        .resync_interval(Duration::from_secs(3600))
        .resync_jitter(Duration::ZERO)
        .backoff(Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ))
}

pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits for the first event matching `pred`, skipping others.
pub async fn wait_event(
    events: &mut broadcast::Receiver<ConnectionEvent>,
    pred: impl Fn(&ConnectionEvent) -> bool,
) -> ConnectionEvent {
    within("a connection event", async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event) => return event,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event channel closed"),
            }
        }
    })
    .await
}

pub async fn next_event(stream: &mut EventStream) -> QueueEvent {
    within("a queue event", stream.recv())
        .await
        .expect("stream still open")
}

/// Waits until `node` is connected again and consumes `chat` again, then proves it: a message
/// pushed there now reaches `stream`.
pub async fn reconnected_and_consuming(
    engine: &MockEngine,
    events: &mut broadcast::Receiver<ConnectionEvent>,
    stream: &mut EventStream,
    node: &NodeId,
) {
    wait_event(events, |e| {
        *e == ConnectionEvent::Connected { node: node.clone() }
    })
    .await;
    within("re-consumption", engine.wait_for_consumers("chat", 1)).await;
    let producer = engine.producer(node).expect("the node exists");
    let browser = producer.register_client(None);
    producer
        .push("chat", browser, serde_json::json!("after reconnect"))
        .expect("room in the queue");
    assert_eq!(
        next_event(stream).await.data,
        serde_json::json!("after reconnect")
    );
}

/// Waits until every node the client knows is connected.
pub async fn all_connected(client: &Client, n: usize) {
    let mut state = client.state();
    within(
        "all nodes connected",
        state.wait_for(|s| s.nodes.len() == n && s.all_connected()),
    )
    .await
    .expect("state channel open");
}

/// Polls a mock counter until `pred` holds (bounded).
pub async fn until(what: &str, mut pred: impl FnMut() -> bool) {
    within(what, async {
        while !pred() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

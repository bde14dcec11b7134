//! The center goes away while the nodes stay up: consumption and calls go on, a resync fails
//! with the cause and changes nothing, and the center coming back is picked up.

mod common;

use std::net::SocketAddr;

use common::*;
use connmix_client::protocol::Payload;
use connmix_client::NodeState;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards every connection accepted on `listener` to `target` until aborted.
fn forward(listener: TcpListener, target: SocketAddr) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut pipes = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            pipes.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

#[tokio::test]
async fn with_the_center_down_consumption_and_calls_go_on_and_its_return_is_picked_up() {
    let engine = engine(2).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let center = listener.local_addr().unwrap();
    let proxy = forward(listener, engine.center_addr());
    let client = fast(center.to_string()).connect().await.unwrap();
    let mut stream = client.consume(&["chat"]).await.unwrap();
    within(
        "a consumer on both nodes",
        engine.wait_for_consumers("chat", 2),
    )
    .await;

    // The center goes: nothing listens at its address any more.
    proxy.abort();
    let _ = proxy.await;
    let err = client.resync().await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("refused"),
        "the cause is named: {err}"
    );
    // A failed resync forgets no node.
    assert_eq!(client.nodes().len(), 2);
    let state = client.state().borrow().clone();
    assert!(
        state.nodes.values().all(|s| *s == NodeState::Connected),
        "{state:?}"
    );

    // Both nodes still deliver events and take calls.
    for node in engine.nodes() {
        let producer = engine.producer(&node.id).unwrap();
        let browser = producer.register_client(None);
        let mut inbox = producer.receiver(browser).unwrap();
        producer
            .push("chat", browser, serde_json::json!("center down"))
            .expect("room in the queue");
        let event = next_event(&mut stream).await;
        assert_eq!(event.data, serde_json::json!("center down"));
        client.send_to(&event.conn(), "answered").await.unwrap();
        let answer = within("the answer", inbox.recv()).await.expect("delivered");
        assert_eq!(answer, Payload::Text("answered".into()));
    }

    // The center comes back at the same address, with a node more: a resync finds it.
    let listener = TcpListener::bind(center).await.unwrap();
    let _proxy = forward(listener, engine.center_addr());
    engine.add_node().await.unwrap();
    client.resync().await.unwrap();
    all_connected(&client, 3).await;
    client.shutdown(WAIT).await;
}

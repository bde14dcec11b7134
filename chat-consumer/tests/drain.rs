//! Shutdown loses nothing the consumer has taken: the engine's memory queue is at-most-once, so
//! an event received and then dropped would be gone for good.

mod common;

use chat_consumer::serve::Stopped;
use common::{start, WAIT};
use serde_json::json;

#[tokio::test]
async fn every_event_received_before_shutdown_is_answered() -> anyhow::Result<()> {
    let setup = start(1, &[]).await?;
    let node = setup.engine.nodes()[0].id.clone();
    let producer = setup.engine.producer(&node).expect("node 0 exists");
    let clients: Vec<_> = (0..40).map(|_| producer.register_client(None)).collect();
    let mut first = producer
        .receiver(clients[0])
        .expect("client 0 is registered");
    let ping =
        json!({"event":"message","uid":null,"frame":{"type":"text","data":"{\"op\":\"ping\"}"}});
    for round in 0..10 {
        for client in &clients {
            assert!(
                producer.push_wait("chat", *client, ping.clone()).await,
                "round {round}"
            );
        }
    }
    // Once one answer arrived the consumer is mid-stream; stop it there.
    tokio::time::timeout(WAIT, first.recv()).await?;
    setup.cancel.cancel();
    let stopped = tokio::time::timeout(WAIT, setup.served).await???;
    assert_eq!(stopped, Stopped::Drained);

    let counters = setup.engine.counters();
    assert!(counters.delivered > 0);
    assert_eq!(
        counters.sent, counters.delivered,
        "every ping handed to the consumer gets its pong: {counters:?}"
    );
    setup.engine.shutdown().await;
    Ok(())
}

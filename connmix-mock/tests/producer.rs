//! The synthetic producer's paced pushes, under paused time.

use std::time::Duration;

use connmix_mock::{MockConfig, MockEngine, RateReport};
use connmix_protocol::Payload;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn run_rate_spreads_pushes_over_time_and_counts_refusals() -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig {
        topic_size: 100,
        ..MockConfig::ephemeral()
    })
    .await?;
    let node = engine.node(0).unwrap();
    let producer = engine.producer(&node.id).unwrap();
    let client = producer.register_client(None);

    let started = tokio::time::Instant::now();
    let report = producer
        .run_rate("chat", client, 1_000, 300, |i| json!(i))
        .await;
    let took = started.elapsed();
    assert_eq!(
        report,
        RateReport {
            pushed: 100,
            rejected: 200
        }
    );
    // 300 at 1000/s: 0.3 s of (virtual) time, in 10 ms batches.
    assert!(
        (Duration::from_millis(290)..=Duration::from_millis(310)).contains(&took),
        "{took:?}"
    );
    assert_eq!(engine.counters().queued, 100);
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_subscribed_virtual_connection_receives_what_is_published_on_any_node(
) -> anyhow::Result<()> {
    let engine = MockEngine::start(MockConfig {
        nodes: 2,
        ..MockConfig::ephemeral()
    })
    .await?;
    let (first, second) = (engine.node(0).unwrap(), engine.node(1).unwrap());
    let producer = engine.producer(&first.id).unwrap();
    let member = producer.register_client(Some(1));
    let outsider = producer.register_client(Some(2));
    assert!(producer.subscribe(member, vec!["room_1".into()]));
    assert!(
        !producer.subscribe(connmix_protocol::ClientId(999), vec!["room_1".into()]),
        "an unknown client cannot be subscribed"
    );
    let mut member_inbox = producer.receiver(member).unwrap();
    let mut outsider_inbox = producer.receiver(outsider).unwrap();

    // Published through the other node's HTTP push API: mesh routing reaches the member.
    let url = format!("http://{}/v1/mesh/publish", second.api_addr);
    let body = json!({"c": "room_1", "d": "hello"}).to_string();
    reqwest::Client::new()
        .post(url)
        .body(body)
        .send()
        .await?
        .error_for_status()?;
    assert_eq!(
        member_inbox.recv().await,
        Some(Payload::Text("hello".into()))
    );
    assert!(
        outsider_inbox.try_recv().is_err(),
        "not subscribed, nothing received"
    );
    engine.shutdown().await;
    Ok(())
}

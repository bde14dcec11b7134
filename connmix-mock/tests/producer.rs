//! The synthetic producer's paced pushes, under paused time.

use std::time::Duration;

use connmix_mock::{MockConfig, MockEngine, RateReport};
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

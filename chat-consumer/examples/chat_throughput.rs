//! Chat messages per second through the consumer, on the in-process mock engine.
//!
//! Run with `cargo run --release -p chat-consumer --example chat_throughput -- [messages] [connections] [workers]`.
//!
//! Logged-in virtual connections on two nodes each send `sendtoroom` frames; the consumer
//! publishes every one and acknowledges it. Measured from the first push until the engine has
//! seen as many acknowledgements as messages.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chat_consumer::limits::Limits;
use chat_consumer::service::password::Hasher;
use chat_consumer::service::users;
use chat_consumer::{db, Consumer};
use connmix_client::Client;
use connmix_mock::{MockConfig, MockEngine};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let messages: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50_000);
    let connections: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let workers: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(Limits::default().workers);

    let engine = MockEngine::start(MockConfig {
        nodes: 2,
        topic_size: 100_000,
        ..MockConfig::ephemeral()
    })
    .await?;
    let db = db::connect("sqlite::memory:").await?;
    db::migrate(&db).await?;
    let hasher = Hasher::with_cost(64, 1, 2)?;
    let mut uids = Vec::new();
    for n in 0..connections {
        let user = users::create(&db, &format!("user{n}"), "u@example.com", "x".into()).await?;
        uids.push(u64::try_from(user.id)?);
    }
    let consumer = Consumer {
        limits: Limits {
            messages_per_second: 1e9,
            message_burst: u32::MAX,
            workers,
            ..Limits::default()
        },
        ..Consumer::new(Client::builder(engine.center_host()), db, hasher)
    };
    let cancel = CancellationToken::new();
    let served = tokio::spawn(chat_consumer::run(consumer, cancel.clone()));
    engine.wait_for_consumers("chat", 2).await;

    let nodes = engine.nodes();
    let mut senders = Vec::new();
    for (n, uid) in uids.iter().enumerate() {
        let node = &nodes[n % nodes.len()];
        let producer = engine.producer(&node.id).context("node vanished")?;
        let client = producer.register_client(Some(*uid));
        senders.push((producer, client, *uid));
    }

    let started = Instant::now();
    let frame = r#"{"op":"sendtoroom","args":["room_1","hello,world!"]}"#;
    for i in 0..messages {
        let (producer, client, uid) = &senders[(i % connections) as usize];
        let value = json!({"event":"message","uid":uid,"frame":{"type":"text","data":frame}});
        producer.push_wait("chat", *client, value).await;
    }
    // A benchmark may poll: nothing here is a test's synchronisation.
    while engine.counters().sent < messages {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let counters = engine.counters();
    println!(
        "{messages} messages from {connections} connections, {workers} workers, in {elapsed:.2?}: {:.0} msg/s (published {}, acknowledged {})",
        messages as f64 / elapsed.as_secs_f64(),
        counters.published,
        counters.sent
    );
    cancel.cancel();
    served.await??;
    engine.shutdown().await;
    Ok(())
}

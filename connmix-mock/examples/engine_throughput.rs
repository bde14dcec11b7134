//! Measures how fast one node moves queued messages to a consumer and sends back to clients.
//!
//! Run with `cargo run --release -p connmix-mock --example engine_throughput -- 200000`.

use std::time::Instant;

use anyhow::Context;
use connmix_mock::{MockConfig, MockEngine};
use connmix_protocol::{Call, Dialect, EngineFrame, Event, Request};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: u64 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let engine = MockEngine::start(MockConfig::ephemeral()).await?;
    let node = engine.node(0).context("one node")?;
    let producer = engine.producer(&node.id).context("producer")?;
    let client = producer.register_client(Some(1));

    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/v1", node.api_addr)).await?;
    let pop = Request::new(
        1,
        Call::QueuePop {
            topics: vec!["chat".into()],
        },
    );
    socket
        .send(Message::text(pop.encode(Dialect::Current)))
        .await?;
    engine.wait_for_consumers("chat", 1).await;

    let started = Instant::now();
    let feeder = tokio::spawn(async move {
        for i in 0..total {
            producer.push_wait("chat", client, json!({ "n": i })).await;
        }
    });
    let (mut events, mut replies, mut next_id) = (0, 0, 2);
    // Done when every message was taken and every answer acknowledged by the engine.
    while events < total || replies < total {
        let Some(frame) = socket.next().await else {
            break;
        };
        let Message::Text(text) = frame? else {
            continue;
        };
        let frame = EngineFrame::decode(text.as_str())?;
        if let EngineFrame::Reply(reply) = &frame {
            if reply.id.is_some_and(|id| id >= 2) {
                replies += 1;
            }
        }
        if let EngineFrame::Event(Event::QueuePop(msg)) = frame {
            events += 1;
            // Answer every message, as a chat consumer does.
            let send = Call::MeshSend {
                client: msg.client,
                data: "ok".into(),
            };
            socket
                .send(Message::text(
                    Request::new(next_id, send).encode(Dialect::Current),
                ))
                .await?;
            next_id += 1;
        }
    }
    feeder.await?;
    let elapsed = started.elapsed();
    println!(
        "{events} events consumed and {replies} answers acknowledged in {elapsed:.2?}: {:.0}/s; {:?}",
        events as f64 / elapsed.as_secs_f64(),
        engine.counters()
    );
    engine.shutdown().await;
    Ok(())
}

//! What the engine refuses from browsers: frames over its WebSocket module's 65,535-byte cap.

mod common;

use common::{event_name, frame_text, Consumer};
use connmix_mock::browser::Browser;
use connmix_mock::{MockConfig, MockEngine};

#[tokio::test]
async fn a_frame_over_the_cap_disconnects_only_its_browser_and_queues_nothing() -> anyhow::Result<()>
{
    let engine = MockEngine::start(MockConfig::ephemeral()).await?;
    let node = engine.node(0).unwrap();
    let mut consumer = Consumer::popping(node.api_addr, "chat").await?;
    let mut abuser = Browser::connect(node.chat_addr).await?;
    let mut neighbour = Browser::connect(node.chat_addr).await?;
    for _ in 0..2 {
        assert_eq!(
            event_name(&consumer.next_message().await?).as_deref(),
            Some("handshake")
        );
    }

    // Exactly the cap still passes; one byte more ends that connection.
    let at_cap = format!(r#"{{"t":"{}"}}"#, "x".repeat(65_535 - 8));
    assert_eq!(at_cap.len(), 65_535);
    abuser.send(&at_cap).await?;
    let queued = consumer.next_message().await?;
    assert_eq!(frame_text(&queued).map(|t| t.len()), Some(65_535));
    let over = format!(r#"{{"t":"{}"}}"#, "\"".repeat(65_535));
    abuser.send(&over).await?;
    abuser.closed().await?;
    assert_eq!(
        event_name(&consumer.next_message().await?).as_deref(),
        Some("close"),
        "the abuser's close is queued, not its frame"
    );

    neighbour.send(r#"{"op":"ping"}"#).await?;
    let next = consumer.next_message().await?;
    assert_eq!(frame_text(&next).as_deref(), Some(r#"{"op":"ping"}"#));
    engine.shutdown().await;
    Ok(())
}

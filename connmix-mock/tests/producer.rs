//! The synthetic producer: virtual connections that receive what is published to them.

use connmix_mock::{MockConfig, MockEngine};
use connmix_protocol::Payload;
use serde_json::json;

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

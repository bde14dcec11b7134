//! The chat port serves the browser chat page at `/`, pointing at the configured chat path.

mod common;

use connmix_mock::{MockConfig, MockEngine};

async fn page(config: MockConfig) -> anyhow::Result<(reqwest::StatusCode, String, String)> {
    let engine = MockEngine::start(config).await?;
    let node = engine.node(0).expect("one node");
    let response = common::http()
        .get(format!("http://{}/", node.chat_addr))
        .send()
        .await?;
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await?;
    engine.shutdown().await;
    Ok((status, kind, body))
}

#[tokio::test]
async fn chat_port_serves_the_page_that_opens_the_chat_socket() -> anyhow::Result<()> {
    let (status, kind, body) = page(MockConfig::ephemeral()).await?;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains(r#"<meta name="chat-path" content="/chat">"#));
    assert!(body.contains(r#"id="login-form""#));
    Ok(())
}

#[tokio::test]
async fn page_follows_a_configured_chat_path() -> anyhow::Result<()> {
    let config = MockConfig {
        chat_path: "/talk".into(),
        ..MockConfig::ephemeral()
    };
    let (_, _, body) = page(config).await?;
    assert!(body.contains(r#"<meta name="chat-path" content="/talk">"#));
    Ok(())
}

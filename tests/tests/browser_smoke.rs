//! The browser itself works here: a page served from a loopback port renders and runs script.
//! The chat walkthrough in a browser lives in `browser_chat.rs`.

use connmix_e2e::browser::Chromedriver;
use fantoccini::Locator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn headless_chromium_runs_a_local_page() -> anyhow::Result<()> {
    if let Some(why) = Chromedriver::unavailable() {
        connmix_e2e::skip("headless_chromium_runs_a_local_page", &why);
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let _ = socket.read(&mut buf).await;
            let body = "<!doctype html><p id=out></p><script>out.textContent = 6 * 7</script>";
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    let mut driver = Chromedriver::start().await?;
    let page = driver.session().await?;
    page.goto(&format!("http://{addr}/")).await?;
    let text = page.find(Locator::Id("out")).await?.text().await?;
    page.close().await?;
    assert_eq!(text, "42");
    Ok(())
}

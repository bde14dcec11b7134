//! The newcomer's first experience, in real browsers: two Chromium windows open the chat page
//! of two engine nodes, log in as two users, join a room, and one sees what the other sends.
//! Screenshots land in `target/e2e-screenshots/`.

use std::time::Duration;

use anyhow::Context as _;
use chat_consumer::service::password::Hasher;
use chat_consumer::service::users;
use chat_consumer::Consumer;
use connmix_client::Client;
use connmix_e2e::browser::{screenshot_dir, Chromedriver};
use connmix_mock::{MockConfig, MockEngine, ScriptConfig};
use fantoccini::{Client as Page, Locator};
use tokio_util::sync::CancellationToken;

/// Bound on every wait for the page; nothing here should take more than a fraction of it.
const WAIT: Duration = Duration::from_secs(20);

async fn login(page: &Page, url: &str, name: &str) -> anyhow::Result<()> {
    page.goto(url).await?;
    page.find(Locator::Id("login-name"))
        .await?
        .send_keys(name)
        .await?;
    page.find(Locator::Id("login-password"))
        .await?
        .send_keys("123456")
        .await?;
    page.find(Locator::Id("login-button"))
        .await?
        .click()
        .await?;
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#chat:not([hidden])"))
        .await
        .with_context(|| format!("{name} never got past the login form"))?;
    Ok(())
}

async fn join(page: &Page, room: &str) -> anyhow::Result<()> {
    page.find(Locator::Id("join-input"))
        .await?
        .send_keys(room)
        .await?;
    page.find(Locator::Id("join-button")).await?.click().await?;
    let selected = format!(r#"button.channel[data-channel="room_{room}"][aria-current="true"]"#);
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&selected))
        .await
        .with_context(|| format!("room {room} never became the current channel"))?;
    Ok(())
}

/// The lines of the message list, as the user reads them, once one contains `needle`.
async fn wait_for_line(page: &Page, needle: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for line in page.find_all(Locator::Css("#messages li")).await? {
            let text = line.text().await?;
            if text.contains(needle) {
                return Ok(text);
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no message containing {needle:?} appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Selects the logged-in user's own direct-message channel.
async fn open_direct(page: &Page) -> anyhow::Result<()> {
    page.find(Locator::Css(r#"button.channel[data-channel^="user_"]"#))
        .await?
        .click()
        .await?;
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#to-field:not([hidden])"))
        .await
        .context("the recipient field never appeared")?;
    Ok(())
}

/// Sends `text` from the direct-message channel to the user `to` (a name or an id).
async fn send_direct(page: &Page, to: &str, text: &str) -> anyhow::Result<()> {
    let field = page.find(Locator::Id("to-input")).await?;
    field.clear().await?;
    field.send_keys(to).await?;
    page.find(Locator::Id("message-input"))
        .await?
        .send_keys(text)
        .await?;
    page.find(Locator::Id("send-button")).await?.click().await?;
    Ok(())
}

async fn screenshot(page: &Page, name: &str) -> anyhow::Result<()> {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), page.screenshot().await?)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_on_two_nodes_chat_in_a_room() -> anyhow::Result<()> {
    room_chat("two_browsers_on_two_nodes_chat_in_a_room", None, "chat").await
}

/// The same on `examples/engine/entry.lua` in the mock's Lua host: what
/// `chat-consumer dev --script examples/engine/entry.lua` starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_chat_in_a_room_through_entry_lua() -> anyhow::Result<()> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/engine/entry.lua");
    let script = Some(ScriptConfig::new(script));
    room_chat(
        "two_browsers_chat_in_a_room_through_entry_lua",
        script,
        "script-chat",
    )
    .await
}

async fn room_chat(test: &str, script: Option<ScriptConfig>, shots: &str) -> anyhow::Result<()> {
    if let Some(why) = Chromedriver::unavailable() {
        connmix_e2e::skip(test, &why);
        return Ok(());
    }
    // The engine, a database with the two demo users, and the consumer: what `dev` starts.
    let engine = MockEngine::start(MockConfig {
        nodes: 2,
        script,
        ..MockConfig::ephemeral()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("chat.db").display());
    let db = chat_consumer::db::connect(&url).await?;
    chat_consumer::db::migrate(&db).await?;
    let hasher = Hasher::new(2);
    for name in ["user1", "user2"] {
        users::ensure(&db, &hasher, name, &format!("{name}@example.com"), "123456").await?;
    }
    let consumer = Consumer::new(Client::builder(engine.center_host()), db, hasher);
    let cancel = CancellationToken::new();
    let served = tokio::spawn(chat_consumer::run(consumer, cancel.clone()));

    let nodes = engine.nodes();
    let mut driver = Chromedriver::start().await?;
    let one = driver.session().await?;
    let two = driver.session().await?;
    login(&one, &format!("http://{}/", nodes[0].chat_addr), "user1").await?;
    login(&two, &format!("http://{}/", nodes[1].chat_addr), "user2").await?;
    let who = two.find(Locator::Id("whoami")).await?.text().await?;
    assert!(who.starts_with("user2"), "{who}");
    join(&one, "101").await?;
    join(&two, "101").await?;

    // Quotes and markup are text, not JSON or HTML.
    let text = r#"hello from "one" <b>not bold</b>"#;
    one.find(Locator::Id("message-input"))
        .await?
        .send_keys(text)
        .await?;
    one.find(Locator::Id("send-button")).await?.click().await?;

    let seen = wait_for_line(&two, text).await?;
    assert!(seen.contains("user1"), "the sender's name is shown: {seen}");
    let bold = two.find_all(Locator::Css("#messages b")).await?;
    assert!(bold.is_empty(), "message text must not become markup");
    // The sender sees its own room message too, delivered through the engine, marked as its.
    let own = wait_for_line(&one, text).await?;
    assert!(own.contains("user1 (you)"), "{own}");
    // The composer counts bytes against the server's limit: 1,400 euro signs are 4,200.
    let input = one.find(Locator::Id("message-input")).await?;
    input.send_keys(&"€".repeat(1400)).await?;
    let counter = one.find(Locator::Id("byte-count")).await?.text().await?;
    assert_eq!(counter, "4200 / 4096 bytes");
    let send = one.find(Locator::Id("send-button")).await?;
    assert!(
        !send.is_enabled().await?,
        "an oversized message cannot be sent"
    );
    input.clear().await?;
    input.send_keys("x").await?;
    assert!(send.is_enabled().await?, "a short message can");
    input.clear().await?;

    // A direct message by name: user2 reads it on its own channel.
    open_direct(&one).await?;
    send_direct(&one, "user2", "psst, by name").await?;
    open_direct(&two).await?;
    let seen = wait_for_line(&two, "psst, by name").await?;
    assert!(seen.contains("user1"), "the sender's name is shown: {seen}");
    // A note to oneself shows once: the second note arrives after the first one's delivery
    // would have, on the same channel.
    send_direct(&one, "user1", "note to self 1").await?;
    send_direct(&one, "user1", "note to self 2").await?;
    wait_for_line(&one, "note to self 2").await?;
    let mut shown = 0;
    for line in one.find_all(Locator::Css("#messages li")).await? {
        if line.text().await?.contains("note to self 1") {
            shown += 1;
        }
    }
    assert_eq!(shown, 1, "a message to oneself is shown once");

    // Offline: a banner counts down to the next attempt and the composer is off; "Retry now"
    // reconnects once the node is back, and the page logs in again.
    engine.kill_node(&nodes[1].id).await;
    two.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#offline:not([hidden])"))
        .await
        .context("no offline banner")?;
    let banner = two.find(Locator::Id("offline-text")).await?.text().await?;
    assert!(banner.contains("Retrying in"), "{banner}");
    let input = two.find(Locator::Id("message-input")).await?;
    assert!(
        !input.is_enabled().await?,
        "the composer is off while offline"
    );
    screenshot(&two, &format!("{shots}-user2-offline.png")).await?;
    engine.restart_node(&nodes[1].id).await?;
    two.find(Locator::Id("retry-now")).await?.click().await?;
    two.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(r#"#status[data-state="online"]"#))
        .await
        .context("not online again after Retry now")?;
    assert!(input.is_enabled().await?, "the composer is back");
    let who = two.find(Locator::Id("whoami")).await?.text().await?;
    assert!(who.starts_with("user2"), "logged in again: {who}");

    screenshot(&one, &format!("{shots}-user1.png")).await?;
    screenshot(&two, &format!("{shots}-user2.png")).await?;
    one.close().await?;
    two.close().await?;
    cancel.cancel();
    served.await??;
    engine.shutdown().await;
    Ok(())
}

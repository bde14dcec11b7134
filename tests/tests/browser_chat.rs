//! The newcomer's first experience, in real browsers: two Chromium windows open the chat page
//! of two engine nodes, log in as two users, join a room, and one sees what the other sends:
//! what was said before they came (history), who is there (presence), who comes and goes, and
//! a reload that keeps the login. Screenshots land in `target/e2e-screenshots/`.

use anyhow::Context as _;
use chat_consumer::service::password::Hasher;
use chat_consumer::service::users;
use chat_consumer::Consumer;
use connmix_client::Client;
use connmix_e2e::browser::Chromedriver;
use connmix_mock::{MockConfig, MockEngine, ScriptConfig};
use fantoccini::{Client as Page, Locator};
use tokio_util::sync::CancellationToken;

mod chat_page;

use chat_page::{
    click_in_list, count_lines, join, login, open_channel, open_direct, screenshot, send_direct,
    send_text, session_storage, texts, wait_for_count, wait_for_history, wait_for_line,
    wait_for_users, WAIT,
};

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
    wait_for_users(&one, &["user1 (you)"]).await?;
    late_joiner_reads_history(&one, &two).await?;

    // Quotes and markup are text, not JSON or HTML.
    let text = r#"hello from "one" <b>not bold</b>"#;
    send_text(&one, text).await?;

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

    // A click on a name in the user list writes to that user, by name.
    click_in_list(&two, "#user-list .user:not(.me)").await?;
    two.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#to-field:not([hidden])"))
        .await
        .context("a click on a user did not open direct messages")?;
    let to = two
        .find(Locator::Id("to-input"))
        .await?
        .prop("value")
        .await?;
    assert_eq!(to.as_deref(), Some("user1"));

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
    let shown = count_lines(&one, "note to self 1").await?;
    assert_eq!(shown, 1, "a message to oneself is shown once");
    reload_keeps_the_login(&one, text, shots).await?;

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
    // "Retry now", unless the page's own next attempt came first and took the banner away.
    if let Err(err) = two.find(Locator::Id("retry-now")).await?.click().await {
        let banner = two.find(Locator::Id("offline")).await?;
        anyhow::ensure!(!banner.is_displayed().await?, "Retry now: {err}");
    }
    two.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(r#"#status[data-state="online"]"#))
        .await
        .context("not online again after Retry now")?;
    assert!(input.is_enabled().await?, "the composer is back");
    let who = two.find(Locator::Id("whoami")).await?.text().await?;
    assert!(who.starts_with("user2"), "logged in again: {who}");
    // History again after the reconnect: what was already shown is not shown twice.
    open_channel(&two, "room_101").await?;
    wait_for_history(&two).await?;
    assert_eq!(
        count_lines(&two, text).await?,
        1,
        "no doubles after history"
    );
    assert_eq!(count_lines(&two, "said before user2 came").await?, 1);
    wait_for_users(&two, &["user1", "user2 (you)"]).await?;

    screenshot(&one, &format!("{shots}-user1.png")).await?;
    screenshot(&two, &format!("{shots}-user2.png")).await?;
    closing_a_window_leaves_the_room(one, &two, shots).await?;
    logout_and_a_refused_token(&two, shots).await?;
    two.close().await?;

    cancel.cancel();
    served.await??;
    engine.shutdown().await;
    Ok(())
}

/// `one` is in room 101 alone: it says two things, then `two` joins and reads them, oldest
/// first, once; then each sees the other in the user list, and `one` sees `two` come in.
async fn late_joiner_reads_history(one: &Page, two: &Page) -> anyhow::Result<()> {
    send_text(one, "said before user2 came").await?;
    wait_for_line(one, "said before user2 came").await?;
    send_text(one, "and then this").await?;
    wait_for_line(one, "and then this").await?;
    join(two, "101").await?;
    let early = wait_for_line(two, "said before user2 came").await?;
    assert!(
        early.contains("user1"),
        "the sender's name is shown: {early}"
    );
    wait_for_line(two, "and then this").await?;
    wait_for_history(two).await?;
    let texts = texts(two, "#messages li").await?;
    let first = texts
        .iter()
        .position(|t| t.contains("said before user2 came"));
    let then = texts.iter().position(|t| t.contains("and then this"));
    assert!(first.is_some() && first < then, "oldest first: {texts:?}");
    assert_eq!(count_lines(two, "said before user2 came").await?, 1);

    // Both see who is in the room; the one who was there sees the other come in.
    wait_for_users(two, &["user1", "user2 (you)"]).await?;
    wait_for_users(one, &["user1 (you)", "user2"]).await?;
    wait_for_line(one, "user2 joined").await?;
    Ok(())
}

/// A reload keeps the login (a session token in sessionStorage, never the password), the
/// rooms and the channel on screen, whose history comes back; `text` was said in room 101.
async fn reload_keeps_the_login(one: &Page, text: &str, shots: &str) -> anyhow::Result<()> {
    one.refresh().await?;
    one.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#chat:not([hidden])"))
        .await
        .context("user1 was not logged in again after a reload")?;
    let who = one.find(Locator::Id("whoami")).await?.text().await?;
    assert!(who.starts_with("user1"), "{who}");
    assert!(
        !one.find(Locator::Id("login")).await?.is_displayed().await?,
        "no login form after a reload"
    );
    let stored = session_storage(one).await?;
    assert!(stored.contains("token"), "the token is kept: {stored}");
    assert!(!stored.contains("123456"), "the password is not: {stored}");
    one.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(
            r#"button.channel[data-channel^="user_"][aria-current="true"]"#,
        ))
        .await
        .context("the direct-message channel is not on screen again after a reload")?;
    wait_for_history(one).await?;
    wait_for_count(one, "note to self 2", 1).await?;
    open_channel(one, "room_101").await?;
    wait_for_history(one).await?;
    wait_for_count(one, text, 1).await?;
    wait_for_users(one, &["user1 (you)", "user2"]).await?;
    screenshot(one, &format!("{shots}-user1-reloaded.png")).await?;
    Ok(())
}

/// `one` closes its window: `two`, in room 101, sees it leave. Then `two` at a phone's width.
async fn closing_a_window_leaves_the_room(
    one: Page,
    two: &Page,
    shots: &str,
) -> anyhow::Result<()> {
    let left = count_lines(two, "user1 left").await?;
    one.close().await?;
    wait_for_count(two, "user1 left", left + 1).await?;
    wait_for_users(two, &["user2 (you)"]).await?;
    screenshot(two, &format!("{shots}-user2-left.png")).await?;
    // A phone's width: one column, nothing wider than the screen.
    two.set_window_size(390, 844).await?;
    let fits = two
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await?;
    assert_eq!(fits, serde_json::Value::Bool(true), "the page fits 390 px");
    screenshot(two, &format!("{shots}-user2-narrow.png")).await?;
    Ok(())
}

/// Logging out forgets the session token; a token the server refuses (expired, forged,
/// revoked) is dropped on load and the login form comes back, saying why.
async fn logout_and_a_refused_token(page: &Page, shots: &str) -> anyhow::Result<()> {
    page.find(Locator::Id("logout")).await?.click().await?;
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login:not([hidden])"))
        .await
        .context("no login form after logging out")?;
    let stored = session_storage(page).await?;
    assert!(
        !stored.contains("token"),
        "logging out forgets the token: {stored}"
    );

    let forge = "sessionStorage.setItem('connmix-chat.token', '2.4102444800.forged');";
    page.execute(forge, vec![]).await?;
    page.refresh().await?;
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login:not([hidden])"))
        .await
        .context("a refused token did not bring the login form back")?;
    let stored = session_storage(page).await?;
    assert!(
        !stored.contains("token"),
        "a refused token is dropped: {stored}"
    );
    let notices = texts(page, "#notices .notice").await?;
    assert!(
        notices.iter().any(|n| n.contains("log in again")),
        "the page says why: {notices:?}"
    );
    screenshot(page, &format!("{shots}-user2-session-refused.png")).await?;
    Ok(())
}

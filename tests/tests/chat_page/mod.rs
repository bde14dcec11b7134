//! Driving the chat page as its user would: log in, join, send, and read what it shows.

use std::time::Duration;

use anyhow::Context as _;
use connmix_e2e::browser::screenshot_dir;
use fantoccini::{Client as Page, Locator};

/// Bound on every wait for the page; nothing here should take more than a fraction of it.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// Opens the page at `url` and logs in as `name` with the demo password, through the form.
pub(crate) async fn login(page: &Page, url: &str, name: &str) -> anyhow::Result<()> {
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

/// Joins room `room` through the form and waits until it is the channel on screen.
pub(crate) async fn join(page: &Page, room: &str) -> anyhow::Result<()> {
    page.find(Locator::Id("join-input"))
        .await?
        .send_keys(room)
        .await?;
    page.find(Locator::Id("join-button")).await?.click().await?;
    wait_current(page, &format!("room_{room}")).await
}

/// Waits until `channel` is the channel on screen.
async fn wait_current(page: &Page, channel: &str) -> anyhow::Result<()> {
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!(
            r#"button.channel[data-channel="{channel}"][aria-current="true"]"#
        )))
        .await
        .with_context(|| format!("{channel} never became the current channel"))?;
    Ok(())
}

/// The text of every element that `css` selects, read at one instant: the page redraws its
/// lists whole, so elements found one call earlier may be gone by the next.
pub(crate) async fn texts(page: &Page, css: &str) -> anyhow::Result<Vec<String>> {
    let read = "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText);";
    let found = page.execute(read, vec![serde_json::json!(css)]).await?;
    Ok(serde_json::from_value(found)?)
}

/// The lines of the message list, as the user reads them, once one contains `needle`.
pub(crate) async fn wait_for_line(page: &Page, needle: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(line) = texts(page, "#messages li")
            .await?
            .into_iter()
            .find(|t| t.contains(needle))
        {
            return Ok(line);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no message containing {needle:?} appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many lines of the message list contain `needle`.
pub(crate) async fn count_lines(page: &Page, needle: &str) -> anyhow::Result<usize> {
    let lines = texts(page, "#messages li").await?;
    Ok(lines.iter().filter(|t| t.contains(needle)).count())
}

/// Waits until `count` lines contain `needle`.
pub(crate) async fn wait_for_count(page: &Page, needle: &str, count: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let shown = count_lines(page, needle).await?;
        if shown == count {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{shown} lines containing {needle:?}, not {count}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the message list has whatever history it asked for (the page marks it busy
/// until then).
pub(crate) async fn wait_for_history(page: &Page) -> anyhow::Result<()> {
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(r#"#messages[aria-busy="false"]"#))
        .await
        .context("the channel's history never arrived")?;
    Ok(())
}

/// The room's user list as shown, once it is exactly `want` (in any order).
pub(crate) async fn wait_for_users(page: &Page, want: &[&str]) -> anyhow::Result<()> {
    let mut want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut shown = texts(page, "#user-list .user").await?;
        shown.sort();
        if shown == want {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the user list shows {shown:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `css` selects in a list the page redraws whole (channels, users): an
/// element found just before a redraw is stale by the click, so it is found again.
pub(crate) async fn click_in_list(page: &Page, css: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let clicked = match page.find(Locator::Css(css)).await {
            Ok(element) => element.click().await.map(drop),
            Err(err) => Err(err),
        };
        match clicked {
            Ok(()) => return Ok(()),
            Err(err) if tokio::time::Instant::now() >= deadline => {
                return Err(err).with_context(|| format!("clicking {css}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Makes `channel` the one on screen.
pub(crate) async fn open_channel(page: &Page, channel: &str) -> anyhow::Result<()> {
    click_in_list(
        page,
        &format!(r#"button.channel[data-channel="{channel}"]"#),
    )
    .await?;
    wait_current(page, channel).await
}

/// Sends `text` to the channel on screen.
pub(crate) async fn send_text(page: &Page, text: &str) -> anyhow::Result<()> {
    page.find(Locator::Id("message-input"))
        .await?
        .send_keys(text)
        .await?;
    page.find(Locator::Id("send-button")).await?.click().await?;
    Ok(())
}

/// Selects the logged-in user's own direct-message channel.
pub(crate) async fn open_direct(page: &Page) -> anyhow::Result<()> {
    click_in_list(page, r#"button.channel[data-channel^="user_"]"#).await?;
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#to-field:not([hidden])"))
        .await
        .context("the recipient field never appeared")?;
    Ok(())
}

/// Sends `text` from the direct-message channel to the user `to` (a name or an id).
pub(crate) async fn send_direct(page: &Page, to: &str, text: &str) -> anyhow::Result<()> {
    let field = page.find(Locator::Id("to-input")).await?;
    field.clear().await?;
    field.send_keys(to).await?;
    send_text(page, text).await
}

/// Saves what the window shows as `target/e2e-screenshots/<name>`.
pub(crate) async fn screenshot(page: &Page, name: &str) -> anyhow::Result<()> {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), page.screenshot().await?)?;
    Ok(())
}

/// What the page keeps in sessionStorage, as JSON text.
pub(crate) async fn session_storage(page: &Page) -> anyhow::Result<String> {
    let read = "return JSON.stringify(Object.entries(sessionStorage));";
    let stored = page.execute(read, vec![]).await?;
    Ok(stored.as_str().unwrap_or_default().to_owned())
}

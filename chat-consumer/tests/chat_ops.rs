//! Every chat op end to end on every supported database: browsers on two mock engine nodes,
//! this consumer, and SQLite always; MariaDB and PostgreSQL when `CONNMIX_TEST_MYSQL_URL` /
//! `CONNMIX_TEST_POSTGRES_URL` name a server. Names (users, rooms) are unique to the run, so
//! runs sharing a server do not see each other's rows.

mod common;

use std::time::Duration;

use chat_consumer::service::password::Hasher;
use chat_consumer::service::users;
use common::{server_url, start_on, unique, Mode, WAIT};
use connmix_mock::browser::Browser;
use connmix_protocol::chat::ChatRequest;
use serde_json::{json, Value};

async fn request(browser: &mut Browser, request: ChatRequest) -> anyhow::Result<Value> {
    browser.send_request(&request).await?;
    common::recv_chat(browser).await
}

async fn log_in(browser: &mut Browser, name: &str) -> anyhow::Result<Value> {
    let login = ChatRequest::Auth {
        name: name.into(),
        password: "123456".into(),
    };
    request(browser, login).await
}

/// The next frame, which must be `event` (join or leave) of `from` in `room`.
async fn expect_event(
    browser: &mut Browser,
    event: &str,
    from: &str,
    room: &str,
) -> anyhow::Result<()> {
    let frame = tokio::time::timeout(WAIT, browser.recv_json()).await??;
    anyhow::ensure!(
        frame["event"] == event && frame["from"] == from && frame["channel"] == room,
        "expected {event} of {from} in {room}, got {frame}"
    );
    Ok(())
}

/// Asks `history` until it holds `count` messages (storing is off the reply path).
async fn history_of(browser: &mut Browser, channel: &str, count: usize) -> anyhow::Result<Value> {
    let polled = tokio::time::timeout(WAIT, async {
        loop {
            let ask = ChatRequest::History {
                channel: channel.into(),
                count: None,
            };
            let answer = request(browser, ask).await?;
            if answer["messages"].as_array().map(Vec::len) == Some(count) {
                return anyhow::Ok(answer);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    polled.await?
}

async fn every_op(url: &str) -> anyhow::Result<()> {
    let (a, b) = (unique("a"), unique("b"));
    let room = unique("room");
    let setup = start_on(url, Mode::BuiltIn, 2, &[(&a, "123456"), (&b, "123456")]).await?;
    let nodes = setup.engine.nodes();
    let mut one = Browser::connect(nodes[0].chat_addr).await?;
    let mut two = Browser::connect(nodes[1].chat_addr).await?;

    // Logins hand out session tokens.
    let welcome = log_in(&mut one, &a).await?;
    let token = welcome["token"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!token.is_empty(), "no token: {welcome}");
    let a_uid = welcome["uid"].as_u64().unwrap_or_default();
    assert_eq!(log_in(&mut two, &b).await?["success"], true);

    // Joining: each user's first connection is announced in the room.
    let subscribe = |channel: &str| ChatRequest::Subscribe {
        channels: vec![channel.to_owned()],
    };
    let ok = |op: &str| json!({"op": op, "success": true});
    assert_eq!(request(&mut one, subscribe(&room)).await?, ok("subscribe"));
    expect_event(&mut one, "join", &a, &room).await?;
    assert_eq!(request(&mut two, subscribe(&room)).await?, ok("subscribe"));
    expect_event(&mut one, "join", &b, &room).await?;
    expect_event(&mut two, "join", &b, &room).await?;

    // Presence: both, each once, by name.
    let who = request(
        &mut two,
        ChatRequest::Presence {
            channel: room.clone(),
        },
    )
    .await?;
    let mut names: Vec<&str> = who["users"]
        .as_array()
        .map(|users| users.iter().filter_map(|u| u["name"].as_str()).collect())
        .unwrap_or_default();
    names.sort_unstable();
    assert_eq!(names, [a.as_str(), b.as_str()], "{who}");

    // A room message, then a direct message by name.
    let said = ChatRequest::SendToRoom {
        room: room.clone(),
        text: "hello \"room\" 😀".into(),
    };
    one.send_request(&said).await?;
    let mut got = [one.recv_json().await?, one.recv_json().await?];
    got.sort_by_key(|v| v.get("op").is_some());
    assert_eq!(got[1], ok("sendtoroom"));
    assert_eq!(two.recv_json().await?["text"], "hello \"room\" 😀");
    let dm = ChatRequest::SendToUser {
        user: format!("user_name:{a}"),
        text: "psst".into(),
    };
    assert_eq!(request(&mut two, dm).await?, ok("sendtouser"));

    // A reload: a new connection logs in with the token, reads the room's history and its
    // own channel's.
    let mut reloaded = Browser::connect(nodes[1].chat_addr).await?;
    let again = request(
        &mut reloaded,
        ChatRequest::AuthToken {
            token: token.clone(),
        },
    )
    .await?;
    assert_eq!(
        (&again["success"], &again["name"]),
        (&json!(true), &json!(a))
    );
    let history = history_of(&mut reloaded, &room, 1).await?;
    assert_eq!(history["messages"][0]["text"], "hello \"room\" 😀");
    assert_eq!(history["messages"][0]["from"], a.as_str());
    let own = history_of(&mut reloaded, &format!("user_{a_uid}"), 1).await?;
    assert_eq!(own["messages"][0]["text"], "psst");
    assert_eq!(own["messages"][0]["from"], b.as_str());

    // Leaving: b closes, a unsubscribes; the room is empty.
    drop(two);
    expect_event(&mut one, "leave", &b, &room).await?;
    let unsubscribe = ChatRequest::Unsubscribe {
        channels: vec![room.clone()],
    };
    assert_eq!(request(&mut one, unsubscribe).await?, ok("unsubscribe"));
    let who = request(
        &mut reloaded,
        ChatRequest::Presence {
            channel: room.clone(),
        },
    )
    .await?;
    assert_eq!(who["users"], json!([]), "{who}");

    // A new password ends the sessions.
    let hash = Hasher::with_cost(64, 1, 2)?.hash("new-password").await?;
    users::set_password(&setup.db, &a, hash).await?;
    let mut third = Browser::connect(nodes[0].chat_addr).await?;
    let refused = request(&mut third, ChatRequest::AuthToken { token }).await?;
    assert_eq!(
        refused,
        json!({"op":"auth","error":"Session expired, please log in again"})
    );
    // The engine's wait was released: the connection goes on.
    assert_eq!(
        request(&mut third, ChatRequest::Ping).await?,
        json!({"op":"pong"})
    );

    setup.cancel.cancel();
    tokio::time::timeout(WAIT, setup.served).await???;
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn every_op_on_sqlite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("chat.db").display());
    every_op(&url).await
}

#[tokio::test]
async fn every_op_on_mariadb() -> anyhow::Result<()> {
    let Some(url) = server_url("CONNMIX_TEST_MYSQL_URL") else {
        return Ok(());
    };
    every_op(&url).await
}

#[tokio::test]
async fn every_op_on_postgres() -> anyhow::Result<()> {
    let Some(url) = server_url("CONNMIX_TEST_POSTGRES_URL") else {
        return Ok(());
    };
    every_op(&url).await
}

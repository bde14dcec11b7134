//! The tutorial's two-browser walkthrough, end to end: mock engine with two nodes, the real
//! engine client, this consumer, browsers over WebSockets.

mod common;

use std::time::Duration;

use chat_consumer::service::password::Hasher;
use chat_consumer::service::users;
use chat_consumer::ErrorKind;
use chat_consumer::{Consumer, Stopped};
use common::{start_in, Mode, WAIT};
use connmix_client::Client;
use connmix_mock::browser::Browser;
use connmix_protocol::chat::ChatRequest;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

async fn request(browser: &mut Browser, request: ChatRequest) -> anyhow::Result<Value> {
    browser.send_request(&request).await?;
    common::recv_chat(browser).await
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

both_modes!(two_browsers_on_two_nodes_chat_in_a_room, room_chat);
async fn room_chat(mode: Mode) -> anyhow::Result<()> {
    let setup = start_in(mode, 2, &[("user1", "123456"), ("user2", "123456")]).await?;
    let nodes = setup.engine.nodes();
    let mut one = Browser::connect(nodes[0].chat_addr).await?;
    let mut two = Browser::connect(nodes[1].chat_addr).await?;

    for (browser, name) in [(&mut one, "user1"), (&mut two, "user2")] {
        let login = ChatRequest::Auth {
            name: name.into(),
            password: "123456".into(),
        };
        let welcome = request(browser, login).await?;
        assert_eq!(welcome["op"], "auth");
        assert_eq!(welcome["success"], true);
        assert_eq!(welcome["name"], name, "the reply says who logged in");
        assert!(
            welcome["uid"].as_u64().is_some_and(|uid| uid > 0),
            "{welcome}"
        );
        let join = ChatRequest::Subscribe {
            channels: strings(&["room_101"]),
        };
        assert_eq!(
            request(browser, join).await?,
            json!({"op":"subscribe","success":true})
        );
    }

    // The room hears each user's first join: one (in first) hears both, two itself.
    let mut joined = Vec::new();
    for _ in 0..2 {
        let event = one.recv_json().await?;
        assert_eq!(
            (&event["event"], &event["channel"]),
            (&json!("join"), &json!("room_101")),
            "{event}"
        );
        assert!(event["uid"].as_u64().is_some() && event["time"].as_u64().is_some());
        joined.push(event["from"].as_str().unwrap_or_default().to_owned());
    }
    joined.sort();
    assert_eq!(joined, ["user1", "user2"]);
    loop {
        let event = two.recv_json().await?;
        assert_eq!(event["event"], "join", "{event}");
        if event["from"] == "user2" {
            break;
        }
    }
    // Both are listed in the room, each once, whichever node and consumer saw them join.
    let present = request(
        &mut one,
        ChatRequest::Presence {
            channel: "room_101".into(),
        },
    )
    .await?;
    let names: Vec<&str> = present["users"]
        .as_array()
        .map(|users| users.iter().filter_map(|u| u["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["user1", "user2"], "{present}");

    one.send_request(&ChatRequest::SendToRoom {
        room: "room_101".into(),
        text: "hello,world!".into(),
    })
    .await?;
    // The delivery and the acknowledgement travel different routes; either may come first.
    let mut got = [one.recv_json().await?, one.recv_json().await?];
    got.sort_by_key(|v| v.get("op").is_some());
    let delivered_to_two = two.recv_json().await?;
    for delivery in [&got[0], &delivered_to_two] {
        assert_eq!(delivery["event"], "subscribe");
        assert_eq!(delivery["channel"], "room_101");
        assert_eq!(delivery["data"], "uid:1,message:hello,world!");
        assert_eq!(delivery["from"], "user1");
    }
    assert_eq!(got[1], json!({"op":"sendtoroom","success":true}));

    let user1 = users::find_by_name(&setup.db, "user1").await?.unwrap();
    assert_eq!(user1.online, 1);

    // A late joiner reads the message in the room's history (stored off the reply path, so
    // it may take a moment to be there).
    let mut late = Browser::connect(nodes[1].chat_addr).await?;
    let login = ChatRequest::Auth {
        name: "user2".into(),
        password: "123456".into(),
    };
    let welcome = request(&mut late, login).await?;
    assert!(welcome["token"].as_str().is_some(), "{welcome}");
    let history = tokio::time::timeout(WAIT, async {
        loop {
            let ask = ChatRequest::History {
                channel: "room_101".into(),
                count: None,
            };
            let answer = request(&mut late, ask).await?;
            if answer["messages"].as_array().is_some_and(|m| !m.is_empty()) {
                return anyhow::Ok(answer);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await??;
    assert_eq!(history["op"], "history");
    assert_eq!(history["messages"][0]["text"], "hello,world!");
    assert_eq!(history["messages"][0]["from"], "user1");
    drop(late);

    // Two closes: user2 has no other connection in the room, so one hears they left.
    drop(two);
    let left = tokio::time::timeout(WAIT, one.recv_json()).await??;
    assert_eq!(
        (&left["event"], &left["from"], &left["channel"]),
        (&json!("leave"), &json!("user2"), &json!("room_101")),
        "{left}"
    );

    setup.cancel.cancel();
    let stopped = tokio::time::timeout(WAIT, setup.served).await???;
    assert_eq!(stopped, Stopped::Drained);
    setup.engine.shutdown().await;
    Ok(())
}

both_modes!(a_failed_login_does_not_freeze_the_connection, failed_login);
async fn failed_login(mode: Mode) -> anyhow::Result<()> {
    let setup = start_in(mode, 1, &[("user1", "123456")]).await?;
    let mut browser = Browser::connect(setup.engine.nodes()[0].chat_addr).await?;
    let wrong = ChatRequest::Auth {
        name: "user1".into(),
        password: "wrong".into(),
    };
    assert_eq!(
        request(&mut browser, wrong).await?,
        json!({"op":"auth","error":"Invalid name or password"})
    );
    // The script held this frame until `uid` was set; an answer proves it was released.
    assert_eq!(
        request(&mut browser, ChatRequest::Ping).await?,
        json!({"op":"pong"})
    );
    let join = ChatRequest::Subscribe {
        channels: strings(&["room_101"]),
    };
    assert_eq!(
        request(&mut browser, join).await?,
        json!({"op":"subscribe","error":"No access"})
    );
    setup.cancel.cancel();
    tokio::time::timeout(WAIT, setup.served).await???;
    setup.engine.shutdown().await;
    Ok(())
}

both_modes!(
    a_login_is_answered_before_the_frame_sent_right_after_it,
    login_first
);
async fn login_first(mode: Mode) -> anyhow::Result<()> {
    // Two nodes, so that a reply routed through the other node could overtake.
    let setup = start_in(mode, 2, &[("user1", "123456")]).await?;
    let nodes = setup.engine.nodes();
    let mut browsers = Vec::new();
    for i in 0..40 {
        let mut browser = Browser::connect(nodes[i % 2].chat_addr).await?;
        browser
            .send_request(&ChatRequest::Auth {
                name: "user1".into(),
                password: "123456".into(),
            })
            .await?;
        browser.send_request(&ChatRequest::Ping).await?;
        browsers.push(browser);
    }
    for (i, browser) in browsers.iter_mut().enumerate() {
        let first = browser.recv_json().await?;
        let second = browser.recv_json().await?;
        assert_eq!(
            first["op"], "auth",
            "browser {i}: {first} came before the login's reply"
        );
        assert_eq!(first["success"], true, "browser {i}: {first}");
        assert_eq!(second, json!({"op":"pong"}), "browser {i}");
    }
    setup.cancel.cancel();
    tokio::time::timeout(WAIT, setup.served).await???;
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_engine_is_reported() -> anyhow::Result<()> {
    // Bind then drop a listener: its port is free and nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let db = chat_consumer::db::connect("sqlite::memory:").await?;
    let consumer = Consumer {
        engine_timeout: Duration::from_millis(300),
        ..Consumer::new(
            Client::builder(format!("127.0.0.1:{port}")),
            db,
            Hasher::with_cost(64, 1, 2)?,
        )
    };
    let err = chat_consumer::run(consumer, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Engine);
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "the error names the address tried: {err}"
    );
    Ok(())
}

/// A center that takes connections and never answers: bound, never accepted.
fn blackholed_center() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap()
}

fn consumer_of(center: String, engine_timeout: Duration) -> anyhow::Result<Consumer> {
    Ok(Consumer {
        engine_timeout,
        ..Consumer::new(
            Client::builder(center).connect_timeout(Duration::from_secs(3600)),
            sea_orm::DatabaseConnection::default(),
            Hasher::with_cost(64, 1, 2)?,
        )
    })
}

#[tokio::test]
async fn a_silent_center_fails_start_up_within_the_engine_timeout() -> anyhow::Result<()> {
    let center = blackholed_center();
    let consumer = consumer_of(center.local_addr()?.to_string(), Duration::from_millis(300))?;
    // The client's own connect timeout is an hour: only the engine timeout can end this.
    let err = tokio::time::timeout(WAIT, chat_consumer::run(consumer, CancellationToken::new()))
        .await
        .expect("start-up is bounded by the engine timeout")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Engine);
    assert!(
        err.to_string().contains(&format!(
            "cannot reach the engine at {}: no answer within 300ms (is a firewall dropping the \
             packets, or is the address wrong?)",
            center.local_addr()?
        )),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_during_start_up_is_obeyed_at_once() -> anyhow::Result<()> {
    let center = blackholed_center();
    let consumer = consumer_of(center.local_addr()?.to_string(), Duration::from_secs(3600))?;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(chat_consumer::run(consumer, shutdown.clone()));
    shutdown.cancel();
    let stopped = tokio::time::timeout(WAIT, running)
        .await
        .expect("a shutdown during start-up ends it")??;
    assert_eq!(stopped, Stopped::Drained);
    Ok(())
}

//! Several devices per user, and several consumers per queue, end to end on the mock engine.

mod common;

use std::time::Duration;

use chat_consumer::service::password::Hasher;
use chat_consumer::service::users;
use chat_consumer::Consumer;
use common::{start_in, Mode, WAIT};
use connmix_client::Client;
use connmix_mock::browser::Browser;
use connmix_protocol::chat::ChatRequest;
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn log_in(browser: &mut Browser, name: &str) -> anyhow::Result<()> {
    browser
        .send_request(&ChatRequest::Auth {
            name: name.into(),
            password: "123456".into(),
        })
        .await?;
    let reply = browser.recv_json().await?;
    anyhow::ensure!(reply["success"] == true, "login of {name} failed: {reply}");
    Ok(())
}

/// Waits until `name`'s online count is `expected`; the count follows close events, which the
/// consumer handles after the browser is gone.
async fn online_becomes(db: &DatabaseConnection, name: &str, expected: i32) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let user = users::find_by_name(db, name).await?.expect("user exists");
        if user.online == expected {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "online of {name} stayed {} instead of {expected}",
            user.online
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

both_modes!(online_counts_each_logged_in_device_of_a_user, devices);
async fn devices(mode: Mode) -> anyhow::Result<()> {
    let setup = start_in(mode, 2, &[("user1", "123456")]).await?;
    let nodes = setup.engine.nodes();
    let db = setup.db.clone();
    let mut phone = Browser::connect(nodes[0].chat_addr).await?;
    let mut laptop = Browser::connect(nodes[1].chat_addr).await?;
    log_in(&mut phone, "user1").await?;
    online_becomes(&db, "user1", 1).await?;
    log_in(&mut laptop, "user1").await?;
    online_becomes(&db, "user1", 2).await?;

    phone.close().await?;
    online_becomes(&db, "user1", 1).await?;
    laptop.close().await?;
    online_becomes(&db, "user1", 0).await?;

    setup.cancel.cancel();
    setup.served.await??;
    setup.engine.shutdown().await;
    Ok(())
}

/// A second consumer on the same engine and database, once it consumes all `nodes` nodes.
async fn second_consumer(
    setup: &common::Setup,
    nodes: usize,
) -> anyhow::Result<(
    CancellationToken,
    tokio::task::JoinHandle<chat_consumer::Result<chat_consumer::Stopped>>,
)> {
    let second = Consumer::new(
        Client::builder(setup.engine.center_host()),
        setup.db.clone(),
        Hasher::with_cost(64, 1, 2)?,
    );
    let cancel = CancellationToken::new();
    let served = tokio::spawn(chat_consumer::run(second, cancel.clone()));
    let both = setup.engine.wait_for_consumers("chat", 2 * nodes);
    tokio::time::timeout(WAIT, both).await?;
    Ok((cancel, served))
}

both_modes!(
    two_consumers_share_the_queue_and_answer_each_message_once,
    two_consumers
);
async fn two_consumers(mode: Mode) -> anyhow::Result<()> {
    let setup = start_in(mode, 1, &[("user1", "123456")]).await?;
    let (cancel, served) = second_consumer(&setup, 1).await?;

    let node = setup.engine.nodes()[0].clone();
    let mut browser = Browser::connect(node.chat_addr).await?;
    log_in(&mut browser, "user1").await?;
    let pings = 40;
    for _ in 0..pings {
        browser.send_request(&ChatRequest::Ping).await?;
    }
    let mut pongs = 0;
    while pongs < pings {
        assert_eq!(browser.recv_json().await?, json!({"op": "pong"}));
        pongs += 1;
    }
    // A last request: had any ping been answered twice, its extra pong would come first.
    browser
        .send_request(&ChatRequest::Subscribe {
            channels: vec!["room_1".into()],
        })
        .await?;
    assert_eq!(
        browser.recv_json().await?,
        json!({"op": "subscribe", "success": true})
    );
    let counters = setup.engine.counters();
    assert_eq!(counters.delivered, counters.queued, "{counters:?}");

    cancel.cancel();
    served.await??;
    setup.cancel.cancel();
    setup.served.await??;
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_consumer_that_dies_leaves_the_others_answering_everyone() -> anyhow::Result<()> {
    let setup = start_in(Mode::BuiltIn, 2, &[("user1", "123456")]).await?;
    let (cancel, served) = second_consumer(&setup, 2).await?;
    let nodes = setup.engine.nodes();
    let mut browsers = Vec::new();
    for node in &nodes {
        let mut browser = Browser::connect(node.chat_addr).await?;
        log_in(&mut browser, "user1").await?;
        browsers.push(browser);
    }

    // The first consumer dies: no drain, its connections simply go.
    setup.served.abort();
    let gone = async {
        while setup.engine.counters().api_connections > 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, gone).await?;
    for browser in &mut browsers {
        for _ in 0..10 {
            browser.send_request(&ChatRequest::Ping).await?;
        }
        for _ in 0..10 {
            assert_eq!(browser.recv_json().await?, json!({"op": "pong"}));
        }
    }
    cancel.cancel();
    served.await??;
    setup.engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn presence_left_behind_by_lost_close_events_is_reconciled() -> anyhow::Result<()> {
    use chat_consumer::reconcile::Reconcile;
    use chat_consumer::service::presence;
    use chat_consumer::Conn;

    let setup = start_in(Mode::BuiltIn, 1, &[("user1", "123456")]).await?;
    let node = setup.engine.nodes()[0].clone();
    let mut browser = Browser::connect(node.chat_addr).await?;
    log_in(&mut browser, "user1").await?;
    online_becomes(&setup.db, "user1", 1).await?;
    // What consumers that died holding close events leave behind: a record of a connection
    // the node no longer holds, and one of a node the engine no longer lists.
    let uid = u64::try_from(users::find_by_name(&setup.db, "user1").await?.unwrap().id)?;
    presence::connect(&setup.db, &Conn::new(node.id.to_string(), 999_999u64), uid).await?;
    presence::connect(&setup.db, &Conn::new("node-removed", 1u64), uid).await?;
    online_becomes(&setup.db, "user1", 3).await?;

    let reconciling = Consumer {
        reconcile: Reconcile {
            interval: Duration::from_millis(200),
        },
        ..Consumer::new(
            Client::builder(setup.engine.center_host()),
            setup.db.clone(),
            Hasher::with_cost(64, 1, 2)?,
        )
    };
    let cancel = CancellationToken::new();
    let served = tokio::spawn(chat_consumer::run(reconciling, cancel.clone()));
    online_becomes(&setup.db, "user1", 1).await?;
    assert_eq!(
        presence::online(&setup.db, uid).await?,
        1,
        "the live browser stays"
    );

    // And the live connection's own close still counts down.
    browser.close().await?;
    online_becomes(&setup.db, "user1", 0).await?;
    cancel.cancel();
    served.await??;
    setup.cancel.cancel();
    setup.served.await??;
    setup.engine.shutdown().await;
    Ok(())
}

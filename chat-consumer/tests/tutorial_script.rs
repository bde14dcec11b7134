//! A script in the original tutorial's shape (each frame queued as the JSON text of
//! `{frame, uid}`: no handshake or close events, no event names) works with this consumer.

mod common;

use common::{start_in, Mode, WAIT};
use connmix_mock::browser::Browser;
use connmix_protocol::chat::ChatRequest;
use serde_json::{json, Value};

async fn request(browser: &mut Browser, request: ChatRequest) -> anyhow::Result<Value> {
    browser.send_request(&request).await?;
    common::recv_chat(browser).await
}

#[tokio::test]
async fn the_tutorials_first_script_logs_in_joins_and_chats() -> anyhow::Result<()> {
    let users = [("user1", "123456"), ("user2", "123456")];
    let setup = start_in(Mode::Tutorial, 2, &users).await?;
    let nodes = setup.engine.nodes();
    let mut one = Browser::connect(nodes[0].chat_addr).await?;
    let mut two = Browser::connect(nodes[1].chat_addr).await?;

    let wrong = ChatRequest::Auth {
        name: "user1".into(),
        password: "wrong".into(),
    };
    assert_eq!(
        request(&mut one, wrong).await?,
        json!({"op":"auth","error":"Invalid name or password"})
    );
    for (browser, name) in [(&mut one, "user1"), (&mut two, "user2")] {
        let login = ChatRequest::Auth {
            name: name.into(),
            password: "123456".into(),
        };
        let welcome = request(browser, login).await?;
        assert_eq!(welcome["success"], true, "{welcome}");
        let join = ChatRequest::Subscribe {
            channels: vec!["room_101".into()],
        };
        assert_eq!(
            request(browser, join).await?,
            json!({"op":"subscribe","success":true})
        );
    }
    two.send_request(&ChatRequest::SendToRoom {
        room: "room_101".into(),
        text: "hello".into(),
    })
    .await?;
    let delivered = common::recv_chat(&mut one).await?;
    assert_eq!(delivered["event"], "subscribe");
    assert_eq!(delivered["channel"], "room_101");
    assert_eq!(delivered["from"], "user2");

    setup.cancel.cancel();
    tokio::time::timeout(WAIT, setup.served).await???;
    setup.engine.shutdown().await;
    Ok(())
}

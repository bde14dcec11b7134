//! Request/reply matching against a scripted fake engine whose every frame the test controls:
//! replies out of order, replies to nobody, garbage, and a connection cut with requests
//! pending.

mod common;

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::routing::get;
use axum::{Json, Router};
use common::*;
use connmix_client::protocol::{CallResult, EngineError, ErrorCode, Reply, Request};
use connmix_client::{ClientErrorKind, ConnectionEvent, Dialect, DisconnectReason};
use futures_util::future::join_all;
use serde_json::json;
use tokio::sync::mpsc;

/// One accepted consumer connection, driven by the test.
struct Peer {
    socket: WebSocket,
}

impl Peer {
    async fn request(&mut self) -> Request {
        loop {
            match within("a request", self.socket.recv()).await {
                Some(Ok(Message::Text(text))) => return Request::decode(text.as_str()).unwrap(),
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    }

    async fn send(&mut self, text: String) {
        self.socket.send(Message::Text(text.into())).await.unwrap();
    }
}

/// A center listing one node, which is the same server; accepted sockets go to the test.
async fn fake_engine() -> (String, mpsc::Receiver<Peer>) {
    init_tracing();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel(4);
    let app = Router::new()
        .route(
            "/version",
            get(|| async { Json(json!({ "apis": ["v1"] })) }),
        )
        .route(
            "/v1/nodes",
            get({
                let addr = addr.clone();
                move || async move { Json(json!({ "nodes": [{ "id": "n1", "host": addr }] })) }
            }),
        )
        .route(
            "/ws/v1",
            get(move |upgrade: WebSocketUpgrade| {
                let tx = tx.clone();
                async move {
                    upgrade.on_upgrade(move |socket| async move {
                        let _ = tx.send(Peer { socket }).await;
                    })
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

/// Consumes `chat` through the next connection, which accepts it.
async fn consuming(
    client: &connmix_client::Client,
    peers: &mut mpsc::Receiver<Peer>,
) -> (connmix_client::EventStream, Peer) {
    let mut peer = within("the connection", peers.recv()).await.unwrap();
    let consume = client.consume(&["chat"]);
    let engine_side = async {
        let request = peer.request().await;
        peer.send(Reply::ok(request.id, CallResult::ok()).encode(Dialect::Current))
            .await;
        peer
    };
    let (stream, peer) = tokio::join!(consume, engine_side);
    (stream.unwrap(), peer)
}

#[tokio::test]
async fn replies_in_reverse_order_reach_the_right_callers() {
    let (center, mut peers) = fake_engine().await;
    let client = fast(center).connect().await.unwrap();
    let mut peer = within("the connection", peers.recv()).await.unwrap();
    let calls = (0..20u64).map(|k| {
        let client = client.clone();
        async move { (k, client.publish(&format!("room_{k}"), "x").await) }
    });
    let engine_side = async {
        let mut requests = Vec::new();
        for _ in 0..20 {
            requests.push(peer.request().await);
        }
        // Garbage and a reply to no request must not disturb anything.
        peer.send("not json".into()).await;
        peer.send(Reply::ok(Some(9_999), CallResult::ok()).encode(Dialect::Current))
            .await;
        for request in requests.into_iter().rev() {
            let connmix_client::Call::MeshPublish { channel, .. } = request.call else {
                panic!("unexpected call")
            };
            let k: u64 = channel.trim_start_matches("room_").parse().unwrap();
            let reply = Reply::ok(request.id, CallResult::counts(k, 0));
            peer.send(reply.encode(Dialect::Current)).await;
        }
        peer
    };
    let (results, _peer) = tokio::join!(join_all(calls), engine_side);
    for (k, result) in results {
        assert_eq!(result.unwrap().delivered, k);
    }
    client.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn pending_requests_fail_at_once_when_the_connection_drops() {
    let (center, mut peers) = fake_engine().await;
    // A long request timeout: only the disconnect can end the calls quickly.
    let client = fast(center)
        .request_timeout(Duration::from_secs(3600))
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let mut peer = within("the connection", peers.recv()).await.unwrap();
    let calls = join_all((0..5).map(|_| client.publish("room", "x")));
    let engine_side = async {
        for _ in 0..5 {
            peer.request().await;
        }
        drop(peer);
    };
    let (results, ()) = within("calls to fail", async { tokio::join!(calls, engine_side) }).await;
    for result in results {
        assert_eq!(result.unwrap_err().kind(), ClientErrorKind::Disconnected);
    }
    wait_event(&mut events, |e| {
        matches!(e, ConnectionEvent::Disconnected { .. })
    })
    .await;
    // The client comes back on its own.
    let _again = within("reconnection", peers.recv()).await.unwrap();
    client.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn topics_are_consumed_again_on_every_new_connection() {
    let (center, mut peers) = fake_engine().await;
    let client = fast(center).connect().await.unwrap();
    let mut peer = within("the connection", peers.recv()).await.unwrap();
    let consume = client.consume(&["chat", "other"]);
    let engine_side = async {
        let request = peer.request().await;
        assert!(
            matches!(&request.call, connmix_client::Call::QueuePop { topics } if topics == &["chat", "other"])
        );
        peer.send(Reply::ok(request.id, CallResult::ok()).encode(Dialect::Current))
            .await;
        peer
    };
    let (stream, peer) = tokio::join!(consume, engine_side);
    let _stream = stream.unwrap();
    drop(peer);
    let mut peer = within("the reconnection", peers.recv()).await.unwrap();
    let request = peer.request().await;
    assert!(
        matches!(&request.call, connmix_client::Call::QueuePop { topics } if topics == &["chat", "other"])
    );
    client.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_refused_consume_after_a_reconnect_drops_the_connection_and_tries_again() {
    let (center, mut peers) = fake_engine().await;
    let client = fast(center).connect().await.unwrap();
    let mut events = client.events();
    let (mut stream, peer) = consuming(&client, &mut peers).await;
    drop(peer);
    // The next connection refuses to consume.
    let mut refusing = within("the reconnection", peers.recv()).await.unwrap();
    let request = refusing.request().await;
    let refusal = EngineError::new(ErrorCode::ConsumeFailed, "queue busy");
    refusing
        .send(Reply::err(request.id, refusal).encode(Dialect::Current))
        .await;
    let dropped = wait_event(&mut events, |e| {
        matches!(
            e,
            ConnectionEvent::Disconnected {
                reason: DisconnectReason::ConsumeRefused(_),
                ..
            }
        )
    })
    .await;
    let ConnectionEvent::Disconnected { reason, .. } = dropped else {
        unreachable!()
    };
    assert!(reason.to_string().contains("queue busy"), "{reason}");
    // The one after that consumes, and its messages arrive.
    let mut peer = within("another reconnection", peers.recv()).await.unwrap();
    let request = peer.request().await;
    assert!(matches!(
        request.call,
        connmix_client::Call::QueuePop { .. }
    ));
    peer.send(Reply::ok(request.id, CallResult::ok()).encode(Dialect::Current))
        .await;
    peer.send(
        r#"{"e":"queue.pop","p":{"n":"n1","c":"7","t":"chat","d":"after"},"id":null}"#.into(),
    )
    .await;
    assert_eq!(next_event(&mut stream).await.data, json!("after"));
    client.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn messages_sent_before_the_unpop_reply_still_reach_the_stream() {
    let (center, mut peers) = fake_engine().await;
    let client = fast(center).connect().await.unwrap();
    let (mut stream, mut peer) = consuming(&client, &mut peers).await;
    let unpop = client.unpop();
    let engine_side = async {
        let request = peer.request().await;
        assert!(matches!(request.call, connmix_client::Call::QueueUnpop));
        // The engine had already handed these out when the unpop reached it: they are in
        // flight, and nowhere else any more.
        for k in 0..3u64 {
            let event = json!({"e": "queue.pop", "p": {"n": "n1", "c": (k + 1).to_string(), "t": "chat", "d": k}, "id": null});
            peer.send(event.to_string()).await;
        }
        peer.send(Reply::ok(request.id, CallResult::ok()).encode(Dialect::Current))
            .await;
        peer
    };
    let (unpopped, _peer) = tokio::join!(unpop, engine_side);
    unpopped.unwrap();
    let mut got = Vec::new();
    while let Some(event) = within("the stream to end", stream.recv()).await {
        got.push(event.data.to_value());
    }
    assert_eq!(got, [json!(0), json!(1), json!(2)]);
    client.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_node_that_breaks_every_session_is_reconnected_ever_more_slowly() {
    let (center, mut peers) = fake_engine().await;
    // Accept each consumer connection, then drop it at once.
    tokio::spawn(async move {
        while let Some(peer) = peers.recv().await {
            drop(peer)
        }
    });
    let client = fast(center).connect().await.unwrap();
    let mut events = client.events();
    let mut attempts = Vec::new();
    while attempts.len() < 4 {
        if let ConnectionEvent::Reconnecting { attempt, .. } = wait_event(&mut events, |e| {
            matches!(e, ConnectionEvent::Reconnecting { .. })
        })
        .await
        {
            attempts.push(attempt);
        }
    }
    assert!(
        attempts.windows(2).all(|pair| pair[1] > pair[0]),
        "the backoff must grow across short sessions, got attempts {attempts:?}"
    );
    client.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn an_oversized_frame_is_skipped_and_counted_without_losing_the_connection() {
    let (center, mut peers) = fake_engine().await;
    let client = fast(center).max_frame_bytes(1024).connect().await.unwrap();
    let mut events = client.events();
    let (mut stream, mut peer) = consuming(&client, &mut peers).await;
    let event = |data: &str| {
        format!(r#"{{"e":"queue.pop","p":{{"n":"n1","c":"7","t":"chat","d":"{data}"}}}}"#)
    };
    // Over the 1 KiB limit but within what the socket reads: skipped, not fatal.
    peer.send(event(&"x".repeat(3000))).await;
    peer.send(event("small")).await;
    let next = next_event(&mut stream).await;
    assert_eq!(next.data, json!("small"));
    assert_eq!(client.oversized_frames(), 1);
    while let Ok(event) = events.try_recv() {
        assert!(
            !matches!(event, ConnectionEvent::Disconnected { .. }),
            "the connection was dropped: {event:?}"
        );
    }
    client.shutdown(Duration::from_millis(100)).await;
}

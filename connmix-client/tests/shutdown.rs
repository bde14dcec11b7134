//! Shutdown: in-flight requests finish, consumption stops, connections close, tasks end.

mod common;

use std::task::Poll;

use common::*;
use connmix_client::ClientErrorKind;
use futures_util::future::join_all;
use futures_util::{poll, StreamExt};

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish_then_closes_everything() {
    let engine = engine(2).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    let mut stream = client.consume(&["chat"]).await.unwrap();
    within("two consumers", engine.wait_for_consumers("chat", 2)).await;

    let mut calls: Vec<_> = (0..100)
        .map(|i| Box::pin(client.publish(if i % 2 == 0 { "a" } else { "b" }, "x")))
        .collect();
    // One poll each puts every request in its node's queue ahead of the shutdown.
    for call in &mut calls {
        assert!(matches!(poll!(call.as_mut()), Poll::Pending));
    }
    let (results, ()) = tokio::join!(join_all(calls), client.shutdown(WAIT));
    for result in results {
        assert_eq!(result.unwrap().delivered, 0);
    }
    assert!(within("stream end", stream.next()).await.is_none());
    until("connections closed", || {
        engine.counters().api_connections == 0
    })
    .await;
    assert!(client.state().borrow().closed);
    let err = client.publish("a", "x").await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Closed);
    let err = client.consume(&["chat"]).await.unwrap_err();
    assert_eq!(err.kind(), ClientErrorKind::Closed);
}

#[tokio::test]
async fn dropping_the_last_handle_ends_the_background_tasks() {
    let engine = engine(1).await;
    let client = fast(engine.center_host()).connect().await.unwrap();
    let mut stream = client.consume(&["chat"]).await.unwrap();
    let mut state = client.state();
    let clone = client.clone();
    drop(client);
    // A clone keeps everything running.
    assert_eq!(clone.nodes().len(), 1);
    drop(clone);
    assert!(within("stream end", stream.next()).await.is_none());
    until("connection closed", || {
        engine.counters().api_connections == 0
    })
    .await;
    // The supervisor and node tasks are gone: nothing holds the state sender any more.
    within("state sender dropped", async {
        while state.changed().await.is_ok() {}
    })
    .await;
}
